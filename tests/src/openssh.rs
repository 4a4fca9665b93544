//! OpenSSH's client programs against the servers under test: one builder,
//! [`Ssh`], for `ssh`, `sftp` and `scp`, with one output type, [`SshOutput`];
//! [`Askpass`] scripts that answer password and keyboard-interactive prompts
//! (`SSH_ASKPASS` with `SSH_ASKPASS_REQUIRE=force`: OpenSSH alone, no helper program);
//! [`Running`] `ssh -v -N` forwarding sessions; client keys from `ssh-keygen`
//! and an `ssh-agent` holding one.
//!
//! Every program is started through [`program`], which fails the test at once
//! with the install command when OpenSSH's client is missing, and every
//! invocation is isolated from the user's config, agent, keys and known hosts.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ssh_framework::keys::{PrivateKey, PublicKey};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::{CLIENT_TIMEOUT, within};

/// The command that installs every program of [`OPENSSH_CLIENT`].
pub const INSTALL_OPENSSH_CLIENT: &str = "sudo apt-get install -y openssh-client";

/// The programs of Debian's `openssh-client` package the tests run.
pub const OPENSSH_CLIENT: [&str; 6] = ["ssh", "ssh-keygen", "scp", "sftp", "ssh-agent", "ssh-add"];

/// Fails the test at once, with one message naming what is missing and the
/// command that installs it, unless every program of [`OPENSSH_CLIENT`] is on `PATH`.
pub fn require_openssh_client() {
    static MISSING: OnceLock<Vec<&'static str>> = OnceLock::new();
    let missing = MISSING.get_or_init(|| OPENSSH_CLIENT.into_iter().filter(|p| !on_path(p)).collect());
    assert!(
        missing.is_empty(),
        "these tests drive OpenSSH's client, but {} not on PATH; install it with: {INSTALL_OPENSSH_CLIENT}",
        missing.join(", ") + if missing.len() == 1 { " is" } else { " are" },
    );
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// A command for `name`, one of [`OPENSSH_CLIENT`], after [`require_openssh_client`]:
/// no agent or askpass from the test's environment, stdin `/dev/null`, killed on drop.
pub fn program(name: &str) -> tokio::process::Command {
    require_openssh_client();
    isolated(name)
}

/// `name` with no agent or askpass from the test's environment, stdin `/dev/null`, killed on drop.
fn isolated(name: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(name);
    cmd.env_remove("SSH_AUTH_SOCK")
        .env_remove("SSH_ASKPASS")
        .env_remove("SSH_ASKPASS_REQUIRE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// The `-o` options (after `-F /dev/null`) that keep every invocation away
/// from the user's config, agent, keys, known hosts and control masters.
pub const ISOLATION: [&str; 8] = [
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "GlobalKnownHostsFile=/dev/null",
    "LogLevel=INFO",
    "ConnectTimeout=20",
    "IdentityAgent=none",
    "ControlMaster=no",
    "ControlPath=none",
];

/// Which client program an [`Ssh`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Ssh,
    Sftp,
    Scp,
}

/// An invocation of OpenSSH's `ssh`, `sftp` or `scp` against `USER@127.0.0.1:PORT`,
/// isolated from the user's config, agent, keys and known hosts.
#[derive(Debug, Clone)]
pub struct Ssh {
    program: Program,
    port: u16,
    user: String,
    tty: bool,
    args: Vec<OsString>,
    options: Vec<String>,
    defaults: Vec<String>,
    env: Vec<(OsString, OsString)>,
    askpass: Option<Askpass>,
    current_dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Ssh {
    /// `ssh -T -p PORT -l USER 127.0.0.1`, with no config file, agent or known hosts.
    pub fn new(port: u16, user: &str) -> Self {
        Ssh::with_program(Program::Ssh, port, user)
    }

    /// `sftp -P PORT`; run it with [`batch`](Ssh::batch).
    pub fn sftp(port: u16, user: &str) -> Self {
        Ssh::with_program(Program::Sftp, port, user)
    }

    /// `scp -P PORT`; run it with [`copy`](Ssh::copy).
    pub fn scp(port: u16, user: &str) -> Self {
        Ssh::with_program(Program::Scp, port, user)
    }

    fn with_program(program: Program, port: u16, user: &str) -> Self {
        Ssh {
            program,
            port,
            user: user.to_owned(),
            tty: false,
            args: Vec::new(),
            options: Vec::new(),
            defaults: ISOLATION.map(str::to_owned).to_vec(),
            env: Vec::new(),
            askpass: None,
            current_dir: None,
            stdin: None,
            timeout: CLIENT_TIMEOUT,
        }
    }

    /// Adds `-o OPTION` (`Name=value`). Explicit options win over the defaults
    /// that [`password`](Ssh::password) and friends add (ssh keeps the first value).
    pub fn option(mut self, option: &str) -> Self {
        self.options.push(option.to_owned());
        self
    }

    /// Adds command-line arguments (`-A`, `-L SPEC`, ...) before the options and the host.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((name.into(), value.as_ref().to_owned()));
        self
    }

    /// Answers the password prompt with `password` (through an [`Askpass`]),
    /// trying only password authentication, once.
    pub fn password(mut self, password: &str) -> Self {
        self.askpass = Some(Askpass::always(password));
        self.defaults.extend(
            ["PreferredAuthentications=password", "PubkeyAuthentication=no", "NumberOfPasswordPrompts=1"]
                .map(str::to_owned),
        );
        self
    }

    /// Tries only password authentication, asking up to `prompts` passwords
    /// (of the [`askpass`](Ssh::askpass) script).
    pub fn password_prompts(self, prompts: u32) -> Self {
        self.option("PreferredAuthentications=password")
            .option("PubkeyAuthentication=no")
            .option(&format!("NumberOfPasswordPrompts={prompts}"))
    }

    /// Tries only keyboard-interactive authentication, once (prompts go to the
    /// [`askpass`](Ssh::askpass) script).
    pub fn keyboard_interactive_only(self) -> Self {
        self.option("PreferredAuthentications=keyboard-interactive")
            .option("PubkeyAuthentication=no")
            .option("NumberOfPasswordPrompts=1")
    }

    /// Offers only this private key file (`-i`, `IdentitiesOnly=yes`).
    pub fn identity(mut self, key: &Path) -> Self {
        self.options.push(format!("IdentityFile={}", key.display()));
        self.defaults.push("IdentitiesOnly=yes".to_owned());
        self
    }

    /// Answers every prompt (password and keyboard-interactive) with this askpass script.
    pub fn askpass(mut self, askpass: &Askpass) -> Self {
        self.askpass = Some(askpass.clone());
        self
    }

    /// Uses the agent listening on `socket` (`SSH_AUTH_SOCK`, `IdentityAgent`):
    /// the one `-A` forwards.
    pub fn agent(self, socket: &Path) -> Self {
        self.option(&format!("IdentityAgent={}", socket.display())).env("SSH_AUTH_SOCK", socket)
    }

    /// Forces a pseudo-terminal (`-tt` instead of `-T`).
    pub fn tty(mut self) -> Self {
        self.tty = true;
        self
    }

    /// Runs the program in `dir` (where `sftp` and `scp` find local files).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.current_dir = Some(dir.to_owned());
        self
    }

    /// Feeds `data` to the program's stdin (otherwise stdin is `/dev/null`).
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// Overrides [`CLIENT_TIMEOUT`] for this invocation.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program and its arguments, ending with `words`: for `ssh` the host
    /// and the command (if not empty), for `sftp` and `scp` what follows the options.
    fn argv(&self, words: &[OsString]) -> Vec<OsString> {
        let port = self.port.to_string();
        let mut argv: Vec<OsString> = match self.program {
            Program::Ssh => {
                let tty = if self.tty { "-tt" } else { "-T" };
                ["ssh", "-F", "/dev/null", tty, "-p", port.as_str(), "-l", self.user.as_str()].map(OsString::from).to_vec()
            }
            Program::Sftp => ["sftp", "-F", "/dev/null", "-P", port.as_str()].map(OsString::from).to_vec(),
            Program::Scp => ["scp", "-F", "/dev/null", "-P", port.as_str()].map(OsString::from).to_vec(),
        };
        argv.extend(self.args.iter().cloned());
        for option in self.options.iter().chain(&self.defaults) {
            argv.extend(["-o".into(), option.into()]);
        }
        if self.program == Program::Ssh {
            argv.push("127.0.0.1".into());
        }
        argv.extend(words.iter().cloned());
        argv
    }

    /// `PREFIX... ssh ... 127.0.0.1 COMMAND` (or `sftp`, `scp` with `words`) as a
    /// command, with this invocation's environment and directory, stdin
    /// `/dev/null` and stdout, stderr piped. Keep `self` alive while it runs:
    /// it owns the askpass script.
    fn command_under(&self, prefix: &[&str], words: &[OsString]) -> tokio::process::Command {
        let argv = self.argv(words);
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                require_openssh_client();
                let mut cmd = isolated(first);
                cmd.args(rest).args(&argv);
                cmd
            }
            None => {
                let mut cmd = program(argv[0].to_str().expect("a program name"));
                cmd.args(&argv[1..]);
                cmd
            }
        };
        if let Some(askpass) = &self.askpass {
            cmd.envs(askpass.env());
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// `ssh ... 127.0.0.1 COMMAND` as a command to spawn by hand (see [`run`](Ssh::run)
    /// for what it sets up). Keep `self` alive while it runs: it owns the askpass script.
    pub fn command(&self, command: &str) -> tokio::process::Command {
        self.command_under(&[], &self.ssh_words(command))
    }

    fn ssh_words(&self, command: &str) -> Vec<OsString> {
        assert_eq!(self.program, Program::Ssh, "a command is run by ssh; use batch or copy for sftp and scp");
        if command.is_empty() { Vec::new() } else { vec![command.into()] }
    }

    /// Runs `ssh ... 127.0.0.1 COMMAND` to completion, killing it after the timeout (which fails the test).
    pub async fn run(self, command: &str) -> SshOutput {
        let words = self.ssh_words(command);
        self.finish(&format!("ssh {command:?}"), &[], &words).await
    }

    /// Runs `PREFIX... ssh ... 127.0.0.1 COMMAND`: ssh under another program
    /// (a terminal emulator, say) that takes ssh's command line as its arguments.
    pub async fn run_under(self, prefix: &[&str], command: &str) -> SshOutput {
        let words = self.ssh_words(command);
        self.finish(&format!("{prefix:?} ssh {command:?}"), prefix, &words).await
    }

    /// Runs `sftp -b BATCH USER@127.0.0.1` with these commands (one per line);
    /// a failing command ends the batch unless it starts with `-`.
    pub async fn batch(self, batch: &str) -> SshOutput {
        assert_eq!(self.program, Program::Sftp, "a batch is run by sftp");
        let mut file = tempfile::NamedTempFile::new().expect("a temp file for the batch");
        std::io::Write::write_all(&mut file, batch.as_bytes()).expect("writing the batch");
        let words: [OsString; 3] = ["-b".into(), file.path().into(), format!("{}@127.0.0.1", self.user).into()];
        self.finish(&format!("sftp -b with:\n{batch}"), &[], &words).await
    }

    /// Runs `scp ARGS`, where `REMOTE:` in an argument stands for `USER@127.0.0.1:`.
    pub async fn copy(self, args: &[&str]) -> SshOutput {
        assert_eq!(self.program, Program::Scp, "a copy is run by scp");
        let remote = format!("{}@127.0.0.1:", self.user);
        let words: Vec<OsString> = args.iter().map(|a| a.replace("REMOTE:", &remote).into()).collect();
        self.finish(&format!("scp {args:?}"), &[], &words).await
    }

    async fn finish(mut self, what: &str, prefix: &[&str], words: &[OsString]) -> SshOutput {
        let mut cmd = self.command_under(prefix, words);
        let stdin = self.stdin.take();
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {what}: {e}"));
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                // The program may exit before reading everything; that is the test's to judge.
                let _ = pipe.write_all(&data).await;
                let _ = pipe.shutdown().await;
            });
        }
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(output) => output.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
            Err(_) => panic!("{what} timed out after {:?}", self.timeout),
        };
        SshOutput {
            code: output.status.code(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts `ssh -v ARGS -N 127.0.0.1` and keeps it running (killed on drop),
    /// for forwards; its `-v` messages tell when it is ready.
    pub fn spawn_forwarding(self) -> Running {
        let ssh = self.args(["-v", "-N"]);
        let mut child = ssh.command("").spawn().expect("starting ssh -N");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(String::new()));
        let log_writer = log.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                log_writer.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Running { child, lines, log, _ssh: ssh }
    }
}

/// What a finished `ssh`, `sftp` or `scp` did.
#[derive(Clone)]
pub struct SshOutput {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, lossily decoded.
    pub stderr: String,
}

impl SshOutput {
    /// Stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fails the test unless the program exited 0.
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "stdout:\n{}\nstderr:\n{}", self.stdout_text(), self.stderr);
        self
    }

    /// Fails the test if the program exited 0.
    pub fn failed(&self) -> &Self {
        assert_ne!(self.code, Some(0), "expected a failure; stdout:\n{}\nstderr:\n{}", self.stdout_text(), self.stderr);
        self
    }
}

impl fmt::Debug for SshOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshOutput")
            .field("code", &self.code)
            .field("stdout", &self.stdout_text())
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// A running `ssh -v -N`, with its stderr as lines.
#[derive(Debug)]
pub struct Running {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<String>>,
    _ssh: Ssh,
}

impl Running {
    /// Waits for a stderr line containing `needle` and returns it.
    pub async fn line(&mut self, needle: &str) -> String {
        let found = within(&format!("ssh to print {needle:?}"), async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        found.unwrap_or_else(|| panic!("ssh exited before printing {needle:?}; stderr:\n{}", self.stderr()))
    }

    /// Waits until the session is up ("Entering interactive session").
    pub async fn session_up(&mut self) {
        self.line("Entering interactive session").await;
    }

    /// The port of ssh's "Allocated port N for remote forward to ..." message.
    pub async fn allocated_port(&mut self) -> u16 {
        let line = self.line("Allocated port ").await;
        line.split("Allocated port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"))
    }

    /// Everything ssh printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether ssh is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("polling ssh").is_none()
    }

    /// Stops ssh.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// An `SSH_ASKPASS` script that answers prompts by their text and logs every prompt it was shown.
#[derive(Debug, Clone)]
pub struct Askpass {
    script: PathBuf,
    log: PathBuf,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl Askpass {
    /// Writes the script into `dir`. Each prompt is answered with the answer
    /// of the first `(needle, answer)` whose needle occurs in the prompt text,
    /// or with `fallback`. Needles and answers may not contain `'`.
    pub fn new(dir: &Path, answers: &[(&str, &str)], fallback: &str) -> Askpass {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let script = dir.join(format!("askpass-{n}.sh"));
        let log = dir.join(format!("askpass-{n}.log"));
        let quote = |s: &str| {
            assert!(!s.contains('\''), "askpass text may not contain a single quote: {s:?}");
            format!("'{s}'")
        };
        let mut text = format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\ncase \"$1\" in\n", quote(&log.display().to_string()));
        for (needle, answer) in answers {
            text += &format!("  *{}*) printf '%s\\n' {} ;;\n", quote(needle), quote(answer));
        }
        text += &format!("  *) printf '%s\\n' {} ;;\nesac\n", quote(fallback));
        std::fs::write(&script, text).expect("writing the askpass script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Askpass { script, log, _dir: None }
    }

    /// A script in a temp dir of its own that answers every prompt with `answer`.
    pub fn always(answer: &str) -> Askpass {
        let dir = tempfile::tempdir().expect("a temp dir");
        let askpass = Askpass::new(dir.path(), &[], answer);
        Askpass { _dir: Some(Arc::new(dir)), ..askpass }
    }

    /// The environment that makes `ssh` ask this script, whether or not it has a terminal.
    pub fn env(&self) -> [(&'static str, OsString); 3] {
        [
            ("SSH_ASKPASS", self.script.clone().into()),
            ("SSH_ASKPASS_REQUIRE", "force".into()),
            ("DISPLAY", ":0".into()),
        ]
    }

    /// The prompts shown so far, one per call.
    pub fn prompts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

/// A client key pair made by `ssh-keygen`.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// The private key file (for `ssh -i`); the public key is beside it, with `.pub`.
    pub path: PathBuf,
    /// The private key (for russh's client).
    pub private: Arc<PrivateKey>,
    /// The public key (for the server's authorized set).
    pub public: PublicKey,
}

impl ClientKey {
    /// The public key file `ssh-keygen` wrote beside the private one.
    pub fn public_file(&self) -> PathBuf {
        self.path.with_extension("pub")
    }
}

/// Generates an ed25519 key with `ssh-keygen` as `dir/name`.
pub async fn keygen(dir: &Path, name: &str) -> ClientKey {
    let path = dir.join(name);
    let mut cmd = program("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&path);
    let status = within("ssh-keygen", cmd.status()).await.expect("running ssh-keygen");
    assert!(status.success(), "ssh-keygen failed: {status}");
    let private = PrivateKey::read_openssh_file(&path).expect("ssh-keygen wrote a readable key");
    let public = private.public_key().clone();
    ClientKey { path, private: Arc::new(private), public }
}

/// The SHA-256 fingerprint (`SHA256:...`) `ssh-keygen -lf` prints for a key file.
pub async fn fingerprint(path: &Path) -> String {
    let mut cmd = program("ssh-keygen");
    cmd.arg("-lf").arg(path);
    let out = within("ssh-keygen -lf", cmd.output()).await.expect("running ssh-keygen");
    assert!(out.status.success(), "ssh-keygen -lf: {}", String::from_utf8_lossy(&out.stderr));
    // "256 SHA256:... comment (ED25519)": the second field.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let fingerprint = text.split_whitespace().nth(1).unwrap_or_else(|| panic!("no fingerprint in {text:?}")).to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{text}");
    fingerprint
}

/// An `ssh-agent -D` holding one fresh key named `agent-held-key`; killed on drop.
#[derive(Debug)]
pub struct Agent {
    child: tokio::process::Child,
    /// The agent's socket (`SSH_AUTH_SOCK`).
    pub socket: PathBuf,
    /// The fingerprint of the key it holds.
    pub fingerprint: String,
}

impl Agent {
    /// Starts the agent on `dir/agent.sock` and adds a key generated in `dir`.
    pub async fn with_a_key(dir: &Path) -> Agent {
        let key = keygen(dir, "agent-held-key").await;
        let socket = dir.join("agent.sock");
        let mut cmd = program("ssh-agent");
        cmd.arg("-D").arg("-a").arg(&socket).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("starting ssh-agent");
        // ssh-agent -D prints its environment once the socket listens.
        let mut first_line = String::new();
        within("ssh-agent to start", BufReader::new(child.stdout.take().unwrap()).read_line(&mut first_line))
            .await
            .unwrap();
        assert!(first_line.contains("SSH_AUTH_SOCK"), "{first_line}");
        let mut add = program("ssh-add");
        add.arg(&key.path).env("SSH_AUTH_SOCK", &socket);
        let added = within("ssh-add", add.output()).await.unwrap();
        assert!(added.status.success(), "ssh-add: {}", String::from_utf8_lossy(&added.stderr));
        let fingerprint = fingerprint(&key.path).await;
        Agent { child, socket, fingerprint }
    }

    /// Stops the agent.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}
