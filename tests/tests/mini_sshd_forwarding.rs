//! mini-sshd's forwarding flags, driven by OpenSSH's `ssh` against mini-sshd
//! built in-process from its command line: `--allow-tcp-forwarding` (`-L`,
//! `-R`), `--permit-open`, `--allow-agent-forwarding` (`-A`, `SSH_AUTH_SOCK`
//! for the session's children) and `--allow-x11-forwarding` (`DISPLAY`, checked
//! with russh's client, which lets the test play the X server).
//!
//! Every `ssh` runs with a fresh `ssh-keygen` key, `BatchMode=yes`,
//! `ExitOnForwardFailure=yes` and under a timeout; long-running ones are
//! killed when their handle drops. Readiness is read from `ssh -v`'s own
//! messages ("Entering interactive session", "Allocated port").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use clap::Parser;
use example_mini_sshd::{Args, build};
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use russh::{Channel, ChannelMsg};
use ssh_framework_tests::forwarding::{OpenSsh, Running, free_port, noise, sha256, tcp_echo};
use ssh_framework_tests::{ClientKey, keygen, read_to_close, within};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A mini-sshd for `alice` (one fresh key) with `BASE/root` as its root, started with `flags`.
struct MiniSshd {
    port: u16,
    key: ClientKey,
    base: tempfile::TempDir,
    root: PathBuf,
    _task: tokio::task::JoinHandle<Result<(), ssh_framework::Error>>,
}

impl MiniSshd {
    async fn start(flags: &[&str]) -> MiniSshd {
        ssh_framework_tests::init_tracing();
        // In /tmp: the agent's socket path must stay under ~100 bytes.
        let base = tempfile::Builder::new().prefix("mini-fwd").tempdir_in("/tmp").unwrap();
        let root = base.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let key = keygen(base.path(), "alice").await;
        let mut argv = vec![
            "mini-sshd".to_owned(),
            "--listen=127.0.0.1:0".to_owned(),
            format!("--host-key={}", base.path().join("host_key").display()),
            format!("--authorized-keys=alice:{}.pub", key.path.display()),
            format!("--root={}", root.display()),
        ];
        argv.extend(flags.iter().map(|s| (*s).to_owned()));
        let (server, _line) = build(Args::parse_from(argv)).await.expect("mini-sshd builds");
        let port = server.local_addrs()[0].port();
        MiniSshd { port, key, base, root, _task: tokio::spawn(server.run()) }
    }

    /// `ssh` as `alice` against this server, isolated from the user's config, agent and known hosts.
    fn ssh(&self) -> OpenSsh {
        OpenSsh::new(self.port, &self.key)
    }
}

/// Sends `data` to `addr`, half-closes, and returns everything read back until EOF
/// (writing and reading at once, so a large echo cannot deadlock).
async fn tcp_round_trip(addr: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    within("the echo to come back", r.read_to_end(&mut back)).await.unwrap();
    writer.await.unwrap();
    back
}

/// Whether the other end closed `addr`'s connection without sending anything
/// back: EOF, or a reset because ssh closed the socket with our data unread.
async fn closed_without_data(addr: SocketAddr) -> bool {
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let _ = w.write_all(b"let me in").await;
    // Half-closed, an echo that did get through answers and ends at once.
    let _ = w.shutdown().await;
    let mut back = Vec::new();
    match within("the refused connection to close", r.read_to_end(&mut back)).await {
        Ok(_) => back.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset && back.is_empty(),
    }
}

/// Starts `ssh -L LOCAL:TARGET` and returns it once its session is up, with LOCAL.
async fn local_forward(sshd: &MiniSshd, target: SocketAddr) -> (Running, SocketAddr) {
    let local = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut ssh = sshd.ssh().args(["-L", &format!("{local}:{target}")]).spawn_forwarding();
    ssh.line(&format!("Local connections to {local}")).await;
    // ssh logs that line just before it binds; the session's first message comes after.
    ssh.line("Entering interactive session").await;
    (ssh, local)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_carries_4_mib_through_an_echo_server_intact() {
    let echo = tcp_echo().await;
    let sshd = MiniSshd::start(&["--allow-tcp-forwarding"]).await;
    let (ssh, local) = local_forward(&sshd, echo).await;

    let data = noise(4 << 20);
    let back = tcp_round_trip(local, data.clone()).await;
    assert_eq!(back.len(), data.len(), "ssh stderr:\n{}", ssh.stderr());
    assert_eq!(sha256(&back), sha256(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_is_refused_without_allow_tcp_forwarding() {
    let echo = tcp_echo().await;
    let sshd = MiniSshd::start(&[]).await;
    let (mut ssh, local) = local_forward(&sshd, echo).await;

    assert!(closed_without_data(local).await, "ssh closes the connection of a refused channel");
    let refusal = ssh.line("open failed").await;
    assert!(refusal.contains("administratively prohibited"), "{refusal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_outside_permit_open_is_administratively_prohibited() {
    let allowed = tcp_echo().await;
    let forbidden = tcp_echo().await;
    let sshd = MiniSshd::start(&["--allow-tcp-forwarding", "--permit-open", &allowed.to_string()]).await;

    let (mut ssh, local) = local_forward(&sshd, forbidden).await;
    assert!(closed_without_data(local).await, "ssh closes the connection of a refused channel");
    let refusal = ssh.line("open failed").await;
    assert!(refusal.contains("administratively prohibited"), "{refusal}");

    // The listed destination still goes through on the same server.
    let (ssh, local) = local_forward(&sshd, allowed).await;
    assert_eq!(tcp_round_trip(local, b"listed".to_vec()).await, b"listed", "ssh stderr:\n{}", ssh.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forward_on_port_zero_reports_a_port_that_reaches_the_client() {
    let echo = tcp_echo().await;
    let sshd = MiniSshd::start(&["--allow-tcp-forwarding"]).await;
    let mut ssh = sshd.ssh().args(["-R", &format!("0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;
    assert_ne!(port, 0);

    let back = tcp_round_trip(SocketAddr::from(([127, 0, 0, 1], port)), b"through -R".to_vec()).await;
    assert_eq!(back, b"through -R", "ssh stderr:\n{}", ssh.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forward_is_refused_without_allow_tcp_forwarding() {
    let echo = tcp_echo().await;
    let sshd = MiniSshd::start(&[]).await;
    let out = sshd.ssh().args(["-N", "-R", &format!("0:{echo}")]).run_text("").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("remote port forwarding failed"), "{out:?}");
}

/// An `ssh-agent -D -a SOCK` holding one fresh key (killed on drop), and that key's fingerprint.
async fn agent_with_a_key(dir: &Path) -> (tokio::process::Child, PathBuf, String) {
    let key = keygen(dir, "agent-held-key").await;
    let socket = dir.join("agent.sock");
    let mut agent = tokio::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
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
    let tool = |program: &str| {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env("SSH_AUTH_SOCK", &socket).stdin(Stdio::null()).kill_on_drop(true);
        cmd
    };
    let added = within("ssh-add", tool("ssh-add").arg(&key.path).output()).await.unwrap();
    assert!(added.status.success(), "ssh-add: {}", String::from_utf8_lossy(&added.stderr));
    // "256 SHA256:... agent-held-key (ED25519)": the second field.
    let listed = within("ssh-keygen -l", tool("ssh-keygen").arg("-lf").arg(&key.path).output()).await.unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let fingerprint = listed.split_whitespace().nth(1).unwrap_or_else(|| panic!("no fingerprint in {listed:?}")).to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{listed}");
    (agent, socket, fingerprint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_forwarding_gives_children_an_ssh_auth_sock_that_reaches_the_clients_agent() {
    let sshd = MiniSshd::start(&["--allow-agent-forwarding"]).await;
    let (_agent, socket, fingerprint) = agent_with_a_key(sshd.base.path()).await;

    let out = sshd.ssh().args(["-A"]).env("SSH_AUTH_SOCK", &socket).run_text("echo \"$SSH_AUTH_SOCK\"; ssh-add -l").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut lines = out.stdout.lines();
    let server_socket = lines.next().unwrap_or_default();
    assert!(!server_socket.is_empty() && server_socket != socket.to_str().unwrap(), "{out:?}");
    let keys: Vec<&str> = lines.collect();
    assert_eq!(keys.len(), 1, "{out:?}");
    assert!(keys[0].contains(&fingerprint), "ssh-add -l on mini-sshd lists {fingerprint}: {out:?}");
    // The socket went with the session.
    assert!(!Path::new(server_socket).exists(), "{server_socket} is removed when the session ends");

    // Allowed but not asked for: no socket.
    let out = sshd.ssh().env("SSH_AUTH_SOCK", &socket).run_text("echo \"[$SSH_AUTH_SOCK]\"").await;
    assert_eq!(out.stdout, "[]\n", "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_agent_forwarding_ssh_a_leaves_ssh_auth_sock_unset() {
    let sshd = MiniSshd::start(&[]).await;
    let (_agent, socket, _) = agent_with_a_key(sshd.base.path()).await;

    let out = sshd.ssh().args(["-A"]).env("SSH_AUTH_SOCK", &socket).run_text("echo \"[$SSH_AUTH_SOCK]\"").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // ssh asks for the agent without wanting a reply, so the refusal shows only here.
    assert_eq!(out.stdout, "[]\n", "{out:?}");
}

// ---------------------------------------------------------------------------
// X11, with russh's client playing the user's X server

/// Trusts the host key and hands every `x11` channel the server opens to the test.
struct X11Client {
    opened: mpsc::UnboundedSender<Channel<client::Msg>>,
}

impl client::Handler for X11Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn server_channel_open_x11(
        &mut self,
        channel: Channel<client::Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let _ = self.opened.send(channel);
        Ok(())
    }
}

/// Logs in as `alice` with russh's client, asks for X11 forwarding (screen 2) on a session, and runs `command`.
async fn x11_session(
    sshd: &MiniSshd,
    cookie: &str,
    command: &str,
) -> (client::Handle<X11Client>, Channel<client::Msg>, bool, mpsc::UnboundedReceiver<Channel<client::Msg>>) {
    let (tx, opened) = mpsc::unbounded_channel();
    let config = Arc::new(client::Config::default());
    let addr = SocketAddr::from(([127, 0, 0, 1], sshd.port));
    let mut handle =
        within("russh connect", client::connect(config, addr, X11Client { opened: tx })).await.expect("russh connects");
    let auth = within(
        "publickey",
        handle.authenticate_publickey("alice", PrivateKeyWithHashAlg::new(sshd.key.private.clone(), None)),
    )
    .await
    .unwrap();
    assert!(auth.success(), "{auth:?}");
    let mut session = within("session open", handle.channel_open_session()).await.unwrap();
    session.request_x11(true, false, "MIT-MAGIC-COOKIE-1", cookie, 2).await.unwrap();
    let allowed = within("the x11-req reply", async {
        loop {
            match session.wait().await {
                Some(ChannelMsg::Success) => return true,
                Some(ChannelMsg::Failure) | None => return false,
                Some(_) => {}
            }
        }
    })
    .await;
    session.exec(true, command).await.unwrap();
    (handle, session, allowed, opened)
}

fn xauth_installed() -> bool {
    std::process::Command::new("xauth").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11_forwarding_gives_children_a_display_whose_connections_reach_the_client() {
    // bash for /dev/tcp: the command below is an X client in miniature.
    let sshd = MiniSshd::start(&["--allow-x11-forwarding", "--shell", "/bin/bash"]).await;
    let cookie = "00112233445566778899aabbccddeeff";
    let command = r#"echo "$DISPLAY"; xauth list 2>/dev/null; n=${DISPLAY#localhost:}; n=${n%.*}
        exec 3<>"/dev/tcp/127.0.0.1/$((6000 + n))"; printf 'to X' >&3; head -c 9 <&3; echo"#;
    let (_handle, mut session, allowed, mut opened) = x11_session(&sshd, cookie, command).await;
    assert!(allowed, "x11-req is allowed");

    let mut x11 = within("mini-sshd to open an x11 channel", opened.recv()).await.unwrap();
    let mut received = Vec::new();
    within("the X client's bytes", async {
        while received.len() < 4 {
            match x11.wait().await {
                Some(ChannelMsg::Data { data }) => received.extend_from_slice(&data),
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    assert_eq!(received, b"to X");
    x11.data(&b"from X11\n"[..]).await.unwrap();

    let transcript = read_to_close(&mut session).await;
    let stdout = String::from_utf8_lossy(&transcript.stdout).into_owned();
    let display = stdout.lines().next().unwrap_or_default();
    let number: u16 = display
        .strip_prefix("localhost:")
        .and_then(|rest| rest.strip_suffix(".2"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("DISPLAY is localhost:N.2 with N >= 10: {stdout:?}"));
    assert!(number >= 10, "{stdout}");
    assert!(stdout.contains("from X11"), "the X server's answer reaches the X client: {stdout:?}");
    if xauth_installed() {
        assert!(stdout.contains(cookie), "the cookie is in ROOT/.Xauthority: {stdout:?}");
        assert!(sshd.root.join(".Xauthority").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11_request_is_refused_without_allow_x11_forwarding() {
    let sshd = MiniSshd::start(&[]).await;
    let (_handle, mut session, allowed, _opened) = x11_session(&sshd, "00112233445566778899aabbccddeeff", "echo \"[$DISPLAY]\"").await;
    assert!(!allowed, "x11-req is refused");
    let transcript = read_to_close(&mut session).await;
    assert_eq!(transcript.stdout, b"[]\n");
}
