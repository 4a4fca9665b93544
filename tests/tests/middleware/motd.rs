//! `MotdLayer`: a per-user message on stdout before the handler's output.

use ssh_framework::middleware::{MotdLayer, SessionKinds};
use ssh_framework_tests::handlers::Commands;
use ssh_framework_tests::server::TestServer;

use super::{App, PASSWORD};

fn welcome() -> MotdLayer {
    MotdLayer::new(|request| {
        let user = request.connection().user()?;
        (user != "quiet").then(|| format!("Welcome, {user}\n"))
    })
}

#[tokio::test]
async fn the_message_comes_before_the_command_output_and_names_the_user() {
    let layer = welcome().on(SessionKinds::SHELL | SessionKinds::EXEC);
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(layer)).await;
    let out = server.ssh("alice").password(PASSWORD).run("echo hi").await;
    assert_eq!(out.ok().stdout_text(), "Welcome, alice\nhi\n");
    let out = server.ssh("bob").password(PASSWORD).run("echo hi").await;
    assert_eq!(out.ok().stdout_text(), "Welcome, bob\nhi\n");
    // The closure says no message for this user.
    let out = server.ssh("quiet").password(PASSWORD).run("echo hi").await;
    assert_eq!(out.ok().stdout_text(), "hi\n");
}

#[tokio::test]
async fn by_default_only_a_shell_gets_it_with_crlf_on_its_pty() {
    let server = TestServer::start(|b| b.handlers(App::default()).handlers(Commands::new()).layer(welcome())).await;
    let out = server.ssh("alice").password(PASSWORD).run("echo hi").await;
    assert_eq!(out.ok().stdout_text(), "hi\n");
    let out = server.ssh("alice").password(PASSWORD).tty().run("").await;
    assert!(out.ok().stdout_text().starts_with("Welcome, alice\r\nshell on a pty: "), "{out:?}");
    let out = server.ssh("alice").password(PASSWORD).run("").await;
    assert_eq!(out.ok().stdout_text(), "Welcome, alice\nshell without a pty\n");
}
