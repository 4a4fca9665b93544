//! The baseline: a `russh::server::Handler` written directly, doing the same
//! work as the framework server (one accepted key, session channels, exec).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PublicKey;
use russh::server::{self, Auth, Msg, Session};
use russh::{Channel, ChannelId};

use crate::exec::{self, ExecMode};

/// ssh_framework's russh settings (its `russh_config`), copied: no
/// rejection delay, 8 MiB window, 32 KiB packets, `nodelay`, the AES-GCM
/// ciphers offered and the same key exchanges in the same order.
pub(crate) fn config(key: russh::keys::PrivateKey) -> server::Config {
    use russh::{cipher, kex};
    let preferred = russh::Preferred {
        cipher: Cow::Owned(vec![
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::AES_128_CTR,
            cipher::AES_192_CTR,
            cipher::AES_256_CTR,
        ]),
        kex: Cow::Borrowed(&[
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::DH_GEX_SHA256,
            kex::DH_G16_SHA512,
            kex::DH_G18_SHA512,
            kex::DH_G14_SHA256,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_SUPPORT_AS_SERVER,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
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

struct RawServer {
    authorized: Arc<PublicKey>,
    mode: ExecMode,
}

impl server::Server for RawServer {
    type Handler = RawHandler;

    fn new_client(&mut self, _peer: Option<std::net::SocketAddr>) -> RawHandler {
        RawHandler { authorized: self.authorized.clone(), mode: self.mode, channels: HashMap::new(), ptys: HashMap::new() }
    }
}

struct RawHandler {
    authorized: Arc<PublicKey>,
    mode: ExecMode,
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Terminal sizes (rows, columns) of the channels that asked for a pty.
    ptys: HashMap<ChannelId, (u16, u16)>,
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

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.ptys.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.mode == ExecMode::Spawn && self.channels.contains_key(&channel) {
            let clamp = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
            self.ptys.insert(channel, (clamp(row_height), clamp(col_width)));
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn exec_request(&mut self, id: ChannelId, data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        let Some(channel) = self.channels.remove(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;
        let command = String::from_utf8_lossy(data).into_owned();
        let mode = self.mode;
        let pty = self.ptys.remove(&id);
        tokio::spawn(async move {
            let (mut read, write) = channel.split();
            let code = match (mode, pty) {
                (ExecMode::InProcess, _) => exec::in_process(&command, read.make_reader(), write.make_writer()).await,
                (ExecMode::Spawn, Some((rows, cols))) => exec::spawn_pty(&command, rows, cols, read.make_reader(), write.make_writer()).await,
                (ExecMode::Spawn, None) => {
                    exec::spawn(&command, read.make_reader(), write.make_writer(), write.make_writer_ext(Some(1))).await
                }
            };
            let _ = write.exit_status(code).await;
            let _ = write.eof().await;
            let _ = write.close().await;
        });
        Ok(())
    }
}

/// Serves on 127.0.0.1 (a free port) until `stop` completes; `ready` gets the port.
pub(crate) async fn serve(
    mode: ExecMode,
    host_key: russh::keys::PrivateKey,
    authorized: PublicKey,
    ready: impl FnOnce(u16),
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    use russh::server::Server as _;
    let config = Arc::new(config(host_key));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    ready(port);
    let mut server = RawServer { authorized: Arc::new(authorized), mode };
    tokio::select! {
        r = server.run_on_socket(config, &listener) => r.map_err(|e| e.to_string()),
        () = stop => Ok(()),
    }
}
