"""A keyboard-interactive response claiming 0x10000000 answers, sent by
paramiko (a client nobody here wrote) to a running mini-sshd: the attempt is
refused (russh reads no more answers than the packet's bytes can hold, so
the claimed count allocates nothing; what is left is one wrong answer), the
server's memory does not grow by more than 10 MiB, and it still serves a
login afterwards.

Usage: hostile_kbd.py PORT SERVER_PID
"""

import socket
import sys
import time

import paramiko
from paramiko.common import cMSG_USERAUTH_INFO_RESPONSE
from paramiko.message import Message

HOSTILE_COUNT = 0x10000000
MAX_GROWTH_KIB = 10 * 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def hostile_info_response(self, m):
    """Reads the server's prompts, then answers with a lying count."""
    m.get_text()
    m.get_text()
    m.get_binary()
    for _ in range(m.get_int()):
        m.get_text()
        m.get_boolean()
    reply = Message()
    reply.add_byte(cMSG_USERAUTH_INFO_RESPONSE)
    reply.add_int(HOSTILE_COUNT)
    reply.add_string(b"x" * 64)
    self.transport._send_message(reply)


def transport(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = paramiko.Transport(sock)
    t.start_client(timeout=10)
    return t


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    before = rss_kib(pid)

    original = paramiko.auth_handler.AuthHandler._parse_userauth_info_request
    paramiko.auth_handler.AuthHandler._parse_userauth_info_request = hostile_info_response
    t = transport(port)
    started = time.monotonic()
    outcome = "no answer"
    try:
        t.auth_interactive("kbd", lambda title, instructions, prompts: ["1234"] * len(prompts))
        outcome = "accepted"
    except paramiko.AuthenticationException as e:
        outcome = f"refused ({e})"
    except (paramiko.SSHException, EOFError, OSError) as e:
        outcome = f"closed ({type(e).__name__})"
    answered_after = time.monotonic() - started
    t.close()
    paramiko.auth_handler.AuthHandler._parse_userauth_info_request = original

    after = rss_kib(pid)
    growth = after - before
    print(f"hostile count {HOSTILE_COUNT:#x}: {outcome} after {answered_after:.2f} s; "
          f"server RSS {before} -> {after} KiB (+{growth} KiB, bound {MAX_GROWTH_KIB} KiB)")
    if outcome in ("accepted", "no answer"):
        sys.exit(f"FAIL: the hostile response was {outcome}")
    if growth > MAX_GROWTH_KIB:
        sys.exit("FAIL: the server's memory grew past the bound")

    # The server still serves an honest login.
    t = transport(port)
    t.auth_password("audit", "audit")
    channel = t.open_session(timeout=10)
    channel.exec_command("echo still serving")
    out = channel.makefile("rb").read()
    status = channel.recv_exit_status()
    t.close()
    print(f"then a password login ran a command: {out!r}, exit {status}")
    if out != b"still serving\n" or status != 0:
        sys.exit("FAIL: no honest login after the hostile one")


if __name__ == "__main__":
    main()
