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
