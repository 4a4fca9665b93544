//! Floods on one authenticated connection: 10,000 session channel opens and
//! 100 `tcpip-forward` requests. At most the caps are granted, memory stays
//! flat, and nothing outlives the connection.
//!
//! mini-sshd runs in this process and the figure is this process's resident
//! set, client included. This binary holds this one test so that no other
//! test's memory is counted.

use std::time::Duration;

use ssh_framework_tests::memory::{MIB, RssPeak};
use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::net::localhost;
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::within;
use tokio::net::TcpStream;

/// mini-sshd's defaults: `--max-sessions 10`, 16 listeners per connection.
const MAX_SESSIONS: usize = 10;
const MAX_LISTENERS: usize = 16;

#[tokio::test]
async fn channel_and_listener_floods_get_the_caps_and_leave_nothing_behind() {
    let sshd = MiniSshd::start(&["--user=bob:pw", "--allow-tcp-forwarding"]).await;
    let client = RusshClient::login_password(sshd.addr(), "bob", "pw").await;
    let peak = RssPeak::start();

    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..10_000 {
        match within("a session open", client.handle.channel_open_session()).await {
            Ok(channel) => open.push(channel),
            Err(_) => refused += 1,
        }
    }
    let sessions_growth = peak.growth();
    assert_eq!((open.len(), refused), (MAX_SESSIONS, 10_000 - MAX_SESSIONS));
    assert!(sessions_growth < 16 * MIB, "10,000 session opens grew the process by {} KiB", sessions_growth >> 10);

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
    let growth = peak.growth();
    assert!(growth < 16 * MIB, "the floods grew the process by {} KiB", growth >> 10);
}
