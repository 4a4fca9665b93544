//! The open-file budget, and the accept loop when the server runs out of
//! file descriptors (issue 12, medium 2).
//!
//! mini-sshd runs in a child process, this test binary again running only the
//! ignored [`mini_sshd_child`], under a hard and soft `RLIMIT_NOFILE` set with
//! the shell's `ulimit -n`: the limits hit are the kernel's, and no other test
//! shares that process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ssh_framework_tests::mini_sshd::{self, MiniSshd, MiniSshdProcess};
use ssh_framework_tests::openssh::{ClientKey, Ssh, keygen};
use ssh_framework_tests::russh_client::RusshClient;

use crate::raw::{FXF_READ, FXP_HANDLE, FXP_OPEN, FXP_STATUS, RawSftp, open_body, status_code};

/// mini-sshd for the tests below, when they start this binary as its child;
/// does nothing otherwise.
#[test]
#[ignore = "the mini-sshd child process the budget tests start; not a test by itself"]
fn mini_sshd_child() {
    mini_sshd::child_main();
}

/// A mini-sshd child process with `nofile` descriptors at most, users alice
/// and bob (keys), and `root/file` to open.
struct Child {
    server: MiniSshdProcess,
    addr: SocketAddr,
    alice: ClientKey,
    bob: ClientKey,
}

impl Child {
    async fn start(nofile: u32) -> Child {
        let base = MiniSshd::base();
        std::fs::create_dir(base.path().join("root")).unwrap();
        std::fs::create_dir(base.path().join("local")).unwrap();
        std::fs::write(base.path().join("root/file"), b"hello\n").unwrap();
        let alice = keygen(base.path(), "alice").await;
        let bob = keygen(base.path(), "bob").await;
        let flags = [
            format!("--authorized-keys=alice:{}", alice.public_file().display()),
            format!("--authorized-keys=bob:{}", bob.public_file().display()),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server = MiniSshdProcess::start("budget::mini_sshd_child", base, &flags, Some(nofile)).await;
        Child { addr: server.addr(), server, alice, bob }
    }

    fn log(&self) -> String {
        self.server.log()
    }

    fn bob(&self, program: fn(u16, &str) -> Ssh) -> Ssh {
        program(self.addr.port(), "bob").identity(&self.bob.path).option("BatchMode=yes").current_dir(&self.server.dir().join("local"))
    }
}

/// The message of an `SSH_FXP_STATUS` body (after the id).
fn status_message(body: &[u8]) -> String {
    let len = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
    String::from_utf8_lossy(&body[8..8 + len]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_holding_every_file_it_may_cannot_stop_another_users_login_or_opens() {
    // 1,024 descriptors, the usual soft limit: a budget of 512 open files, 128 per user.
    let child = Child::start(1024).await;

    // The attack of the report: five SFTP sessions opening 256 handles each
    // took every descriptor, and the accept loop then failed with EMFILE.
    let started = Instant::now();
    let (mut granted, mut refused) = (0, 0);
    let mut sessions = Vec::new();
    for _ in 0..5 {
        let mut sftp = RawSftp::start(RusshClient::login_key(child.addr, "alice", &child.alice).await).await;
        for id in 0..256 {
            let (kind, body) = sftp.call(FXP_OPEN, id, &open_body(b"file", FXF_READ)).await;
            match kind {
                FXP_HANDLE => granted += 1,
                FXP_STATUS => {
                    assert_eq!((status_code(&body), status_message(&body).as_str()), (4, "Too many open files"));
                    refused += 1;
                }
                other => panic!("unexpected answer {other} to an open"),
            }
        }
        sessions.push(sftp);
    }
    let elapsed = started.elapsed();
    println!("alice: {granted} handles granted, {refused} refused, in {elapsed:?}");
    assert_eq!((granted, refused), (128, 5 * 256 - 128), "alice holds her share and no more");
    assert!(elapsed < Duration::from_secs(30), "1,280 opens, refused ones included, took {elapsed:?}");

    // While alice holds all she may, bob logs in and opens a file over SFTP.
    let out = child.bob(Ssh::new).run("echo bob-ok").await;
    out.ok();
    assert_eq!(out.stdout_text(), "bob-ok\n");
    child.bob(Ssh::sftp).batch("get file\n").await.ok();
    assert_eq!(std::fs::read(child.server.dir().join("local/file")).unwrap(), b"hello\n");
    assert!(!child.log().contains("accept failed"), "the server never ran out of descriptors:\n{}", child.log());
    drop(sessions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accept_loop_survives_running_out_of_descriptors_and_recovers() {
    // 64 descriptors: alice's connections (one socket each) take them all.
    let child = Child::start(64).await;
    let mut held = Vec::new();
    let mut exhausted = false;
    for _ in 0..100 {
        // Out of descriptors, the server cannot accept: the client waits for its banner.
        match tokio::time::timeout(Duration::from_secs(2), RusshClient::login_key(child.addr, "alice", &child.alice)).await {
            Ok(client) => held.push(client),
            Err(_) => {
                exhausted = true;
                break;
            }
        }
    }
    assert!(exhausted, "100 connections did not exhaust 64 descriptors");
    println!("the server accepted {} connections of alice's, then ran out of descriptors", held.len());
    assert!(held.len() >= 20, "only {} connections before exhaustion", held.len());
    assert!(child.log().contains("accept failed; retrying"), "no accept failure was logged:\n{}", child.log());

    for client in held.drain(..) {
        let _ = client.handle.disconnect(russh::Disconnect::ByApplication, "", "").await;
    }
    let out = child.bob(Ssh::new).run("echo bob-ok").await;
    out.ok();
    assert_eq!(out.stdout_text(), "bob-ok\n");
}
