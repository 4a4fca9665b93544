//! OpenSSH's sshd as the reference: its own config, host key and
//! authorized_keys in the benchmark's temporary directory.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Child;

/// OpenSSH's SFTP server program, sshd's `Subsystem sftp`.
pub(crate) const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// A running sshd; killed when dropped.
#[derive(Debug)]
pub(crate) struct Sshd {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

/// Starts `sshd -D -e -f CONFIG` on a free loopback port and waits for its banner.
pub(crate) async fn start(
    sshd: &Path,
    dir: &Path,
    host_key: &Path,
    authorized_keys: &Path,
    max_startups: Option<usize>,
) -> Result<Sshd, String> {
    // sshd refuses to start without its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = crate::free_port()?;
    let config = dir.join("sshd_config");
    let log = dir.join("sshd.log");
    let mut text = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         AuthorizedKeysFile {authorized_keys}\n\
         PidFile {pid}\n\
         UsePAM no\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UseDNS no\n\
         Subsystem sftp {sftp_server}\n\
         LogLevel ERROR\n",
        host_key = host_key.display(),
        authorized_keys = authorized_keys.display(),
        pid = dir.join("sshd.pid").display(),
        sftp_server = SFTP_SERVER,
    );
    if let Some(n) = max_startups {
        text.push_str(&format!("MaxStartups {n}:30:{n}\n"));
    }
    std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", sshd.display()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("sshd exited ({status}): {}", text.trim()));
        }
        if banner(port).await {
            return Ok(Sshd { child, port });
        }
        if tokio::time::Instant::now() > deadline {
            return Err("sshd did not answer within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn banner(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut buf = [0u8; 8];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf.starts_with(b"SSH-2.0"))
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Some(true)))
}
