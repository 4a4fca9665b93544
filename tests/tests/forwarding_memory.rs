//! 120 `direct-tcpip` channels on one connection to a destination that
//! accepts and never reads, each pushed as far as the server lets the client
//! (issue 12, medium 5): the server's channel buffers stay within the
//! connection's budget (64 MiB) instead of a window per channel (8 MiB each,
//! 960 MiB), and once the destination reads, the same connection works.
//!
//! mini-sshd runs in a child process (this binary again, running only the
//! ignored [`mini_sshd_child`]) and the figure is its resident set alone: the
//! client's 120 pushing tasks in this process no longer blur it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ssh_framework_tests::memory::MIB;
use ssh_framework_tests::mini_sshd::{self, MiniSshd, MiniSshdProcess};
use ssh_framework_tests::net::{round_trip, tcp_echo};
use ssh_framework_tests::openssh::keygen;
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::within;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const CHANNELS: usize = 120;
/// What each channel tries to push: one default window.
const PER_CHANNEL: usize = 8 * MIB;
/// The push ends when the client made no progress for this long (the server
/// stopped reading), or after [`MAX_PUSH`].
const NO_PROGRESS: Duration = Duration::from_secs(2);
const MAX_PUSH: Duration = Duration::from_secs(30);
/// The connection's budget (the default) plus what 120 forwarded connections
/// cost the server besides their buffers (two 64 KiB copy buffers each,
/// tasks, sockets) and the allocator's slack.
const BOUND: usize = 64 * MIB + 32 * MIB;

/// The server of the test below, when it starts this binary as its child.
#[test]
#[ignore = "the mini-sshd child process of the test below; not a test by itself"]
fn mini_sshd_child() {
    mini_sshd::child_main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_channels_to_a_destination_that_never_reads_stay_within_the_connection_budget() {
    let base = MiniSshd::base();
    std::fs::create_dir(base.path().join("root")).unwrap();
    let key = keygen(base.path(), "alice").await;
    let authorized = format!("--authorized-keys=alice:{}", key.public_file().display());
    let server = MiniSshdProcess::start("mini_sshd_child", base, &[&authorized, "--allow-tcp-forwarding"], None).await;
    let client = RusshClient::login_key(server.addr(), "alice", &key).await;

    // The destination: accepts, holds every socket, reads nothing until told.
    // A small receive buffer, inherited by every accepted socket, keeps the
    // kernel from taking in what the server should be holding back.
    let destination = TcpSocket::new_v4().unwrap();
    destination.set_recv_buffer_size(4096).unwrap();
    destination.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let destination = destination.listen(1024).unwrap();
    let port = destination.local_addr().unwrap().port();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel::<TcpStream>();
    let acceptor = tokio::spawn(async move {
        while let Ok((socket, _)) = destination.accept().await {
            let _ = held_tx.send(socket);
        }
    });

    // From after the login: what the forwarded connections cost.
    let idle = server.rss();
    let mut peak = idle;
    let mut channels = Vec::new();
    for i in 0..CHANNELS {
        let open = client.handle.channel_open_direct_tcpip(
            "127.0.0.1",
            u32::from(port),
            "127.0.0.1",
            40000 + i as u32,
        );
        channels.push(
            within("a direct-tcpip channel opens", open)
                .await
                .expect("the server opens the channel"),
        );
    }
    let pushed = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let chunk: Arc<[u8]> = vec![0x5a; 32 << 10].into();
    let pushers: Vec<_> = channels
        .into_iter()
        .map(|channel| {
            let (pushed, chunk, mut stop) = (pushed.clone(), chunk.clone(), stop_rx.clone());
            tokio::spawn(async move {
                let push = async {
                    for _ in 0..PER_CHANNEL / chunk.len() {
                        if channel.data(&chunk[..]).await.is_err() {
                            break;
                        }
                        pushed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                };
                tokio::select! {
                    () = push => {}
                    _ = stop.wait_for(|stop| *stop) => {}
                }
                channel
            })
        })
        .collect();
    // No event says "the server stopped reading": watch the client's progress.
    let started = Instant::now();
    let (mut last, mut last_change) = (0, Instant::now());
    while started.elapsed() < MAX_PUSH
        && last_change.elapsed() < NO_PROGRESS
        && !pushers.iter().all(|p| p.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(server.rss());
        let now = pushed.load(Ordering::Relaxed);
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    let _ = stop_tx.send(true);
    let mut channels = Vec::new();
    for pusher in pushers {
        channels.push(pusher.await.unwrap());
    }
    let growth = peak.max(server.rss()) - idle;
    let pushed = pushed.load(Ordering::Relaxed) as usize;
    eprintln!(
        "{CHANNELS} channels: client pushed {} MiB in {:.1} s; the server's resident set grew by {} MiB at most (bound {} MiB)",
        pushed / MIB,
        started.elapsed().as_secs_f64(),
        growth / MIB,
        BOUND / MIB
    );
    assert!(
        pushed >= 64 * MIB,
        "the client could push only {} MiB: the attack did not happen",
        pushed / MIB
    );
    assert!(
        growth < BOUND,
        "the server's resident set grew by {} MiB, more than {} MiB",
        growth / MIB,
        BOUND / MIB
    );

    // The destination starts reading: the buffers drain and the same
    // connection carries a new forwarded connection again.
    let mut drains = Vec::new();
    for _ in 0..CHANNELS {
        let mut socket = within("every channel reached the destination", held_rx.recv())
            .await
            .expect("the acceptor runs");
        drains.push(tokio::spawn(async move {
            let mut buf = vec![0; 64 << 10];
            while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        }));
    }
    acceptor.abort();
    let echo = tcp_echo().await;
    let open = client.handle.channel_open_direct_tcpip(
        "127.0.0.1",
        u32::from(echo.port()),
        "127.0.0.1",
        1,
    );
    let channel = within("a channel opens after the buffers drained", open)
        .await
        .expect("the server opens the channel");
    let data = ssh_framework_tests::data::pseudo_random(1 << 20, 12);
    let back = within(
        "a round trip after the buffers drained",
        round_trip(channel.into_stream(), data.clone()),
    )
    .await;
    assert!(back == data, "the echo came back different");
    drop(channels);
    for drain in drains {
        drain.abort();
    }
}
