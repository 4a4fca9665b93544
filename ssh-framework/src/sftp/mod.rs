//! A built-in SFTP server (protocol version 3 with OpenSSH's extensions),
//! ready to run in a `#[subsystem("sftp")]` handler.
//!
//! # A tour
//!
//! [`Sftp`] speaks the protocol over a channel; a [`Backend`] says what the
//! files are. [`FsBackend`] serves a directory as a jail: every path the
//! client names, absolute or relative, is resolved beneath it by `cap-std`,
//! so neither `..`, absolute paths nor symbolic links (planted, created by
//! the client, or swapped in mid-request) reach outside.
//!
//! ```no_run
//! use std::path::PathBuf;
//!
//! use ssh_framework::extract::User;
//! use ssh_framework::sftp::{FsBackend, Sftp};
//! use ssh_framework::{ChannelIo, ExitStatus};
//!
//! struct Files {
//!     root: PathBuf,
//!     read_only: bool,
//! }
//!
//! #[ssh_framework::server]
//! impl Files {
//!     #[subsystem("sftp")]
//!     async fn sftp(&self, user: User, io: ChannelIo) -> std::io::Result<()> {
//!         tracing::info!(%user, "sftp session");
//!         Sftp::new(FsBackend::open(&self.root)?.read_only(self.read_only)).serve(io).await
//!     }
//! }
//! ```
//!
//! A handler returning `io::Result<()>` reports exit status 0, or 1 after a
//! protocol error or an unusable root. For one jail per user, open a
//! sub-directory: [`FsBackend::subdir`] resolves the user's name beneath the
//! shared root too.
//!
//! # Your own storage
//!
//! Implement [`Backend`] for anything that looks like files: an in-memory map,
//! an object store, a generated tree. Only `open`, `read`, `fstat`, `stat`,
//! `opendir` and `readdir` are required; everything else answers
//! "operation unsupported" until implemented. The `sftp-memory` example
//! (`examples/sftp-memory/src/memory.rs`) is a complete in-memory backend.
//!
//! # What the client sees
//!
//! * SFTP version 3 and the extensions OpenSSH's client uses:
//!   `posix-rename@openssh.com`, `statvfs@openssh.com`,
//!   `fstatvfs@openssh.com`, `hardlink@openssh.com`, `fsync@openssh.com`,
//!   `limits@openssh.com`, `expand-path@openssh.com`, `lsetstat@openssh.com`.
//! * `ls -l` lines formatted like OpenSSH's `sftp-server` ([`long_name`]).
//! * Requests processed concurrently, so pipelined transfers run at the
//!   speed of the disk and the channel; reads and writes of up to 255 KiB.
//!
//! # Safe by default
//!
//! [`FsBackend`] expects hostile clients (see its docs for the details):
//!
//! * no request can hang a thread: a FIFO or a device in the jail is never
//!   opened to change its attributes, every file system call has a timeout,
//!   and each session (each clone of the backend) runs a bounded number at
//!   once, so one session cannot take the blocking threads of the others;
//! * the set-uid, set-gid and sticky bits of client modes are removed and
//!   changes of owner are refused, unless the backend allows them;
//! * symbolic links the client makes, or moves, never lead out of the root,
//!   for the host's own tools either.
//!
//! File operations run as the server's user: to act as the logged-in user,
//! run the file service in a process of that user ([`FsBackend`] says how).
//!
//! For the legacy SCP protocol (`scp -O`) over the same backends see
//! [`crate::scp`].

mod backend;
mod fs;
mod protocol;
mod session;

use std::fmt;
use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

pub use self::backend::{
    Backend, DirEntry, FileAttributes, OpenFlags, Owner, ReadBuffer, RenameMode, StatVfs, Times, long_name, normalize,
};
pub use self::fs::{FsBackend, FsDir, FsFile};
/// The byte buffer [`Backend::write`] receives (re-exported from the `bytes` crate).
pub use bytes::Bytes;

use crate::channel::ChannelIo;

/// An SFTP server over a [`Backend`]: configure it, then [`serve`](Sftp::serve) a channel.
pub struct Sftp<B> {
    backend: Arc<B>,
    config: session::Config,
}

impl<B> fmt::Debug for Sftp<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sftp").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<B: Backend> Sftp<B> {
    /// Requests processed at once by default (OpenSSH's client keeps up to 64 in flight).
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
    /// Open files and directories per session by default.
    pub const DEFAULT_MAX_HANDLES: usize = 256;

    /// A server over `backend` with default limits.
    pub fn new(backend: B) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A server over a backend shared with other sessions.
    pub fn from_arc(backend: Arc<B>) -> Self {
        Sftp {
            backend,
            config: session::Config {
                max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
                max_handles: Self::DEFAULT_MAX_HANDLES,
            },
        }
    }

    /// How many requests may be read ahead and processed at once (at least 1).
    ///
    /// Each may hold a response of up to 255 KiB, so this bounds a session's memory too.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }

    /// How many files and directories a session may hold open (at most 65,536),
    /// within what the server's budget leaves the user (see [`Sftp::serve`]).
    pub fn max_handles(mut self, n: usize) -> Self {
        self.config.max_handles = n.clamp(1, 1 << 16);
        self
    }

    /// The backend.
    pub fn get_ref(&self) -> &B {
        &self.backend
    }

    /// Serves the session on a channel until the client closes it.
    ///
    /// Returns an error when the client breaks the protocol (a packet longer
    /// than 256 KiB, no `SSH_FXP_INIT` first) or the channel fails.
    ///
    /// Files and directories the session opens count against the server's
    /// budget ([`ServerBuilder::max_open_files`](crate::ServerBuilder::max_open_files)
    /// and [`max_open_files_per_user`](crate::ServerBuilder::max_open_files_per_user)):
    /// an open beyond it fails with "Too many open files".
    pub async fn serve(self, mut io: ChannelIo) -> io::Result<()> {
        let open_files = io.open_files.take();
        let (stdin, stdout, _stderr, _events) = io.split();
        let span = tracing::debug_span!("sftp");
        session::run(self.config, self.backend, open_files, stdin, stdout).instrument(span).await
    }

    /// Serves the session on any byte stream pair (a pipe, a socket, a test harness).
    ///
    /// Only [`max_handles`](Sftp::max_handles) bounds the files it opens:
    /// the server's budget reaches a session through its [`ChannelIo`].
    pub async fn serve_stream<R, W>(self, reader: R, writer: W) -> io::Result<()>
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let span = tracing::debug_span!("sftp");
        session::run(self.config, self.backend, None, reader, writer).instrument(span).await
    }
}
