//! Exec channels: exit codes and signals, bulk data, stderr, environment.

use std::time::Duration;

use sha2::{Digest, Sha256};
use ssh_framework::trace::TraceLayer;
use ssh_framework_tests::data::{pseudo_random, sha256};
use ssh_framework_tests::handlers::{Commands, PasswordLogin};
use ssh_framework_tests::russh_client::read_to_close;
use ssh_framework_tests::server::TestServer;

use crate::logged_in;

async fn server_with(commands: Commands) -> TestServer {
    TestServer::start(|b| b.handlers(PasswordLogin::new("alice", "pw")).handlers(commands).layer(TraceLayer::new())).await
}

#[tokio::test]
async fn exec_exit_codes_reach_ssh() {
    let server = server_with(Commands::new()).await;
    for code in [0, 1, 23] {
        let out = server.ssh("alice").password("pw").run(&format!("exit {code}")).await;
        assert_eq!(out.code, Some(code), "stderr: {}", out.stderr);
    }
}

/// Runs `command` with russh's client and returns the channel's closing messages.
async fn ending_of(command: &str) -> ssh_framework_tests::russh_client::Transcript {
    let server = server_with(Commands::new()).await;
    let client = logged_in(&server).await;
    let mut channel = client.exec(command).await;
    read_to_close(&mut channel).await
}

#[tokio::test]
async fn exec_exit_status_precedes_eof_and_close() {
    let transcript = ending_of("exit 23").await;

    assert_eq!(transcript.events.first().map(String::as_str), Some("success"), "{transcript:?}");
    assert_eq!(transcript.ending(), ["exit-status 23", "eof", "close"]);
}

#[tokio::test]
async fn exit_signal_makes_ssh_exit_255() {
    let server = server_with(Commands::new()).await;

    let out = server.ssh("alice").password("pw").run("kill TERM").await;

    // OpenSSH's client ignores exit-signal: with no exit-status it prints
    // nothing and exits 255, as for a connection error.
    assert_eq!(out.code, Some(255), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn exit_signal_precedes_eof_and_close() {
    let transcript = ending_of("kill TERM").await;

    assert_eq!(transcript.ending(), ["exit-signal TERM", "eof", "close"], "{transcript:?}");
}

/// Sends 64 MiB through `command` with ssh and checks the SHA-256 of what comes back.
async fn round_trip_64_mib(command: &str) {
    let server = server_with(Commands::new()).await;
    let data = pseudo_random(64 << 20, 1);
    let sent = sha256(&data);

    let out = server.ssh("alice").password("pw").stdin(data).timeout(Duration::from_secs(120)).run(command).await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout.len(), 64 << 20);
    assert_eq!(sha256(&out.stdout), sent, "the bytes came back unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_returns_64_mib_unchanged() {
    round_trip_64_mib("cat").await;
}

/// The same transfer with a body that reads stdin in its own task: proves the
/// data path itself (window, packets, EOF) is right, and pins the deadlock
/// above on a body that alternates reads and writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_cat_returns_64_mib_unchanged() {
    round_trip_64_mib("split-cat").await;
}

#[tokio::test]
async fn stderr_is_kept_apart_from_stdout() {
    let server = server_with(Commands::new()).await;

    let out = server.ssh("alice").password("pw").run("split").await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "to stdout\n");
    assert!(out.stderr.contains("to stderr\n"), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("to stdout"), "stderr: {}", out.stderr);
}

#[tokio::test]
async fn env_handler_decides_which_variables_reach_the_command() {
    let commands = Commands::new().allow_env(&["LANG"]);
    let server = server_with(commands.clone()).await;

    let out = server
        .ssh("alice")
        .password("pw")
        // ssh keeps only the first SetEnv option, so both go in one.
        .option("SetEnv=LANG=C FOO=bar")
        .run("env")
        .await;

    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "LANG=C\n");
    assert_eq!(commands.env_requests(), [("LANG".to_owned(), true), ("FOO".to_owned(), false)]);
}

/// The bulk transfer again, but the client's own stdout is not read for the
/// first 3 s: ssh stops granting the server window, the cat body blocks on
/// stdout and stops reading stdin, while ssh keeps sending 192 MiB of stdin
/// (russh grants window on receipt). The channel buffer must hold the client
/// to a trickle past its high-water mark instead of growing without bound or
/// stalling the connection, and every byte must come back once the reader
/// resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_survives_a_client_that_stops_reading_its_output() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = server_with(Commands::new()).await;
    const LEN: usize = 192 << 20;
    let data = pseudo_random(LEN, 1);
    let sent = Sha256::digest(&data);

    // `ssh` owns the askpass script: it lives until the end of the test.
    let ssh = server
        .ssh("alice")
        .password("pw")
        .option("LogLevel=ERROR")
        .option("Ciphers=aes128-gcm@openssh.com");
    let mut child = ssh
        .command("cat")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("starting ssh");
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&data).await;
        let _ = stdin.shutdown().await;
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut hasher = Sha256::new();
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = stdout.read(&mut buf).await.expect("reading ssh's stdout");
            if n == 0 {
                break;
            }
            total += n;
            hasher.update(&buf[..n]);
        }
        (total, hasher.finalize())
    };
    let (total, received) = tokio::time::timeout(Duration::from_secs(180), reader)
        .await
        .expect("the transfer finished: the connection did not stall");
    let status = child.wait().await.unwrap();
    writer.await.unwrap();

    assert!(status.success(), "ssh exited with {status}");
    assert_eq!(total, LEN);
    assert_eq!(received, sent, "the bytes came back unchanged");
}
