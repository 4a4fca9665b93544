//! Sockets around forwards: TCP and Unix echo servers, free ports, and
//! round trips that tell what came back through a forward.

use std::net::SocketAddr;
use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener};

use crate::openssh::{Running, Ssh};
use crate::within;

/// Echoes every connection until EOF, then closes it.
fn echo<S: AsyncRead + AsyncWrite + Send + 'static>(socket: S) {
    tokio::spawn(async move {
        let (mut r, mut w) = tokio::io::split(socket);
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
    });
}

/// A TCP echo server on 127.0.0.1; each connection echoes until EOF, then closes.
pub async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            echo(socket);
        }
    });
    addr
}

/// A Unix-socket echo server at `path`.
pub fn unix_echo(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            echo(socket);
        }
    });
}

/// A port of 127.0.0.1 that was free a moment ago (for `-L` and fixed `-R` ports).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An address of 127.0.0.1.
pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends `data`, half-closes, and returns everything read back until EOF
/// (writing and reading at once, so a large echo cannot deadlock).
pub async fn round_trip<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    within("the echo to come back", r.read_to_end(&mut back)).await.unwrap();
    writer.await.unwrap();
    back
}

/// [`round_trip`] over a new TCP connection to `addr`.
pub async fn tcp_round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    round_trip(connect(addr).await, data.to_vec()).await
}

/// Connects to `addr` (under the timeout).
pub async fn connect(addr: SocketAddr) -> TcpStream {
    within("connect", TcpStream::connect(addr)).await.unwrap()
}

/// Whether the other end closed `stream` without sending anything back:
/// EOF, or a reset because ssh closed the socket with our data unread.
pub async fn closed_without_data<S: AsyncRead + AsyncWrite>(stream: S) -> bool {
    let (mut r, mut w) = tokio::io::split(stream);
    let _ = w.write_all(b"let me in").await;
    // Half-closed, an echo that did get through answers and ends at once.
    let _ = w.shutdown().await;
    let mut back = Vec::new();
    match within("the refused connection to close", r.read_to_end(&mut back)).await {
        Ok(_) => back.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset && back.is_empty(),
    }
}

/// Reads and discards until the other end hangs up (end of file or an
/// error), failing the test with `what` if it has not by `deadline`.
pub async fn hung_up_by(socket: &mut (impl AsyncRead + Unpin), deadline: tokio::time::Instant, what: &str) {
    let mut sink = [0; 4096];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("{what}: still connected at the deadline"),
        }
    }
}

/// Starts `ssh -L LOCAL:TARGET` on a free local port and returns it once
/// its session is up, with LOCAL.
pub async fn local_tcp_forward(ssh: Ssh, target: SocketAddr) -> (Running, SocketAddr) {
    let local = localhost(free_port());
    let mut running = ssh.args(["-L", &format!("{local}:{target}")]).spawn_forwarding();
    running.line(&format!("Local connections to {local}")).await;
    // ssh logs that line just before it binds; the session's first message comes after.
    running.session_up().await;
    (running, local)
}
