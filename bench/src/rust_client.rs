//! Logins from russh's client inside the bench process: no `ssh` process is
//! started per login, so the rate shows the server's own ceiling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Disconnect, client};

use crate::client::Logins;

/// Trusts any host key (every server here has a fresh one).
struct Quiet;

impl client::Handler for Quiet {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// What one login does: connect, publickey, exec `true`, wait for its exit
/// status, disconnect.
async fn login(config: Arc<client::Config>, addr: SocketAddr, user: &str, key: Arc<PrivateKey>) -> Result<(), String> {
    let mut handle = client::connect(config, addr, Quiet).await.map_err(|e| format!("connect: {e}"))?;
    let auth = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None))
        .await
        .map_err(|e| format!("publickey: {e}"))?;
    if !auth.success() {
        return Err(format!("publickey refused: {auth:?}"));
    }
    let mut channel = handle.channel_open_session().await.map_err(|e| format!("session: {e}"))?;
    channel.exec(true, "true").await.map_err(|e| format!("exec: {e}"))?;
    let mut code = None;
    while let Some(msg) = channel.wait().await {
        if let ChannelMsg::ExitStatus { exit_status } = msg {
            code = Some(exit_status);
            break;
        }
    }
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    match code {
        Some(0) => Ok(()),
        Some(n) => Err(format!("exit status {n}")),
        None => Err("no exit status".into()),
    }
}

/// Up to `count` logins one after another (each bounded by `timeout`, none
/// started after `budget`); the server's tree CPU per login.
pub(crate) async fn logins_sequential(
    addr: SocketAddr,
    user: &str,
    key: Arc<PrivateKey>,
    count: usize,
    budget: Duration,
    timeout: Duration,
    server: Option<u32>,
) -> Logins {
    let config = Arc::new(client::Config { nodelay: true, ..Default::default() });
    Logins::sequential(count, budget, server, "russh client", || async {
        tokio::time::timeout(timeout, login(config.clone(), addr, user, key.clone()))
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
    })
    .await
}
