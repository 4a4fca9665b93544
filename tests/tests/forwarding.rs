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

use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use russh::{Channel, ChannelMsg};
use ssh_framework::extract::{AgentForwarded, SocketPath};
use ssh_framework::forward::{
    AgentListener, Client, Forward, GatewayPorts, ListenTarget, OpenFailure, PermitOpen, TcpTarget, X11Request,
};
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, ServerBuilder};
use ssh_framework_tests::forwarding::{OpenSsh, free_port, noise, sha256, tcp_echo};
use ssh_framework_tests::{ClientKey, TestServer, keygen, within};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;

// ---------------------------------------------------------------------------
// Handlers

/// `alice` with one key, and session channels.
#[derive(Clone)]
struct Login {
    key: PublicKey,
}

#[ssh_framework::server]
impl Login {
    #[auth(publickey)]
    async fn login(&self, user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(user == "alice" && key.key_data() == self.key.key_data())
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }
}

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

/// A server with `alice`'s key and `configure`'s handlers, the key, and a
/// short temp dir for sockets (Unix socket paths are limited to ~100 bytes).
async fn start(configure: impl FnOnce(ServerBuilder, &Path) -> ServerBuilder) -> (TestServer, ClientKey, tempfile::TempDir) {
    let dir = tempfile::Builder::new().prefix("fwd").tempdir_in("/tmp").unwrap();
    let key = keygen(dir.path(), "alice_key").await;
    let login = Login { key: key.public.clone() };
    let sockets = dir.path().to_owned();
    let server = TestServer::start(|b| configure(b.handlers(login), &sockets)).await;
    (server, key, dir)
}

/// A Unix-socket echo server at `path`.
fn unix_echo(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
}

/// Sends `message`, half-closes, and returns everything read back until EOF.
async fn round_trip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite>(stream: S, message: &[u8]) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(stream);
    w.write_all(message).await.unwrap();
    w.shutdown().await.unwrap();
    let mut back = Vec::new();
    within("the echo to come back", r.read_to_end(&mut back)).await.unwrap();
    back
}

/// Whether the other end closed `stream` without sending anything back:
/// EOF, or a reset because ssh closed the socket with our data unread.
async fn closed_without_data<S: tokio::io::AsyncRead + tokio::io::AsyncWrite>(stream: S) -> bool {
    let (mut r, mut w) = tokio::io::split(stream);
    let _ = w.write_all(b"let me in").await;
    let mut back = Vec::new();
    match within("the refused connection to close", r.read_to_end(&mut back)).await {
        Ok(_) => back.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset && back.is_empty(),
    }
}

async fn tcp_round_trip(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    round_trip(stream, message).await
}

/// Waits until `addr` refuses connections. The server closes remote-forward
/// listeners when it notices the client is gone, which no event tells the
/// test about, so this retries until the deadline.
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

#[tokio::test]
async fn local_forward_carries_16_mib_to_an_echo_server_intact() {
    let echo = tcp_echo().await;
    let (server, key, _dir) =
        start(|b, dir| b.handlers(Forwards::new(PermitOpen::none().allow(&echo.to_string()).unwrap(), dir))).await;
    let local = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut ssh = OpenSsh::new(server.port(), &key).args(["-L", &format!("{local}:{echo}")]).spawn_forwarding();
    ssh.line(&format!("Local connections to {local}")).await;
    // ssh logs the line just before it binds; the session's first message comes after.
    ssh.line("Entering interactive session").await;

    let data = noise(16 << 20);
    let stream = within("connect to -L", TcpStream::connect(local)).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    within("16 MiB to come back through -L", r.read_to_end(&mut back)).await.unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), data.len(), "ssh stderr:\n{}", ssh.stderr());
    assert_eq!(sha256(&back), sha256(&data));
    ssh.kill().await;
}

#[tokio::test]
async fn local_forward_outside_permit_open_is_administratively_prohibited() {
    let allowed = tcp_echo().await;
    let forbidden = tcp_echo().await;
    let (server, key, _dir) =
        start(|b, dir| b.handlers(Forwards::new(PermitOpen::none().allow(&allowed.to_string()).unwrap(), dir))).await;
    let local = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut ssh = OpenSsh::new(server.port(), &key).args(["-L", &format!("{local}:{forbidden}")]).spawn_forwarding();
    ssh.line("Entering interactive session").await;

    let stream = within("connect to -L", TcpStream::connect(local)).await.unwrap();
    assert!(closed_without_data(stream).await, "ssh closes the connection of a refused channel");
    let refusal = ssh.line("open failed").await;
    assert!(refusal.contains("administratively prohibited"), "{refusal}");
    ssh.kill().await;
}

#[tokio::test]
async fn remote_forward_on_port_zero_reports_the_allocated_port() {
    let echo = tcp_echo().await;
    let (server, key, _dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let mut ssh = OpenSsh::new(server.port(), &key).args(["-R", &format!("0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;
    assert_ne!(port, 0);

    let back = tcp_round_trip(SocketAddr::from(([127, 0, 0, 1], port)), b"through -R").await;
    assert_eq!(back, b"through -R", "ssh stderr:\n{}", ssh.stderr());
    ssh.kill().await;
}

#[tokio::test]
async fn remote_forward_on_a_fixed_port() {
    let echo = tcp_echo().await;
    let forwards = Forwards::new(PermitOpen::none(), Path::new("/nonexistent"));
    let requests = forwards.remote_requests.clone();
    let (server, key, _dir) = start(|b, _| b.handlers(forwards)).await;
    let port = free_port();
    let mut ssh = OpenSsh::new(server.port(), &key).args(["-R", &format!("{port}:{echo}")]).spawn_forwarding();
    ssh.line("remote forward success").await;

    let back = tcp_round_trip(SocketAddr::from(([127, 0, 0, 1], port)), b"fixed").await;
    assert_eq!(back, b"fixed");
    let seen = requests.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|t| t.port).collect::<Vec<_>>(), [u32::from(port)], "{seen:?}");
    ssh.kill().await;
}

#[tokio::test]
async fn cancel_through_a_control_master_closes_the_listener() {
    let echo = tcp_echo().await;
    let (server, key, dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let control = dir.path().join("ctl");
    let port = free_port();
    let spec = format!("{port}:{echo}");
    let mut master = OpenSsh::new(server.port(), &key)
        .args(["-o", "ControlMaster=yes", "-o"])
        .args([format!("ControlPath={}", control.display())])
        .args(["-R", &spec])
        .spawn_forwarding();
    master.line("remote forward success").await;
    let listening = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(tcp_round_trip(listening, b"before").await, b"before");

    let cancel = OpenSsh::new(server.port(), &key)
        .args(["-o", "ControlMaster=no", "-S"])
        .args([&control])
        .args(["-O", "cancel", "-R", &spec])
        .run(&[])
        .await;
    assert!(cancel.status.success(), "ssh -O cancel: {}", String::from_utf8_lossy(&cancel.stderr));
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
    let (server, key, _dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let mut ssh = OpenSsh::new(server.port(), &key).args(["-R", &format!("0:{echo}")]).spawn_forwarding();
    let listening = SocketAddr::from(([127, 0, 0, 1], ssh.allocated_port().await));
    assert_eq!(tcp_round_trip(listening, b"up").await, b"up");

    ssh.kill().await;
    refused_eventually(listening).await;
}

#[tokio::test]
async fn local_forward_to_a_unix_socket() {
    let (server, key, dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let served = dir.path().join("server.sock");
    unix_echo(&served);
    let local = dir.path().join("local.sock");
    let mut ssh = OpenSsh::new(server.port(), &key)
        .args(["-L", &format!("{}:{}", local.display(), served.display())])
        .spawn_forwarding();
    ssh.line("Entering interactive session").await;

    let stream = within("connect to the -L socket", UnixStream::connect(&local)).await.unwrap();
    assert_eq!(round_trip(stream, b"unix -L").await, b"unix -L", "ssh stderr:\n{}", ssh.stderr());
    ssh.kill().await;
}

#[tokio::test]
async fn local_forward_to_a_unix_socket_outside_the_allowed_directory_is_refused() {
    let (server, key, dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), &dir.join("only-here")))).await;
    let served = dir.path().join("server.sock");
    unix_echo(&served);
    let local = dir.path().join("local.sock");
    let mut ssh = OpenSsh::new(server.port(), &key)
        .args(["-L", &format!("{}:{}", local.display(), served.display())])
        .spawn_forwarding();
    ssh.line("Entering interactive session").await;

    let stream = within("connect to the -L socket", UnixStream::connect(&local)).await.unwrap();
    assert!(closed_without_data(stream).await, "ssh closes the connection of a refused channel");
    assert!(ssh.line("open failed").await.contains("administratively prohibited"));
    ssh.kill().await;
}

#[tokio::test]
async fn remote_forward_from_a_unix_socket() {
    let (server, key, dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let target = dir.path().join("local-echo.sock");
    unix_echo(&target);
    let remote = dir.path().join("remote.sock");
    let mut ssh = OpenSsh::new(server.port(), &key)
        .args(["-R", &format!("{}:{}", remote.display(), target.display())])
        .spawn_forwarding();
    ssh.line("remote forward success").await;

    let stream = within("connect to the -R socket", UnixStream::connect(&remote)).await.unwrap();
    assert_eq!(round_trip(stream, b"unix -R").await, b"unix -R", "ssh stderr:\n{}", ssh.stderr());
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
    let (server, key, dir) = start(|b, _| b.handlers(AgentKeys)).await;
    let agent_key = keygen(dir.path(), "agent-held-key").await;
    let agent_socket = dir.path().join("agent.sock");
    let mut agent = tokio::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&agent_socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ssh-agent is installed");
    // ssh-agent -D prints its environment once the socket listens.
    let mut first_line = String::new();
    within("ssh-agent to start", BufReader::new(agent.stdout.take().unwrap()).read_line(&mut first_line))
        .await
        .unwrap();
    assert!(first_line.contains("SSH_AUTH_SOCK"), "{first_line}");
    let added = within(
        "ssh-add",
        tokio::process::Command::new("ssh-add")
            .arg(&agent_key.path)
            .env("SSH_AUTH_SOCK", &agent_socket)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    assert!(added.status.success(), "ssh-add: {}", String::from_utf8_lossy(&added.stderr));

    let out = OpenSsh::new(server.port(), &key).args(["-A"]).env("SSH_AUTH_SOCK", &agent_socket).run(&["ssh-add", "-l"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("agent-held-key"), "ssh-add -l on the server lists the agent's key: {stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    // Without -A the exec sees no agent.
    let out = OpenSsh::new(server.port(), &key).run(&["ssh-add", "-l"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    agent.kill().await.unwrap();
}

#[tokio::test]
async fn remote_forward_on_a_privileged_port_is_refused() {
    let echo = tcp_echo().await;
    let forwards = Forwards::new(PermitOpen::none(), Path::new("/nonexistent"));
    let requests = forwards.remote_requests.clone();
    let (server, key, _dir) = start(|b, _| b.handlers(forwards)).await;
    let out = OpenSsh::new(server.port(), &key).args(["-N", "-R", &format!("80:{echo}")]).run(&[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("remote port forwarding failed for listen port 80"), "{stderr}");
    assert!(requests.lock().unwrap().is_empty(), "refused before the handler");
}

#[tokio::test]
async fn gateway_ports_no_binds_loopback_when_all_interfaces_are_asked_for() {
    let echo = tcp_echo().await;
    let (server, key, _dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let mut ssh = OpenSsh::new(server.port(), &key).args(["-R", &format!("0.0.0.0:0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;

    assert_eq!(tcp_round_trip(SocketAddr::from(([127, 0, 0, 1], port)), b"lo").await, b"lo");
    // All of 127/8 reaches this host, but only a wildcard bind answers on 127.0.0.2.
    let other = TcpStream::connect(SocketAddr::from(([127, 0, 0, 2], port))).await;
    assert!(other.is_err(), "a loopback-only listener does not answer on 127.0.0.2: {other:?}");
    ssh.kill().await;
}

#[tokio::test]
async fn gateway_ports_client_specified_binds_the_requested_wildcard() {
    let echo = tcp_echo().await;
    let (server, key, _dir) = start(|b, dir| {
        b.gateway_ports(GatewayPorts::ClientSpecified).handlers(Forwards::new(PermitOpen::none(), dir))
    })
    .await;
    let mut ssh = OpenSsh::new(server.port(), &key).args(["-R", &format!("0.0.0.0:0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;
    // The control for the test above: 127.0.0.2 does reach a wildcard listener here.
    assert_eq!(tcp_round_trip(SocketAddr::from(([127, 0, 0, 2], port)), b"any").await, b"any");
    ssh.kill().await;
}

// ---------------------------------------------------------------------------
// russh's client

/// russh's client handler: trusts the host key, accepts X11 channels the
/// server opens and hands them to the test.
struct X11Client {
    opened: mpsc::UnboundedSender<(String, u32, Channel<client::Msg>)>,
}

impl client::Handler for X11Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
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
        let _ = self.opened.send((originator_address.to_owned(), originator_port, channel));
        Ok(())
    }
}

type X11Opened = mpsc::UnboundedReceiver<(String, u32, Channel<client::Msg>)>;

/// Connects with russh's client and logs in as `alice`.
async fn russh_login(server: &TestServer, key: &ClientKey) -> (client::Handle<X11Client>, X11Opened) {
    let (tx, opened) = mpsc::unbounded_channel();
    let config = Arc::new(client::Config::default());
    let mut handle = within("russh connect", client::connect(config, server.addr(), X11Client { opened: tx }))
        .await
        .expect("russh connects");
    let auth = within(
        "publickey",
        handle.authenticate_publickey("alice", PrivateKeyWithHashAlg::new(key.private.clone(), None)),
    )
    .await
    .unwrap();
    assert!(auth.success(), "{auth:?}");
    (handle, opened)
}

/// The next reply to a channel request: `true` for success.
async fn request_reply(channel: &mut Channel<client::Msg>) -> bool {
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

#[tokio::test]
async fn x11_request_is_accepted_and_the_server_opens_an_x11_channel_back() {
    let (server, key, _dir) = start(|b, _| b.handlers(X11Back)).await;
    let (handle, mut opened) = russh_login(&server, &key).await;
    let mut session = within("session open", handle.channel_open_session()).await.unwrap();
    session.request_x11(true, false, "MIT-MAGIC-COOKIE-1", "0123456789abcdef0123456789abcdef", 3).await.unwrap();
    assert!(request_reply(&mut session).await, "x11-req is allowed");

    session.exec(true, "open-x11").await.unwrap();
    let (address, port, mut x11) = within("the server to open an x11 channel", opened.recv()).await.unwrap();
    assert_eq!((address.as_str(), port), ("127.0.0.1", 6010));
    let mut received = Vec::new();
    within("x11 channel data", async {
        while let Some(msg) = x11.wait().await {
            match msg {
                ChannelMsg::Data { data } => received.extend_from_slice(&data),
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(received, b"screen 3");
    let transcript = ssh_framework_tests::read_to_close(&mut session).await;
    assert_eq!(transcript.stdout, b"opened\n");
    assert!(transcript.events.contains(&"exit-status 0".to_owned()), "{:?}", transcript.events);
}

#[tokio::test]
async fn x11_request_is_refused_without_an_x11_handler() {
    let (server, key, _dir) = start(|b, _| b).await;
    let (handle, mut opened) = russh_login(&server, &key).await;
    let mut session = within("session open", handle.channel_open_session()).await.unwrap();
    session.request_x11(true, false, "MIT-MAGIC-COOKIE-1", "0123456789abcdef0123456789abcdef", 0).await.unwrap();
    assert!(!request_reply(&mut session).await, "x11-req is refused");
    assert!(opened.try_recv().is_err());
}

#[tokio::test]
async fn a_third_remote_forward_is_refused_past_max_listeners() {
    let forwards = Forwards::new(PermitOpen::none(), Path::new("/nonexistent"));
    let requests = forwards.remote_requests.clone();
    let (server, key, _dir) = start(|b, _| b.max_listeners(2).handlers(forwards)).await;
    let (handle, _opened) = russh_login(&server, &key).await;
    let first = within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await.unwrap();
    let second = within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await.unwrap();
    assert!(first != 0 && second != 0 && first != second, "{first} {second}");
    let third = within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await;
    assert!(matches!(third, Err(russh::Error::RequestDenied)), "{third:?}");
    assert_eq!(requests.lock().unwrap().len(), 2, "the limit is enforced before the handler");

    // Closing one frees a place; its port is closed by the time the cancel is answered.
    within("cancel", handle.cancel_tcpip_forward("127.0.0.1", first)).await.unwrap();
    let after = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], first as u16))).await;
    assert!(
        after.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "connect after an answered cancel: {after:?}"
    );
    within("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await.unwrap();
    // Only listeners this connection owns can be cancelled.
    let foreign = within("cancel", handle.cancel_tcpip_forward("127.0.0.1", u32::from(server.port()))).await;
    assert!(matches!(foreign, Err(russh::Error::RequestDenied)), "{foreign:?}");
}

#[tokio::test]
async fn custom_global_requests_get_failure_from_russh_before_any_handler() {
    let (server, key, _dir) = start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let (handle, _opened) = russh_login(&server, &key).await;
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
