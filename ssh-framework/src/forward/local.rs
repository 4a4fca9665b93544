//! Local forwarding (`ssh -L`): carrying out a decided `direct-tcpip` or
//! `direct-streamlocal@openssh.com` channel open.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use russh::Channel;
use russh::server::{ChannelOpenHandle, Msg};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use super::slots::ForwardSlot;
use super::{Forward, OpenFailure};
use crate::channel::{ChannelIo, Events, Stdin};
use crate::connection::Connection;

/// How long the built-in forwarder waits for a destination to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers a local-forwarding channel open on a task of its own: connect and
/// pump, serve in-process, or refuse, as `forward` says; the channel is
/// watched as `channel_type` by the connection's `ChannelTimeout`.
pub(crate) fn open<S, C>(
    forward: Forward,
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    slot: ForwardSlot,
    span: tracing::Span,
    (connection, channel_type): (&Connection, &str),
    connect: C,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Future<Output = std::io::Result<S>> + Send + 'static,
{
    let flow = connection.flow().clone();
    let watch = connection.channel_watch(channel_type);
    let task = async move {
        match forward {
            Forward::Connect => match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(socket)) => {
                    reply.accept().await;
                    super::pump(channel, socket, flow, watch).await;
                }
                Ok(Err(error)) => {
                    tracing::info!(%error, "forward destination refused");
                    reply.reject(OpenFailure::ConnectFailed.to_russh()).await;
                }
                Err(_) => {
                    tracing::info!("forward destination timed out");
                    reply.reject(OpenFailure::ConnectFailed.to_russh()).await;
                }
            },
            Forward::Serve(serve) => {
                reply.accept().await;
                let (read, write) = channel.split();
                let (_events_tx, events_rx) = crate::event_queue::bounded(1);
                let activity = watch.activity();
                let stdin = Stdin::new(Vec::new(), false, Some(read), flow, activity.clone());
                let io = ChannelIo::new(stdin, &write, Events::new(events_rx), activity);
                tokio::select! {
                    served = AssertUnwindSafe(serve(io)).catch_unwind() => if served.is_err() {
                        tracing::error!("forwarding handler panicked; closing its channel");
                    },
                    () = watch.expired() => {}
                }
                let _ = write.eof().await;
                let _ = write.close().await;
            }
            Forward::Refuse(reason) => {
                tracing::debug!(?reason, "forward refused");
                reply.reject(reason.to_russh()).await;
            }
        }
        drop(slot);
    };
    tokio::spawn(task.instrument(span));
}

/// Connects to a TCP destination as the client asked.
pub(crate) async fn connect_tcp(host: String, port: u32) -> std::io::Result<tokio::net::TcpStream> {
    let port =
        u16::try_from(port).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "port out of range"))?;
    let socket = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let _ = socket.set_nodelay(true);
    Ok(socket)
}
