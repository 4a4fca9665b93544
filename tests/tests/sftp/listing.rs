//! Listings of any size (issue 12, low): SFTP `readdir` replies stay within
//! what OpenSSH's client accepts however long the names, and legacy
//! `scp -r` streams a directory instead of loading it whole (that it holds
//! one batch of entries at most is the unit test
//! `scp::tests::a_download_holds_one_batch_of_entries_whatever_the_directory_size`).

use std::time::{Duration, Instant};

use ssh_framework_tests::mini_sshd::MiniSshd;
use ssh_framework_tests::openssh::Ssh;

use crate::alice_client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_ls_lists_every_long_symlink_name_in_replies_openssh_accepts() {
    let sshd = MiniSshd::with_alice_key(&[]).await;
    let local = sshd.dir().join("local");
    std::fs::create_dir(&local).unwrap();
    std::fs::create_dir(sshd.root().join("links")).unwrap();
    // 300 links with 200-byte names and 3,000-byte targets: 100 of them (one
    // batch of the backend) made a reply of 350,009 bytes, and OpenSSH's
    // client gives up on anything over 256 KiB ("Received message too long").
    let names: Vec<String> = (0..300).map(|i| format!("{i:03}{}", "n".repeat(197))).collect();
    for name in &names {
        std::os::unix::fs::symlink("t".repeat(3000), sshd.root().join("links").join(name)).unwrap();
    }

    let out = alice_client(Ssh::sftp, sshd.port(), sshd.key(), &local).batch("ls -l links\n").await;
    out.ok();
    let listed = out.stdout_text();
    let missing: Vec<&String> = names.iter().filter(|n| !listed.contains(&format!("{n} -> "))).collect();
    assert!(missing.is_empty(), "{} of 300 names missing from `ls -l`", missing.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_scp_downloads_a_directory_of_10000_entries() {
    let sshd = MiniSshd::with_alice_key(&[]).await;
    let local = sshd.dir().join("local");
    std::fs::create_dir(&local).unwrap();
    let big = sshd.root().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..10_000 {
        std::fs::File::create(big.join(format!("f{i:05}"))).unwrap();
    }
    std::fs::write(big.join("f01234"), b"1234").unwrap();

    let started = Instant::now();
    // One round trip per file: allow for a loaded machine.
    let limit = Duration::from_secs(120);
    let scp = alice_client(Ssh::scp, sshd.port(), sshd.key(), &local).timeout(limit);
    scp.copy(&["-O", "-r", "REMOTE:big", "."]).await.ok();
    let elapsed = started.elapsed();
    println!("scp -O -r of 10,000 files took {elapsed:?}");

    let copied = std::fs::read_dir(local.join("big")).unwrap().count();
    assert_eq!(copied, 10_000);
    assert_eq!(std::fs::read(local.join("big/f01234")).unwrap(), b"1234");
    assert!(elapsed < limit, "took {elapsed:?}");
}
