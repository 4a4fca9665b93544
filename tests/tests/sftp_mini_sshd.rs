//! mini-sshd's file serving: `--root` is the jail of SFTP and legacy SCP,
//! `--sftp-read-only` refuses changes; driven by OpenSSH's `sftp` and `scp -O`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use clap::Parser;
use example_mini_sshd::{Args, build};
use ssh_framework_tests::{ClientKey, keygen, within};

/// A mini-sshd serving `BASE/root` to `alice` with a fresh key.
struct MiniSshd {
    port: u16,
    key: ClientKey,
    base: tempfile::TempDir,
    root: PathBuf,
    _task: tokio::task::JoinHandle<Result<(), ssh_framework::Error>>,
}

impl MiniSshd {
    async fn start(extra: &[&str]) -> MiniSshd {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(base.path().join("local")).unwrap();
        std::fs::write(base.path().join("sentinel"), b"outside\n").unwrap();
        let key = keygen(base.path(), "alice").await;
        let mut argv = vec![
            "mini-sshd".to_owned(),
            "--listen=127.0.0.1:0".to_owned(),
            format!("--host-key={}", base.path().join("host_key").display()),
            format!("--authorized-keys=alice:{}.pub", key.path.display()),
            format!("--root={}", root.display()),
        ];
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let (server, _line) = build(Args::parse_from(argv)).await.expect("mini-sshd builds");
        let port = server.local_addrs()[0].port();
        MiniSshd { port, key, base, root, _task: tokio::spawn(server.run()) }
    }

    fn local(&self) -> PathBuf {
        self.base.path().join("local")
    }

    async fn client(&self, program: &str, args: &[String]) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(program);
        cmd.current_dir(self.local())
            .args(["-F", "/dev/null", "-P"])
            .arg(self.port.to_string())
            .arg("-i")
            .arg(&self.key.path)
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        within(program, cmd.output()).await.expect("the OpenSSH client is installed")
    }

    async fn sftp(&self, batch: &str) -> std::process::Output {
        let file = self.base.path().join("batch");
        std::fs::write(&file, batch).unwrap();
        self.client("sftp", &["-b".to_owned(), file.display().to_string(), "alice@127.0.0.1".to_owned()]).await
    }

    async fn scp(&self, from: &str, to: &str) -> std::process::Output {
        let remote = |s: &str| s.replace("REMOTE:", "alice@127.0.0.1:");
        self.client("scp", &["-O".to_owned(), remote(from), remote(to)]).await
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_is_the_jail_of_sftp_and_legacy_scp() {
    let sshd = MiniSshd::start(&[]).await;
    std::fs::write(sshd.local().join("up.txt"), b"up\n").unwrap();
    std::fs::write(sshd.root.join("down.txt"), b"down\n").unwrap();

    let out = sshd.sftp("put up.txt\nget /down.txt\nmkdir d\nls -l\n").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&sshd.root.join("up.txt")), b"up\n");
    assert_eq!(read(&sshd.local().join("down.txt")), b"down\n");
    assert!(sshd.root.join("d").is_dir());

    assert!(sshd.scp("up.txt", "REMOTE:d/legacy.txt").await.status.success());
    assert_eq!(read(&sshd.root.join("d/legacy.txt")), b"up\n");
    assert!(sshd.scp("REMOTE:d/legacy.txt", "back.txt").await.status.success());
    assert_eq!(read(&sshd.local().join("back.txt")), b"up\n");

    // Outside the root: nothing, with either protocol.
    assert!(!sshd.sftp("get ../sentinel\n").await.status.success());
    assert!(!sshd.scp("REMOTE:../sentinel", "stolen").await.status.success());
    assert!(!sshd.local().join("sentinel").exists() && !sshd.local().join("stolen").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_read_only_refuses_changes() {
    let sshd = MiniSshd::start(&["--sftp-read-only"]).await;
    std::fs::write(sshd.local().join("up.txt"), b"up\n").unwrap();
    std::fs::write(sshd.root.join("down.txt"), b"down\n").unwrap();

    let out = sshd.sftp("get down.txt\n").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&sshd.local().join("down.txt")), b"down\n");
    let out = sshd.sftp("put up.txt\n").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    assert!(!sshd.scp("up.txt", "REMOTE:up.txt").await.status.success());
    assert!(!sshd.root.join("up.txt").exists());
}
