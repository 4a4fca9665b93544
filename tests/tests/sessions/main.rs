//! Session channels on framework servers: exec (exit codes and signals, bulk
//! data, stderr, environment) and the channel machinery (window changes,
//! concurrent bodies, panics, the session limit, requests no handler allows,
//! the bounds on environment requests).

mod channels;
mod env_bounds;
mod exec;

use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;

/// russh's client logged in as alice with password `pw`.
async fn logged_in(server: &TestServer) -> RusshClient {
    RusshClient::login_password(server.addr(), "alice", "pw").await
}
