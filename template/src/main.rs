use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use ssh_framework::Server;
use tracing_subscriber::EnvFilter;

/// An SSH app server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    listen: SocketAddr,
    /// A user who may log in with a password (repeat for more users).
    #[arg(long = "password", value_name = "USER:PASSWORD")]
    passwords: Vec<String>,
    /// A folder with one authorized_keys file per user, named after the user.
    #[arg(long, default_value = "keys")]
    keys_dir: PathBuf,
    /// The folder under which each user gets a private SFTP folder.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// The host key, created on first start.
    #[arg(long, default_value = "host_ed25519_key")]
    host_key: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `info` unless RUST_LOG says otherwise, so a refused request explains itself.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let mut passwords = HashMap::new();
    for entry in &args.passwords {
        let Some((user, password)) = entry.split_once(':') else {
            return Err(format!("--password {entry:?}: expected USER:PASSWORD").into());
        };
        passwords.insert(user.to_owned(), password.to_owned());
    }
    let config = app::Config { passwords, keys_dir: args.keys_dir, data_dir: args.data_dir };
    let server = app::layers(Server::builder().handlers(app::App::new(config)?))
        .listen(args.listen)
        .host_key_file(args.host_key)
        .build()
        .await?;
    for fingerprint in server.host_key_fingerprints() {
        tracing::info!(%fingerprint, "host key");
    }
    tracing::info!("try: ssh -p {} <user>@{}", args.listen.port(), args.listen.ip());
    server.run().await?;
    Ok(())
}
