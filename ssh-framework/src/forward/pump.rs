//! Moves bytes between an SSH channel and a socket, both ways, with half-close.

use russh::Channel;
use russh::server::Msg;
use tokio::io::{AsyncRead, AsyncWrite};

/// Buffer per direction: large enough to fill a 32 KiB packet twice over.
const BUFFER: usize = 64 << 10;

/// Copies until both directions reached EOF; EOF on one side is passed on as
/// EOF (or `shutdown(SHUT_WR)`) to the other, and the channel closes when done.
pub(crate) async fn pump<S>(channel: Channel<Msg>, mut socket: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = channel.into_stream();
    match tokio::io::copy_bidirectional_with_sizes(&mut stream, &mut socket, BUFFER, BUFFER).await {
        Ok((to_socket, to_client)) => tracing::debug!(to_socket, to_client, "forwarded connection finished"),
        Err(error) => tracing::debug!(%error, "forwarded connection ended with an error"),
    }
}
