//! The server-wide budget of files and directories that SFTP and SCP sessions
//! hold open for clients, with a share per user.
//!
//! Every handle the built-in SFTP server or an SCP transfer holds is an open
//! file descriptor (for the built-in SFTP server's `FsBackend`), and the process has
//! one table of them for every connection: without a budget, one user with a
//! few SFTP channels could fill it, and then the accept loop, other users'
//! logins and their opens all fail with "Too many open files". The budget
//! refuses the open instead, promptly, with that same message.
//!
//! A counter under one lock, taken once per open and once per close, never on
//! a read or a write.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

/// The server's budget: at most `max` open files in all, `max_per_user` per user.
pub(crate) struct OpenFiles {
    max: usize,
    max_per_user: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    per_user: HashMap<Arc<str>, usize>,
}

impl fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFiles").field("max", &self.max).field("max_per_user", &self.max_per_user).finish_non_exhaustive()
    }
}

impl OpenFiles {
    /// A budget of `max` open files, `max_per_user` of them per user (both at least 1).
    pub(crate) fn new(max: usize, max_per_user: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(OpenFiles { max, max_per_user: max_per_user.clamp(1, max), state: Mutex::default() })
    }

    /// The share of `user` (the authenticated user name).
    pub(crate) fn for_user(self: &Arc<Self>, user: &str) -> UserFiles {
        UserFiles { budget: self.clone(), user: Arc::from(user) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change is complete before the lock is released: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open files in all and of `user` (for tests and logs).
    #[cfg(test)]
    fn in_use(&self, user: &str) -> (usize, usize) {
        let state = self.state();
        (state.total, state.per_user.get(user).copied().unwrap_or(0))
    }
}

/// One user's share of the server's [`OpenFiles`]: what an SFTP or SCP session
/// of that user takes its open files from.
#[derive(Clone)]
pub(crate) struct UserFiles {
    budget: Arc<OpenFiles>,
    user: Arc<str>,
}

impl fmt::Debug for UserFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserFiles").field("user", &self.user).field("budget", &self.budget).finish()
    }
}

impl UserFiles {
    /// The most this user may hold open.
    pub(crate) fn share(&self) -> usize {
        self.budget.max_per_user
    }

    /// Takes one open file from the budget; `Err` ("Too many open files")
    /// when the user's share or the server's budget is spent.
    pub(crate) fn open(&self) -> io::Result<OpenFile> {
        let budget = &*self.budget;
        let mut state = budget.state();
        if state.total >= budget.max {
            tracing::info!(max = budget.max, "the server's budget of open files is spent; open refused");
            return Err(too_many());
        }
        // The map holds users with files open only, so it is bounded by the budget.
        let mine = state.per_user.get(&*self.user).copied().unwrap_or(0);
        if mine >= budget.max_per_user {
            tracing::debug!(user = %self.user, max = budget.max_per_user, "the user's share of open files is spent; open refused");
            return Err(too_many());
        }
        state.total += 1;
        *state.per_user.entry(self.user.clone()).or_insert(0) += 1;
        Ok(OpenFile { files: self.clone() })
    }
}

/// The error an open beyond the budget gets (`EMFILE`, as the kernel would say).
fn too_many() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error())
}

/// One open file counted in the budget; dropping it gives it back.
pub(crate) struct OpenFile {
    files: UserFiles,
}

impl fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFile").field("user", &self.files.user).finish()
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        let mut state = self.files.budget.state();
        state.total -= 1;
        if let Some(n) = state.per_user.get_mut(&*self.files.user) {
            *n -= 1;
            if *n == 0 {
                state.per_user.remove(&*self.files.user);
            }
        }
    }
}

/// Takes an open file from `files` when there is a budget; `Ok(None)` without one.
pub(crate) fn open(files: Option<&UserFiles>) -> io::Result<Option<OpenFile>> {
    files.map(UserFiles::open).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_cannot_take_more_than_a_share_and_others_still_open() {
        let budget = OpenFiles::new(10, 4);
        let alice = budget.for_user("alice");
        let held: Vec<_> = (0..4).map(|_| alice.open().unwrap()).collect();
        let refused = alice.open().unwrap_err();
        assert_eq!(refused.to_string(), "Too many open files (os error 24)");
        let bob = budget.for_user("bob").open().unwrap();
        assert_eq!(budget.in_use("alice"), (5, 4));
        drop(held);
        drop(bob);
        assert_eq!(budget.in_use("alice"), (0, 0));
        assert!(budget.state().per_user.is_empty(), "users without open files are forgotten");
    }

    #[test]
    fn the_server_budget_bounds_every_user_together() {
        let budget = OpenFiles::new(6, 4);
        let a: Vec<_> = (0..4).map(|_| budget.for_user("a").open().unwrap()).collect();
        let b: Vec<_> = (0..2).map(|_| budget.for_user("b").open().unwrap()).collect();
        assert!(budget.for_user("c").open().is_err());
        drop(a);
        assert!(budget.for_user("c").open().is_ok());
        drop(b);
    }
}
