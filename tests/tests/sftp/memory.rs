//! A custom SFTP backend: the in-memory one of `examples/sftp-memory`,
//! driven by OpenSSH's `sftp` through the same session code as the file system.

use std::sync::Arc;

use ssh_framework::ChannelIo;
use ssh_framework::sftp::Sftp;
use ssh_framework_tests::data::pseudo_random;
use ssh_framework_tests::handlers::{AuthorizedKeys, SessionOnly};
use ssh_framework_tests::openssh::{Ssh, keygen};
use ssh_framework_tests::server::TestServer;

use crate::alice_client;
use crate::memory_backend::MemoryBackend;

/// The sftp subsystem over one in-memory backend.
struct MemoryFiles {
    files: Arc<MemoryBackend>,
}

#[ssh_framework::server]
impl MemoryFiles {
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
    let login = AuthorizedKeys::alice(&key.public);
    let server =
        TestServer::start(|b| b.handlers(login).handlers(SessionOnly).handlers(MemoryFiles { files: files.clone() })).await;
    let data = pseudo_random(3_000_000, 3);
    std::fs::write(dir.path().join("big.bin"), &data).unwrap();

    let batch = "get hello.txt\nmkdir d\nput big.bin d/big.bin\nrename d/big.bin d/moved.bin\nls -l d\n\
                 get d/moved.bin back.bin\nrm d/moved.bin\nrmdir d\n-get missing\nls\n";
    let out = alice_client(Ssh::sftp, server.port(), &key, dir.path()).batch(batch).await;
    out.ok();
    let stdout = out.stdout_text();

    assert_eq!(std::fs::read(dir.path().join("hello.txt")).unwrap(), b"hello from memory\n");
    assert_eq!(std::fs::read(dir.path().join("back.bin")).unwrap(), data);
    // The session formats `ls -l` lines for backends that send none.
    let line = stdout.lines().find(|l| l.ends_with(" moved.bin") && l.starts_with('-')).expect("ls -l lists the file");
    assert!(line.starts_with("-rw-r--r--    1 0        0         3000000 "), "{line:?}");
}
