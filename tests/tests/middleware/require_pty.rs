//! `RequirePtyLayer`: without a pty the client reads why and gets exit status
//! 1, the handler never runs; with `ssh -tt` the app runs.

use ssh_framework::middleware::{RequirePtyLayer, SessionKinds};
use ssh_framework_tests::handlers::Commands;
use ssh_framework_tests::log::with_log;
use ssh_framework_tests::server::TestServer;

use super::{App, PASSWORD};

const MESSAGE: &str = "this app needs a terminal: connect with `ssh -t`\n";

#[test]
fn a_shell_or_exec_without_a_pty_gets_the_message_and_exit_1() {
    with_log(tracing::Level::INFO, |captured| async move {
        let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(RequirePtyLayer::new())).await;
        for command in ["", "echo hi"] {
            let out = server.ssh("alice").password(PASSWORD).run(command).await;
            assert_eq!(out.code, Some(1), "{command:?}: {out:?}");
            assert!(out.stderr.contains(MESSAGE), "{command:?}: {out:?}");
            assert!(out.stdout.is_empty(), "the handler ran for {command:?}: {out:?}");
        }
        let log = captured.text();
        let lines: Vec<_> = log.lines().filter(|l| l.contains("no pty on this session")).collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines[0].contains(" INFO ") && lines[0].contains("kind=\"shell\"") && lines[0].contains("user=\"alice\""), "{}", lines[0]);
        assert!(lines[1].contains("command=\"echo hi\""), "{}", lines[1]);
    });
}

#[tokio::test]
async fn with_ssh_tt_the_shell_runs_on_its_pty() {
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(RequirePtyLayer::new())).await;
    let out = server.ssh("alice").password(PASSWORD).tty().run("").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout_text().starts_with("shell on a pty: "), "{out:?}");
    assert!(!out.stderr.contains("needs a terminal"), "{out:?}");
}

#[tokio::test]
async fn only_the_configured_kinds_need_a_pty_and_the_message_is_configurable() {
    let layer = RequirePtyLayer::new().on(SessionKinds::SHELL).message("use a terminal\n").exit_code(2);
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(layer)).await;
    let out = server.ssh("alice").password(PASSWORD).run("echo no pty needed").await;
    assert_eq!(out.ok().stdout_text(), "no pty needed\n");
    let out = server.ssh("alice").password(PASSWORD).run("").await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("use a terminal\n") && out.stdout.is_empty(), "{out:?}");
    // Subsystems are never checked unless configured.
    let out = server.ssh("alice").password(PASSWORD).args(["-s"]).run("hello").await;
    assert_eq!(out.ok().stdout_text(), "hello from a subsystem\n");
}
