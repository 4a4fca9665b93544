//! The server-wide settings of the builder that are not limit layers (those
//! are in `crate::limit`): keepalives and the inactivity timeout (russh fixes
//! them per server), the rejection delay, forwarding policy, and the memory and
//! file budgets. Defaults follow OpenSSH's sshd where it has one.

use std::time::Duration;

/// The server-wide settings. Defaults follow OpenSSH's sshd where it has one.
///
/// Memory a client can make the server hold, with the defaults:
///
/// - channel buffers (what a client sent that a body, a forwarded destination
///   or a client-opened channel's reader has not taken yet, on every channel
///   kind): at most `max_channel_buffers_per_connection` (64 MiB) per
///   connection plus one packet (256 KiB), at most `8 MiB + 2 × window + 1
///   MiB` (25 MiB) per channel, and at most `max_channel_buffers` (1 GiB) for
///   the whole server plus one packet per connection; see `FlowControl` in
///   `channel.rs` for how (a trickle window, then no reading at all);
/// - data sent on a session channel before its body starts: 1 MiB per channel;
/// - environment variables: `max_env_bytes` (64 KiB) per session channel,
///   names up to 256 bytes, values up to 32 KiB, at most 256 of them.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) rejection_delay: Duration,
    pub(crate) inactivity_timeout: Option<Duration>,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_count_max: usize,
    pub(crate) gateway_ports: GatewayPorts,
    pub(crate) allow_privileged_ports: bool,
    /// Permission bits cleared on the sockets of remote Unix-socket forwards
    /// (OpenSSH's `StreamLocalBindMask`).
    pub(crate) stream_local_bind_mask: u32,
    /// `None`: derived from the open-file limit ([`Limits::open_files`]).
    pub(crate) max_open_files: Option<usize>,
    /// `None`: derived from `max_open_files` ([`Limits::open_files`]).
    pub(crate) max_open_files_per_user: Option<usize>,
    pub(crate) max_env_bytes: usize,
    pub(crate) max_channel_buffers_per_connection: usize,
    pub(crate) max_channel_buffers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rejection_delay: Duration::from_secs(1),
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: None,
            keepalive_count_max: 3,
            gateway_ports: GatewayPorts::No,
            allow_privileged_ports: false,
            // Owner read and write only (0600), as OpenSSH.
            stream_local_bind_mask: 0o177,
            max_open_files: None,
            max_open_files_per_user: None,
            max_env_bytes: 64 << 10,
            max_channel_buffers_per_connection: 64 << 20,
            max_channel_buffers: 1 << 30,
        }
    }
}

impl Limits {
    /// The budget of files and directories SFTP and SCP sessions may hold open,
    /// server-wide and per user, for a process allowed `nofile` descriptors.
    ///
    /// By default half the descriptors go to open files; the other half stays
    /// for what a budget cannot count: sockets of connections and forwards,
    /// pipes and terminals of child processes, listeners and the runtime's own.
    /// A user may hold a quarter of the files, so no one user can stop the
    /// others from opening any. With the common limit of 1,024 that is 512 and
    /// 128 (OpenSSH's client holds one handle per transfer); with 524,288 (the
    /// usual hard limit, which the server raises its soft limit to at start-up)
    /// 262,144 and 65,536.
    pub(crate) fn open_files(&self, nofile: u64) -> (usize, usize) {
        let derived = usize::try_from(nofile / 2).unwrap_or(usize::MAX).max(1);
        let max = self.max_open_files.unwrap_or(derived).max(1);
        let per_user = self.max_open_files_per_user.unwrap_or(max / 4).clamp(1, max);
        (max, per_user)
    }
}

/// Which addresses remote forwards may bind (OpenSSH's `GatewayPorts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GatewayPorts {
    /// Loopback only, whatever the client asks (OpenSSH's default, `no`).
    #[default]
    No,
    /// The address the client asks for.
    ClientSpecified,
    /// All interfaces, whatever the client asks.
    Yes,
}
