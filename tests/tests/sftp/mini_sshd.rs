//! mini-sshd's file serving: `--root` is the jail of SFTP and legacy SCP,
//! `--sftp-read-only` refuses changes; driven by OpenSSH's `sftp` and `scp -O`.

use std::path::{Path, PathBuf};

use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::openssh::{Ssh, SshOutput};

use crate::alice_client;

/// A mini-sshd serving `BASE/root` to alice, with `BASE/local` for the
/// client and `BASE/sentinel` outside the root.
struct Files {
    sshd: MiniSshd,
}

impl Files {
    async fn start(flags: &[&str]) -> Files {
        let sshd = MiniSshd::with_alice_key(flags).await;
        std::fs::create_dir(sshd.dir().join("local")).unwrap();
        std::fs::write(sshd.dir().join("sentinel"), b"outside\n").unwrap();
        Files { sshd }
    }

    fn root(&self) -> PathBuf {
        self.sshd.root()
    }

    fn local(&self) -> PathBuf {
        self.sshd.dir().join("local")
    }

    async fn sftp(&self, batch: &str) -> SshOutput {
        alice_client(Ssh::sftp, self.sshd.port(), self.sshd.key(), &self.local()).batch(batch).await
    }

    /// `scp -O FROM TO`, where `REMOTE:` stands for `alice@127.0.0.1:`.
    async fn scp(&self, from: &str, to: &str) -> SshOutput {
        alice_client(Ssh::scp, self.sshd.port(), self.sshd.key(), &self.local()).copy(&["-O", from, to]).await
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_is_the_jail_of_sftp_and_legacy_scp() {
    let sshd = Files::start(&[]).await;
    std::fs::write(sshd.local().join("up.txt"), b"up\n").unwrap();
    std::fs::write(sshd.root().join("down.txt"), b"down\n").unwrap();

    sshd.sftp("put up.txt\nget /down.txt\nmkdir d\nls -l\n").await.ok();
    assert_eq!(read(&sshd.root().join("up.txt")), b"up\n");
    assert_eq!(read(&sshd.local().join("down.txt")), b"down\n");
    assert!(sshd.root().join("d").is_dir());

    sshd.scp("up.txt", "REMOTE:d/legacy.txt").await.ok();
    assert_eq!(read(&sshd.root().join("d/legacy.txt")), b"up\n");
    sshd.scp("REMOTE:d/legacy.txt", "back.txt").await.ok();
    assert_eq!(read(&sshd.local().join("back.txt")), b"up\n");

    // Outside the root: nothing, with either protocol.
    sshd.sftp("get ../sentinel\n").await.failed();
    sshd.scp("REMOTE:../sentinel", "stolen").await.failed();
    assert!(!sshd.local().join("sentinel").exists() && !sshd.local().join("stolen").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_read_only_refuses_changes() {
    let sshd = Files::start(&["--sftp-read-only"]).await;
    std::fs::write(sshd.local().join("up.txt"), b"up\n").unwrap();
    std::fs::write(sshd.root().join("down.txt"), b"down\n").unwrap();

    sshd.sftp("get down.txt\n").await.ok();
    assert_eq!(read(&sshd.local().join("down.txt")), b"down\n");
    let out = sshd.sftp("put up.txt\n").await;
    out.failed();
    assert!(out.stderr.contains("Permission denied"));
    sshd.scp("up.txt", "REMOTE:up.txt").await.failed();
    assert!(!sshd.root().join("up.txt").exists());
}
