//! State handed to handlers: extensions a layer puts on a request, values an
//! authentication handler attaches to its connection, the methods a
//! multi-factor login passed, and the disconnect hook that sees them all.

use std::sync::Arc;

use russh::ChannelMsg;
use russh::client::AuthResult;
use russh::keys::PrivateKeyWithHashAlg;
use ssh_framework::extract::{Extension, SubsystemName, User};
use ssh_framework::keys::PublicKey;
use ssh_framework::tower::util::MapRequestLayer;
use ssh_framework::{Auth, ChannelIo, Connection, ExitStatus, Factors, Method, MethodSet, Request, RequestKind};
use ssh_framework_tests::openssh::keygen;
use ssh_framework_tests::russh_client::{RusshClient, read_to_close};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;
use tokio::io::AsyncWriteExt;

/// What a layer tells the exec handler.
#[derive(Debug, Clone, PartialEq)]
struct RequestId(u64);

/// Inserts a `RequestId` into every exec request: `tower`'s own
/// `MapRequestLayer`, through the re-export.
fn request_id_layer() -> MapRequestLayer<fn(Request) -> Request> {
    MapRequestLayer::new(|mut request: Request| {
        if matches!(request.kind(), RequestKind::Exec(_)) {
            request.extensions_mut().insert(RequestId(42));
        }
        request
    })
}

/// What an authentication handler looked up.
#[derive(Debug, Clone, PartialEq)]
struct Account {
    role: String,
}

/// A value a rejected attempt attached (and that must not survive it).
#[derive(Debug, Clone, PartialEq)]
struct Attempted(String);

/// Password `pw` for alice (an admin); a second factor when `chain` is set.
/// Every attempt attaches `Attempted`; only an accepted one keeps it.
struct App {
    key: Option<PublicKey>,
    chain: bool,
}

#[ssh_framework::server]
impl App {
    #[auth(password)]
    async fn password(&self, user: &str, password: &str, connection: Arc<Connection>) -> Auth {
        connection.insert_extension(Attempted(password.to_owned()));
        if user != "alice" || password != "pw" {
            return Auth::Reject;
        }
        connection.insert_extension(Account { role: "admin".into() });
        if self.chain { Auth::Partial(MethodSet::single(Method::PublicKey)) } else { Auth::Accept }
    }

    #[auth(publickey)]
    async fn publickey(&self, _user: &str, key: &PublicKey, factors: Factors) -> Auth {
        let known = self.key.as_ref().is_some_and(|k| k.key_data() == key.key_data());
        match (known, self.chain) {
            (true, true) => Auth::from_bool(factors.contains(Method::Password)),
            (known, _) => Auth::from_bool(known),
        }
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec]
    async fn exec(
        &self,
        id: Option<Extension<RequestId>>,
        factors: Factors,
        attempted: Option<Extension<Attempted>>,
        mut io: ChannelIo,
    ) -> ExitStatus {
        let id = id.map_or("none".to_owned(), |Extension(RequestId(n))| n.to_string());
        let factors: Vec<&str> = factors.as_slice().iter().map(|m| m.as_str()).collect();
        let attempted = attempted.map_or("none".to_owned(), |Extension(Attempted(p))| p);
        let line = format!("request {id}; factors {}; attempted {attempted}\n", factors.join(","));
        let _ = io.stdout.write_all(line.as_bytes()).await;
        ExitStatus::SUCCESS
    }

    #[shell]
    async fn shell(&self, account: Extension<Account>, user: User, mut io: ChannelIo) -> ExitStatus {
        let _ = io.stdout.write_all(format!("shell: {user} is {}\n", account.role).as_bytes()).await;
        ExitStatus::SUCCESS
    }

    #[subsystem("whoami")]
    async fn whoami(&self, account: Extension<Account>, name: SubsystemName, mut io: ChannelIo) -> ExitStatus {
        let _ = io.stdout.write_all(format!("{}: {}\n", name.0, account.role).as_bytes()).await;
        ExitStatus::SUCCESS
    }
}

async fn password_login(client: &mut RusshClient, password: &str) -> AuthResult {
    within("password", client.handle.authenticate_password("alice", password)).await.expect("auth reply")
}

async fn stdout_of(mut channel: russh::Channel<russh::client::Msg>) -> String {
    String::from_utf8(read_to_close(&mut channel).await.stdout).expect("utf-8")
}

#[tokio::test]
async fn a_layer_inserts_an_extension_that_an_exec_handler_extracts() {
    let server = TestServer::start(|b| b.handlers(App { key: None, chain: false }).layer(request_id_layer())).await;

    let out = server.ssh("alice").password("pw").run("anything").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("request 42;"), "{stdout}");
}

#[tokio::test]
async fn an_auth_handler_attaches_an_account_that_shell_and_subsystem_handlers_receive() {
    let server = TestServer::start(|b| b.handlers(App { key: None, chain: false })).await;
    let mut client = RusshClient::connect(server.addr()).await;
    assert!(password_login(&mut client, "pw").await.success());

    let shell = within("open", client.handle.channel_open_session()).await.expect("session");
    shell.request_shell(true).await.expect("shell request");
    let subsystem = within("open", client.handle.channel_open_session()).await.expect("session");
    subsystem.request_subsystem(true, "whoami").await.expect("subsystem request");

    assert_eq!(stdout_of(shell).await, "shell: alice is admin\n");
    assert_eq!(stdout_of(subsystem).await, "whoami: admin\n");
}

#[tokio::test]
async fn factors_in_an_exec_handler_list_the_methods_of_a_multi_factor_login() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "alice").await;
    let server = TestServer::start(|b| b.handlers(App { key: Some(key.public.clone()), chain: true })).await;
    let mut client = RusshClient::connect(server.addr()).await;

    match password_login(&mut client, "pw").await {
        AuthResult::Failure { partial_success: true, .. } => {}
        other => panic!("expected a partial success, got {other:?}"),
    }
    let signed = PrivateKeyWithHashAlg::new(key.private.clone(), None);
    let result = within("publickey", client.handle.authenticate_publickey("alice", signed)).await.unwrap();
    assert!(result.success(), "{result:?}");

    let out = stdout_of(client.exec("x").await).await;
    assert_eq!(out, "request none; factors password,publickey; attempted pw\n");
}

#[tokio::test]
async fn a_rejected_attempt_leaves_nothing_attached() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "alice").await;
    let server = TestServer::start(|b| b.handlers(App { key: Some(key.public.clone()), chain: false })).await;
    let mut client = RusshClient::connect(server.addr()).await;

    assert!(!password_login(&mut client, "wrong").await.success());
    let signed = PrivateKeyWithHashAlg::new(key.private.clone(), None);
    let result = within("publickey", client.handle.authenticate_publickey("alice", signed)).await.unwrap();
    assert!(result.success(), "{result:?}");

    let out = stdout_of(client.exec("x").await).await;
    assert_eq!(out, "request none; factors publickey; attempted none\n");
}

#[tokio::test]
async fn the_disconnect_hook_sees_the_user_and_extensions_of_the_connection() {
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::start(move |b| {
        b.handlers(App { key: None, chain: false }).on_disconnect(move |connection: &Connection| {
            let role = connection.extension::<Account>().map(|a| a.role);
            let factors = connection.factors().map(|f| f.as_slice().to_vec());
            let _ = seen_tx.send((connection.user().map(str::to_owned), role, factors));
        })
    })
    .await;
    let mut client = RusshClient::connect(server.addr()).await;
    assert!(password_login(&mut client, "pw").await.success());
    let mut channel = client.exec("x").await;
    while let Some(msg) = within("exec", channel.wait()).await {
        if matches!(msg, ChannelMsg::Close) {
            break;
        }
    }
    within("disconnect", client.handle.disconnect(russh::Disconnect::ByApplication, "bye", "")).await.unwrap();

    let seen = within("the disconnect hook", seen.recv()).await.expect("the hook ran");
    assert_eq!(seen, (Some("alice".to_owned()), Some("admin".to_owned()), Some(vec![Method::Password])));
}

#[tokio::test]
async fn changing_the_user_name_drops_what_handlers_attached_for_the_previous_user() {
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::start(move |b| {
        b.handlers(App { key: None, chain: true }).on_disconnect(move |connection: &Connection| {
            let _ = seen_tx.send((connection.extension::<Account>(), connection.extension::<Attempted>()));
        })
    })
    .await;
    let mut client = RusshClient::connect(server.addr()).await;
    // alice passes her first factor: her account is attached (RFC 4252 §5 keeps
    // it only while she goes on as alice).
    match password_login(&mut client, "pw").await {
        AuthResult::Failure { partial_success: true, .. } => {}
        other => panic!("expected a partial success, got {other:?}"),
    }
    let as_mallory = within("password", client.handle.authenticate_password("mallory", "pw")).await.unwrap();
    assert!(!as_mallory.success());
    within("disconnect", client.handle.disconnect(russh::Disconnect::ByApplication, "bye", "")).await.unwrap();

    let seen = within("the disconnect hook", seen.recv()).await.expect("the hook ran");
    assert_eq!(seen, (None, None), "nothing of alice's attempt is left on the connection");
}
