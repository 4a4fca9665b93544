//! Revoked keys (OpenSSH's `RevokedKeys`): a file of public keys that must
//! not authenticate, whether offered as plain keys, certified, or as the CA
//! that signed a certificate.
//!
//! The file holds one public key per line as in `*.pub` files (blank lines
//! and `#` comments allowed); a certificate line revokes the key it
//! certifies. Keys compare by their key data: comments do not matter.
//!
//! OpenSSH's binary key revocation lists (KRL, made by `ssh-keygen -k`) are
//! not read: no well-kept Rust crate reads them. Such a file is refused with
//! [`RevokedKeysError::Krl`] rather than read as an empty list; list the
//! revoked public keys instead.
//!
//! ```
//! use ssh_framework::keys::PublicKey;
//! use ssh_framework::revoked::RevokedKeys;
//!
//! let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC97FFrE10b6vzWmyKpmDWWqX3Qp+DrSwd1yuHpJob91";
//! let revoked = RevokedKeys::parse(&format!("# lost laptop\n{key} old comment\n")).unwrap();
//! assert!(revoked.contains(&PublicKey::from_openssh(key).unwrap()));
//! ```

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use russh::keys::PublicKey;
use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::public::KeyData;

/// [`RevokedKeys::read`] refuses a file larger than this (16 MiB).
pub const MAX_FILE_LEN: u64 = 16 << 20;

/// The first bytes of an OpenSSH KRL (`PROTOCOL.krl`).
const KRL_MAGIC: &[u8] = b"SSHKRL\n\0";

/// A set of revoked keys.
#[derive(Debug, Clone, Default)]
pub struct RevokedKeys {
    keys: HashSet<KeyData>,
}

/// Why a revoked-keys file could not be used. A revocation list is all or
/// nothing: one bad line refuses the whole file.
#[derive(Debug)]
#[non_exhaustive]
pub enum RevokedKeysError {
    /// The file could not be read, or is larger than [`MAX_FILE_LEN`].
    Io(io::Error),
    /// The file is an OpenSSH KRL, which is not supported.
    Krl,
    /// A line is neither a public key nor a certificate.
    InvalidLine {
        /// The line number, from 1.
        line: usize,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for RevokedKeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevokedKeysError::Io(e) => write!(f, "revoked keys: {e}"),
            RevokedKeysError::Krl => f.write_str("revoked keys: KRL not supported; give a list of public keys"),
            RevokedKeysError::InvalidLine { line, reason } => {
                write!(f, "revoked keys: line {line}: {reason}")
            }
        }
    }
}

impl std::error::Error for RevokedKeysError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RevokedKeysError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RevokedKeysError {
    fn from(e: io::Error) -> Self {
        RevokedKeysError::Io(e)
    }
}

impl RevokedKeys {
    /// An empty set: nothing revoked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse the text of a revoked-keys file.
    pub fn parse(text: &str) -> Result<Self, RevokedKeysError> {
        if text.as_bytes().starts_with(KRL_MAGIC) {
            return Err(RevokedKeysError::Krl);
        }
        let mut revoked = Self::new();
        for (index, line) in text.split('\n').enumerate() {
            let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: String| RevokedKeysError::InvalidLine { line: index + 1, reason };
            let key_type = line.split([' ', '\t']).next().unwrap_or_default();
            // ssh-key wants single spaces between the fields.
            let normalised = line.split([' ', '\t']).filter(|f| !f.is_empty()).take(2).collect::<Vec<_>>().join(" ");
            let key = if key_type.ends_with("-cert-v01@openssh.com") {
                Certificate::from_openssh(&normalised)
                    .map_err(|e| invalid(format!("invalid certificate: {e}")))?
                    .public_key()
                    .clone()
            } else {
                PublicKey::from_openssh(&normalised)
                    .map_err(|e| invalid(format!("invalid public key: {e}")))?
                    .key_data()
                    .clone()
            };
            revoked.keys.insert(key);
        }
        Ok(revoked)
    }

    /// Read and parse a revoked-keys file (at most [`MAX_FILE_LEN`] bytes).
    pub fn read(path: impl AsRef<Path>) -> Result<Self, RevokedKeysError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.starts_with(KRL_MAGIC) {
            return Err(RevokedKeysError::Krl);
        }
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(
                io::Error::new(io::ErrorKind::InvalidData, format!("file larger than {MAX_FILE_LEN} bytes")).into()
            );
        }
        let text =
            String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file is not UTF-8"))?;
        Self::parse(&text)
    }

    /// Revoke one more key.
    pub fn insert(&mut self, key: &PublicKey) {
        self.keys.insert(key.key_data().clone());
    }

    /// Whether `key` is revoked (compared by key data, not comment).
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains(key.key_data())
    }

    /// Whether the key data `key` is revoked.
    pub fn contains_key_data(&self, key: &KeyData) -> bool {
        self.keys.contains(key)
    }

    /// Whether a certificate must be refused: its key or the CA key that
    /// signed it is revoked.
    pub fn revokes_certificate(&self, certificate: &Certificate) -> bool {
        self.keys.contains(certificate.public_key()) || self.keys.contains(certificate.signature_key())
    }

    /// How many keys are revoked.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is revoked.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Run ssh-keygen in `dir` with `args`.
    fn keygen(dir: &Path, args: &[&str]) {
        let status = Command::new("ssh-keygen").current_dir(dir).arg("-q").args(args).status().unwrap();
        assert!(status.success(), "ssh-keygen {args:?}");
    }

    fn public(dir: &Path, name: &str) -> PublicKey {
        PublicKey::read_openssh_file(dir.join(name)).unwrap()
    }

    /// A CA, a user key certified by it, and another key, made by ssh-keygen.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, kind) in [("ca", "ed25519"), ("user", "ed25519"), ("other", "ecdsa"), ("rsa", "rsa")] {
            keygen(dir.path(), &["-t", kind, "-N", "", "-C", "made by ssh-keygen", "-f", name]);
        }
        keygen(dir.path(), &["-s", "ca", "-I", "user-id", "-n", "alice", "-z", "7", "user.pub"]);
        dir
    }

    fn read_text(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn revokes_listed_keys_by_key_data_not_comment() {
        let dir = fixture();
        let d = dir.path();
        // Comment changed, blank and comment lines, tabs between fields.
        let user = read_text(d, "user.pub").replace("made by ssh-keygen", "another comment").replacen(' ', "\t ", 1);
        let text = format!("# revoked\n\n{user}  \n{}", read_text(d, "rsa.pub"));
        std::fs::write(d.join("revoked"), &text).unwrap();
        let revoked = RevokedKeys::read(d.join("revoked")).unwrap();
        assert_eq!(revoked.len(), 2);
        assert!(revoked.contains(&public(d, "user.pub")));
        assert!(revoked.contains(&public(d, "rsa.pub")));
        assert!(!revoked.contains(&public(d, "other.pub")));
        assert!(!revoked.contains(&public(d, "ca.pub")));
        assert!(RevokedKeys::new().is_empty());
    }

    #[test]
    fn refuses_certificates_whose_key_or_ca_is_revoked() {
        let dir = fixture();
        let d = dir.path();
        let cert = Certificate::from_openssh(read_text(d, "user-cert.pub").trim()).unwrap();
        assert_eq!(cert.serial(), 7);
        let by_ca = RevokedKeys::parse(&read_text(d, "ca.pub")).unwrap();
        assert!(by_ca.revokes_certificate(&cert));
        assert!(!by_ca.contains(&public(d, "user.pub")));
        let by_key = RevokedKeys::parse(&read_text(d, "user.pub")).unwrap();
        assert!(by_key.revokes_certificate(&cert));
        let unrelated = RevokedKeys::parse(&read_text(d, "other.pub")).unwrap();
        assert!(!unrelated.revokes_certificate(&cert));
        // A certificate line revokes the key it certifies (and not its CA).
        let by_cert_line = RevokedKeys::parse(&read_text(d, "user-cert.pub")).unwrap();
        assert!(by_cert_line.contains(&public(d, "user.pub")));
        assert!(!by_cert_line.contains(&public(d, "ca.pub")));
    }

    #[test]
    fn refuses_a_krl_made_by_ssh_keygen_and_bad_lines() {
        let dir = fixture();
        let d = dir.path();
        keygen(d, &["-k", "-f", "krl", "user.pub"]);
        let e = RevokedKeys::read(d.join("krl")).unwrap_err();
        assert!(matches!(e, RevokedKeysError::Krl), "{e:?}");
        assert_eq!(e.to_string(), "revoked keys: KRL not supported; give a list of public keys");

        let text = format!("{}\nnot a key\n", read_text(d, "user.pub").trim());
        match RevokedKeys::parse(&text).unwrap_err() {
            RevokedKeysError::InvalidLine { line, .. } => assert_eq!(line, 2),
            e => panic!("{e:?}"),
        }
        let file = std::fs::File::create(d.join("big")).unwrap();
        file.set_len(MAX_FILE_LEN + 1).unwrap();
        assert!(matches!(RevokedKeys::read(d.join("big")), Err(RevokedKeysError::Io(_))));
        assert!(matches!(RevokedKeys::read(d.join("missing")), Err(RevokedKeysError::Io(_))));
    }
}
