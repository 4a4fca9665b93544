//! OpenSSH `authorized_keys` files with their options, parsed into types a
//! server can enforce (sshd(8), "AUTHORIZED_KEYS FILE FORMAT").
//!
//! Each line is `[options] keytype base64-key [comment]`; `#` starts a
//! comment line. [`AuthorizedKeys::parse`] refuses the first bad line;
//! [`AuthorizedKeys::parse_lenient`] keeps the good lines and lists the bad
//! ones in [`errors`](AuthorizedKeys::errors), each naming its line and the
//! option at fault, so a server can skip them with a warning. A line is bad
//! when its options are malformed or include one this parser does not know
//! or cannot honour (`tunnel=`, a port given as a service name): such a line
//! is never read as if the option were absent.
//!
//! What the options mean is in [`KeyOptions`]; enforcing them is the server's
//! part.
//!
//! ```
//! use ssh_framework::authorized_keys::AuthorizedKeys;
//!
//! let file = r#"
//! from="192.0.2.0/24,!192.0.2.7",restrict,pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC97FFrE10b6vzWmyKpmDWWqX3Qp+DrSwd1yuHpJob91 ops@laptop
//! tunnel="1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC97FFrE10b6vzWmyKpmDWWqX3Qp+DrSwd1yuHpJob91
//! "#;
//! let keys = AuthorizedKeys::parse_lenient(file);
//! let ops = &keys.entries()[0];
//! assert!(ops.options.allows_pty() && !ops.options.allows_port_forwarding());
//! assert!(ops.options.from_allows("192.0.2.1".parse().unwrap()));
//! assert!(!ops.options.from_allows("192.0.2.7".parse().unwrap()));
//! assert_eq!(keys.errors()[0].line(), 3);
//! assert_eq!(keys.errors()[0].option(), Some("tunnel"));
//! ```

mod expiry;
mod options;
mod pattern;

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;

pub use self::options::{KeyOptions, MAX_ENVIRONMENT, MAX_PERMITS, OptionError, PermitListen, PermitOpen, PermitPort};
pub use self::pattern::HostPattern;

/// [`AuthorizedKeys::read`] refuses a file larger than this (16 MiB): a
/// file of about 100,000 RSA-4096 keys.
pub const MAX_FILE_LEN: u64 = 16 << 20;

/// The key types of OpenSSH that can start a line (an options field cannot
/// start with one, so this decides whether a line has options).
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed448",
];

/// The parsed lines of an `authorized_keys` file.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys {
    entries: Vec<AuthorizedKey>,
    errors: Vec<ParseError>,
}

/// One key line: the key, its options and its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizedKey {
    /// The public key (its comment set to [`comment`](Self::comment)). With
    /// `cert-authority` this is a CA key, not a key to log in with.
    pub key: PublicKey,
    /// The options in front of the key (default when none).
    pub options: KeyOptions,
    /// The text after the key, blanks around it trimmed (empty when none).
    pub comment: String,
    /// The line number in the file, from 1.
    pub line: usize,
}

/// A line that could not be used: its number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    line: usize,
    kind: ParseErrorKind,
}

/// Why a line could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// An option is unknown, not supported, or malformed.
    InvalidOption(OptionError),
    /// A quote in the options field is not closed.
    UnterminatedQuote,
    /// No key after the options.
    MissingKey,
    /// The key does not parse (the message is `ssh-key`'s).
    InvalidKey(String),
    /// The line holds a certificate (`*-cert-v01@openssh.com`); OpenSSH
    /// allows one only to name its key, which a plain key line does better.
    Certificate,
    /// The line is not UTF-8.
    NotUtf8,
}

impl ParseError {
    /// The line number, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Why the line was refused.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// The option at fault, when the options were.
    pub fn option(&self) -> Option<&str> {
        match &self.kind {
            ParseErrorKind::InvalidOption(e) => Some(e.option()),
            _ => None,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.kind {
            ParseErrorKind::InvalidOption(e) => write!(f, "{e}"),
            ParseErrorKind::UnterminatedQuote => f.write_str("missing end quote in options"),
            ParseErrorKind::MissingKey => f.write_str("no key after the options"),
            ParseErrorKind::InvalidKey(e) => write!(f, "invalid key: {e}"),
            ParseErrorKind::Certificate => f.write_str("a certificate is not accepted here; give its key"),
            ParseErrorKind::NotUtf8 => f.write_str("not UTF-8"),
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ParseErrorKind::InvalidOption(e) => Some(e),
            _ => None,
        }
    }
}

impl AuthorizedKeys {
    /// Parse a whole file, refusing it at its first bad line.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let keys = Self::parse_lenient(text);
        match keys.errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(Self { entries: keys.entries, errors: Vec::new() }),
        }
    }

    /// Parse a whole file, keeping the good lines and listing the bad ones in
    /// [`errors`](Self::errors) (sshd skips those lines).
    pub fn parse_lenient(text: &str) -> Self {
        Self::from_lines(text.split('\n').map(Ok))
    }

    /// Read and parse a file as [`parse_lenient`](Self::parse_lenient) does
    /// (a line that is not UTF-8 is one more error). Fails on I/O errors and
    /// on a file larger than [`MAX_FILE_LEN`].
    pub fn read(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("authorized_keys file larger than {MAX_FILE_LEN} bytes"),
            ));
        }
        Ok(Self::from_lines(bytes.split(|&b| b == b'\n').map(|line| std::str::from_utf8(line).map_err(|_| ()))))
    }

    fn from_lines<'a>(lines: impl Iterator<Item = Result<&'a str, ()>>) -> Self {
        let mut keys = Self::default();
        for (index, line) in lines.enumerate() {
            let line_no = index + 1;
            let parsed = line.map_err(|()| ParseErrorKind::NotUtf8).and_then(|line| parse_line(line, line_no));
            match parsed {
                Ok(Some(entry)) => keys.entries.push(entry),
                Ok(None) => {}
                Err(kind) => keys.errors.push(ParseError { line: line_no, kind }),
            }
        }
        keys
    }

    /// The good lines, in file order.
    pub fn entries(&self) -> &[AuthorizedKey] {
        &self.entries
    }

    /// The bad lines, in file order (always empty after
    /// [`parse`](Self::parse)).
    pub fn errors(&self) -> &[ParseError] {
        &self.errors
    }

    /// The good lines, by value.
    pub fn into_entries(self) -> Vec<AuthorizedKey> {
        self.entries
    }

    /// The lines that let `key` log in as a plain key (not `cert-authority`),
    /// in file order; sshd takes the first whose options allow the login.
    pub fn matching<'a>(&'a self, key: &'a KeyData) -> impl Iterator<Item = &'a AuthorizedKey> + 'a {
        self.entries.iter().filter(move |e| e.names_key(key))
    }

    /// The `cert-authority` lines of the CA key `ca`, in file order.
    pub fn authorities<'a>(&'a self, ca: &'a KeyData) -> impl Iterator<Item = &'a AuthorizedKey> + 'a {
        self.entries.iter().filter(move |e| e.names_authority(ca))
    }
}

impl AuthorizedKey {
    /// Whether this is a plain-key line (not `cert-authority`) for `key`.
    pub fn names_key(&self, key: &KeyData) -> bool {
        !self.options.cert_authority && self.key.key_data() == key
    }

    /// Whether this is a `cert-authority` line for the CA key `ca`.
    pub fn names_authority(&self, ca: &KeyData) -> bool {
        self.options.cert_authority && self.key.key_data() == ca
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `Ok(None)` for blank and comment lines.
fn parse_line(line: &str, line_no: usize) -> Result<Option<AuthorizedKey>, ParseErrorKind> {
    let line = line.strip_suffix('\r').unwrap_or(line).trim_start_matches(is_blank);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let first = line.split(is_blank).next().unwrap_or_default();
    let (options, rest) = if is_key_type(first) {
        (KeyOptions::default(), line)
    } else {
        let end = options_end(line).ok_or(ParseErrorKind::UnterminatedQuote)?;
        let options = KeyOptions::parse(&line[..end]).map_err(ParseErrorKind::InvalidOption)?;
        (options, line[end..].trim_start_matches(is_blank))
    };
    let mut fields = rest.splitn(3, is_blank);
    let (Some(key_type), Some(base64)) = (fields.next().filter(|t| !t.is_empty()), fields.next()) else {
        return Err(ParseErrorKind::MissingKey);
    };
    if key_type.ends_with("-cert-v01@openssh.com") {
        return Err(ParseErrorKind::Certificate);
    }
    let comment = fields.next().unwrap_or_default().trim_matches(is_blank).to_owned();
    let mut key = PublicKey::from_openssh(&format!("{key_type} {base64}"))
        .map_err(|e| ParseErrorKind::InvalidKey(e.to_string()))?;
    key.set_comment(comment.as_str());
    Ok(Some(AuthorizedKey { key, options, comment, line: line_no }))
}

fn is_key_type(word: &str) -> bool {
    KEY_TYPES.contains(&word) || word.ends_with("-cert-v01@openssh.com")
}

/// Where the options field ends: the first blank outside quotes (`\"`
/// skipped everywhere, as OpenSSH's `sshkey_advance_past_options`); `None`
/// when a quote is left open.
fn options_end(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    (!quoted).then_some(bytes.len())
}

#[cfg(test)]
mod tests;
