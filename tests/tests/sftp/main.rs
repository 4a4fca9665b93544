//! File transfer: the framework's SFTP server and legacy SCP over a jailed
//! directory and over a custom (in-memory) backend, and mini-sshd's `--root`
//! jail, all driven by OpenSSH's `sftp` and `scp` (and raw SFTP packets
//! through russh's client for what OpenSSH never sends).

mod budget;
mod fs;
mod hostile;
mod large;
mod listing;
mod memory;
mod mini_sshd;
mod raw;

#[path = "../../../examples/sftp-memory/src/memory.rs"]
#[allow(dead_code, unreachable_pub)]
mod memory_backend;

use std::path::Path;

use ssh_framework_tests::openssh::{ClientKey, Ssh};

/// `sftp` or `scp` (`program` is [`Ssh::sftp`] or [`Ssh::scp`]) as alice with
/// `key` only, in batch mode, run in `local`.
fn alice_client(program: fn(u16, &str) -> Ssh, port: u16, key: &ClientKey, local: &Path) -> Ssh {
    program(port, "alice").identity(&key.path).option("BatchMode=yes").current_dir(local)
}
