//! `idle-sessions`: the server's resident set per idle authenticated session.
//!
//! For each target and count, in this order and each on a fresh server:
//!
//! 1. the server under test starts as a child process (this binary's hidden
//!    `serve`, or the mini-sshd binary) and its resident set, once stable, is
//!    the baseline;
//! 2. a second child process (this binary's hidden `client`: russh's client
//!    on one current-thread runtime) opens N connections in bounded parallel
//!    batches, each authenticated with a key and holding one `session`
//!    channel with a `shell` request granted, nothing moving;
//! 3. once all are up and the server's resident set is stable again, the
//!    growth over the baseline, divided by N, is the figure: one line
//!    `IDLE target=.. sessions=.. rss_kib=.. per_session_kib=..` on stdout,
//!    the detail (`VmRSS`, `RssAnon`, login rate) on stderr;
//! 4. both children are stopped (stdin closed, then killed).
//!
//! Only loopback is used; every step has a deadline.

mod client;
mod framework;
mod proc;
mod raw;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};


#[derive(Debug, Parser)]
#[command(about = "Server resident set per idle authenticated session (shell open, nothing moving)")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Session counts to measure, comma separated; each on a fresh server.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    counts: Vec<usize>,
    /// Servers to measure, comma separated.
    #[arg(long = "target", alias = "targets", value_delimiter = ',', default_value = "framework,raw")]
    targets: Vec<Target>,
    /// Connections being set up at once by the client.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
    /// The mini-sshd binary [default: `mini-sshd` beside this one].
    #[arg(long)]
    mini_sshd: Option<PathBuf>,
    /// Seconds the client may take to open all sessions.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Run the server under heaptrack, writing its profile into this directory
    /// (`heaptrack_print` then names the allocation sites the sessions hold).
    #[arg(long)]
    heaptrack: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Internal: run a server under test (prints `PORT n PID p`, stops at stdin EOF).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        target: Target,
        #[arg(long)]
        host_key: PathBuf,
        #[arg(long)]
        authorized_key: PathBuf,
        /// The connection cap (the framework's `MaxConnections`).
        #[arg(long)]
        max_connections: usize,
    },
    /// Internal: open idle sessions (prints `UP n` as they come, then `READY n failed=f`; exits at stdin EOF).
    #[command(hide = true)]
    Client {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        parallel: usize,
    },
}

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Target {
    /// ssh_framework's server with a `#[shell]` handler reading stdin to EOF.
    Framework,
    /// A hand-written russh `Handler` doing the same, with the framework's russh settings.
    Raw,
    /// The mini-sshd example: each shell is a real `/bin/sh`; only the server process is counted.
    MiniSshd,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Framework => "framework",
            Target::Raw => "raw",
            Target::MiniSshd => "mini-sshd",
        }
    }
}

/// mini-sshd's shells are processes of their own: this many at most.
const MINI_SSHD_MAX: usize = 1000;
/// The user the client logs in as.
const USER: &str = "idle";

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_open_file_limit();
    match cli.role {
        Some(Role::Serve { target, host_key, authorized_key, max_connections }) => {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            let result = runtime.block_on(async {
                match target {
                    Target::Framework => framework::serve(&host_key, &authorized_key, max_connections).await,
                    Target::Raw => raw::serve(&host_key, &authorized_key).await,
                    Target::MiniSshd => Err("mini-sshd runs as its own binary".into()),
                }
            });
            report(result)
        }
        Some(Role::Client { port, key, count, parallel }) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            report(runtime.block_on(client::run(port, &key, count, parallel)))
        }
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            report(runtime.block_on(drive(cli.run)))
        }
    }
}

fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idle-sessions: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft open-file limit to the hard one: 10,000 sessions are
/// 10,000 sockets on each side.
fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current.is_some_and(|soft| soft < hard)
    {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) });
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

async fn drive(args: RunArgs) -> Result<(), String> {
    let nofile = raise_open_file_limit();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key = dir.path().join("client_ed25519_key");
    run_status("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", "idle-sessions", "-f", &key.display().to_string()]).await?;
    let authorized = dir.path().join("client_ed25519_key.pub");
    let date = std::process::Command::new("date").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    eprintln!("# idle-sessions, {}, open-file limit {nofile}", date.unwrap_or_default());
    for &target in &args.targets {
        let mut done = Vec::new();
        for &count in &args.counts {
            let mut count = count;
            if target == Target::MiniSshd && count > MINI_SSHD_MAX {
                eprintln!("# mini-sshd: {count} sessions would be {count} shell processes; capped at {MINI_SSHD_MAX}");
                count = MINI_SSHD_MAX;
            }
            if done.contains(&count) {
                continue;
            }
            done.push(count);
            // Each side holds one socket per session, plus listeners, pipes, the runtime's own.
            if count as u64 + 64 > nofile {
                return Err(format!("{count} sessions need more than the open-file limit of {nofile} descriptors"));
            }
            measure(&args, target, count, dir.path(), &key, &authorized).await?;
        }
    }
    Ok(())
}

/// A child process stopped when dropped: stdin closed first, then killed.
struct Process {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Process {
    fn spawn(command: &mut Command, stderr: Stdio) -> Result<Process, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {command:?}: {e}"))?;
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        Ok(Process { child, lines })
    }

    /// The next line on stdout that `parse` accepts, within `timeout`.
    async fn expect<T>(&mut self, what: &str, timeout: Duration, mut parse: impl FnMut(&str) -> Option<T>) -> Result<T, String> {
        let wait = async {
            while let Some(line) = self.lines.next_line().await.map_err(|e| e.to_string())? {
                if let Some(t) = parse(&line) {
                    return Ok(t);
                }
            }
            Err(format!("the child ended before {what}"))
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| format!("timed out after {timeout:?} waiting for {what}"))?
    }

    /// Closes stdin, waits up to 5 s for the exit, then kills.
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

async fn measure(args: &RunArgs, target: Target, count: usize, dir: &Path, key: &Path, authorized: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let host_key = dir.join(format!("host_key_{}", target.name()));
    let log = std::fs::File::create(dir.join(format!("server-{}.log", target.name()))).map_err(|e| e.to_string())?;
    // Room for the count plus the client's retries and a margin.
    let max_connections = count + 1000;
    let mut command = match target {
        Target::Framework | Target::Raw => {
            let mut c = wrapped(args);
            c.arg(&exe).arg("serve").arg("--target").arg(target.name());
            c.arg("--host-key").arg(&host_key).arg("--authorized-key").arg(authorized);
            c.arg("--max-connections").arg(max_connections.to_string());
            c
        }
        Target::MiniSshd => {
            let binary = args.mini_sshd.clone().unwrap_or_else(|| exe.with_file_name("mini-sshd"));
            if !binary.exists() {
                eprintln!("# mini-sshd: {} not found (cargo build --release -p example-mini-sshd); skipped", binary.display());
                return Ok(());
            }
            let root = dir.join("root");
            std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
            let mut c = wrapped(args);
            c.arg(binary).arg("--listen=127.0.0.1:0");
            c.arg(format!("--host-key={}", host_key.display()));
            c.arg(format!("--root={}", root.display()));
            c.arg(format!("--authorized-keys={USER}:{}", authorized.display()));
            c.arg(format!("--max-connections={max_connections}"));
            // Its logs at info cost memory of their own (a line per login); keep them.
            c.env("RUST_LOG", "warn");
            c
        }
    };
    let mut server = Process::spawn(&mut command, Stdio::from(log))?;
    let (port, pid) = server
        .expect("the server to listen", Duration::from_secs(60), |line| {
            if let Some(rest) = line.strip_prefix("PORT ") {
                let mut words = rest.split_whitespace();
                let port: u16 = words.next()?.parse().ok()?;
                let pid: u32 = words.nth(1)?.parse().ok()?;
                return Some((port, pid));
            }
            // mini-sshd: "mini-sshd listening on 127.0.0.1:PORT (...)"; its pid is the child's unless wrapped.
            let addr = line.split_once("listening on ")?.1.split_whitespace().next()?;
            let port = addr.rsplit_once(':')?.1.parse().ok()?;
            Some((port, 0))
        })
        .await?;
    let pid = if pid != 0 { pid } else { server_pid(&server, args)? };
    let status = format!("/proc/{pid}/status");
    let before = proc::stable(&status).await?;

    let started = Instant::now();
    let mut client = Process::spawn(
        Command::new(&exe)
            .arg("client")
            .arg("--port")
            .arg(port.to_string())
            .arg("--key")
            .arg(key)
            .arg("--count")
            .arg(count.to_string())
            .arg("--parallel")
            .arg(args.parallel.to_string()),
        Stdio::inherit(),
    )?;
    let timeout = Duration::from_secs(args.timeout);
    let (up, failed) = client
        .expect("the client's sessions", timeout, |line| {
            let rest = line.strip_prefix("READY ")?;
            let (up, failed) = rest.split_once(" failed=")?;
            Some((up.parse::<usize>().ok()?, failed.parse::<usize>().ok()?))
        })
        .await?;
    let setup = started.elapsed();
    let after = proc::stable(&status).await?;
    let children = if target == Target::MiniSshd { proc::children(pid).len() } else { 0 };

    let delta_kib = after.rss_kib.saturating_sub(before.rss_kib);
    let per = if up > 0 { delta_kib as f64 / up as f64 } else { 0.0 };
    println!("IDLE target={} sessions={up} rss_kib={delta_kib} per_session_kib={per:.1}", target.name());
    eprintln!(
        "#   {}: {up} sessions up ({failed} failed) in {:.1} s ({:.0} logins/s); server VmRSS {} -> {} KiB, RssAnon {} -> {} KiB \
         ({:.1} KiB/session anonymous), VmHWM {} KiB{}",
        target.name(),
        setup.as_secs_f64(),
        up as f64 / setup.as_secs_f64(),
        before.rss_kib,
        after.rss_kib,
        before.anon_kib,
        after.anon_kib,
        after.anon_kib.saturating_sub(before.anon_kib) as f64 / up.max(1) as f64,
        after.hwm_kib,
        if target == Target::MiniSshd { format!("; {children} child processes (not counted)") } else { String::new() },
    );
    client.stop().await;
    server.stop().await;
    Ok(())
}

/// The command that starts the server: under heaptrack when asked.
fn wrapped(args: &RunArgs) -> Command {
    match &args.heaptrack {
        Some(dir) => {
            let mut c = Command::new("heaptrack");
            c.arg("-o").arg(dir.join(format!("heaptrack.idle.{}", std::process::id())));
            c
        }
        None => {
            let mut c = Command::new("env");
            c.arg("--");
            c
        }
    }
}

/// The server's pid for a server that does not print it (mini-sshd): the
/// child itself, or under heaptrack the one process below it.
fn server_pid(server: &Process, args: &RunArgs) -> Result<u32, String> {
    let pid = server.child.id().ok_or("the server exited")?;
    if args.heaptrack.is_none() {
        return Ok(pid);
    }
    proc::children(pid).into_iter().next().ok_or_else(|| "heaptrack started no server process".to_owned())
}

async fn run_status(program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program).args(args).status().await.map_err(|e| format!("{program}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{program} {args:?}: {status}")) }
}
