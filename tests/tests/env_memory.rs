//! A flood of large environment requests (issue 12, medium 4): refused, and
//! the server's memory does not grow.
//!
//! The server runs in this process and the figure is this process's
//! resident set, client included. This binary holds this one test so that
//! no other test's memory is counted.

use ssh_framework_tests::handlers::{AnyEnv, PasswordLogin};
use ssh_framework_tests::memory::{MIB, RssPeak};
use ssh_framework_tests::russh_client::{RusshClient, set_env};
use ssh_framework_tests::server::TestServer;


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
        handlers.env_calls(),
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
