//! Forwarding end to end: OpenSSH's `ssh -L`, `-R`, `-A` and control-master
//! cancels against in-process servers, and russh's client for what `ssh`
//! does not expose (X11 channels opened back to the client, the listener
//! limit, custom global requests).
//!
//! Every `ssh` runs with `-o BatchMode=yes -o ExitOnForwardFailure=yes`, a
//! fresh `ssh-keygen` key, and under a timeout; long-running ones are killed
//! when their handle drops. Readiness is read from `ssh -v`'s own messages
//! ("remote forward success", "Allocated port", "Local connections to").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use ssh_framework::extract::{AgentForwarded, SocketPath};
use ssh_framework::forward::{
    AgentListener, Client, Forward, GatewayPorts, ListenTarget, OpenFailure, PermitOpen, TcpTarget, X11Request,
};
use ssh_framework::{ChannelIo, Command, ExitStatus, ServerBuilder};
use ssh_framework_tests::data::{pseudo_random, sha256};
use ssh_framework_tests::handlers::{AuthorizedKeys, SessionOnly};
use ssh_framework_tests::net::{
    closed_without_data, connect, free_port, local_tcp_forward, localhost, round_trip, tcp_echo, tcp_round_trip,
    unix_echo,
};
use ssh_framework_tests::openssh::{Agent, ClientKey, Running, Ssh, keygen};
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};

#[path = "forwarding/socket_mode.rs"]
mod socket_mode;

// ---------------------------------------------------------------------------
// Handlers

/// Local forwards within a `PermitOpen` policy, Unix sockets inside one
/// directory both ways, and remote TCP forwards anywhere the server's
/// own checks allow.
#[derive(Clone)]
struct Forwards {
    permit: PermitOpen,
    sockets: PathBuf,
    remote_requests: Arc<Mutex<Vec<ListenTarget>>>,
}

impl Forwards {
    fn new(permit: PermitOpen, sockets: &Path) -> Self {
        Forwards { permit, sockets: sockets.to_owned(), remote_requests: Arc::default() }
    }

    fn inside(&self, path: &str) -> bool {
        let path = Path::new(path);
        path.starts_with(&self.sockets) && !path.components().any(|c| c == std::path::Component::ParentDir)
    }
}

#[ssh_framework::server]
impl Forwards {
    #[channel(direct_tcpip)]
    async fn local(&self, target: TcpTarget) -> Forward {
        if self.permit.allows(&target.host, target.port) {
            Forward::Connect
        } else {
            Forward::Refuse(OpenFailure::AdministrativelyProhibited)
        }
    }

    #[channel(direct_streamlocal)]
    async fn local_socket(&self, path: SocketPath) -> bool {
        self.inside(&path.0)
    }

    #[tcpip_forward]
    async fn remote(&self, target: ListenTarget) -> bool {
        self.remote_requests.lock().unwrap().push(target);
        true
    }

    #[streamlocal_forward]
    async fn remote_socket(&self, path: SocketPath) -> bool {
        self.inside(&path.0)
    }
}

/// Agent forwarding, and `ssh-add ARGS` run against the forwarded agent.
struct AgentKeys;

#[ssh_framework::server]
impl AgentKeys {
    #[agent]
    async fn agent(&self) -> bool {
        true
    }

    #[exec("ssh-add")]
    async fn ssh_add(
        &self,
        command: Command,
        mut io: ChannelIo,
        agent: AgentForwarded,
        client: Client,
    ) -> std::io::Result<ExitStatus> {
        if !agent.0 {
            io.stderr.write_all(b"no agent was forwarded on this session\n").await?;
            return Ok(ExitStatus::code(2));
        }
        let listener = AgentListener::bind(client, &std::env::temp_dir())?;
        let output = tokio::process::Command::new("ssh-add")
            .args(command.args().split_whitespace())
            .env("SSH_AUTH_SOCK", listener.path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?;
        io.stdout.write_all(&output.stdout).await?;
        io.stderr.write_all(&output.stderr).await?;
        Ok(ExitStatus::code(output.status.code().map_or(255, |c| c as u32)))
    }
}

/// X11 forwarding with MIT cookies, and a command that opens one X11 channel
/// back to the client and writes the screen number into it.
struct X11Back;

#[ssh_framework::server]
impl X11Back {
    #[x11]
    async fn x11(&self, request: X11Request) -> bool {
        request.auth_protocol == "MIT-MAGIC-COOKIE-1"
    }

    #[exec("open-x11")]
    async fn open_x11(&self, _command: Command, request: X11Request, client: Client, mut io: ChannelIo) -> std::io::Result<()> {
        let mut x11 = client.open_x11("127.0.0.1", 6010).await?;
        x11.write_all(format!("screen {}", request.screen).as_bytes()).await?;
        x11.shutdown().await?;
        io.stdout.write_all(b"opened\n").await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Fixtures

/// A server where `alice` logs in with one fresh key and opens sessions,
/// with `configure`'s handlers, in a short temp dir for sockets (Unix socket
/// paths are limited to ~100 bytes), which `configure` is also given.
struct Fixture {
    server: TestServer,
    key: ClientKey,
}

impl Fixture {
    async fn start(configure: impl FnOnce(ServerBuilder, &Path) -> ServerBuilder) -> Fixture {
        let dir = tempfile::Builder::new().prefix("fwd").tempdir_in("/tmp").unwrap();
        let key = keygen(dir.path(), "alice_key").await;
        let sockets = dir.path().to_owned();
        let login = AuthorizedKeys::alice(&key.public);
        let server = TestServer::start_in(dir, |b| configure(b.handlers(login).handlers(SessionOnly), &sockets)).await;
        Fixture { server, key }
    }

    /// The short temp dir.
    fn dir(&self) -> &Path {
        self.server.dir()
    }

    /// `ssh` as alice with her key, `BatchMode` and `ExitOnForwardFailure`.
    fn ssh(&self) -> Ssh {
        self.server
            .ssh("alice")
            .identity(&self.key.path)
            .option("BatchMode=yes")
            .option("ExitOnForwardFailure=yes")
    }

    /// russh's client logged in as alice.
    async fn russh(&self) -> RusshClient {
        RusshClient::login_key(self.server.addr(), "alice", &self.key).await
    }
}

/// Waits until `addr` refuses connections. The server closes remote-forward
/// listeners when it notices the client is gone, which no event tells the
/// test about; and a child forked elsewhere in this process holds a copy of a
/// closed listener until it execs. So this retries until the deadline.
async fn refused_eventually(addr: SocketAddr) {
    within("the listener to close", async {
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
}

/// A server with `Forwards` (no `PermitOpen` destination, sockets in its temp dir).
async fn forwards() -> Fixture {
    Fixture::start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await
}

/// A server with `Forwards` allowing local forwards to `permitted` only, and no sockets.
async fn forwards_to(permitted: SocketAddr) -> Fixture {
    Fixture::start(|b, dir| b.handlers(Forwards::new(PermitOpen::none().allow(&permitted.to_string()).unwrap(), dir))).await
}

#[tokio::test]
async fn local_forward_carries_16_mib_to_an_echo_server_intact() {
    let echo = tcp_echo().await;
    let fixture = forwards_to(echo).await;
    let (ssh, local) = local_tcp_forward(fixture.ssh(), echo).await;

    let data = pseudo_random(16 << 20, 16);
    let back = tcp_round_trip(local, &data).await;
    assert_eq!(back.len(), data.len(), "ssh stderr:\n{}", ssh.stderr());
    assert_eq!(sha256(&back), sha256(&data));
    ssh.kill().await;
}

#[tokio::test]
async fn local_forward_outside_permit_open_is_administratively_prohibited() {
    let allowed = tcp_echo().await;
    let forbidden = tcp_echo().await;
    let fixture = forwards_to(allowed).await;
    let (mut ssh, local) = local_tcp_forward(fixture.ssh(), forbidden).await;

    assert!(closed_without_data(connect(local).await).await, "ssh closes the connection of a refused channel");
    let refusal = ssh.line("open failed").await;
    assert!(refusal.contains("administratively prohibited"), "{refusal}");
    ssh.kill().await;
}

#[tokio::test]
async fn remote_forward_on_port_zero_reports_the_allocated_port() {
    let echo = tcp_echo().await;
    let fixture = forwards().await;
    let mut ssh = fixture.ssh().args(["-R", &format!("0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;
    assert_ne!(port, 0);

    let back = tcp_round_trip(localhost(port), b"through -R").await;
    assert_eq!(back, b"through -R", "ssh stderr:\n{}", ssh.stderr());
    ssh.kill().await;
}

#[tokio::test]
async fn remote_forward_on_a_fixed_port() {
    let echo = tcp_echo().await;
    let forwards = Forwards::new(PermitOpen::none(), Path::new("/nonexistent"));
    let requests = forwards.remote_requests.clone();
    let fixture = Fixture::start(|b, _| b.handlers(forwards)).await;
    let port = free_port();
    let mut ssh = fixture.ssh().args(["-R", &format!("{port}:{echo}")]).spawn_forwarding();
    ssh.line("remote forward success").await;

    let back = tcp_round_trip(localhost(port), b"fixed").await;
    assert_eq!(back, b"fixed");
    let seen = requests.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|t| t.port).collect::<Vec<_>>(), [u32::from(port)], "{seen:?}");
    ssh.kill().await;
}

#[tokio::test]
async fn cancel_through_a_control_master_closes_the_listener() {
    let echo = tcp_echo().await;
    let fixture = forwards().await;
    let control = fixture.dir().join("ctl");
    let port = free_port();
    let spec = format!("{port}:{echo}");
    let mut master = fixture
        .ssh()
        .option("ControlMaster=yes")
        .option(&format!("ControlPath={}", control.display()))
        .args(["-R", &spec])
        .spawn_forwarding();
    master.line("remote forward success").await;
    let listening = localhost(port);
    assert_eq!(tcp_round_trip(listening, b"before").await, b"before");

    let cancel = fixture
        .ssh()
        .option("ControlMaster=no")
        .option(&format!("ControlPath={}", control.display()))
        .args(["-O", "cancel", "-R", &spec])
        .run("")
        .await;
    assert_eq!(cancel.code, Some(0), "ssh -O cancel: {}", cancel.stderr);
    // The master acknowledges `-O cancel` as soon as it has sent
    // cancel-tcpip-forward, without waiting for the server's answer, so
    // the close is awaited here (the russh test below checks that the
    // server closes the port before it answers).
    refused_eventually(listening).await;
    assert!(master.is_running(), "the master connection stays up");
    master.kill().await;
}

#[tokio::test]
async fn remote_listener_is_closed_when_the_client_disconnects() {
    let echo = tcp_echo().await;
    let fixture = forwards().await;
    let mut ssh = fixture.ssh().args(["-R", &format!("0:{echo}")]).spawn_forwarding();
    let listening = localhost(ssh.allocated_port().await);
    assert_eq!(tcp_round_trip(listening, b"up").await, b"up");

    ssh.kill().await;
    refused_eventually(listening).await;
}

/// A Unix-socket echo server at `DIR/server.sock` and `ssh -L DIR/local.sock:DIR/server.sock`
/// with its session up; the running ssh and the local socket.
async fn local_socket_forward(fixture: &Fixture) -> (Running, PathBuf) {
    let served = fixture.dir().join("server.sock");
    unix_echo(&served);
    let local = fixture.dir().join("local.sock");
    let mut ssh = fixture.ssh().args(["-L", &format!("{}:{}", local.display(), served.display())]).spawn_forwarding();
    ssh.session_up().await;
    (ssh, local)
}

#[tokio::test]
async fn local_forward_to_a_unix_socket() {
    let fixture = forwards().await;
    let (ssh, local) = local_socket_forward(&fixture).await;

    let stream = within("connect to the -L socket", UnixStream::connect(&local)).await.unwrap();
    assert_eq!(round_trip(stream, b"unix -L".to_vec()).await, b"unix -L", "ssh stderr:\n{}", ssh.stderr());
    ssh.kill().await;
}

#[tokio::test]
async fn local_forward_to_a_unix_socket_outside_the_allowed_directory_is_refused() {
    let fixture = Fixture::start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), &dir.join("only-here")))).await;
    let (mut ssh, local) = local_socket_forward(&fixture).await;

    let stream = within("connect to the -L socket", UnixStream::connect(&local)).await.unwrap();
    assert!(closed_without_data(stream).await, "ssh closes the connection of a refused channel");
    assert!(ssh.line("open failed").await.contains("administratively prohibited"));
    ssh.kill().await;
}

#[tokio::test]
async fn remote_forward_from_a_unix_socket() {
    let fixture = forwards().await;
    let target = fixture.dir().join("local-echo.sock");
    unix_echo(&target);
    let remote = fixture.dir().join("remote.sock");
    let mut ssh = fixture.ssh().args(["-R", &format!("{}:{}", remote.display(), target.display())]).spawn_forwarding();
    ssh.line("remote forward success").await;

    let stream = within("connect to the -R socket", UnixStream::connect(&remote)).await.unwrap();
    assert_eq!(round_trip(stream, b"unix -R".to_vec()).await, b"unix -R", "ssh stderr:\n{}", ssh.stderr());
    ssh.kill().await;
    // The socket file goes with the connection.
    within("the socket file to be removed", async {
        while remote.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn agent_forwarding_lets_an_exec_list_the_clients_keys() {
    let fixture = Fixture::start(|b, _| b.handlers(AgentKeys)).await;
    let agent = Agent::with_a_key(fixture.dir()).await;

    let out = fixture.ssh().args(["-A"]).agent(&agent.socket).run("ssh-add -l").await;
    let stdout = out.stdout_text();
    assert_eq!(out.code, Some(0), "stdout: {stdout}\nstderr: {}", out.stderr);
    assert!(stdout.contains("agent-held-key"), "ssh-add -l on the server lists the agent's key: {stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    // Without -A the exec sees no agent.
    let out = fixture.ssh().run("ssh-add -l").await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    agent.kill().await;
}

#[tokio::test]
async fn remote_forward_on_a_privileged_port_is_refused() {
    let echo = tcp_echo().await;
    let forwards = Forwards::new(PermitOpen::none(), Path::new("/nonexistent"));
    let requests = forwards.remote_requests.clone();
    let fixture = Fixture::start(|b, _| b.handlers(forwards)).await;
    let out = fixture.ssh().args(["-N", "-R", &format!("80:{echo}")]).run("").await;
    assert_eq!(out.code, Some(255), "{}", out.stderr);
    assert!(out.stderr.contains("remote port forwarding failed for listen port 80"), "{}", out.stderr);
    assert!(requests.lock().unwrap().is_empty(), "refused before the handler");
}

#[tokio::test]
async fn gateway_ports_no_binds_loopback_when_all_interfaces_are_asked_for() {
    let echo = tcp_echo().await;
    let fixture = forwards().await;
    let mut ssh = fixture.ssh().args(["-R", &format!("0.0.0.0:0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;

    assert_eq!(tcp_round_trip(localhost(port), b"lo").await, b"lo");
    // All of 127/8 reaches this host, but only a wildcard bind answers on 127.0.0.2.
    let other = TcpStream::connect(SocketAddr::from(([127, 0, 0, 2], port))).await;
    assert!(other.is_err(), "a loopback-only listener does not answer on 127.0.0.2: {other:?}");
    ssh.kill().await;
}

#[tokio::test]
async fn gateway_ports_client_specified_binds_the_requested_wildcard() {
    let echo = tcp_echo().await;
    let fixture = Fixture::start(|b, dir| {
        b.gateway_ports(GatewayPorts::ClientSpecified).handlers(Forwards::new(PermitOpen::none(), dir))
    })
    .await;
    let mut ssh = fixture.ssh().args(["-R", &format!("0.0.0.0:0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;
    // The control for the test above: 127.0.0.2 does reach a wildcard listener here.
    assert_eq!(tcp_round_trip(SocketAddr::from(([127, 0, 0, 2], port)), b"any").await, b"any");
    ssh.kill().await;
}

// ---------------------------------------------------------------------------
// russh's client

#[tokio::test]
async fn x11_request_is_accepted_and_the_server_opens_an_x11_channel_back() {
    let fixture = Fixture::start(|b, _| b.handlers(X11Back)).await;
    let mut client = fixture.russh().await;
    let (mut session, allowed) = client.x11_session("0123456789abcdef0123456789abcdef", 3).await;
    assert!(allowed, "x11-req is allowed");

    session.exec(true, "open-x11").await.unwrap();
    let mut x11 = client.next_x11().await;
    assert_eq!((x11.address.as_str(), x11.port), ("127.0.0.1", 6010));
    let mut received = Vec::new();
    within("x11 channel data", async {
        while let Some(msg) = x11.channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => received.extend_from_slice(&data),
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(received, b"screen 3");
    let transcript = read_to_close(&mut session).await;
    assert_eq!(transcript.stdout, b"opened\n");
    assert!(transcript.events.contains(&"exit-status 0".to_owned()), "{:?}", transcript.events);
}

#[tokio::test]
async fn channels_the_server_opens_to_the_client_count_toward_max_channels() {
    // The session takes the connection's one channel place: the X11 channel is not opened.
    let fixture = Fixture::start(|b, _| b.handlers(X11Back).max_channels(1)).await;
    let mut client = fixture.russh().await;
    let (mut session, allowed) = client.x11_session("0123456789abcdef0123456789abcdef", 3).await;
    assert!(allowed, "x11-req is allowed");

    session.exec(true, "open-x11").await.unwrap();
    let transcript = read_to_close(&mut session).await;
    // `open_x11` failed (the handler's error is its exit status 1), nothing was written.
    assert!(transcript.stdout.is_empty(), "{transcript:?}");
    assert!(transcript.events.contains(&"exit-status 1".to_owned()), "{:?}", transcript.events);
    assert!(client.try_x11().is_none(), "an X11 channel was opened past the cap");
}

#[tokio::test]
async fn x11_request_is_refused_without_an_x11_handler() {
    let fixture = Fixture::start(|b, _| b).await;
    let mut client = fixture.russh().await;
    let (_session, allowed) = client.x11_session("0123456789abcdef0123456789abcdef", 0).await;
    assert!(!allowed, "x11-req is refused");
    assert!(client.try_x11().is_none());
}

#[tokio::test]
async fn a_third_remote_forward_is_refused_past_max_listeners() {
    let forwards = Forwards::new(PermitOpen::none(), Path::new("/nonexistent"));
    let requests = forwards.remote_requests.clone();
    let fixture = Fixture::start(|b, _| b.max_listeners(2).handlers(forwards)).await;
    let handle = fixture.russh().await.handle;
    let first = within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await.unwrap();
    let second = within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await.unwrap();
    assert!(first != 0 && second != 0 && first != second, "{first} {second}");
    let third = within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await;
    assert!(matches!(third, Err(russh::Error::RequestDenied)), "{third:?}");
    assert_eq!(requests.lock().unwrap().len(), 2, "the limit is enforced before the handler");

    // Closing one frees a place; the server closes its port before it answers
    // the cancel. A child that another test forks at that moment holds a copy
    // of the listening socket until it execs, and the kernel goes on accepting
    // on it meanwhile (4 of 64 runs of this binary under load): so connections
    // are retried, for at most 5 s, until one is refused.
    within("cancel", handle.cancel_tcpip_forward("127.0.0.1", first)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), refused_eventually(localhost(first as u16)))
        .await
        .expect("the cancelled port refuses connections within 5 s of the answered cancel");
    within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await.unwrap();
    // Only listeners this connection owns can be cancelled.
    let foreign = within("cancel", handle.cancel_tcpip_forward("127.0.0.1", u32::from(fixture.server.port()))).await;
    assert!(matches!(foreign, Err(russh::Error::RequestDenied)), "{foreign:?}");
}

#[tokio::test]
async fn custom_global_requests_get_failure_from_russh_before_any_handler() {
    let fixture = forwards().await;
    let handle = fixture.russh().await.handle;
    // russh 0.65's server answers every global request but the four forwarding
    // ones with SSH_MSG_REQUEST_FAILURE itself; `#[global_request]` is
    // therefore a compile error.
    let custom = within("a custom global request", handle.send_global_request("ping@example.com", b"", true)).await;
    assert!(matches!(custom, Err(russh::Error::RequestDenied)), "{custom:?}");
    // keepalive@openssh.com is answered too (with failure), which is all a keepalive needs.
    within("a keepalive reply", handle.send_ping()).await.unwrap();
    // The connection is still usable afterwards.
    let port = within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await.unwrap();
    assert_ne!(port, 0);
}
