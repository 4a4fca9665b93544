//! A flood of large environment requests (issue 12, medium 4): refused, and
//! the server's memory does not grow.
//!
//! The server runs in this process and the figure is this process's
//! resident set, client included. This binary holds this one test so that
//! no other test's memory is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use russh::client;
use ssh_framework_tests::handlers::PasswordLogin;
use ssh_framework_tests::memory::{MIB, RssPeak};
use ssh_framework_tests::russh_client::{RusshClient, request_reply};
use ssh_framework_tests::server::TestServer;

/// Allows every session, every env request and every window change; counts the env requests it sees.
#[derive(Debug, Clone, Default)]
struct AnyEnv {
    env_calls: Arc<AtomicUsize>,
}

#[ssh_framework::server]
impl AnyEnv {
    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[env]
    async fn env(&self, _name: &str, _value: &str) -> bool {
        self.env_calls.fetch_add(1, Ordering::SeqCst);
        true
    }

    #[window_change]
    async fn window_change(&self) -> bool {
        true
    }
}

async fn set_env(channel: &mut russh::Channel<client::Msg>, name: &str, value: &str) -> bool {
    channel
        .set_env(true, name, value)
        .await
        .expect("env request sent");
    request_reply(channel).await
}

/// The attack of the review: four channels, each sent 256 environment
/// variables of 200 KiB (200 MiB in all if kept). Every one is refused and
/// the resident set grows by less than 16 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_env_requests_is_refused_and_costs_no_memory() {
    const CHANNELS: usize = 4;
    const VARS: usize = 256;
    const BOUND: usize = 16 * MIB;
    let handlers = AnyEnv::default();
    let server = TestServer::start(|b| {
        b.handlers(PasswordLogin::new("alice", "pw"))
            .handlers(handlers.clone())
    })
    .await;
    let client = RusshClient::login_password(server.addr(), "alice", "pw").await;
    let value = "v".repeat(200 << 10);

    let peak = RssPeak::start();
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(client.session().await);
    }
    let mut accepted = 0;
    for channel in &mut channels {
        for i in 0..VARS {
            accepted += usize::from(set_env(channel, &format!("BIG{i}"), &value).await);
        }
    }
    let growth = peak.growth();
    eprintln!(
        "{} env requests of 200 KiB: {accepted} accepted, resident set grew by {} MiB at most",
        CHANNELS * VARS,
        growth / MIB
    );
    assert_eq!(accepted, 0, "values over 32 KiB are refused");
    assert_eq!(
        handlers.env_calls.load(Ordering::SeqCst),
        0,
        "refused before the handler"
    );
    assert!(
        growth < BOUND,
        "resident set grew by {} MiB, more than {} MiB",
        growth / MIB,
        BOUND / MIB
    );
}
