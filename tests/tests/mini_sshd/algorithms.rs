//! What mini-sshd offers in its key exchange, read from its KEXINIT on a raw
//! socket, and compression as OpenSSH's client uses it.

use ssh_framework_tests::within;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::with_bob;

/// The ten name-lists of the server's KEXINIT (RFC 4253 §7.1), in order.
async fn server_kexinit(addr: std::net::SocketAddr) -> Vec<Vec<String>> {
    let socket = TcpStream::connect(addr).await.unwrap();
    let mut socket = BufReader::new(socket);
    socket.get_mut().write_all(b"SSH-2.0-Probe_1.0\r\n").await.unwrap();
    let mut version = String::new();
    within("the server's version line", socket.read_line(&mut version)).await.unwrap();
    assert!(version.starts_with("SSH-2.0-"), "{version:?}");

    let length = within("the KEXINIT length", socket.read_u32()).await.unwrap() as usize;
    assert!(length < 64 << 10, "a KEXINIT of {length} bytes");
    let mut packet = vec![0; length];
    within("the KEXINIT", socket.read_exact(&mut packet)).await.unwrap();
    let padding = usize::from(packet[0]);
    let payload = &packet[1..length - padding];
    assert_eq!(payload[0], 20, "not a KEXINIT");
    let mut rest = &payload[17..];
    (0..10)
        .map(|_| {
            let (len, tail) = rest.split_at(4);
            let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
            let (list, tail) = tail.split_at(len);
            rest = tail;
            std::str::from_utf8(list).unwrap().split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
        })
        .collect()
}

#[tokio::test]
async fn kexinit_offers_post_quantum_kex_first_strict_kex_and_no_compression_before_auth() {
    let sshd = with_bob(&[]).await;
    let lists = server_kexinit(sshd.addr()).await;
    let (kex, ciphers, macs, compression) = (&lists[0], &lists[2], &lists[4], (&lists[6], &lists[7]));

    assert_eq!(kex.first().map(String::as_str), Some("mlkem768x25519-sha256"), "{kex:?}");
    assert!(kex.iter().any(|k| k == "kex-strict-s-v00@openssh.com"), "no strict KEX (Terrapin): {kex:?}");
    // Only exchanges OpenSSH 9's sshd offers too (no SHA-1, no group 15 or 17).
    const SSHD_ALSO_OFFERS: [&str; 7] = [
        "mlkem768x25519-sha256",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group14-sha256",
    ];
    for k in kex.iter().filter(|k| !k.starts_with("ext-info") && !k.starts_with("kex-strict")) {
        assert!(SSHD_ALSO_OFFERS.contains(&k.as_str()), "unexpected key exchange {k} in {kex:?}");
    }
    assert_eq!(lists[2], lists[3], "ciphers differ by direction");
    assert!(ciphers.iter().all(|c| !c.contains("cbc") && !c.contains("arcfour") && c != "none"), "{ciphers:?}");
    assert!(macs.iter().all(|m| !m.contains("md5") && !m.contains("sha1") && m != "none"), "{macs:?}");
    // RFC 4253 `zlib` would decompress unauthenticated input; only the delayed variant is offered.
    for list in [compression.0, compression.1] {
        assert_eq!(list, &["none", "zlib@openssh.com"], "compression offered: {list:?}");
    }
}

#[tokio::test]
async fn openssh_compression_starts_after_authentication_and_carries_data() {
    let sshd = with_bob(&[]).await;
    let out = sshd.ssh("bob").password("pw").option("Compression=yes").args(["-v"]).run("head -c 1000000 /dev/zero | wc -c").await;

    out.ok();
    assert_eq!(out.stdout_text().trim(), "1000000");
    assert!(out.stderr.contains("compression: zlib@openssh.com"), "{}", out.stderr);
    assert!(out.stderr.contains("Enabling compression"), "{}", out.stderr);
}
