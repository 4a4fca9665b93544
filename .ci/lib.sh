# Shared by the CI scripts that check a running mini-sshd with a Python tool
# (ssh-audit, paramiko): a virtualenv in target/ci-venv, and mini-sshd started
# on a free loopback port. Source it; it sets VENV, work, server and port.

VENV=target/ci-venv

# python3 with venv support: a fresh Debian machine has neither.
ensure_venv() {
  if ! python3 -m venv --help >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
}

# Installs a pinned package into the venv unless it is there: pip_install NAME VERSION.
pip_install() {
  local installed
  # `pip show` fails for a package not installed yet: that is an empty version.
  installed=$("$VENV/bin/pip" show "$1" 2>/dev/null | sed -n 's/^Version: //p') || installed=""
  [ "$installed" = "$2" ] || "$VENV/bin/pip" install -q --disable-pip-version-check "$1==$2"
}

# Builds and starts mini-sshd with the given extra arguments; waits at most 30 s
# for its start-up line, which names the port. Stopped and cleaned up on exit.
start_mini_sshd() {
  cargo build -q -p example-mini-sshd
  work=$(mktemp -d)
  local log=$work/mini-sshd.log
  target/debug/mini-sshd --listen 127.0.0.1:0 --host-key "$work/host_key" --root "$work" "$@" >"$log" 2>&1 &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
  port=""
  for _ in $(seq 300); do
    port=$(sed -n 's/.*mini-sshd listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "mini-sshd did not start:" >&2; cat "$log" >&2; exit 1; }
}
