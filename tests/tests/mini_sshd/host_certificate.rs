//! `--host-certificate`: a host key signed by a CA with `ssh-keygen -s -h`,
//! served to OpenSSH's `ssh` with `StrictHostKeyChecking=yes` and only an
//! `@cert-authority` line in known_hosts (accepted for that CA, refused for
//! another), and the certificates `build()` refuses to serve.

use std::path::{Path, PathBuf};

use ssh_framework::ErrorKind;
use ssh_framework_tests::mini_sshd::{MiniSshd, args};
use ssh_framework_tests::openssh::{ClientKey, keygen, program};
use ssh_framework_tests::within;

/// Signs `key`'s public half with `ca` (`ssh-keygen -s CA -I mini-sshd
/// EXTRA... KEY.pub`) and returns the certificate file, `KEY-cert.pub`.
async fn sign(ca: &ClientKey, key: &ClientKey, extra: &[&str]) -> PathBuf {
    let mut cmd = program("ssh-keygen");
    cmd.arg("-q").arg("-s").arg(&ca.path).args(["-I", "mini-sshd"]).args(extra).arg(key.public_file());
    let out = within("ssh-keygen -s", cmd.output()).await.expect("running ssh-keygen");
    assert!(out.status.success(), "ssh-keygen -s: {}", String::from_utf8_lossy(&out.stderr));
    let mut cert = key.path.clone().into_os_string();
    cert.push("-cert.pub");
    PathBuf::from(cert)
}

/// A temp dir holding a host key `host_key` (where mini-sshd's fixture looks
/// for it) and a CA `ca`.
async fn host_key_and_ca() -> (tempfile::TempDir, ClientKey, ClientKey) {
    let base = MiniSshd::base();
    let host_key = keygen(base.path(), "host_key").await;
    let ca = keygen(base.path(), "ca").await;
    (base, host_key, ca)
}

/// A known_hosts file in `dir` with one line: `@cert-authority HOSTS` and the CA's public key.
fn known_hosts(dir: &Path, hosts: &str, ca: &ClientKey) -> PathBuf {
    let path = dir.join(format!("known_hosts_{}", ca.path.file_name().unwrap().to_string_lossy()));
    let ca_line = std::fs::read_to_string(ca.public_file()).unwrap();
    std::fs::write(&path, format!("@cert-authority {hosts} {ca_line}")).unwrap();
    path
}

#[tokio::test]
async fn openssh_trusting_only_the_host_ca_logs_in_with_strict_host_key_checking() {
    let (base, host_key, ca) = host_key_and_ca().await;
    let cert = sign(&ca, &host_key, &["-h", "-n", "127.0.0.1,localhost", "-V", "-5m:+1h"]).await;
    let flag = format!("--host-certificate={}", cert.display());
    let sshd = MiniSshd::start_in(base, &["--user=bob:pw", &flag]).await;

    // ssh takes the bare host name and, on a port other than 22, `[HOST]:PORT`.
    for hosts in ["127.0.0.1,localhost".to_owned(), format!("[127.0.0.1]:{}", sshd.port())] {
        let known = known_hosts(sshd.dir(), &hosts, &ca);
        let out = sshd
            .ssh("bob")
            .password("pw")
            .option("StrictHostKeyChecking=yes")
            .option(&format!("UserKnownHostsFile={}", known.display()))
            .option("LogLevel=DEBUG")
            .run("echo certified")
            .await;

        out.ok();
        assert_eq!(out.stdout_text(), "certified\n", "{hosts}");
        // The certificate, not the plain key, was negotiated and checked against the CA.
        assert!(out.stderr.contains("Server host certificate: ssh-ed25519-cert-v01@openssh.com"), "{hosts}: {}", out.stderr);
        assert!(out.stderr.contains("matches the ED25519-CERT host certificate"), "{hosts}: {}", out.stderr);
    }
}

#[tokio::test]
async fn openssh_trusting_another_ca_refuses_the_host_certificate() {
    let (base, host_key, ca) = host_key_and_ca().await;
    let other_ca = keygen(base.path(), "other_ca").await;
    let cert = sign(&ca, &host_key, &["-h", "-n", "127.0.0.1,localhost"]).await;
    let flag = format!("--host-certificate={}", cert.display());
    let sshd = MiniSshd::start_in(base, &["--user=bob:pw", &flag]).await;
    let known = known_hosts(sshd.dir(), "127.0.0.1,localhost", &other_ca);

    let out = sshd
        .ssh("bob")
        .password("pw")
        .option("StrictHostKeyChecking=yes")
        .option(&format!("UserKnownHostsFile={}", known.display()))
        .run("echo certified")
        .await;

    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("Host key verification failed"), "{}", out.stderr);
}

/// What mini-sshd's `build()` says about `--host-certificate CERT` beside `BASE/host_key`.
async fn build_error(base: &Path, cert: &Path) -> ssh_framework::Error {
    std::fs::create_dir_all(base.join("root")).unwrap();
    let flag = format!("--host-certificate={}", cert.display());
    let error = match example_mini_sshd::build(args(base, &["--user=bob:pw", &flag])).await {
        Ok(_) => panic!("build served {}", cert.display()),
        Err(error) => error,
    };
    let error = error.downcast::<ssh_framework::Error>().expect("an ssh_framework::Error");
    assert_eq!(error.kind(), ErrorKind::HostKey, "{error}");
    *error
}

#[tokio::test]
async fn build_refuses_a_host_certificate_for_another_key() {
    let (base, _host_key, ca) = host_key_and_ca().await;
    let other = keygen(base.path(), "other_host_key").await;
    let cert = sign(&ca, &other, &["-h", "-n", "127.0.0.1"]).await;

    let error = build_error(base.path(), &cert).await.to_string();

    assert!(error.contains("none of the host keys"), "{error}");
    assert!(error.contains(&cert.display().to_string()), "the message names the file: {error}");
}

#[tokio::test]
async fn build_refuses_a_user_certificate_as_host_certificate() {
    let (base, host_key, ca) = host_key_and_ca().await;
    let cert = sign(&ca, &host_key, &["-n", "127.0.0.1"]).await;

    let error = build_error(base.path(), &cert).await.to_string();

    assert!(error.contains("a user certificate, not a host certificate"), "{error}");
}

#[tokio::test]
async fn build_refuses_an_expired_host_certificate() {
    let (base, host_key, ca) = host_key_and_ca().await;
    let cert = sign(&ca, &host_key, &["-h", "-n", "127.0.0.1", "-V", "20000101:20010101"]).await;

    let error = build_error(base.path(), &cert).await.to_string();

    assert!(error.contains("expired"), "{error}");
}

#[tokio::test]
async fn build_refuses_a_missing_or_garbled_host_certificate() {
    let (base, _host_key, _ca) = host_key_and_ca().await;
    let missing = base.path().join("no-such-cert.pub");
    let error = build_error(base.path(), &missing).await.to_string();
    assert!(error.contains("reading host certificate"), "{error}");

    let garbled = base.path().join("garbled-cert.pub");
    std::fs::write(&garbled, "ssh-ed25519-cert-v01@openssh.com AAAA not-a-certificate\n").unwrap();
    let error = build_error(base.path(), &garbled).await.to_string();
    assert!(error.contains("reading host certificate"), "{error}");
}

#[tokio::test]
async fn build_refuses_a_host_certificate_whose_signature_does_not_verify() {
    use ssh_framework::keys::Certificate;
    let (base, host_key, ca) = host_key_and_ca().await;
    let cert = sign(&ca, &host_key, &["-h", "-n", "127.0.0.1"]).await;
    // The last byte of the blob is the last byte of the CA's ed25519 signature.
    let mut blob = Certificate::read_file(&cert).unwrap().to_bytes().unwrap();
    *blob.last_mut().unwrap() ^= 1;
    let forged = Certificate::from_bytes(&blob).expect("still a well-formed certificate");
    forged.write_file(&cert).unwrap();

    let error = build_error(base.path(), &cert).await.to_string();

    assert!(error.contains("signature does not verify"), "{error}");
}
