//! The chat driven as its users drive it: OpenSSH's `ssh -tt`, keys typed
//! into it, the screen read back.

mod terminal;

use example_chat::{Settings, Users};
use ssh_framework_tests::openssh::keygen;

use crate::terminal::{Terminal, chat_server, find};

#[tokio::test]
async fn two_users_see_each_others_joins_messages_who_and_leave() {
    // bob logs in with a key from his authorized_keys file, alice with a password.
    let keys = tempfile::tempdir().unwrap();
    let bob_key = keygen(keys.path(), "bob").await;
    let users = Users::new().password("alice", "alice-pw").authorized_keys("bob", &bob_key.public_file()).unwrap();
    let server = chat_server(users, Settings::default()).await;

    let mut alice = Terminal::start(server.ssh("alice").password("alice-pw"));
    alice.expect("Welcome to the chat").await;
    alice.expect("alice> ").await;
    let mut bob = Terminal::start(server.ssh("bob").identity(&bob_key.path));
    bob.expect("bob> ").await;
    alice.expect("*** bob joined").await;

    bob.send(b"hello from bob\r").await;
    alice.expect("bob: hello from bob\r\n").await;
    // alice's half-typed line is drawn again under bob's next message.
    alice.send(b"half-typed").await;
    alice.expect("alice> half-typed").await;
    bob.send(b"second\r").await;
    alice.expect("bob: second\r\n\r\x1b[Kalice> half-typed").await;
    alice.send(b"\x15/who\r").await;
    alice.expect("[in the room: alice, bob]").await;
    alice.send(b"/me waves\r").await;
    bob.expect("* alice waves").await;

    // Ctrl-D leaves: bob's ssh ends with status 0, alice is told.
    bob.send(b"\x04").await;
    assert_eq!(bob.exit_code().await, Some(0), "{}", bob.text());
    assert!(bob.text().contains("Bye."), "{}", bob.text());
    alice.expect("*** bob left").await;
    alice.send(b"/quit\r").await;
    assert_eq!(alice.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_control_sequence_typed_by_one_user_reaches_the_other_escaped() {
    let users = Users::new().password("alice", "alice-pw").password("bob", "bob-pw");
    let server = chat_server(users, Settings::default()).await;
    let mut alice = Terminal::start(server.ssh("alice").password("alice-pw"));
    alice.expect("alice> ").await;
    let mut bob = Terminal::start(server.ssh("bob").password("bob-pw"));
    bob.expect("bob> ").await;
    alice.expect("*** bob joined").await;

    // Red text, a bell, a window title, a screen clear, and a C1 CSI (U+009B) in UTF-8.
    bob.send(b"\x1b[31mred\x07 \x1b]0;pwned\x07 \x1b[2J \xc2\x9b6n end\r").await;
    alice.expect("bob: ^[[31mred^G ^[]0;pwned^G ^[[2J <U+009B>6n end\r\n").await;
    for raw in [&b"\x1b[31m"[..], b"\x07", b"\x1b]0", b"\x1b[2J", b"\xc2\x9b"] {
        assert!(find(&alice.seen, raw).is_none(), "{raw:?} reached alice's terminal: {:?}", alice.text());
        assert!(find(&bob.seen, raw).is_none(), "{raw:?} reached bob's own terminal: {:?}", bob.text());
    }
    // The only escape sequence the server ever writes is its own erase-line.
    let escapes = alice.seen.iter().filter(|b| **b == 0x1b).count();
    let erases = alice.text().matches("\r\x1b[K").count();
    assert_eq!(escapes, erases, "{:?}", alice.text());
}

#[tokio::test]
async fn a_session_without_a_pty_gets_a_message_and_exit_1() {
    let server = chat_server(Users::new().password("alice", "alice-pw"), Settings::default()).await;
    // `-T`: no pty; no command: the shell.
    let output = server.ssh("alice").password("alice-pw").run("").await;
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.stderr.contains("the chat needs a terminal: connect with `ssh -t`"), "{output:?}");
}
