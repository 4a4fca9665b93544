//! Run with: cargo build --release -p ssh-framework-bench && target/release/ssh-framework-bench
//!
//! Compares, on loopback and driven by the OpenSSH client, a server built with
//! ssh_framework against a hand-written russh server (russh's default config
//! and one tuned like the framework's) and OpenSSH's own sshd: upload and
//! download throughput through exec, and logins per second (sequential and
//! parallel). Each server runs in its own child process, killed at the end.

mod client;
mod exec;
mod framework_server;
mod raw_server;
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

use crate::client::{Client, Logins};
use crate::exec::ExecMode;
use crate::raw_server::RawConfig;

const MIB: f64 = 1048576.0;

#[derive(Debug, Parser)]
#[command(about = "ssh-framework vs raw russh vs OpenSSH sshd, driven by the OpenSSH client")]
struct Cli {
    #[command(subcommand)]
    serve: Option<Serve>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Bytes uploaded per transfer (suffixes K, M, G: powers of 1024).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    upload_size: u64,
    /// Bytes downloaded per transfer.
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    download_size: u64,
    /// Sequential logins (`ssh ... true`) per server.
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// Total logins of the parallel test per server.
    #[arg(long, default_value_t = 200)]
    parallel_logins: usize,
    /// Logins in flight at once in the parallel test.
    #[arg(long, default_value_t = 50)]
    parallel: usize,
    /// Transfers per server and direction; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds after which a login loop starts no new login.
    #[arg(long, default_value_t = 60)]
    budget: u64,
    /// Timeout in seconds for one transfer invocation of ssh.
    #[arg(long, default_value_t = 300)]
    transfer_timeout: u64,
    /// Timeout in seconds for one login invocation of ssh.
    #[arg(long, default_value_t = 30)]
    login_timeout: u64,
    /// Client ciphers to run with, comma separated; `default` passes no `-c`
    /// (OpenSSH then picks chacha20-poly1305@openssh.com).
    #[arg(long, value_delimiter = ',', default_value = "aes128-gcm@openssh.com,default")]
    ciphers: Vec<String>,
    /// Servers to measure, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<Target>,
    /// The sshd binary; skipped when it does not exist.
    #[arg(long, default_value = "/usr/sbin/sshd")]
    sshd: PathBuf,
    /// Keep the framework's MaxStartups default (100:30:1000) and sshd's (10:30:100),
    /// which drops some of 50 parallel unauthenticated connections. By default both
    /// are raised to 1000 so the parallel test measures login speed, not the drop policy.
    #[arg(long)]
    default_max_startups: bool,
    /// Smoke run: 64 MiB transfers, 20 logins each way, one round.
    #[arg(long)]
    quick: bool,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Framework,
    FrameworkSpawn,
    RawTuned,
    RawTunedSpawn,
    RawDefault,
    RawDefaultSpawn,
    Sshd,
}

impl Target {
    const ALL: [Target; 7] = [
        Target::Framework,
        Target::RawTuned,
        Target::RawDefault,
        Target::FrameworkSpawn,
        Target::RawTunedSpawn,
        Target::RawDefaultSpawn,
        Target::Sshd,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::Framework => "framework",
            Target::FrameworkSpawn => "framework-spawn",
            Target::RawTuned => "raw-tuned",
            Target::RawTunedSpawn => "raw-tuned-spawn",
            Target::RawDefault => "raw-default",
            Target::RawDefaultSpawn => "raw-default-spawn",
            Target::Sshd => "sshd",
        }
    }

    fn in_process(self) -> bool {
        matches!(self, Target::Framework | Target::RawTuned | Target::RawDefault)
    }

    fn upload_command(self) -> String {
        if self.in_process() { "sink".into() } else { "cat > /dev/null".into() }
    }

    fn download_command(self, bytes: u64) -> String {
        if self.in_process() { format!("source {bytes}") } else { format!("head -c {bytes} /dev/zero") }
    }

    /// The cipher to ask for: russh's default config does not offer aes128-gcm,
    /// so the raw-default servers get aes256-gcm instead (marked in the table).
    fn cipher(self, requested: Option<&str>) -> (Option<String>, bool) {
        let default_config = matches!(self, Target::RawDefault | Target::RawDefaultSpawn);
        match requested {
            Some("aes128-gcm@openssh.com") if default_config => (Some("aes256-gcm@openssh.com".into()), true),
            other => (other.map(str::to_owned), false),
        }
    }
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

/// CPU seconds (user + system) used by process `pid` and its reaped
/// descendants: for sshd that includes its per-connection processes, for the
/// spawning servers the `sh -c` children.
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3; utime, stime, cutime, cstime are 14 to 17.
    let sum: f64 = fields.get(11..15)?.iter().map(|f| f.parse::<f64>().unwrap_or(0.0)).sum();
    Some(sum / ticks)
}

/// Runs `work`, then measures the server's CPU time it caused (after a short
/// pause so that exiting connection processes are reaped).
async fn with_cpu<T>(pid: Option<u32>, ticks: f64, work: impl std::future::Future<Output = T>) -> (T, Option<f64>) {
    let before = pid.and_then(|p| cpu_seconds(p, ticks));
    let result = work.await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let after = pid.and_then(|p| cpu_seconds(p, ticks));
    (result, before.zip(after).map(|(b, a)| a - b))
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
        Target::RawTuned | Target::RawTunedSpawn | Target::RawDefault | Target::RawDefaultSpawn => {
            let which = if matches!(target, Target::RawTuned | Target::RawTunedSpawn) { RawConfig::Tuned } else { RawConfig::Default };
            let key = russh::keys::PrivateKey::read_openssh_file(host_key).map_err(|e| e.to_string())?;
            raw_server::serve(which, mode, key, authorized, ready, stop).await
        }
        Target::Sshd => Err("sshd is not served by this program".into()),
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

/// One server's numbers for one cipher.
#[derive(Debug, Clone, Default)]
struct Row {
    algorithms: String,
    substituted: bool,
    up: Vec<f64>,
    down: Vec<f64>,
    sequential: Option<Logins>,
    parallel: Option<Logins>,
    /// Server CPU seconds per GiB, one per round, each including one login.
    up_cpu: Vec<f64>,
    down_cpu: Vec<f64>,
    /// GiB per transfer, to take the login's CPU out of `up_cpu` and `down_cpu`.
    up_gib: f64,
    down_gib: f64,
    /// Server CPU milliseconds per login of the sequential loop.
    login_cpu: Option<f64>,
    error: Option<String>,
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

impl Row {
    fn up(&self) -> Option<f64> {
        median(&self.up)
    }
    fn down(&self) -> Option<f64> {
        median(&self.down)
    }
    fn seq(&self) -> Option<f64> {
        self.sequential.filter(|l| l.ok > 0).map(|l| l.rate())
    }
    fn par(&self) -> Option<f64> {
        self.parallel.filter(|l| l.ok > 0).map(|l| l.rate())
    }
    /// The login's CPU, measured by the login loop, is taken out of each transfer.
    fn login_cpu_per_gib(&self, gib: f64) -> f64 {
        self.login_cpu.map(|ms| ms / 1e3 / gib).unwrap_or(0.0)
    }
    fn up_cpu(&self) -> Option<f64> {
        median(&self.up_cpu).map(|c| c - self.login_cpu_per_gib(self.up_gib))
    }
    fn down_cpu(&self) -> Option<f64> {
        median(&self.down_cpu).map(|c| c - self.login_cpu_per_gib(self.down_gib))
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into())
}

fn fmt2(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into())
}

fn fmt_logins(l: Option<Logins>) -> String {
    match l {
        Some(l) if l.ok > 0 => {
            let mut s = format!("{:.1}", l.rate());
            if l.failed > 0 {
                s.push_str(&format!(" ({} failed)", l.failed));
            }
            s
        }
        Some(l) if l.failed > 0 => format!("all {} failed", l.failed),
        _ => "n/a".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    }
}

fn table(cipher: &str, rows: &[(Target, Row)]) -> String {
    let mut out = format!("### client cipher: {cipher}\n\n");
    out.push_str(
        "| server | MiB/s up | MiB/s down | logins/s sequential | logins/s parallel \
         | server CPU s/GiB up | server CPU s/GiB down | server CPU ms/login | negotiated (kex, host key, cipher) |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    let mut note = false;
    for (target, row) in rows {
        if let Some(e) = &row.error {
            out.push_str(&format!("| {} | failed: {e} | | | | | | | |\n", target.name()));
            continue;
        }
        let mark = if row.substituted { "*" } else { "" };
        note |= row.substituted;
        out.push_str(&format!(
            "| {}{mark} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            target.name(),
            fmt(row.up()),
            fmt(row.down()),
            fmt_logins(row.sequential),
            fmt_logins(row.parallel),
            fmt2(row.up_cpu()),
            fmt2(row.down_cpu()),
            fmt(row.login_cpu),
            row.algorithms
        ));
    }
    if note {
        out.push_str("\n\\* russh's default config does not offer aes128-gcm; measured with aes256-gcm@openssh.com.\n");
    }
    let get = |t: Target| rows.iter().find(|(x, r)| *x == t && r.error.is_none()).map(|(_, r)| r);
    let pairs = [
        (Target::Framework, Target::RawTuned),
        (Target::Framework, Target::RawDefault),
        (Target::Framework, Target::Sshd),
        (Target::FrameworkSpawn, Target::RawTunedSpawn),
        (Target::FrameworkSpawn, Target::RawDefaultSpawn),
        (Target::FrameworkSpawn, Target::Sshd),
    ];
    out.push_str(
        "\nRatios: framework's number over the other's; the CPU columns are the other's CPU \
         over the framework's, so above 1 is better for the framework everywhere.\n\n",
    );
    out.push_str("| ratio | up | down | logins seq | logins par | CPU up | CPU down | CPU login |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (a, b) in pairs {
        if let (Some(ra), Some(rb)) = (get(a), get(b)) {
            out.push_str(&format!(
                "| {} / {} | {} | {} | {} | {} | {} | {} | {} |\n",
                a.name(),
                b.name(),
                ratio(ra.up(), rb.up()),
                ratio(ra.down(), rb.down()),
                ratio(ra.seq(), rb.seq()),
                ratio(ra.par(), rb.par()),
                ratio(rb.up_cpu(), ra.up_cpu()),
                ratio(rb.down_cpu(), ra.down_cpu()),
                ratio(rb.login_cpu, ra.login_cpu)
            ));
        }
    }
    out
}

async fn run(mut args: RunArgs) -> Result<(), String> {
    if args.quick {
        args.upload_size = 64 << 20;
        args.download_size = 64 << 20;
        args.logins = 20;
        args.parallel_logins = 20;
        args.rounds = 1;
    }
    let targets: Vec<Target> = if args.targets.is_empty() { Target::ALL.to_vec() } else { args.targets.clone() };
    let ssh_version = sh("ssh", &["-V"]).await.map_err(|e| format!("the OpenSSH client is needed: {e}"))?;
    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).await.unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let load_start = load();
    let ticks: f64 = sh("getconf", &["CLK_TCK"]).await.ok().and_then(|t| t.parse().ok()).unwrap_or(100.0);

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let host_key = dir.path().join("host_ed25519_key");
    let client_key = dir.path().join("client_ed25519_key");
    for key in [&host_key, &client_key] {
        sh("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", &key.display().to_string()]).await?;
    }
    let authorized = dir.path().join("authorized_keys");
    std::fs::copy(client_key.with_extension("pub"), &authorized).map_err(|e| e.to_string())?;
    let user = sh("id", &["-un"]).await.unwrap_or_else(|_| "root".into());
    let max_startups = (!args.default_max_startups).then_some(1000);

    let mut servers: Vec<Running> = Vec::new();
    let mut sshd_handle = None;
    for &target in &targets {
        if target == Target::Sshd {
            if !args.sshd.exists() {
                eprintln!("{} not found: sshd skipped", args.sshd.display());
                continue;
            }
            match sshd::start(&args.sshd, dir.path(), &host_key, &authorized, max_startups).await {
                Ok(s) => {
                    sshd_handle = Some(s.port);
                    servers.push(Running { target, port: s.port, child: s.child });
                    let _ = s.log;
                }
                Err(e) => eprintln!("sshd skipped: {e}"),
            }
            continue;
        }
        let running = start_own(target, dir.path(), &host_key, &authorized, max_startups).await?;
        eprintln!("started {} on port {}", target.name(), running.port);
        servers.push(running);
    }
    if let Some(port) = sshd_handle {
        eprintln!("started sshd on port {port}");
    }

    let transfer_timeout = Duration::from_secs(args.transfer_timeout);
    let login_timeout = Duration::from_secs(args.login_timeout);
    let budget = Duration::from_secs(args.budget);
    let mut report = String::new();
    for requested in &args.ciphers {
        let requested_opt = (requested != "default").then_some(requested.as_str());
        let label = if requested == "default" { "client default (chacha20-poly1305@openssh.com)".to_owned() } else { requested.clone() };
        eprintln!("== cipher {label}");
        let mut rows: Vec<(Target, Row, Client, Option<u32>)> = Vec::new();
        for server in &servers {
            let (cipher, substituted) = server.target.cipher(requested_opt);
            let client = Client { key: client_key.clone(), user: user.clone(), port: server.port, cipher };
            let mut row = Row { substituted, ..Row::default() };
            // Check the server works and sends exactly what was asked for.
            let check = 1 << 20;
            match client.probe(&server.target.download_command(check), login_timeout).await {
                Ok((n, algorithms)) if n == check => row.algorithms = algorithms,
                Ok((n, _)) => row.error = Some(format!("downloaded {n} bytes instead of {check}")),
                Err(e) => row.error = Some(e),
            }
            let gib = |bytes: u64| bytes as f64 / (MIB * 1024.0);
            row.up_gib = gib(args.upload_size);
            row.down_gib = gib(args.download_size);
            if let Some(e) = &row.error {
                eprintln!("  {}: {e}", server.target.name());
            }
            rows.push((server.target, row, client, server.child.id()));
        }
        // Rounds go across servers, in reverse order every other round, so that
        // background load and position in the round hit them alike.
        for round in 1..=args.rounds {
            let mut order: Vec<usize> = (0..rows.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for i in order {
                let (target, row, client, pid) = &mut rows[i];
                if row.error.is_some() {
                    continue;
                }
                let (up, up_cpu) = with_cpu(*pid, ticks, client.upload(&target.upload_command(), args.upload_size, transfer_timeout)).await;
                let (down, down_cpu) = with_cpu(
                    *pid,
                    ticks,
                    client.download(&target.download_command(args.download_size), args.download_size, transfer_timeout),
                )
                .await;
                let (up_gib, down_gib) = (row.up_gib, row.down_gib);
                match &up {
                    Ok(t) => {
                        row.up.push(t.mib_per_s());
                        row.up_cpu.extend(up_cpu.map(|c| c / up_gib));
                    }
                    Err(e) => eprintln!("  {} upload: {e}", target.name()),
                }
                match &down {
                    Ok(t) => {
                        row.down.push(t.mib_per_s());
                        row.down_cpu.extend(down_cpu.map(|c| c / down_gib));
                    }
                    Err(e) => eprintln!("  {} download: {e}", target.name()),
                }
                eprintln!(
                    "  round {round} {:<18} up {:>7} MiB/s {:>5} CPU s/GiB (wall {:.2} s)  down {:>7} MiB/s {:>5} CPU s/GiB (wall {:.2} s)",
                    target.name(),
                    fmt(up.as_ref().ok().map(|t| t.mib_per_s())),
                    fmt2(up_cpu.map(|c| c / up_gib)),
                    up.as_ref().map(|t| t.wall.as_secs_f64()).unwrap_or(0.0),
                    fmt(down.as_ref().ok().map(|t| t.mib_per_s())),
                    fmt2(down_cpu.map(|c| c / down_gib)),
                    down.as_ref().map(|t| t.wall.as_secs_f64()).unwrap_or(0.0),
                );
            }
        }
        for (target, row, client, pid) in rows.iter_mut().filter(|(_, r, _, _)| r.error.is_none()) {
            let (seq, seq_cpu) = with_cpu(*pid, ticks, client.logins_sequential("true", args.logins, budget, login_timeout)).await;
            row.login_cpu = seq_cpu.filter(|_| seq.ok > 0).map(|c| c * 1e3 / seq.ok as f64);
            let client = Arc::new(client.clone());
            let par = client.logins_parallel("true", args.parallel_logins, args.parallel, budget, login_timeout).await;
            eprintln!(
                "  logins {:<18} sequential {} ({} in {:.1} s, {} CPU ms each)  parallel {} ({} in {:.1} s)",
                target.name(),
                fmt_logins(Some(seq)),
                seq.ok,
                seq.elapsed.as_secs_f64(),
                fmt(row.login_cpu),
                fmt_logins(Some(par)),
                par.ok,
                par.elapsed.as_secs_f64()
            );
            row.sequential = Some(seq);
            row.parallel = Some(par);
        }
        let rows: Vec<(Target, Row)> = rows.into_iter().map(|(t, r, _, _)| (t, r)).collect();
        let t = table(&label, &rows);
        eprintln!("\n{t}");
        report.push_str(&t);
        report.push('\n');
    }

    for mut server in servers {
        let _ = server.child.kill().await;
    }
    println!("## ssh-framework benchmark, {date}\n");
    println!("Machine: {cores} cores ({cpu}), load average {load_start} at start, {} at end. Client: {ssh_version}.", load());
    println!(
        "Upload {} MiB, download {} MiB, median of {} rounds; throughput is timed over the data phase only \
         (from the client's debug log: exec request sent to exit-status received, so login is left out \
         but starting the command, e.g. sshd's login shell, is in); \
         {} sequential logins, {} parallel logins ({} at once), loops stop after {} s. MaxStartups: {}. \
         Server CPU is user + system time of the server process and its reaped children \
         (sshd's per-connection processes, the spawned shells), from /proc; the CPU of one login \
         (from the sequential loop) is taken out of the per-GiB figures.\n",
        args.upload_size >> 20,
        args.download_size >> 20,
        args.rounds,
        args.logins,
        args.parallel_logins,
        args.parallel,
        args.budget,
        if args.default_max_startups { "defaults (framework 100:30:1000, sshd 10:30:100)" } else { "1000 for framework and sshd" }
    );
    print!("{report}");
    Ok(())
}
