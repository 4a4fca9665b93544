//! Run with: cargo run -p example-git-server -- ROOT --access access.toml
//!
//! Git hosting over SSH: serves the bare repositories under ROOT to the keys
//! the access file lists (see the book's "Git hosting" chapter):
//!
//! ```text
//! mkdir -p repos && git init --bare repos/project.git
//! cargo run -p example-git-server -- repos --access access.toml
//! git clone ssh://git@127.0.0.1:2222/project.git
//! ssh -p 2222 git@127.0.0.1      # Hi alice! ... no shell access.
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use example_git_server::{Access, GitHost};
use ssh_framework::{BoxError, Server};
use tracing_subscriber::EnvFilter;

/// Git hosting over SSH.
#[derive(Debug, Parser)]
#[command(name = "git-server")]
struct Args {
    /// The directory holding the bare repositories (`NAME.git`, `GROUP/NAME.git`).
    root: PathBuf,
    /// The access file: users, their keys, their rights per repository (TOML).
    #[arg(long, default_value = "access.toml")]
    access: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    listen: SocketAddr,
    /// The host key, generated on first start.
    #[arg(long, default_value = "git_host_ed25519_key")]
    host_key: PathBuf,
}

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let args = Args::parse();
    let access = Access::read(&args.access)?;
    let host = GitHost::new(&args.root, access).map_err(|e| format!("{}: {e}", args.root.display()))?;
    let server = Server::builder().handlers(host).listen(args.listen).host_key_file(&args.host_key).build().await?;
    tracing::info!(addrs = ?server.local_addrs(), root = %args.root.display(), "listening; clone with git clone ssh://git@HOST:PORT/NAME.git");
    server.run().await?;
    Ok(())
}
// ANCHOR_END: main
