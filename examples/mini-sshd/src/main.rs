//! Run with: cargo run --release -p example-mini-sshd
//!
//! A small sshd: `mini-sshd --help` lists the options. With none, user `demo`
//! gets a random password and the startup line says how to log in.

use std::io::IsTerminal;

use clap::Parser;
use example_mini_sshd::{Args, BoxError, build};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let (server, line) = build(args).await?;
    println!("{line}");
    // The first Ctrl-C or SIGTERM lets open sessions finish (30 s at most);
    // a second one disconnects them at once.
    server.run().await?;
    Ok(())
}
