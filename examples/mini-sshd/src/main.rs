//! Run with: cargo run --release -p example-mini-sshd
//!
//! A small sshd: `mini-sshd --help` lists the options. With none, user `demo`
//! gets a random password and the startup line says how to log in.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Parser;
use example_mini_sshd::{Args, BoxError, build};
use tracing_subscriber::EnvFilter;

/// How long open sessions may go on after Ctrl-C or SIGTERM before they are disconnected.
const DRAIN: Duration = Duration::from_secs(30);

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
    // The first Ctrl-C or SIGTERM starts a graceful shutdown; a second one leaves at once.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let signals = async move {
        stop_requested().await;
        let _ = first_tx.send(());
        stop_requested().await;
    };
    let first = async move {
        let _ = first_rx.await;
    };
    tokio::select! {
        served = server.run_until(first, DRAIN) => served?,
        () = signals => tracing::info!("stopping without waiting for sessions"),
    }
    Ok(())
}

/// Completes at Ctrl-C (SIGINT) or SIGTERM.
async fn stop_requested() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        _ = term.recv() => tracing::info!("terminated"),
    }
}
