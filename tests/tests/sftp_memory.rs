//! A custom SFTP backend: the in-memory one of `examples/sftp-memory`,
//! driven by OpenSSH's `sftp` through the same session code as the file system.

#[path = "../../examples/sftp-memory/src/memory.rs"]
#[allow(dead_code)]
mod memory;

use std::process::Stdio;
use std::sync::Arc;

use ssh_framework::keys::PublicKey;
use ssh_framework::sftp::Sftp;
use ssh_framework::{Auth, ChannelIo};
use ssh_framework_tests::{TestServer, keygen, within};

use crate::memory::MemoryBackend;

struct MemoryFiles {
    key: PublicKey,
    files: Arc<MemoryBackend>,
}

#[ssh_framework::server]
impl MemoryFiles {
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
        Sftp::from_arc(self.files.clone()).serve(io).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_sftp_works_against_the_in_memory_backend() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "client").await;
    let files = Arc::new(MemoryBackend::new().with_file("/hello.txt", b"hello from memory\n"));
    let server = TestServer::start(|b| b.handlers(MemoryFiles { key: key.public.clone(), files: files.clone() })).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &data).unwrap();

    let batch = "get hello.txt\nmkdir d\nput big.bin d/big.bin\nrename d/big.bin d/moved.bin\nls -l d\n\
                 get d/moved.bin back.bin\nrm d/moved.bin\nrmdir d\n-get missing\nls\n";
    std::fs::write(dir.path().join("batch"), batch).unwrap();
    let out = within(
        "sftp against the memory backend",
        tokio::process::Command::new("sftp")
            .current_dir(dir.path())
            .args(["-F", "/dev/null", "-b", "batch", "-P"])
            .arg(server.port().to_string())
            .arg("-i")
            .arg(&key.path)
            .args(["-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "LogLevel=ERROR", "alice@127.0.0.1"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));

    assert_eq!(std::fs::read(dir.path().join("hello.txt")).unwrap(), b"hello from memory\n");
    assert_eq!(std::fs::read(dir.path().join("back.bin")).unwrap(), data);
    // The session formats `ls -l` lines for backends that send none.
    let line = stdout.lines().find(|l| l.ends_with(" moved.bin") && l.starts_with('-')).expect("ls -l lists the file");
    assert!(line.starts_with("-rw-r--r--    1 0        0         3000000 "), "{line:?}");
}
