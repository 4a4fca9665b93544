#!/usr/bin/env bash
# Usage: bench/callgrind.sh BENCH_BINARY LABEL [REPS]   (outputs in $CALLGRIND_DIR, default target/callgrind)
#
# Instruction counts (callgrind, user space) of the bench's in-process
# `framework` server, driven by the OpenSSH client on loopback with the
# bench's own ssh options (key auth, -c aes128-gcm@openssh.com).
#
# Each scenario runs in a fresh server process:
#   `BENCH serve --target framework --host-key K --authorized-key A --max-startups 1000`
# (the child the bench itself starts), under
#   valgrind --tool=callgrind --callgrind-out-file=$CALLGRIND_DIR/LABEL-SCENARIO-rREP.out
# and is stopped the bench's way: EOF on its stdin (graceful run_until), so
# callgrind writes its file on a normal exit.
#
# Scenarios: idle (start + stop, no connection), login1, login20, login40
# (`ssh ... true`, sequential), up64 (`head -c 67108864 /dev/zero | ssh ... sink`),
# down64 (`ssh ... 'source 67108864'`). Derived:
#   per login        = (login40 - login20) / 20
#   per 64 MiB up    = up64   - login1   (the transfer's own login taken out)
#   per 64 MiB down  = down64 - login1
# Each scenario is run REPS times (default 2).
#
# Output: $CALLGRIND_DIR/LABEL-callgrind.tsv (raw totals) and a markdown summary on
# stdout (also $CALLGRIND_DIR/LABEL-callgrind.md). Every wait and loop is bounded.
set -u -o pipefail

BENCH=${1:?usage: callgrind.sh BENCH_BINARY LABEL [REPS]}
LABEL=${2:?usage: callgrind.sh BENCH_BINARY LABEL [REPS]}
REPS=${3:-2}
PERF=${CALLGRIND_DIR:-target/callgrind}
mkdir -p "$PERF"
PERF=$(readlink -f "$PERF")
CIPHER=aes128-gcm@openssh.com
SIZE=67108864
START_TIMEOUT=180     # s until the server under valgrind prints PORT
LOGIN_TIMEOUT=120     # s per ssh login under valgrind
TRANSFER_TIMEOUT=900  # s per 64 MiB transfer under valgrind
STOP_TIMEOUT=180      # s for the server to exit after stdin EOF

BENCH=$(readlink -f "$BENCH")
[ -x "$BENCH" ] || { echo "not executable: $BENCH" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind missing" >&2; exit 2; }

# Keys shared by every run (and by old and new binaries), made once.
KEYS=$PERF/keys
if [ ! -f "$KEYS/client_ed25519_key" ]; then
    mkdir -p "$KEYS"
    ssh-keygen -q -t ed25519 -N '' -C bench -f "$KEYS/host_ed25519_key"
    ssh-keygen -q -t ed25519 -N '' -C bench -f "$KEYS/client_ed25519_key"
    cp "$KEYS/client_ed25519_key.pub" "$KEYS/authorized_keys"
fi
USER_NAME=$(id -un)
TMP=$(mktemp -d "$PERF/tmp-$LABEL.XXXXXX")
TSV=$PERF/$LABEL-callgrind.tsv
: > "$TSV"

SERVER_PID=""
cleanup() {
    exec 3>&- 2>/dev/null
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        sleep 1
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'echo interrupted >&2; exit 130' INT TERM

start_server() { # OUTFILE NAME -> sets SERVER_PID, PORT
    local out=$1 name=$2
    local fifo=$TMP/$name.stdin
    rm -f "$fifo" "$out"; mkfifo "$fifo"
    nice -n 10 valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$BENCH" serve --target framework \
        --host-key "$KEYS/host_ed25519_key" --authorized-key "$KEYS/authorized_keys" \
        --max-startups 1000 \
        < "$fifo" > "$TMP/$name.stdout" 2> "$TMP/$name.valgrind.log" &
    SERVER_PID=$!
    exec 3> "$fifo"   # held open: the server stops when it is closed
    PORT=""
    local i
    for ((i = 0; i < START_TIMEOUT * 5; i++)); do
        PORT=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$TMP/$name.stdout" 2>/dev/null | head -n1)
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "server did not start ($name), see $TMP/$name.valgrind.log" >&2
    return 1
}

stop_server() { # -> 0 if it exited on its own with status 0
    exec 3>&-
    local i rc
    for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "server did not exit after stdin EOF within ${STOP_TIMEOUT}s: SIGINT" >&2
        kill -INT "$SERVER_PID"; sleep 5; kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
        return 1
    fi
    wait "$SERVER_PID"; rc=$?
    SERVER_PID=""
    return $rc
}

# The bench's ssh invocation, as a script so that `timeout` can run it.
SSH=$TMP/ssh.sh
cat > "$SSH" <<EOS
#!/bin/sh
port=\$1; shift
exec ssh -F /dev/null -i "$KEYS/client_ed25519_key" \\
    -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes \\
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \\
    -o ConnectTimeout=60 -o LogLevel=ERROR \\
    -c "$CIPHER" -p "\$port" "$USER_NAME@127.0.0.1" "\$@"
EOS
chmod +x "$SSH"
WRAP=("$SSH")
logins() {
    local port=$1 n=$2 i
    for ((i = 0; i < n; i++)); do
        timeout -k 5 "$LOGIN_TIMEOUT" "${WRAP[@]}" "$port" true < /dev/null \
            || { echo "login $((i + 1))/$n failed" >&2; return 1; }
    done
}
upload() {
    local port=$1
    head -c "$SIZE" /dev/zero | timeout -k 5 "$TRANSFER_TIMEOUT" "${WRAP[@]}" "$port" sink
}
download() {
    local port=$1 got
    got=$(timeout -k 5 "$TRANSFER_TIMEOUT" "${WRAP[@]}" "$port" "source $SIZE" < /dev/null | wc -c) || return 1
    [ "$got" -eq "$SIZE" ] || { echo "downloaded $got bytes, expected $SIZE" >&2; return 1; }
}

total_ir() { # OUTFILE -> Ir total (from callgrind_annotate's PROGRAM TOTALS)
    callgrind_annotate "$1" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | head -n1 | tr -d ,
}

run_scenario() { # SCENARIO REP
    local scen=$1 rep=$2 name="$1-r$2"
    local out=$PERF/$LABEL-$name.out t0 t1 ok=1 ir
    t0=$(date +%s)
    start_server "$out" "$name" || { stop_server; echo -e "$scen\t$rep\tFAILED-START" >> "$TSV"; return 1; }
    case $scen in
        idle) ;;
        login1) logins "$PORT" 1 || ok=0 ;;
        login20) logins "$PORT" 20 || ok=0 ;;
        login40) logins "$PORT" 40 || ok=0 ;;
        up64) upload "$PORT" || ok=0 ;;
        down64) download "$PORT" || ok=0 ;;
    esac
    stop_server || { echo "server exit not clean ($name)" >&2; ok=0; }
    t1=$(date +%s)
    ir=$( [ -s "$out" ] && total_ir "$out" )
    if [ "$ok" = 1 ] && [ -n "$ir" ]; then
        echo -e "$scen\t$rep\t$ir" >> "$TSV"
    else
        echo -e "$scen\t$rep\tFAILED${ir:+($ir)}" >> "$TSV"
    fi
    printf '%-8s rep %s  Ir %15s  (%ss wall)\n' "$scen" "$rep" "${ir:-n/a}" "$((t1 - t0))" >&2
}

echo "callgrind: $BENCH as '$LABEL', $REPS repetitions, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((rep = 1; rep <= REPS; rep++)); do
    for scen in ${SCENARIOS:-idle login1 login20 login40 up64 down64}; do
        run_scenario "$scen" "$rep"
    done
done
rm -rf "$TMP"

python3 - "$TSV" "$LABEL" "$BENCH" "$REPS" <<'EOF' | tee "$PERF/$LABEL-callgrind.md"
import sys
tsv, label, bench, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ir = {}
for line in open(tsv):
    s, r, v = line.rstrip("\n").split("\t")
    ir[(s, int(r))] = int(v) if v.isdigit() else None
def g(s, r): return ir.get((s, r))
def sub(a, b, d=1):
    return None if a is None or b is None else (a - b) / d
scen = ["idle", "login1", "login20", "login40", "up64", "down64"]
reps_l = list(range(1, reps + 1))
f = lambda v: "n/a" if v is None else f"{v:,.0f}"
print(f"### callgrind Ir, server `{label}` ({bench}), framework target, aes128-gcm\n")
print("| scenario | " + " | ".join(f"Ir run{r}" for r in reps_l) + " |")
print("|---|" + "---:|" * reps + "")
for s in scen:
    print(f"| {s} | " + " | ".join(f(g(s, r)) for r in reps_l) + " |")
print()
derived = [
    ("per login = (login40 - login20) / 20", lambda r: sub(g("login40", r), g("login20", r), 20)),
    ("per login, alt. = (login20 - idle) / 20", lambda r: sub(g("login20", r), g("idle", r), 20)),
    ("first login = login1 - idle", lambda r: sub(g("login1", r), g("idle", r))),
    ("per 64 MiB upload = up64 - login1", lambda r: sub(g("up64", r), g("login1", r))),
    ("per 64 MiB download = down64 - login1", lambda r: sub(g("down64", r), g("login1", r))),
]
print("| derived | " + " | ".join(f"run{r}" for r in reps_l) + " | spread (max-min)/mean |")
print("|---|" + "---:|" * (reps + 1))
for name, fn in derived:
    vals = [fn(r) for r in reps_l]
    ok = [v for v in vals if v is not None]
    spread = f"{(max(ok) - min(ok)) / (sum(ok) / len(ok)) * 100:.2f}%" if len(ok) > 1 and sum(ok) else "n/a"
    print(f"| {name} | " + " | ".join(f(v) for v in vals) + f" | {spread} |")
EOF
