//! The limit layers of `ssh_framework::limit`: installed by default,
//! replaced, removed, added as ordinary layers, and the caps new to them
//! (connections on the server, sessions per user, channels of every kind).

use std::time::{Duration, Instant};

use russh::ChannelOpenFailure;
use ssh_framework::limit::{
    LoginGraceTime, MaxAuthRequests, MaxAuthTries, MaxChannels, MaxConnections, MaxSessions, MaxSessionsPerUser,
};
use ssh_framework::{Auth, ServerBuilder};
use ssh_framework_tests::handlers::{Commands, PasswordLogin};
use ssh_framework_tests::net::{closed_without_data, connect};
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;
use tokio::io::AsyncReadExt;

/// Any user, password `pw`.
struct AnyUser;

#[ssh_framework::server]
impl AnyUser {
    #[auth(password)]
    async fn password(&self, _user: &str, password: &str) -> Auth {
        if password == "pw" { Auth::Accept } else { Auth::Reject }
    }
}

async fn server(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
    TestServer::start(|b| configure(b.handlers(AnyUser).handlers(Commands::new()))).await
}

async fn refused(client: &RusshClient) -> Option<ChannelOpenFailure> {
    match within("channel open", client.handle.channel_open_session()).await {
        Ok(_) => None,
        Err(russh::Error::ChannelOpenFailure(reason)) => Some(reason),
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn max_connections_drops_the_connection_past_the_cap_and_admits_again_when_one_leaves() {
    let server = server(|b| b.limit(MaxConnections::new(2))).await;
    let first = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let _second = RusshClient::connect(server.addr()).await;

    // The third gets nothing, not even the server's version line.
    assert!(closed_without_data(connect(server.addr()).await).await, "a third connection was served");

    drop(first);
    // The first one's place frees once the server has seen it go.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut socket = connect(server.addr()).await;
        let mut line = [0; 8];
        if socket.read_exact(&mut line).await.is_ok() {
            assert_eq!(&line, b"SSH-2.0-");
            break;
        }
        assert!(Instant::now() < deadline, "no place freed 5 s after a connection left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn max_sessions_per_user_counts_sessions_across_connections_and_other_users_are_not_held() {
    let server = server(|b| b.limit(MaxSessionsPerUser::new(2))).await;
    let alice_one = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let alice_two = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let bob = RusshClient::login_password(server.addr(), "bob", "pw").await;

    let first = alice_one.session().await;
    let _second = alice_two.session().await;
    assert_eq!(refused(&alice_two).await, Some(ChannelOpenFailure::ResourceShortage), "a third session of alice's");
    assert_eq!(refused(&alice_one).await, Some(ChannelOpenFailure::ResourceShortage), "a third session on her other connection");
    let _bobs = bob.session().await;

    // Closing one of hers makes room again on either connection, once the
    // server has taken the close: her connections may be served on different
    // threads, so the other one can ask first. Only a refusal for lack of room
    // is retried, and only for 5 s.
    first.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut again = loop {
        match within("open", alice_two.handle.channel_open_session()).await {
            Ok(channel) => break channel,
            Err(russh::Error::ChannelOpenFailure(ChannelOpenFailure::ResourceShortage)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("a session after one closed: {other:?}"),
        }
    };
    again.exec(true, "echo room").await.unwrap();
    assert_eq!(read_to_close(&mut again).await.stdout, b"room\n");
}

#[tokio::test]
async fn max_channels_counts_session_channels_too() {
    let server = server(|b| b.limit(MaxChannels::new(2))).await;
    let client = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let _one = client.session().await;
    let _two = client.session().await;
    assert_eq!(refused(&client).await, Some(ChannelOpenFailure::ResourceShortage));
}

#[tokio::test]
async fn a_limit_added_as_a_layer_overrides_the_default_for_the_connections_it_sees() {
    // The default MaxSessions is 10; a layer after it sets 3.
    let server = server(|b| b.layer(MaxSessions::new(3))).await;
    let client = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(client.session().await);
    }
    assert_eq!(refused(&client).await, Some(ChannelOpenFailure::ResourceShortage));
}

#[tokio::test]
async fn without_limit_removes_a_default_and_limit_replaces_one() {
    let grace = Duration::from_secs(1);
    // Replaced: the grace time is one second, not 120.
    let replaced = TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).limit(LoginGraceTime::new(grace))).await;
    // Removed: nothing drops a silent client.
    let removed = TestServer::start(|b| {
        b.handlers(PasswordLogin::new("alice", "pw")).login_grace_time(grace).without_limit::<LoginGraceTime>()
    })
    .await;
    let started = Instant::now();
    let mut dropped = connect(replaced.addr()).await;
    let mut kept = connect(removed.addr()).await;

    let mut sink = Vec::new();
    within("the grace time to drop the client", dropped.read_to_end(&mut sink)).await.ok();
    let elapsed = started.elapsed();
    assert!(elapsed >= grace - Duration::from_millis(100) && elapsed < grace + Duration::from_secs(3), "dropped after {elapsed:?}");

    // Three grace times later the other one is still open: reading it to its end does not finish.
    let mut received = Vec::new();
    let ended = tokio::time::timeout(grace * 3, kept.read_to_end(&mut received)).await;
    assert!(ended.is_err(), "the connection without a grace time ended: {ended:?}");
    assert!(received.starts_with(b"SSH-2.0-"), "{:?}", String::from_utf8_lossy(&received));
}

#[tokio::test]
async fn max_auth_requests_disconnects_past_the_cap_whatever_max_auth_tries_allows() {
    let login = PasswordLogin::new("alice", "pw");
    let attempts = login.clone();
    let server = TestServer::start(|b| {
        b.handlers(login).limit(MaxAuthTries::new(100)).limit(MaxAuthRequests::new(3)).rejection_delay(Duration::ZERO)
    })
    .await;
    let mut client = RusshClient::connect(server.addr()).await;
    for n in 0..3 {
        let auth = within("a wrong password", client.handle.authenticate_password("alice", "wrong")).await;
        assert!(matches!(auth, Ok(ref a) if !a.success()), "attempt {n}: {auth:?}");
    }

    // The fourth request is past the cap: no answer, the connection ends.
    let fourth = within("the fourth request", client.handle.authenticate_password("alice", "pw")).await;
    assert!(fourth.is_err() || fourth.as_ref().is_ok_and(|a| !a.success()), "{fourth:?}");
    client.disconnected().await;
    assert_eq!(attempts.attempts().len(), 3, "the handler saw exactly the capped requests: {:?}", attempts.attempts());
}
