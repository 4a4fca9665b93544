//! Several `#[ssh_framework::server]` types on one builder: each serves what
//! it claims, a specific `#[exec("name")]` wins over a catch-all `#[exec]`
//! wherever each is registered, and two claims on one decision fail `build()`.

use ssh_framework::{Auth, ChannelIo, Command, ErrorKind, ExitStatus, RouteConflict, Server};
use ssh_framework_tests::server::TestServer;
use tokio::io::AsyncWriteExt;

/// The app: who may log in, session channels, and every command no other type claims.
struct App;

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> Auth {
        Auth::from_bool(user == "alice" && password == "pw")
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec]
    async fn anything(&self, command: Command, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        io.stdout.write_all(format!("app ran {command}\n").as_bytes()).await?;
        Ok(ExitStatus::SUCCESS)
    }
}

/// A reusable git module: one program name, nothing else.
struct Git;

#[ssh_framework::server]
impl Git {
    #[exec("git-upload-pack")]
    async fn upload_pack(&self, command: Command, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        io.stdout.write_all(format!("git served {}\n", command.args()).as_bytes()).await?;
        Ok(ExitStatus::SUCCESS)
    }
}

#[tokio::test]
async fn two_server_types_on_one_builder_both_serve() {
    let server = TestServer::start(|b| b.handlers(App).handlers(Git)).await;

    let git = server.ssh("alice").password("pw").run("git-upload-pack 'repo.git'").await;
    let other = server.ssh("alice").password("pw").run("git-receive-pack 'repo.git'").await;

    assert_eq!(git.code, Some(0), "stderr: {}", git.stderr);
    assert_eq!(git.stdout_text(), "git served 'repo.git'\n");
    assert_eq!(other.code, Some(0), "stderr: {}", other.stderr);
    assert_eq!(other.stdout_text(), "app ran git-receive-pack 'repo.git'\n");
}

#[tokio::test]
async fn a_specific_exec_wins_whichever_type_is_registered_first() {
    let server = TestServer::start(|b| b.handlers(Git).handlers(App)).await;

    let git = server.ssh("alice").password("pw").run("git-upload-pack 'repo.git'").await;

    assert_eq!(git.code, Some(0), "stderr: {}", git.stderr);
    assert_eq!(git.stdout_text(), "git served 'repo.git'\n");
}

/// Claims `x`.
struct FirstX;

#[ssh_framework::server]
impl FirstX {
    #[exec("x")]
    async fn x(&self) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

/// Claims `x` too.
struct SecondX;

#[ssh_framework::server]
impl SecondX {
    #[exec("x")]
    async fn x(&self) -> ExitStatus {
        ExitStatus::FAILURE
    }
}

#[tokio::test]
async fn two_types_claiming_one_exec_fail_build_with_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let built = Server::builder()
        .handlers(FirstX)
        .handlers(SecondX)
        .listen("127.0.0.1:0".parse().unwrap())
        .host_key_file(dir.path().join("host_key"))
        .build()
        .await;

    match built {
        Err(error) if error.kind() == ErrorKind::RouteConflict => {
            let conflict = std::error::Error::source(&error)
                .and_then(|source| source.downcast_ref::<RouteConflict>())
                .expect("the conflict is the error's source");
            assert_eq!(conflict.route(), r#"#[exec("x")]"#);
            let message = error.to_string();
            assert!(message.contains(r#"#[exec("x")]"#), "{message}");
        }
        Err(other) => panic!("expected a route conflict, got {other}"),
        Ok(_) => panic!("two handlers for #[exec(\"x\")] built a server"),
    }
    assert!(!dir.path().join("host_key").exists(), "a conflict is found before the host key is made");
}
