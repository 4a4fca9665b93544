//! Exec on pipes (exit codes, signals, bulk data, stderr), the pty and its
//! window changes, AcceptEnv, and two sessions at once on one connection
//! through a control master.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ssh_framework_tests::data::{pseudo_random, sha256};
use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::openssh::Ssh;
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::within;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;

use crate::with_bob;

// ---------------------------------------------------------------------------
// Exec on pipes

#[tokio::test]
async fn exec_exit_codes_reach_ssh() {
    let sshd = with_bob(&[]).await;
    for code in [0, 1, 23] {
        let out = sshd.ssh("bob").password("pw").run(&format!("exit {code}")).await;
        assert_eq!(out.code, Some(code), "stderr: {}", out.stderr);
    }
}

#[tokio::test]
async fn a_command_killed_by_a_signal_is_exit_signal_and_ssh_exits_255() {
    let sshd = with_bob(&[]).await;

    let out = sshd.ssh("bob").password("pw").run("kill -9 $$").await;

    // OpenSSH's client ignores exit-signal: with no exit-status it exits 255.
    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());

    // What the server sent instead of exit-status, seen by a client that reports it.
    let client = RusshClient::login_password(sshd.addr(), "bob", "pw").await;
    let mut channel = client.exec("kill -9 $$").await;
    let transcript = read_to_close(&mut channel).await;
    assert_eq!(transcript.ending(), ["exit-signal KILL", "eof", "close"], "{transcript:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_returns_64_mib_unchanged() {
    let sshd = with_bob(&[]).await;
    let data = pseudo_random(64 << 20, 1);
    let sent = sha256(&data);

    let out = sshd
        .ssh("bob")
        .password("pw")
        .option("Ciphers=aes128-gcm@openssh.com")
        .stdin(data)
        .timeout(Duration::from_secs(180))
        .run("cat")
        .await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout.len(), 64 << 20);
    assert_eq!(sha256(&out.stdout), sent, "the bytes came back unchanged");
}

#[tokio::test]
async fn stderr_is_kept_apart_from_stdout() {
    let sshd = with_bob(&[]).await;

    let out = sshd.ssh("bob").password("pw").run("echo out; echo err >&2").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "out\n");
    assert!(out.stderr.contains("err\n"), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("out"), "stderr: {}", out.stderr);
}

// ---------------------------------------------------------------------------
// Pseudo-terminal

#[tokio::test]
async fn ssh_tt_runs_the_command_on_a_pts() {
    let sshd = MiniSshd::with_alice_key(&[]).await;

    let out = sshd.alice().tty().run("tty").await;

    let stdout = out.stdout_text();
    assert_eq!(out.code, Some(0), "stdout: {stdout:?} stderr: {}", out.stderr);
    // A terminal turns the newline into CRLF.
    let tty = stdout.strip_suffix("\r\n").unwrap_or_else(|| panic!("{stdout:?}"));
    let number = tty.strip_prefix("/dev/pts/").unwrap_or_else(|| panic!("{stdout:?}"));
    assert!(!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()), "{stdout:?}");
}

/// Runs the command in its arguments on a pseudo-terminal of 24x80 it controls;
/// once it has printed `24 80`, resizes the terminal to 40x132, sends the
/// command SIGWINCH (as a terminal emulator's resize does) and types a line;
/// then waits for `40 132`. Prints all it read; exits with the command's code.
const RESIZING_TERMINAL: &str = r#"
import fcntl, os, select, signal, struct, subprocess, sys, termios

master, slave = os.openpty()

def resize(rows, cols):
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

def controlling_terminal():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

resize(24, 80)
child = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_terminal)
os.close(slave)
seen = b""

def read_some():
    global seen
    ready, _, _ = select.select([master], [], [], 30)
    if not ready:
        sys.exit("no output for 30 s; read so far: %r" % seen)
    try:
        chunk = os.read(master, 4096)
    except OSError:
        chunk = b""
    seen += chunk
    return chunk

def expect(needle):
    while needle not in seen:
        if not read_some():
            sys.stdout.buffer.write(seen)
            sys.exit("EOF before %r" % needle)

expect(b"24 80")
resize(40, 132)
os.kill(child.pid, signal.SIGWINCH)
os.write(master, b"resized\r")
expect(b"40 132")
while read_some():
    pass
sys.stdout.buffer.write(seen)
sys.exit(child.wait())
"#;

#[tokio::test]
async fn window_change_reaches_the_pty() {
    let sshd = MiniSshd::with_alice_key(&[]).await;

    let out = sshd
        .alice()
        .tty()
        .run_under(&["python3", "-c", RESIZING_TERMINAL], "stty size; read line; stty size")
        .await;

    let stdout = out.stdout_text();
    assert_eq!(out.code, Some(0), "stdout: {stdout:?} stderr: {}", out.stderr);
    let is_size = |line: &&str| line.contains(' ') && line.bytes().all(|b| b.is_ascii_digit() || b == b' ');
    let sizes: Vec<&str> = stdout.lines().map(str::trim).filter(is_size).collect();
    assert_eq!(sizes, ["24 80", "40 132"], "{stdout:?}");
}

/// 64 MiB: several times what a terminal buffers, so the transfer runs on
/// the terminal's flow control the whole way.
const PTY_BULK: usize = 64 << 20;

/// `ssh -tt` with the escape character off (random bytes hold `~.`) and
/// stdin a pipe that stays open until ssh exits: a terminal has no EOF to
/// pass on, only input that stops.
fn bulk_tty(sshd: &MiniSshd, command: &str) -> tokio::process::Child {
    let ssh = sshd.alice().tty().option("EscapeChar=none").option("Ciphers=aes128-gcm@openssh.com");
    let mut command = ssh.command(command);
    command.stdin(Stdio::piped()).kill_on_drop(true);
    command.spawn().expect("ssh starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_carries_64_mib_to_the_client_unchanged() {
    let sshd = MiniSshd::with_alice_key(&[]).await;
    let data = pseudo_random(PTY_BULK, 7);
    let file = sshd.dir().join("bulk");
    std::fs::write(&file, &data).unwrap();

    // A raw terminal passes every byte as it is (no CRLF, no signals, no echo).
    let mut ssh = bulk_tty(&sshd, &format!("stty raw -echo -iexten && cat {}", file.display()));
    let _stdin = ssh.stdin.take();
    let out = timeout(Duration::from_secs(180), ssh.wait_with_output()).await.expect("ssh ends within 180 s").unwrap();

    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), PTY_BULK);
    assert_eq!(sha256(&out.stdout), sha256(&data), "the bytes arrived unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_carries_64_mib_from_the_client_unchanged() {
    let sshd = MiniSshd::with_alice_key(&[]).await;
    let data = pseudo_random(PTY_BULK, 8);

    // Input sent before the terminal is raw would be taken as lines and echoed:
    // the command says when it is.
    let mut ssh = bulk_tty(&sshd, &format!("stty raw -echo -iexten && echo READY && head -c {PTY_BULK} | sha256sum"));
    let mut stdin = ssh.stdin.take().unwrap();
    let mut stdout = BufReader::new(ssh.stdout.take().unwrap());
    let mut stderr = ssh.stderr.take().unwrap();
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut ready = String::new();
    within("READY", stdout.read_line(&mut ready)).await.unwrap();
    assert_eq!(ready.trim_end(), "READY");

    timeout(Duration::from_secs(180), stdin.write_all(&data)).await.expect("64 MiB sent within 180 s").unwrap();
    let mut rest = String::new();
    within("the digest", stdout.read_to_string(&mut rest)).await.unwrap();
    let status = within("ssh exits", ssh.wait()).await.unwrap();
    drop(stdin);

    let stderr = errors.await.unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let digest = rest.split_whitespace().next().unwrap_or_else(|| panic!("no digest: {rest:?}"));
    assert_eq!(digest, sha256(&data), "the command read the bytes unchanged");
}

// ---------------------------------------------------------------------------
// Environment

/// `echo "$LANG|$FOO"` as bob, sending `LANG=C` and `FOO=bar`.
async fn lang_and_foo(sshd: &MiniSshd) -> ssh_framework_tests::openssh::SshOutput {
    // ssh keeps only the first SetEnv option, so both go in one.
    sshd.ssh("bob").password("pw").option("SetEnv=LANG=C FOO=bar").run("echo \"$LANG|$FOO\"").await
}

#[tokio::test]
async fn lang_is_accepted_by_default_and_other_variables_are_refused() {
    let sshd = with_bob(&[]).await;

    let out = lang_and_foo(&sshd).await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "C|\n");
}

#[tokio::test]
async fn accept_env_lets_a_variable_through_and_replaces_the_default() {
    let sshd = with_bob(&["--accept-env=FOO"]).await;

    let out = lang_and_foo(&sshd).await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "|bar\n");
}

// ---------------------------------------------------------------------------
// Sessions at once

/// An `ssh -N -f` control master; asks it to exit when dropped.
struct ControlMaster {
    socket: PathBuf,
}

impl ControlMaster {
    /// Authenticates as alice and returns once the master is in the background
    /// with its socket listening (ssh opens the socket before it forks).
    async fn start(sshd: &MiniSshd) -> ControlMaster {
        let socket = sshd.dir().join("cm");
        let ssh = sshd
            .alice()
            .args(["-N", "-f"])
            .option("ControlMaster=yes")
            .option(&format!("ControlPath={}", socket.display()));
        // The backgrounded master keeps no inherited pipe open (it moves to
        // /dev/null), but to be sure of never waiting on it, its output goes to a file.
        let log = std::fs::File::create(sshd.dir().join("master.log")).unwrap();
        let status = within("ssh -N -f (control master)", ssh.command("").stdout(Stdio::null()).stderr(log).status())
            .await
            .unwrap();
        let master = ControlMaster { socket };
        let log = std::fs::read_to_string(sshd.dir().join("master.log")).unwrap_or_default();
        assert!(status.success(), "the control master failed: {log}");
        master
    }

    fn ssh(&self, sshd: &MiniSshd, user: &str) -> Ssh {
        sshd.ssh(user).option(&format!("ControlPath={}", self.socket.display())).option("BatchMode=yes")
    }

    /// `ssh -O COMMAND` (`check`, `exit`): answered by the master at once, over its socket.
    fn control(&self, command: &str) -> std::process::ExitStatus {
        std::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-o"])
            .arg(format!("ControlPath={}", self.socket.display()))
            .args(["-O", command, "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ssh is installed")
    }
}

impl Drop for ControlMaster {
    fn drop(&mut self) {
        if self.socket.exists() {
            self.control("exit");
        }
    }
}

/// Two execs on one connection meet at a FIFO: opening it blocks the writer
/// until a reader opens it, and the reader until a writer does. So each
/// finishes only if the other runs at the same time; one session waiting
/// for another to end would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_execs_run_at_once_on_one_connection() {
    let sshd = MiniSshd::with_alice_key(&[]).await;
    let fifo = sshd.root().join("rendezvous");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo is installed");
    assert!(made.success());
    let master = ControlMaster::start(&sshd).await;
    assert!(master.control("check").success(), "the master answers `ssh -O check`");

    let timeout = Duration::from_secs(20);
    let writer = master.ssh(&sshd, "alice").timeout(timeout).run("echo hello > rendezvous; echo wrote");
    let reader = master.ssh(&sshd, "alice").timeout(timeout).run("cat rendezvous; echo read");
    let (writer, reader) = tokio::join!(writer, reader);

    assert_eq!(writer.code, Some(0), "stderr: {}", writer.stderr);
    assert_eq!(reader.code, Some(0), "stderr: {}", reader.stderr);
    assert_eq!(writer.stdout_text(), "wrote\n");
    assert_eq!(reader.stdout_text(), "hello\nread\n");
    assert!(master.control("exit").success());
}
