//! russh's client against the servers under test, for what OpenSSH's client
//! does not show or never does on purpose: logins step by step, channel
//! requests and their replies, X11 channels the server opens back, and a
//! [`Transcript`] of everything a channel received.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PrivateKeyWithHashAlg;
use russh::{Channel, ChannelMsg, client};
use tokio::sync::{mpsc, oneshot};

use crate::openssh::ClientKey;
use crate::within;

/// russh's client handler for tests: trusts any host key, reports the
/// server's disconnect message and hands every `x11` channel the server opens to the test.
#[derive(Debug)]
pub struct TestClient {
    disconnect: Option<oneshot::Sender<String>>,
    x11: mpsc::UnboundedSender<X11Channel>,
}

impl client::Handler for TestClient {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn disconnected(&mut self, reason: client::DisconnectReason<Self::Error>) -> Result<(), Self::Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                if let Some(tx) = self.disconnect.take() {
                    let _ = tx.send(info.message);
                }
                Ok(())
            }
            client::DisconnectReason::Error(e) => Err(e),
        }
    }

    async fn server_channel_open_x11(
        &mut self,
        channel: Channel<client::Msg>,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let _ = self.x11.send(X11Channel { address: originator_address.to_owned(), port: originator_port, channel });
        Ok(())
    }
}

/// An `x11` channel the server opened to the client, which the test plays the X server on.
pub struct X11Channel {
    /// The originator address the server gave.
    pub address: String,
    /// The originator port the server gave.
    pub port: u32,
    /// The channel.
    pub channel: Channel<client::Msg>,
}

impl fmt::Debug for X11Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X11Channel").field("address", &self.address).field("port", &self.port).finish()
    }
}

/// A russh client connection (key exchange done; authenticated if made by a `login_*`).
pub struct RusshClient {
    /// The connection handle: authenticate and open channels with it.
    pub handle: client::Handle<TestClient>,
    disconnect: Option<oneshot::Receiver<String>>,
    x11: mpsc::UnboundedReceiver<X11Channel>,
}

impl fmt::Debug for RusshClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RusshClient").field("closed", &self.handle.is_closed()).finish()
    }
}

impl RusshClient {
    /// Connects and completes key exchange.
    pub async fn connect(addr: SocketAddr) -> RusshClient {
        let (tx, rx) = oneshot::channel();
        let (x11_tx, x11) = mpsc::unbounded_channel();
        let config = Arc::new(client::Config::default());
        let handler = TestClient { disconnect: Some(tx), x11: x11_tx };
        let handle = within("russh connect", client::connect(config, addr, handler)).await.expect("russh connects");
        RusshClient { handle, disconnect: Some(rx), x11 }
    }

    /// Connects and logs in with a password, failing the test if it is refused.
    pub async fn login_password(addr: SocketAddr, user: &str, password: &str) -> RusshClient {
        let mut client = RusshClient::connect(addr).await;
        let auth = within("password", client.handle.authenticate_password(user, password)).await.unwrap();
        assert!(auth.success(), "{auth:?}");
        client
    }

    /// Connects and logs in with a key, failing the test if it is refused.
    pub async fn login_key(addr: SocketAddr, user: &str, key: &ClientKey) -> RusshClient {
        let mut client = RusshClient::connect(addr).await;
        let signed = PrivateKeyWithHashAlg::new(key.private.clone(), None);
        let auth = within("publickey", client.handle.authenticate_publickey(user, signed)).await.unwrap();
        assert!(auth.success(), "{auth:?}");
        client
    }

    /// Waits for the server to end the connection; its disconnect message, or
    /// `None` when it closed without one.
    pub async fn disconnected(&mut self) -> Option<String> {
        let rx = self.disconnect.take().expect("disconnected is awaited once");
        within("the server to disconnect", rx).await.ok()
    }

    /// Opens a session channel and runs `command` on it, asking for a reply.
    pub async fn exec(&self, command: &str) -> Channel<client::Msg> {
        let channel = self.session().await;
        channel.exec(true, command).await.expect("exec request sent");
        channel
    }

    /// Opens a session channel.
    pub async fn session(&self) -> Channel<client::Msg> {
        within("channel open", self.handle.channel_open_session()).await.expect("session channel opens")
    }

    /// Opens a session and asks for X11 forwarding with an MIT cookie on
    /// `screen`; the session, and whether the server allowed it.
    pub async fn x11_session(&self, cookie: &str, screen: u32) -> (Channel<client::Msg>, bool) {
        let mut session = self.session().await;
        session.request_x11(true, false, "MIT-MAGIC-COOKIE-1", cookie, screen).await.unwrap();
        let allowed = request_reply(&mut session).await;
        (session, allowed)
    }

    /// The next `x11` channel the server opens (fails the test after the timeout).
    pub async fn next_x11(&mut self) -> X11Channel {
        within("the server to open an x11 channel", self.x11.recv()).await.expect("the client is alive")
    }

    /// Takes an `x11` channel the server has already opened, if there is one.
    pub fn try_x11(&mut self) -> Option<X11Channel> {
        self.x11.try_recv().ok()
    }
}

/// The next reply to a channel request, skipping other messages: `true` for success.
pub async fn request_reply(channel: &mut Channel<client::Msg>) -> bool {
    within("a channel request reply", async {
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => return true,
                Some(ChannelMsg::Failure) | None => return false,
                Some(_) => {}
            }
        }
    })
    .await
}

/// Everything a client channel received until the server closed it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// Data on the channel.
    pub stdout: Vec<u8>,
    /// Extended data (type 1, stderr).
    pub stderr: Vec<u8>,
    /// Control messages in arrival order: `success`, `failure`, `data`
    /// (one per run of data), `exit-status N`, `exit-signal NAME`, `eof`, `close`.
    pub events: Vec<String>,
}

impl Transcript {
    /// The control messages other than data and request replies, in order.
    pub fn ending(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(String::as_str)
            .filter(|e| !matches!(*e, "data" | "success" | "failure"))
            .collect()
    }

    /// Reads `channel` into this transcript until an event for which `stop`
    /// is true (`"success"`, `"close"`, ...); false if the channel ended first.
    /// Fails the test after [`CLIENT_TIMEOUT`](crate::CLIENT_TIMEOUT).
    pub async fn read_until(&mut self, channel: &mut Channel<client::Msg>, stop: impl Fn(&str) -> bool) -> bool {
        within("a channel message", async {
            while let Some(msg) = channel.wait().await {
                let event = match msg {
                    ChannelMsg::Data { data } => {
                        self.stdout.extend_from_slice(&data);
                        "data".to_owned()
                    }
                    ChannelMsg::ExtendedData { data, .. } => {
                        self.stderr.extend_from_slice(&data);
                        "data".to_owned()
                    }
                    ChannelMsg::Success => "success".to_owned(),
                    ChannelMsg::Failure => "failure".to_owned(),
                    ChannelMsg::ExitStatus { exit_status } => format!("exit-status {exit_status}"),
                    ChannelMsg::ExitSignal { signal_name, .. } => format!("exit-signal {signal_name:?}"),
                    ChannelMsg::Eof => "eof".to_owned(),
                    ChannelMsg::Close => "close".to_owned(),
                    _ => continue,
                };
                let done = stop(&event);
                if !(event == "data" && self.events.last().is_some_and(|e| e == "data")) {
                    self.events.push(event);
                }
                if done {
                    return true;
                }
            }
            false
        })
        .await
    }
}

/// Reads `channel` until the server closes it (fails the test after [`CLIENT_TIMEOUT`](crate::CLIENT_TIMEOUT)).
pub async fn read_to_close(channel: &mut Channel<client::Msg>) -> Transcript {
    let mut transcript = Transcript::default();
    transcript.read_until(channel, |e| e == "close").await;
    transcript
}

/// Sends an env request on `channel` and returns whether the server allowed it.
pub async fn set_env(channel: &mut Channel<client::Msg>, name: &str, value: &str) -> bool {
    channel.set_env(true, name, value).await.expect("env request sent");
    request_reply(channel).await
}
