//! Who may log in and how: the accounts built from the command line, and the
//! rule that decides each authentication attempt, multi-factor chains included.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use ssh_framework::keys::ssh_key::authorized_keys::AuthorizedKeys;
use ssh_framework::keys::ssh_key::public::KeyData;
use ssh_framework::{Auth, Method, MethodSet};

use crate::args::Args;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One user's credentials.
#[derive(Default)]
pub(crate) struct Account {
    password: Option<String>,
    /// Key data only: comments and options of authorized_keys lines play no part in matching.
    keys: Vec<KeyData>,
    code: Option<String>,
    /// `--require`: the methods to pass in order.
    chain: Option<Vec<Method>>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("keys", &self.keys.len())
            .field("code", &self.code.as_ref().map(|_| "***"))
            .field("chain", &self.chain)
            .finish()
    }
}

impl Account {
    /// The methods this account has a credential for.
    fn configured(&self) -> MethodSet {
        let mut set = MethodSet::EMPTY;
        if self.password.is_some() {
            set.insert(Method::Password);
        }
        if !self.keys.is_empty() {
            set.insert(Method::PublicKey);
        }
        if self.code.is_some() {
            set.insert(Method::KeyboardInteractive);
        }
        set
    }

    /// The methods listed before any has passed: the first of the chain, or
    /// every method the account has a credential for.
    fn first_offer(&self) -> MethodSet {
        match &self.chain {
            Some(chain) => chain.first().map_or(MethodSet::EMPTY, |m| MethodSet::single(*m)),
            None => self.configured(),
        }
    }

    /// Whether `password` is this account's password.
    pub(crate) fn password_is(&self, password: &str) -> bool {
        self.password.as_deref().is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()))
    }

    /// Whether `code` is this account's keyboard-interactive code.
    pub(crate) fn code_is(&self, code: &str) -> bool {
        self.code.as_deref().is_some_and(|c| constant_time_eq(c.as_bytes(), code.as_bytes()))
    }

    /// Whether `key` is one of this account's authorized keys.
    pub(crate) fn authorizes(&self, key: &KeyData) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// Compares secrets without an early exit on the first differing byte
/// (`subtle`, whose comparison the optimizer cannot turn back into one).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Every account, by user name.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    users: HashMap<String, Account>,
    /// What unknown users are offered: the list most accounts are offered, so
    /// that an unknown name gets a list some real account gets too (the union
    /// of every account's methods would set unknown names apart).
    offered: MethodSet,
}

impl Accounts {
    /// Builds the accounts from the command line, reading authorized_keys files;
    /// `demo_password`, when given, adds user `demo` with that password.
    pub(crate) fn from_args(args: &Args, demo_password: Option<&str>) -> Result<Self, BoxError> {
        let mut users: HashMap<String, Account> = HashMap::new();
        if let Some(password) = demo_password {
            users.entry("demo".into()).or_default().password = Some(password.to_owned());
        }
        for entry in &args.users {
            let account = users.entry(entry.user.clone()).or_default();
            if account.password.replace(entry.secret.clone()).is_some() {
                return Err(format!("--user {}: given twice", entry.user).into());
            }
        }
        for entry in &args.kbd_interactive {
            let account = users.entry(entry.user.clone()).or_default();
            if account.code.replace(entry.secret.clone()).is_some() {
                return Err(format!("--kbd-interactive {}: given twice", entry.user).into());
            }
        }
        let honoured = honoured_options(args);
        for entry in &args.authorized_keys {
            let keys = read_authorized_keys(&entry.path, &honoured)
                .map_err(|e| format!("--authorized-keys {}:{}: {e}", entry.user, entry.path.display()))?;
            users.entry(entry.user.clone()).or_default().keys.extend(keys);
        }
        for entry in &args.require {
            let account = users.entry(entry.user.clone()).or_default();
            if account.chain.is_some() {
                return Err(format!("--require {}: given twice", entry.user).into());
            }
            let configured = account.configured();
            if let Some(missing) = entry.methods.iter().find(|m| **m != Method::None && !configured.contains(**m)) {
                let flag = match missing {
                    Method::Password => "--user",
                    Method::PublicKey => "--authorized-keys",
                    _ => "--kbd-interactive",
                };
                return Err(format!("--require {}: `{missing}` needs {flag} {}:...", entry.user, entry.user).into());
            }
            account.chain = Some(entry.methods.clone());
        }
        let offered = most_common(users.values().map(Account::first_offer));
        Ok(Accounts { users, offered })
    }

    /// The user names, sorted (for the startup log).
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.users.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The methods listed to `user` before any has passed: the first of a
    /// chain, or every method the account has a credential for; for an
    /// unknown user, the list most accounts get.
    pub(crate) fn allowed(&self, user: &str) -> MethodSet {
        self.users.get(user).map_or(self.offered, Account::first_offer)
    }

    /// Decides one attempt with `method`, which `verify` checks against the account.
    ///
    /// Without a chain any configured method accepts. With one, `method` must
    /// be the next in the chain after those already `passed`; it then answers
    /// [`Auth::Partial`] with the method after it, or [`Auth::Accept`] at the end.
    pub(crate) fn decide(&self, user: &str, method: Method, passed: &[Method], verify: impl FnOnce(&Account) -> bool) -> Auth {
        let Some(account) = self.users.get(user) else {
            return Auth::Reject;
        };
        match &account.chain {
            None => Auth::from_bool(account.configured().contains(method) && verify(account)),
            Some(chain) => {
                let done = passed;
                if !chain.starts_with(done) || chain.get(done.len()) != Some(&method) || !verify(account) {
                    return Auth::Reject;
                }
                match chain.get(done.len() + 1) {
                    Some(next) => Auth::Partial(MethodSet::single(*next)),
                    None => Auth::Accept,
                }
            }
        }
    }
}

/// The list offered to the most accounts; on a tie one without `none` (an
/// open account is the exception), then the longer, then the one that sorts
/// first by name, so the choice does not depend on hash order.
fn most_common(lists: impl Iterator<Item = MethodSet>) -> MethodSet {
    let mut counts: Vec<(MethodSet, usize)> = Vec::new();
    for list in lists {
        match counts.iter_mut().find(|(l, _)| *l == list) {
            Some((_, n)) => *n += 1,
            None => counts.push((list, 1)),
        }
    }
    counts
        .into_iter()
        .max_by(|(a, n), (b, m)| {
            n.cmp(m)
                .then(b.contains(Method::None).cmp(&a.contains(Method::None)))
                .then(a.iter().count().cmp(&b.iter().count()))
                .then_with(|| b.to_string().cmp(&a.to_string()))
        })
        .map_or(MethodSet::EMPTY, |(list, _)| list)
}

/// Options of authorized_keys lines that mini-sshd honours by what it is: it
/// runs no `~/.ssh/rc`, and forwards only what the command line allows, for
/// every key alike. A line with any other option (`from=`, `command=`,
/// `restrict`, `no-pty`, `cert-authority`, or `no-port-forwarding` once TCP
/// forwarding is allowed, ...) would grant more than it says here, so it is
/// skipped.
fn honoured_options(args: &Args) -> Vec<&'static str> {
    let mut options = vec!["no-user-rc"];
    if !args.allow_tcp_forwarding {
        options.extend(["no-port-forwarding", "permitopen", "permitlisten"]);
    }
    if !args.allow_agent_forwarding {
        options.push("no-agent-forwarding");
    }
    if !args.allow_x11_forwarding {
        options.push("no-x11-forwarding");
    }
    options
}

/// Reads the keys of an OpenSSH authorized_keys file: comments and blank lines
/// are allowed; lines that do not parse or carry options other than `honoured`
/// are skipped with a warning, as sshd skips what it does not understand.
fn read_authorized_keys(path: &Path, honoured: &[&str]) -> Result<Vec<KeyData>, BoxError> {
    let text = std::fs::read_to_string(path)?;
    let mut keys = Vec::new();
    for (index, entry) in AuthorizedKeys::new(&text).enumerate() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(file = %path.display(), entry = index + 1, %error, "authorized_keys entry skipped");
                continue;
            }
        };
        let unsupported = entry.config_opts().iter().find(|option| {
            let name = option.split('=').next().unwrap_or_default().to_ascii_lowercase();
            !honoured.contains(&name.as_str())
        });
        if let Some(option) = unsupported {
            tracing::warn!(file = %path.display(), entry = index + 1, option, "authorized_keys entry skipped: option not supported");
            continue;
        }
        keys.push(entry.public_key().key_data().clone());
    }
    if keys.is_empty() {
        return Err("no usable keys in the file".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn accounts(argv: &[&str]) -> Accounts {
        let args = Args::parse_from(std::iter::once("mini-sshd").chain(argv.iter().copied()));
        Accounts::from_args(&args, None).unwrap()
    }

    #[test]
    fn single_method_users_accept_any_configured_method() {
        let a = accounts(&["--user", "alice:pw", "--kbd-interactive", "alice:123"]);
        assert_eq!(a.decide("alice", Method::Password, &[], |a| a.password_is("pw")), Auth::Accept);
        assert_eq!(a.decide("alice", Method::Password, &[], |a| a.password_is("no")), Auth::Reject);
        assert_eq!(a.decide("alice", Method::KeyboardInteractive, &[], |a| a.code_is("123")), Auth::Accept);
        assert_eq!(a.decide("alice", Method::None, &[], |_| true), Auth::Reject);
        assert_eq!(a.decide("bob", Method::Password, &[], |_| true), Auth::Reject);
        assert_eq!(a.allowed("alice"), MethodSet::from([Method::Password, Method::KeyboardInteractive]));
    }

    #[test]
    fn chains_start_with_their_first_method_and_answer_partial() {
        let a = accounts(&["--user", "alice:pw", "--kbd-interactive", "alice:123", "--require", "alice:password,keyboard-interactive"]);
        assert_eq!(a.allowed("alice"), MethodSet::single(Method::Password));
        assert_eq!(
            a.decide("alice", Method::Password, &[], |a| a.password_is("pw")),
            Auth::Partial(MethodSet::single(Method::KeyboardInteractive))
        );
        assert_eq!(a.decide("alice", Method::KeyboardInteractive, &[Method::Password], |a| a.code_is("123")), Auth::Accept);
        assert_eq!(a.decide("alice", Method::KeyboardInteractive, &[Method::Password], |a| a.code_is("1")), Auth::Reject);
        // Out of order: the second method first, or the first again.
        assert_eq!(a.decide("alice", Method::KeyboardInteractive, &[], |_| true), Auth::Reject);
        assert_eq!(a.decide("alice", Method::Password, &[Method::Password], |_| true), Auth::Reject);
    }

    #[test]
    fn unknown_users_are_offered_what_known_users_have() {
        let a = accounts(&["--user", "alice:pw", "--require", "bob:none"]);
        assert_eq!(a.allowed("mallory"), MethodSet::single(Method::Password));
        assert_eq!(a.allowed("bob"), MethodSet::single(Method::None));
        assert_eq!(a.decide("bob", Method::None, &[], |_| true), Auth::Accept);
    }

    #[test]
    fn unknown_users_get_the_list_most_accounts_get_not_the_union() {
        let a = accounts(&["--user", "alice:pw", "--user", "bob:pw", "--kbd-interactive", "carol:123"]);
        assert_eq!(a.allowed("mallory"), MethodSet::single(Method::Password));
        // A tie: the longer list, so no single-method account stands apart from unknown names.
        let a = accounts(&["--user", "alice:pw", "--kbd-interactive", "alice:1", "--kbd-interactive", "carol:123"]);
        assert_eq!(a.allowed("mallory"), a.allowed("alice"));
        assert_ne!(a.allowed("mallory"), a.allowed("carol"));
    }

    #[test]
    fn a_chain_needs_credentials_for_its_methods() {
        let args = Args::parse_from(["mini-sshd", "--user", "alice:pw", "--require", "alice:password,publickey"]);
        let error = Accounts::from_args(&args, None).unwrap_err().to_string();
        assert!(error.contains("--authorized-keys alice"), "{error}");
    }

    #[test]
    fn authorized_keys_match_by_key_data_and_skip_options_that_cannot_be_honoured() {
        let dir = std::env::temp_dir().join(format!("mini-sshd-ak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("authorized_keys");
        let a = "AAAAC3NzaC1lZDI1NTE5AAAAIPAuElpuAWE9ZH3OKqM80lmFaV9wIIEhyOiaopQdXUXO";
        let b = "AAAAC3NzaC1lZDI1NTE5AAAAIKgPHYTjASHso/0NypmHFeqSp+WyB6Cr1DFg7HGueidk";
        let text = format!(
            "# keys\n\nssh-ed25519 {a} laptop\nno-port-forwarding ssh-ed25519 {b} desktop\n\
             cert-authority ssh-ed25519 {a} ca\nfrom=\"10.0.0.1\" ssh-ed25519 {b}\nnot a key\n"
        );
        std::fs::write(&file, text).unwrap();
        let keys = read_authorized_keys(&file, &honoured_options(&Args::parse_from(["mini-sshd"]))).unwrap();
        // Once TCP forwarding is allowed, `no-port-forwarding` would no longer hold for that key.
        let forwarding = Args::parse_from(["mini-sshd", "--allow-tcp-forwarding"]);
        let keys_when_forwarding = read_authorized_keys(&file, &honoured_options(&forwarding)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let parse = |k: &str| ssh_framework::keys::PublicKey::from_openssh(&format!("ssh-ed25519 {k} other comment")).unwrap();
        assert_eq!(keys, [parse(a).key_data().clone(), parse(b).key_data().clone()]);
        assert_eq!(keys_when_forwarding, [parse(a).key_data().clone()]);
    }

    #[test]
    fn constant_time_eq_compares_whole_secrets() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
