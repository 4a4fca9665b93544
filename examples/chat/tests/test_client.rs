//! The room through `ssh_framework::testing::TestClient`: two users in one
//! process, no socket, the screens they would see.

use example_chat::{Chat, Settings, Users};
use ssh_framework::Server;
use ssh_framework::testing::{self, TestClient};

#[tokio::test]
async fn two_users_talk_and_see_each_other_leave() {
    let users = Users::new().password("alice", "pw").password("bob", "pw");
    let chat = Chat::new(users, Settings::default());
    let server = Server::builder().handlers(chat).host_key(testing::ed25519_key()).build().await.unwrap();

    let mut alice = TestClient::connect(&server).await.unwrap();
    assert!(alice.login_password("alice", "pw").await.unwrap().is_accepted());
    let mut alice = alice.shell(80, 24).await.unwrap();
    alice.wait_for("alice> ").await.unwrap();

    let mut bob = TestClient::connect(&server).await.unwrap();
    assert!(bob.login_password("bob", "pw").await.unwrap().is_accepted());
    let mut bob = bob.shell(80, 24).await.unwrap();
    bob.wait_for("bob> ").await.unwrap();
    alice.wait_for("bob joined").await.unwrap();

    bob.send("hello alice\r").await.unwrap();
    alice.wait_for("bob: hello alice").await.unwrap();
    // What alice had half-typed is drawn again below the new line.
    alice.send("hi b").await.unwrap();
    bob.send("still there?\r").await.unwrap();
    alice.wait_until(|p| p.screen().contents().contains("bob: still there?\nalice> hi b")).await.unwrap();

    bob.send([4u8]).await.unwrap(); // Ctrl-D
    assert!(bob.wait().await.unwrap().success());
    alice.wait_for("bob left").await.unwrap();
}

#[tokio::test]
async fn the_room_refuses_a_session_without_a_terminal() {
    let users = Users::new().password("alice", "pw");
    let server =
        Server::builder().handlers(Chat::new(users, Settings::default())).host_key(testing::ed25519_key()).build().await.unwrap();
    let mut client = TestClient::connect(&server).await.unwrap();
    assert!(client.login_password("alice", "pw").await.unwrap().is_accepted());
    let output = client.session().shell().await.unwrap().wait().await.unwrap();
    assert_eq!(output.code(), Some(1));
    assert!(output.stderr_text().contains("ssh -t"), "{}", output.stderr_text());
}
