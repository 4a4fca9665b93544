//! Who may log in and how: the accounts built from the command line, and the
//! rule that decides each authentication attempt, multi-factor chains included.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use ssh_framework::authorized_keys::{AuthorizedKey, AuthorizedKeys, KeyOptions, PermitPort};
use ssh_framework::forward::PermitOpen;
use ssh_framework::keys::ssh_key::public::KeyData;
use ssh_framework::revoked::RevokedKeys;
use ssh_framework::{Auth, Method, MethodSet, Restrictions};

use crate::args::Args;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One user's credentials.
#[derive(Default)]
pub(crate) struct Account {
    password: Option<String>,
    /// The usable lines of this user's authorized_keys files, in order.
    keys: Vec<AuthorizedLine>,
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

    /// The line that lets `key` log in from `peer` at `now`, as sshd picks it:
    /// the first plain-key line of that key whose `from=` allows the peer and
    /// which has not expired. Lines passed over are logged with the reason.
    pub(crate) fn authorizing(&self, key: &KeyData, peer: Option<IpAddr>, now: SystemTime) -> Option<&AuthorizedLine> {
        self.keys
            .iter()
            .filter(|line| line.entry.names_key(key))
            .find(|line| match line.refusal(peer, now) {
                None => true,
                Some(reason) => {
                    tracing::info!(file = %line.file, line = line.entry.line, %reason, "authorized_keys line does not allow this login");
                    false
                }
            })
    }
}

/// One usable authorized_keys line: the key, its options, and the
/// restrictions they put on a login.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizedLine {
    /// The file it came from, for the log.
    pub(crate) file: String,
    /// The key and options as parsed.
    pub(crate) entry: AuthorizedKey,
    /// What a login through this line may do: its `command=`, `restrict`,
    /// `no-pty`, `permitopen=`, ... options.
    pub(crate) restrictions: Restrictions,
}

impl AuthorizedLine {
    /// Why this line does not let a client at `peer` log in at `now`
    /// (`from=`, `expiry-time=`), or `None` when it does. Without a known peer
    /// address a `from=` line refuses.
    pub(crate) fn refusal(&self, peer: Option<IpAddr>, now: SystemTime) -> Option<String> {
        let options = &self.entry.options;
        if options.from.is_some() {
            match peer {
                Some(peer) if options.from_allows(peer) => {}
                Some(peer) => return Some(format!("from= does not allow {}", peer.to_canonical())),
                None => return Some("from= and no peer address".to_owned()),
            }
        }
        if options.expired(now) {
            return Some("expired".to_owned());
        }
        None
    }

    /// The `environment=` variables for sessions of a login through this
    /// line (only ever non-empty with `--permit-user-environment`).
    pub(crate) fn environment(&self) -> &[(String, String)] {
        &self.entry.options.environment
    }
}

/// The `environment=` variables of the authorized_keys line a login passed
/// with, set in its sessions (a connection extension).
#[derive(Debug, Clone)]
pub(crate) struct KeyEnvironment(pub(crate) Vec<(String, String)>);

/// Compares secrets without an early exit on the first differing byte
/// (`subtle`, whose comparison the optimizer cannot turn back into one).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Every account, by user name.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    users: HashMap<String, Account>,
    /// `--revoked-keys`: refused whatever authorized_keys says.
    revoked: RevokedKeys,
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
        for entry in &args.authorized_keys {
            let keys = read_authorized_keys(&entry.path, args.permit_user_environment)
                .map_err(|e| format!("--authorized-keys {}:{}: {e}", entry.user, entry.path.display()))?;
            users.entry(entry.user.clone()).or_default().keys.extend(keys);
        }
        let revoked = match &args.revoked_keys {
            Some(path) => RevokedKeys::read(path).map_err(|e| format!("--revoked-keys {}: {e}", path.display()))?,
            None => RevokedKeys::new(),
        };
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
        Ok(Accounts { users, revoked, offered })
    }

    /// Decides a publickey attempt as sshd does: a revoked key is refused;
    /// otherwise the first line of `key` that allows a login from `peer` now
    /// passes (see [`decide`](Self::decide) for chains), and is returned with
    /// the answer so that its restrictions go with the login.
    pub(crate) fn publickey(&self, user: &str, key: &KeyData, peer: Option<IpAddr>, passed: &[Method]) -> (Auth, Option<&AuthorizedLine>) {
        if self.revoked().contains_key_data(key) {
            tracing::info!(user, "publickey refused: the key is revoked (--revoked-keys)");
            return (Auth::Reject, None);
        }
        let mut chosen = None;
        let auth = self.decide(user, Method::PublicKey, passed, |account| {
            chosen = account.authorizing(key, peer, SystemTime::now());
            chosen.is_some()
        });
        match auth {
            Auth::Reject => (auth, None),
            _ => (auth, chosen),
        }
    }

    /// The keys and CA keys `--revoked-keys` lists.
    pub(crate) fn revoked(&self) -> &RevokedKeys {
        &self.revoked
    }

    /// `user`'s `cert-authority` lines for the CA key `ca`, in file order
    /// (their `principals=`, `from=`, `expiry-time=` and restrictions are the
    /// certificate handler's to apply; see [`AuthorizedLine::refusal`]).
    pub(crate) fn authorities(&self, user: &str, ca: &KeyData) -> Vec<&AuthorizedLine> {
        self.users.get(user).map_or_else(Vec::new, |account| {
            account
                .keys
                .iter()
                .filter(|line| line.entry.names_authority(ca))
                .collect()
        })
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
    pub(crate) fn decide<'a>(&'a self, user: &str, method: Method, passed: &[Method], verify: impl FnOnce(&'a Account) -> bool) -> Auth {
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

/// The restrictions an authorized_keys line's options put on a login, or the
/// option mini-sshd cannot honour (never widened: the line is skipped).
fn line_restrictions(options: &KeyOptions, permit_user_environment: bool) -> Result<Restrictions, &'static str> {
    // russh does not pass on a security key's flags (user presence, verification).
    if options.no_touch_required {
        return Err("no-touch-required");
    }
    if options.verify_required {
        return Err("verify-required");
    }
    if !options.environment.is_empty() && !permit_user_environment {
        return Err("environment (without --permit-user-environment)");
    }
    let mut restrictions = Restrictions::new()
        .pty(options.allows_pty())
        .port_forwarding(options.allows_port_forwarding())
        .agent_forwarding(options.allows_agent_forwarding())
        .x11_forwarding(options.allows_x11_forwarding())
        .user_rc(options.allows_user_rc());
    if let Some(command) = &options.command {
        restrictions = restrictions.force_command(command.clone());
    }
    if !options.permitopen.is_empty() {
        let list = options.permitopen.iter().try_fold(PermitOpen::none(), |list, p| list.allow(&entry(&p.host, p.port)));
        restrictions = restrictions.permit_open(list.map_err(|_| "permitopen")?);
    }
    if !options.permitlisten.is_empty() {
        let list = options.permitlisten.iter().try_fold(PermitOpen::none(), |list, p| match p.host.as_deref() {
            None | Some("*") => list.allow(&entry("*", p.port)),
            // A wildcard pattern other than `*` has no PermitOpen equivalent.
            Some(host) if host.contains(['*', '?']) => Err(ssh_framework::forward::InvalidPermitOpen(host.to_owned())),
            Some(host) => list.allow(&entry(host, p.port)),
        });
        restrictions = restrictions.permit_listen(list.map_err(|_| "permitlisten (a wildcard host other than *)")?);
    }
    Ok(restrictions)
}

/// A `PermitOpen` entry: `host:port`, an IPv6 address in brackets.
fn entry(host: &str, port: PermitPort) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Reads an OpenSSH authorized_keys file with its options: comments and blank
/// lines are allowed; lines that do not parse (an unknown option among them)
/// or carry an option mini-sshd cannot honour are skipped with a warning
/// naming it, as sshd skips what it does not understand.
fn read_authorized_keys(path: &Path, permit_user_environment: bool) -> Result<Vec<AuthorizedLine>, BoxError> {
    let file = path.display().to_string();
    let parsed = AuthorizedKeys::read(path)?;
    for error in parsed.errors() {
        tracing::warn!(%file, line = error.line(), option = error.option(), %error, "authorized_keys line skipped");
    }
    let mut keys = Vec::new();
    for entry in parsed.into_entries() {
        match line_restrictions(&entry.options, permit_user_environment) {
            Ok(restrictions) => keys.push(AuthorizedLine { file: file.clone(), entry, restrictions }),
            Err(option) => {
                tracing::warn!(%file, line = entry.line, option, "authorized_keys line skipped: option not supported");
            }
        }
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

    /// Writes `text` as an authorized_keys file in a fresh temp dir and reads it.
    fn read(text: &str, permit_user_environment: bool) -> Result<Vec<AuthorizedLine>, BoxError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("authorized_keys");
        std::fs::write(&file, text).unwrap();
        read_authorized_keys(&file, permit_user_environment)
    }

    const A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIPAuElpuAWE9ZH3OKqM80lmFaV9wIIEhyOiaopQdXUXO";
    const B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIKgPHYTjASHso/0NypmHFeqSp+WyB6Cr1DFg7HGueidk";

    fn key(k: &str) -> KeyData {
        ssh_framework::keys::PublicKey::from_openssh(&format!("ssh-ed25519 {k}")).unwrap().key_data().clone()
    }

    #[test]
    fn authorized_keys_lines_keep_their_options_and_skip_what_cannot_be_honoured() {
        let text = format!(
            "# keys\n\nssh-ed25519 {A} laptop\nrestrict,pty,command=\"echo hi\",permitopen=\"[::1]:22\" ssh-ed25519 {B} desktop\n\
             cert-authority,principals=\"ops\" ssh-ed25519 {A} ca\nunknown-option ssh-ed25519 {B}\n\
             no-touch-required ssh-ed25519 {B}\nverify-required ssh-ed25519 {B}\nenvironment=\"X=1\" ssh-ed25519 {B}\n\
             permitlisten=\"10.*:8080\" ssh-ed25519 {B}\nnot a key\n"
        );
        let lines = read(&text, false).unwrap();
        assert_eq!(lines.iter().map(|l| l.entry.line).collect::<Vec<_>>(), [3, 4, 5]);
        let restricted = &lines[1].restrictions;
        assert!(restricted.allows_pty() && !restricted.allows_port_forwarding() && !restricted.allows_agent_forwarding());
        assert_eq!(restricted.forced_command(), Some("echo hi"));
        assert!(lines[2].entry.options.cert_authority);
        // With --permit-user-environment the environment= line is usable too.
        let lines = read(&text, true).unwrap();
        assert_eq!(lines.iter().map(|l| l.entry.line).collect::<Vec<_>>(), [3, 4, 5, 9]);
        assert_eq!(lines[3].environment(), [("X".to_owned(), "1".to_owned())]);
        assert!(read("unknown-option ssh-ed25519 AAAA\n", false).is_err());
    }

    #[test]
    fn the_first_line_whose_from_allows_the_peer_and_which_has_not_expired_wins() {
        let text = format!(
            "from=\"127.0.0.2\",command=\"first\" ssh-ed25519 {A}\nexpiry-time=\"20000101\",command=\"second\" ssh-ed25519 {A}\n\
             from=\"127.0.0.0/8,!127.0.0.3\",command=\"third\" ssh-ed25519 {A}\ncert-authority ssh-ed25519 {B}\n"
        );
        let account = Account { keys: read(&text, false).unwrap(), ..Account::default() };
        let now = SystemTime::now();
        let forced = |peer: &str| {
            account.authorizing(&key(A), Some(peer.parse().unwrap()), now).map(|l| l.restrictions.forced_command().unwrap().to_owned())
        };
        assert_eq!(forced("127.0.0.2").as_deref(), Some("first"));
        assert_eq!(forced("127.0.0.1").as_deref(), Some("third"));
        assert_eq!(forced("::ffff:127.0.0.1").as_deref(), Some("third"));
        assert_eq!(forced("127.0.0.3"), None);
        assert!(account.authorizing(&key(A), None, now).is_none());
        // A cert-authority line never lets its key log in as a plain key.
        assert!(account.authorizing(&key(B), Some("127.0.0.1".parse().unwrap()), now).is_none());
    }

    #[test]
    fn revoked_keys_are_refused_and_cert_authorities_are_listed_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, revoked) = (dir.path().join("ak"), dir.path().join("revoked"));
        std::fs::write(&keys, format!("ssh-ed25519 {A}\ncert-authority,principals=\"ops\" ssh-ed25519 {B} ca\n")).unwrap();
        std::fs::write(&revoked, format!("ssh-ed25519 {A} gone\n")).unwrap();
        let ak = format!("--authorized-keys=alice:{}", keys.display());
        let a = accounts(&[&ak]);
        assert_eq!(a.publickey("alice", &key(A), None, &[]).0, Auth::Accept);
        assert_eq!(a.authorities("alice", &key(B)).len(), 1);
        assert!(a.authorities("alice", &key(A)).is_empty() && a.authorities("bob", &key(B)).is_empty());
        let a = accounts(&[&ak, &format!("--revoked-keys={}", revoked.display())]);
        assert_eq!(a.publickey("alice", &key(A), None, &[]).0, Auth::Reject);
        assert!(a.revoked().contains_key_data(&key(A)));
        // A KRL is a startup error with the parser's message.
        std::fs::write(&revoked, b"SSHKRL\n\0rest").unwrap();
        let args = Args::parse_from(["mini-sshd", &ak, &format!("--revoked-keys={}", revoked.display())]);
        let error = Accounts::from_args(&args, None).unwrap_err().to_string();
        assert!(error.contains("KRL not supported"), "{error}");
    }

    #[test]
    fn constant_time_eq_compares_whole_secrets() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
