//! What OpenSSH's `ssh` cannot show: `signal` requests reaching the child,
//! `exit-signal` for a child killed by a signal, and `window-change` resizing
//! the pty. Driven with russh's client.

use russh::{Channel, ChannelMsg, Sig, client};
use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::within;

/// Starts mini-sshd with user `demo` (password `pw`), logs in and opens a session.
async fn session() -> (MiniSshd, RusshClient, Channel<client::Msg>) {
    let sshd = MiniSshd::start(&["--user=demo:pw", "--rejection-delay-ms=0"]).await;
    let client = RusshClient::login_password(sshd.addr(), "demo", "pw").await;
    let channel = client.session().await;
    (sshd, client, channel)
}

/// Reads the channel until `stop` says so, collecting stdout and the exit report.
async fn read_until(channel: &mut Channel<client::Msg>, stdout: &mut Vec<u8>, stop: impl Fn(&[u8], &ChannelMsg) -> bool) -> Option<ChannelMsg> {
    within("the server to answer", async {
        while let Some(msg) = channel.wait().await {
            if let ChannelMsg::Data { data } = &msg {
                stdout.extend_from_slice(data);
            }
            if stop(stdout, &msg) {
                return Some(msg);
            }
        }
        None
    })
    .await
}

fn is_exit(msg: &ChannelMsg) -> bool {
    matches!(msg, ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. })
}

#[tokio::test]
async fn a_child_killed_by_a_signal_is_reported_as_exit_signal_kill() {
    let (_sshd, _client, mut channel) = session().await;
    channel.exec(true, "kill -9 $$").await.unwrap();
    let exit = read_until(&mut channel, &mut Vec::new(), |_, m| is_exit(m)).await;
    match exit {
        Some(ChannelMsg::ExitSignal { signal_name, .. }) => assert!(matches!(signal_name, Sig::KILL), "{signal_name:?}"),
        other => panic!("expected exit-signal KILL, got {other:?}"),
    }
}

#[tokio::test]
async fn a_signal_request_reaches_the_child() {
    let (_sshd, _client, mut channel) = session().await;
    channel
        .exec(true, "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done")
        .await
        .unwrap();
    let mut stdout = Vec::new();
    read_until(&mut channel, &mut stdout, |out, _| out.ends_with(b"ready\n")).await.expect("the command starts");
    channel.signal(Sig::TERM).await.unwrap();
    let exit = read_until(&mut channel, &mut stdout, |_, m| is_exit(m)).await;
    assert!(matches!(exit, Some(ChannelMsg::ExitStatus { exit_status: 3 })), "{exit:?}");
    assert_eq!(String::from_utf8_lossy(&stdout), "ready\ngot-term\n");
}

#[tokio::test]
async fn window_change_resizes_the_pty() {
    let (_sshd, _client, mut channel) = session().await;
    channel.request_pty(true, "xterm-256color", 80, 24, 0, 0, &[]).await.unwrap();
    channel.exec(true, "stty size; echo $TERM; read line; stty size").await.unwrap();
    let mut stdout = Vec::new();
    read_until(&mut channel, &mut stdout, |out, _| out.ends_with(b"xterm-256color\r\n")).await.expect("the command starts");
    channel.window_change(132, 43, 0, 0).await.unwrap();
    channel.data(&b"go\n"[..]).await.unwrap();
    let exit = read_until(&mut channel, &mut stdout, |_, m| is_exit(m)).await;
    assert!(matches!(exit, Some(ChannelMsg::ExitStatus { exit_status: 0 })), "{exit:?}");
    let text = String::from_utf8_lossy(&stdout);
    assert!(text.starts_with("24 80\r\nxterm-256color\r\n"), "{text:?}");
    assert!(text.ends_with("43 132\r\n"), "{text:?}");
}
