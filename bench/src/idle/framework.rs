//! The framework target: a `#[server]` whose shell reads stdin until EOF,
//! with the framework's default limits except the connection cap.

use std::path::Path;

use ssh_framework::keys::PublicKey;
use ssh_framework::limit::MaxConnections;
use ssh_framework::{Auth, ChannelIo, ExitStatus, Server};
use tokio::io::AsyncBufReadExt;

struct IdleApp {
    authorized: PublicKey,
}

#[ssh_framework::server]
impl IdleApp {
    #[auth(publickey)]
    async fn key(&self, _user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(key.key_data() == self.authorized.key_data())
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    /// Reads stdin to EOF through its own buffer, as the raw server's task
    /// reads its channel: the body holds no buffer of its own.
    #[shell]
    async fn shell(&self, mut io: ChannelIo) -> ExitStatus {
        while let Ok(chunk) = io.stdin.fill_buf().await {
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            io.stdin.consume(n);
        }
        ExitStatus::code(0)
    }
}

/// Serves on 127.0.0.1 (a free port) until stdin ends; prints `PORT n PID p` when listening.
pub(crate) async fn serve(host_key: &Path, authorized: &Path, max_connections: usize) -> Result<(), String> {
    let authorized = PublicKey::read_openssh_file(authorized).map_err(|e| e.to_string())?;
    let server = Server::builder()
        .handlers(IdleApp { authorized })
        .host_key_file(host_key)
        .listen("127.0.0.1:0".parse().expect("a valid address"))
        // The default cap (10,000) is the count itself: leave room.
        .limit(MaxConnections::new(max_connections))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let port = server.local_addrs().first().map(|a| a.port()).ok_or("no listen address")?;
    println!("PORT {port} PID {}", std::process::id());
    server.run_until(super::client::stdin_closed(), std::time::Duration::ZERO).await.map_err(|e| e.to_string())
}
