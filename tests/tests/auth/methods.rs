//! The method list of every failure is the server's, also where russh refuses
//! a signed publickey request by itself (its probe check refused the key, or
//! the signature is wrong): russh then sends the list it holds, which was its
//! own default (`none,password,publickey,hostbased,keyboard-interactive`) on a
//! fresh connection. Driven with russh's client, which signs without probing.

use russh::MethodKind;
use russh::client::AuthResult;
use russh::keys::PrivateKeyWithHashAlg;
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, Method, MethodSet};
use ssh_framework_tests::openssh::keygen;
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

use crate::publickey::ForgingSigner;

/// Password and publickey handlers, but `alice` may use only a password;
/// `bob` may use either, with any key.
struct PasswordForAlice;

#[ssh_framework::server]
impl PasswordForAlice {
    #[allowed_auths]
    async fn methods(&self, user: &str) -> MethodSet {
        if user == "alice" { MethodSet::single(Method::Password) } else { [Method::Password, Method::PublicKey].into() }
    }

    #[auth(password)]
    async fn password(&self, _user: &str, password: &str) -> Auth {
        Auth::from_bool(password == "secret")
    }

    #[auth(publickey)]
    async fn publickey(&self, user: &str, _key: &PublicKey) -> Auth {
        Auth::from_bool(user == "bob")
    }
}

fn names(methods: &russh::MethodSet) -> Vec<&'static str> {
    methods.iter().map(<&'static str>::from).collect()
}

/// The list of a failure, failing the test on a success.
fn failure(result: AuthResult) -> Vec<&'static str> {
    match result {
        AuthResult::Failure { remaining_methods, partial_success } => {
            assert!(!partial_success);
            names(&remaining_methods)
        }
        AuthResult::Success => panic!("authenticated"),
    }
}

#[tokio::test]
async fn a_signed_publickey_request_refused_before_any_handler_lists_the_users_methods() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "alice").await;
    let server = TestServer::start_in(dir, |b| b.handlers(PasswordForAlice)).await;
    let mut client = RusshClient::connect(server.addr()).await;

    // The connection's first request: a signed publickey request, for a user
    // who may not use publickey.
    let signed = || PrivateKeyWithHashAlg::new(key.private.clone(), None);
    let first = within("publickey", client.handle.authenticate_publickey("alice", signed())).await.unwrap();
    assert_eq!(failure(first), ["password"]);
    // Again, now that the server has answered once.
    let again = within("publickey", client.handle.authenticate_publickey("alice", signed())).await.unwrap();
    assert_eq!(failure(again), ["password"]);
    // And for a user switch: bob's list, not alice's.
    let password = within("password", client.handle.authenticate_password("bob", "wrong")).await.unwrap();
    assert_eq!(failure(password), ["publickey", "password"]);
    let switched = within("publickey", client.handle.authenticate_publickey("alice", signed())).await.unwrap();
    assert_eq!(failure(switched), ["password"]);
    // The key still works where it is allowed.
    let bob = within("publickey", client.handle.authenticate_publickey("bob", signed())).await.unwrap();
    assert!(bob.success(), "{bob:?}");
}

#[tokio::test]
async fn a_bad_signature_first_lists_only_methods_with_a_handler() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "bob").await;
    let server = TestServer::start_in(dir, |b| b.handlers(PasswordForAlice)).await;
    let mut client = RusshClient::connect(server.addr()).await;

    // russh checks the signature and refuses before any handler: the list is
    // the one it holds, the server's handlers (no user is known yet), never
    // russh's default with `hostbased` and `keyboard-interactive`.
    let forged = within(
        "forged publickey",
        client.handle.authenticate_publickey_with("bob", key.public.clone(), None, &mut ForgingSigner),
    )
    .await
    .unwrap();
    let AuthResult::Failure { remaining_methods, .. } = forged else { panic!("a forged signature authenticated") };
    assert_eq!(names(&remaining_methods), ["publickey", "password"]);
    assert!(!remaining_methods.contains(&MethodKind::HostBased));
}
