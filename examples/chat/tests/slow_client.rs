//! A client that stops reading cannot stall the room, and costs the server a
//! bounded amount of memory. A test binary of its own: it measures this
//! process's resident set.

mod terminal;

use std::time::{Duration, Instant};

use example_chat::{Settings, Users};
use ssh_framework_tests::memory::{MIB, RssPeak};

use crate::terminal::{Gate, RusshTerminal, chat_server, find};

/// Lines bob floods the room with while the slow client is stuck.
const FLOOD: usize = 20_000;
/// Characters in each of them (the limit is 500).
const LINE: usize = 480;
/// The slow client's receive window: the most the server can send it before its writes wait.
const SLOW_WINDOW: u32 = 4096;

#[tokio::test]
async fn a_client_that_never_reads_delays_nobody_and_costs_a_bounded_queue() {
    let users = Users::new().password("slow", "pw").password("bob", "pw").password("carol", "pw");
    // No rate limit for the flood; a ring of 256 lines per session.
    let settings = Settings { burst: u32::MAX, refill: Duration::ZERO, ..Settings::default() };
    let queue = settings.queue;
    let server = chat_server(users, settings).await;

    // slow: its connection stops at the first byte the server sends (the
    // welcome): from then on it reads nothing and grants no window.
    let gate = Gate::closed();
    let mut slow = RusshTerminal::open(server.addr(), "slow", "pw", 80, SLOW_WINDOW, gate.clone()).await;
    gate.reached().await;
    let mut carol = RusshTerminal::open(server.addr(), "carol", "pw", 80, 2 << 20, Gate::opened()).await;
    carol.expect("carol> ").await;
    let mut bob = RusshTerminal::open(server.addr(), "bob", "pw", 80, 2 << 20, Gate::opened()).await;
    bob.expect("bob> ").await;
    carol.expect("*** bob joined").await;
    bob.discard_output();

    // bob floods: 9.6 MB of chat, which slow's session cannot deliver. In
    // steps of 64 lines, each seen by carol before the next is sent, so that
    // nothing else (bob's input, carol's output) piles up: only a queue for
    // slow could make the resident set grow with the flood.
    let rss = RssPeak::start();
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..FLOOD {
        let head = format!("flood {i:05} ");
        batch.extend_from_slice(head.as_bytes());
        batch.resize(batch.len() + LINE - head.len(), b'x');
        batch.push(b'\r');
        if i % 64 == 63 || i == FLOOD - 1 {
            bob.send(&batch).await;
            batch.clear();
            carol.expect(&format!("bob: flood {i:05} ")).await;
        }
    }
    let flooded = started.elapsed();

    // With slow stuck, a line from bob reaches carol at once.
    let sent = Instant::now();
    bob.send(b"ping-final\r").await;
    carol.expect_within("bob: ping-final\r\n", Duration::from_secs(2)).await;
    let latency = sent.elapsed();
    let growth = rss.growth();
    eprintln!("flood of {FLOOD} lines in {flooded:?}; ping to carol in {latency:?}; resident set grew {:.1} MiB", growth as f64 / MIB as f64);
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    // Queued for slow in any unbounded way, the flood alone would be 9.6 MB
    // (measured here: under 1 MiB).
    assert!(growth < 4 * MIB, "the resident set grew {growth} bytes");

    // slow reads again: it gets what its session was writing when it got
    // stuck, a marker for what it missed, and the ring's last lines.
    gate.open();
    let mut seen = Vec::new();
    while find(&seen, b"bob: ping-final\r\n").is_none() {
        let chunk = slow.chunk().await.expect("slow's channel is open");
        seen.extend_from_slice(&chunk);
        assert!(seen.len() < 4 * MIB, "slow received more than the queue can hold");
    }
    let text = String::from_utf8_lossy(&seen);
    let delivered = text.matches("bob: flood ").count();
    let dropped: usize = text
        .split("[")
        .filter_map(|s| s.split_once(" messages dropped]"))
        .map(|(n, _)| n.parse::<usize>().expect("a count"))
        .sum();
    let notices = ["*** carol joined", "*** bob joined", "bob: ping-final"].iter().filter(|n| text.contains(**n)).count();
    eprintln!("slow: {delivered} flood lines delivered, {dropped} dropped, {notices} other lines, {} bytes", seen.len());
    // What reached slow is bounded by the ring, one write batch (64 lines) and its window...
    let most = queue + 64 + SLOW_WINDOW as usize / LINE + 1;
    assert!(delivered <= most, "{delivered} lines delivered, at most {most} expected");
    assert!(dropped > 0, "{text}");
    // ... and every other line is accounted for as dropped (slow's own join
    // notice, delivered and not shown, or dropped, is the one of slack).
    let lines = FLOOD + 3;
    assert!((lines..=lines + 1).contains(&(delivered + notices + dropped)), "{delivered} + {notices} + {dropped} != {lines}");
    drop(slow);
}
