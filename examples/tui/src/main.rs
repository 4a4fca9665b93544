//! Run with: cargo run -p example-tui -- --password secret
//!
//! A full-screen dashboard over SSH, drawn with ratatui on the session's pty.
//! Log in as the demo user with the password given on the command line, or
//! with a key listed in `./authorized_keys` (any user name):
//!
//! ```text
//! ssh -t -p 2222 demo@127.0.0.1
//! ```
//!
//! Arrow keys or `j` / `k` choose a view, `q` or Ctrl-C quits. Without a
//! terminal (`ssh -T`) the app says so and exits with status 1.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use example_tui::Dashboard;
use ssh_framework::{BoxError, Server};
use ssh_framework::authorized_keys::AuthorizedKeys;
use tracing_subscriber::EnvFilter;

/// A full-screen dashboard over SSH.
#[derive(Debug, Parser)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    listen: SocketAddr,
    /// The demo user's name.
    #[arg(long, default_value = "demo")]
    user: String,
    /// The demo user's password.
    #[arg(long)]
    password: String,
    /// Keys that may log in, as any user (OpenSSH's format); a missing file allows none.
    #[arg(long, default_value = "authorized_keys")]
    authorized_keys: PathBuf,
    /// The host key, generated on first start.
    #[arg(long, default_value = "tui_host_ed25519_key")]
    host_key: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let args = Args::parse();
    let keys = match AuthorizedKeys::read(&args.authorized_keys) {
        Ok(keys) => keys,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %args.authorized_keys.display(), "no authorized_keys file: password logins only");
            AuthorizedKeys::default()
        }
        Err(e) => return Err(format!("{}: {e}", args.authorized_keys.display()).into()),
    };
    let server = Server::builder()
        .handlers(Dashboard::new(args.user, args.password, &keys))
        .listen(args.listen)
        .host_key_file(args.host_key)
        .build()
        .await?;
    let port = server.local_addrs().first().map_or(args.listen.port(), |addr| addr.port());
    tracing::info!(addrs = ?server.local_addrs(), "listening; try: ssh -t -p {port} demo@127.0.0.1");
    server.run().await?;
    Ok(())
}
