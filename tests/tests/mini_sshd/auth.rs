//! The startup line and host key, each authentication method and the
//! `--require` chain.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use example_mini_sshd::build;
use ssh_framework_tests::mini_sshd::{self, MiniSshd};
use ssh_framework_tests::openssh::{Askpass, ClientKey, ISOLATION, Ssh, fingerprint, keygen, program};
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::within;

use crate::with_bob;

// ---------------------------------------------------------------------------
// Startup and host key

#[tokio::test]
async fn startup_line_names_port_fingerprint_and_a_demo_login_that_works() {
    let sshd = MiniSshd::start(&[]).await;
    let port = sshd.port();
    let line = sshd.line();
    let fingerprint = fingerprint(&sshd.host_key().with_extension("pub")).await;

    let expected_start = format!("mini-sshd listening on 127.0.0.1:{port} (host key {fingerprint}); try: ");
    let try_part = line.strip_prefix(&expected_start).unwrap_or_else(|| panic!("{line:?}"));
    let (command, rest) = try_part.split_once(" (password: ").unwrap_or_else(|| panic!("{line:?}"));
    let password = rest.strip_suffix(')').unwrap_or_else(|| panic!("{line:?}"));
    assert_eq!(command, format!("ssh -p {port} demo@127.0.0.1"));
    assert_eq!(password.len(), 16, "{line:?}");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()), "{line:?}");

    // The printed command itself, with only isolation options added after `ssh`.
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut cmd = program(words[0]);
    cmd.args(["-F", "/dev/null"]);
    for option in ISOLATION.iter().chain(&["PubkeyAuthentication=no", "NumberOfPasswordPrompts=1"]) {
        cmd.arg("-o").arg(option);
    }
    let askpass = Askpass::always(password);
    cmd.args(&words[1..]).arg("echo ok").envs(askpass.env());
    let out = within("the startup line's ssh command", cmd.output()).await.expect("running ssh");

    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[tokio::test]
async fn host_key_is_generated_private_with_a_pub_beside_it_and_reused() {
    let base = MiniSshd::base();
    std::fs::create_dir(base.path().join("root")).unwrap();
    let host_key = base.path().join("host_key");
    let args = || mini_sshd::args(base.path(), &["--user=bob:pw"]);
    assert!(!host_key.exists());

    let (first, first_line) = build(args()).await.unwrap();

    let mode = std::fs::metadata(&host_key).expect("the host key was written").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let fingerprint = fingerprint(&base.path().join("host_key.pub")).await;
    assert_eq!(first.host_key_fingerprints(), std::slice::from_ref(&fingerprint));
    assert!(first_line.contains(&format!("(host key {fingerprint})")), "{first_line}");
    let written = std::fs::read(&host_key).unwrap();
    drop(first);

    let (second, second_line) = build(args()).await.unwrap();

    assert_eq!(second.host_key_fingerprints(), std::slice::from_ref(&fingerprint));
    assert!(second_line.contains(&format!("(host key {fingerprint})")), "{second_line}");
    assert_eq!(std::fs::read(&host_key).unwrap(), written, "the key file was left as it was");

    // And it is the key ssh is shown: strict checking against the .pub passes.
    let port = second.local_addrs()[0].port();
    let _task = tokio::spawn(second.run());
    let known_hosts = base.path().join("known_hosts");
    let public = std::fs::read_to_string(base.path().join("host_key.pub")).unwrap();
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {public}")).unwrap();
    let out = Ssh::new(port, "bob")
        .option("StrictHostKeyChecking=yes")
        .option(&format!("UserKnownHostsFile={}", known_hosts.display()))
        .password("pw")
        .run("echo ok")
        .await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
}

// ---------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn user_logs_in_with_the_right_password() {
    let sshd = with_bob(&[]).await;

    let out = sshd.ssh("bob").password("pw").run("echo ok").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let sshd = with_bob(&[]).await;

    let out = sshd.ssh("bob").password("wrong").run("echo ok").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn max_auth_tries_disconnects_with_too_many_authentication_failures() {
    let sshd = with_bob(&["--max-auth-tries=2"]).await;
    let askpass = Askpass::new(sshd.dir(), &[], "wrong");

    let out = sshd.ssh("bob").askpass(&askpass).password_prompts(3).run("echo ok").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Too many authentication failures"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

/// sshd answers the attempt that reaches MaxAuthTries with the disconnect
/// alone, so ssh never asks for a password it could not use.
#[tokio::test]
#[ignore = "bug: the framework answers the last failure with USERAUTH_FAILURE before its DISCONNECT \
            (ssh-framework/src/connection.rs, fn fail), so ssh asks a third password that is never checked"]
async fn max_auth_tries_asks_for_no_password_it_will_not_check() {
    let sshd = with_bob(&["--max-auth-tries=2"]).await;
    let askpass = Askpass::new(sshd.dir(), &[], "wrong");

    let out = sshd.ssh("bob").askpass(&askpass).password_prompts(3).run("echo ok").await;

    assert!(out.stderr.contains("Too many authentication failures"), "stderr: {}", out.stderr);
    assert_eq!(askpass.prompts().len(), 2, "{:?}", askpass.prompts());
}

#[tokio::test]
async fn a_wrong_password_is_answered_after_rejection_delay_ms() {
    let delay = Duration::from_millis(400);
    let sshd = with_bob(&["--rejection-delay-ms=400"]).await;
    let mut client = RusshClient::connect(sshd.addr()).await;

    let started = Instant::now();
    let wrong = within("wrong password", client.handle.authenticate_password("bob", "guess")).await.unwrap();
    assert!(!wrong.success());
    assert!(started.elapsed() >= delay, "a wrong password was answered after {:?}", started.elapsed());

    let right = within("right password", client.handle.authenticate_password("bob", "pw")).await.unwrap();
    assert!(right.success(), "{right:?}");
}

#[tokio::test]
async fn each_listed_authorized_key_logs_in_and_an_unlisted_key_is_refused() {
    let base = MiniSshd::base();
    let keys = [
        keygen(base.path(), "laptop").await,
        keygen(base.path(), "desktop").await,
        keygen(base.path(), "phone").await,
    ];
    let stranger = keygen(base.path(), "stranger").await;
    let mut file = String::from("# alice's keys\n");
    for key in &keys {
        file += &std::fs::read_to_string(key.public_file()).unwrap();
    }
    let authorized_keys = base.path().join("authorized_keys");
    std::fs::write(&authorized_keys, file).unwrap();
    let flag = format!("--authorized-keys=alice:{}", authorized_keys.display());
    let sshd = MiniSshd::start_in(base, &[&flag]).await;

    for key in [&keys[0], &keys[2]] {
        let out = sshd.ssh("alice").identity(&key.path).option("BatchMode=yes").run("echo ok").await;
        assert_eq!(out.code, Some(0), "{}: stderr: {}", key.path.display(), out.stderr);
        assert_eq!(out.stdout_text(), "ok\n");
    }

    let out = sshd.ssh("alice").identity(&stranger.path).option("BatchMode=yes").run("echo ok").await;
    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied (publickey)"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn keyboard_interactive_code_logs_in() {
    let sshd = MiniSshd::start(&["--kbd-interactive=carol:123456"]).await;
    let askpass = Askpass::new(sshd.dir(), &[("Verification code: ", "123456")], "wrong");

    let out = sshd.ssh("carol").askpass(&askpass).keyboard_interactive_only().run("echo ok").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
    let prompts = askpass.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(prompts[0].ends_with("Verification code: "), "{prompts:?}");
}

#[tokio::test]
async fn keyboard_interactive_refuses_a_wrong_code() {
    let sshd = MiniSshd::start(&["--kbd-interactive=carol:123456"]).await;
    let askpass = Askpass::new(sshd.dir(), &[], "000000");

    let out = sshd.ssh("carol").askpass(&askpass).keyboard_interactive_only().run("echo ok").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(askpass.prompts().len(), 1, "{:?}", askpass.prompts());
}

/// dave has a key and a code and must pass both, the key first.
async fn with_dave_chain() -> (MiniSshd, ClientKey) {
    let base = MiniSshd::base();
    let key = keygen(base.path(), "dave").await;
    let authorized = format!("--authorized-keys=dave:{}", key.public_file().display());
    let flags = [authorized.as_str(), "--kbd-interactive=dave:123456", "--require=dave:publickey,keyboard-interactive"];
    (MiniSshd::start_in(base, &flags).await, key)
}

#[tokio::test]
async fn require_chain_logs_in_with_key_then_code() {
    let (sshd, key) = with_dave_chain().await;
    let askpass = Askpass::new(sshd.dir(), &[("Verification code: ", "123456")], "wrong");

    let out = sshd
        .ssh("dave")
        .identity(&key.path)
        .askpass(&askpass)
        .option("PreferredAuthentications=publickey,keyboard-interactive")
        .run("echo ok")
        .await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "ok\n");
    assert_eq!(askpass.prompts().len(), 1, "{:?}", askpass.prompts());
}

#[tokio::test]
async fn require_chain_refuses_the_key_alone() {
    let (sshd, key) = with_dave_chain().await;

    let out = sshd
        .ssh("dave")
        .identity(&key.path)
        .option("BatchMode=yes")
        .option("PreferredAuthentications=publickey")
        .run("echo ok")
        .await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    // The key passed (partial success): what is left is the code.
    assert!(out.stderr.contains("Permission denied (keyboard-interactive)"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}
