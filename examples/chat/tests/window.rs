//! The session's terminal handling through russh's client, which can send what
//! a script driving OpenSSH cannot: a window size and window changes.

mod terminal;

use example_chat::{Settings, Users};

use crate::terminal::{Gate, RusshTerminal, chat_server};

fn users() -> Users {
    Users::new().password("alice", "pw").password("bob", "pw")
}

#[tokio::test]
async fn the_prompt_line_fits_the_window_and_follows_its_changes() {
    let server = chat_server(users(), Settings::default()).await;
    let mut alice = RusshTerminal::open(server.addr(), "alice", "pw", 30, 2 << 20, Gate::opened()).await;
    alice.expect("alice> ").await;
    let typed: String = ('a'..='z').chain('A'..='Z').collect();
    alice.send(typed.as_bytes()).await;
    // 30 columns, the last kept free: "alice> " (7), "<", and the last 21 characters.
    alice.expect(&format!("\r\x1b[Kalice> <{}", &typed[typed.len() - 21..])).await;
    alice.input.window_change(100, 24, 0, 0).await.unwrap();
    // 100 columns: the whole line, drawn again at once.
    alice.expect(&format!("\r\x1b[Kalice> {typed}")).await;
    alice.input.window_change(12, 24, 0, 0).await.unwrap();
    // Narrower than the prompt: still 8 characters of the line.
    alice.expect(&format!("\r\x1b[Kalice> <{}", &typed[typed.len() - 7..])).await;
}

#[tokio::test]
async fn a_joiner_sees_the_last_lines_and_a_fast_talker_is_slowed() {
    let settings = Settings { history: 3, burst: 5, ..Settings::default() };
    let server = chat_server(users(), settings).await;
    let mut alice = RusshTerminal::open(server.addr(), "alice", "pw", 80, 2 << 20, Gate::opened()).await;
    alice.expect("alice> ").await;
    // Six lines at once: five pass (the burst), the sixth is refused.
    alice.send(b"one\rtwo\rthree\rfour\rfive\rsix\r").await;
    alice.expect("[slow down: one more line in").await;
    alice.expect("alice: five\r\n").await;
    let mut bob = RusshTerminal::open(server.addr(), "bob", "pw", 80, 2 << 20, Gate::opened()).await;
    // The welcome line, then exactly the last three lines.
    bob.expect("leaves.\r\nalice: three\r\nalice: four\r\nalice: five\r\n\r\x1b[Kbob> ").await;
}

#[tokio::test]
async fn lines_longer_than_the_limit_are_cut_with_a_bell() {
    let settings = Settings { max_line: 10, ..Settings::default() };
    let server = chat_server(users(), settings).await;
    let mut alice = RusshTerminal::open(server.addr(), "alice", "pw", 80, 2 << 20, Gate::opened()).await;
    alice.expect("alice> ").await;
    alice.send(b"0123456789abcdef\r").await;
    alice.expect("\x07").await;
    alice.expect("alice: 0123456789\r\n").await;
}
