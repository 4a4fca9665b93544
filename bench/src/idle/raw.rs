//! The raw target: a russh `Handler` written by hand doing what the framework
//! target does (one accepted key, session channels, a shell reading stdin to
//! EOF), with the framework's russh settings.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PublicKey;
use russh::server::{self, Auth, Msg, Session};
use russh::{Channel, ChannelId, ChannelMsg};

struct RawServer {
    authorized: Arc<PublicKey>,
}

impl server::Server for RawServer {
    type Handler = RawHandler;

    fn new_client(&mut self, _peer: Option<std::net::SocketAddr>) -> RawHandler {
        RawHandler { authorized: self.authorized.clone(), channels: HashMap::new() }
    }
}

struct RawHandler {
    authorized: Arc<PublicKey>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl RawHandler {
    fn check(&self, key: &PublicKey) -> Auth {
        if key.key_data() == self.authorized.key_data() { Auth::Accept } else { Auth::reject() }
    }
}

impl server::Handler for RawHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(&mut self, _user: &str, offer: server::PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        Ok(self.check(offer.public_key))
    }

    async fn auth_publickey(&mut self, _user: &str, key: server::VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        Ok(self.check(key.public_key))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn shell_request(&mut self, id: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        let Some(mut channel) = self.channels.remove(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;
        tokio::spawn(async move {
            while let Some(msg) = channel.wait().await {
                if matches!(msg, ChannelMsg::Eof | ChannelMsg::Close) {
                    break;
                }
            }
            let _ = channel.exit_status(0).await;
            let _ = channel.eof().await;
            let _ = channel.close().await;
        });
        Ok(())
    }
}

/// The framework's russh settings (`russh_config` in ssh-framework's server.rs)
/// that bear on memory: window, packet size, channel and event queues.
fn config(key: russh::keys::PrivateKey) -> server::Config {
    use russh::cipher;
    let preferred = russh::Preferred {
        cipher: Cow::Owned(vec![
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::AES_128_CTR,
            cipher::AES_192_CTR,
            cipher::AES_256_CTR,
        ]),
        ..Default::default()
    };
    server::Config {
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        window_size: 8 << 20,
        maximum_packet_size: 32 << 10,
        nodelay: true,
        preferred,
        ..Default::default()
    }
}

/// Serves on 127.0.0.1 (a free port) until stdin ends; prints `PORT n PID p` when listening.
pub(crate) async fn serve(host_key: &Path, authorized: &Path) -> Result<(), String> {
    use russh::server::Server as _;
    let key = ssh_framework::load_or_generate_host_key(host_key).map_err(|e| e.to_string())?;
    let authorized = PublicKey::read_openssh_file(authorized).map_err(|e| e.to_string())?;
    let config = Arc::new(config(key));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("PORT {port} PID {}", std::process::id());
    let mut server = RawServer { authorized: Arc::new(authorized) };
    tokio::select! {
        r = server.run_on_socket(config, &listener) => r.map_err(|e| e.to_string()),
        () = super::client::stdin_closed() => Ok(()),
    }
}
