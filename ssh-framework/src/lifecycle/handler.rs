//! The russh `Handler` of one connection: a thin adapter that turns each
//! callback into a call on the connection's parts (authentication, session
//! channels, forwarding). Decisions are awaited here, on the connection's
//! event loop; long work (channel bodies, forwarded connections, listeners)
//! runs on tasks of its own.
//!
//! russh stores the future of whichever callback is running inside its
//! connection future, which is allocated once per connection at the size of
//! its largest state and lives as long as the connection: every byte of a
//! callback's future is paid by every idle session. So each callback that
//! awaits a decision boxes that work (`Box::pin`): allocated while the
//! callback runs, freed when it returns. `data`, called for every packet,
//! is not boxed: its future is small.

use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{self, Msg};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tracing::Instrument;

use super::auth::Authentication;
use super::sessions::Sessions;
use super::{Decider, HandlerError, Shared};
use crate::channel::{ChannelEvent, Command, PtyRequest, Signal, WindowSize};
use crate::forward::remote::Listeners;
use crate::forward::slots::ForwardSlots;
use crate::forward::{Forward, ListenTarget, OpenFailure, TcpTarget, X11Request, local};
use crate::connection::ConnectionLimits;
use crate::request::{RequestKind, Response, SessionInfo};

/// The per-connection russh handler.
pub(crate) struct ConnectionHandler {
    shared: Arc<Shared>,
    decider: Decider,
    // The larger parts are boxed: russh keeps the handler inline in its
    // connection future, in several of its states at once (measured: each
    // byte of the handler costs about four there, for the connection's life).
    /// Gone once the client is authenticated: russh sends no authentication
    /// request here after that, and an idle session need not keep the record.
    auth: Option<Box<Authentication>>,
    sessions: Box<Sessions>,
    forward_slots: ForwardSlots,
    listeners: Box<Listeners>,
}

impl ConnectionHandler {
    pub(crate) fn new(shared: Arc<Shared>, decider: Decider, limits: ConnectionLimits) -> Self {
        let channels = ForwardSlots::new(limits.max_channels.unwrap_or(usize::MAX));
        // Channels the server opens to the client (X11, the agent) count too.
        let places = channels.clone();
        decider.connection().set_channel_places(Box::new(move || places.acquire().map(|slot| Box::new(slot) as _)));
        ConnectionHandler {
            auth: Some(Box::new(Authentication::new(
                shared.clone(),
                decider.clone(),
                limits.startup,
                (limits.max_auth_tries, limits.max_auth_requests),
            ))),
            sessions: Box::new(Sessions::new(
                decider.clone(),
                limits.max_sessions.unwrap_or(usize::MAX),
                channels.clone(),
                limits.user_sessions,
                shared.open_files.clone(),
            )),
            forward_slots: channels,
            listeners: Box::new(Listeners::new(limits.max_listeners.unwrap_or(usize::MAX))),
            shared,
            decider,
        }
    }

    /// Passes on an authentication answer; an acceptance ends the
    /// authentication, and its state is dropped.
    fn settle(&mut self, answer: Result<server::Auth, HandlerError>) -> Result<server::Auth, HandlerError> {
        if matches!(answer, Ok(server::Auth::Accept)) {
            self.auth = None;
        }
        answer
    }

    /// Watches whether the connection has no open channel (`true`) for
    /// [`UnusedConnectionTimeout`](crate::limit::UnusedConnectionTimeout).
    pub(crate) fn channels_empty(&self) -> tokio::sync::watch::Receiver<bool> {
        self.forward_slots.empty()
    }

    /// Decides a global request in the connection's span.
    async fn allowed(&self, kind: RequestKind) -> bool {
        self.decider.decide(self.decider.request(kind), self.decider.span()).await.is_allowed()
    }

    /// Decides a local-forwarding channel open and carries it out on a task of its own.
    async fn open_forward<S, C>(
        &self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        kind: RequestKind,
        span: tracing::Span,
        channel_type: &str,
        connect: C,
    )
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        C: std::future::Future<Output = std::io::Result<S>> + Send + 'static,
    {
        let Some(slot) = self.decider.span().in_scope(|| self.forward_slots.acquire()) else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return;
        };
        let forward = match self.decider.decide(self.decider.request(kind), &span).await {
            Response::Forward(forward) => forward,
            Response::Accept => Forward::Connect,
            other => Forward::Refuse(other.open_failure().unwrap_or(OpenFailure::AdministrativelyProhibited)),
        };
        local::open(forward, channel, reply, slot, span, (self.decider.connection(), channel_type), connect);
    }
}

impl server::Handler for ConnectionHandler {
    type Error = HandlerError;

    /// Holds the client to a trickle while a channel buffer is over its high-water mark.
    fn adjust_window(&mut self, _channel: ChannelId, _current: u32) -> u32 {
        self.decider.connection().flow().target()
    }

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        match self.shared.routes.banner_text() {
            Some(banner) => Ok(banner.await),
            None => Ok(None),
        }
    }

    async fn auth_none(&mut self, user: &str) -> Result<server::Auth, Self::Error> {
        let Some(auth) = self.auth.as_mut() else { return Ok(server::Auth::reject()) };
        let answer = Box::pin(auth.none(user)).await;
        self.settle(answer)
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<server::Auth, Self::Error> {
        let Some(auth) = self.auth.as_mut() else { return Ok(server::Auth::reject()) };
        let answer = Box::pin(auth.password(user, password)).await;
        self.settle(answer)
    }

    async fn auth_publickey_offered(&mut self, user: &str, offer: server::PublicKeyOffer<'_>) -> Result<server::Auth, Self::Error> {
        // A probe's acceptance proves nothing: the state stays for the signed request.
        let Some(auth) = self.auth.as_mut() else { return Ok(server::Auth::reject()) };
        Box::pin(auth.publickey_offered(user, offer.public_key)).await
    }

    async fn auth_publickey(&mut self, user: &str, key: server::VerifiedPublicKey<'_>) -> Result<server::Auth, Self::Error> {
        let key: &PublicKey = key.public_key;
        let Some(auth) = self.auth.as_mut() else { return Ok(server::Auth::reject()) };
        let answer = Box::pin(auth.publickey(user, key)).await;
        self.settle(answer)
    }

    async fn auth_openssh_certificate(&mut self, user: &str, certificate: &russh::keys::Certificate) -> Result<server::Auth, Self::Error> {
        let Some(auth) = self.auth.as_mut() else { return Ok(server::Auth::reject()) };
        let answer = Box::pin(auth.certificate(user, certificate)).await;
        self.settle(answer)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<server::Auth, Self::Error> {
        let answers = response.map(|r| r.map(|b| String::from_utf8_lossy(&b).into_owned()).collect());
        let Some(auth) = self.auth.as_mut() else { return Ok(server::Auth::reject()) };
        let answer = Box::pin(auth.keyboard_interactive(user, submethods, answers)).await;
        self.settle(answer)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.sessions.open(channel, reply)).await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut server::Session) -> Result<(), Self::Error> {
        self.sessions.close(channel);
        Ok(())
    }

    /// Every data packet, on every channel kind: past the connection's or the
    /// server's buffer budget, the connection stops reading until they drain.
    async fn data(&mut self, channel: ChannelId, _data: &[u8], session: &mut server::Session) -> Result<(), Self::Error> {
        self.sessions.data(channel, session);
        if let Err(stalled) = self.decider.connection().flow().room().await {
            tracing::warn!(parent: self.decider.span(), buffered = stalled.buffered, "channel buffers did not drain; disconnecting");
            let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "channel buffers did not drain");
            return Err(HandlerError::Ssh(russh::Error::IO(error)));
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(russh::Pty, u32)],
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        Box::pin(async move {
            let pty = PtyRequest {
                term: term.to_owned(),
                size: WindowSize { cols: col_width, rows: row_height, pix_width, pix_height },
                modes: modes.iter().map(|(op, v)| (*op as u8, *v)).collect(),
            };
            self.sessions.record_if_allowed(channel, RequestKind::Pty(pty.clone()), session, |info| info.pty = Some(pty)).await;
            Ok(())
        })
        .await
    }

    async fn env_request(&mut self, channel: ChannelId, name: &str, value: &str, session: &mut server::Session) -> Result<(), Self::Error> {
        Box::pin(async move {
            if !self.sessions.env_fits(channel, name, value, self.shared.limits.max_env_bytes) {
                let _ = session.channel_failure(channel);
                return Ok(());
            }
            let kind = RequestKind::Env { name: name.to_owned(), value: value.to_owned() };
            // Copies the list only if a handler kept an earlier `SessionInfo`.
            let record = |info: &mut SessionInfo| Arc::make_mut(&mut info.env).push((name.to_owned(), value.to_owned()));
            self.sessions.record_if_allowed(channel, kind, session, record).await;
            Ok(())
        })
        .await
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut server::Session) -> Result<(), Self::Error> {
        Box::pin(self.sessions.start_body(channel, RequestKind::Shell, session)).await;
        Ok(())
    }

    async fn exec_request(&mut self, channel: ChannelId, data: &[u8], session: &mut server::Session) -> Result<(), Self::Error> {
        Box::pin(self.sessions.start_body(channel, RequestKind::Exec(Command::new(data)), session)).await;
        Ok(())
    }

    async fn subsystem_request(&mut self, channel: ChannelId, name: &str, session: &mut server::Session) -> Result<(), Self::Error> {
        Box::pin(self.sessions.start_body(channel, RequestKind::Subsystem(name.to_owned()), session)).await;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        Box::pin(async move {
            let size = WindowSize { cols: col_width, rows: row_height, pix_width, pix_height };
            let record = |info: &mut SessionInfo| {
                if let Some(pty) = info.pty.as_mut() {
                    pty.size = size;
                }
            };
            if self.sessions.record_if_allowed(channel, RequestKind::WindowChange(size), session, record).await {
                self.sessions.deliver(channel, ChannelEvent::WindowChange(size));
            }
            Ok(())
        })
        .await
    }

    async fn signal(&mut self, channel: ChannelId, signal: russh::Sig, session: &mut server::Session) -> Result<(), Self::Error> {
        Box::pin(async move {
            let signal = Signal::from_russh(&signal);
            if self.sessions.request(channel, RequestKind::Signal(signal.clone()), session).await.is_some() {
                self.sessions.deliver(channel, ChannelEvent::Signal(signal));
            }
            Ok(())
        })
        .await
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        single_connection: bool,
        auth_protocol: &str,
        auth_cookie: &str,
        screen: u32,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        Box::pin(async move {
            let x11 = X11Request {
                single_connection,
                auth_protocol: auth_protocol.to_owned(),
                auth_cookie: auth_cookie.to_owned(),
                screen,
            };
            self.sessions.record_if_allowed(channel, RequestKind::X11(x11.clone()), session, |info| info.x11 = Some(x11)).await;
            Ok(())
        })
        .await
    }

    async fn agent_request(&mut self, channel: ChannelId, session: &mut server::Session) -> Result<bool, Self::Error> {
        // The request is answered here; russh's own reply for it is then a no-op.
        Ok(Box::pin(self.sessions.record_if_allowed(channel, RequestKind::AgentForward, session, |info| info.agent = true)).await)
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        Box::pin(async move {
            let to = format!("{host_to_connect}:{port_to_connect}");
            let span = tracing::info_span!(parent: self.decider.span(), "channel", id = %channel.id(), kind = "direct-tcpip", to);
            let target = TcpTarget {
                host: host_to_connect.to_owned(),
                port: port_to_connect,
                originator_host: originator_address.to_owned(),
                originator_port,
            };
            let connect = local::connect_tcp(host_to_connect.to_owned(), port_to_connect);
            self.open_forward(channel, reply, RequestKind::DirectTcpip(target), span, "direct-tcpip", connect).await;
            Ok(())
        })
        .await
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        socket_path: &str,
        reply: server::ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        Box::pin(async move {
            let span = tracing::info_span!(parent: self.decider.span(), "channel", id = %channel.id(), kind = "direct-streamlocal", to = socket_path);
            let kind = RequestKind::DirectStreamlocal { path: socket_path.to_owned() };
            let connect = tokio::net::UnixStream::connect(socket_path.to_owned());
            self.open_forward(channel, reply, kind, span, "direct-streamlocal@openssh.com", connect).await;
            Ok(())
        })
        .await
    }

    async fn tcpip_forward(&mut self, address: &str, port: &mut u32, _session: &mut server::Session) -> Result<bool, Self::Error> {
        Box::pin(async move {
            let limits = &self.shared.limits;
            let span = self.decider.span().clone();
            let bind = span.in_scope(|| {
                if self.listeners.full() { None } else { Listeners::tcp_bind_target(address, *port, limits) }
            });
            let Some(bind) = bind else { return Ok(false) };
            if !self.allowed(RequestKind::TcpipForward(ListenTarget { address: address.to_owned(), port: *port })).await {
                return Ok(false);
            }
            let connection = self.decider.connection().clone();
            Ok(self.listeners.listen_tcp(address, bind, port, &connection, &self.forward_slots, &span).await)
        })
        .await
    }

    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, _session: &mut server::Session) -> Result<bool, Self::Error> {
        Box::pin(async move {
            if !self.listeners.owns_tcp(address, port)
                || !self.allowed(RequestKind::CancelTcpipForward(ListenTarget { address: address.to_owned(), port })).await
            {
                return Ok(false);
            }
            self.listeners.cancel_tcp(address, port).instrument(self.decider.span().clone()).await;
            Ok(true)
        })
        .await
    }

    async fn streamlocal_forward(&mut self, socket_path: &str, _session: &mut server::Session) -> Result<bool, Self::Error> {
        Box::pin(async move {
            let span = self.decider.span().clone();
            if span.in_scope(|| self.listeners.full()) {
                return Ok(false);
            }
            if !self.allowed(RequestKind::StreamlocalForward { path: socket_path.to_owned() }).await {
                return Ok(false);
            }
            let connection = self.decider.connection().clone();
            let mask = self.shared.limits.stream_local_bind_mask;
            Ok(self.listeners.listen_unix(socket_path, mask, &connection, &self.forward_slots, &span))
        })
        .await
    }

    async fn cancel_streamlocal_forward(&mut self, socket_path: &str, _session: &mut server::Session) -> Result<bool, Self::Error> {
        Box::pin(async move {
            if !self.listeners.owns_unix(socket_path)
                || !self.allowed(RequestKind::CancelStreamlocalForward { path: socket_path.to_owned() }).await
            {
                return Ok(false);
            }
            self.listeners.cancel_unix(socket_path).instrument(self.decider.span().clone()).await;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    /// Every idle connection holds the handler (inline in russh's connection
    /// future, about four times over) and the framework's connection future,
    /// each at its largest state, for its whole life.
    #[tokio::test]
    async fn the_state_an_idle_connection_holds_stays_small() {
        let handler = std::mem::size_of::<super::ConnectionHandler>();
        eprintln!("ConnectionHandler: {handler} bytes");
        assert!(handler <= 256, "ConnectionHandler is {handler} bytes; box what only some connections use");

        let dir = tempfile::tempdir().unwrap();
        let server = crate::Server::builder().host_key_file(dir.path().join("host_key")).build().await.unwrap();
        let (stream, _peer) = tokio::io::duplex(64);
        let connection = server.serve_connection(stream, None);
        let size = std::mem::size_of_val(&connection);
        eprintln!("a connection's future: {size} bytes");
        assert!(size <= 1536, "a connection's future is {size} bytes; box what only its start or its end needs");
    }
}
