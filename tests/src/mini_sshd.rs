//! [`MiniSshd`]: the mini-sshd example built in-process from its command line,
//! on 127.0.0.1:0, with `--root` and `--host-key` in a temp dir of its own.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use example_mini_sshd::{Args, build};

use crate::openssh::{ClientKey, Ssh, keygen};
use crate::init_tracing;

/// mini-sshd's arguments for `BASE` (made by [`MiniSshd::base`]): listening on
/// 127.0.0.1:0, `--root BASE/root`, `--host-key BASE/host_key`, a 10 ms
/// rejection delay unless `flags` set one, then `flags`.
pub fn args(base: &Path, flags: &[&str]) -> Args {
    let mut argv = vec![
        "mini-sshd".to_owned(),
        "--listen=127.0.0.1:0".to_owned(),
        format!("--host-key={}", base.join("host_key").display()),
        format!("--root={}", base.join("root").display()),
    ];
    if !flags.iter().any(|a| a.starts_with("--rejection-delay-ms")) {
        argv.push("--rejection-delay-ms=10".to_owned());
    }
    argv.extend(flags.iter().map(|s| (*s).to_owned()));
    Args::parse_from(argv)
}

/// A mini-sshd serving `BASE/root`, its host key at `BASE/host_key`, where
/// `BASE` is a temp dir under `/tmp` with a short path (agent and X11 sockets
/// must stay under ~100 bytes).
pub struct MiniSshd {
    addr: SocketAddr,
    line: String,
    key: Option<ClientKey>,
    base: tempfile::TempDir,
    _task: tokio::task::JoinHandle<Result<(), ssh_framework::Error>>,
}

impl fmt::Debug for MiniSshd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniSshd").field("addr", &self.addr).field("base", &self.base.path()).finish()
    }
}

impl MiniSshd {
    /// A fresh temp dir to start a mini-sshd in, for tests that put files
    /// (keys, authorized_keys) there first.
    pub fn base() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("mini-sshd").tempdir_in("/tmp").expect("a temp dir in /tmp")
    }

    /// Starts mini-sshd with `flags` in a fresh temp dir.
    pub async fn start(flags: &[&str]) -> MiniSshd {
        MiniSshd::start_in(MiniSshd::base(), flags).await
    }

    /// Starts mini-sshd with `flags` in `base`, which may already hold files
    /// the flags name. A 10 ms rejection delay is added unless `flags` set one.
    pub async fn start_in(base: tempfile::TempDir, flags: &[&str]) -> MiniSshd {
        init_tracing();
        std::fs::create_dir(base.path().join("root")).expect("creating BASE/root");
        let (server, line) = build(args(base.path(), flags)).await.expect("mini-sshd builds");
        let addr = server.local_addrs()[0];
        MiniSshd { addr, line, key: None, base, _task: tokio::spawn(server.run()) }
    }

    /// Starts mini-sshd with `flags` and `--authorized-keys alice:KEY.pub` for a fresh key of alice's.
    pub async fn with_alice_key(flags: &[&str]) -> MiniSshd {
        let base = MiniSshd::base();
        let key = keygen(base.path(), "alice").await;
        let authorized = format!("--authorized-keys=alice:{}", key.public_file().display());
        let mut argv = vec![authorized.as_str()];
        argv.extend_from_slice(flags);
        MiniSshd { key: Some(key), ..MiniSshd::start_in(base, &argv).await }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The line mini-sshd prints at startup.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The temp dir: `root`, `host_key` and anything the test puts there.
    pub fn dir(&self) -> &Path {
        self.base.path()
    }

    /// `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir().join("root")
    }

    /// `--host-key`.
    pub fn host_key(&self) -> PathBuf {
        self.dir().join("host_key")
    }

    /// Alice's key, of a server started [`with_alice_key`](MiniSshd::with_alice_key).
    pub fn key(&self) -> &ClientKey {
        self.key.as_ref().expect("the server was started with_alice_key")
    }

    /// An OpenSSH client command for `user` against this server.
    pub fn ssh(&self, user: &str) -> Ssh {
        Ssh::new(self.port(), user)
    }

    /// `ssh` as alice with her key only, in batch mode.
    pub fn alice(&self) -> Ssh {
        self.ssh("alice").identity(&self.key().path).option("BatchMode=yes")
    }
}

const CHILD_BASE: &str = "SSH_FRAMEWORK_TESTS_CHILD_BASE";
const CHILD_FLAGS: &str = "SSH_FRAMEWORK_TESTS_CHILD_FLAGS";

/// The body of a test binary's ignored child entry point (see
/// [`MiniSshdProcess`]): when this process was started by
/// [`MiniSshdProcess::start`], runs mini-sshd until the parent closes its
/// stdin; otherwise returns at once.
pub fn child_main() {
    let (Some(base), Ok(flags)) = (std::env::var_os(CHILD_BASE), std::env::var(CHILD_FLAGS)) else { return };
    let _ = tracing_subscriber::fmt().with_env_filter("ssh_framework=info").with_writer(std::io::stderr).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let flags: Vec<&str> = flags.lines().collect();
        let (server, _) = build(args(Path::new(&base), &flags)).await.expect("mini-sshd builds");
        println!("listening on {}", server.local_addrs()[0]);
        // The parent holds our stdin: its end (or the parent's) stops us.
        let parent_gone = async {
            let _ = tokio::io::AsyncReadExt::read(&mut tokio::io::stdin(), &mut [0u8; 1]).await;
        };
        server.run_until(parent_gone, std::time::Duration::from_secs(1)).await.expect("mini-sshd runs");
    });
}

/// mini-sshd in a child process of its own, for tests that measure the
/// server alone (its resident set) or give it limits of its own (`ulimit`).
///
/// The child is the test binary itself, running only an ignored test whose
/// body is [`child_main`]:
///
/// ```ignore
/// #[test]
/// #[ignore = "the mini-sshd child process; not a test by itself"]
/// fn mini_sshd_child() {
///     ssh_framework_tests::mini_sshd::child_main();
/// }
/// ```
pub struct MiniSshdProcess {
    base: tempfile::TempDir,
    addr: SocketAddr,
    _stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    process: tokio::process::Child,
}

impl fmt::Debug for MiniSshdProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniSshdProcess").field("addr", &self.addr).field("pid", &self.process.id()).finish()
    }
}

impl MiniSshdProcess {
    /// Starts the test named `entry` (its path in this binary, e.g.
    /// `budget::mini_sshd_child`) as mini-sshd with `flags` in `base` (see
    /// [`MiniSshd::start_in`]; `BASE/root` must exist), under `ulimit -n
    /// nofile` (hard and soft) when given; its log goes to `BASE/mini-sshd.log`.
    pub async fn start(entry: &str, base: tempfile::TempDir, flags: &[&str], nofile: Option<u32>) -> MiniSshdProcess {
        use tokio::io::AsyncBufReadExt;
        let log = std::fs::File::create(base.path().join("mini-sshd.log")).expect("creating the log");
        // `ulimit -n N` without -H or -S sets both limits, so the server cannot raise its own.
        let limit = nofile.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
        let mut process = tokio::process::Command::new("/bin/sh")
            .args(["-c", r#"if [ "$0" != unlimited ]; then ulimit -n "$0" || exit 1; fi; exec "$@""#])
            .arg(limit)
            .arg(std::env::current_exe().expect("the test binary's path"))
            .args([entry, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_BASE, base.path())
            .env(CHILD_FLAGS, flags.join("\n"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("starting the child process");
        let mut stdout = tokio::io::BufReader::new(process.stdout.take().expect("piped")).lines();
        let addr = crate::within("the child mini-sshd to listen", async {
            while let Some(line) = stdout.next_line().await.expect("reading the child's stdout") {
                // libtest's "test NAME ... " may start the line.
                if let Some((_, addr)) = line.split_once("listening on ") {
                    return addr.parse().expect("an address");
                }
            }
            let log = std::fs::read_to_string(base.path().join("mini-sshd.log")).unwrap_or_default();
            panic!("the child ended before listening; its log:\n{log}");
        })
        .await;
        MiniSshdProcess { base, addr, _stdout: stdout, process }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The temp dir the server runs in.
    pub fn dir(&self) -> &Path {
        self.base.path()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.base.path().join("mini-sshd.log")).unwrap_or_default()
    }

    /// The server's resident set size in bytes (`VmRSS` of its `/proc/PID/status`).
    pub fn rss(&self) -> usize {
        let pid = self.process.id().expect("the child is running");
        crate::memory::rss_of(&format!("/proc/{pid}/status"))
    }
}
