//! Large transfers through OpenSSH's `sftp`, compared by SHA-256: the paths
//! the data takes in [`FsBackend`](ssh_framework::sftp::FsBackend) (the page cache read inline, the blocking
//! pool for what the cache does not hold) must all return the file's bytes.

use std::path::Path;
use std::process::Command;

use ssh_framework_tests::data::{pseudo_random, sha256, sha256_file};

use crate::hostile::Jail;

/// The size of every transfer here.
const SIZE: usize = 64 << 20;

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

/// Served as by default: each connection on a current-thread runtime of a
/// connection thread.
#[tokio::test]
async fn a_64_mib_file_downloads_and_uploads_byte_exact() {
    get_and_put_64_mib(Jail::start(|files| files).await).await;
}

/// The same with connections served as tasks on the caller's work-stealing
/// runtime (`connection_threads(0)`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_downloads_and_uploads_byte_exact_without_connection_threads() {
    get_and_put_64_mib(Jail::start_with(|files| files, |server| server.connection_threads(0)).await).await;
}

async fn get_and_put_64_mib(jail: Jail) {
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
    let jail = Jail::start(|files| files).await;
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
