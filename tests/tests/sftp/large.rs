//! Large transfers through OpenSSH's `sftp`, compared by SHA-256: the paths
//! the data takes in [`FsBackend`] (the page cache read inline, the blocking
//! pool for what the cache does not hold) must all return the file's bytes.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use ssh_framework::ChannelIo;
use ssh_framework::sftp::{FsBackend, Sftp};
use ssh_framework_tests::data::{pseudo_random, sha256, sha256_file};
use ssh_framework_tests::handlers::{AuthorizedKeys, SessionOnly};
use ssh_framework_tests::openssh::{ClientKey, Ssh, SshOutput, keygen};
use ssh_framework_tests::server::TestServer;

use crate::alice_client;

/// The size of every transfer here.
const SIZE: usize = 64 << 20;

struct Files {
    root: PathBuf,
}

#[ssh_framework::server]
impl Files {
    #[subsystem("sftp")]
    async fn sftp(&self, io: ChannelIo) -> io::Result<()> {
        Sftp::new(FsBackend::open(&self.root)?).serve(io).await
    }
}

struct Jail {
    server: TestServer,
    key: ClientKey,
    root: PathBuf,
    local: PathBuf,
}

impl Jail {
    async fn start() -> Jail {
        let base = tempfile::tempdir().unwrap();
        let [root, local] = ["root", "local"].map(|d| base.path().join(d));
        for dir in [&root, &local] {
            std::fs::create_dir(dir).unwrap();
        }
        let key = keygen(base.path(), "client").await;
        let files = Files { root: root.clone() };
        let login = AuthorizedKeys::alice(&key.public);
        let server = TestServer::start_in(base, |b| b.handlers(login).handlers(SessionOnly).handlers(files)).await;
        Jail { server, key, root, local }
    }

    async fn sftp(&self, batch: &str) -> SshOutput {
        alice_client(Ssh::sftp, self.server.port(), &self.key, &self.local).batch(batch).await
    }
}

/// Bytes of `path` the page cache holds, as util-linux's `fincore` counts them.
fn resident_bytes(path: &Path) -> u64 {
    let out = Command::new("fincore").args(["--bytes", "--noheadings", "--output", "RES"]).arg(path).output().expect("fincore runs");
    assert!(out.status.success(), "fincore: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("fincore prints a number")
}

/// Writes the file to disk and drops it from the page cache
/// (`dd iflag=nocache count=0` advises `POSIX_FADV_DONTNEED` for the whole file).
fn evict(path: &Path) {
    std::fs::File::open(path).unwrap().sync_all().unwrap();
    let status = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()
        .expect("dd runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_downloads_and_uploads_byte_exact() {
    get_and_put_64_mib().await;
}

/// The same on one thread, as each connection runs when the server gives
/// connections threads of their own.
#[tokio::test(flavor = "current_thread")]
async fn a_64_mib_file_downloads_and_uploads_byte_exact_on_a_current_thread_runtime() {
    get_and_put_64_mib().await;
}

async fn get_and_put_64_mib() {
    let jail = Jail::start().await;
    let down = pseudo_random(SIZE, 11);
    let up = pseudo_random(SIZE, 12);
    std::fs::write(jail.root.join("down.bin"), &down).unwrap();
    std::fs::write(jail.local.join("up.bin"), &up).unwrap();

    // Written just now, so the download is served from the page cache.
    jail.sftp("get down.bin got.bin\nput up.bin\n").await.ok();

    assert_eq!(sha256_file(&jail.local.join("got.bin")), sha256(&down), "download");
    assert_eq!(sha256_file(&jail.root.join("up.bin")), sha256(&up), "upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_not_in_the_page_cache_downloads_byte_exact() {
    let jail = Jail::start().await;
    let data = pseudo_random(SIZE, 13);
    let path = jail.root.join("cold.bin");
    std::fs::write(&path, &data).unwrap();
    evict(&path);
    // The first reads must find the cache empty and take the blocking pool
    // (later ones meet the kernel's read-ahead half-way: short cached reads
    // finished there); a file system that cannot evict would prove nothing.
    let resident = resident_bytes(&path);
    assert!(resident <= (SIZE / 8) as u64, "{resident} of {SIZE} bytes still cached after eviction");

    jail.sftp("get cold.bin got.bin\nget cold.bin again.bin\n").await.ok();

    assert_eq!(sha256_file(&jail.local.join("got.bin")), sha256(&data), "cold download");
    assert_eq!(sha256_file(&jail.local.join("again.bin")), sha256(&data), "warm download");
}
