//! mini-sshd as OpenSSH's client sees it, built in-process from its command
//! line (on 127.0.0.1:0, `--root` and `--host-key` in a temp dir, a 10 ms
//! rejection delay unless the delay is what is tested), every client under a
//! timeout: the startup line and host key, each authentication method and the
//! `--require` chain, exec, the pty, AcceptEnv and sessions at once, the
//! forwarding flags, (with russh's client) signals and window changes,
//! admission (`--max-startups`), the algorithms offered, keepalives, and the
//! security regressions of the review (process groups, X11, method lists).

mod admission;
mod algorithms;
mod auth;
mod forwarding;
mod keepalive;
mod security;
mod sessions;
mod signals;

use ssh_framework_tests::mini_sshd::MiniSshd;

/// mini-sshd with `--user bob:pw` and `flags`.
async fn with_bob(flags: &[&str]) -> MiniSshd {
    let mut argv = vec!["--user=bob:pw"];
    argv.extend_from_slice(flags);
    MiniSshd::start(&argv).await
}
