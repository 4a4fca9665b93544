//! `ssh_framework::testing::TestClient`, the socket-free client for app
//! tests: every operation it offers, against one app, with no listening socket.

use std::io;
use std::time::Duration;

use ssh_framework::auth::{Method, MethodSet};
use ssh_framework::extract::{Environment, PeerAddr};
use ssh_framework::forward::{Forward, ListenTarget, TcpTarget};
use ssh_framework::keys::{Certificate, PrivateKey, PublicKey, ssh_key};
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::testing::{self, Login, TestClient};
use ssh_framework::{Auth, ChannelEvent, ConnectionErrorKind, ChannelIo, Command, ExitStatus, Prompt, Prompter, Server, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One app with a handler for everything the test client can do.
struct App {
    alice_key: PublicKey,
    user_ca: PublicKey,
    files: tempfile::TempDir,
}

#[ssh_framework::server]
impl App {
    #[banner]
    async fn banner(&self) -> &'static str {
        "test server\r\n"
    }

    #[auth(none)]
    async fn none(&self, user: &str) -> Auth {
        Auth::from_bool(user == "guest")
    }

    #[auth(password)]
    async fn password(&self, user: &str, password: &str) -> Auth {
        match (user, password) {
            ("alice", "secret") => Auth::Accept,
            // carol needs a one-time code after her password.
            ("carol", "first") => Auth::Partial(MethodSet::single(Method::KeyboardInteractive)),
            _ => Auth::Reject,
        }
    }

    #[auth(publickey)]
    async fn key(&self, user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(user == "alice" && key.key_data() == self.alice_key.key_data())
    }

    #[auth(certificate)]
    async fn certificate(&self, user: &str, certificate: &Certificate) -> Auth {
        let by_our_ca = certificate.signature_key() == self.user_ca.key_data();
        Auth::from_bool(by_our_ca && certificate.valid_principals().iter().any(|p| p == user))
    }

    #[auth(keyboard_interactive)]
    async fn code(&self, user: &str, prompter: &mut Prompter) -> Result<bool, String> {
        let answers = prompter
            .ask("", "two questions", [Prompt::visible("Name: "), Prompt::hidden("Code: ")])
            .await
            .map_err(|e| e.to_string())?;
        Ok(answers[0] == user && answers[1] == "123456")
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[pty]
    async fn pty(&self) -> bool {
        true
    }

    #[env]
    async fn env(&self, name: &str, _value: &str) -> bool {
        name == "LANG"
    }

    #[window_change]
    async fn window_change(&self) -> bool {
        true
    }

    #[signal]
    async fn signal(&self) -> bool {
        true
    }

    #[exec]
    async fn exec(&self, command: Command, env: Environment, peer: PeerAddr, mut io: ChannelIo) -> ExitStatus {
        match command.as_str() {
            "cat" => {
                let _ = tokio::io::copy(&mut io.stdin, &mut io.stdout).await;
                ExitStatus::SUCCESS
            }
            "fail" => {
                let _ = io.stderr.write_all(b"it went wrong\n").await;
                ExitStatus::Code(3)
            }
            "killed" => ExitStatus::Signal { signal: Signal::new("TERM"), core_dumped: false, message: "bye".into() },
            "env" => {
                let lines: String = env.0.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
                let _ = io.stdout.write_all(lines.as_bytes()).await;
                ExitStatus::SUCCESS
            }
            "peer" => {
                let _ = io.stdout.write_all(format!("{peer}\n").as_bytes()).await;
                ExitStatus::SUCCESS
            }
            "wait-signal" => {
                let _ = io.stdout.write_all(b"ready\n").await;
                while let Some(event) = io.events.recv().await {
                    if let ChannelEvent::Signal(signal) = event {
                        let _ = io.stdout.write_all(format!("got {signal}\n").as_bytes()).await;
                        return ExitStatus::Code(130);
                    }
                }
                ExitStatus::FAILURE
            }
            "silent" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                ExitStatus::SUCCESS
            }
            _ => ExitStatus::Code(127),
        }
    }

    /// A terminal app: shows its size, echoes keys, redraws on resize, `q` quits.
    #[shell]
    async fn shell(&self, pty: ssh_framework::extract::Pty, io: ChannelIo) -> ExitStatus {
        let (mut stdin, mut stdout, _stderr, mut events) = io.split();
        let size = pty.0.map(|p| p.size).unwrap_or_default();
        let _ = stdout.write_all(format!("size {}x{}\r\n> ", size.cols, size.rows).as_bytes()).await;
        let mut byte = [0u8; 1];
        loop {
            tokio::select! {
                read = stdin.read(&mut byte) => match read {
                    Ok(0) | Err(_) => return ExitStatus::FAILURE,
                    Ok(_) if byte[0] == b'q' => return ExitStatus::SUCCESS,
                    Ok(_) if byte[0] == b'\r' => { let _ = stdout.write_all(b"\r\n> ").await; }
                    Ok(_) => { let _ = stdout.write_all(&byte).await; }
                },
                Some(event) = events.recv() => if let ChannelEvent::WindowChange(size) = event {
                    let _ = stdout.write_all(format!("\x1b[2J\x1b[Hsize {}x{}\r\n> ", size.cols, size.rows).as_bytes()).await;
                },
            }
        }
    }

    #[subsystem("sftp")]
    async fn sftp(&self, io: ChannelIo) -> io::Result<()> {
        Sftp::new(FsBackend::open(self.files.path())?).serve(io).await
    }

    #[channel(direct_tcpip)]
    async fn local_forward(&self, target: TcpTarget) -> Forward {
        if target.host == "echo.internal" {
            return Forward::serve(|mut io: ChannelIo| async move {
                let _ = tokio::io::copy(&mut io.stdin, &mut io.stdout).await;
            });
        }
        Forward::Refuse(ssh_framework::forward::OpenFailure::AdministrativelyProhibited)
    }

    #[tcpip_forward]
    async fn remote_forward(&self, target: ListenTarget) -> bool {
        target.port == 0
    }
}

struct Fixture {
    server: Server,
    alice: PrivateKey,
    ca: PrivateKey,
}

async fn fixture() -> Fixture {
    let alice = testing::ed25519_key();
    let ca = testing::ed25519_key();
    let app = App { alice_key: alice.public_key().clone(), user_ca: ca.public_key().clone(), files: tempfile::tempdir().unwrap() };
    // No `listen`: the server binds nothing.
    let server = Server::builder().handlers(app).host_key(testing::ed25519_key()).build().await.unwrap();
    Fixture { server, alice, ca }
}

async fn alice(f: &Fixture) -> TestClient {
    let mut client = TestClient::connect(&f.server).await.unwrap();
    assert_eq!(client.login_password("alice", "secret").await.unwrap(), Login::Accepted);
    client
}

#[tokio::test]
async fn a_server_with_no_listener_serves_the_test_client() {
    let f = fixture().await;
    assert!(f.server.local_addrs().is_empty(), "{:?}", f.server.local_addrs());
    let client = alice(&f).await;
    let host_key = client.host_key().expect("the host key from key exchange");
    assert_eq!(host_key.fingerprint(Default::default()).to_string(), f.server.host_key_fingerprints()[0]);
    assert_eq!(client.banners(), ["test server\r\n"]);
    let output = client.exec("peer").await.unwrap();
    assert_eq!(output.stdout_text(), "-\n", "no peer address without a socket");
    assert_eq!(client.disconnect().await.unwrap().map_err(|e| e.to_string()), Ok(()));
}

#[tokio::test]
async fn connect_from_gives_the_server_a_peer_address() {
    let f = fixture().await;
    let peer = "192.0.2.7:40000".parse().unwrap();
    let mut client = TestClient::connect_from(&f.server, peer).await.unwrap();
    assert!(client.login_password("alice", "secret").await.unwrap().is_accepted());
    assert_eq!(client.exec("peer").await.unwrap().stdout_text(), "192.0.2.7:40000\n");
}

#[tokio::test]
async fn every_login_method_succeeds_and_fails_as_the_handlers_decide() {
    let f = fixture().await;

    let mut client = TestClient::connect(&f.server).await.unwrap();
    let refused = client.login_password("alice", "wrong").await.unwrap();
    let Login::Refused { remaining } = refused else { panic!("{refused:?}") };
    assert_eq!(remaining.to_string(), "publickey,keyboard-interactive,password");
    assert!(matches!(client.login_none("alice").await.unwrap(), Login::Refused { .. }));
    assert!(client.login_none("guest").await.unwrap().is_accepted());

    let mut client = TestClient::connect(&f.server).await.unwrap();
    let stranger = testing::ed25519_key();
    assert!(!client.login_key("alice", &stranger).await.unwrap().is_accepted());
    assert!(client.login_key("alice", &f.alice).await.unwrap().is_accepted());

    let mut client = TestClient::connect(&f.server).await.unwrap();
    let wrong = client.login_keyboard_interactive("bob", |_| vec!["bob".into(), "000000".into()]).await.unwrap();
    assert!(!wrong.is_accepted());
    // ANCHOR: keyboard_interactive
    let mut asked = Vec::new();
    let login = client
        .login_keyboard_interactive("bob", |prompts| {
            asked = prompts.iter().map(|p| (p.text.clone(), p.echo)).collect();
            vec!["bob".into(), "123456".into()]
        })
        .await
        .unwrap();
    assert!(login.is_accepted());
    assert_eq!(asked, [("Name: ".to_owned(), true), ("Code: ".to_owned(), false)]);
    // ANCHOR_END: keyboard_interactive
}

#[tokio::test]
async fn a_partial_login_needs_its_second_factor() {
    let f = fixture().await;
    let mut client = TestClient::connect(&f.server).await.unwrap();
    let first = client.login_password("carol", "first").await.unwrap();
    assert_eq!(first, Login::Partial { remaining: MethodSet::single(Method::KeyboardInteractive) });
    let second = client.login_keyboard_interactive("carol", |_| vec!["carol".into(), "123456".into()]).await.unwrap();
    assert!(second.is_accepted());
    assert!(client.exec("env").await.unwrap().success());
}

fn certificate(f: &Fixture, principal: &str) -> Certificate {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut builder =
        ssh_key::certificate::Builder::new([7u8; 32].to_vec(), f.alice.public_key().key_data().clone(), now - 60, now + 3600)
            .unwrap();
    builder.cert_type(ssh_key::certificate::CertType::User).unwrap();
    builder.key_id("alice@test").unwrap();
    builder.valid_principal(principal).unwrap();
    builder.sign(&f.ca).unwrap()
}

#[tokio::test]
async fn a_certificate_login_names_its_principal() {
    let f = fixture().await;
    let mut client = TestClient::connect(&f.server).await.unwrap();
    assert!(!client.login_certificate("alice", &f.alice, &certificate(&f, "mallory")).await.unwrap().is_accepted());
    assert!(client.login_certificate("alice", &f.alice, &certificate(&f, "alice")).await.unwrap().is_accepted());
}

#[tokio::test]
async fn exec_reports_stdout_stderr_codes_and_signals() {
    let f = fixture().await;
    let client = alice(&f).await;

    let output = client.exec_with_input("cat", b"hello\nworld\n").await.unwrap();
    assert_eq!(output.stdout, b"hello\nworld\n");
    assert_eq!(output.status, Some(ExitStatus::SUCCESS));

    let output = client.exec("fail").await.unwrap();
    assert_eq!((output.stdout_text(), output.stderr_text(), output.code()), (String::new(), "it went wrong\n".into(), Some(3)));
    assert!(!output.success());

    let output = client.exec("killed").await.unwrap();
    assert_eq!(
        output.status,
        Some(ExitStatus::Signal { signal: Signal::new("TERM"), core_dumped: false, message: "bye".into() })
    );

    // A megabyte through stdin and back: flow control in both directions.
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let output = client.exec_with_input("cat", &big).await.unwrap();
    assert!(output.stdout == big, "{} bytes back", output.stdout.len());
}

#[tokio::test]
async fn env_and_signals_reach_the_handler() {
    let f = fixture().await;
    let client = alice(&f).await;
    let output = client.session().env("LANG", "C.UTF-8").env("EVIL", "1").exec("env").await.unwrap().wait().await.unwrap();
    assert_eq!(output.stdout_text(), "LANG=C.UTF-8\n", "EVIL is refused by #[env]");

    let mut process = client.session().exec("wait-signal").await.unwrap();
    process.wait_for("ready").await.unwrap();
    process.signal(&Signal::new("INT")).await.unwrap();
    let output = process.wait().await.unwrap();
    assert_eq!((output.stdout_text(), output.code()), ("ready\ngot INT\n".to_owned(), Some(130)));
}

#[tokio::test]
async fn a_shell_on_a_pty_has_a_screen_that_follows_input_and_resizes() {
    let f = fixture().await;
    let client = alice(&f).await;
    let mut shell = client.shell(80, 24).await.unwrap();
    shell.wait_for("size 80x24").await.unwrap();
    shell.send("hi\rthere").await.unwrap();
    shell.wait_for("> there").await.unwrap();
    assert_eq!(shell.screen().contents(), "size 80x24\n> hi\n> there");
    assert_eq!(shell.screen().cursor_position(), (2, 7));

    shell.resize(120, 40).await.unwrap();
    shell.wait_for("size 120x40").await.unwrap();
    assert_eq!(shell.screen().size(), (40, 120));
    assert_eq!(shell.screen().contents(), "size 120x40\n> ");

    shell.send("q").await.unwrap();
    let output = shell.wait().await.unwrap();
    assert!(output.success());
}

#[tokio::test]
async fn the_session_builder_sets_the_term_and_size_of_a_command() {
    let f = fixture().await;
    let client = alice(&f).await;
    let mut process = client.session().pty(100, 30).term("vt100").exec("cat").await.unwrap();
    process.send("typed").await.unwrap();
    process.wait_for("typed").await.unwrap();
    assert_eq!(process.screen().size(), (30, 100));
}

#[tokio::test]
async fn refusals_and_timeouts_are_errors_that_say_so() {
    let f = fixture().await;
    let mut client = alice(&f).await;
    let refused = client.session().subsystem("netconf").await.unwrap_err();
    assert!(refused.is_refused(), "{refused}");

    client.set_timeout(Duration::from_millis(300));
    let mut silent = client.session().exec("silent").await.unwrap();
    let started = tokio::time::Instant::now();
    let timeout = silent.wait_for("anything").await.unwrap_err();
    assert!(timeout.is_timeout(), "{timeout}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
    assert!(timeout.to_string().contains("\"anything\""), "{timeout}");
}

#[tokio::test]
async fn sftp_writes_lists_reads_and_removes_files() {
    let f = fixture().await;
    let client = alice(&f).await;
    let sftp = client.sftp().await.unwrap();
    sftp.create_dir("reports").await.unwrap();
    let mut file = sftp.create("reports/q1.txt").await.unwrap();
    file.write_all(b"revenue: 42\n").await.unwrap();
    file.shutdown().await.unwrap();
    let names: Vec<String> = sftp.read_dir("reports").await.unwrap().map(|e| e.file_name()).collect();
    assert_eq!(names, ["q1.txt"]);
    assert_eq!(sftp.read("reports/q1.txt").await.unwrap(), b"revenue: 42\n");
    assert_eq!(sftp.metadata("reports/q1.txt").await.unwrap().size, Some(12));
    sftp.remove_file("reports/q1.txt").await.unwrap();
    assert!(!sftp.try_exists("reports/q1.txt").await.unwrap());
}

#[tokio::test]
async fn a_local_forward_is_a_byte_stream_and_a_refused_one_is_an_error() {
    let f = fixture().await;
    let client = alice(&f).await;
    let mut stream = client.forward_local("echo.internal", 7).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");

    let refused = client.forward_local("db.internal", 5432).await.unwrap_err();
    assert!(refused.is_refused(), "{refused}");
}

#[tokio::test]
async fn a_remote_forward_hands_connections_to_the_test() {
    let f = fixture().await;
    let mut client = alice(&f).await;
    assert!(client.forward_remote("127.0.0.1", 8080).await.unwrap_err().is_refused());
    let port = client.forward_remote("127.0.0.1", 0).await.unwrap();
    assert_ne!(port, 0);

    let mut visitor = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    visitor.write_all(b"GET /").await.unwrap();
    let mut forwarded = client.accept_forwarded().await.unwrap();
    assert_eq!(forwarded.connected_port, u32::from(port));
    let mut got = [0u8; 5];
    forwarded.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"GET /");
    forwarded.stream.write_all(b"200").await.unwrap();
    let mut reply = [0u8; 3];
    visitor.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"200");

    client.cancel_forward_remote("127.0.0.1", port).await.unwrap();
}

#[tokio::test]
async fn the_server_ending_a_connection_is_visible_to_the_test() {
    let f = fixture().await;
    let app = App { alice_key: f.alice.public_key().clone(), user_ca: f.ca.public_key().clone(), files: tempfile::tempdir().unwrap() };
    let server = Server::builder()
        .handlers(app)
        .host_key(testing::ed25519_key())
        .login_grace_time(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    // ANCHOR: closed
    let client = TestClient::connect(&server).await.unwrap(); // and never logs in
    let ended = client.closed().await.unwrap().unwrap_err();
    assert_eq!(ended.kind(), ConnectionErrorKind::LoginGraceTimeExceeded, "{ended}");
    // ANCHOR_END: closed
}

#[tokio::test]
async fn what_the_client_returned_outlives_the_client() {
    let f = fixture().await;
    // The client is a temporary: dropped at the end of each statement.
    let sftp = alice(&f).await.sftp().await.unwrap();
    sftp.create_dir("kept").await.unwrap();
    assert!(sftp.try_exists("kept").await.unwrap());
    let mut shell = alice(&f).await.shell(80, 24).await.unwrap();
    shell.wait_for("size 80x24").await.unwrap();
    shell.send("q").await.unwrap();
    assert!(shell.wait().await.unwrap().success());
}

#[tokio::test]
async fn an_rsa_key_from_ssh_keygen_logs_in_signed_with_sha2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rsa");
    let status = ssh_framework_tests::openssh::program("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&path)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let rsa = PrivateKey::read_openssh_file(&path).unwrap();
    let app = App { alice_key: rsa.public_key().clone(), user_ca: testing::ed25519_key().public_key().clone(), files: tempfile::tempdir().unwrap() };
    let server = Server::builder().handlers(app).host_key(testing::ed25519_key()).build().await.unwrap();
    let mut client = TestClient::connect(&server).await.unwrap();
    assert!(client.login_key("alice", &rsa).await.unwrap().is_accepted());
}

#[tokio::test]
async fn a_process_reports_its_streams_status_and_end_as_they_arrive() {
    let f = fixture().await;
    let client = alice(&f).await;
    let mut process = client.session().exec("cat").await.unwrap();
    process.send("one ").await.unwrap();
    process.wait_until(|p| p.stdout() == b"one ").await.unwrap();
    assert_eq!(process.take_stdout(), b"one ");
    process.send("two").await.unwrap();
    process.wait_for("two").await.unwrap();
    assert_eq!(process.stdout(), b"two", "take_stdout emptied what came before");
    assert!(process.status().is_none() && !process.is_eof() && !process.is_closed());
    process.send_eof().await.unwrap();
    process.wait_until(|p| p.is_eof()).await.unwrap();
    process.wait_until(|p| p.is_closed()).await.unwrap();
    assert_eq!(process.status(), Some(&ExitStatus::SUCCESS));
    assert!(process.stderr().is_empty());

    let mut failing = client.session().exec("fail").await.unwrap();
    failing.wait_until(|p| !p.stderr().is_empty()).await.unwrap();
    assert_eq!(failing.stderr(), b"it went wrong\n");
}
