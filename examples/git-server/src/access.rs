//! Who may do what: the access file, read once at start.
//!
//! ```toml
//! # Who logs in: a user name and the public keys (as in a `.pub` file or an
//! # authorized_keys line without options) that prove it.
//! [users.alice]
//! keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... alice@laptop"]
//!
//! [users.bob]
//! keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... bob@desktop"]
//!
//! # What each user may do, per repository: "read" (clone, fetch, archive)
//! # or "write" (push too). "*" stands for every user in [users].
//! [repos."project.git"]
//! alice = "write"
//! bob = "read"
//!
//! [repos."docs/handbook.git"]
//! "*" = "read"
//! ```
//!
//! A repository or user not listed has no rights. Errors name the entry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use ssh_framework::keys::PublicKey;

use crate::path::RepoPath;

/// A right on a repository; `Write` includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Clone, fetch and `git archive --remote`.
    Read,
    /// Push too.
    Write,
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Right::Read => "read",
            Right::Write => "write",
        })
    }
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
    #[serde(default)]
    repos: BTreeMap<String, BTreeMap<String, Right>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    keys: Vec<String>,
}

/// A mistake in the access file, with the entry it is in.
#[derive(Debug)]
pub struct AccessError(String);

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccessError {}

/// The stand-in for every user in a repository's rights.
const EVERYONE: &str = "*";

// ANCHOR: access
/// The access file, checked: every key belongs to one user, every
/// repository name follows the path rules, every user named in a
/// repository's rights exists.
#[derive(Debug)]
pub struct Access {
    /// Each key and the user it logs in as.
    keys: Vec<(PublicKey, String)>,
    /// Per repository, per user (or `*`), the right.
    repos: BTreeMap<RepoPath, BTreeMap<String, Right>>,
}

impl Access {
    /// The user a key logs in as, if any: the key material is compared,
    /// not the comment.
    pub fn user_for(&self, key: &PublicKey) -> Option<&str> {
        self.keys.iter().find(|(known, _)| known.key_data() == key.key_data()).map(|(_, user)| user.as_str())
    }

    /// What `user` may do with `repo`: the higher of the user's own right
    /// and the one given to `*`; `None` when neither is listed.
    pub fn right(&self, user: &str, repo: &RepoPath) -> Option<Right> {
        let rights = self.repos.get(repo)?;
        rights.get(user).max(rights.get(EVERYONE)).copied()
    }
}
// ANCHOR_END: access

impl Access {
    /// Reads and checks the access file at `path`.
    pub fn read(path: &Path) -> Result<Access, AccessError> {
        let text = std::fs::read_to_string(path).map_err(|e| AccessError(format!("{}: {e}", path.display())))?;
        Access::parse(&text).map_err(|e| AccessError(format!("{}: {e}", path.display())))
    }

    /// Parses and checks the text of an access file.
    pub fn parse(text: &str) -> Result<Access, AccessError> {
        let file: AccessFile = toml::from_str(text).map_err(|e| AccessError(e.to_string()))?;
        let mut keys: Vec<(PublicKey, String)> = Vec::new();
        for (user, entry) in &file.users {
            if !valid_user(user) {
                return Err(AccessError(format!("user `{user}`: a user name is made of A-Z, a-z, 0-9, `.`, `_` and `-`")));
            }
            for line in &entry.keys {
                let key = PublicKey::from_openssh(line.trim())
                    .map_err(|e| AccessError(format!("user `{user}`: key `{line}`: {e}")))?;
                if let Some((_, other)) = keys.iter().find(|(known, _)| known.key_data() == key.key_data()) {
                    return Err(AccessError(format!("user `{user}`: a key of theirs is also `{other}`'s")));
                }
                keys.push((key, user.clone()));
            }
        }
        let mut repos = BTreeMap::new();
        for (name, rights) in file.repos {
            let repo = RepoPath::parse(&name).map_err(|e| AccessError(format!("repository `{name}`: {e}")))?;
            if let Some(user) = rights.keys().find(|user| *user != EVERYONE && !file.users.contains_key(*user)) {
                return Err(AccessError(format!("repository `{name}`: `{user}` is not in [users]")));
            }
            if repos.insert(repo, rights).is_some() {
                return Err(AccessError(format!("repository `{name}` is listed twice")));
            }
        }
        Ok(Access { keys, repos })
    }
}

fn valid_user(user: &str) -> bool {
    !user.is_empty() && user.len() <= 64 && user.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFSMcqep9DnP4dIQ4a0K6IEwqAQQTO9BUg4KQq9VUcF0 alice";
    const BOB: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIACC1t3bGoIMIAiN7OVdnBhcOcSW+/FYM6BZffES4IwR bob";

    fn access() -> Access {
        Access::parse(&format!(
            "[users.alice]\nkeys = [\"{ALICE}\"]\n[users.bob]\nkeys = [\"{BOB}\"]\n\
             [repos.\"project.git\"]\nalice = \"write\"\nbob = \"read\"\n\
             [repos.\"/docs/book.git\"]\n\"*\" = \"read\"\nalice = \"write\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn keys_map_to_users_and_users_to_rights() {
        let access = access();
        let alice = PublicKey::from_openssh(ALICE).unwrap();
        assert_eq!(access.user_for(&alice), Some("alice"));
        let project = RepoPath::parse("project.git").unwrap();
        let book = RepoPath::parse("docs/book.git").unwrap();
        assert_eq!(access.right("alice", &project), Some(Right::Write));
        assert_eq!(access.right("bob", &project), Some(Right::Read));
        assert_eq!(access.right("bob", &book), Some(Right::Read));
        assert_eq!(access.right("alice", &book), Some(Right::Write));
        assert_eq!(access.right("carol", &project), None);
        assert_eq!(access.right("alice", &RepoPath::parse("other.git").unwrap()), None);
    }

    #[test]
    fn mistakes_are_refused_with_the_entry_named() {
        for (text, needle) in [
            (format!("[users.alice]\nkeys = [\"{ALICE}\"]\n[repos.\"../x.git\"]\nalice = \"read\"\n"), "../x.git"),
            (format!("[users.alice]\nkeys = [\"{ALICE}\"]\n[repos.\"x.git\"]\nbob = \"read\"\n"), "bob"),
            (format!("[users.alice]\nkeys = [\"{ALICE}\"]\n[users.bob]\nkeys = [\"{ALICE}\"]\n"), "also"),
            (format!("[users.alice]\nkeys = [\"{ALICE}\"]\n[repos.\"x.git\"]\nalice = \"admin\"\n"), "admin"),
            ("[users.alice]\nkeys = [\"ssh-ed25519 garbage\"]\n".to_owned(), "alice"),
            ("[users.\"a b\"]\nkeys = []\n".to_owned(), "a b"),
            ("[user.alice]\n".to_owned(), "user"),
        ] {
            let error = Access::parse(&text).unwrap_err().to_string();
            assert!(error.contains(needle), "{error:?} does not name {needle:?}");
        }
    }
}
