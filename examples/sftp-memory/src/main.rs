//! Run with: cargo run -p example-sftp-memory
//!
//! An SFTP server whose files live in memory: a custom [`Backend`] in
//! `memory.rs`. Try it with `sftp -P 2222 demo@127.0.0.1` (password `demo`):
//! `put`, `get`, `ls -l`, `mkdir`, `rename`, `rm` all work, and everything is
//! gone when the server stops.
//!
//! [`Backend`]: ssh_framework::sftp::Backend

mod memory;

use std::sync::Arc;

use ssh_framework::sftp::Sftp;
use ssh_framework::{Auth, ChannelIo, Server};

use crate::memory::MemoryBackend;

/// One password user; every session shares the same in-memory tree.
struct MemoryFiles {
    files: Arc<MemoryBackend>,
}

#[ssh_framework::server]
impl MemoryFiles {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        Auth::from_bool(user == "demo" && password == "demo")
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[subsystem("sftp")]
    async fn sftp(&self, io: ChannelIo) -> std::io::Result<()> {
        Sftp::from_arc(self.files.clone()).serve(io).await
    }
}

#[tokio::main]
async fn main() -> Result<(), ssh_framework::Error> {
    // `info` unless RUST_LOG says otherwise, so a refused request explains itself.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let files = Arc::new(MemoryBackend::new().with_file("/README.txt", b"These files live in memory.\n"));
    let server = Server::builder()
        .handlers(MemoryFiles { files })
        .listen("127.0.0.1:2222".parse().expect("a valid address"))
        .host_key_file("sftp_memory_host_ed25519_key")
        .build()
        .await?;
    println!("listening on {:?}; try: sftp -P 2222 demo@127.0.0.1 (password demo)", server.local_addrs());
    server.run().await
}
