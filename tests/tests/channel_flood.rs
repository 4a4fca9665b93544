//! Floods on one authenticated connection: 10,000 session channel opens and
//! 100 `tcpip-forward` requests. At most the caps are granted, memory stays
//! flat, and nothing outlives the connection.
//!
//! mini-sshd runs in a child process (this binary again, running only the
//! ignored [`mini_sshd_child`]) and the figure is its resident set alone:
//! russh's client keeps a little for every refused open (about 0.5 KiB), so
//! measuring client and server together would blame the server for it.

use std::time::Duration;

use ssh_framework_tests::memory::MIB;
use ssh_framework_tests::mini_sshd::{self, MiniSshd, MiniSshdProcess};
use ssh_framework_tests::net::localhost;
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::within;
use tokio::net::TcpStream;

/// mini-sshd's defaults: `--max-sessions 10`, 16 listeners per connection.
const MAX_SESSIONS: usize = 10;
const MAX_LISTENERS: usize = 16;

/// The server of the test below, when it starts this binary as its child.
#[test]
#[ignore = "the mini-sshd child process of the test below; not a test by itself"]
fn mini_sshd_child() {
    mini_sshd::child_main();
}

#[tokio::test]
async fn channel_and_listener_floods_get_the_caps_and_leave_nothing_behind() {
    let base = MiniSshd::base();
    std::fs::create_dir(base.path().join("root")).unwrap();
    let sshd = MiniSshdProcess::start("mini_sshd_child", base, &["--user=bob:pw", "--allow-tcp-forwarding"], None).await;
    let client = RusshClient::login_password(sshd.addr(), "bob", "pw").await;
    let before = sshd.rss();

    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..10_000 {
        match within("a session open", client.handle.channel_open_session()).await {
            Ok(channel) => open.push(channel),
            Err(_) => refused += 1,
        }
    }
    let sessions_growth = sshd.rss().saturating_sub(before);
    assert_eq!((open.len(), refused), (MAX_SESSIONS, 10_000 - MAX_SESSIONS));
    assert!(sessions_growth < 4 * MIB, "10,000 session opens grew the server by {} KiB", sessions_growth >> 10);

    let mut ports = Vec::new();
    for _ in 0..100 {
        if let Ok(port) = within("tcpip-forward", client.handle.tcpip_forward("127.0.0.1", 0)).await {
            ports.push(u16::try_from(port).unwrap());
        }
    }
    assert_eq!(ports.len(), MAX_LISTENERS, "{ports:?}");
    for &port in &ports {
        assert!(TcpStream::connect(localhost(port)).await.is_ok(), "a granted listener on {port} is not listening");
    }

    // Gone with the connection: every listener closes.
    drop(open);
    drop(client);
    within("every listener to close", async {
        for &port in &ports {
            while TcpStream::connect(localhost(port)).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await;
    let growth = sshd.rss().saturating_sub(before);
    assert!(growth < 4 * MIB, "the floods grew the server by {} KiB", growth >> 10);
}
