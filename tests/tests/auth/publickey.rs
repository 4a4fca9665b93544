//! Publickey authentication: OpenSSH against an authorized set, and russh's
//! client for what OpenSSH never does on purpose (offer a key without signing,
//! sign with a forged signature).

use russh::client::AuthResult;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use ssh_framework::trace::TraceLayer;
use ssh_framework_tests::handlers::{AuthorizedKeys, Commands};
use ssh_framework_tests::openssh::{ClientKey, keygen};
use ssh_framework_tests::russh_client::RusshClient;
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

/// A server accepting alice with one fresh key, the key, and russh's client connected to it.
async fn one_key() -> (TestServer, AuthorizedKeys, ClientKey, RusshClient) {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "alice").await;
    let auth = AuthorizedKeys::alice(&key.public);
    let server = TestServer::start_in(dir, |b| b.handlers(auth.clone()).handlers(Commands::new())).await;
    let client = RusshClient::connect(server.addr()).await;
    (server, auth, key, client)
}

#[tokio::test]
async fn accepts_every_key_of_the_authorized_set() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [keygen(dir.path(), "one").await, keygen(dir.path(), "two").await, keygen(dir.path(), "three").await];
    let auth = AuthorizedKeys::new(keys.iter().map(|k| k.public.clone()).collect());
    let server = TestServer::start(|b| b.handlers(auth.clone()).handlers(Commands::new()).layer(TraceLayer::new())).await;

    for key in &keys {
        let out = server.ssh("alice").identity(&key.path).option("BatchMode=yes").run("echo in").await;
        assert_eq!(out.code, Some(0), "key {}: stderr: {}", key.path.display(), out.stderr);
        assert_eq!(out.stdout_text(), "in\n");
    }
    let seen: Vec<_> = auth.calls().into_iter().map(|(user, key)| (user, key.key_data().clone())).collect();
    let expected: Vec<_> = keys.iter().map(|k| ("alice".to_owned(), k.public.key_data().clone())).collect();
    assert_eq!(seen, expected, "one verified call per login, with that login's key");
}

#[tokio::test]
async fn refuses_a_key_outside_the_authorized_set() {
    let dir = tempfile::tempdir().unwrap();
    let authorized = [keygen(dir.path(), "one").await, keygen(dir.path(), "two").await];
    let outsider = keygen(dir.path(), "outsider").await;
    let auth = AuthorizedKeys::new(authorized.iter().map(|k| k.public.clone()).collect());
    let server = TestServer::start(|b| b.handlers(auth.clone()).handlers(Commands::new())).await;

    let out = server.ssh("alice").identity(&outsider.path).option("BatchMode=yes").run("echo in").await;

    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("Permission denied (publickey)"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    let calls = auth.calls();
    assert_eq!(calls.len(), 1, "the signed attempt reached the handler once: {calls:?}");
    assert_eq!(calls[0].1.key_data(), outsider.public.key_data());
}

/// A signer that never signs: the client offers the key, gets PK_OK, and gives up.
struct RefusingSigner;

#[derive(Debug)]
pub(crate) struct DidNotSign;

impl From<russh::SendError> for DidNotSign {
    fn from(_: russh::SendError) -> Self {
        DidNotSign
    }
}

impl russh::Signer for RefusingSigner {
    type Error = DidNotSign;

    async fn auth_sign(&mut self, _key: &AgentIdentity, _hash: Option<HashAlg>, _to_sign: Vec<u8>) -> Result<Vec<u8>, DidNotSign> {
        Err(DidNotSign)
    }
}

/// A signer that appends a well-formed but wrong ed25519 signature.
pub(crate) struct ForgingSigner;

impl russh::Signer for ForgingSigner {
    type Error = DidNotSign;

    async fn auth_sign(&mut self, _key: &AgentIdentity, _hash: Option<HashAlg>, mut to_sign: Vec<u8>) -> Result<Vec<u8>, DidNotSign> {
        fn string(buf: &mut Vec<u8>, bytes: &[u8]) {
            buf.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
            buf.extend_from_slice(bytes);
        }
        let mut signature = Vec::new();
        string(&mut signature, b"ssh-ed25519");
        string(&mut signature, &[0x5a; 64]);
        string(&mut to_sign, &signature);
        Ok(to_sign)
    }
}

#[tokio::test]
async fn an_offered_key_without_signature_never_reaches_the_handler() {
    let (_server, auth, key, mut client) = one_key().await;

    // The probe: the server answers PK_OK, the client never signs.
    let probe = within(
        "publickey probe",
        client.handle.authenticate_publickey_with("alice", key.public.clone(), None, &mut RefusingSigner),
    )
    .await;
    assert!(matches!(probe, Err(DidNotSign)), "the signer was asked after PK_OK");
    assert!(auth.calls().is_empty(), "a probe proves nothing and must not reach the handler");

    // Still unauthenticated: the server answers userauth requests as failures.
    let none = within("auth none", client.handle.authenticate_none("alice")).await.unwrap();
    assert!(matches!(none, AuthResult::Failure { .. }), "the probe did not authenticate: {none:?}");
    assert!(auth.calls().is_empty());

    // The same key with a signature is what authenticates, reaching the handler once.
    let signed = PrivateKeyWithHashAlg::new(key.private.clone(), None);
    let result = within("publickey", client.handle.authenticate_publickey("alice", signed)).await.unwrap();
    assert!(result.success(), "{result:?}");
    assert_eq!(auth.calls().len(), 1);
}

#[tokio::test]
async fn a_forged_signature_never_reaches_the_handler() {
    let (_server, auth, key, mut client) = one_key().await;

    let forged = within(
        "forged publickey",
        client.handle.authenticate_publickey_with("alice", key.public.clone(), None, &mut ForgingSigner),
    )
    .await
    .unwrap();

    assert!(!forged.success(), "a bad signature must not authenticate: {forged:?}");
    assert!(auth.calls().is_empty(), "an unverified key must not reach the handler");
}
