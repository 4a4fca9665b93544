//! Run with: cargo run -p example-sftp-dropbox
//!
//! A drop box over SFTP and SCP: each user gets a private folder under
//! `./dropbox/`, made on first login, and cannot see past it; `guest` may
//! only read `./dropbox/public`. Try
//! `sftp -P 2222 alice@127.0.0.1` (password `alice`), or
//! `scp -P 2222 notes.txt alice@127.0.0.1:` (add `-O` for the legacy protocol).

// ANCHOR: all
use std::io;

use ssh_framework::extract::User;
use ssh_framework::scp::Scp;
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Server};

// ANCHOR: state
/// The drop box: one shared root, opened once; users get folders beneath it.
struct Dropbox {
    root: FsBackend,
}

impl Dropbox {
    /// The folder `user` may use, and whether only reading is allowed.
    ///
    /// `create_subdir` resolves the name beneath the root like any client
    /// path, so a user called `../etc` cannot name a folder outside.
    fn folder(&self, user: &str) -> io::Result<FsBackend> {
        if user == "guest" {
            Ok(self.root.create_subdir("public")?.read_only(true))
        } else {
            self.root.create_subdir(user)
        }
    }
}
// ANCHOR_END: state

// ANCHOR: handlers
#[ssh_framework::server]
impl Dropbox {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        // A demo: the password is the user name. Use a real user database.
        Auth::from_bool(matches!(user, "alice" | "bob" | "guest") && password == user)
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[subsystem("sftp")]
    async fn sftp(&self, user: User, io: ChannelIo) -> io::Result<()> {
        tracing::info!(%user, "sftp session");
        Sftp::new(self.folder(&user)?).serve(io).await
    }

    #[exec("scp")]
    async fn scp(&self, user: User, command: Command, io: ChannelIo) -> io::Result<ExitStatus> {
        tracing::info!(%user, %command, "legacy scp");
        Ok(Scp::new(self.folder(&user)?).serve(&command, io).await)
    }
}
// ANCHOR_END: handlers

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `info` unless RUST_LOG says otherwise, so a refused request explains itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    std::fs::create_dir_all("dropbox")?;
    let root = FsBackend::open("dropbox")?;
    let server = Server::builder()
        .handlers(Dropbox { root })
        .listen("127.0.0.1:2222".parse()?)
        .host_key_file("dropbox_host_ed25519_key")
        .build()
        .await?;
    println!("listening on {:?}; try: sftp -P 2222 alice@127.0.0.1 (password alice)", server.local_addrs());
    server.run().await?;
    Ok(())
}
// ANCHOR_END: main
// ANCHOR_END: all
