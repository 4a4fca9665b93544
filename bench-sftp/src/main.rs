//! Run with: cargo run --release -p ssh-framework-bench-sftp --bin sftp-bench -- [--size-mib N] [--reps N] [--cipher NAME]
//!
//! SFTP throughput of the built-in server (`ssh_framework::sftp` over
//! `FsBackend`) against OpenSSH's own (`sshd` with `internal-sftp`), in the
//! same run, both driven by OpenSSH's `sftp` client: upload and download of
//! one file (512 MiB by default), each repeated, best run reported. sshd is
//! skipped when `/usr/sbin/sshd` does not exist.
//!
//! Times are of the whole `sftp -b` process minus the same server's login
//! time (an `sftp -b` that only runs `pwd`), so the figures are transfer
//! speed, not handshake speed.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ssh_framework::keys::PublicKey;
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework::{Auth, ChannelIo, Server};

/// How long one client run may take before the benchmark gives up on it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// The server under test: one key, SFTP over a jailed directory.
struct Files {
    key: PublicKey,
    root: PathBuf,
}

#[ssh_framework::server]
impl Files {
    #[auth(publickey)]
    async fn login(&self, _user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(key.key_data() == self.key.key_data())
    }

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    #[subsystem("sftp")]
    async fn sftp(&self, io: ChannelIo) -> std::io::Result<()> {
        Sftp::new(FsBackend::open(&self.root)?).serve(io).await
    }
}

struct Args {
    size_mib: u64,
    reps: usize,
    cipher: Option<String>,
    sshd: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { size_mib: 512, reps: 3, cipher: None, sshd: PathBuf::from("/usr/sbin/sshd") };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--size-mib" => args.size_mib = value()?.parse().map_err(|e| format!("--size-mib: {e}"))?,
            "--reps" => args.reps = value()?.parse::<usize>().map_err(|e| format!("--reps: {e}"))?.clamp(1, 20),
            "--cipher" => args.cipher = Some(value()?),
            "--sshd" => args.sshd = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("sftp-bench [--size-mib N (512)] [--reps N (3)] [--cipher NAME] [--sshd PATH (/usr/sbin/sshd)]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Writes `mib` MiB of incompressible bytes (splitmix64), 1 MiB at a time.
fn write_payload(path: &Path, mib: u64) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        file.write_all(&chunk)?;
    }
    file.flush()
}

fn keygen(path: &Path) -> Result<(), String> {
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("ssh-keygen failed: {status}")) }
}

/// Where a server's CPU time is read.
#[derive(Debug, Clone, Copy)]
enum Cpu {
    /// This process (user and system time; not its children, the clients).
    OwnProcess,
    /// A process and the children it has reaped (sshd's per-connection processes).
    Tree(u32),
    /// The children this process has reaped: the `sftp` and `ssh` clients.
    Clients,
}

impl Cpu {
    /// CPU seconds so far, from `/proc` (clock ticks are 100 per second on Linux).
    fn seconds(self) -> Option<f64> {
        let (pid, fields) = match self {
            Cpu::OwnProcess => ("self".to_owned(), 11..13),
            Cpu::Tree(pid) => (pid.to_string(), 11..15),
            Cpu::Clients => ("self".to_owned(), 13..15),
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_name: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 = after_name.get(fields)?.iter().map(|f| f.parse::<f64>().unwrap_or(0.0)).sum();
        Some(ticks / 100.0)
    }
}

/// A server to measure: where it listens, who logs in, and where files go.
struct Target {
    name: &'static str,
    port: u16,
    user: String,
    /// The remote directory uploads go to and downloads come from, as the client names it.
    remote_dir: String,
    /// The same directory on this machine.
    local_dir: PathBuf,
    cpu: Cpu,
    /// The login alone (an `sftp -b` running `pwd`), subtracted from every transfer.
    login: Duration,
}

/// Runs `sftp -b` with `batch`, returning the wall time.
async fn sftp(target: &Target, key: &Path, cwd: &Path, cipher: Option<&str>, batch: &str) -> Result<Duration, String> {
    let file = cwd.join("batch");
    std::fs::write(&file, batch).map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new("sftp");
    cmd.current_dir(cwd)
        .args(["-F", "/dev/null", "-q", "-b"])
        .arg(&file)
        .arg("-P")
        .arg(target.port.to_string())
        .arg("-i")
        .arg(key)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]);
    if let Some(cipher) = cipher {
        cmd.arg("-c").arg(cipher);
    }
    cmd.arg(format!("{}@127.0.0.1", target.user)).stdin(Stdio::null()).stdout(Stdio::null()).kill_on_drop(true);
    let start = Instant::now();
    let out = tokio::time::timeout(CLIENT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("sftp against {} timed out", target.name))?
        .map_err(|e| format!("sftp: {e}"))?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!("sftp against {} failed: {}", target.name, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(elapsed)
}

/// One transfer: MiB/s and the server's CPU seconds per GiB moved.
#[derive(Debug, Clone, Copy)]
struct Sample {
    speed: f64,
    cpu_per_gib: Option<f64>,
    client_cpu_per_gib: Option<f64>,
}

/// Runs one `sftp -b` transfer of `mib` MiB and measures it.
async fn transfer(target: &Target, args: &Args, key: &Path, work: &Path, batch: &str) -> Result<Sample, String> {
    let before = target.cpu.seconds();
    let clients_before = Cpu::Clients.seconds();
    let total = sftp(target, key, work, args.cipher.as_deref(), batch).await?;
    // Let sshd reap the connection's processes so their time is counted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = target.cpu.seconds();
    let clients_after = Cpu::Clients.seconds();
    let mib = args.size_mib as f64;
    let speed = mib / total.saturating_sub(target.login).as_secs_f64().max(1e-3);
    let per_gib = |b: Option<f64>, a: Option<f64>| b.zip(a).map(|(b, a)| (a - b) * 1024.0 / mib);
    Ok(Sample { speed, cpu_per_gib: per_gib(before, after), client_cpu_per_gib: per_gib(clients_before, clients_after) })
}

#[derive(Debug, Default)]
struct Figures {
    up: Vec<Sample>,
    down: Vec<Sample>,
}

fn best(samples: &[Sample]) -> f64 {
    samples.iter().map(|s| s.speed).fold(0.0, f64::max)
}

fn median_cpu(samples: &[Sample], which: fn(&Sample) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().filter_map(which).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Measures every target, alternating between them each run so that a busy
/// moment of the machine hurts both alike.
async fn measure(targets: &mut [Target], args: &Args, key: &Path, work: &Path, payload: &Path) -> Result<Vec<Figures>, String> {
    for target in targets.iter_mut() {
        let mut login = Duration::MAX;
        for _ in 0..3 {
            login = login.min(sftp(target, key, work, args.cipher.as_deref(), "pwd\n").await?);
        }
        target.login = login;
        // The download source: the payload itself, linked into the served directory.
        let source = target.local_dir.join("down.bin");
        let _ = std::fs::remove_file(&source);
        std::fs::hard_link(payload, &source).map_err(|e| format!("linking the payload: {e}"))?;
    }
    let fetched = work.join("fetched.bin");
    let size = args.size_mib << 20;
    let mut figures: Vec<Figures> = targets.iter().map(|_| Figures::default()).collect();
    for rep in 0..args.reps {
        for (target, fig) in targets.iter().zip(figures.iter_mut()) {
            let uploaded = target.local_dir.join("up.bin");
            let _ = std::fs::remove_file(&uploaded);
            let batch = format!("put {} {}/up.bin\n", payload.display(), target.remote_dir);
            let up = transfer(target, args, key, work, &batch).await?;
            let _ = std::fs::remove_file(&fetched);
            let batch = format!("get {}/down.bin {}\n", target.remote_dir, fetched.display());
            let down = transfer(target, args, key, work, &batch).await?;
            for (what, path) in [("upload", &uploaded), ("download", &fetched)] {
                let got = std::fs::metadata(path).map_err(|e| format!("{what} left no file: {e}"))?.len();
                if got != size {
                    return Err(format!("{} {what}: {got} bytes instead of {size}", target.name));
                }
            }
            let _ = std::fs::remove_file(&uploaded);
            eprintln!(
                "  run {}: {:<14} upload {:>4.0} MiB/s, download {:>4.0} MiB/s",
                rep + 1,
                target.name,
                up.speed,
                down.speed
            );
            fig.up.push(up);
            fig.down.push(down);
        }
    }
    let _ = std::fs::remove_file(&fetched);
    for target in targets.iter() {
        let _ = std::fs::remove_file(target.local_dir.join("down.bin"));
    }
    Ok(figures)
}

/// OpenSSH's sshd with its own config in `dir`, serving SFTP in-process (`internal-sftp`).
struct Sshd {
    child: tokio::process::Child,
    port: u16,
}

async fn start_sshd(sshd: &Path, dir: &Path, host_key: &Path, authorized: &Path) -> Result<Sshd, String> {
    // sshd refuses to start without its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port()?;
    let config = dir.join("sshd_config");
    let text = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nUsePAM no\n\
         StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUseDNS no\nLogLevel ERROR\nSubsystem sftp internal-sftp\n",
        host_key.display(),
        authorized.display(),
        dir.join("sshd.pid").display()
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let log = dir.join("sshd.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", sshd.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sshd exited ({status}): {}", std::fs::read_to_string(&log).unwrap_or_default().trim()));
        }
        if TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            return Ok(Sshd { child, port });
        }
        if Instant::now() > deadline {
            let _ = child.kill().await;
            return Err("sshd did not listen within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn current_user() -> String {
    std::process::Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_owned())
}

async fn run(args: Args) -> Result<(), String> {
    let dir = tempfile::Builder::new().prefix("sftp-bench").tempdir().map_err(|e| e.to_string())?;
    let work = dir.path().join("client");
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("sshd");
    for d in [&work, &ours, &theirs] {
        std::fs::create_dir(d).map_err(|e| e.to_string())?;
    }
    let payload = work.join("payload.bin");
    eprintln!("writing a {} MiB payload", args.size_mib);
    write_payload(&payload, args.size_mib).map_err(|e| format!("payload: {e}"))?;

    let client_key = dir.path().join("client_key");
    keygen(&client_key)?;
    let public = std::fs::read_to_string(client_key.with_extension("pub")).map_err(|e| e.to_string())?;
    let authorized = dir.path().join("authorized_keys");
    std::fs::write(&authorized, &public).map_err(|e| e.to_string())?;
    let key = PublicKey::from_openssh(public.trim()).map_err(|e| e.to_string())?;

    let server = Server::builder()
        .handlers(Files { key, root: ours.clone() })
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .host_key_file(dir.path().join("host_ed25519_key"))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let our_port = server.local_addrs()[0].port();
    let shutdown = server.shutdown_handle();
    let served = tokio::spawn(server.run());

    let mut targets = vec![Target {
        name: "ssh-framework",
        port: our_port,
        user: "bench".into(),
        remote_dir: String::new(),
        local_dir: ours,
        cpu: Cpu::OwnProcess,
        login: Duration::ZERO,
    }];
    let mut sshd = None;
    if args.sshd.exists() {
        let host_key = dir.path().join("sshd_host_key");
        keygen(&host_key)?;
        match start_sshd(&args.sshd, dir.path(), &host_key, &authorized).await {
            Ok(started) => {
                targets.push(Target {
                    name: "OpenSSH sshd",
                    port: started.port,
                    user: current_user(),
                    remote_dir: theirs.display().to_string(),
                    local_dir: theirs.clone(),
                    cpu: started.child.id().map_or(Cpu::OwnProcess, Cpu::Tree),
                    login: Duration::ZERO,
                });
                sshd = Some(started);
            }
            Err(e) => eprintln!("sshd skipped: {e}"),
        }
    } else {
        eprintln!("{} not found: OpenSSH skipped", args.sshd.display());
    }
    for t in &targets {
        eprintln!("{} listens on port {}", t.name, t.port);
    }
    let measured = measure(&mut targets, &args, &client_key, &work, &payload).await;
    if let Some(mut sshd) = sshd {
        let _ = sshd.child.kill().await;
    }
    shutdown.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
    let figures = measured?;

    let cipher = args.cipher.as_deref().unwrap_or("client default");
    let cpu = |v: Option<f64>| v.map_or("-".to_owned(), |c| format!("{c:.2}"));
    println!("SFTP, {} MiB file, best of {} runs (alternating servers), cipher: {cipher}", args.size_mib, args.reps);
    println!("| server | upload MiB/s | download MiB/s | server CPU s/GiB up / down | client CPU s/GiB up / down |");
    println!("|---|---:|---:|---:|---:|");
    let server = |s: &Sample| s.cpu_per_gib;
    let client = |s: &Sample| s.client_cpu_per_gib;
    for (t, f) in targets.iter().zip(&figures) {
        println!(
            "| {} | {:.0} | {:.0} | {} / {} | {} / {} |",
            t.name,
            best(&f.up),
            best(&f.down),
            cpu(median_cpu(&f.up, server)),
            cpu(median_cpu(&f.down, server)),
            cpu(median_cpu(&f.up, client)),
            cpu(median_cpu(&f.down, client))
        );
    }
    if let [ours, theirs] = figures.as_slice() {
        println!(
            "| ratio (ours / OpenSSH) | {:.2} | {:.2} | | |",
            best(&ours.up) / best(&theirs.up),
            best(&ours.down) / best(&theirs.down)
        );
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sftp-bench: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("sftp-bench: {e}");
        std::process::exit(1);
    }
}
