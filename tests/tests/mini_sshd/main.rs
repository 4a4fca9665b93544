//! mini-sshd as OpenSSH's client sees it, built in-process from its command
//! line (on 127.0.0.1:0, `--root` and `--host-key` in a temp dir, a 10 ms
//! rejection delay unless the delay is what is tested), every client under a
//! timeout: the startup line and host key, each authentication method and the
//! `--require` chain, exec, the pty, AcceptEnv and sessions at once, the
//! forwarding flags, (with russh's client) signals and window changes,
//! admission (`--max-startups`), per-source penalties, the algorithms offered, keepalives,
//! host certificates (`--host-certificate`), authorized_keys options and
//! `--revoked-keys`, and the
//! security regressions of the review (process groups, X11, method lists).

mod admission;
mod algorithms;
mod auth;
mod authorized_keys_options;
mod certificates;
mod forwarding;
mod host_certificate;
mod keepalive;
mod penalties;
mod security;
mod sessions;
mod signals;
mod timeouts;

use ssh_framework_tests::mini_sshd::MiniSshd;

/// mini-sshd with `--user bob:pw` and `flags`.
async fn with_bob(flags: &[&str]) -> MiniSshd {
    let mut argv = vec!["--user=bob:pw"];
    argv.extend_from_slice(flags);
    MiniSshd::start(&argv).await
}

/// Process `pid`'s process group and session, from `/proc/PID/stat` (fields 5
/// and 6, after the command name in parentheses); `None` once it is gone or a
/// zombie (dead, waiting for a parent that may never reap it).
pub(crate) fn group_and_session(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}
