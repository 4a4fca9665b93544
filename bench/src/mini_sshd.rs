//! The flagship: the real `mini-sshd` binary (examples/mini-sshd), built
//! beside the bench, with its default settings; only the port, host key,
//! authorized keys and root are given (and MaxStartups, as for sshd).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// `mini-sshd` in the bench's own directory (`target/release`).
pub(crate) fn binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.with_file_name("mini-sshd");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} not found: build it: cargo build --release -p example-mini-sshd", path.display()))
    }
}

/// Starts mini-sshd on a free loopback port serving `root` (the directory
/// its commands run in and SFTP serves); returns it and its port once it
/// printed its startup line. It logs to `dir/mini-sshd.log`.
pub(crate) async fn start(
    dir: &Path,
    root: &Path,
    host_key: &Path,
    user: &str,
    authorized_keys: &Path,
    max_startups: Option<usize>,
) -> Result<(Child, u16), String> {
    let binary = binary()?;
    let log = std::fs::File::create(dir.join("mini-sshd.log")).map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(&binary);
    command
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--host-key")
        .arg(host_key)
        .arg("--authorized-keys")
        .arg(format!("{user}:{}", authorized_keys.display()))
        .arg("--root")
        .arg(root);
    if let Some(n) = max_startups {
        command.arg("--max-startups").arg(format!("{n}:30:{n}"));
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line)).await;
    // Whatever else it prints is read and dropped, so it never writes to a closed pipe.
    tokio::spawn(async move { while matches!(stdout.read_line(&mut String::new()).await, Ok(n) if n > 0) {} });
    // "mini-sshd listening on 127.0.0.1:PORT (host key ...)"
    let port = match read {
        Ok(Ok(_)) => line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.parse::<u16>().ok()),
        _ => None,
    };
    match port {
        Some(port) => Ok((child, port)),
        None => Err(format!("mini-sshd did not start (startup line {line:?}; see mini-sshd.log)")),
    }
}
