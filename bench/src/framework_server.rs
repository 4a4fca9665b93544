//! The server under test: built with ssh_framework's `#[server]` macro and
//! its default (tuned) russh configuration.

use ssh_framework::keys::PublicKey;
use ssh_framework::limit::MaxStartups;
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Server};

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
pub(crate) async fn serve(
    mode: ExecMode,
    host_key: &std::path::Path,
    authorized: PublicKey,
    max_startups: Option<usize>,
    ready: impl FnOnce(u16),
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let mut builder = Server::builder()
        .handlers(BenchApp { authorized, mode })
        .host_key_file(host_key)
        .listen("127.0.0.1:0".parse().expect("a valid address"));
    if let Some(n) = max_startups {
        builder = builder.max_startups(MaxStartups { start: n, rate: 30, full: n });
    }
    let server = builder.build().await.map_err(|e| e.to_string())?;
    let port = server.local_addrs().first().map(|a| a.port()).ok_or("no listen address")?;
    ready(port);
    server.run_until(stop, std::time::Duration::ZERO).await.map_err(|e| e.to_string())
}
