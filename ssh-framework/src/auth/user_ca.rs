//! [`TrustedUserCaKeys`]: OpenSSH's `TrustedUserCAKeys` with
//! `AuthorizedPrincipalsFile`, a ready policy for `#[auth(certificate)]`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::Auth;
use crate::keys::ssh_key::public::KeyData;
use crate::keys::{Certificate, PublicKey};
use crate::revoked::RevokedKeys;

/// Which certificate authorities may sign user certificates, and which
/// principals each user accepts: what OpenSSH's `TrustedUserCAKeys` and
/// `AuthorizedPrincipalsFile` say.
///
/// A certificate passes when its CA is trusted, neither its key nor its CA is
/// revoked, and it names one of the user's principals: those given for the
/// user ([`principals`](Self::principals),
/// [`principals_file`](Self::principals_file)), or else the user's own name.
/// A certificate without principals passes for nobody. By the time a
/// `#[auth(certificate)]` handler runs, the framework has checked the
/// signatures, the validity window (exactly, with no clock skew: russh checks
/// it before the framework sees the certificate), the type, the critical
/// options and `source-address`.
///
/// ```
/// use ssh_framework::auth::TrustedUserCaKeys;
/// use ssh_framework::keys::Certificate;
/// use ssh_framework::Auth;
///
/// struct App {
///     trusted: TrustedUserCaKeys,
/// }
///
/// #[ssh_framework::server]
/// impl App {
///     #[auth(certificate)]
///     async fn certificate(&self, user: &str, certificate: &Certificate) -> Auth {
///         self.trusted.decide(user, certificate)
///     }
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustedUserCaKeys {
    cas: Vec<KeyData>,
    principals: HashMap<String, Vec<String>>,
    revoked: Option<Arc<RevokedKeys>>,
}

/// Why [`TrustedUserCaKeys`] refused a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateRefusal {
    /// Its CA is not one of the trusted keys.
    UntrustedCa,
    /// Its key or its CA is in the revoked keys.
    Revoked,
    /// It names none of the user's principals.
    Principal,
}

impl fmt::Display for CertificateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertificateRefusal::UntrustedCa => "signed by a CA that is not trusted",
            CertificateRefusal::Revoked => "its key or its CA is revoked",
            CertificateRefusal::Principal => "names none of the user's principals",
        })
    }
}

impl std::error::Error for CertificateRefusal {}

impl TrustedUserCaKeys {
    /// No CA trusted yet.
    pub fn new() -> Self {
        TrustedUserCaKeys::default()
    }

    /// Trusts `ca` to sign user certificates.
    #[must_use]
    pub fn trust(mut self, ca: &PublicKey) -> Self {
        self.cas.push(ca.key_data().clone());
        self
    }

    /// Trusts every CA key of an OpenSSH public-key file (one per line, `#`
    /// comments and blank lines skipped), as `TrustedUserCAKeys` names one.
    pub fn read(path: impl AsRef<Path>) -> io::Result<Self> {
        TrustedUserCaKeys::new().trust_file(path)
    }

    /// Adds the CA keys of a file to those trusted (see [`read`](Self::read)).
    pub fn trust_file(mut self, path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = PublicKey::from_openssh(line).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}:{}: not a public key: {e}", path.display(), index + 1))
            })?;
            self.cas.push(key.key_data().clone());
        }
        Ok(self)
    }

    /// The principals a certificate must name for `user` (instead of the
    /// user's own name).
    #[must_use]
    pub fn principals(mut self, user: impl Into<String>, principals: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.principals.entry(user.into()).or_default().extend(principals.into_iter().map(Into::into));
        self
    }

    /// The principals of `user` from a file in `AuthorizedPrincipalsFile`'s
    /// format: one principal per line, `#` comments and blank lines skipped. A
    /// line with options before the principal is refused (those options are
    /// not supported here) rather than read as a principal.
    pub fn principals_file(self, user: impl Into<String>, path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)?;
        let mut names = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.split_whitespace().nth(1).is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: options before a principal are not supported", path.display(), index + 1),
                ));
            }
            names.push(line.to_owned());
        }
        Ok(self.principals(user, names))
    }

    /// Refuses certificates whose key or CA is in `revoked`.
    #[must_use]
    pub fn revoked(mut self, revoked: RevokedKeys) -> Self {
        self.revoked = Some(Arc::new(revoked));
        self
    }

    /// Whether any CA is trusted.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    /// Checks `certificate` for `user`.
    pub fn check(&self, user: &str, certificate: &Certificate) -> Result<(), CertificateRefusal> {
        if !self.cas.iter().any(|ca| ca == certificate.signature_key()) {
            return Err(CertificateRefusal::UntrustedCa);
        }
        if self.revoked.as_ref().is_some_and(|revoked| revoked.revokes_certificate(certificate)) {
            return Err(CertificateRefusal::Revoked);
        }
        let named = certificate.valid_principals();
        let accepted = match self.principals.get(user) {
            Some(principals) => named.iter().any(|p| principals.contains(p)),
            None => named.iter().any(|p| p == user),
        };
        if !accepted {
            return Err(CertificateRefusal::Principal);
        }
        Ok(())
    }

    /// [`check`](Self::check) as an answer, logging why a certificate is refused.
    pub fn decide(&self, user: &str, certificate: &Certificate) -> Auth {
        match self.check(user, certificate) {
            Ok(()) => Auth::Accept,
            Err(refusal) => {
                tracing::info!(user, key_id = certificate.key_id(), serial = certificate.serial(), reason = %refusal, "certificate refused");
                Auth::Reject
            }
        }
    }
}
