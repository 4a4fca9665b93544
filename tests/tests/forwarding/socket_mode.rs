//! The socket of a remote Unix-socket forward (`ssh -R /path:...`) is created
//! with OpenSSH's `StreamLocalBindMask` default (0177: mode 0600), whatever
//! the process umask, or with the mask the server sets.

use std::os::unix::fs::PermissionsExt;

use ssh_framework::forward::PermitOpen;
use ssh_framework_tests::net::unix_echo;

use super::{Fixture, Forwards};

/// The permission bits of the `-R` socket `remote` once `ssh` reports the forward.
async fn forwarded_socket_mode(fixture: &Fixture, name: &str) -> u32 {
    let target = fixture.dir().join(format!("{name}-target.sock"));
    unix_echo(&target);
    let remote = fixture.dir().join(format!("{name}.sock"));
    let mut ssh = fixture.ssh().args(["-R", &format!("{}:{}", remote.display(), target.display())]).spawn_forwarding();
    ssh.line("remote forward success").await;
    let mode = std::fs::symlink_metadata(&remote).expect("the socket exists").permissions().mode() & 0o7777;
    ssh.kill().await;
    mode
}

/// The process umask, read without changing it (Linux 4.7 and later).
fn umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

#[tokio::test]
async fn a_remote_socket_forward_is_created_with_mode_0600_by_default() {
    // Under the usual umask, a socket bound without a mask of its own would be 0755.
    let umask = umask();
    assert!(umask.is_none_or(|u| u & 0o077 != 0o077), "the umask alone would not make it 0600: {umask:?}");
    let fixture = Fixture::start(|b, dir| b.handlers(Forwards::new(PermitOpen::none(), dir))).await;
    let mode = forwarded_socket_mode(&fixture, "default").await;
    assert_eq!(format!("{mode:o}"), "600");
}

#[tokio::test]
async fn stream_local_bind_mask_sets_the_socket_mode() {
    let fixture = Fixture::start(|b, dir| {
        b.stream_local_bind_mask(0o117).handlers(Forwards::new(PermitOpen::none(), dir))
    })
    .await;
    let mode = forwarded_socket_mode(&fixture, "group").await;
    // 0777 less the mask, less whatever the process umask also clears.
    let expected = 0o660 & !umask().unwrap_or(0);
    assert_eq!(format!("{mode:o}"), format!("{expected:o}"));
}
