//! The console behind its layers, driven by OpenSSH `ssh` as its users would.

use ssh_framework_tests::server::TestServer;

async fn console() -> TestServer {
    TestServer::start(example_middleware::configure).await
}

#[tokio::test]
async fn the_console_needs_a_terminal_and_greets_the_user_on_one() {
    let server = console().await;
    let out = server.ssh("alice").password("alice-pw").run("").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("this app needs a terminal: connect with `ssh -t`"), "{out:?}");
    assert!(out.stdout.is_empty(), "no welcome without a terminal: {out:?}");
    // -tt with stdin /dev/null: the console greets, then sees EOF and says bye.
    let out = server.ssh("alice").password("alice-pw").tty().run("").await;
    let text = out.ok().stdout_text();
    assert!(text.starts_with("Welcome to the ops console, alice.\r\nalice, your terminal is "), "{text:?}");
    assert!(text.ends_with("bye\r\n"), "{text:?}");
}

#[tokio::test]
async fn commands_follow_the_rules_and_a_crash_reports_exit_70() {
    let server = console().await;
    let bob = || server.ssh("bob").password("bob-pw");
    assert_eq!(bob().run("whoami").await.ok().stdout_text(), "bob\n");
    // The gauge counts this very session.
    assert_eq!(bob().run("sessions").await.ok().stdout_text(), "1 session running\n");
    let out = bob().run("crash").await;
    assert_eq!(out.code, Some(255), "refused for bob: {out:?}");
    let out = server.ssh("alice").password("alice-pw").run("crash").await;
    assert_eq!(out.code, Some(70), "{out:?}");
    assert!(out.stderr.contains("internal error"), "{out:?}");
    // And the server still serves.
    assert_eq!(bob().run("whoami").await.ok().stdout_text(), "bob\n");
    // root is filtered before the password handler: no login.
    assert_eq!(server.ssh("root").password("alice-pw").run("whoami").await.code, Some(255));
}
