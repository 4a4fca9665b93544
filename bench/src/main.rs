//! Run with: cargo build --release -p ssh-framework-bench -p example-mini-sshd && target/release/ssh-framework-bench
//!
//! The one benchmark command. In one interleaved run it drives OpenSSH's
//! sshd, a hand-written russh server, a server built with ssh_framework (both
//! with in-process data) and the real mini-sshd (spawning `sh -c` as sshd
//! does) with the OpenSSH client and russh's client, and prints one markdown
//! report: throughput over the data phase with setup apart, server CPU per GiB
//! (process tree, children included) over the same interval, logins, SFTP and
//! memory per idle session. Each server runs in its own child process, killed
//! at the end.

mod client;
mod cpu;
mod exec;
mod framework_server;
mod mini_sshd;
mod raw_server;
mod report;
mod rust_client;
mod sshd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

use crate::client::{Client, Logins, Transfer};
use crate::exec::ExecMode;

#[derive(Debug, Parser)]
#[command(about = "OpenSSH sshd vs raw russh vs ssh-framework vs mini-sshd: data-phase throughput, CPU per GiB, logins, SFTP, memory")]
struct Cli {
    #[command(subcommand)]
    serve: Option<Serve>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Bytes per transfer, each direction, pipes and pty (suffixes K, M, G: powers of 1024).
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    size: u64,
    /// Bytes of the SFTP file (get and put).
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    sftp_size: u64,
    /// Rounds: each round runs every transfer of every server once, in an
    /// order rotated by one server per round; medians and min-max are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Ciphers, comma separated, each passed with `-c`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com"
    )]
    ciphers: Vec<String>,
    /// Servers to measure, comma separated (default: sshd,raw,framework,mini-sshd,raw-spawn;
    /// framework-spawn only when named).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<Target>,
    /// Sequential logins per server with the OpenSSH client (`ssh ... true`, one process each).
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// Sequential logins per server with russh's client in the bench: no
    /// process start per login, so many fit the budget, and the server CPU per
    /// login is measured to a few microseconds despite the 10 ms clock tick.
    #[arg(long, default_value_t = 2000)]
    rust_logins: usize,
    /// Total logins of the parallel test per server (OpenSSH client).
    #[arg(long, default_value_t = 200)]
    parallel_logins: usize,
    /// Logins in flight at once in the parallel test.
    #[arg(long, default_value_t = 50)]
    parallel: usize,
    /// Seconds after which a login loop starts no new login.
    #[arg(long, default_value_t = 60)]
    budget: u64,
    /// Timeout in seconds for one transfer.
    #[arg(long, default_value_t = 300)]
    transfer_timeout: u64,
    /// Timeout in seconds for one login.
    #[arg(long, default_value_t = 30)]
    login_timeout: u64,
    /// The sshd binary; skipped when it does not exist.
    #[arg(long, default_value = "/usr/sbin/sshd")]
    sshd: PathBuf,
    /// Keep sshd's MaxStartups default (10:30:100) and mini-sshd's and the framework's
    /// (10:30:100 and 100:30:1000), which drop some of 50 parallel unauthenticated
    /// connections. By default they are raised to 1000, so the parallel test measures
    /// login speed, not the drop policy.
    #[arg(long)]
    default_max_startups: bool,
    /// Session counts for `idle-sessions --counts` (memory per idle session).
    #[arg(long, default_value = "1000,10000")]
    idle_counts: String,
    /// Servers for idle-sessions (`--target LIST`, e.g. `framework,raw,mini-sshd`); its own default when not given.
    #[arg(long)]
    idle_targets: Option<String>,
    /// Skip the memory rows (do not run idle-sessions).
    #[arg(long)]
    no_idle: bool,
    /// Timeout in seconds for the idle-sessions run.
    #[arg(long, default_value_t = 900)]
    idle_timeout: u64,
    /// Skip the SFTP rows.
    #[arg(long)]
    no_sftp: bool,
    /// Skip the login rows.
    #[arg(long)]
    no_logins: bool,
    /// Warm-up before the rounds: every exec transfer of every server and cipher once at this size, not recorded (0: none).
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    warmup: u64,
    /// Smoke run: 64 MiB transfers, 20 logins, one round, idle sessions at 1000 only.
    #[arg(long)]
    quick: bool,
    /// Also write the report into bench/README.md, under "## Latest results"
    /// (replacing that section, keeping the rest).
    #[arg(long)]
    write_readme: bool,
    /// The README `--write-readme` writes to.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))]
    readme: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Serve {
    /// Internal: run one of the benchmark's own servers (prints `PORT n`, stops at stdin EOF).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        target: Target,
        #[arg(long)]
        host_key: PathBuf,
        #[arg(long)]
        authorized_key: PathBuf,
        #[arg(long)]
        max_startups: Option<usize>,
    },
}

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub(crate) enum Target {
    /// OpenSSH's sshd.
    Sshd,
    /// A hand-written russh server, tuned like the framework, data in-process.
    Raw,
    /// A `#[server]` built with ssh_framework, data in-process.
    Framework,
    /// The flagship mini-sshd binary, spawning `sh -c`.
    MiniSshd,
    /// The hand-written russh server spawning `sh -c` with pipes (a reference).
    RawSpawn,
    /// The framework server spawning `sh -c` with pipes (only when named).
    FrameworkSpawn,
}

impl Target {
    const DEFAULT: [Target; 5] = [Target::Sshd, Target::Raw, Target::Framework, Target::MiniSshd, Target::RawSpawn];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Sshd => "sshd",
            Target::Raw => "raw",
            Target::Framework => "framework",
            Target::MiniSshd => "mini-sshd",
            Target::RawSpawn => "raw-spawn",
            Target::FrameworkSpawn => "framework-spawn",
        }
    }

    fn in_process(self) -> bool {
        matches!(self, Target::Framework | Target::Raw)
    }

    /// Servers that run commands on a pty.
    pub(crate) fn pty(self) -> bool {
        matches!(self, Target::Sshd | Target::MiniSshd | Target::RawSpawn)
    }

    /// Servers with an SFTP subsystem.
    pub(crate) fn sftp(self) -> bool {
        matches!(self, Target::Sshd | Target::MiniSshd)
    }

    /// Each prints READY once it runs (`sink` too), and the bench writes nothing before.
    fn upload_command(self, bytes: u64, tty: bool) -> String {
        if tty {
            format!("stty raw -echo; echo READY; head -c {bytes} > /dev/null")
        } else if self.in_process() {
            "sink".into()
        } else {
            "echo READY; cat > /dev/null".into()
        }
    }

    fn download_command(self, bytes: u64, tty: bool) -> String {
        if tty {
            format!("stty raw -echo; head -c {bytes} /dev/zero")
        } else if self.in_process() {
            format!("source {bytes}")
        } else {
            format!("head -c {bytes} /dev/zero")
        }
    }
}

/// What one measurement moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    PipeUp,
    PipeDown,
    PtyUp,
    PtyDown,
    SftpGet,
    SftpPut,
}

impl Kind {
    pub(crate) const EXEC: [Kind; 4] = [Kind::PipeUp, Kind::PipeDown, Kind::PtyUp, Kind::PtyDown];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::PipeUp => "pipe up",
            Kind::PipeDown => "pipe down",
            Kind::PtyUp => "pty up",
            Kind::PtyDown => "pty down",
            Kind::SftpGet => "sftp get",
            Kind::SftpPut => "sftp put",
        }
    }
}

/// The transfers of one server, cipher and kind, one per round.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    pub(crate) mbps: Vec<f64>,
    pub(crate) setup_ms: Vec<f64>,
    pub(crate) cpu: Vec<f64>,
    pub(crate) client_cpu: Vec<f64>,
    pub(crate) failed: usize,
}

impl Samples {
    fn add(&mut self, t: &Transfer) {
        self.mbps.push(t.mb_per_s());
        self.setup_ms.push(t.setup.as_secs_f64() * 1e3);
        self.cpu.extend(t.server_cpu_per_gib());
        self.client_cpu.extend(t.client_cpu_per_gib());
    }
}

/// The login figures of one server.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LoginRow {
    pub(crate) openssh: Option<Logins>,
    pub(crate) russh: Option<Logins>,
    pub(crate) parallel: Option<Logins>,
}

/// One `IDLE` line of idle-sessions.
#[derive(Debug, Clone)]
pub(crate) struct Idle {
    pub(crate) target: String,
    pub(crate) sessions: String,
    pub(crate) rss_kib: String,
    pub(crate) per_session_kib: String,
}

/// Everything the report is made of.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) ciphers: Vec<String>,
    pub(crate) targets: Vec<Target>,
    pub(crate) cells: HashMap<(usize, Target, Kind), Samples>,
    /// Negotiated key exchange, host key and cipher, per cipher and server (or the error).
    pub(crate) probes: HashMap<(usize, Target), Result<String, String>>,
    pub(crate) logins: HashMap<Target, LoginRow>,
    /// `None`: idle-sessions not built; `Some(Err)`: it failed.
    pub(crate) idle: Option<Result<Vec<Idle>, String>>,
    pub(crate) header: String,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let s = s.strip_suffix("iB").or_else(|| s.strip_suffix('B')).unwrap_or(s);
    let (digits, shift) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits.trim().parse::<u64>().map(|n| n << shift).map_err(|e| format!("{s:?}: {e}"))
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn main() {
    let cli = Cli::parse();
    match cli.serve {
        Some(Serve::Serve { target, host_key, authorized_key, max_startups }) => {
            // Servers log (to their log file in the temporary directory) only when RUST_LOG is set.
            if std::env::var_os("RUST_LOG").is_some() {
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                    .with_writer(std::io::stderr)
                    .init();
            }
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
            if let Err(e) = runtime.block_on(serve(target, &host_key, &authorized_key, max_startups)) {
                eprintln!("serve: {e}");
                std::process::exit(1);
            }
        }
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
            if let Err(e) = runtime.block_on(run(cli.run)) {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// The child-process side: one server until stdin closes.
async fn serve(target: Target, host_key: &Path, authorized_key: &Path, max_startups: Option<usize>) -> Result<(), String> {
    let authorized = russh::keys::load_public_key(authorized_key).map_err(|e| e.to_string())?;
    let stop = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let ready = |port: u16| println!("PORT {port}");
    let mode = if target.in_process() { ExecMode::InProcess } else { ExecMode::Spawn };
    match target {
        Target::Framework | Target::FrameworkSpawn => {
            framework_server::serve(mode, host_key, authorized, max_startups, ready, stop).await
        }
        Target::Raw | Target::RawSpawn => {
            let key = russh::keys::PrivateKey::read_openssh_file(host_key).map_err(|e| e.to_string())?;
            raw_server::serve(mode, key, authorized, ready, stop).await
        }
        Target::Sshd | Target::MiniSshd => Err(format!("{} is not served by this program", target.name())),
    }
}

/// A running server under test.
#[derive(Debug)]
struct Running {
    target: Target,
    port: u16,
    child: Child,
}

async fn start_own(target: Target, dir: &Path, host_key: &Path, authorized: &Path, max_startups: Option<usize>) -> Result<Running, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join(format!("{}.log", target.name()))).map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("serve")
        .arg("--target")
        .arg(target.to_possible_value().expect("a named target").get_name())
        .arg("--host-key")
        .arg(host_key)
        .arg("--authorized-key")
        .arg(authorized);
    if let Some(n) = max_startups {
        command.arg("--max-startups").arg(n.to_string());
    }
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(log).kill_on_drop(true).spawn().map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).read_line(&mut line)).await;
    let port = match read {
        Ok(Ok(_)) => line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()),
        _ => None,
    };
    match port {
        Some(port) => Ok(Running { target, port, child }),
        None => Err(format!("{} did not start (see {}.log)", target.name(), target.name())),
    }
}

async fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out =
        tokio::process::Command::new(program).args(args).stdin(Stdio::null()).output().await.map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} {args:?}: {} {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_owned())
}

/// Writes `bytes` bytes of a fixed pseudo-random pattern (real blocks, not a sparse file).
fn write_file(path: &Path, bytes: u64) -> Result<(), String> {
    use std::io::Write;
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    file.flush().map_err(|e| e.to_string())
}

/// Machine and software, for the report's header.
async fn describe_machine() -> String {
    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).await.unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = sh("uname", &["-sr"]).await.unwrap_or_default();
    let ssh = sh("ssh", &["-V"]).await.unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map(|kib| format!("{} GiB", kib >> 20))
        .unwrap_or_default();
    let commit = sh("git", &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"]).await.unwrap_or_else(|_| "unknown".into());
    format!(
        "Run of {date}. Machine: {cores} cores ({cpu}), {memory}, {kernel}, load average {load} at start. \
         OpenSSH: {ssh} (client, sshd and sftp-server). ssh-framework at commit {commit}, russh 0.65.1.",
        load = load()
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Everything the servers share: keys, the mini-sshd root, SFTP files.
struct Setup {
    dir: tempfile::TempDir,
    host_key: PathBuf,
    client_key: PathBuf,
    authorized: PathBuf,
    root: PathBuf,
    user: String,
}

async fn run(mut args: RunArgs) -> Result<(), String> {
    if args.quick {
        args.size = 64 << 20;
        args.sftp_size = 64 << 20;
        args.logins = 20;
        args.rust_logins = 200;
        args.parallel_logins = 20;
        args.rounds = 1;
        args.idle_counts = "1000".into();
    }
    let targets: Vec<Target> = if args.targets.is_empty() { Target::DEFAULT.to_vec() } else { args.targets.clone() };
    if targets.contains(&Target::MiniSshd) {
        mini_sshd::binary()?;
    }
    sh("ssh", &["-V"]).await.map_err(|e| format!("the OpenSSH client is needed: {e}"))?;
    let machine = describe_machine().await;

    // In memory when /dev/shm is there: the SFTP files then cost no disk writeback.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::Builder::new().prefix("ssh-bench").tempdir_in(shm) } else { tempfile::tempdir() }
        .map_err(|e| e.to_string())?;
    let host_key = dir.path().join("host_ed25519_key");
    let client_key = dir.path().join("client_ed25519_key");
    for key in [&host_key, &client_key] {
        sh("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", &key.display().to_string()]).await?;
    }
    let authorized = dir.path().join("authorized_keys");
    std::fs::copy(client_key.with_extension("pub"), &authorized).map_err(|e| e.to_string())?;
    let root = dir.path().join("root");
    std::fs::create_dir(&root).map_err(|e| e.to_string())?;
    let user = sh("id", &["-un"]).await.unwrap_or_else(|_| "root".into());
    let setup = Setup { dir, host_key, client_key, authorized, root, user };
    let max_startups = (!args.default_max_startups).then_some(1000);

    let mut servers: Vec<Running> = Vec::new();
    for &target in &targets {
        let started = match target {
            Target::Sshd if !args.sshd.exists() => Err(format!("{} not found", args.sshd.display())),
            Target::Sshd => sshd::start(&args.sshd, setup.dir.path(), &setup.host_key, &setup.authorized, max_startups)
                .await
                .map(|s| Running { target, port: s.port, child: s.child }),
            Target::MiniSshd => {
                mini_sshd::start(setup.dir.path(), &setup.root, &setup.host_key, &setup.user, &setup.authorized, max_startups)
                    .await
                    .map(|(child, port)| Running { target, port, child })
            }
            _ => start_own(target, setup.dir.path(), &setup.host_key, &setup.authorized, max_startups).await,
        };
        match started {
            Ok(running) => {
                eprintln!("started {} on port {} (pid {:?})", target.name(), running.port, running.child.id());
                servers.push(running);
            }
            Err(e) => eprintln!("{} skipped: {e}", target.name()),
        }
    }

    let mut results = Results { ciphers: args.ciphers.clone(), targets: servers.iter().map(|s| s.target).collect(), ..Default::default() };
    let timeout = Duration::from_secs(args.transfer_timeout);
    let login_timeout = Duration::from_secs(args.login_timeout);
    let client = |server: &Running, cipher: Option<&str>| Client {
        key: setup.client_key.clone(),
        user: setup.user.clone(),
        port: server.port,
        cipher: cipher.map(str::to_owned),
    };

    // Check every server works with every cipher and sends exactly what was asked for.
    for (c, cipher) in args.ciphers.iter().enumerate() {
        for server in &servers {
            let check = 1 << 20;
            let probe = match client(server, Some(cipher)).probe(&server.target.download_command(check, false), login_timeout).await {
                Ok((n, algorithms)) if n == check => Ok(algorithms),
                Ok((n, _)) => Err(format!("downloaded {n} bytes instead of {check}")),
                Err(e) => Err(e),
            };
            if let Err(e) = &probe {
                eprintln!("  {} with {cipher}: {e}", server.target.name());
            } else if args.warmup > 0 {
                let client = client(server, Some(cipher));
                for kind in Kind::EXEC {
                    let tty = matches!(kind, Kind::PtyUp | Kind::PtyDown);
                    if tty && !server.target.pty() {
                        continue;
                    }
                    let (target, n) = (server.target, args.warmup);
                    let warm = match kind {
                        Kind::PipeUp | Kind::PtyUp => client.upload(&target.upload_command(n, tty), n, tty, None, timeout).await,
                        _ => client.download(&target.download_command(n, tty), n, tty, None, timeout).await,
                    };
                    if let Err(e) = warm {
                        eprintln!("  warm-up {} {} with {cipher}: {e}", target.name(), kind.name());
                    }
                }
            }
            results.probes.insert((c, server.target), probe);
        }
    }

    let sftp_ready = !args.no_sftp && servers.iter().any(|s| s.target.sftp());
    if sftp_ready {
        eprintln!("writing the {} MiB SFTP files", args.sftp_size >> 20);
        write_file(&setup.root.join("sftp-source"), args.sftp_size)?;
        write_file(&setup.dir.path().join("local-source"), args.sftp_size)?;
    }

    for round in 0..args.rounds {
        for (c, cipher) in args.ciphers.iter().enumerate() {
            let n = servers.len();
            for k in 0..n {
                let server = &servers[(k + round + c) % n];
                if !matches!(results.probes.get(&(c, server.target)), Some(Ok(_))) {
                    continue;
                }
                let client = client(server, Some(cipher));
                let pid = server.child.id();
                for kind in Kind::EXEC {
                    let tty = matches!(kind, Kind::PtyUp | Kind::PtyDown);
                    if tty && !server.target.pty() {
                        continue;
                    }
                    let outcome = match kind {
                        Kind::PipeUp | Kind::PtyUp => {
                            client.upload(&server.target.upload_command(args.size, tty), args.size, tty, pid, timeout).await
                        }
                        _ => client.download(&server.target.download_command(args.size, tty), args.size, tty, pid, timeout).await,
                    };
                    record(&mut results, round, c, cipher, server.target, kind, outcome);
                }
                if sftp_ready && server.target.sftp() {
                    let (remote_source, remote_target) = if server.target == Target::Sshd {
                        (setup.root.join("sftp-source").display().to_string(), setup.root.join("sftp-target").display().to_string())
                    } else {
                        // mini-sshd serves its root as the SFTP jail.
                        ("sftp-source".to_owned(), "sftp-target".to_owned())
                    };
                    let local_target = setup.dir.path().join("local-target");
                    let batch = setup.dir.path().join("batch");
                    let get = client
                        .sftp_transfer(&batch, &format!("get {remote_source} {}", local_target.display()), args.sftp_size, pid, timeout)
                        .await
                        .and_then(|t| check_size(&local_target, args.sftp_size).map(|()| t));
                    record(&mut results, round, c, cipher, server.target, Kind::SftpGet, get);
                    let local_source = setup.dir.path().join("local-source");
                    let put = client
                        .sftp_transfer(&batch, &format!("put {} {remote_target}", local_source.display()), args.sftp_size, pid, timeout)
                        .await
                        .and_then(|t| check_size(&setup.root.join("sftp-target"), args.sftp_size).map(|()| t));
                    record(&mut results, round, c, cipher, server.target, Kind::SftpPut, put);
                    let _ = std::fs::remove_file(&local_target);
                    let _ = std::fs::remove_file(setup.root.join("sftp-target"));
                }
            }
        }
    }

    if !args.no_logins {
        let budget = Duration::from_secs(args.budget);
        let key = Arc::new(russh::keys::load_secret_key(&setup.client_key, None).map_err(|e| format!("client key: {e}"))?);
        for server in &servers {
            if !results.probes.iter().any(|((_, t), p)| *t == server.target && p.is_ok()) {
                continue;
            }
            // The client's default cipher: logins hardly depend on it.
            let client = client(server, None);
            let pid = server.child.id();
            let openssh = client.logins_sequential("true", args.logins, budget, login_timeout, pid).await;
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
            let russh =
                rust_client::logins_sequential(addr, &setup.user, key.clone(), args.rust_logins, budget, login_timeout, pid).await;
            let parallel = Arc::new(client).logins_parallel("true", args.parallel_logins, args.parallel, budget, login_timeout).await;
            eprintln!(
                "  logins {:<16} ssh {:.1}/s ({} ok, {} failed, {} CPU ms each)  russh {:.1}/s ({} ok, {} failed, {} CPU ms each)  parallel {:.1}/s ({} ok, {} failed)",
                server.target.name(),
                openssh.rate(),
                openssh.ok,
                openssh.failed,
                report::fmt2(openssh.cpu_ms),
                russh.rate(),
                russh.ok,
                russh.failed,
                report::fmt2(russh.cpu_ms),
                parallel.rate(),
                parallel.ok,
                parallel.failed,
            );
            results.logins.insert(server.target, LoginRow { openssh: Some(openssh), russh: Some(russh), parallel: Some(parallel) });
        }
    }

    for mut server in servers {
        let _ = server.child.kill().await;
    }

    if !args.no_idle {
        results.idle = idle_sessions(&args.idle_counts, args.idle_targets.as_deref(), Duration::from_secs(args.idle_timeout)).await;
    }

    results.header = format!(
        "{machine} Load average at the end: {}.\n\n\
         Transfers of {} MiB each way (after a warm-up of every exec transfer at {} MiB), SFTP files of {} MiB, {} round(s); logins: {} sequential with OpenSSH's client and {} with russh's, \
         {} parallel ({} at once), loops stop after {} s. MaxStartups: {}.",
        load(),
        args.size >> 20,
        args.warmup >> 20,
        args.sftp_size >> 20,
        args.rounds,
        args.logins,
        args.rust_logins,
        args.parallel_logins,
        args.parallel,
        args.budget,
        if args.default_max_startups { "each server's default" } else { "1000 for sshd, mini-sshd and the framework" }
    );
    let text = report::render(&results);
    print!("{text}");
    if args.write_readme {
        report::write_readme(&args.readme, &text)?;
        eprintln!("wrote {}", args.readme.display());
    }
    drop(setup);
    Ok(())
}

fn check_size(path: &Path, bytes: u64) -> Result<(), String> {
    let got = std::fs::metadata(path).map(|m| m.len()).map_err(|e| format!("{}: {e}", path.display()))?;
    if got == bytes { Ok(()) } else { Err(format!("{}: {got} bytes instead of {bytes}", path.display())) }
}

fn record(results: &mut Results, round: usize, c: usize, cipher: &str, target: Target, kind: Kind, outcome: Result<Transfer, String>) {
    let cell = results.cells.entry((c, target, kind)).or_default();
    match outcome {
        Ok(t) => {
            cell.add(&t);
            eprintln!(
                "  round {} {cipher:<30} {:<16} {:<9} {:>7.1} MB/s  setup {:>6.1} ms  server {:>5} CPU s/GiB  client {:>5} CPU s/GiB",
                round + 1,
                target.name(),
                kind.name(),
                t.mb_per_s(),
                t.setup.as_secs_f64() * 1e3,
                report::fmt2(t.server_cpu_per_gib()),
                report::fmt2(t.client_cpu_per_gib()),
            );
        }
        Err(e) => {
            cell.failed += 1;
            eprintln!("  round {} {cipher} {} {}: {e}", round + 1, target.name(), kind.name());
        }
    }
}

/// Runs `idle-sessions --counts COUNTS` from beside this executable, if it is
/// there, and collects its `IDLE ...` lines.
async fn idle_sessions(counts: &str, targets: Option<&str>, timeout: Duration) -> Option<Result<Vec<Idle>, String>> {
    let exe = std::env::current_exe().ok()?.with_file_name("idle-sessions");
    if !exe.exists() {
        eprintln!("idle-sessions not built");
        return None;
    }
    let mut command = tokio::process::Command::new(&exe);
    command.arg("--counts").arg(counts);
    if let Some(targets) = targets {
        command.arg("--target").arg(targets);
    }
    eprintln!("running {command:?}");
    let child = match command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Some(Err(format!("{}: {e}", exe.display()))),
    };
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Some(Err(e.to_string())),
        Err(_) => return Some(Err(format!("timed out after {timeout:?}"))),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Idle> = text.lines().filter_map(parse_idle).collect();
    if !output.status.success() && lines.is_empty() {
        return Some(Err(format!("idle-sessions: {}", output.status)));
    }
    Some(Ok(lines))
}

/// `IDLE target=<name> sessions=<n> rss_kib=<total> per_session_kib=<x>`.
fn parse_idle(line: &str) -> Option<Idle> {
    let rest = line.trim().strip_prefix("IDLE ")?;
    let field = |name: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(name).and_then(|v| v.strip_prefix('='))).map(str::to_owned);
    Some(Idle {
        target: field("target")?,
        sessions: field("sessions")?,
        rss_kib: field("rss_kib")?,
        per_session_kib: field("per_session_kib")?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_idle_lines() {
        let idle = super::parse_idle("IDLE target=mini-sshd sessions=1000 rss_kib=51234 per_session_kib=48.7").unwrap();
        assert_eq!((idle.target.as_str(), idle.sessions.as_str(), idle.per_session_kib.as_str()), ("mini-sshd", "1000", "48.7"));
        assert!(super::parse_idle("started 1000 sessions").is_none());
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(super::parse_size("512M"), Ok(512 << 20));
        assert_eq!(super::parse_size("1GiB"), Ok(1 << 30));
        assert!(super::parse_size("lots").is_err());
    }
}
