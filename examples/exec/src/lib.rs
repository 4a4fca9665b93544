//! Exec routing: a few commands on one server, each its own handler. `sum`
//! runs in-process; `echo` and `sort` spawn a program with the client's words
//! as separate arguments, never through a shell; any other command gets the
//! catch-all's "command not found".
//!
//! `main.rs` starts the server; the tests build the same [`Tools`] in-process.

use std::process::Stdio;

use ssh_framework::extract::User;
use ssh_framework::{ChannelIo, Command, ExitStatus};
use tokio::io::AsyncWriteExt;

/// The command server. It has no state: every handler works from its request.
#[derive(Debug, Default)]
pub struct Tools;

/// The options `sort` may be given: none that names a file (`-o`, `-T`,
/// `--files0-from`), so a client can only sort what it sends.
const SORT_OPTIONS: &[&str] = &["-r", "-n", "-u", "-f"];

#[ssh_framework::server]
impl Tools {
    #[auth(password)]
    async fn login(&self, user: &str, password: &str) -> bool {
        user == "demo" && password == "demo"
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    // ANCHOR: sum
    /// `sum 1 2 3` prints 6; a word that is not a number is an error on
    /// stderr and exit code 2.
    #[exec("sum")]
    async fn sum(&self, command: Command, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        let Ok(argv) = command.argv() else {
            io.stderr.write_all(b"sum: unclosed quote\n").await?;
            return Ok(ExitStatus::code(2));
        };
        let mut total: i64 = 0;
        // argv[0] is "sum" itself.
        for word in &argv[1..] {
            match word.parse::<i64>().ok().and_then(|n| total.checked_add(n)) {
                Some(sum) => total = sum,
                None => {
                    io.stderr.write_all(format!("sum: not a number or too large: {word}\n").as_bytes()).await?;
                    return Ok(ExitStatus::code(2));
                }
            }
        }
        io.stdout.write_all(format!("{total}\n").as_bytes()).await?;
        Ok(ExitStatus::SUCCESS)
    }
    // ANCHOR_END: sum

    // ANCHOR: echo
    /// `echo WORDS...` runs the `echo` program with the words as they were
    /// quoted: `echo 'a; rm -rf ~'` prints `a; rm -rf ~` and runs nothing else.
    #[exec("echo")]
    async fn echo(&self, command: Command, io: ChannelIo) -> std::io::Result<ExitStatus> {
        match command.argv() {
            Ok(argv) => spawn("echo", &argv[1..], io).await,
            Err(e) => refuse(io, &format!("echo: {e}")).await,
        }
    }
    // ANCHOR_END: echo

    // ANCHOR: sort
    /// `sort [-r|-n|-u|-f]...` sorts the client's stdin with the `sort`
    /// program; any other option is refused before anything runs.
    #[exec("sort")]
    async fn sort(&self, command: Command, io: ChannelIo) -> std::io::Result<ExitStatus> {
        let argv = match command.argv() {
            Ok(argv) => argv,
            Err(e) => return refuse(io, &format!("sort: {e}")).await,
        };
        if let Some(bad) = argv[1..].iter().find(|word| !SORT_OPTIONS.contains(&word.as_str())) {
            return refuse(io, &format!("sort: not allowed: {bad} (allowed: {})", SORT_OPTIONS.join(" "))).await;
        }
        spawn("sort", &argv[1..], io).await
    }
    // ANCHOR_END: sort

    // ANCHOR: catch_all
    /// Every command no named handler takes. Without this handler the exec
    /// request itself would be refused.
    #[exec]
    async fn not_found(&self, user: User, command: Command, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        tracing::info!(%user, program = command.program(), "unknown command");
        let message = format!("{}: command not found (try sum, echo or sort)\n", command.program());
        io.stderr.write_all(message.as_bytes()).await?;
        // 127, as a shell answers a command it cannot find.
        Ok(ExitStatus::code(127))
    }
    // ANCHOR_END: catch_all
}

/// A message on stderr and exit code 2 (a usage error).
async fn refuse(mut io: ChannelIo, message: &str) -> std::io::Result<ExitStatus> {
    io.stderr.write_all(format!("{message}\n").as_bytes()).await?;
    Ok(ExitStatus::code(2))
}

// ANCHOR: spawn
/// Runs `program` with `args` on the channel: the client's stdin to the
/// program's, its stdout and stderr back, its exit status as the channel's.
async fn spawn(program: &str, args: &[String], io: ChannelIo) -> std::io::Result<ExitStatus> {
    let mut child = tokio::process::Command::new(program)
        // One argv entry per word: no shell reads them, so `;`, `$(...)`,
        // `*` and quotes mean nothing here.
        .args(args)
        // Not the server's environment: it may hold secrets.
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A client that disconnects drops this future, which kills the program.
        .kill_on_drop(true)
        .spawn()?;
    let (mut stdin, mut stdout, mut stderr, _events) = io.split();
    let (mut to_child, mut from_child, mut errors) =
        (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    // Its own task: a program that never reads stdin (echo) must not wait
    // for the client's EOF. Dropping `to_child` at the end closes its stdin.
    let feed = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stdin, &mut to_child).await;
    });
    let (out, err) = tokio::join!(tokio::io::copy(&mut from_child, &mut stdout), tokio::io::copy(&mut errors, &mut stderr));
    feed.abort();
    out?;
    err?;
    let status = child.wait().await?;
    // A program killed by a signal: 128 + its number, as a shell reports it.
    let code = status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    Ok(ExitStatus::code(code as u32))
}
// ANCHOR_END: spawn
