//! mini-sshd as OpenSSH's `ssh` sees it: the startup line and host key, each
//! authentication method and the `--require` chain, exec on pipes (exit codes,
//! signals, bulk data, stderr), the pty and its window changes, AcceptEnv, and
//! two sessions at once on one connection through a control master.
//!
//! Each test builds mini-sshd in-process from its command line (on
//! 127.0.0.1:0, `--root` and `--host-key` in a temp dir, a 10 ms rejection
//! delay unless the delay is what is tested) and runs every client under a timeout.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use sha2::{Digest, Sha256};
use ssh_framework_tests::{Askpass, ClientKey, RusshClient, Ssh, init_tracing, keygen, pseudo_random, read_to_close, within};

/// A mini-sshd serving `BASE/root`, its host key at `BASE/host_key`.
struct MiniSshd {
    port: u16,
    line: String,
    base: tempfile::TempDir,
    _task: tokio::task::JoinHandle<Result<(), ssh_framework::Error>>,
}

impl MiniSshd {
    /// Starts mini-sshd with `extra` options in a fresh temp dir.
    async fn start(extra: &[String]) -> MiniSshd {
        MiniSshd::start_in(tempfile::tempdir().unwrap(), extra).await
    }

    /// Starts mini-sshd with `extra` options in `base`, which may already hold
    /// files the options name (authorized_keys).
    async fn start_in(base: tempfile::TempDir, extra: &[String]) -> MiniSshd {
        init_tracing();
        let root = base.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let mut argv = vec![
            "mini-sshd".to_owned(),
            "--listen=127.0.0.1:0".to_owned(),
            format!("--host-key={}", base.path().join("host_key").display()),
            format!("--root={}", root.display()),
        ];
        if !extra.iter().any(|a| a.starts_with("--rejection-delay-ms")) {
            argv.push("--rejection-delay-ms=10".to_owned());
        }
        argv.extend(extra.iter().cloned());
        let (server, line) =
            example_mini_sshd::build(example_mini_sshd::Args::parse_from(argv)).await.expect("mini-sshd builds");
        let port = server.local_addrs()[0].port();
        MiniSshd { port, line, base, _task: tokio::spawn(server.run()) }
    }

    fn dir(&self) -> &Path {
        self.base.path()
    }

    fn root(&self) -> PathBuf {
        self.base.path().join("root")
    }

    fn host_key(&self) -> PathBuf {
        self.base.path().join("host_key")
    }

    fn ssh(&self, user: &str) -> Ssh {
        Ssh::new(self.port, user)
    }
}

/// `--user bob:pw`.
async fn with_bob(extra: &[&str]) -> MiniSshd {
    let mut argv = vec!["--user=bob:pw".to_owned()];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    MiniSshd::start(&argv).await
}

/// `--authorized-keys alice:BASE/alice.pub`, with alice's key.
async fn with_alice_key() -> (MiniSshd, ClientKey) {
    let base = tempfile::tempdir().unwrap();
    let key = keygen(base.path(), "alice").await;
    let argv = [format!("--authorized-keys=alice:{}.pub", key.path.display())];
    (MiniSshd::start_in(base, &argv).await, key)
}

/// The SHA-256 fingerprint `ssh-keygen -lf` prints for a key file.
async fn keygen_fingerprint(path: &Path) -> String {
    let out = within(
        "ssh-keygen -lf",
        tokio::process::Command::new("ssh-keygen").arg("-lf").arg(path).kill_on_drop(true).output(),
    )
    .await
    .expect("ssh-keygen is installed");
    assert!(out.status.success(), "ssh-keygen -lf: {}", String::from_utf8_lossy(&out.stderr));
    // "256 SHA256:... comment (ED25519)"
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).expect("a fingerprint field").to_owned()
}

/// `ssh` options that keep a hand-built invocation away from the user's config, agent and known hosts.
const ISOLATED: [&str; 10] = [
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "IdentityAgent=none",
    "-o",
    "LogLevel=ERROR",
];

/// `ssh -tt` with alice's key and nothing else: for tests that need a pty,
/// which [`Ssh`] (always `-T`) does not request.
fn ssh_tt(sshd: &MiniSshd, key: &ClientKey) -> Vec<String> {
    let mut argv: Vec<String> = ["ssh", "-tt"].iter().chain(&ISOLATED).map(|s| (*s).to_owned()).collect();
    argv.extend(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i"].map(str::to_owned));
    argv.push(key.path.display().to_string());
    argv.extend(["-p".to_owned(), sshd.port.to_string(), "alice@127.0.0.1".to_owned()]);
    argv
}

async fn output(what: &str, argv: &[String], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(env.iter().copied())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    within(what, cmd.output()).await.expect("the program is installed")
}

// ---------------------------------------------------------------------------
// Startup and host key

#[tokio::test]
async fn startup_line_names_port_fingerprint_and_a_demo_login_that_works() {
    let sshd = MiniSshd::start(&[]).await;
    let port = sshd.port;
    let fingerprint = keygen_fingerprint(&sshd.host_key().with_extension("pub")).await;

    let expected_start = format!("mini-sshd listening on 127.0.0.1:{port} (host key {fingerprint}); try: ");
    let try_part = sshd.line.strip_prefix(&expected_start).unwrap_or_else(|| panic!("{:?}", sshd.line));
    let (command, rest) = try_part.split_once(" (password: ").unwrap_or_else(|| panic!("{:?}", sshd.line));
    let password = rest.strip_suffix(')').unwrap_or_else(|| panic!("{:?}", sshd.line));
    assert_eq!(command, format!("ssh -p {port} demo@127.0.0.1"));
    assert_eq!(password.len(), 16, "{:?}", sshd.line);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()), "{:?}", sshd.line);

    // The printed command itself, with only isolation options added after `ssh`.
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut argv = vec!["sshpass".to_owned(), "-e".to_owned(), words[0].to_owned()];
    argv.extend(ISOLATED.map(str::to_owned));
    argv.extend(["-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1"].map(str::to_owned));
    argv.extend(words[1..].iter().map(|s| (*s).to_owned()));
    argv.push("echo ok".to_owned());
    let out = output("the startup line's ssh command", &argv, &[("SSHPASS", password)]).await;

    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[tokio::test]
async fn host_key_is_generated_private_with_a_pub_beside_it_and_reused() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let host_key = base.path().join("host_key");
    let argv = [
        "mini-sshd".to_owned(),
        "--listen=127.0.0.1:0".to_owned(),
        format!("--host-key={}", host_key.display()),
        format!("--root={}", root.display()),
        "--user=bob:pw".to_owned(),
    ];
    assert!(!host_key.exists());

    let (first, first_line) = example_mini_sshd::build(example_mini_sshd::Args::parse_from(&argv)).await.unwrap();

    let mode = std::fs::metadata(&host_key).expect("the host key was written").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let fingerprint = keygen_fingerprint(&base.path().join("host_key.pub")).await;
    assert_eq!(first.host_key_fingerprints(), std::slice::from_ref(&fingerprint));
    assert!(first_line.contains(&format!("(host key {fingerprint})")), "{first_line}");
    let written = std::fs::read(&host_key).unwrap();
    drop(first);

    let (second, second_line) = example_mini_sshd::build(example_mini_sshd::Args::parse_from(&argv)).await.unwrap();

    assert_eq!(second.host_key_fingerprints(), std::slice::from_ref(&fingerprint));
    assert!(second_line.contains(&format!("(host key {fingerprint})")), "{second_line}");
    assert_eq!(std::fs::read(&host_key).unwrap(), written, "the key file was left as it was");

    // And it is the key ssh is shown: strict checking against the .pub passes.
    let port = second.local_addrs()[0].port();
    let _task = tokio::spawn(second.run());
    let known_hosts = base.path().join("known_hosts");
    let public = std::fs::read_to_string(base.path().join("host_key.pub")).unwrap();
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {public}")).unwrap();
    let out = Ssh::new(port, "bob")
        .option("StrictHostKeyChecking=yes")
        .option(&format!("UserKnownHostsFile={}", known_hosts.display()))
        .password("pw")
        .run("echo ok")
        .await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
}

// ---------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn user_logs_in_with_the_right_password() {
    let sshd = with_bob(&[]).await;

    let out = sshd.ssh("bob").password("pw").run("echo ok").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let sshd = with_bob(&[]).await;

    let out = sshd.ssh("bob").password("wrong").run("echo ok").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn max_auth_tries_disconnects_with_too_many_authentication_failures() {
    let sshd = with_bob(&["--max-auth-tries=2"]).await;
    // sshpass gives up at the second prompt; an askpass script keeps answering.
    let askpass = Askpass::new(sshd.dir(), &[], "wrong");

    let out = sshd
        .ssh("bob")
        .askpass(&askpass)
        .option("PreferredAuthentications=password")
        .option("PubkeyAuthentication=no")
        .option("NumberOfPasswordPrompts=3")
        .run("echo ok")
        .await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Too many authentication failures"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

/// sshd answers the attempt that reaches MaxAuthTries with the disconnect
/// alone, so ssh never asks for a password it could not use.
#[tokio::test]
#[ignore = "bug: the framework answers the last failure with USERAUTH_FAILURE before its DISCONNECT \
            (ssh-framework/src/connection.rs, fn fail), so ssh asks a third password that is never checked"]
async fn max_auth_tries_asks_for_no_password_it_will_not_check() {
    let sshd = with_bob(&["--max-auth-tries=2"]).await;
    let askpass = Askpass::new(sshd.dir(), &[], "wrong");

    let out = sshd
        .ssh("bob")
        .askpass(&askpass)
        .option("PreferredAuthentications=password")
        .option("PubkeyAuthentication=no")
        .option("NumberOfPasswordPrompts=3")
        .run("echo ok")
        .await;

    assert!(out.stderr.contains("Too many authentication failures"), "stderr: {}", out.stderr);
    assert_eq!(askpass.prompts().len(), 2, "{:?}", askpass.prompts());
}

#[tokio::test]
async fn a_wrong_password_is_answered_after_rejection_delay_ms() {
    let delay = Duration::from_millis(400);
    let sshd = with_bob(&["--rejection-delay-ms=400"]).await;
    let mut client = RusshClient::connect(([127, 0, 0, 1], sshd.port).into()).await;

    let started = Instant::now();
    let wrong = within("wrong password", client.handle.authenticate_password("bob", "guess")).await.unwrap();
    assert!(!wrong.success());
    assert!(started.elapsed() >= delay, "a wrong password was answered after {:?}", started.elapsed());

    let right = within("right password", client.handle.authenticate_password("bob", "pw")).await.unwrap();
    assert!(right.success(), "{right:?}");
}

#[tokio::test]
async fn each_listed_authorized_key_logs_in_and_an_unlisted_key_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let keys = [
        keygen(base.path(), "laptop").await,
        keygen(base.path(), "desktop").await,
        keygen(base.path(), "phone").await,
    ];
    let stranger = keygen(base.path(), "stranger").await;
    let mut file = String::from("# alice's keys\n");
    for key in &keys {
        file += &std::fs::read_to_string(key.path.with_extension("pub")).unwrap();
    }
    let authorized_keys = base.path().join("authorized_keys");
    std::fs::write(&authorized_keys, file).unwrap();
    let sshd = MiniSshd::start_in(base, &[format!("--authorized-keys=alice:{}", authorized_keys.display())]).await;

    for key in [&keys[0], &keys[2]] {
        let out = sshd.ssh("alice").identity(&key.path).option("BatchMode=yes").run("echo ok").await;
        assert_eq!(out.code, Some(0), "{}: stderr: {}", key.path.display(), out.stderr);
        assert_eq!(out.stdout_text(), "ok\n");
    }

    let out = sshd.ssh("alice").identity(&stranger.path).option("BatchMode=yes").run("echo ok").await;
    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied (publickey)"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

fn kbd_only(ssh: Ssh) -> Ssh {
    ssh.option("PreferredAuthentications=keyboard-interactive")
        .option("PubkeyAuthentication=no")
        .option("NumberOfPasswordPrompts=1")
}

#[tokio::test]
async fn keyboard_interactive_code_logs_in() {
    let sshd = MiniSshd::start(&["--kbd-interactive=carol:123456".to_owned()]).await;
    let askpass = Askpass::new(sshd.dir(), &[("Verification code: ", "123456")], "wrong");

    let out = kbd_only(sshd.ssh("carol").askpass(&askpass)).run("echo ok").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
    let prompts = askpass.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(prompts[0].ends_with("Verification code: "), "{prompts:?}");
}

#[tokio::test]
async fn keyboard_interactive_refuses_a_wrong_code() {
    let sshd = MiniSshd::start(&["--kbd-interactive=carol:123456".to_owned()]).await;
    let askpass = Askpass::new(sshd.dir(), &[], "000000");

    let out = kbd_only(sshd.ssh("carol").askpass(&askpass)).run("echo ok").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(askpass.prompts().len(), 1, "{:?}", askpass.prompts());
}

/// dave has a key and a code and must pass both, the key first.
async fn with_dave_chain() -> (MiniSshd, ClientKey) {
    let base = tempfile::tempdir().unwrap();
    let key = keygen(base.path(), "dave").await;
    let argv = [
        format!("--authorized-keys=dave:{}.pub", key.path.display()),
        "--kbd-interactive=dave:123456".to_owned(),
        "--require=dave:publickey,keyboard-interactive".to_owned(),
    ];
    (MiniSshd::start_in(base, &argv).await, key)
}

#[tokio::test]
async fn require_chain_logs_in_with_key_then_code() {
    let (sshd, key) = with_dave_chain().await;
    let askpass = Askpass::new(sshd.dir(), &[("Verification code: ", "123456")], "wrong");

    let out = sshd
        .ssh("dave")
        .identity(&key.path)
        .askpass(&askpass)
        .option("PreferredAuthentications=publickey,keyboard-interactive")
        .run("echo ok")
        .await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
    assert_eq!(askpass.prompts().len(), 1, "{:?}", askpass.prompts());
}

#[tokio::test]
async fn require_chain_refuses_the_key_alone() {
    let (sshd, key) = with_dave_chain().await;

    let out = sshd
        .ssh("dave")
        .identity(&key.path)
        .option("BatchMode=yes")
        .option("PreferredAuthentications=publickey")
        .run("echo ok")
        .await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    // The key passed (partial success): what is left is the code.
    assert!(out.stderr.contains("Permission denied (keyboard-interactive)"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

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
    let mut client = RusshClient::connect(([127, 0, 0, 1], sshd.port).into()).await;
    let auth = within("password", client.handle.authenticate_password("bob", "pw")).await.unwrap();
    assert!(auth.success(), "{auth:?}");
    let mut channel = client.exec("kill -9 $$").await;
    let transcript = read_to_close(&mut channel).await;
    assert_eq!(transcript.ending(), ["exit-signal KILL", "eof", "close"], "{transcript:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_returns_64_mib_unchanged() {
    let sshd = with_bob(&[]).await;
    let data = pseudo_random(64 << 20);
    let sent = Sha256::digest(&data);

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
    assert_eq!(Sha256::digest(&out.stdout), sent, "the bytes came back unchanged");
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
    let (sshd, key) = with_alice_key().await;
    let mut argv = ssh_tt(&sshd, &key);
    argv.push("tty".to_owned());

    let out = output("ssh -tt tty", &argv, &[]).await;

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout:?} stderr: {}", String::from_utf8_lossy(&out.stderr));
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
    let (sshd, key) = with_alice_key().await;
    let mut argv = vec!["python3".to_owned(), "-c".to_owned(), RESIZING_TERMINAL.to_owned()];
    argv.extend(ssh_tt(&sshd, &key));
    argv.push("stty size; read line; stty size".to_owned());

    let out = output("ssh -tt under a resizing terminal", &argv, &[]).await;

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout:?} stderr: {}", String::from_utf8_lossy(&out.stderr));
    let is_size = |line: &&str| line.contains(' ') && line.bytes().all(|b| b.is_ascii_digit() || b == b' ');
    let sizes: Vec<&str> = stdout.lines().map(str::trim).filter(is_size).collect();
    assert_eq!(sizes, ["24 80", "40 132"], "{stdout:?}");
}

// ---------------------------------------------------------------------------
// Environment

#[tokio::test]
async fn lang_is_accepted_by_default_and_other_variables_are_refused() {
    let sshd = with_bob(&[]).await;

    // ssh keeps only the first SetEnv option, so both go in one.
    let out = sshd.ssh("bob").password("pw").option("SetEnv=LANG=C FOO=bar").run("echo \"$LANG|$FOO\"").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "C|\n");
}

#[tokio::test]
async fn accept_env_lets_a_variable_through_and_replaces_the_default() {
    let sshd = with_bob(&["--accept-env=FOO"]).await;

    let out = sshd.ssh("bob").password("pw").option("SetEnv=LANG=C FOO=bar").run("echo \"$LANG|$FOO\"").await;

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
    /// Authenticates and returns once the master is in the background with its socket listening
    /// (ssh opens the socket before it forks).
    async fn start(sshd: &MiniSshd, key: &ClientKey) -> ControlMaster {
        let socket = sshd.dir().join("cm");
        let mut argv: Vec<String> = ["ssh", "-N", "-f"].iter().chain(&ISOLATED).map(|s| (*s).to_owned()).collect();
        argv.extend(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ControlMaster=yes"].map(str::to_owned));
        argv.extend(["-o".to_owned(), format!("ControlPath={}", socket.display()), "-i".to_owned()]);
        argv.push(key.path.display().to_string());
        argv.extend(["-p".to_owned(), sshd.port.to_string(), "alice@127.0.0.1".to_owned()]);
        // The backgrounded master keeps no inherited pipe open (it moves to
        // /dev/null), but to be sure of never waiting on it, its output goes to a file.
        let log = std::fs::File::create(sshd.dir().join("master.log")).unwrap();
        let status = within(
            "ssh -N -f (control master)",
            tokio::process::Command::new("ssh")
                .args(&argv[1..])
                .env_remove("SSH_AUTH_SOCK")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .status(),
        )
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
    let (sshd, key) = with_alice_key().await;
    let fifo = sshd.root().join("rendezvous");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo is installed");
    assert!(made.success());
    let master = ControlMaster::start(&sshd, &key).await;
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
