//! The dashboard through `ssh_framework::testing::TestClient`: its screen as
//! a terminal shows it, with no socket, no `ssh` and no tmux
//! (tests/tmux.rs drives the real ones).

use example_tui::{Dashboard, TITLE};
use ssh_framework::Server;
use ssh_framework::authorized_keys::AuthorizedKeys;
use ssh_framework::testing::{self, TestClient};

#[tokio::test]
async fn the_dashboard_draws_follows_resizes_and_arrows_and_restores_the_terminal() {
    let app = Dashboard::new("demo", "pw", &AuthorizedKeys::default());
    let server = Server::builder().handlers(app).host_key(testing::ed25519_key()).build().await.unwrap();
    let mut client = TestClient::connect(&server).await.unwrap();
    assert!(client.login_password("demo", "pw").await.unwrap().is_accepted());

    let mut app = client.shell(80, 24).await.unwrap();
    app.wait_for(TITLE).await.unwrap();
    assert!(app.screen().alternate_screen() && app.screen().hide_cursor());
    assert!(app.screen().contents().contains(">> Sessions"));

    app.resize(120, 40).await.unwrap();
    app.wait_for("120x40").await.unwrap();
    let top = app.screen().rows(0, 120).next().unwrap();
    assert_eq!(top.chars().count(), 120, "the border spans the new width: {top:?}");

    app.send("\x1b[B").await.unwrap(); // Down
    app.wait_for(">> Server").await.unwrap();
    app.send("k").await.unwrap();
    app.wait_for(">> Sessions").await.unwrap();

    app.send("q").await.unwrap();
    app.wait_until(|p| p.is_closed()).await.unwrap();
    assert_eq!(app.status(), Some(&ssh_framework::ExitStatus::SUCCESS));
    assert!(!app.screen().alternate_screen() && !app.screen().hide_cursor(), "the terminal is restored");
}
