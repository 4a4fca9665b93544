//! Keyboard-interactive authentication (several rounds from one handler) and
//! the publickey-then-keyboard-interactive chain, driven by OpenSSH with an
//! askpass script and by russh's client.

use std::sync::{Arc, Mutex};

use russh::MethodKind;
use russh::client::{AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::PrivateKeyWithHashAlg;
use ssh_framework::keys::PublicKey;
use ssh_framework::trace::TraceLayer;
use ssh_framework::{Auth, Factors, Method, MethodSet, Prompt, Prompter};
use ssh_framework_tests::handlers::Commands;
use ssh_framework_tests::openssh::{Askpass, ClientKey, keygen};
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

/// Asks a password, then in a second round a verification code.
#[derive(Clone, Default)]
struct TwoRounds {
    answers: Arc<Mutex<Vec<Vec<String>>>>,
}

#[ssh_framework::server]
impl TwoRounds {
    #[auth(keyboard_interactive)]
    async fn login(&self, user: &str, prompter: &mut Prompter) -> Auth {
        let Ok(password) = prompter.ask("", "", [Prompt::hidden("Password: ")]).await else {
            return Auth::Reject;
        };
        self.answers.lock().unwrap().push(password.clone());
        if user != "alice" || password != ["hunter2"] {
            return Auth::Reject;
        }
        let Ok(code) = prompter.ask("second factor", "Look at your token.", [Prompt::visible("Verification code: ")]).await
        else {
            return Auth::Reject;
        };
        self.answers.lock().unwrap().push(code.clone());
        Auth::from_bool(code == ["123456"])
    }
}

#[tokio::test]
async fn keyboard_interactive_asks_two_rounds_from_one_handler() {
    let auth = TwoRounds::default();
    let server = TestServer::start(|b| b.handlers(auth.clone()).handlers(Commands::new()).layer(TraceLayer::new())).await;
    let askpass = Askpass::new(server.dir(), &[("Password: ", "hunter2"), ("Verification code: ", "123456")], "wrong");

    let out = server.ssh("alice").askpass(&askpass).keyboard_interactive_only().run("echo in").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "in\n");
    let prompts = askpass.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(prompts[0].ends_with("Password: "), "{prompts:?}");
    assert!(prompts[1].ends_with("Verification code: "), "{prompts:?}");
    assert_eq!(*auth.answers.lock().unwrap(), [vec!["hunter2".to_owned()], vec!["123456".to_owned()]]);
}

#[tokio::test]
async fn keyboard_interactive_refuses_a_wrong_second_answer() {
    let auth = TwoRounds::default();
    let server = TestServer::start(|b| b.handlers(auth.clone()).handlers(Commands::new())).await;
    let askpass = Askpass::new(server.dir(), &[("Password: ", "hunter2")], "000000");

    let out = server.ssh("alice").askpass(&askpass).keyboard_interactive_only().run("echo in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "stderr: {}", out.stderr);
    assert_eq!(askpass.prompts().len(), 2);
    assert_eq!(*auth.answers.lock().unwrap(), [vec!["hunter2".to_owned()], vec!["000000".to_owned()]]);
}

/// Publickey, then a keyboard-interactive code (OpenSSH's
/// `AuthenticationMethods publickey,keyboard-interactive`). The code handler
/// checks only the passed factors, not the user name, so it is the factor
/// record alone that decides.
#[derive(Clone)]
struct KeyThenCode {
    key: PublicKey,
    code_calls: Arc<Mutex<Vec<CodeCall>>>,
}

/// The user of a call of the code handler, and the factors it had passed.
type CodeCall = (String, Vec<Method>);

impl KeyThenCode {
    fn code_calls(&self) -> Vec<CodeCall> {
        self.code_calls.lock().unwrap().clone()
    }
}

#[ssh_framework::server]
impl KeyThenCode {
    #[auth(publickey)]
    async fn key(&self, user: &str, key: &PublicKey) -> Auth {
        if user == "alice" && key.key_data() == self.key.key_data() {
            Auth::Partial(MethodSet::single(Method::KeyboardInteractive))
        } else {
            Auth::Reject
        }
    }

    #[auth(keyboard_interactive)]
    async fn code(&self, user: &str, prompter: &mut Prompter, passed: Factors) -> Auth {
        self.code_calls.lock().unwrap().push((user.to_owned(), passed.as_slice().to_vec()));
        if !passed.contains(Method::PublicKey) {
            return Auth::Reject;
        }
        match prompter.ask_one(Prompt::visible("Verification code: ")).await {
            Ok(code) => Auth::from_bool(code == "123456"),
            Err(_) => Auth::Reject,
        }
    }
}

/// A server with the key-then-code chain for a fresh key of alice's, the key,
/// and an askpass script that knows the code.
async fn key_then_code() -> (TestServer, KeyThenCode, ClientKey, Askpass) {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "alice").await;
    let auth = KeyThenCode { key: key.public.clone(), code_calls: Arc::default() };
    let server = TestServer::start_in(dir, |b| b.handlers(auth.clone()).handlers(Commands::new())).await;
    let askpass = Askpass::new(server.dir(), &[("Verification code: ", "123456")], "wrong");
    (server, auth, key, askpass)
}

#[tokio::test]
async fn key_then_code_chain_succeeds_with_both_factors() {
    let (server, auth, key, askpass) = key_then_code().await;

    let out = server
        .ssh("alice")
        .identity(&key.path)
        .askpass(&askpass)
        .option("PreferredAuthentications=publickey,keyboard-interactive")
        .run("echo in")
        .await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "in\n");
    assert_eq!(auth.code_calls(), [("alice".to_owned(), vec![Method::PublicKey])]);
    assert_eq!(askpass.prompts().len(), 1);
}

#[tokio::test]
async fn key_then_code_chain_fails_with_the_key_alone() {
    let (server, auth, key, _askpass) = key_then_code().await;

    let out = server
        .ssh("alice")
        .identity(&key.path)
        .option("BatchMode=yes")
        .option("PreferredAuthentications=publickey")
        .run("echo in")
        .await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied (keyboard-interactive)"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(auth.code_calls().is_empty());
}

#[tokio::test]
async fn key_then_code_chain_fails_with_the_code_alone() {
    let (server, auth, _key, askpass) = key_then_code().await;

    let out = server.ssh("alice").askpass(&askpass).keyboard_interactive_only().run("echo in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(auth.code_calls(), [("alice".to_owned(), vec![])]);
    assert!(askpass.prompts().is_empty(), "no code is asked before the key: {:?}", askpass.prompts());
}

/// Answers keyboard-interactive rounds with `code` until the server decides.
async fn answer_code(client: &mut RusshClient, user: &str, code: &str) -> KeyboardInteractiveAuthResponse {
    let mut reply = within("kbd start", client.handle.authenticate_keyboard_interactive_start(user, None))
        .await
        .unwrap();
    loop {
        match reply {
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts.iter().map(|_| code.to_owned()).collect();
                reply = within("kbd respond", client.handle.authenticate_keyboard_interactive_respond(answers))
                    .await
                    .unwrap();
            }
            done => return done,
        }
    }
}

/// alice's key, signed, with russh's client.
async fn alice_key(client: &mut RusshClient, key: &ClientKey) -> AuthResult {
    let signed = PrivateKeyWithHashAlg::new(key.private.clone(), None);
    within("publickey", client.handle.authenticate_publickey("alice", signed)).await.unwrap()
}

#[tokio::test]
async fn changing_user_after_partial_success_resets_the_passed_factors() {
    let (server, auth, key, _askpass) = key_then_code().await;
    let mut client = RusshClient::connect(server.addr()).await;

    let first = alice_key(&mut client, &key).await;
    match &first {
        AuthResult::Failure { remaining_methods, partial_success } => {
            assert!(*partial_success, "{first:?}");
            assert!(remaining_methods.contains(&MethodKind::KeyboardInteractive), "{first:?}");
        }
        other => panic!("expected a partial success, got {other:?}"),
    }

    // RFC 4252 §5: a new user name starts authentication over.
    let as_bob = answer_code(&mut client, "bob", "123456").await;
    assert!(
        !matches!(as_bob, KeyboardInteractiveAuthResponse::Success),
        "alice's key must not count for bob"
    );
    assert_eq!(auth.code_calls(), [("bob".to_owned(), vec![])], "bob's attempt saw no passed factor");

    // The same chain completed by one user still works on this connection.
    let again = alice_key(&mut client, &key).await;
    assert!(matches!(again, AuthResult::Failure { partial_success: true, .. }), "{again:?}");
    let as_alice = answer_code(&mut client, "alice", "123456").await;
    assert!(matches!(as_alice, KeyboardInteractiveAuthResponse::Success), "{as_alice:?}");
    assert_eq!(auth.code_calls().last().unwrap(), &("alice".to_owned(), vec![Method::PublicKey]));
}
