//! mini-sshd's forwarding flags, driven by OpenSSH's `ssh`:
//! `--allow-tcp-forwarding` (`-L`, `-R`), `--permit-open`,
//! `--allow-agent-forwarding` (`-A`, `SSH_AUTH_SOCK` for the session's
//! children) and `--allow-x11-forwarding` (`DISPLAY`, checked with russh's
//! client, which lets the test play the X server).
//!
//! Every `ssh` runs with a fresh `ssh-keygen` key, `BatchMode=yes`,
//! `ExitOnForwardFailure=yes` and under a timeout; long-running ones are
//! killed when their handle drops. Readiness is read from `ssh -v`'s own
//! messages ("Entering interactive session", "Allocated port").

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use russh::ChannelMsg;
use ssh_framework_tests::data::{pseudo_random, sha256};
use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::net::{
    closed_without_data, connect, local_tcp_forward, localhost, tcp_echo, tcp_round_trip,
};
use ssh_framework_tests::openssh::{Agent, Running, Ssh};
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::within;

/// A mini-sshd for alice (one fresh key) started with `flags`.
async fn start(flags: &[&str]) -> MiniSshd {
    MiniSshd::with_alice_key(flags).await
}

/// `ssh` as alice, with `ExitOnForwardFailure`.
fn ssh(sshd: &MiniSshd) -> Ssh {
    sshd.alice().option("ExitOnForwardFailure=yes")
}

/// Starts `ssh -L LOCAL:TARGET` and returns it once its session is up, with LOCAL.
async fn local_forward(sshd: &MiniSshd, target: SocketAddr) -> (Running, SocketAddr) {
    local_tcp_forward(ssh(sshd), target).await
}

/// Whether a connection to `local` is closed without anything coming back.
async fn refused(local: SocketAddr) -> bool {
    closed_without_data(connect(local).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_carries_4_mib_through_an_echo_server_intact() {
    let echo = tcp_echo().await;
    let sshd = start(&["--allow-tcp-forwarding"]).await;
    let (ssh, local) = local_forward(&sshd, echo).await;

    let data = pseudo_random(4 << 20, 4);
    let back = tcp_round_trip(local, &data).await;
    assert_eq!(back.len(), data.len(), "ssh stderr:\n{}", ssh.stderr());
    assert_eq!(sha256(&back), sha256(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_is_refused_without_allow_tcp_forwarding() {
    let echo = tcp_echo().await;
    let sshd = start(&[]).await;
    let (mut ssh, local) = local_forward(&sshd, echo).await;

    assert!(refused(local).await, "ssh closes the connection of a refused channel");
    let refusal = ssh.line("open failed").await;
    assert!(refusal.contains("administratively prohibited"), "{refusal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_outside_permit_open_is_administratively_prohibited() {
    let allowed = tcp_echo().await;
    let forbidden = tcp_echo().await;
    let sshd = start(&["--allow-tcp-forwarding", "--permit-open", &allowed.to_string()]).await;

    let (mut ssh, local) = local_forward(&sshd, forbidden).await;
    assert!(refused(local).await, "ssh closes the connection of a refused channel");
    let refusal = ssh.line("open failed").await;
    assert!(refusal.contains("administratively prohibited"), "{refusal}");

    // The listed destination still goes through on the same server.
    let (ssh, local) = local_forward(&sshd, allowed).await;
    assert_eq!(tcp_round_trip(local, b"listed").await, b"listed", "ssh stderr:\n{}", ssh.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forward_on_port_zero_reports_a_port_that_reaches_the_client() {
    let echo = tcp_echo().await;
    let sshd = start(&["--allow-tcp-forwarding"]).await;
    let mut ssh = ssh(&sshd).args(["-R", &format!("0:{echo}")]).spawn_forwarding();
    let port = ssh.allocated_port().await;
    assert_ne!(port, 0);

    let back = tcp_round_trip(localhost(port), b"through -R").await;
    assert_eq!(back, b"through -R", "ssh stderr:\n{}", ssh.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forward_is_refused_without_allow_tcp_forwarding() {
    let echo = tcp_echo().await;
    let sshd = start(&[]).await;
    let out = ssh(&sshd).args(["-N", "-R", &format!("0:{echo}")]).run("").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("remote port forwarding failed"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_forwarding_gives_children_an_ssh_auth_sock_that_reaches_the_clients_agent() {
    let sshd = start(&["--allow-agent-forwarding"]).await;
    let agent = Agent::with_a_key(sshd.dir()).await;

    let out = ssh(&sshd).args(["-A"]).agent(&agent.socket).run("echo \"$SSH_AUTH_SOCK\"; ssh-add -l").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let stdout = out.stdout_text();
    let mut lines = stdout.lines();
    let server_socket = lines.next().unwrap_or_default();
    assert!(!server_socket.is_empty() && server_socket != agent.socket.to_str().unwrap(), "{out:?}");
    let keys: Vec<&str> = lines.collect();
    assert_eq!(keys.len(), 1, "{out:?}");
    assert!(keys[0].contains(&agent.fingerprint), "ssh-add -l on mini-sshd lists {}: {out:?}", agent.fingerprint);
    // The socket went with the session.
    assert!(!Path::new(server_socket).exists(), "{server_socket} is removed when the session ends");

    // Allowed but not asked for: no socket.
    let out = ssh(&sshd).agent(&agent.socket).run("echo \"[$SSH_AUTH_SOCK]\"").await;
    assert_eq!(out.stdout_text(), "[]\n", "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_agent_forwarding_ssh_a_leaves_ssh_auth_sock_unset() {
    let sshd = start(&[]).await;
    let agent = Agent::with_a_key(sshd.dir()).await;

    let out = ssh(&sshd).args(["-A"]).agent(&agent.socket).run("echo \"[$SSH_AUTH_SOCK]\"").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // ssh asks for the agent without wanting a reply, so the refusal shows only here.
    assert_eq!(out.stdout_text(), "[]\n", "{out:?}");
}

// ---------------------------------------------------------------------------
// X11, with russh's client playing the user's X server

/// Logs in as alice with russh's client, asks for X11 forwarding (screen 2)
/// on a session, and runs `command`: the client, the session, and whether X11 was allowed.
async fn x11_session(sshd: &MiniSshd, cookie: &str, command: &str) -> (RusshClient, russh::Channel<russh::client::Msg>, bool) {
    let client = RusshClient::login_key(sshd.addr(), "alice", sshd.key()).await;
    let (session, allowed) = client.x11_session(cookie, 2).await;
    session.exec(true, command).await.unwrap();
    (client, session, allowed)
}

fn xauth_installed() -> bool {
    std::process::Command::new("xauth").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11_forwarding_gives_children_a_display_whose_connections_reach_the_client() {
    // bash for /dev/tcp: the command below is an X client in miniature.
    let sshd = start(&["--allow-x11-forwarding", "--shell", "/bin/bash"]).await;
    let cookie = "00112233445566778899aabbccddeeff";
    let command = r#"echo "$DISPLAY"; xauth list 2>/dev/null; n=${DISPLAY#localhost:}; n=${n%.*}
        exec 3<>"/dev/tcp/127.0.0.1/$((6000 + n))"; printf 'to X' >&3; head -c 9 <&3; echo"#;
    let (mut client, mut session, allowed) = x11_session(&sshd, cookie, command).await;
    assert!(allowed, "x11-req is allowed");

    let mut x11 = client.next_x11().await.channel;
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
        assert!(sshd.root().join(".Xauthority").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11_request_is_refused_without_allow_x11_forwarding() {
    let sshd = start(&[]).await;
    let (_client, mut session, allowed) = x11_session(&sshd, "00112233445566778899aabbccddeeff", "echo \"[$DISPLAY]\"").await;
    assert!(!allowed, "x11-req is refused");
    let transcript = read_to_close(&mut session).await;
    assert_eq!(transcript.stdout, b"[]\n");
}
