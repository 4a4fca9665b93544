//! Connection lifetime: the login grace time and graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh_framework::{ChannelIo, ExitStatus};
use ssh_framework_tests::handlers::PasswordLogin;
use ssh_framework_tests::net::hung_up_by;
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

#[tokio::test]
async fn login_grace_time_drops_a_silent_tcp_client() {
    let server =
        TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).login_grace_time(Duration::from_secs(1))).await;
    let started = Instant::now();
    let mut socket = TcpStream::connect(server.addr()).await.unwrap();

    // Never send anything: read the server's identification, then wait for it to hang up.
    let mut received = Vec::new();
    let read = within("the server to hang up", socket.read_to_end(&mut received)).await;

    let elapsed = started.elapsed();
    assert!(read.is_ok() || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset), "{read:?}");
    assert!(received.starts_with(b"SSH-2.0-"), "{:?}", String::from_utf8_lossy(&received));
    assert!(elapsed >= Duration::from_millis(900), "dropped after {elapsed:?}, before the grace time");
}

#[tokio::test]
async fn login_grace_time_disconnects_a_client_that_never_authenticates() {
    // Long enough for key exchange on a loaded machine; the test waits for the disconnect itself.
    let grace = Duration::from_secs(3);
    let server = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).login_grace_time(grace)).await;
    let started = Instant::now();
    let mut client = RusshClient::connect(server.addr()).await;

    let message = client.disconnected().await;

    assert_eq!(message.as_deref(), Some("Login grace time exceeded"));
    assert!(started.elapsed() >= grace - Duration::from_millis(100), "after {:?}", started.elapsed());
}

#[tokio::test]
async fn login_grace_time_drops_a_client_that_stalls_after_its_version_line() {
    let grace = Duration::from_secs(2);
    let server = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).login_grace_time(grace)).await;
    let started = Instant::now();
    let mut socket = TcpStream::connect(server.addr()).await.unwrap();

    // The version line, then silence: russh waits in key exchange for ever.
    socket.write_all(b"SSH-2.0-Stall_1.0\r\n").await.unwrap();
    hung_up_by(&mut socket, (started + grace + Duration::from_secs(2)).into(), "a stalled client").await;
    let elapsed = started.elapsed();

    assert!(elapsed >= grace - Duration::from_millis(100), "dropped after {elapsed:?}, before the grace time");
}

#[tokio::test]
async fn login_grace_time_drops_a_client_that_trickles_its_key_exchange() {
    let grace = Duration::from_secs(3);
    let server = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).login_grace_time(grace)).await;
    let started = Instant::now();
    let socket = TcpStream::connect(server.addr()).await.unwrap();
    let (mut read, mut write) = socket.into_split();

    // A KEXINIT packet that never ends: its length, then one byte every 2 s.
    write.write_all(b"SSH-2.0-Trickle_1.0\r\n").await.unwrap();
    write.write_all(&4096u32.to_be_bytes()).await.unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if write.write_all(&[20]).await.is_err() {
                return;
            }
        }
    });
    hung_up_by(&mut read, (started + grace + Duration::from_secs(2)).into(), "a trickling client").await;
    let elapsed = started.elapsed();
    trickle.abort();

    assert!(elapsed >= grace - Duration::from_millis(100), "dropped after {elapsed:?}, before the grace time");
}

/// `slow` tells the test it started, then runs until the test releases it.
#[derive(Clone, Default)]
struct Slow {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

#[ssh_framework::server]
impl Slow {
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec("slow")]
    async fn slow(&self, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        self.started.notify_one();
        self.release.notified().await;
        io.stdout.write_all(b"finished\n").await?;
        Ok(ExitStatus::code(7))
    }
}

#[tokio::test]
async fn shutdown_lets_a_running_exec_finish_and_refuses_new_connections() {
    let slow = Slow::default();
    let mut server = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).handlers(slow.clone())).await;
    let running = tokio::spawn(server.ssh("alice").password("pw").run("slow"));
    within("the exec to start", slow.started.notified()).await;

    server.shutdown_handle().shutdown();

    // The listener closes: wait for connection attempts to be refused.
    within("the listener to close", async {
        while TcpStream::connect(server.addr()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let late = server.ssh("alice").password("pw").run("echo late").await;
    assert_eq!(late.code, Some(255), "stderr: {}", late.stderr);
    assert!(late.stderr.contains("Connection refused"), "stderr: {}", late.stderr);

    assert!(!running.is_finished(), "the running exec was not cut off");
    slow.release.notify_one();
    let out = within("the running ssh", running).await.unwrap();
    assert_eq!(out.code, Some(7), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "finished\n");

    // With its last session ended the server stops well before the 30 s drain deadline.
    let released = Instant::now();
    server.stopped().await.expect("the server stops cleanly");
    assert!(released.elapsed() < Duration::from_secs(20), "stopped after {:?}", released.elapsed());
}

#[tokio::test]
async fn shutdown_disconnects_clients_that_have_not_authenticated() {
    let server = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw"))).await;
    let mut client = RusshClient::connect(server.addr()).await;

    server.shutdown_handle().shutdown();

    assert_eq!(client.disconnected().await.as_deref(), Some("Server shutting down"));
}
