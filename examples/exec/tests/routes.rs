//! The exec example driven by OpenSSH's `ssh`: each route, its streams and
//! exit status, no shell between the client's words and a spawned program,
//! and what happens to a command no handler takes.

use example_exec::Tools;
use ssh_framework::{ChannelIo, Command, ExitStatus};
use ssh_framework_tests::openssh::{Ssh, SshOutput};
use ssh_framework_tests::server::TestServer;

async fn start() -> TestServer {
    TestServer::start(|b| b.handlers(Tools)).await
}

/// `ssh` as demo, quiet (LogLevel=error) so that stderr is the server's alone.
fn ssh(server: &TestServer) -> Ssh {
    server.ssh("demo").password("demo").option("LogLevel=error")
}

async fn run(server: &TestServer, command: &str) -> SshOutput {
    ssh(server).run(command).await
}

#[tokio::test]
async fn sum_adds_its_arguments() {
    let server = start().await;
    let out = run(&server, "sum 1 2 39").await;
    out.ok();
    assert_eq!(out.stdout_text(), "42\n");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[tokio::test]
async fn sum_reports_a_bad_word_on_stderr_with_exit_code_2() {
    let server = start().await;
    let out = run(&server, "sum 1 two").await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.stderr, "sum: not a number or too large: two\n");
}

#[tokio::test]
async fn the_route_is_the_first_word_only() {
    let server = start().await;
    let out = run(&server, "summary 1 2").await;
    assert_eq!(out.code, Some(127), "{out:?}");
    assert_eq!(out.stderr, "summary: command not found (try sum, echo or sort)\n");
}

#[tokio::test]
async fn echo_gets_shell_syntax_as_plain_words() {
    let server = start().await;
    let marker = server.dir().join("pwned");
    let m = marker.display();
    let out = run(&server, &format!("echo 'a; touch {m}' \"$(touch {m})\" `touch {m}` *")).await;
    out.ok();
    assert_eq!(out.stdout_text(), format!("a; touch {m} $(touch {m}) `touch {m}` *\n"));
    assert!(!marker.exists(), "a shell ran part of the command");
}

#[tokio::test]
async fn an_unclosed_quote_is_a_usage_error() {
    let server = start().await;
    let out = run(&server, "echo 'abc").await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr, "echo: the command line has an unclosed quote\n");
}

#[tokio::test]
async fn sort_sorts_the_clients_stdin() {
    let server = start().await;
    let out = ssh(&server).stdin(b"b\na\nc\n".to_vec()).run("sort -r").await;
    out.ok();
    assert_eq!(out.stdout_text(), "c\nb\na\n");
}

#[tokio::test]
async fn sort_streams_a_large_input_both_ways() {
    let server = start().await;
    // 400,000 lines, 2.8 MB each way: more than the 2 MiB channel window,
    // so both directions must wait for window; 7919 is prime, so the lines
    // are 0..400,000 shuffled.
    let lines: Vec<String> = (0..400_000u32).map(|n| format!("{:06}", (n * 7919) % 400_000)).collect();
    let input = lines.join("\n") + "\n";
    let out = ssh(&server).stdin(input.clone().into_bytes()).run("sort -n").await;
    out.ok();
    assert_eq!(out.stdout.len(), 2_800_000);
    let sorted: Vec<String> = (0..400_000u32).map(|n| format!("{n:06}")).collect();
    assert!(out.stdout_text() == sorted.join("\n") + "\n", "sort's output differs");
}

#[tokio::test]
async fn sort_refuses_an_option_that_names_a_file() {
    let server = start().await;
    let target = server.dir().join("written");
    let out = server
        .ssh("demo")
        .password("demo")
        .option("LogLevel=error")
        .stdin(b"x\n".to_vec())
        .run(&format!("sort -o {}", target.display()))
        .await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr, "sort: not allowed: -o (allowed: -r -n -u -f)\n");
    assert!(!target.exists());
}

#[tokio::test]
async fn an_unknown_command_is_not_found_with_exit_code_127() {
    let server = start().await;
    let out = run(&server, "ls -la").await;
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr, "ls: command not found (try sum, echo or sort)\n");
}

/// Only a named route, no catch-all.
struct OnlySum;

#[ssh_framework::server]
impl OnlySum {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> bool {
        user == "demo" && password == "demo"
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[exec("sum")]
    async fn sum(&self, _command: Command, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }
}

#[tokio::test]
async fn without_a_catch_all_an_unknown_command_is_refused() {
    let server = TestServer::start(|b| b.handlers(OnlySum)).await;
    run(&server, "sum").await.ok();
    let out = run(&server, "ls").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("exec request failed on channel 0"), "{out:?}");
}
