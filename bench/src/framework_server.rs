//! The server under test: built with ssh_framework's `#[server]` macro and
//! its default (tuned) russh configuration.

use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, MaxStartups, Server};

use crate::exec::{self, ExecMode};

struct BenchApp {
    authorized: PublicKey,
    mode: ExecMode,
}

#[ssh_framework::server]
impl BenchApp {
    #[auth(publickey)]
    async fn key(&self, _user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(key.key_data() == self.authorized.key_data())
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec]
    async fn exec(&self, command: Command, io: ChannelIo) -> ExitStatus {
        let (stdin, stdout, stderr, _events) = io.split();
        let code = match self.mode {
            ExecMode::InProcess => exec::in_process(command.as_str(), stdin, stdout).await,
            ExecMode::Spawn => exec::spawn(command.as_str(), stdin, stdout, stderr).await,
        };
        ExitStatus::code(code)
    }
}

/// Serves on 127.0.0.1 (a free port) until `stop` completes; `ready` gets the port.
///
/// With `quickack`, connections are accepted here and handed to
/// `Server::serve_connection` wrapped in [`QuickAck`](crate::quickack::QuickAck)
/// (the experiment); otherwise the framework's own listener runs.
pub(crate) async fn serve(
    mode: ExecMode,
    quickack: bool,
    host_key: &std::path::Path,
    authorized: PublicKey,
    max_startups: Option<usize>,
    ready: impl FnOnce(u16),
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let mut builder = Server::builder().handlers(BenchApp { authorized, mode }).host_key_file(host_key);
    if !quickack {
        builder = builder.listen("127.0.0.1:0".parse().expect("a valid address"));
    }
    if let Some(n) = max_startups {
        builder = builder.max_startups(MaxStartups { start: n, rate: 30, full: n });
    }
    let server = builder.build().await.map_err(|e| e.to_string())?;
    if !quickack {
        let port = server.local_addrs().first().map(|a| a.port()).ok_or("no listen address")?;
        ready(port);
        return server.run_until(stop, std::time::Duration::ZERO).await.map_err(|e| e.to_string());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    ready(listener.local_addr().map_err(|e| e.to_string())?.port());
    let server = std::sync::Arc::new(server);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            accepted = listener.accept() => {
                let Ok((socket, peer)) = accepted else { continue };
                let _ = socket.set_nodelay(true);
                let server = server.clone();
                tokio::spawn(async move {
                    let _ = server.serve_connection(crate::quickack::QuickAck::new(socket), Some(peer)).await;
                });
            }
        }
    }
}
