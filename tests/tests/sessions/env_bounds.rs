//! Environment requests (issue 12, medium 4): bounded by name length
//! (256 B), value length (32 KiB) and total per channel (64 KiB), refused
//! beyond before any handler runs, and shared, not copied, by every later
//! channel request.

use std::sync::{Arc, Mutex};

use ssh_framework::request::{Request, RequestKind};
use ssh_framework::tower::util::MapRequestLayer;
use ssh_framework_tests::handlers::{AnyEnv, PasswordLogin};
use ssh_framework_tests::russh_client::{RusshClient, set_env};
use ssh_framework_tests::server::TestServer;


/// The environment size bounds, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_requests_beyond_the_name_value_and_total_bounds_are_refused_before_the_handler() {
    let handlers = AnyEnv::default();
    let server = TestServer::start(|b| {
        b.handlers(PasswordLogin::new("alice", "pw"))
            .handlers(handlers.clone())
    })
    .await;
    let client = RusshClient::login_password(server.addr(), "alice", "pw").await;

    let mut channel = client.session().await;
    let name_256 = "N".repeat(256);
    assert!(
        set_env(&mut channel, &name_256, "x").await,
        "a 256-byte name is accepted"
    );
    assert!(
        !set_env(&mut channel, &"N".repeat(257), "x").await,
        "a 257-byte name is refused"
    );
    assert!(
        !set_env(&mut channel, "C", &"v".repeat((32 << 10) + 1)).await,
        "a value over 32 KiB is refused"
    );
    assert!(
        set_env(&mut channel, "D", &"v".repeat(32 << 10)).await,
        "a 32 KiB value is accepted"
    );
    let held = 256 + 1 + 1 + (32 << 10);
    assert!(
        !set_env(&mut channel, "E", &"v".repeat(32 << 10)).await,
        "a second 32 KiB value passes 64 KiB"
    );
    let rest = (64 << 10) - held - 1;
    assert!(
        set_env(&mut channel, "F", &"v".repeat(rest)).await,
        "exactly 64 KiB in all is accepted"
    );
    assert!(
        !set_env(&mut channel, "G", "").await,
        "one byte more is refused"
    );
    assert_eq!(
        handlers.env_calls(),
        3,
        "refused requests never reach the handler"
    );

    let mut channel = client.session().await;
    for i in 0..256 {
        assert!(
            set_env(&mut channel, &format!("V{i}"), "1").await,
            "variable {i} is accepted"
        );
    }
    assert!(
        !set_env(&mut channel, "V256", "1").await,
        "a 257th variable is refused"
    );
    assert_eq!(handlers.env_calls(), 3 + 256);
}

/// Every window-change after a full environment sees the same shared list,
/// not a copy of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_changes_after_a_full_environment_share_it_instead_of_copying_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let layer = MapRequestLayer::new(move |request: Request| {
        if let (RequestKind::WindowChange(_), Some(session)) = (request.kind(), request.session()) {
            record
                .lock()
                .unwrap()
                .push((Arc::as_ptr(&session.env) as usize, session.env.len()));
        }
        request
    });
    let server = TestServer::start(|b| {
        b.handlers(PasswordLogin::new("alice", "pw"))
            .handlers(AnyEnv::default())
            .layer(layer)
    })
    .await;
    let client = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let mut channel = client.session().await;
    // 256 variables of 250 bytes each: 64,000 bytes, within every bound.
    for i in 0..256 {
        assert!(set_env(&mut channel, &format!("V{i:03}"), &"v".repeat(246)).await);
    }
    for i in 0..100 {
        channel.window_change(80 + i, 24, 0, 0).await.unwrap();
    }
    // Requests are answered in order: once this one is, every window-change was decided.
    assert!(
        !set_env(&mut channel, "LAST", "1").await,
        "the 257th variable is refused"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 100, "every window-change was decided");
    assert!(
        seen.iter()
            .all(|&(ptr, len)| ptr == seen[0].0 && len == 256),
        "window-changes copied the environment"
    );
}
