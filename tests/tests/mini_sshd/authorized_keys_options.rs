//! mini-sshd honours the options of authorized_keys lines and `--revoked-keys`,
//! as OpenSSH's `ssh` sees it: `from=` (by the client's source address,
//! `BindAddress`), `command=` with `SSH_ORIGINAL_COMMAND`, `restrict,pty`,
//! `expiry-time=`, an unknown option, a revoked key.
//!
//! Every key comes from `ssh-keygen`, every `ssh` runs with `BatchMode=yes`
//! under the client timeout, and per-source penalties are off so that the
//! refused logins of a test do not get 127.0.0.1 refused.

use std::future::Future;

use ssh_framework_tests::log::Captured;
use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::net::{closed_without_data, connect, local_tcp_forward, tcp_echo, tcp_round_trip};
use ssh_framework_tests::openssh::{ClientKey, Ssh, keygen};

/// mini-sshd for alice with `lines` as her authorized_keys file (each an
/// options field, possibly empty, and a key), and `flags`.
async fn start(base: tempfile::TempDir, lines: &[(&str, &ClientKey)], flags: &[&str]) -> MiniSshd {
    let mut text = String::new();
    for (options, key) in lines {
        let public = std::fs::read_to_string(key.public_file()).unwrap();
        text += &format!("{options} {public}");
    }
    let file = base.path().join("authorized_keys");
    std::fs::write(&file, text).unwrap();
    let authorized = format!("--authorized-keys=alice:{}", file.display());
    let mut argv = vec![authorized.as_str(), "--per-source-penalties=no"];
    argv.extend_from_slice(flags);
    MiniSshd::start_in(base, &argv).await
}

/// `ssh` as alice with `key` only, in batch mode.
fn alice(sshd: &MiniSshd, key: &ClientKey) -> Ssh {
    sshd.ssh("alice").identity(&key.path).option("BatchMode=yes")
}

/// Asserts that `ssh` as alice with `key` is refused by authentication.
async fn refused(sshd: &MiniSshd, key: &ClientKey, options: &[&str]) {
    let ssh = options.iter().fold(alice(sshd, key), |ssh, o| ssh.option(o));
    let out = ssh.run("echo in").await;
    assert_eq!(out.code, Some(255), "stdout: {:?} stderr: {}", out.stdout_text(), out.stderr);
    assert!(out.stderr.contains("Permission denied (publickey)"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

/// Asserts that `ssh` as alice with `key` logs in and runs a command.
async fn logs_in(sshd: &MiniSshd, key: &ClientKey, options: &[&str]) {
    let ssh = options.iter().fold(alice(sshd, key), |ssh, o| ssh.option(o));
    let out = ssh.run("echo in").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "in\n");
}

/// Runs `test` with what the server logs at info.
fn with_log<F: Future<Output = ()>>(test: impl FnOnce(Captured) -> F) {
    ssh_framework_tests::log::with_log(tracing::Level::INFO, test);
}

#[test]
fn from_127_0_0_2_refuses_a_login_from_127_0_0_1_and_allows_one_from_127_0_0_2() {
    with_log(|log| async move {
        let base = MiniSshd::base();
        let key = keygen(base.path(), "alice").await;
        let sshd = start(base, &[("from=\"127.0.0.2\"", &key)], &[]).await;

        refused(&sshd, &key, &["BindAddress=127.0.0.1"]).await;
        assert!(log.text().contains("from= does not allow 127.0.0.1"), "{}", log.text());
        logs_in(&sshd, &key, &["BindAddress=127.0.0.2"]).await;
    });
}

#[tokio::test]
async fn command_runs_the_forced_command_whatever_the_client_asked_with_its_original_command() {
    let base = MiniSshd::base();
    let key = keygen(base.path(), "alice").await;
    let sshd = start(base, &[("command=\"echo forced; echo original=$SSH_ORIGINAL_COMMAND\"", &key)], &[]).await;

    let out = alice(&sshd, &key).run("echo asked; touch /tmp/never").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "forced\noriginal=echo asked; touch /tmp/never\n");
    // A shell request runs it too, with no original command.
    let out = alice(&sshd, &key).run("").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "forced\noriginal=\n");
    // So does a subsystem: sftp gets the forced command's output, not a server.
    let out = alice(&sshd, &key).args(["-s"]).run("sftp").await;
    assert_eq!(out.stdout_text(), "forced\noriginal=sftp\n", "stderr: {}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrict_pty_gives_a_pty_but_no_local_forwarding() {
    let base = MiniSshd::base();
    let restricted = keygen(base.path(), "restricted").await;
    let plain = keygen(base.path(), "plain").await;
    let sshd = start(base, &[("restrict,pty", &restricted), ("", &plain)], &["--allow-tcp-forwarding"]).await;

    let out = alice(&sshd, &restricted).tty().run("tty").await;
    let stdout = out.stdout_text();
    assert_eq!(out.code, Some(0), "stdout: {stdout:?} stderr: {}", out.stderr);
    let number = stdout.trim_end().strip_prefix("/dev/pts/").unwrap_or_else(|| panic!("{stdout:?}"));
    assert!(number.parse::<u32>().is_ok(), "{stdout:?}");

    let echo = tcp_echo().await;
    let (mut ssh, local) = local_tcp_forward(alice(&sshd, &restricted).option("ExitOnForwardFailure=yes"), echo).await;
    assert!(closed_without_data(connect(local).await).await, "ssh closes the connection of a refused channel");
    let refusal = ssh.line("open failed").await;
    assert!(refusal.contains("administratively prohibited"), "{refusal}");

    // The server allows forwarding: the same -L with a key without options goes through.
    let (ssh, local) = local_tcp_forward(alice(&sshd, &plain).option("ExitOnForwardFailure=yes"), echo).await;
    assert_eq!(tcp_round_trip(local, b"plain").await, b"plain", "ssh stderr:\n{}", ssh.stderr());
}

#[test]
fn an_expiry_time_in_the_past_refuses_and_one_in_the_future_allows() {
    with_log(|log| async move {
        let base = MiniSshd::base();
        let old = keygen(base.path(), "old").await;
        let current = keygen(base.path(), "current").await;
        let lines = [("expiry-time=\"20000101\"", &old), ("expiry-time=\"99991231\"", &current)];
        let sshd = start(base, &lines, &[]).await;

        refused(&sshd, &old, &[]).await;
        assert!(log.text().contains("reason=expired"), "{}", log.text());
        logs_in(&sshd, &current, &[]).await;
    });
}

#[test]
fn an_unknown_option_refuses_its_line_with_a_warning_naming_it() {
    with_log(|log| async move {
        let base = MiniSshd::base();
        let odd = keygen(base.path(), "odd").await;
        let plain = keygen(base.path(), "plain").await;
        let sshd = start(base, &[("no-pty,frobnicate", &odd), ("", &plain)], &[]).await;

        let warning = log.text().lines().find(|l| l.contains("WARN") && l.contains("frobnicate")).map(str::to_owned);
        assert!(warning.as_deref().is_some_and(|w| w.contains("line=1")), "{}", log.text());
        refused(&sshd, &odd, &[]).await;
        logs_in(&sshd, &plain, &[]).await;
    });
}

#[test]
fn a_key_in_revoked_keys_is_refused_though_authorized() {
    with_log(|log| async move {
        let base = MiniSshd::base();
        let revoked = keygen(base.path(), "revoked").await;
        let kept = keygen(base.path(), "kept").await;
        let list = base.path().join("revoked_keys");
        std::fs::copy(revoked.public_file(), &list).unwrap();
        let flag = format!("--revoked-keys={}", list.display());
        let sshd = start(base, &[("", &revoked), ("", &kept)], &[&flag]).await;

        refused(&sshd, &revoked, &[]).await;
        assert!(log.text().contains("the key is revoked"), "{}", log.text());
        logs_in(&sshd, &kept, &[]).await;
    });
}
