//! `AccessControlLayer`: commands and subsystems allowed or refused per user
//! and per key, deny by default, refusals logged with the rule.

use ssh_framework::middleware::{AccessControlLayer, Rule, SessionKinds};
use ssh_framework_tests::handlers::Commands;
use ssh_framework_tests::log::with_log;
use ssh_framework_tests::openssh::{fingerprint, keygen};
use ssh_framework_tests::russh_client::{RusshClient, read_to_close, request_reply};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

use super::{App, PASSWORD};

#[test]
fn commands_are_allowed_per_user_and_refused_by_rule_or_by_default() {
    with_log(tracing::Level::INFO, |captured| async move {
        let layer = AccessControlLayer::new()
            .deny(Rule::user("mallory").exec("*"))
            .allow(Rule::user("alice").exec("ec*").subsystem("hello"))
            .allow(Rule::user("*").exec("exit"));
        let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(layer)).await;
        let run = |user: &str, command: &'static str| server.ssh(user).password(PASSWORD).run(command);

        assert_eq!(run("alice", "echo hi").await.ok().stdout_text(), "hi\n");
        assert_eq!(run("bob", "exit 3").await.code, Some(3), "allowed to everyone");
        for (user, command) in [("alice", "split"), ("bob", "echo hi"), ("mallory", "exit 0")] {
            let out = run(user, command).await;
            assert_eq!(out.code, Some(255), "{user} {command}: {out:?}");
            assert!(out.stderr.contains("exec request failed") && out.stdout.is_empty(), "{user} {command}: {out:?}");
        }
        // Matched on the program name: a longer line does not sneak past.
        let out = run("bob", "exit; echo hi").await;
        assert_eq!(out.code, Some(255), "{out:?}");

        let log = captured.text();
        let refusals: Vec<_> = log.lines().filter(|l| l.contains("refused by access control")).collect();
        assert_eq!(refusals.len(), 4, "{log}");
        assert!(refusals.iter().all(|l| l.contains(" INFO ")), "{refusals:?}");
        assert!(refusals[0].contains("user=\"alice\"") && refusals[0].contains("command=\"split\"") && refusals[0].contains("rule=\"no rule\""), "{}", refusals[0]);
        assert!(refusals[2].contains("user=\"mallory\"") && refusals[2].contains("rule=\"#1 deny user mallory: exec *\""), "{}", refusals[2]);
    });
}

#[tokio::test]
async fn subsystems_are_guarded_and_the_shell_passes_unless_guarded() {
    let layer = AccessControlLayer::new().allow(Rule::user("alice").subsystem("hello"));
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(layer)).await;
    let out = server.ssh("alice").password(PASSWORD).args(["-s"]).run("hello").await;
    assert_eq!(out.ok().stdout_text(), "hello from a subsystem\n");
    let out = server.ssh("bob").password(PASSWORD).args(["-s"]).run("hello").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    // Not guarded: bob's shell runs.
    let out = server.ssh("bob").password(PASSWORD).run("").await;
    assert_eq!(out.ok().stdout_text(), "shell without a pty\n");

    // Guarded: only who a rule names gets a shell.
    let layer = AccessControlLayer::new().guard(SessionKinds::SHELL).allow(Rule::user("alice").shell());
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(layer)).await;
    for (user, allowed) in [("alice", true), ("bob", false)] {
        let client = RusshClient::login_password(server.addr(), user, PASSWORD).await;
        let mut channel = client.session().await;
        within("shell", channel.request_shell(true)).await.expect("shell sent");
        assert_eq!(request_reply(&mut channel).await, allowed, "{user}");
        if allowed {
            assert_eq!(read_to_close(&mut channel).await.stdout, b"shell without a pty\n");
        }
    }
}

#[tokio::test]
async fn a_command_is_allowed_for_one_key_and_refused_for_another_key_of_the_same_user() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (allowed, other) = (keygen(dir.path(), "backup_key").await, keygen(dir.path(), "other_key").await);
    let allowed_fingerprint = fingerprint(&allowed.public_file()).await;
    let layer = AccessControlLayer::new().allow(Rule::key(&allowed_fingerprint).exec("echo"));
    let app = App { keys: vec![allowed.public.clone(), other.public.clone()] };
    let server = TestServer::start(|b| b.handlers(app).handlers(Commands::new()).layer(layer)).await;

    let out = server.ssh("alice").identity(&allowed.path).run("echo by key").await;
    assert_eq!(out.ok().stdout_text(), "by key\n");
    let out = server.ssh("alice").identity(&other.path).run("echo by key").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    // The same user with a password: no key, no rule.
    let out = server.ssh("alice").password(PASSWORD).run("echo by key").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    // russh's client with the allowed key: the same fingerprint.
    let client = RusshClient::login_key(server.addr(), "alice", &allowed).await;
    let mut channel = client.exec("echo russh").await;
    assert_eq!(read_to_close(&mut channel).await.stdout, b"russh\n");
}
