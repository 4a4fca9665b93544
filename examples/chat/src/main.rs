//! Run with: cargo run -p example-chat
//!
//! A chat room over SSH. With no flags, two demo users may log in with a
//! password, `alice` (`alice-pw`) and `bob` (`bob-pw`); open two terminals:
//!
//! ```text
//! ssh -p 2222 alice@127.0.0.1
//! ssh -p 2222 bob@127.0.0.1
//! ```
//!
//! Real users: `--password NAME:PASSWORD` and `--authorized-keys NAME:PATH`
//! (an OpenSSH authorized_keys file), each repeatable; see `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use example_chat::{Chat, Settings, Users};
use ssh_framework::{BoxError, Server};
use tracing_subscriber::EnvFilter;

// ANCHOR: args
/// A chat room over SSH.
#[derive(Debug, Parser)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    listen: SocketAddr,
    /// A user who may log in with a password (repeatable).
    #[arg(long = "password", value_name = "NAME:PASSWORD")]
    passwords: Vec<String>,
    /// A user who may log in with the keys of an OpenSSH authorized_keys file (repeatable).
    #[arg(long = "authorized-keys", value_name = "NAME:PATH")]
    authorized_keys: Vec<String>,
    /// The host key file, generated on the first start.
    #[arg(long, default_value = "chat_host_ed25519_key")]
    host_key: PathBuf,
    /// Lines shown to whoever joins.
    #[arg(long, default_value_t = Settings::default().history)]
    history: usize,
}
// ANCHOR_END: args

fn split(flag: &str, value: &str) -> Result<(String, String), BoxError> {
    match value.split_once(':') {
        Some((name, rest)) if !name.is_empty() && !rest.is_empty() => Ok((name.to_owned(), rest.to_owned())),
        _ => Err(format!("{flag} takes NAME:VALUE, not `{value}`").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let args = Args::parse();
    let mut users = Users::new();
    for value in &args.passwords {
        let (name, password) = split("--password", value)?;
        users = users.password(&name, &password);
    }
    for value in &args.authorized_keys {
        let (name, path) = split("--authorized-keys", value)?;
        users = users.authorized_keys(&name, path.as_ref()).map_err(|e| format!("{path}: {e}"))?;
    }
    if users.is_empty() {
        // Well-known passwords never face a network.
        if !args.listen.ip().is_loopback() {
            return Err(format!("{} is not a loopback address: give users with --password or --authorized-keys", args.listen).into());
        }
        tracing::warn!("no users given: demo users alice (password alice-pw) and bob (bob-pw)");
        users = users.password("alice", "alice-pw").password("bob", "bob-pw");
    }
    tracing::info!(users = ?users.names(), "configured");
    let settings = Settings { history: args.history, ..Settings::default() };
    // ANCHOR: server
    let server = Server::builder()
        .handlers(Chat::new(users, settings))
        .listen(args.listen)
        .host_key_file(&args.host_key)
        .build()
        .await?;
    // ANCHOR_END: server
    tracing::info!(addrs = ?server.local_addrs(), "listening; try: ssh -p {} alice@{}", args.listen.port(), args.listen.ip());
    server.run().await?;
    Ok(())
}
