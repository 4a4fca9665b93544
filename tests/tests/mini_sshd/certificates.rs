//! User certificates (`--trusted-user-ca-keys`, `--authorized-principals`):
//! every credential made by `ssh-keygen -s`, every login by OpenSSH's `ssh`,
//! which offers `KEY-cert.pub` beside the `-i KEY` it is given.

use std::path::PathBuf;

use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::openssh::{ClientKey, Ssh, keygen, program};
use ssh_framework_tests::within;

/// A server trusting CA `ca` (whose base dir also holds `alice`'s key), with
/// `--authorized-principals` files as `(user, principals)` and extra flags.
struct Fixture {
    sshd: MiniSshd,
    ca: ClientKey,
    alice: ClientKey,
    dir: PathBuf,
}

impl Fixture {
    async fn start(principals: &[(&str, &[&str])], flags: &[&str]) -> Fixture {
        let base = MiniSshd::base();
        let dir = base.path().to_owned();
        let ca = keygen(&dir, "ca").await;
        let alice = keygen(&dir, "alice").await;
        let mut argv = vec![
            "--user=nobody:unused-password".to_owned(),
            format!("--trusted-user-ca-keys={}", ca.public_file().display()),
            "--per-source-penalties=no".to_owned(),
        ];
        for (user, names) in principals {
            let file = dir.join(format!("principals_{user}"));
            std::fs::write(&file, names.join("\n") + "\n").unwrap();
            argv.push(format!("--authorized-principals={user}:{}", file.display()));
        }
        argv.extend(flags.iter().map(|f| (*f).to_owned()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let sshd = MiniSshd::start_in(base, &argv).await;
        Fixture { sshd, ca, alice, dir }
    }

    /// Signs alice's key with `ca` (`ssh-keygen -s CA -I alice-id -z 7 EXTRA...`),
    /// leaving `alice-cert.pub` beside it, where `ssh -i alice` finds it.
    async fn sign(&self, ca: &ClientKey, extra: &[&str]) {
        let mut cmd = program("ssh-keygen");
        cmd.arg("-q").arg("-s").arg(&ca.path).args(["-I", "alice-id", "-z", "7"]).args(extra).arg(self.alice.public_file());
        let out = within("ssh-keygen -s", cmd.output()).await.expect("running ssh-keygen");
        assert!(out.status.success(), "ssh-keygen -s: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `ssh` as `user` with alice's key (and so her certificate) only.
    fn ssh(&self, user: &str) -> Ssh {
        self.sshd.ssh(user).identity(&self.alice.path).option("BatchMode=yes")
    }
}

#[tokio::test]
async fn a_valid_certificate_logs_in_and_each_flaw_is_refused() {
    let f = Fixture::start(&[], &[]).await;
    f.sign(&f.ca, &["-n", "alice", "-V", "-5m:+1h"]).await;
    assert_eq!(f.ssh("alice").run("echo certified").await.ok().stdout_text(), "certified\n");

    // A principal that is not the user.
    f.ssh("bob").run("true").await.failed();

    // Expired, and not yet valid.
    f.sign(&f.ca, &["-n", "alice", "-V", "-2h:-1h"]).await;
    f.ssh("alice").run("true").await.failed();
    f.sign(&f.ca, &["-n", "alice", "-V", "+1h:+2h"]).await;
    f.ssh("alice").run("true").await.failed();

    // Signed by a CA the server does not trust.
    let other = keygen(&f.dir, "other_ca").await;
    f.sign(&other, &["-n", "alice", "-V", "-5m:+1h"]).await;
    f.ssh("alice").run("true").await.failed();

    // No principals at all.
    f.sign(&f.ca, &["-V", "-5m:+1h"]).await;
    f.ssh("alice").run("true").await.failed();
}

#[tokio::test]
async fn authorized_principals_replace_the_user_name() {
    let f = Fixture::start(&[("deploy", &["ops", "release"])], &[]).await;
    f.sign(&f.ca, &["-n", "ops", "-V", "-5m:+1h"]).await;
    assert_eq!(f.ssh("deploy").run("echo as deploy").await.ok().stdout_text(), "as deploy\n");
    // `ops` is not a user with a principals file: its own name would be needed.
    f.ssh("ops").run("true").await.ok();
    f.sign(&f.ca, &["-n", "deploy", "-V", "-5m:+1h"]).await;
    f.ssh("deploy").run("true").await.failed();
}

#[tokio::test]
async fn force_command_runs_whatever_the_client_asked() {
    let f = Fixture::start(&[], &[]).await;
    f.sign(&f.ca, &["-n", "alice", "-V", "-5m:+1h", "-O", "force-command=echo forced"]).await;
    assert_eq!(f.ssh("alice").run("echo asked").await.ok().stdout_text(), "forced\n");
}

#[tokio::test]
async fn source_address_admits_only_the_addresses_it_lists() {
    let f = Fixture::start(&[], &[]).await;
    f.sign(&f.ca, &["-n", "alice", "-V", "-5m:+1h", "-O", "source-address=127.0.0.2/32"]).await;
    f.ssh("alice").run("true").await.failed();
    let out = f.ssh("alice").option("BindAddress=127.0.0.2").run("echo from two").await;
    assert_eq!(out.ok().stdout_text(), "from two\n");
}

#[tokio::test]
async fn a_certificate_without_permit_pty_gets_no_tty_and_without_port_forwarding_no_forward() {
    let f = Fixture::start(&[], &["--allow-tcp-forwarding"]).await;
    // `clear` removes every permit-* extension. The server refuses the pty;
    // OpenSSH's ssh, told to force one (`-tt`), then gives up (exit 255)
    // rather than run the command without it, and without `-t` gets no tty.
    f.sign(&f.ca, &["-n", "alice", "-V", "-5m:+1h", "-O", "clear"]).await;
    let out = f.ssh("alice").tty().run("tty").await;
    assert!(out.stderr.contains("PTY allocation request failed"), "{}", out.stderr);
    assert_eq!(out.code, Some(255), "stdout: {}", out.stdout_text());
    assert_eq!(f.ssh("alice").run("tty").await.stdout_text(), "not a tty\n");

    // With the default extensions the pty is allowed.
    f.sign(&f.ca, &["-n", "alice", "-V", "-5m:+1h"]).await;
    let out = f.ssh("alice").tty().run("tty").await;
    assert!(out.stdout_text().starts_with("/dev/pts/"), "stdout: {} stderr: {}", out.stdout_text(), out.stderr);

    // Without permit-port-forwarding, `-L` is refused by the server.
    f.sign(&f.ca, &["-n", "alice", "-V", "-5m:+1h", "-O", "no-port-forwarding"]).await;
    let echo = ssh_framework_tests::net::tcp_echo().await;
    let out = f
        .ssh("alice")
        .option("ExitOnForwardFailure=yes")
        .args(["-W", &format!("127.0.0.1:{}", echo.port())])
        .stdin(b"ping".to_vec())
        .run("")
        .await;
    assert!(out.stderr.contains("administratively prohibited"), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn a_cert_authority_line_trusts_its_ca_for_that_account_and_its_principals_only() {
    // A CA no --trusted-user-ca-keys names, trusted by deploy's authorized_keys alone.
    let base = MiniSshd::base();
    let team_ca = keygen(base.path(), "team_ca").await;
    let line = format!("cert-authority,principals=\"ops\" {}", std::fs::read_to_string(team_ca.public_file()).unwrap());
    let file = base.path().join("deploy_keys");
    std::fs::write(&file, line).unwrap();
    let f = Fixture::start(&[], &[&format!("--authorized-keys=deploy:{}", file.display())]).await;
    let sign_team = |principal: &'static str| {
        let mut cmd = program("ssh-keygen");
        cmd.arg("-q").arg("-s").arg(&team_ca.path).args(["-I", "team", "-n", principal, "-V", "-5m:+1h"]).arg(f.alice.public_file());
        cmd
    };
    assert!(within("ssh-keygen -s", sign_team("ops").output()).await.unwrap().status.success());
    assert_eq!(f.ssh("deploy").run("echo deployed").await.ok().stdout_text(), "deployed\n");
    // The same certificate for another account, which has no such line.
    f.ssh("ops").run("true").await.failed();
    // A principal the line does not list.
    assert!(within("ssh-keygen -s", sign_team("dev").output()).await.unwrap().status.success());
    f.ssh("deploy").run("true").await.failed();
}

#[tokio::test]
async fn a_revoked_ca_or_a_revoked_key_refuses_the_certificate() {
    let base = MiniSshd::base();
    let ca = keygen(base.path(), "ca").await;
    let alice = keygen(base.path(), "alice").await;
    for (revoked, what) in [(&ca, "the CA"), (&alice, "the key")] {
        let file = base.path().join("revoked");
        std::fs::copy(revoked.public_file(), &file).unwrap();
        let trusted = format!("--trusted-user-ca-keys={}", ca.public_file().display());
        let revoked_flag = format!("--revoked-keys={}", file.display());
        let dir = MiniSshd::base();
        for name in ["ca", "ca.pub", "alice", "alice.pub"] {
            std::fs::copy(base.path().join(name), dir.path().join(name)).unwrap();
        }
        let sshd = MiniSshd::start_in(dir, &["--user=nobody:unused-password", "--per-source-penalties=no", &trusted, &revoked_flag]).await;
        let mut cmd = program("ssh-keygen");
        cmd.arg("-q").arg("-s").arg(&ca.path).args(["-I", "alice-id", "-n", "alice", "-V", "-5m:+1h"]).arg(alice.public_file());
        assert!(within("ssh-keygen -s", cmd.output()).await.unwrap().status.success());
        let out = sshd.ssh("alice").identity(&alice.path).option("BatchMode=yes").run("true").await;
        assert_ne!(out.code, Some(0), "a certificate was accepted with {what} revoked");
    }
}
