//! A hostile client against [`FsBackend`] (issue 12): FIFOs that would hang
//! a thread, floods meant to take every blocking thread, set-id bits and
//! owners passed through `chmod`, `chown` and `scp -p`, links that a rename
//! would turn outward, and `..` at the root.
//!
//! One server per test serves `BASE/root` with one shared backend, cloned for
//! each session as mini-sshd does; `BASE/outside` is beside the root.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh_framework::scp::Scp;
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::{ChannelIo, Command, ExitStatus, ServerBuilder};
use ssh_framework_tests::handlers::{AuthorizedKeys, SessionOnly};
use ssh_framework_tests::openssh::{ClientKey, Ssh, SshOutput, keygen};
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;

use crate::alice_client;
use crate::raw::{FXF_READ, FXF_TRUNC, FXF_WRITE, FXP_NAME, FXP_OPEN, FXP_STATUS, RawSftp, open_body, packet, status_code, string};

const FXP_SETSTAT: u8 = 9;
const FXP_REALPATH: u8 = 16;
const FXP_EXTENDED: u8 = 200;
const FXP_EXTENDED_REPLY: u8 = 201;
const ATTR_SIZE: u32 = 0x1;
const ATTR_PERMISSIONS: u32 = 0x4;
const ATTR_ACMODTIME: u32 = 0x8;
const STATUS_OK: u32 = 0;

/// How long any request on a FIFO may take to be answered (issue 12).
const FIFO_BOUND: Duration = Duration::from_secs(1);

/// SFTP and legacy SCP over one shared [`FsBackend`], cloned per session.
struct Files {
    files: FsBackend,
}

#[ssh_framework::server]
impl Files {
    #[subsystem("sftp")]
    async fn sftp(&self, io: ChannelIo) -> io::Result<()> {
        Sftp::new(self.files.clone()).serve(io).await
    }

    #[exec("scp")]
    async fn scp(&self, command: Command, io: ChannelIo) -> io::Result<ExitStatus> {
        Ok(Scp::new(self.files.clone()).serve(&command, io).await)
    }
}

/// A server with SFTP and SCP over `BASE/root` and a client key for alice,
/// whose client runs in `BASE/local`.
pub(crate) struct Jail {
    server: TestServer,
    key: ClientKey,
    pub(crate) root: PathBuf,
    pub(crate) local: PathBuf,
}

impl Jail {
    /// A server over `BASE/root`; `configure` sets the backend up.
    pub(crate) async fn start(configure: impl FnOnce(FsBackend) -> FsBackend) -> Jail {
        Jail::start_with(configure, |server| server).await
    }

    /// [`start`](Jail::start), and `server` adds to the server's builder.
    pub(crate) async fn start_with(
        configure: impl FnOnce(FsBackend) -> FsBackend,
        server: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Jail {
        let base = tempfile::tempdir().unwrap();
        let [root, local, outside] = ["root", "local", "outside"].map(|d| base.path().join(d));
        for dir in [&root, &local, &outside] {
            std::fs::create_dir(dir).unwrap();
        }
        let key = keygen(base.path(), "client").await;
        let files = Files { files: configure(FsBackend::open(&root).unwrap()) };
        let login = AuthorizedKeys::alice(&key.public);
        let server = TestServer::start_in(base, |b| server(b.handlers(login).handlers(SessionOnly).handlers(files))).await;
        Jail { server, key, root, local }
    }

    pub(crate) async fn sftp(&self, batch: &str) -> SshOutput {
        alice_client(Ssh::sftp, self.server.port(), &self.key, &self.local).batch(batch).await
    }

    async fn scp(&self, args: &[&str]) -> SshOutput {
        alice_client(Ssh::scp, self.server.port(), &self.key, &self.local).copy(args).await
    }

    /// A new connection (russh's client, as alice) with the sftp subsystem started.
    async fn raw_sftp(&self) -> RawSftp {
        RawSftp::start(RusshClient::login_key(self.server.addr(), "alice", &self.key).await).await
    }

    /// A FIFO at `root/name`, opened for reading and writing when the guard
    /// drops: that releases any thread a regression left waiting in `open`,
    /// so a failing test fails instead of hanging the runtime's shutdown.
    fn fifo(&self, name: &str) -> FifoGuard {
        let path = self.root.join(name);
        let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(status.success());
        FifoGuard(path)
    }
}

struct FifoGuard(PathBuf);

impl Drop for FifoGuard {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK (Linux's value): a FIFO opened for both never waits anyway.
        let _ = std::fs::OpenOptions::new().read(true).write(true).custom_flags(0o4000).open(&self.0);
    }
}

/// `SSH_FXP_EXTENDED` with the extension's name first.
fn extended(name: &str, rest: &[u8]) -> Vec<u8> {
    let mut body = string(name.as_bytes());
    body.extend_from_slice(rest);
    body
}

/// A path and attributes: `flags`, then the values in wire order.
fn path_attrs(path: &[u8], flags: u32, values: &[u8]) -> Vec<u8> {
    let mut body = string(path);
    body.extend_from_slice(&flags.to_be_bytes());
    body.extend_from_slice(values);
    body
}

/// The requests that once blocked a thread forever on a FIFO, with the answer each must get.
fn fifo_requests(path: &[u8]) -> Vec<(u8, Vec<u8>, &'static str)> {
    let mut times = 1_700_000_000u32.to_be_bytes().to_vec();
    times.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    vec![
        // Statistics of the file system the FIFO is on, as OpenSSH's server gives them.
        (FXP_EXTENDED, extended("statvfs@openssh.com", &string(path)), "statvfs"),
        (FXP_SETSTAT, path_attrs(path, ATTR_SIZE, &0u64.to_be_bytes()), "error"),
        (FXP_EXTENDED, extended("lsetstat@openssh.com", &path_attrs(path, ATTR_SIZE, &0u64.to_be_bytes())), "error"),
        (FXP_SETSTAT, path_attrs(path, ATTR_ACMODTIME, &times), "ok"),
        (FXP_SETSTAT, path_attrs(path, ATTR_PERMISSIONS, &0o600u32.to_be_bytes()), "ok"),
        (FXP_OPEN, open_body(path, FXF_WRITE | FXF_TRUNC), "error"),
    ]
}

/// Receives one answer, failing the test if it does not come by `deadline`.
async fn recv_by(raw: &mut RawSftp, deadline: Instant, what: &str) -> (u8, Vec<u8>) {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, raw.recv()).await {
        Ok(Some(answer)) => answer,
        Ok(None) => panic!("{what}: the channel closed"),
        Err(_) => panic!("{what}: no answer by the deadline"),
    }
}

// ---- issue 12, medium 1: FIFOs and floods ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_requests_are_answered_within_a_second_while_another_session_is_served() {
    let jail = Jail::start(|b| b).await;
    let _fifo = jail.fifo("fifo");
    std::fs::write(jail.root.join("f"), b"still served\n").unwrap();
    let mut other = jail.raw_sftp().await;
    let mut raw = jail.raw_sftp().await;

    let requests = fifo_requests(b"fifo");
    let started = Instant::now();
    for (i, (kind, body, _)) in requests.iter().enumerate() {
        raw.send(&packet(*kind, Some(i as u32), body)).await;
    }
    let deadline = started + FIFO_BOUND;
    for (i, (_, _, want)) in requests.iter().enumerate() {
        let (kind, rest) = recv_by(&mut raw, deadline, want).await;
        assert_eq!(u32::from_be_bytes(rest[..4].try_into().unwrap()), i as u32);
        let code = (kind == FXP_STATUS).then(|| status_code(&rest[4..]));
        match *want {
            "statvfs" => assert_eq!(kind, FXP_EXTENDED_REPLY, "request {i}: {code:?}"),
            "ok" => assert_eq!(code, Some(STATUS_OK), "request {i}"),
            _ => assert!(code.is_some_and(|c| c != STATUS_OK), "request {i}: {kind} {code:?}"),
        }
    }
    let elapsed = started.elapsed();
    eprintln!("{} FIFO requests answered after {elapsed:?}", requests.len());
    assert!(elapsed < FIFO_BOUND, "{} FIFO requests took {elapsed:?}", requests.len());
    assert_eq!(std::fs::metadata(jail.root.join("fifo")).unwrap().mode() & 0o777, 0o600);

    // Both sessions go on being served, promptly.
    let started = Instant::now();
    assert_eq!(other.read_file(b"f").await.unwrap(), b"still served\n");
    assert_eq!(raw.read_file(b"f").await.unwrap(), b"still served\n");
    assert!(started.elapsed() < FIFO_BOUND, "reads took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_fifo_requests_does_not_stop_another_session() {
    // Nine channels of 60 statvfs requests (lookups, which run together)
    // once took 540 blocking threads, more than tokio's 512: SFTP stopped
    // for everyone, and the threads stayed stuck after the clients left.
    const CHANNELS: usize = 9;
    const REQUESTS: usize = 60;
    let jail = Jail::start(|b| b).await;
    let _fifo = jail.fifo("fifo");
    std::fs::write(jail.root.join("f"), b"still served\n").unwrap();
    let mut victim = jail.raw_sftp().await;
    let mut flood = Vec::new();
    for _ in 0..CHANNELS {
        flood.push(jail.raw_sftp().await);
    }

    let started = Instant::now();
    let statvfs = extended("statvfs@openssh.com", &string(b"fifo"));
    for raw in &mut flood {
        let batch: Vec<u8> = (0..REQUESTS).flat_map(|id| packet(FXP_EXTENDED, Some(id as u32), &statvfs)).collect();
        raw.send(&batch).await;
    }
    let read = tokio::time::timeout(FIFO_BOUND, victim.read_file(b"f")).await;
    let served = started.elapsed();
    assert_eq!(read.expect("the other session is served within the bound").unwrap(), b"still served\n");

    // Every flood request is answered too, each in order, within the bound.
    let deadline = started + Duration::from_secs(10);
    for raw in &mut flood {
        for id in 0..REQUESTS {
            let (_, rest) = recv_by(raw, deadline, "a flood request").await;
            assert_eq!(u32::from_be_bytes(rest[..4].try_into().unwrap()), id as u32);
        }
    }
    let answered = started.elapsed();
    eprintln!("victim served after {served:?}; {} flood requests answered after {answered:?}", CHANNELS * REQUESTS);
    assert!(served < FIFO_BOUND, "the other session waited {served:?}");
}

// ---- issue 12, medium 6: set-id bits and owners ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_id_bits_are_stripped_and_chown_is_refused_by_default() {
    let jail = Jail::start(|b| b).await;
    std::fs::write(jail.local.join("tool"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(jail.local.join("tool"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    let mode = |name: &str| std::fs::metadata(jail.root.join(name)).unwrap().mode() & 0o7777;

    jail.sftp("put tool\nchmod 6755 tool\nmkdir shared\nchmod 1777 shared\n").await.ok();
    assert_eq!(mode("tool"), 0o755);
    assert_eq!(mode("shared"), 0o777);

    // Legacy scp with -p sends the mode in its C line and again for the times.
    jail.scp(&["-O", "-p", "tool", "REMOTE:scp-tool"]).await.ok();
    assert_eq!(mode("scp-tool"), 0o755);

    // A change of owner or group is refused; naming the owner it has is a no-op.
    let before = std::fs::metadata(jail.root.join("tool")).unwrap();
    for attempt in ["chown 4242 tool", "chgrp 4242 tool"] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(run.stderr.contains("Permission denied"), "{attempt}: {}", run.stderr);
    }
    jail.sftp(&format!("chown {} tool\nchgrp {} tool\n", before.uid(), before.gid())).await.ok();
    let after = std::fs::metadata(jail.root.join("tool")).unwrap();
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_id_bits_and_chown_pass_when_the_backend_allows_them() {
    let jail = Jail::start(|b| b.allow_special_modes(true).allow_chown(true)).await;
    std::fs::write(jail.root.join("tool"), b"#!/bin/sh\n").unwrap();
    // chown clears set-id bits (for root too, on Linux), so it goes first.
    jail.sftp("chown 4242 tool\nchgrp 4243 tool\nchmod 6755 tool\n").await.ok();
    let meta = std::fs::metadata(jail.root.join("tool")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o6755, "{:o}", meta.mode());
    assert_eq!((meta.uid(), meta.gid()), (4242, 4243));
}

// ---- issue 12, low: links that a rename would turn outward ----

/// Every symbolic link under `root`, as the host's own tools would follow it,
/// either dangles or stays under `root`.
fn host_links_stay_inside(root: &Path) {
    fn walk(root: &Path, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                if let Ok(resolved) = std::fs::canonicalize(&path) {
                    assert!(resolved.starts_with(root), "{} leads to {}", path.display(), resolved.display());
                }
            } else if meta.is_dir() {
                walk(root, &path);
            }
        }
    }
    walk(&root.canonicalize().unwrap(), root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_cannot_turn_a_link_outward() {
    let jail = Jail::start(|b| b).await;
    std::fs::write(jail.root.join("x"), b"inside\n").unwrap();
    std::fs::write(jail.root.join("../outside/x"), b"outside\n").unwrap();
    // Two levels deep, `../../x` is the root's x.
    jail.sftp("mkdir a\nmkdir a/b\nmkdir a/b/c\nln -s ../../x a/b/link\nln -s ../../../x a/b/c/deeper\nget a/b/link via-link\n").await.ok();
    assert_eq!(std::fs::read(jail.local.join("via-link")).unwrap(), b"inside\n");

    // Each of these would leave a link one level too shallow, pointing at ../outside/x.
    for attempt in ["rename a/b b", "rename a/b/c c", "rename a/b/link link", "ln a/b/link hard"] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(run.stderr.contains("Permission denied"), "{attempt}: {}", run.stderr);
        host_links_stay_inside(&jail.root);
    }
    assert!(std::fs::symlink_metadata(jail.root.join("a/b/link")).unwrap().file_type().is_symlink());
    // A climb after a name could follow a link anywhere: refused when made.
    let run = jail.sftp("ln -s b/../../x a/odd\n").await;
    run.failed();
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);

    // Moves to the same depth or deeper are fine (deeper, a link may dangle, never lead out).
    jail.sftp("rename a/b a/renamed\nget a/renamed/link again\nmkdir deep\nrename a deep/a\n").await.ok();
    assert_eq!(std::fs::read(jail.local.join("again")).unwrap(), b"inside\n");
    host_links_stay_inside(&jail.root);
}

// ---- issue 8, defect 3: `..` at the root ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_at_the_root_is_the_root_as_in_a_chroot() {
    let jail = Jail::start(|b| b).await;
    std::fs::create_dir(jail.root.join("sub")).unwrap();
    let run = jail.sftp("cd ..\npwd\ncd /./..\npwd\ncd sub\ncd ../..\npwd\n").await;
    run.ok();
    assert_eq!(run.stdout_text().matches("Remote working directory: /\n").count(), 3, "{}", run.stdout_text());

    let mut raw = jail.raw_sftp().await;
    for (id, path) in [&b".."[..], b"/..", b"/./../..", b"../..", b"/sub/../..", b"sub/../../sub/.."].into_iter().enumerate() {
        let (kind, body) = raw.call(FXP_REALPATH, id as u32, &string(path)).await;
        assert_eq!(kind, FXP_NAME, "{:?}", String::from_utf8_lossy(path));
        assert_eq!(&body[..4], &1u32.to_be_bytes());
        assert_eq!(&body[4..9], &string(b"/")[..], "{:?}", String::from_utf8_lossy(path));
    }
    // Only for realpath: nothing is read above the root.
    assert!(raw.read_file(b"../outside/x").await.is_err());
    let (kind, _) = raw.call(FXP_OPEN, 9, &open_body(b"/../outside", FXF_READ)).await;
    assert_eq!(kind, FXP_STATUS);
}
