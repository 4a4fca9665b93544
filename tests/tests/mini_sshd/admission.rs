//! Admission of unauthenticated connections (`MaxStartups`): a burst of
//! honest logins gets in with the defaults, and the cap holds when set low.

use ssh_framework_tests::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::with_bob;

/// Logins started at once, per round.
const BURST: usize = 50;

#[tokio::test]
async fn a_burst_of_fifty_parallel_logins_all_get_in_with_the_defaults() {
    let sshd = with_bob(&[]).await;
    for round in 1..=3 {
        let logins = (0..BURST).map(|_| sshd.ssh("bob").password("pw").run("true"));
        let outputs = futures_util::future::join_all(logins).await;

        let failures: Vec<&str> = outputs.iter().filter(|o| o.code != Some(0)).map(|o| o.stderr.as_str()).collect();
        assert!(failures.is_empty(), "round {round}: {} of {BURST} logins failed; first: {:?}", failures.len(), failures[0]);
    }
}

/// Connects and sends a version line; returns the socket and what the server
/// sent before it stopped sending (its version line, or nothing if dropped).
async fn version_exchange(addr: std::net::SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(b"SSH-2.0-Admission_1.0\r\n").await.unwrap();
    let mut received = vec![0; 256];
    let n = within("the server's first bytes", socket.read(&mut received)).await.unwrap_or(0);
    received.truncate(n);
    (socket, received)
}

#[tokio::test]
async fn past_max_startups_a_connection_is_dropped_until_a_slot_frees() {
    let sshd = with_bob(&["--max-startups=2"]).await;
    let (first, greeting) = version_exchange(sshd.addr()).await;
    assert!(greeting.starts_with(b"SSH-2.0-"), "{greeting:?}");
    let (_second, greeting) = version_exchange(sshd.addr()).await;
    assert!(greeting.starts_with(b"SSH-2.0-"), "{greeting:?}");

    // Two unauthenticated connections held: the third is closed unanswered.
    let (_third, greeting) = version_exchange(sshd.addr()).await;
    assert_eq!(greeting, b"", "a third unauthenticated connection was answered");

    // Once one leaves, its slot is free again (after the server notices).
    drop(first);
    let admitted = within("a slot to free", async {
        loop {
            let (_socket, greeting) = version_exchange(sshd.addr()).await;
            if greeting.starts_with(b"SSH-2.0-") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    admitted.await;
}
