//! Regression tests for issue 12's findings against mini-sshd: children in a
//! session and process group of their own (`kill 0` in a command cannot stop
//! the server; signals and teardown reach every process the command started),
//! the X11 display bound on every loopback address, and method lists that do
//! not tell unknown user names from known ones.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::time::Duration;

use russh::{Channel, Sig, client};
use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::openssh::Ssh;
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::within;

use crate::group_and_session;

// ---------------------------------------------------------------------------
// Process groups

/// Waits until process `pid` is gone; fails the test after the client timeout.
async fn gone(pid: u32, what: &str) {
    within(what, async {
        while group_and_session(pid).is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// mini-sshd with alice's key, and `ssh` as alice.
async fn alice() -> (MiniSshd, impl Fn() -> Ssh) {
    let sshd = MiniSshd::with_alice_key(&[]).await;
    let ssh = {
        let (port, key) = (sshd.port(), sshd.key().path.clone());
        move || Ssh::new(port, "alice").identity(&key).option("BatchMode=yes")
    };
    (sshd, ssh)
}

#[tokio::test]
async fn kill_0_in_an_exec_leaves_the_server_serving() {
    let (_sshd, ssh) = alice().await;
    // Checked first, so that a regression fails here instead of sending
    // SIGTERM to the process group of this test (and of cargo).
    let out = ssh().run(r#"echo $$; cut -d' ' -f5,6 /proc/$$/stat"#).await;
    let text = out.ok().stdout_text();
    let numbers: Vec<u32> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let [pid, group, session] = numbers[..] else { panic!("pid, group and session: {text:?}") };
    assert_eq!((group, session), (pid, pid), "the command leads its own session and process group");
    let ours = group_and_session(std::process::id()).expect("this test's own /proc entry");
    assert_ne!(group, ours.0, "not the server's process group");

    // The common idiom, and the bare command.
    ssh().run(r#"trap "kill 0" EXIT; true"#).await;
    ssh().run("kill 0").await;

    let out = ssh().run("echo still serving").await;
    assert_eq!(out.ok().stdout_text(), "still serving\n", "a second login after `kill 0` works");
}

/// Logs in as alice with russh's client and runs a shell command that
/// starts `sleep 300` in the background and waits for it (on a pty when
/// `pty`); the session and the pid of the `sleep`, a grandchild of the server.
async fn background_sleep(sshd: &MiniSshd, pty: bool) -> (RusshClient, Channel<client::Msg>, u32) {
    let client = RusshClient::login_key(sshd.addr(), "alice", sshd.key()).await;
    let mut channel = client.session().await;
    if pty {
        channel.request_pty(true, "xterm", 80, 24, 0, 0, &[]).await.unwrap();
    }
    channel.exec(true, "sleep 300 & echo $!; wait").await.unwrap();
    let mut stdout = Vec::new();
    within("the pid of the background sleep", async {
        while !stdout.contains(&b'\n') {
            match channel.wait().await {
                Some(russh::ChannelMsg::Data { data }) => stdout.extend_from_slice(&data),
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&stdout).into_owned();
    let pid: u32 = text.trim().parse().unwrap_or_else(|_| panic!("a pid: {text:?}"));
    let (group, _) = group_and_session(pid).expect("the sleep runs");
    assert_ne!(group, pid, "the sleep is in its shell's group, not a leader of its own");
    (client, channel, pid)
}

#[tokio::test]
async fn a_signal_request_reaches_every_process_of_the_command() {
    let (sshd, _) = alice().await;
    let (_client, mut channel, sleep) = background_sleep(&sshd, false).await;
    channel.signal(Sig::TERM).await.unwrap();
    gone(sleep, "the background sleep to die of the TERM sent to its group").await;
    let transcript = read_to_close(&mut channel).await;
    assert!(transcript.ending().iter().any(|e| e.starts_with("exit-")), "{transcript:?}");
}

#[tokio::test]
async fn closing_the_session_kills_every_process_of_the_command() {
    let (sshd, _) = alice().await;
    for pty in [false, true] {
        let (_client, channel, sleep) = background_sleep(&sshd, pty).await;
        channel.close().await.unwrap();
        gone(sleep, "the background sleep to be killed with its group").await;
    }
}

#[tokio::test]
async fn a_client_gone_kills_every_process_of_the_command() {
    let (sshd, _) = alice().await;
    let (client, channel, sleep) = background_sleep(&sshd, false).await;
    drop(channel);
    client.handle.disconnect(russh::Disconnect::ByApplication, "", "").await.unwrap();
    gone(sleep, "the background sleep to be killed when its client left").await;
}

// ---------------------------------------------------------------------------
// X11 over IPv6

/// Whether this host has an IPv6 loopback to bind.
fn ipv6_loopback() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

fn x11_port(display: u16) -> u16 {
    6000 + display
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11_display_is_skipped_when_any_loopback_port_is_taken_and_bound_on_all() {
    let sshd = MiniSshd::with_alice_key(&["--allow-x11-forwarding"]).await;
    let ipv6 = ipv6_loopback();
    // The squatter: another local user holding [::1]:60NN (127.0.0.1 without
    // IPv6) of the first display free on every loopback address.
    let squatted = if ipv6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
    let (display, _squatter) = (10..100)
        .find_map(|n| {
            let held = TcpListener::bind((squatted, x11_port(n))).ok()?;
            TcpListener::bind((Ipv4Addr::LOCALHOST, x11_port(n))).ok()?;
            Some((n, held))
        })
        .expect("a free display number below 100");

    let client = RusshClient::login_key(sshd.addr(), "alice", sshd.key()).await;
    let (mut session, allowed) = client.x11_session("00112233445566778899aabbccddeeff", 0).await;
    assert!(allowed, "x11-req is allowed");
    session.exec(true, r#"echo "$DISPLAY"; read line"#).await.unwrap();
    let mut stdout = Vec::new();
    within("DISPLAY", async {
        while !stdout.contains(&b'\n') {
            match session.wait().await {
                Some(russh::ChannelMsg::Data { data }) => stdout.extend_from_slice(&data),
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&stdout).into_owned();
    let given: u16 = text
        .trim()
        .strip_prefix("localhost:")
        .and_then(|rest| rest.strip_suffix(".0"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("DISPLAY is localhost:N.0: {text:?}"));
    assert_ne!(given, display, "the display whose [{squatted}] port is held by someone else is skipped");

    // While the session runs, its display is held on every loopback address.
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, x11_port(given)));
    assert_eq!(v4.err().map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse), "127.0.0.1:{}", x11_port(given));
    if ipv6 {
        let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, x11_port(given)));
        assert_eq!(v6.err().map(|e| e.kind()), Some(std::io::ErrorKind::AddrInUse), "[::1]:{}", x11_port(given));
    }
    session.data(&b"done\n"[..]).await.unwrap();
    let transcript = read_to_close(&mut session).await;
    assert!(transcript.ending().contains(&"exit-status 0"), "{transcript:?}");

    // Both listeners close with the session.
    within("the display to close", async {
        loop {
            let free = TcpListener::bind((Ipv4Addr::LOCALHOST, x11_port(given))).is_ok()
                && (!ipv6 || TcpListener::bind((Ipv6Addr::LOCALHOST, x11_port(given))).is_ok());
            if free {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// User enumeration

/// The methods `ssh -v` reads from the server's first failure for `user`.
async fn methods_for(sshd: &MiniSshd, user: &str) -> String {
    let out = sshd.ssh(user).option("BatchMode=yes").option("PreferredAuthentications=none").args(["-v"]).run("true").await;
    assert_eq!(out.code, Some(255), "{}", out.stderr);
    out.stderr
        .lines()
        .find_map(|l| l.split_once("Authentications that can continue: ").map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| panic!("no method list in ssh -v output: {}", out.stderr))
}

#[tokio::test]
async fn an_unknown_user_gets_the_method_list_of_a_known_user() {
    // Two password users and one key user: the union would be `publickey,password`.
    let base = MiniSshd::base();
    let key = ssh_framework_tests::openssh::keygen(base.path(), "carol").await;
    let keys = format!("--authorized-keys=carol:{}", key.public_file().display());
    let sshd = MiniSshd::start_in(base, &["--user=alice:pw", "--user=bob:pw", &keys]).await;
    let alice = methods_for(&sshd, "alice").await;
    let carol = methods_for(&sshd, "carol").await;
    assert_eq!((alice.as_str(), carol.as_str()), ("password", "publickey"));
    for unknown in ["mallory", "root", "nosuchuser"] {
        assert_eq!(methods_for(&sshd, unknown).await, alice, "{unknown} is answered as alice and bob are");
    }
}
