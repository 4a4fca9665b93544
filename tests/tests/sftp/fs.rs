//! The built-in SFTP server and legacy SCP, driven by OpenSSH's `sftp` and
//! `scp`: every command of the client, recursive copies compared by SHA-256,
//! read-only mode, subsystem routing, and one test per way out of the jail.
//!
//! Each test serves `BASE/root` as the jail; `BASE/outside/sentinel` must
//! survive every escape attempt unchanged. Clients run in `BASE/local`.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::ChannelMsg;
use ssh_framework::scp::Scp;
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::{ChannelIo, Command, ExitStatus};
use ssh_framework_tests::data::{pseudo_random, sha256_file};
use ssh_framework_tests::handlers::{AuthorizedKeys, SessionOnly};
use ssh_framework_tests::openssh::{ClientKey, Ssh, SshOutput, keygen};
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

use crate::alice_client;
use crate::raw::{FXF_CREAT, FXF_READ, FXF_TRUNC, FXF_WRITE, FXP_CLOSE, FXP_DATA, FXP_HANDLE, FXP_NAME, FXP_OPEN, FXP_READ, FXP_READLINK, FXP_STAT, FXP_STATUS, RawSftp, open_body, packet, status_code, string};

const SENTINEL: &[u8] = b"outside the jail: must never be read or changed\n";

/// SFTP and legacy SCP over a jailed directory, and an `echo` subsystem.
struct Files {
    root: PathBuf,
    read_only: bool,
}

#[ssh_framework::server]
impl Files {
    #[subsystem("sftp")]
    async fn sftp(&self, io: ChannelIo) -> io::Result<()> {
        Sftp::new(FsBackend::open(&self.root)?.read_only(self.read_only)).serve(io).await
    }

    #[subsystem("echo")]
    async fn echo(&self, mut io: ChannelIo) -> io::Result<()> {
        tokio::io::copy(&mut io.stdin, &mut io.stdout).await?;
        Ok(())
    }

    #[exec("scp")]
    async fn scp(&self, command: Command, io: ChannelIo) -> io::Result<ExitStatus> {
        Ok(Scp::new(FsBackend::open(&self.root)?.read_only(self.read_only)).serve(&command, io).await)
    }
}

/// A server jailed to `root` for alice's key, the key, and the directories around them.
struct Jail {
    server: TestServer,
    key: ClientKey,
    root: PathBuf,
    local: PathBuf,
    outside: PathBuf,
}

impl Jail {
    async fn start(read_only: bool) -> Jail {
        let base = tempfile::tempdir().unwrap();
        let [root, local, outside] = ["root", "local", "outside"].map(|d| base.path().join(d));
        for dir in [&root, &local, &outside] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(outside.join("sentinel"), SENTINEL).unwrap();
        let key = keygen(base.path(), "client").await;
        let files = Files { root: root.clone(), read_only };
        let login = AuthorizedKeys::alice(&key.public);
        let server = TestServer::start_in(base, |b| b.handlers(login).handlers(SessionOnly).handlers(files)).await;
        Jail { server, key, root, local, outside }
    }

    /// Runs OpenSSH's `sftp -b` with these commands (one per line); a failing command ends the batch.
    async fn sftp(&self, batch: &str) -> SshOutput {
        alice_client(Ssh::sftp, self.server.port(), &self.key, &self.local).batch(batch).await
    }

    /// Runs OpenSSH's `scp` with `args`, where `REMOTE:` stands for `alice@127.0.0.1:`.
    async fn scp(&self, args: &[&str]) -> SshOutput {
        alice_client(Ssh::scp, self.server.port(), &self.key, &self.local).copy(args).await
    }

    fn sentinel_untouched(&self) {
        assert_eq!(std::fs::read(self.outside.join("sentinel")).unwrap(), SENTINEL, "the sentinel changed");
        let names: Vec<_> = std::fs::read_dir(&self.outside).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["sentinel"], "something was created outside the jail");
    }

    /// russh's client logged in as alice.
    async fn russh(&self) -> RusshClient {
        RusshClient::login_key(self.server.addr(), "alice", &self.key).await
    }

    /// Logs in with russh and starts the sftp subsystem.
    async fn raw_sftp(&self) -> RawSftp {
        RawSftp::start(self.russh().await).await
    }
}

/// A small tree: text, a 3 MiB binary, an empty file, nested and empty directories.
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(dir.join("empty-dir")).unwrap();
    std::fs::write(dir.join("a.txt"), b"hello tree\n").unwrap();
    std::fs::write(dir.join("sub/b.bin"), pseudo_random(3 << 20, 7)).unwrap();
    std::fs::write(dir.join("sub/deeper/c.empty"), b"").unwrap();
    std::fs::write(dir.join("sub/deeper/with space.txt"), b"spaces survive\n").unwrap();
}

/// Every entry under `dir`: relative path to a SHA-256 (files) or `dir`.
fn digest_tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            if entry.file_type().unwrap().is_dir() {
                out.insert(rel, "dir".into());
                walk(base, &path, out);
            } else {
                out.insert(rel, sha256_file(&path));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Whether OpenSSH's client reported a refusal: the server's "Permission denied"
/// or "No such file", or the client's own "not found" after a failed stat.
fn refused(stderr: &str) -> bool {
    stderr.contains("Permission denied") || stderr.contains("No such file") || stderr.contains("not found")
}

// ---- every command of OpenSSH's sftp client ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_and_ls_long_listing_work() {
    let jail = Jail::start(false).await;
    let data = pseudo_random(5 << 20, 1);
    std::fs::write(jail.local.join("big.bin"), &data).unwrap();
    std::fs::write(jail.local.join("small.txt"), b"hi\n").unwrap();

    let run = jail.sftp("pwd\nput big.bin\nput small.txt /small.txt\nls -l\nls -l /\nget big.bin copy.bin\nget /small.txt\n").await;
    run.ok();
    let stdout = run.stdout_text();

    assert!(stdout.contains("Remote working directory: /\n"), "{stdout}");
    assert_eq!(std::fs::read(jail.root.join("big.bin")).unwrap(), data);
    assert_eq!(std::fs::read(jail.local.join("copy.bin")).unwrap(), data);
    let line = stdout.lines().find(|l| l.starts_with('-') && l.ends_with(" big.bin")).expect("ls -l lists big.bin");
    assert!(line.starts_with("-rw-r--r--    1 root     root      5242880 "), "ls -l line: {line:?}");
    assert!(stdout.lines().any(|l| l.starts_with("-rw-r--r--") && l.contains("        3 ") && l.ends_with(" small.txt")));
    jail.sentinel_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_put_and_get_keep_the_tree() {
    let jail = Jail::start(false).await;
    make_tree(&jail.local.join("tree"));

    jail.sftp("put -r tree\nmkdir nest\nput -r tree nest/tree\nget -r tree back\nget -r nest/tree back2\n").await.ok();

    let want = digest_tree(&jail.local.join("tree"));
    assert_eq!(want.len(), 7, "{want:?}");
    assert_eq!(digest_tree(&jail.root.join("tree")), want);
    assert_eq!(digest_tree(&jail.root.join("nest/tree")), want);
    assert_eq!(digest_tree(&jail.local.join("back")), want);
    assert_eq!(digest_tree(&jail.local.join("back2")), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reget_and_reput_resume_partial_transfers() {
    let jail = Jail::start(false).await;
    let data = pseudo_random(4 << 20, 2);
    std::fs::write(jail.root.join("down.bin"), &data).unwrap();
    std::fs::write(jail.local.join("down.bin"), &data[..1_234_567]).unwrap();
    std::fs::write(jail.local.join("up.bin"), &data).unwrap();
    std::fs::write(jail.root.join("up.bin"), &data[..2_000_001]).unwrap();

    jail.sftp("reget down.bin\nreput up.bin\n").await.ok();

    assert_eq!(sha256_file(&jail.local.join("down.bin")), sha256_file(&jail.root.join("down.bin")));
    assert_eq!(sha256_file(&jail.root.join("up.bin")), sha256_file(&jail.local.join("up.bin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_rmdir_rm_and_rename_change_the_tree() {
    let jail = Jail::start(false).await;
    std::fs::write(jail.local.join("f"), b"file\n").unwrap();

    jail.sftp(
        "mkdir d\nmkdir d/e\nput f d/e/f\nrename d/e/f d/moved\nput f other\nrename other d/moved\nrm d/moved\n\
         rmdir d/e\nput f keep\n-rmdir d/missing\n-rm nothing\nls\n",
    )
    .await
    .ok();

    assert!(jail.root.join("d").is_dir());
    assert!(!jail.root.join("d/e").exists());
    assert!(!jail.root.join("d/moved").exists(), "rename over an existing file (posix-rename) then rm");
    assert!(!jail.root.join("other").exists());
    assert_eq!(std::fs::read(jail.root.join("keep")).unwrap(), b"file\n");
    let run = jail.sftp("rmdir d\nrm keep\n").await;
    run.ok();
    assert_eq!(std::fs::read_dir(&jail.root).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ln_and_ln_s_make_links_that_ls_l_and_readlink_show() {
    let jail = Jail::start(false).await;
    std::fs::create_dir(jail.root.join("sub")).unwrap();
    std::fs::write(jail.root.join("sub/target"), b"linked\n").unwrap();

    let run = jail.sftp("ln sub/target hard\nln -s sub/target soft\nln -s /sub/target sub/abs\nls -l\nls -l sub\nget soft via-soft\nget sub/abs via-abs\n").await;
    run.ok();

    let target = std::fs::metadata(jail.root.join("sub/target")).unwrap();
    assert_eq!(std::fs::metadata(jail.root.join("hard")).unwrap().ino(), target.ino(), "a hard link");
    assert_eq!(target.nlink(), 2);
    assert_eq!(std::fs::read_link(jail.root.join("soft")).unwrap(), Path::new("sub/target"));
    // A jail-absolute target is stored relative to the link, so it points inside the jail.
    assert_eq!(std::fs::read_link(jail.root.join("sub/abs")).unwrap(), Path::new("../sub/target"));
    assert_eq!(std::fs::read(jail.local.join("via-soft")).unwrap(), b"linked\n");
    assert_eq!(std::fs::read(jail.local.join("via-abs")).unwrap(), b"linked\n");
    let stdout = run.stdout_text();
    let soft = stdout.lines().find(|l| l.starts_with('l') && l.contains(" soft")).expect("ls -l lists soft");
    assert!(soft.starts_with('l') && soft.ends_with(" soft -> sub/target"), "{soft:?}");
    let hard = stdout.lines().find(|l| l.starts_with('-') && l.ends_with(" hard")).expect("ls -l lists hard");
    assert!(hard.starts_with("-rw-r--r--    2 "), "{hard:?}");

    let mut raw = jail.raw_sftp().await;
    let (kind, body) = raw.call(FXP_READLINK, 7, &string(b"/soft")).await;
    assert_eq!(kind, FXP_NAME);
    assert_eq!(&body[..4], &1u32.to_be_bytes());
    assert_eq!(&body[4..8], &10u32.to_be_bytes());
    assert_eq!(&body[8..18], b"sub/target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chmod_and_chown_change_modes_and_owners() {
    let jail = Jail::start(false).await;
    std::fs::write(jail.root.join("f"), b"x").unwrap();
    std::os::unix::fs::symlink("f", jail.root.join("l")).unwrap();
    let me = std::fs::metadata(&jail.root).unwrap();

    // As root (the tests' user), chown to the same uid and gid is permitted; -h works on the link itself.
    let batch = format!("chmod 600 f\nchown {uid} f\nchgrp {gid} f\nchown -h {uid} l\nchmod 751 /\n", uid = me.uid(), gid = me.gid());
    jail.sftp(&batch).await.ok();

    assert_eq!(std::fs::metadata(jail.root.join("f")).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(std::fs::metadata(&jail.root).unwrap().mode() & 0o7777, 0o751);
    let f = std::fs::metadata(jail.root.join("f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (me.uid(), me.gid()));
    // chmod on a symbolic link itself is not a thing on Linux: refused, not applied to the target.
    jail.sftp("chmod -h 644 l\n").await.failed();
    assert_eq!(std::fs::metadata(jail.root.join("f")).unwrap().mode() & 0o7777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn df_reports_the_file_system() {
    let jail = Jail::start(false).await;
    let run = jail.sftp("df\ndf -i\ndf -h /\n").await;
    run.ok();
    let stdout = run.stdout_text();
    assert!(stdout.contains("Size") && stdout.contains("Inodes"), "{stdout}");
}

// ---- scp, both protocols ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_over_sftp_copies_files_and_trees() {
    let jail = Jail::start(false).await;
    make_tree(&jail.local.join("tree"));
    std::fs::write(jail.local.join("one.bin"), pseudo_random(2 << 20, 3)).unwrap();

    jail.scp(&["one.bin", "REMOTE:"]).await.ok();
    jail.scp(&["-r", "tree", "REMOTE:/copied"]).await.ok();
    jail.scp(&["REMOTE:one.bin", "back.bin"]).await.ok();
    jail.scp(&["-r", "REMOTE:/copied", "back"]).await.ok();

    let want = digest_tree(&jail.local.join("tree"));
    assert_eq!(digest_tree(&jail.root.join("copied")), want);
    assert_eq!(digest_tree(&jail.local.join("back")), want);
    assert_eq!(sha256_file(&jail.root.join("one.bin")), sha256_file(&jail.local.join("one.bin")));
    assert_eq!(sha256_file(&jail.local.join("back.bin")), sha256_file(&jail.local.join("one.bin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_scp_copies_files_and_trees_with_r_p_and_d() {
    let jail = Jail::start(false).await;
    make_tree(&jail.local.join("tree"));
    std::fs::write(jail.local.join("one.bin"), pseudo_random(2 << 20, 4)).unwrap();
    std::fs::write(jail.local.join("two.txt"), b"two\n").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(jail.local.join("two.txt")).unwrap().set_modified(old).unwrap();
    std::fs::create_dir(jail.root.join("many")).unwrap();

    jail.scp(&["-O", "one.bin", "REMOTE:"]).await.ok();
    // Two sources make the client ask for -d (the target must be a directory); -p keeps times.
    jail.scp(&["-O", "-p", "one.bin", "two.txt", "REMOTE:many"]).await.ok();
    jail.scp(&["-O", "-r", "-p", "tree", "REMOTE:/copied"]).await.ok();
    jail.scp(&["-O", "REMOTE:one.bin", "back.bin"]).await.ok();
    jail.scp(&["-O", "-r", "REMOTE:/copied", "back"]).await.ok();
    jail.scp(&["-O", "-p", "REMOTE:many/two.txt", "two-back.txt"]).await.ok();

    let want = digest_tree(&jail.local.join("tree"));
    assert_eq!(digest_tree(&jail.root.join("copied")), want);
    assert_eq!(digest_tree(&jail.local.join("back")), want);
    assert_eq!(sha256_file(&jail.root.join("one.bin")), sha256_file(&jail.local.join("one.bin")));
    assert_eq!(sha256_file(&jail.local.join("back.bin")), sha256_file(&jail.local.join("one.bin")));
    assert_eq!(std::fs::read(jail.root.join("many/two.txt")).unwrap(), b"two\n");
    assert_eq!(std::fs::metadata(jail.root.join("many/two.txt")).unwrap().mtime(), 1_000_000_000, "-p kept the time");
    assert_eq!(std::fs::metadata(jail.local.join("two-back.txt")).unwrap().mtime(), 1_000_000_000);

    // A file target that is not a directory, with two sources: refused by -d.
    jail.scp(&["-O", "one.bin", "two.txt", "REMOTE:one.bin"]).await.failed();
    // A missing source is reported, not fatal to the protocol.
    let run = jail.scp(&["-O", "REMOTE:missing", "x"]).await;
    run.failed();
    assert!(run.stderr.contains("missing: No such file or directory"), "{}", run.stderr);
}

// ---- read-only ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_serves_reads_and_refuses_every_change() {
    let jail = Jail::start(true).await;
    std::fs::create_dir(jail.root.join("d")).unwrap();
    std::fs::write(jail.root.join("f"), b"read me\n").unwrap();
    std::fs::write(jail.local.join("up"), b"up\n").unwrap();

    jail.sftp("ls -l\nget f\ndf\n").await.ok();
    assert_eq!(std::fs::read(jail.local.join("f")).unwrap(), b"read me\n");
    for change in ["put up", "mkdir x", "rmdir d", "rm f", "rename f g", "ln -s f s", "ln f h", "chmod 600 f", "put up f"] {
        let run = jail.sftp(&format!("{change}\n")).await;
        run.failed();
        assert!(run.stderr.contains("Permission denied"), "{change}: {}", run.stderr);
    }
    jail.scp(&["-O", "up", "REMOTE:"]).await.failed();
    jail.scp(&["up", "REMOTE:"]).await.failed();
    jail.scp(&["-O", "REMOTE:f", "f2"]).await.ok();

    let names: Vec<_> = std::fs::read_dir(&jail.root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(std::fs::read(jail.root.join("f")).unwrap(), b"read me\n");
    assert_eq!(std::fs::metadata(jail.root.join("f")).unwrap().mode() & 0o777, 0o644);
}

// ---- subsystems ----

#[tokio::test]
async fn subsystems_route_by_name_and_unknown_ones_are_refused() {
    let jail = Jail::start(false).await;
    let client = jail.russh().await;

    let mut unknown = client.handle.channel_open_session().await.unwrap();
    unknown.request_subsystem(true, "nope").await.unwrap();
    assert!(matches!(within("reply", unknown.wait()).await, Some(ChannelMsg::Failure)), "an unknown subsystem is refused");

    let mut echo = client.handle.channel_open_session().await.unwrap();
    echo.request_subsystem(true, "echo").await.unwrap();
    assert!(matches!(within("reply", echo.wait()).await, Some(ChannelMsg::Success)));
    echo.data(&b"ping"[..]).await.unwrap();
    echo.eof().await.unwrap();
    let mut got = Vec::new();
    while let Some(msg) = within("echo", echo.wait()).await {
        match msg {
            ChannelMsg::Data { data } => got.extend_from_slice(&data),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    assert_eq!(got, b"ping");

    // The same connection still serves the other subsystem.
    let mut sftp = client.handle.channel_open_session().await.unwrap();
    sftp.request_subsystem(true, "sftp").await.unwrap();
    assert!(matches!(within("reply", sftp.wait()).await, Some(ChannelMsg::Success)));
}

// ---- protocol limits ----

#[tokio::test]
async fn an_oversized_packet_closes_the_session_cleanly() {
    let jail = Jail::start(false).await;
    let mut raw = jail.raw_sftp().await;
    let mut huge = (1u32 << 20).to_be_bytes().to_vec();
    huge.extend_from_slice(&[FXP_STAT, 0, 0, 0, 1]);
    raw.send(&huge).await;
    assert!(raw.recv().await.is_none(), "no answer, the channel closes");
    assert_eq!(raw.events, ["exit-status 1", "eof", "close"]);
}

#[tokio::test]
async fn open_handles_are_bounded() {
    let jail = Jail::start(false).await;
    std::fs::write(jail.root.join("f"), b"x").unwrap();
    let mut raw = jail.raw_sftp().await;
    for id in 0..256 {
        let (kind, _) = raw.call(FXP_OPEN, id, &open_body(b"f", FXF_READ)).await;
        assert_eq!(kind, FXP_HANDLE, "open {id}");
    }
    let (kind, body) = raw.call(FXP_OPEN, 999, &open_body(b"f", FXF_READ)).await;
    assert_eq!((kind, status_code(&body)), (FXP_STATUS, 4), "the 257th open fails");
}

#[tokio::test]
async fn pipelined_reads_all_get_their_answer() {
    let jail = Jail::start(false).await;
    let data = pseudo_random(64 * 32768, 5);
    std::fs::write(jail.root.join("f"), &data).unwrap();
    let mut raw = jail.raw_sftp().await;
    let (_, body) = raw.call(FXP_OPEN, 1, &open_body(b"/f", FXF_READ)).await;
    let handle = body[4..].to_vec();
    // 64 reads in flight at once, as OpenSSH's client keeps them.
    for i in 0..64u32 {
        let mut req = string(&handle);
        req.extend_from_slice(&(u64::from(i) * 32768).to_be_bytes());
        req.extend_from_slice(&32768u32.to_be_bytes());
        raw.send(&packet(FXP_READ, Some(100 + i), &req)).await;
    }
    let mut got = vec![Vec::new(); 64];
    for _ in 0..64 {
        let (kind, rest) = raw.recv().await.unwrap();
        assert_eq!(kind, FXP_DATA);
        let id = u32::from_be_bytes(rest[..4].try_into().unwrap()) - 100;
        got[id as usize] = rest[8..].to_vec();
    }
    assert_eq!(got.concat(), data);
}

#[tokio::test]
async fn a_fifo_in_the_jail_fails_instead_of_hanging_the_session() {
    let jail = Jail::start(false).await;
    let status = std::process::Command::new("mkfifo").arg(jail.root.join("fifo")).status().unwrap();
    assert!(status.success());
    std::fs::write(jail.root.join("after"), b"still served\n").unwrap();
    let mut raw = jail.raw_sftp().await;
    // Without a writer there is nothing to read: an error or an empty file, promptly.
    let fifo = raw.read_file(b"fifo").await;
    assert!(fifo.as_ref().map_or(true, |d| d.is_empty()), "{fifo:?}");
    assert_eq!(raw.read_file(b"after").await.unwrap(), b"still served\n");
}

// ---- the jail ----

#[tokio::test]
async fn escape_with_dot_dot_is_refused() {
    let jail = Jail::start(false).await;
    std::fs::write(jail.local.join("evil"), b"evil\n").unwrap();
    // (`cd ..` at the root stays there, as in a chroot: see hostile.rs.)
    for attempt in ["get ../outside/sentinel", "get ../../outside/sentinel", "put evil ../outside/sentinel", "ls ..", "mkdir ../outside/new"] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(refused(&run.stderr), "{attempt}: {}", run.stderr);
    }
    assert!(!jail.local.join("sentinel").exists());
    jail.sentinel_untouched();
}

#[tokio::test]
async fn escape_with_an_absolute_path_stays_in_the_jail() {
    let jail = Jail::start(false).await;
    let outside = jail.outside.join("sentinel");
    let outside = outside.to_str().unwrap();
    for attempt in [format!("get {outside}"), "get /etc/passwd".to_owned(), format!("put /etc/hostname {outside}")] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(run.stderr.contains("No such file") || run.stderr.contains("not found"), "{attempt}: {}", run.stderr);
    }
    // `/` is the jail's root.
    std::fs::write(jail.root.join("inside"), b"in\n").unwrap();
    let run = jail.sftp("cd /\npwd\nget /inside\nls /\n").await;
    run.ok();
    assert!(run.stdout_text().contains("Remote working directory: /\n"));
    assert_eq!(std::fs::read(jail.local.join("inside")).unwrap(), b"in\n");
    jail.sentinel_untouched();
}

#[tokio::test]
async fn escape_with_dot_slash_dot_dot_is_refused() {
    let jail = Jail::start(false).await;
    std::fs::create_dir(jail.root.join("sub")).unwrap();
    // (`cd /./..` lands at `/`, as in a chroot: see hostile.rs.)
    for attempt in ["get /./../outside/sentinel", "get sub/./../../outside/sentinel", "ls /sub/../.."] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(refused(&run.stderr), "{attempt}: {}", run.stderr);
    }
    jail.sentinel_untouched();
}

#[tokio::test]
async fn escape_through_a_symlink_already_on_disk_is_refused() {
    let jail = Jail::start(false).await;
    std::fs::write(jail.local.join("evil"), b"evil\n").unwrap();
    std::os::unix::fs::symlink("../outside", jail.root.join("rel")).unwrap();
    std::os::unix::fs::symlink(&jail.outside, jail.root.join("abs")).unwrap();
    std::os::unix::fs::symlink(jail.outside.join("sentinel"), jail.root.join("file")).unwrap();
    for attempt in [
        "get rel/sentinel",
        "get abs/sentinel",
        "get file",
        "put evil rel/sentinel",
        "put evil abs/new",
        "put evil file",
        "cd rel",
        "cd abs",
        "chmod 777 file",
        "mkdir rel/new",
    ] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(refused(&run.stderr), "{attempt}: {}", run.stderr);
    }
    // Listing through a link shows nothing from outside.
    let run = jail.sftp("ls -l rel/\nls abs/\n").await;
    assert!(!run.stdout_text().contains("sentinel"), "{}", run.stdout_text());
    // Removing the links themselves is fine and leaves the targets alone.
    jail.sftp("rm file\nrm rel\n").await.ok();
    jail.scp(&["-O", "REMOTE:abs/sentinel", "x"]).await.failed();
    jail.scp(&["-O", "evil", "REMOTE:abs/sentinel"]).await.failed();
    assert!(!jail.local.join("sentinel").exists() && !jail.local.join("x").exists() && !jail.local.join("file").exists());
    assert_eq!(std::fs::metadata(jail.outside.join("sentinel")).unwrap().mode() & 0o777, 0o644);
    jail.sentinel_untouched();
}

#[tokio::test]
async fn escape_through_a_symlink_the_client_creates_is_refused() {
    let jail = Jail::start(false).await;
    std::fs::write(jail.local.join("evil"), b"evil\n").unwrap();
    // A link whose text climbs out is refused when created.
    for attempt in ["ln -s ../outside out", "ln -s ../../outside/sentinel out", "ln -s sub/../../outside out"] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(run.stderr.contains("Permission denied"), "{attempt}: {}", run.stderr);
    }
    // An absolute target means the jail's root: the link is made, and leads nowhere outside.
    let outside = jail.outside.join("sentinel");
    jail.sftp(&format!("ln -s {} abs\nln -s / top\n", outside.display())).await.ok();
    for attempt in ["get abs", "put evil abs", "get top/../outside/sentinel"] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(refused(&run.stderr), "{attempt}: {}", run.stderr);
    }
    assert!(std::fs::read_link(jail.root.join("abs")).unwrap().is_relative());
    jail.sentinel_untouched();
}

#[tokio::test]
async fn escape_by_renaming_out_of_the_root_is_refused() {
    let jail = Jail::start(false).await;
    std::fs::write(jail.root.join("f"), b"mine\n").unwrap();
    std::fs::create_dir(jail.root.join("d")).unwrap();
    std::os::unix::fs::symlink("../outside", jail.root.join("link")).unwrap();
    for attempt in ["rename f ../outside/f", "rename f /../outside/f", "rename d ../outside/d", "rename f link/f", "rename ../outside/sentinel stolen", "ln f ../outside/hard"] {
        let run = jail.sftp(&format!("{attempt}\n")).await;
        run.failed();
        assert!(refused(&run.stderr), "{attempt}: {}", run.stderr);
    }
    assert_eq!(std::fs::read(jail.root.join("f")).unwrap(), b"mine\n");
    assert!(!jail.root.join("stolen").exists());
    jail.sentinel_untouched();
}

#[tokio::test]
async fn escape_with_a_nul_byte_is_refused() {
    let jail = Jail::start(false).await;
    std::fs::create_dir(jail.root.join("sub")).unwrap();
    let mut raw = jail.raw_sftp().await;
    // A C library would stop at the NUL and see `sub`; we refuse the whole path.
    let (kind, body) = raw.call(FXP_STAT, 1, &string(b"sub\0/../../outside/sentinel")).await;
    assert_eq!((kind, status_code(&body)), (FXP_STATUS, 4));
    assert!(String::from_utf8_lossy(&body).contains("NUL"), "{:?}", String::from_utf8_lossy(&body));
    assert_eq!(raw.read_file(b"../outside/sentinel\0").await, Err(4));
    let (kind, body) = raw.call(FXP_OPEN, 2, &open_body(b"new\0.txt", FXF_WRITE | FXF_CREAT | FXF_TRUNC)).await;
    assert_eq!((kind, status_code(&body)), (FXP_STATUS, 4));
    assert_eq!(std::fs::read_dir(&jail.root).unwrap().count(), 1, "nothing was created");
    jail.sentinel_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_by_swapping_in_a_symlink_mid_request_is_refused() {
    let jail = Jail::start(false).await;
    let swap = jail.root.join("swap");
    std::fs::create_dir(&swap).unwrap();
    std::fs::write(swap.join("sentinel"), b"inside\n").unwrap();

    // Flip `swap` between a real directory and a link to the outside, as fast as possible.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, swap, outside) = (stop.clone(), swap.clone(), jail.outside.clone());
        std::thread::spawn(move || {
            let mut flips = 0u32;
            while !stop.load(Ordering::Relaxed) && flips < 1_000_000 {
                let _ = std::fs::remove_dir_all(&swap);
                let _ = std::os::unix::fs::symlink(&outside, &swap);
                let _ = std::fs::remove_file(&swap);
                let _ = std::fs::create_dir(&swap);
                let _ = std::fs::write(swap.join("sentinel"), b"inside\n");
                flips += 1;
            }
            flips
        })
    };

    let mut raw = jail.raw_sftp().await;
    let (mut inside, mut refused) = (0, 0);
    for i in 0..400u32 {
        match raw.read_file(b"swap/sentinel").await {
            Ok(data) => {
                assert_ne!(data, SENTINEL, "read the sentinel through a swapped link");
                inside += 1;
            }
            Err(_) => refused += 1,
        }
        let (kind, body) = raw.call(FXP_OPEN, 10_000 + i, &open_body(b"swap/sentinel", FXF_WRITE | FXF_TRUNC)).await;
        if kind == FXP_HANDLE {
            let mut req = string(&body[4..]);
            req.extend_from_slice(&0u64.to_be_bytes());
            req.extend(string(b"overwritten\n"));
            raw.call(6, 20_000 + i, &req).await;
            raw.call(FXP_CLOSE, 30_000 + i, &string(&body[4..])).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(flips > 10, "the race ran ({flips} flips)");
    assert!(inside + refused == 400, "{inside} {refused}");
    let _ = std::fs::remove_file(&swap);
    jail.sentinel_untouched();
}

#[tokio::test]
async fn a_client_cannot_write_through_a_legacy_scp_name() {
    let jail = Jail::start(false).await;
    // Hand-written `scp -t` session: a C line naming `../x` is a protocol error.
    let client = jail.russh().await;
    let mut channel = client.exec("scp -t /").await;
    channel.data(&b"C0644 5 ../outside/sentinel\nevil\n\0"[..]).await.unwrap();
    let mut stdout = Vec::new();
    let mut exit = None;
    while let Some(msg) = within("scp", channel.wait()).await {
        match msg {
            ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => exit = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    assert_eq!(exit, Some(1));
    assert!(String::from_utf8_lossy(&stdout).contains("unexpected filename"), "{stdout:?}");
    jail.sentinel_untouched();
}
