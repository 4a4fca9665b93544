//! Every way to log in, on one small server: a password (alice), a key
//! checked against an authorized_keys file followed by a one-time code as a
//! second factor (bob), and a guest account that needs nothing (`none`). The
//! server lists each user only the methods that user has, shows a banner
//! before login, and answers every command with who you are and how you
//! logged in.
//!
//! `main.rs` reads the configuration and starts the server; the tests build
//! the same [`App`] in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

use ssh_framework::authorized_keys::{AuthorizedKey, AuthorizedKeys, KeyOptions};
use ssh_framework::extract::{PeerAddr, User};
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, Factors, Method, MethodSet, Prompt, Prompter};
use tokio::io::AsyncWriteExt;

// ANCHOR: app
/// The accounts, shared by every connection (handlers take `&self`).
#[derive(Debug, Default)]
pub struct App {
    /// Users who log in with a password.
    passwords: HashMap<String, String>,
    /// Users who log in with a key, each with the keys they may use.
    keys: HashMap<String, AuthorizedKeys>,
    /// Second factor of key users: codes that each work once (taken out when used).
    codes: Mutex<HashMap<String, Vec<String>>>,
    /// Users who need no credentials at all.
    guests: Vec<String>,
}
// ANCHOR_END: app

impl App {
    /// No accounts.
    pub fn new() -> Self {
        App::default()
    }

    /// `user` logs in with `password`.
    pub fn with_password(mut self, user: &str, password: &str) -> Self {
        self.passwords.insert(user.to_owned(), password.to_owned());
        self
    }

    /// `user` logs in with one of `keys`, then one of `codes`, each usable once.
    pub fn with_key_and_code(mut self, user: &str, keys: AuthorizedKeys, codes: &[&str]) -> Self {
        self.keys.insert(user.to_owned(), keys);
        let codes = codes.iter().map(|c| (*c).to_owned()).collect();
        self.codes.get_mut().expect("not poisoned").insert(user.to_owned(), codes);
        self
    }

    /// `user` logs in without credentials.
    pub fn with_guest(mut self, user: &str) -> Self {
        self.guests.push(user.to_owned());
        self
    }

    /// Takes `code` out of `user`'s codes if it is one of them.
    fn use_code(&self, user: &str, code: &str) -> bool {
        let mut codes = self.codes.lock().expect("not poisoned");
        let Some(codes) = codes.get_mut(user) else { return false };
        // Compare with every code, without stopping at the first match, so the
        // time taken says nothing about which code was close.
        let found = codes.iter().fold(None, |found, c| found.or(constant_time_eq(c, code).then(|| c.clone())));
        match found {
            Some(found) => {
                codes.retain(|c| *c != found);
                true
            }
            None => false,
        }
    }
}

// ANCHOR: usable
/// Whether an authorized_keys line lets its key log in now, from `peer`.
/// This server honours `from=` and `expiry-time=`; a line with any other
/// option (`command=`, `restrict`, ...) is refused rather than read as if the
/// option were absent (mini-sshd shows how to enforce them all).
fn usable(line: &AuthorizedKey, peer: Option<SocketAddr>) -> bool {
    let mut others = line.options.clone();
    others.from = None;
    others.expiry_time = None;
    if others != KeyOptions::default() {
        tracing::info!(line = line.line, "authorized_keys line has options this server cannot honour; refused");
        return false;
    }
    let from_allowed = match (peer, &line.options.from) {
        (_, None) => true,
        (Some(peer), Some(_)) => line.options.from_allows(peer.ip()),
        (None, Some(_)) => false,
    };
    from_allowed && !line.options.expired(SystemTime::now())
}
// ANCHOR_END: usable

/// Compares secrets without an early exit at the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

#[ssh_framework::server]
impl App {
    // ANCHOR: banner
    /// Shown before the first prompt (OpenSSH prints it on stderr).
    #[banner]
    async fn banner(&self) -> &'static str {
        "Authorized users only. Every login is logged.\n"
    }
    // ANCHOR_END: banner

    // ANCHOR: allowed_auths
    /// The methods each user may try. An unknown user is offered a password
    /// like alice, so the list does not tell who exists.
    #[allowed_auths]
    async fn methods(&self, user: &str) -> MethodSet {
        if self.keys.contains_key(user) {
            MethodSet::single(Method::PublicKey)
        } else if self.guests.iter().any(|g| g == user) {
            MethodSet::single(Method::None)
        } else {
            MethodSet::single(Method::Password)
        }
    }
    // ANCHOR_END: allowed_auths

    // ANCHOR: password
    #[auth(password)]
    async fn password(&self, user: &str, password: &str) -> Auth {
        match self.passwords.get(user) {
            Some(expected) => Auth::from_bool(constant_time_eq(expected, password)),
            None => Auth::Reject,
        }
    }
    // ANCHOR_END: password

    // ANCHOR: publickey
    /// Called only with a key whose signature the framework verified. A key
    /// on the user's list passes the first factor; the code comes next.
    #[auth(publickey)]
    async fn key(&self, user: &str, key: &PublicKey, peer: PeerAddr) -> Auth {
        let Some(keys) = self.keys.get(user) else { return Auth::Reject };
        // `matching` compares the key material, not the comment.
        if keys.matching(key.key_data()).any(|line| usable(line, peer.0)) {
            Auth::Partial(MethodSet::single(Method::KeyboardInteractive))
        } else {
            Auth::Reject
        }
    }
    // ANCHOR_END: publickey

    // ANCHOR: keyboard_interactive
    /// The second factor: one prompt, answered with one of the user's codes.
    #[auth(keyboard_interactive)]
    async fn code(&self, user: &str, prompter: &mut Prompter, passed: Factors) -> Auth {
        // Never a first factor, whatever the method list says.
        if !passed.contains(Method::PublicKey) {
            return Auth::Reject;
        }
        match prompter.ask("Second factor", "Enter one of your one-time codes.", [Prompt::hidden("One-time code: ")]).await {
            Ok(answers) => Auth::from_bool(answers.first().is_some_and(|code| self.use_code(user, code))),
            // The client gave up or disconnected.
            Err(_) => Auth::Reject,
        }
    }
    // ANCHOR_END: keyboard_interactive

    // ANCHOR: none
    /// `none`: OpenSSH tries it first, for every user; only guests pass.
    #[auth(none)]
    async fn guest(&self, user: &str) -> Auth {
        Auth::from_bool(self.guests.iter().any(|g| g == user))
    }
    // ANCHOR_END: none

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    // ANCHOR: whoami
    /// Any command: says who you are and which methods you passed.
    #[exec]
    async fn whoami(&self, user: User, factors: Factors, _command: Command, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        let methods: Vec<&str> = factors.as_slice().iter().map(|m| m.as_str()).collect();
        io.stdout.write_all(format!("{user} via {}\n", methods.join(" + ")).as_bytes()).await?;
        Ok(ExitStatus::SUCCESS)
    }
    // ANCHOR_END: whoami
}
