//! Run with: cargo run -p example-middleware
//!
//! A small ops console whose cross-cutting behaviour is all `tower` layers:
//! the ready ones of `ssh_framework::middleware` (access control, a
//! per-user welcome, panic recovery, require-a-pty), `TraceLayer`, tower's
//! timeout and concurrency limit, and two written here (see `src/lib.rs`).
//! Users `alice` (password `alice-pw`, may run anything) and `bob`
//! (`bob-pw`, only `whoami` and `sessions`):
//!
//! ```text
//! ssh -t -p 2222 alice@127.0.0.1          # the console, with a welcome
//! ssh -p 2222 alice@127.0.0.1             # "this app needs a terminal" when stdin is not one
//! ssh -p 2222 bob@127.0.0.1 sessions      # 1 session running
//! ssh -p 2222 bob@127.0.0.1 crash         # refused: exec request failed (and logged why)
//! ssh -p 2222 alice@127.0.0.1 crash       # internal error, exit status 70
//! ```

use tracing_subscriber::EnvFilter;

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), ssh_framework::Error> {
    // `info` unless RUST_LOG says otherwise: every refusal and session end is logged at info.
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let server = example_middleware::configure(ssh_framework::Server::builder())
        .listen("127.0.0.1:2222".parse().expect("a valid address"))
        .host_key_file("middleware_host_ed25519_key")
        .build()
        .await?;
    tracing::info!(addrs = ?server.local_addrs(), "listening; try: ssh -t -p 2222 alice@127.0.0.1 (password alice-pw)");
    server.run().await
}
// ANCHOR_END: main
