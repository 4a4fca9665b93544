//! The client process: russh's client opening idle sessions, on one
//! current-thread runtime, so that its own memory and tasks stay out of the
//! server's figures.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::{Channel, ChannelMsg, client};
use tokio::task::JoinSet;

/// Trusts the server's key: loopback only, the server is our own child.
struct IdleClient;

impl client::Handler for IdleClient {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// What keeps one session open: the connection and its shell channel.
type Idle = (client::Handle<IdleClient>, Channel<client::Msg>);

/// How long one session may take to come up.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Resolves when this process's stdin ends (the parent closed it or is gone).
pub(crate) async fn stdin_closed() {
    let mut buf = [0u8; 64];
    while tokio::io::AsyncReadExt::read(&mut tokio::io::stdin(), &mut buf).await.is_ok_and(|n| n > 0) {}
}

/// Opens `count` sessions to 127.0.0.1:`port`, `parallel` at a time; prints
/// `UP n` every 1,000 and `READY n failed=f` at the end, then holds them until stdin ends.
pub(crate) async fn run(port: u16, key: &Path, count: usize, parallel: usize) -> Result<(), String> {
    let key = Arc::new(PrivateKey::read_openssh_file(key).map_err(|e| e.to_string())?);
    let config = Arc::new(client::Config { inactivity_timeout: None, ..Default::default() });
    let mut held: Vec<Idle> = Vec::with_capacity(count);
    let mut failed = 0;
    let mut first_error = None;
    let mut pending = JoinSet::new();
    let mut started = 0;
    while held.len() + failed < count {
        while started < count && pending.len() < parallel.max(1) {
            let (config, key) = (config.clone(), key.clone());
            pending.spawn(async move {
                tokio::time::timeout(SESSION_TIMEOUT, open(port, config, key))
                    .await
                    .unwrap_or_else(|_| Err(format!("no session within {SESSION_TIMEOUT:?}")))
            });
            started += 1;
        }
        match pending.join_next().await {
            Some(Ok(Ok(idle))) => {
                held.push(idle);
                if held.len().is_multiple_of(1000) {
                    println!("UP {}", held.len());
                }
            }
            Some(Ok(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Some(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
            None => break,
        }
    }
    if let Some(e) = first_error {
        eprintln!("#   client: {failed} sessions failed; the first: {e}");
    }
    println!("READY {} failed={failed}", held.len());
    stdin_closed().await;
    // Exit without closing each session politely: the server sees resets.
    std::process::exit(0);
}

async fn open(port: u16, config: Arc<client::Config>, key: Arc<PrivateKey>) -> Result<Idle, String> {
    let mut handle = client::connect(config, ("127.0.0.1", port), IdleClient).await.map_err(|e| format!("connect: {e}"))?;
    let auth = handle
        .authenticate_publickey(super::USER, PrivateKeyWithHashAlg::new(key, None))
        .await
        .map_err(|e| format!("publickey: {e}"))?;
    if !auth.success() {
        return Err(format!("publickey refused: {auth:?}"));
    }
    let mut channel = handle.channel_open_session().await.map_err(|e| format!("session channel: {e}"))?;
    channel.request_shell(true).await.map_err(|e| format!("shell request: {e}"))?;
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return Ok((handle, channel)),
            Some(ChannelMsg::Failure) => return Err("shell refused".into()),
            None => return Err("the channel closed before the shell reply".into()),
            Some(_) => {}
        }
    }
}
