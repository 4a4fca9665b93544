//! The one harness of the integration tests: servers on a free port of
//! 127.0.0.1 (built with the framework, or mini-sshd built from its command
//! line), the real OpenSSH client programs and russh's client driven against
//! them, and the handler types, data and sockets the tests share.
//!
//! | module | holds |
//! |---|---|
//! | [`server`] | [`server::TestServer`]: a framework server the test configures |
//! | [`mini_sshd`] | [`mini_sshd::MiniSshd`]: the mini-sshd example, built in-process from its flags |
//! | [`openssh`] | `ssh`, `sftp`, `scp` ([`openssh::Ssh`]), askpass, keys, agents |
//! | [`russh_client`] | russh's client: logins, X11 channels, channel transcripts |
//! | [`handlers`] | small `#[ssh_framework::server]` types the tests compose |
//! | [`net`] | TCP and Unix echo servers and round trips through forwards |
//! | [`data`] | reproducible test bytes and their SHA-256 |
//! | [`memory`] | this process's resident set, for memory bounds |
//!
//! Every client runs under a timeout and every server owns its temp dir, so
//! tests can run in parallel and none can hang. A machine without OpenSSH's
//! client programs fails each test that needs them at once, with the command
//! that installs them.

pub mod data;
pub mod handlers;
pub mod log;
pub mod memory;
pub mod mini_sshd;
pub mod net;
pub mod openssh;
pub mod russh_client;
pub mod server;

use std::future::Future;
use std::time::Duration;

/// How long any one client (an `ssh` process, a russh exchange) may take before the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs a `tracing` subscriber writing to the test's captured output,
/// filtered by `RUST_LOG` (silent when it is unset). Safe to call repeatedly.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Awaits `future`, failing the test with `what` if it takes longer than [`CLIENT_TIMEOUT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(CLIENT_TIMEOUT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {CLIENT_TIMEOUT:?}: {what}"),
    }
}
