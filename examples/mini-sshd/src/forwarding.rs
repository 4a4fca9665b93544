//! Forwarding: the policy behind `--allow-*-forwarding` and `--permit-open`,
//! and what a session's children reach of the client while its body runs —
//! the client's agent on `SSH_AUTH_SOCK` and its X server on `DISPLAY`, as
//! OpenSSH's sshd offers them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::task::Poll;

use ssh_framework::forward::{AgentListener, Client, PermitOpen, X11Request};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The first display number tried, as sshd's `X11DisplayOffset`: lower ones
/// belong to local X servers.
const X11_DISPLAY_OFFSET: u16 = 10;
/// How many display numbers are tried, as sshd's `X11MaxDisplays`.
const X11_MAX_DISPLAYS: u16 = 1000;
/// X11 display N listens on TCP port 6000 + N.
const X11_BASE_PORT: u16 = 6000;

/// What the command line allows to be forwarded.
#[derive(Debug, Clone)]
pub(crate) struct ForwardingPolicy {
    /// `--allow-tcp-forwarding`: `ssh -L` and `ssh -R`.
    pub(crate) tcp: bool,
    /// `--permit-open`: where `ssh -L` may go.
    pub(crate) permit_open: PermitOpen,
    /// `--allow-agent-forwarding`.
    pub(crate) agent: bool,
    /// `--allow-x11-forwarding`.
    pub(crate) x11: bool,
}

impl ForwardingPolicy {
    /// Whether a `direct-tcpip` channel to `host:port` may open.
    pub(crate) fn allows_local(&self, host: &str, port: u32) -> bool {
        self.tcp && self.permit_open.allows(host, port)
    }
}

/// The client's agent and X display, offered to one session channel's
/// children until the body ends: dropping this closes both.
#[derive(Debug, Default)]
pub(crate) struct SessionForwards {
    agent: Option<AgentListener>,
    x11: Option<X11Display>,
}

impl SessionForwards {
    /// Opens what was allowed on this channel: an agent socket when `agent`,
    /// an X11 display when an `x11-req` was allowed. One that cannot be set up
    /// is left out with a warning; the session runs without it.
    pub(crate) async fn open(client: &Client, agent: bool, x11: Option<&X11Request>, home: &Path, path: &str) -> Self {
        let agent = agent
            .then(|| {
                AgentListener::bind(client.clone(), &std::env::temp_dir())
                    .inspect_err(|error| tracing::warn!(%error, "agent socket not created; SSH_AUTH_SOCK is not set"))
                    .ok()
            })
            .flatten();
        let x11 = match x11 {
            Some(request) => match X11Display::bind(client.clone(), request).await {
                Ok(display) => {
                    display.write_xauth(request, home, path).await;
                    Some(display)
                }
                Err(error) => {
                    tracing::warn!(%error, "no X11 display created; DISPLAY is not set");
                    None
                }
            },
            None => None,
        };
        SessionForwards { agent, x11 }
    }

    /// The variables that point children at them: `SSH_AUTH_SOCK`, `DISPLAY`.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(agent) = &self.agent {
            env.push(("SSH_AUTH_SOCK".to_owned(), agent.path().display().to_string()));
        }
        if let Some(x11) = &self.x11 {
            env.push(("DISPLAY".to_owned(), x11.display()));
        }
        env
    }
}

/// A server-side X11 display: TCP listeners on every loopback address
/// `localhost` may name (127.0.0.1, and ::1 where IPv6 is up), whose every
/// connection becomes an `x11` channel to the client, where ssh hands it to
/// the user's X server. The listeners close when this is dropped;
/// connections already made go on until either side closes them.
#[derive(Debug)]
struct X11Display {
    number: u16,
    screen: u32,
    accept: JoinHandle<()>,
}

/// The addresses a display listens on: `DISPLAY=localhost:N` reaches
/// whichever of them `localhost` resolves to first.
const X11_LOOPBACK: [IpAddr; 2] = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];

/// Whether `error`, binding an IPv6 loopback address, means this host has no
/// IPv6 loopback: then nobody can hold `[::1]:PORT` and IPv4 alone is safe.
fn ipv6_unavailable(error: &io::Error) -> bool {
    use nix::errno::Errno;
    [Errno::EAFNOSUPPORT, Errno::EADDRNOTAVAIL, Errno::EPROTONOSUPPORT].iter().any(|e| error.raw_os_error() == Some(*e as i32))
}

impl X11Display {
    /// Listens on the loopback addresses of display `number`; `Ok(None)` when
    /// another process holds the port on any of them, as sshd skips such a
    /// number: that process would receive the X connections of every client
    /// whose `localhost` resolves to its address.
    async fn bind_display(number: u16) -> io::Result<Option<Vec<TcpListener>>> {
        let port = X11_BASE_PORT + number;
        let mut listeners = Vec::with_capacity(X11_LOOPBACK.len());
        for ip in X11_LOOPBACK {
            match TcpListener::bind((ip, port)).await {
                Ok(listener) => listeners.push(listener),
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => return Ok(None),
                Err(error) if ip.is_ipv6() && ipv6_unavailable(&error) => {
                    tracing::debug!(%error, "no IPv6 loopback; X11 display on IPv4 only");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(Some(listeners))
    }

    /// Listens on the first display from [`X11_DISPLAY_OFFSET`] up that is
    /// free on every loopback address.
    async fn bind(client: Client, request: &X11Request) -> io::Result<Self> {
        for number in X11_DISPLAY_OFFSET..X11_DISPLAY_OFFSET + X11_MAX_DISPLAYS {
            let Some(listeners) = Self::bind_display(number).await? else { continue };
            tracing::debug!(display = number, addresses = listeners.len(), "X11 display listening");
            let single = request.single_connection;
            let accept = tokio::spawn(async move {
                loop {
                    match accept_any(&listeners).await {
                        Ok((socket, peer)) => {
                            tokio::spawn(forward_x11(client.clone(), socket, peer));
                            // sshd's "single connection": the display closes after its first client.
                            if single {
                                break;
                            }
                        }
                        Err(error) => {
                            // EMFILE or an aborted handshake: transient, the display stays.
                            tracing::debug!(%error, "accept on the X11 display failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                }
            });
            return Ok(X11Display { number, screen: request.screen, accept });
        }
        Err(io::Error::new(io::ErrorKind::AddrInUse, "every X11 display number is taken"))
    }

    /// `DISPLAY` for children: `localhost:N.SCREEN`, as sshd's `X11UseLocalhost yes`.
    fn display(&self) -> String {
        format!("localhost:{}.{}", self.number, self.screen)
    }

    /// Adds the client's (fake) cookie for this display to `HOME/.Xauthority`
    /// with `xauth`, as sshd does before starting the shell; X clients send it
    /// and the client swaps in the real one. Without `xauth` nothing is written.
    async fn write_xauth(&self, request: &X11Request, home: &Path, path: &str) {
        // xauth names a TCP display on localhost by its Unix-socket form, as sshd does.
        let name = format!("unix:{}.{}", self.number, self.screen);
        let script = format!("remove {name}\nadd {name} {} {}\n", request.auth_protocol, request.auth_cookie);
        let spawned = tokio::process::Command::new("xauth")
            .args(["-q", "-"])
            .env_clear()
            .env("HOME", home)
            .env("PATH", path)
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                tracing::debug!("xauth is not installed; no cookie written");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "xauth did not start; no cookie written");
                return;
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(script.as_bytes()).await;
        }
        match child.wait_with_output().await {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                tracing::warn!(status = %output.status, stderr = %String::from_utf8_lossy(&output.stderr), "xauth failed")
            }
            Err(error) => tracing::warn!(%error, "xauth failed"),
        }
    }
}

impl Drop for X11Display {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The next connection on any of `listeners`.
async fn accept_any(listeners: &[TcpListener]) -> io::Result<(TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        listeners.iter().find_map(|listener| match listener.poll_accept(cx) {
            Poll::Ready(accepted) => Some(Poll::Ready(accepted)),
            Poll::Pending => None,
        }).unwrap_or(Poll::Pending)
    })
    .await
}

/// Carries one X11 connection over an `x11` channel until both sides are done.
async fn forward_x11(client: Client, mut socket: TcpStream, peer: SocketAddr) {
    let mut channel = match client.open_x11(&peer.ip().to_string(), u32::from(peer.port())).await {
        Ok(channel) => channel,
        Err(error) => {
            tracing::debug!(%error, "the client refused the X11 channel");
            return;
        }
    };
    if let Err(error) = tokio::io::copy_bidirectional(&mut socket, &mut channel).await {
        tracing::debug!(%error, "X11 connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_forwards_need_the_flag_and_the_list() {
        let policy = ForwardingPolicy {
            tcp: true,
            permit_open: PermitOpen::none().allow("localhost:80").unwrap(),
            agent: false,
            x11: false,
        };
        assert!(policy.allows_local("localhost", 80));
        assert!(!policy.allows_local("localhost", 81));
        let off = ForwardingPolicy { tcp: false, permit_open: PermitOpen::any(), ..policy };
        assert!(!off.allows_local("localhost", 80));
    }
}
