//! Hostile bytes before and at the first packet: junk lines before the
//! version line, a version line that never ends, a packet length of nearly
//! 4 GiB. Each connection is closed, the server's memory does not grow, and
//! the server still logs a client in afterwards.
//!
//! The server runs in this process and the figure is this process's
//! resident set, client included. This binary holds this one test so that
//! no other test's memory is counted.

use std::time::Duration;

use ssh_framework_tests::handlers::{Commands, PasswordLogin};
use ssh_framework_tests::memory::{MIB, RssPeak};
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most the server may grow for any one attack.
const BOUND: usize = 10 * MIB;

/// Sends `bytes` (in one write, or as far as the server reads before it hangs
/// up), then waits for the server to close the connection; returns what it sent.
async fn closed_after(server: &TestServer, bytes: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(server.addr()).await.unwrap();
    let (mut read, mut write) = socket.split();
    // A write cut short by the server's close is the expected outcome.
    let _ = write.write_all(bytes).await;
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the server kept the connection open; it sent {:?}", String::from_utf8_lossy(&received));
    received
}

async fn logs_in(server: &TestServer) {
    let client = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let mut channel = client.exec("echo still serving").await;
    assert_eq!(within("the exec", read_to_close(&mut channel)).await.stdout, b"still serving\n");
}

#[tokio::test]
async fn hostile_first_bytes_are_closed_without_growth_and_the_server_still_serves() {
    let server = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).handlers(Commands::new())).await;
    logs_in(&server).await;

    let junk_lines = b"this is not a version line\r\n".repeat(10_000);
    let endless_version = [b"SSH-2.0-".as_slice(), &vec![b'a'; MIB]].concat();
    let huge_packet = [b"SSH-2.0-Hostile_1.0\r\n".as_slice(), &0xFFFF_FFF0u32.to_be_bytes(), &[0u8; 64]].concat();
    let attacks: [(&str, &[u8]); 3] = [
        ("10,000 junk lines before the version line", &junk_lines),
        ("1 MiB of version line with no newline", &endless_version),
        ("a packet length of 0xFFFFFFF0", &huge_packet),
    ];
    for (attack, bytes) in attacks {
        let peak = RssPeak::start();
        let received = closed_after(&server, bytes).await;
        let growth = peak.growth();

        assert!(received.starts_with(b"SSH-2.0-"), "{attack}: {:?}", String::from_utf8_lossy(&received));
        assert!(growth < BOUND, "{attack}: the server grew by {} KiB", growth >> 10);
        logs_in(&server).await;
    }
}
