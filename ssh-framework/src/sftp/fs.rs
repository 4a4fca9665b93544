//! [`FsBackend`]: a directory served as a jail.
//!
//! Every path is resolved beneath the root by `cap-std`, which on Linux asks
//! the kernel (`openat2` with `RESOLVE_BENEATH`) or walks one component at a
//! time with `O_NOFOLLOW`. Either way `..`, absolute symbolic links and links
//! leading out are refused at the moment of use, so a link swapped in
//! between a check and the operation cannot lead out either. The few
//! operations `cap-std` lacks (`chown`, a rename that must not replace) open
//! the parent directory through `cap-std` and act on one plain name in it.
//!
//! The client's paths are mapped, not normalised: a leading `/` is dropped
//! (absolute paths start at the jail's root, which is also the home
//! directory) and the rest goes to `cap-std` as it is.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::fs::{FileTimes, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, OFlags};
use rustix::io::{Errno, ReadWriteFlags};
use rustix::path::DecInt;
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, SystemTimeSpec};
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, MetadataExt, OpenOptions, OpenOptionsExt, ReadDir};

use super::backend::{Backend, DirEntry, FileAttributes, OpenFlags, Owner, ReadBuffer, RenameMode, StatVfs, Times, long_name};

/// Reads into `buf` what the page cache already holds, without blocking:
/// `preadv2` with `RWF_NOWAIT` fails with `EAGAIN` rather than wait for the
/// disk (or a network file system, or a FUSE server). Returns `true` when the
/// read is complete (`buf` full, or the end of the file reached); otherwise
/// the caller reads the rest on the blocking pool, where a file that refuses
/// the flag, an I/O error or missing pages are dealt with as before.
fn read_cached(file: &FsFile, offset: u64, buf: &mut ReadBuffer) -> bool {
    if !file.nowait.load(Ordering::Relaxed) || nowait_disabled() {
        return false;
    }
    while buf.remaining() > 0 {
        let at = offset + buf.len() as u64;
        let got = rustix::io::preadv2(&*file.file, &mut [io::IoSliceMut::new(buf.unfilled_mut())], at, ReadWriteFlags::NOWAIT);
        match got {
            Ok(0) => return true,
            Ok(n) => buf.advance(n),
            Err(Errno::INTR) => {}
            // Not cached (yet): this request goes to the blocking pool, the next tries again.
            Err(Errno::AGAIN) => return false,
            // Refused (a file system without support, a pipe, a file opened
            // write-only): the blocking read answers, and this file is not tried again.
            Err(Errno::OPNOTSUPP | Errno::SPIPE | Errno::BADF) => {
                file.nowait.store(false, Ordering::Relaxed);
                return false;
            }
            // Failed: the blocking read reports the error (or reads past it).
            Err(_) => return false,
        }
    }
    true
}

#[cfg(not(test))]
fn nowait_disabled() -> bool {
    false
}

#[cfg(test)]
thread_local! {
    /// Tests turn the page-cache path off to exercise the blocking one alone.
    static NOWAIT_DISABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
thread_local! {
    /// Reads that took the blocking pool, counted on the task's thread.
    static BLOCKING_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn nowait_disabled() -> bool {
    NOWAIT_DISABLED.with(std::cell::Cell::get)
}

/// Entries per `SSH_FXP_NAME` answer (OpenSSH's server sends 100).
const ENTRIES_PER_READDIR: usize = 100;

/// Blocking calls that all [`FsBackend`]s of the process may have running at
/// once: half of tokio's default blocking pool, so the rest of the server
/// (process spawning, name lookups, other handlers) always finds a thread.
const PROCESS_CALLS: usize = 256;
static ALL_CALLS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PROCESS_CALLS);

/// A directory served as a jail, optionally read-only.
///
/// Cloning is cheap: clones share the open root directory and the settings.
/// Each clone has its own bound on file system calls running at once
/// ([`max_calls`](FsBackend::max_calls)), so give each session its own clone
/// (`Sftp::new(backend.clone())`) and one session cannot take every thread
/// from the others.
///
/// # No client request can hang a thread
///
/// Every file system call runs on tokio's blocking pool under a bound: at
/// most [`max_calls`](FsBackend::max_calls) at once per backend (and 256 in
/// the whole process), each answered with an error after
/// [`call_timeout`](FsBackend::call_timeout). A call the kernel never
/// finishes (a hung network file system, a FUSE server that never answers)
/// keeps its thread and its permit until it does, so such threads cannot pile
/// up. Paths are opened with `O_NONBLOCK` (or `O_PATH`, where only
/// attributes are needed), so a FIFO, a device or a lease in the jail cannot
/// block a call, and a size is only set on a regular file.
///
/// The one exception is a read of what the page cache already holds: it is
/// copied on the session's own task with `preadv2(RWF_NOWAIT)`, which the
/// kernel answers at once or refuses (`EAGAIN` when the data is not cached,
/// `EOPNOTSUPP` on a file system or file that cannot promise not to wait);
/// only what it refuses takes the bounded trip to the blocking pool.
///
/// # Modes and owners
///
/// By default the set-uid, set-gid and sticky bits (`0o7000`) are removed
/// from every mode a client sends (creating files and directories, `chmod`),
/// and a change of owner or group (`chown`, `chgrp`) is refused with
/// "permission denied"; setting the owner a file already has is accepted as
/// the no-op it is. [`allow_special_modes`](FsBackend::allow_special_modes)
/// and [`allow_chown`](FsBackend::allow_chown) lift these.
///
/// File operations act with the server process's own user: a server running
/// as root creates files owned by root in every user's jail. To have them act
/// as the logged-in user, as OpenSSH's `sftp-server` does, run the file
/// service in a process of that user: one server per user (each started as
/// that user), or a subsystem handler that spawns a child which drops to the
/// user's uid and gids before serving. The framework leaves this choice to
/// you; its default is the safe one for a server that cannot drop privileges.
///
/// # Symbolic links
///
/// Links the client creates may climb (`..`) only at the start of their
/// target, no higher than the root, and a jail-absolute target is stored as
/// such a relative one. A rename or hard link that would move a link (or a
/// directory holding one) to a shallower place where its climb leads out of
/// the root is refused, so links stay inside for the host's own tools too.
/// Moving a directory to a shallower place reads its whole tree for links:
/// one of more than 100,000 entries or 128 levels is refused then (move its
/// contents instead); moves within a directory or deeper are never checked.
pub struct FsBackend {
    root: Arc<Dir>,
    read_only: bool,
    allow_special_modes: bool,
    allow_chown: bool,
    max_calls: usize,
    call_timeout: Duration,
    /// This clone's permits for calls running at once.
    calls: Arc<tokio::sync::Semaphore>,
}

impl Clone for FsBackend {
    /// A backend on the same root with the same settings and its own bound on calls.
    fn clone(&self) -> Self {
        FsBackend { calls: Arc::new(tokio::sync::Semaphore::new(self.max_calls)), root: self.root.clone(), ..*self }
    }
}

impl fmt::Debug for FsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBackend")
            .field("read_only", &self.read_only)
            .field("allow_special_modes", &self.allow_special_modes)
            .field("allow_chown", &self.allow_chown)
            .field("max_calls", &self.max_calls)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

/// A file opened by [`FsBackend`].
#[derive(Debug)]
pub struct FsFile {
    file: Arc<std::fs::File>,
    /// Whether reads may still try the page cache inline ([`read_cached`]):
    /// cleared for good once the file refuses `RWF_NOWAIT` (a pipe, a device,
    /// a file system without support), so it costs one failed call per file.
    nowait: AtomicBool,
}

/// A directory listing opened by [`FsBackend`].
pub struct FsDir {
    dir: Arc<Dir>,
    entries: Option<ReadDir>,
}

impl fmt::Debug for FsDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsDir").finish_non_exhaustive()
    }
}

impl FsBackend {
    /// File system calls one backend runs at once by default.
    pub const DEFAULT_MAX_CALLS: usize = 16;
    /// How long a file system call may take by default before its request fails.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

    /// Serves the directory at `root` (which must exist), read-write.
    ///
    /// This is the only place a path is resolved the ordinary way; blocks briefly.
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(Self::with_root(Arc::new(dir)))
    }

    fn with_root(root: Arc<Dir>) -> Self {
        FsBackend {
            root,
            read_only: false,
            allow_special_modes: false,
            allow_chown: false,
            max_calls: Self::DEFAULT_MAX_CALLS,
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            calls: Arc::new(tokio::sync::Semaphore::new(Self::DEFAULT_MAX_CALLS)),
        }
    }

    /// The same settings on another root.
    fn beneath(&self, root: Dir) -> Self {
        let mut backend = self.clone();
        backend.root = Arc::new(root);
        backend
    }

    /// Refuses every change (writes, creation, removal, renames, attribute
    /// changes) with "permission denied" when `read_only` is true.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Whether changes are refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Keeps the set-uid, set-gid and sticky bits (`0o7000`) of the modes
    /// clients send when `allow` is true; by default they are removed.
    pub fn allow_special_modes(mut self, allow: bool) -> Self {
        self.allow_special_modes = allow;
        self
    }

    /// Lets clients change a file's owner and group when `allow` is true; by
    /// default a change is refused with "permission denied".
    pub fn allow_chown(mut self, allow: bool) -> Self {
        self.allow_chown = allow;
        self
    }

    /// How many file system calls this backend (this clone) runs at once (at
    /// least 1); more wait their turn within [`call_timeout`](FsBackend::call_timeout).
    pub fn max_calls(mut self, n: usize) -> Self {
        self.max_calls = n.max(1);
        self.calls = Arc::new(tokio::sync::Semaphore::new(self.max_calls));
        self
    }

    /// How long a file system call (waiting for its turn included) may take
    /// before its request fails with "timed out" (at least 1 ms).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// A backend for the existing directory `path` beneath this one (such as
    /// a user's own folder), with the same settings. `path` is
    /// resolved like a client's, so a user name like `../x` cannot lead out.
    pub fn subdir(&self, path: impl AsRef<Path>) -> io::Result<Self> {
        let rel = jailed(path.as_ref())?;
        Ok(self.beneath(self.root.open_dir(rel)?))
    }

    /// Like [`subdir`](FsBackend::subdir), creating the directory (and its
    /// parents, mode 0755) first if it does not exist.
    pub fn create_subdir(&self, path: impl AsRef<Path>) -> io::Result<Self> {
        let rel = jailed(path.as_ref())?;
        match self.root.open_dir(&rel) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut builder = DirBuilder::new();
                builder.recursive(true).mode(0o755);
                self.root.create_dir_with(&rel, &builder)?;
                self.subdir(path)
            }
            other => Ok(self.beneath(other?)),
        }
    }

    /// Runs `f` on the blocking pool under this backend's bounds: a permit of
    /// its own and one of the process's, and the call timeout. A call that
    /// times out keeps running (a thread in the kernel cannot be stopped)
    /// and keeps its permits until it returns, so stuck calls cannot pile up.
    async fn call<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        self.call_locked(None, f).await
    }

    /// [`call`](FsBackend::call), holding the process's lock on links
    /// ([`LINKS`]) too when `links` says how: `Some(true)` alone (moves),
    /// `Some(false)` shared (new links). The lock is taken after the permits,
    /// so it is never held while waiting for a thread.
    async fn call_locked<T, F>(&self, links: Option<bool>, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let work = async {
            let mine = self.calls.clone().acquire_owned().await.map_err(io::Error::other)?;
            let process = ALL_CALLS.acquire().await.map_err(io::Error::other)?;
            let guard = match links {
                None => None,
                Some(true) => Some(LinksGuard::Alone(LINKS.write().await)),
                Some(false) => Some(LinksGuard::Shared(LINKS.read().await)),
            };
            tokio::task::spawn_blocking(move || {
                let _held = (mine, process, guard);
                f()
            })
            .await
            .map_err(io::Error::other)?
        };
        match tokio::time::timeout(self.call_timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(timeout = ?self.call_timeout, "a file system call did not finish in time");
                Err(io::Error::new(io::ErrorKind::TimedOut, "the file system did not answer in time"))
            }
        }
    }

    /// [`call`](FsBackend::call) with the root directory.
    async fn blocking<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> io::Result<T> + Send + 'static,
    {
        let root = self.root.clone();
        self.call(move || f(&root)).await
    }

    /// [`blocking`](FsBackend::blocking) under the process's lock on links:
    /// alone for moves, shared for new links.
    async fn linking<T, F>(&self, alone: bool, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> io::Result<T> + Send + 'static,
    {
        let root = self.root.clone();
        self.call_locked(Some(alone), move || f(&root)).await
    }

    fn writable(&self) -> io::Result<()> {
        if self.read_only {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"))
        } else {
            Ok(())
        }
    }

    /// The permission bits of a client's mode this backend lets through.
    fn mode_mask(&self) -> u32 {
        if self.allow_special_modes { 0o7777 } else { 0o777 }
    }

    fn policy(&self) -> Policy {
        Policy { mode_mask: self.mode_mask(), allow_chown: self.allow_chown }
    }
}

/// What attribute changes a backend lets through, carried into blocking calls.
#[derive(Debug, Clone, Copy)]
struct Policy {
    mode_mask: u32,
    allow_chown: bool,
}

/// The client's path as a path beneath the root: a leading `/` dropped, the
/// empty path the root itself. A NUL byte, which no file name can hold, is refused.
fn jailed(path: &Path) -> io::Result<PathBuf> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"));
    }
    let start = bytes.iter().position(|&b| b != b'/').unwrap_or(bytes.len());
    let rel = &bytes[start..];
    Ok(if rel.is_empty() { PathBuf::from(".") } else { PathBuf::from(OsStr::from_bytes(rel)) })
}

/// A path relative to the root as the client sees it: `/` plus the path.
fn jail_absolute(rel: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in rel.components() {
        if let Component::Normal(name) = c {
            out.push(name);
        }
    }
    out
}

/// Splits a relative path into the directory that holds its last component and that name.
fn parent_and_name(rel: &Path) -> io::Result<(PathBuf, &OsStr)> {
    let name = rel.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path names no entry"))?;
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((parent.to_path_buf(), name))
}

fn open_parent(root: &Dir, parent: &Path) -> io::Result<Dir> {
    if parent == Path::new(".") { root.try_clone() } else { root.open_dir(parent) }
}

fn epoch_secs(secs: i64) -> u32 {
    secs.clamp(0, i64::from(u32::MAX)) as u32
}

fn attrs_of(m: &cap_std::fs::Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(m.size()),
        owner: Some(Owner { uid: m.uid(), gid: m.gid() }),
        permissions: Some(m.mode()),
        times: Some(Times { atime: epoch_secs(m.atime()), mtime: epoch_secs(m.mtime()) }),
    }
}

fn attrs_of_std(m: &std::fs::Metadata) -> FileAttributes {
    use std::os::unix::fs::MetadataExt as _;
    FileAttributes {
        size: Some(m.size()),
        owner: Some(Owner { uid: m.uid(), gid: m.gid() }),
        permissions: Some(m.mode()),
        times: Some(Times { atime: epoch_secs(m.atime()), mtime: epoch_secs(m.mtime()) }),
    }
}

fn statvfs_of(s: rustix::fs::StatVfs, read_only: bool) -> StatVfs {
    StatVfs {
        bsize: s.f_bsize,
        frsize: s.f_frsize,
        blocks: s.f_blocks,
        bfree: s.f_bfree,
        bavail: s.f_bavail,
        files: s.f_files,
        ffree: s.f_ffree,
        favail: s.f_favail,
        fsid: s.f_fsid,
        flag: s.f_flag.bits() | if read_only { StatVfs::READ_ONLY } else { 0 },
        namemax: s.f_namemax,
    }
}

fn system_time(secs: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::from(secs))
}

fn time_spec(secs: u32) -> Option<SystemTimeSpec> {
    Some(SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(system_time(secs))))
}

/// An `O_PATH` descriptor of `rel` beneath the root: it names the file
/// without opening it, so a FIFO or a device is never opened and no lease
/// or lock is waited for. `follow` says whether a final link is followed.
fn open_path(root: &Dir, rel: &Path, follow: bool) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(OFlags::PATH.bits() as i32);
    if !follow {
        options.follow(FollowSymlinks::No);
    }
    Ok(root.open_with(rel, &options)?.into_std())
}

fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// The owner change a request asks for: `None` when it asks none (or the
/// owner the file has), refused unless the policy allows changes.
fn owner_change(want: Option<Owner>, st: &rustix::fs::Stat, policy: Policy) -> io::Result<Option<Owner>> {
    match want {
        Some(o) if (o.uid, o.gid) != (st.st_uid, st.st_gid) => {
            if policy.allow_chown {
                Ok(Some(o))
            } else {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "changing the owner is not allowed"))
            }
        }
        _ => Ok(None),
    }
}

fn timestamps(t: Times) -> rustix::fs::Timestamps {
    let at = |secs: u32| rustix::fs::Timespec { tv_sec: i64::from(secs), tv_nsec: 0 };
    rustix::fs::Timestamps { last_access: at(t.atime), last_modification: at(t.mtime) }
}

/// Opens the regular file `fd` (an `O_PATH` descriptor of `rel`) names for
/// writing, without blocking: through `/proc/self/fd`, or by its path where
/// `/proc` is missing (checked to be the same file).
fn reopen_for_write(root: &Dir, rel: &Path, fd: &std::fs::File, st: &rustix::fs::Stat) -> io::Result<std::fs::File> {
    let file: std::fs::File = match rustix_linux_procfs::proc_self_fd() {
        Ok(proc) => {
            let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
            rustix::fs::openat(proc, DecInt::from_fd(fd), flags, rustix::fs::Mode::empty())?.into()
        }
        Err(_) => {
            let flags = OFlags::NONBLOCK | OFlags::NOCTTY;
            root.open_with(rel, OpenOptions::new().write(true).custom_flags(flags.bits() as i32))?.into_std()
        }
    };
    let now = rustix::fs::fstat(&file)?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) || FileType::from_raw_mode(now.st_mode) != FileType::RegularFile {
        return Err(not_regular());
    }
    Ok(file)
}

/// `SSH_FXP_SETSTAT` (`follow`) and `lsetstat@openssh.com` beneath the root.
///
/// Everything acts on one `O_PATH` descriptor, so each change reaches the
/// same file and none opens it: modes and times through `/proc/self/fd`,
/// the owner with `AT_EMPTY_PATH`; only a size reopens it, and only a
/// regular file. A refused owner change refuses the request before anything changes.
fn set_attrs(root: &Dir, rel: &Path, follow: bool, attrs: FileAttributes, policy: Policy) -> io::Result<()> {
    let fd = open_path(root, rel, follow)?;
    let st = rustix::fs::fstat(&fd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    let is_link = kind == FileType::Symlink;
    let chown = owner_change(attrs.owner, &st, policy)?;
    // Without /proc (a rare sandbox) modes and times go through cap-std by
    // path, which opens the file: only for regular files and directories.
    let proc = rustix_linux_procfs::proc_self_fd();
    let plain = matches!(kind, FileType::RegularFile | FileType::Directory);
    if let Some(size) = attrs.size {
        if is_link {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "a symbolic link has no size to set"));
        }
        if kind != FileType::RegularFile {
            return Err(not_regular());
        }
        reopen_for_write(root, rel, &fd, &st)?.set_len(size)?;
    }
    if let Some(mode) = attrs.permissions {
        if is_link {
            // Linux keeps no permissions on symbolic links.
            return Err(io::Error::new(io::ErrorKind::Unsupported, "symbolic links have no permissions"));
        }
        let mode = mode & policy.mode_mask;
        match proc {
            Ok(proc) => rustix::fs::chmodat(proc, DecInt::from_fd(&fd), rustix::fs::Mode::from_raw_mode(mode), AtFlags::empty())?,
            Err(_) if plain => root.set_permissions(rel, cap_std::fs::Permissions::from_std(Permissions::from_mode(mode)))?,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(t) = attrs.times {
        match proc {
            _ if is_link => root.set_symlink_times(rel, time_spec(t.atime), time_spec(t.mtime))?,
            Ok(proc) => rustix::fs::utimensat(proc, DecInt::from_fd(&fd), &timestamps(t), AtFlags::empty())?,
            Err(_) if plain => root.set_times(rel, time_spec(t.atime), time_spec(t.mtime))?,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(o) = chown {
        let (uid, gid) = (Some(rustix::fs::Uid::from_raw(o.uid)), Some(rustix::fs::Gid::from_raw(o.gid)));
        rustix::fs::chownat(&fd, "", uid, gid, AtFlags::EMPTY_PATH)?;
    }
    Ok(())
}

/// `SSH_FXP_RENAME`: a rename that fails when the target exists, atomically
/// where the file system supports `RENAME_NOREPLACE`.
fn rename_no_replace(root: &Dir, from: &Path, to: &Path) -> io::Result<()> {
    let (from_parent, from_name) = parent_and_name(from)?;
    let (to_parent, to_name) = parent_and_name(to)?;
    let from_dir = open_parent(root, &from_parent)?;
    let to_dir = open_parent(root, &to_parent)?;
    match rustix::fs::renameat_with(&from_dir, from_name, &to_dir, to_name, rustix::fs::RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => {
            if to_dir.symlink_metadata(to_name).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            from_dir.rename(from_name, &to_dir, to_name)
        }
        Err(e) => Err(e.into()),
    }
}

/// How far a link target climbs: the number of `..` at its start, or `None`
/// when a `..` follows a name (which a link in that name could turn into
/// any climb) or the target is absolute.
fn climb(target: &Path) -> Option<usize> {
    let mut up = 0;
    let mut named = false;
    for c in target.components() {
        match c {
            Component::ParentDir if !named => up += 1,
            Component::Normal(_) => named = true,
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(up)
}

/// How many names deep the directory `rel` is beneath the root, links resolved.
fn depth(root: &Dir, rel: &Path) -> io::Result<usize> {
    Ok(root.canonicalize(rel)?.components().filter(|c| matches!(c, Component::Normal(_))).count())
}

/// Whether a link with `target` in a directory `depth` names deep stays inside the root.
///
/// A link that climbs only at its start and no higher than the root stays
/// inside whatever it names next: a directory, or a link that obeys the same
/// rule. So if every link obeys it where it lies, every link leads inside.
fn link_fits(target: &Path, depth: usize) -> io::Result<()> {
    match climb(target) {
        Some(up) if up <= depth => Ok(()),
        Some(_) => Err(io::Error::new(io::ErrorKind::PermissionDenied, "symbolic link would point outside the root")),
        None => Err(io::Error::new(io::ErrorKind::PermissionDenied, "a symbolic link may climb (..) only at the start of its target")),
    }
}

/// The target a symbolic link at `link` will store: a jail-absolute target
/// becomes relative to the link's directory (the kernel would read `/` as
/// the host's root); a target that climbs above the root, or climbs after
/// a name, is refused (see [`link_fits`]).
fn symlink_target(root: &Dir, target: &Path, link: &Path) -> io::Result<PathBuf> {
    let (parent, _) = parent_and_name(link)?;
    let depth = depth(root, &parent)?;
    let stored = if target.is_absolute() {
        let mut p = PathBuf::new();
        for _ in 0..depth {
            p.push("..");
        }
        p.push(jailed(target)?);
        p
    } else {
        jailed(target)?;
        target.to_path_buf()
    };
    link_fits(&stored, depth)?;
    Ok(stored)
}

/// Entries a directory tree may hold for [`check_move`] to check it.
const MOVE_CHECK_ENTRIES: usize = 100_000;
/// Nesting a directory tree may have for [`check_move`] to check it (one descriptor per level).
const MOVE_CHECK_DEPTH: usize = 128;

/// Renames, hard links and new links across every [`FsBackend`] of the
/// process: a rename checks the links in what it moves, and no link may
/// appear in it meanwhile (new links share the lock, moves hold it alone).
/// A call stuck in the kernel while holding it makes the others wait, each
/// within its own call timeout.
static LINKS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A hold on [`LINKS`], moved into the blocking call that needs it.
enum LinksGuard {
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'static, ()>),
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'static, ()>),
}

/// Refuses to move (or hard-link) `from` to `to` when a symbolic link, or a
/// link inside a directory that moves, would climb above the root from its
/// new place. Moving to the same depth or deeper only gives links more room,
/// so only a move to a shallower directory looks inside; a tree larger than
/// [`MOVE_CHECK_ENTRIES`] or deeper than [`MOVE_CHECK_DEPTH`] is refused then.
fn check_move(root: &Dir, from: &Path, to: &Path) -> io::Result<()> {
    let (from_parent, _) = parent_and_name(from)?;
    let (to_parent, _) = parent_and_name(to)?;
    let kind = root.symlink_metadata(from)?.file_type();
    if !kind.is_symlink() && !kind.is_dir() {
        return Ok(());
    }
    let new_depth = depth(root, &to_parent)?;
    if new_depth >= depth(root, &from_parent)? {
        return Ok(());
    }
    if kind.is_symlink() {
        return link_fits(&root.read_link_contents(from)?, new_depth);
    }
    let too_large = || io::Error::other("the directory is too large to check its symbolic links; move its contents instead");
    // Depth first, one open directory per level.
    let top = root.open_dir_nofollow(from)?;
    let entries = top.entries()?;
    let mut stack = vec![(top, entries, new_depth + 1)];
    let mut seen = 0usize;
    loop {
        let levels = stack.len();
        let Some((dir, entries, depth)) = stack.last_mut() else { return Ok(()) };
        let Some(entry) = entries.next() else {
            stack.pop();
            continue;
        };
        let entry = entry?;
        seen += 1;
        if seen > MOVE_CHECK_ENTRIES {
            return Err(too_large());
        }
        let kind = entry.file_type()?;
        let name = entry.file_name();
        if kind.is_symlink() {
            link_fits(&dir.read_link_contents(&name)?, *depth)?;
        } else if kind.is_dir() {
            if levels >= MOVE_CHECK_DEPTH {
                return Err(too_large());
            }
            let sub = dir.open_dir_nofollow(&name)?;
            let sub_entries = sub.entries()?;
            let sub_depth = *depth + 1;
            stack.push((sub, sub_entries, sub_depth));
        }
    }
}

/// The canonical client path of `rel`; the last component may be missing.
///
/// As in a chroot, `..` at the root is the root: `..`, `/./..` and
/// `sub/../..` answer `/`. A symbolic link that climbs out is refused, as
/// `cap-std` refuses it for every other request; this is for realpath only.
fn realpath_beneath(root: &Dir, rel: &Path) -> io::Result<PathBuf> {
    // Any path that stays beneath the root: cap-std, in one step.
    match root.canonicalize(rel) {
        Ok(p) => Ok(jail_absolute(&p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, name) = parent_and_name(rel).map_err(|_| e)?;
            Ok(jail_absolute(&realpath_walk(root, &parent)?).join(name))
        }
        // It climbs above the root somewhere (or is refused for another reason).
        Err(_) => Ok(jail_absolute(&realpath_walk(root, rel)?)),
    }
}

/// Links one realpath follows at most (Linux's own limit).
const REALPATH_LINKS: usize = 40;

/// One step of [`realpath_walk`]: a name or `..`, and whether a link's target holds it.
enum Step {
    Up { from_link: bool },
    Name(std::ffi::OsString),
}

fn steps(path: &Path, from_link: bool) -> impl DoubleEndedIterator<Item = Step> + '_ {
    path.components().filter_map(move |c| match c {
        Component::ParentDir => Some(Step::Up { from_link }),
        Component::Normal(name) => Some(Step::Name(name.to_owned())),
        _ => None,
    })
}

/// Resolves `rel` one name at a time, a `..` at the root staying there.
/// Holds one directory open at a time; a `..` reopens its parent from the
/// root, so the cost is bounded by the path's length times its depth.
fn realpath_walk(root: &Dir, rel: &Path) -> io::Result<PathBuf> {
    let escape = || io::Error::new(io::ErrorKind::PermissionDenied, "a symbolic link leads outside the root");
    let mut names = PathBuf::new();
    let mut here = root.try_clone()?;
    let mut todo: Vec<Step> = steps(rel, false).rev().collect();
    let mut links = 0;
    while let Some(step) = todo.pop() {
        match step {
            Step::Up { from_link } => {
                if names.pop() {
                    here = open_parent(root, if names.as_os_str().is_empty() { Path::new(".") } else { &names })?;
                } else if from_link {
                    return Err(escape());
                }
            }
            Step::Name(name) => {
                let meta = match here.symlink_metadata(&name) {
                    // The last name may be missing.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && todo.is_empty() => {
                        names.push(name);
                        break;
                    }
                    other => other?,
                };
                if meta.file_type().is_symlink() {
                    links += 1;
                    if links > REALPATH_LINKS {
                        return Err(io::Error::other("too many levels of symbolic links"));
                    }
                    let target = here.read_link_contents(&name)?;
                    if target.is_absolute() {
                        return Err(escape());
                    }
                    todo.extend(steps(&target, true).rev());
                } else if meta.is_dir() {
                    here = here.open_dir_nofollow(&name)?;
                    names.push(name);
                } else if todo.is_empty() {
                    names.push(name);
                } else {
                    return Err(io::Error::other("not a directory"));
                }
            }
        }
    }
    Ok(names)
}

/// User and group names by id, read once from `/etc/passwd` and `/etc/group`
/// (ids without a name are shown as numbers, as OpenSSH does).
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let read = |file: &str| -> HashMap<u32, String> {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    let id = fields.nth(1)?.parse().ok()?;
                    Some((id, name.to_owned()))
                })
                .collect()
        };
        Names { users: read("/etc/passwd"), groups: read("/etc/group") }
    })
}

fn name_or_id(map: &HashMap<u32, String>, id: u32) -> String {
    map.get(&id).cloned().unwrap_or_else(|| id.to_string())
}

impl Backend for FsBackend {
    type File = FsFile;
    type Dir = FsDir;

    async fn open(&self, path: &Path, flags: OpenFlags, attrs: &FileAttributes) -> io::Result<FsFile> {
        if flags.modifies() {
            self.writable()?;
        }
        let rel = jailed(path)?;
        let mode = attrs.permissions.map_or(0o666, |p| p & self.mode_mask());
        let file = self
            .blocking(move |root| {
                let mut options = OpenOptions::new();
                options
                    .read(flags.read || !(flags.write || flags.append))
                    .write(flags.write)
                    .append(flags.append)
                    .truncate(flags.truncate)
                    .mode(mode)
                    // A FIFO, a device or a lease in the jail must not block
                    // a thread on open (regular files ignore the flag), nor a
                    // terminal become the server's controlling one.
                    .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32);
                if flags.create && flags.exclusive {
                    options.create_new(true);
                } else {
                    options.create(flags.create);
                }
                root.open_with(rel, &options)
            })
            .await?;
        Ok(FsFile { file: Arc::new(file.into_std()), nowait: AtomicBool::new(true) })
    }

    async fn read(&self, file: &FsFile, offset: u64, buf: &mut ReadBuffer) -> io::Result<()> {
        // What the page cache holds is copied here, on the async task, without
        // a trip to the blocking pool; the rest (if any) takes that trip.
        if read_cached(file, offset, buf) {
            return Ok(());
        }
        #[cfg(test)]
        BLOCKING_READS.with(|n| n.set(n.get() + 1));
        let f = file.file.clone();
        let mut owned = std::mem::take(buf);
        let filled = self
            .call(move || {
                while owned.remaining() > 0 {
                    let at = offset + owned.len() as u64;
                    match f.read_at(owned.unfilled_mut(), at) {
                        Ok(0) => break,
                        Ok(n) => owned.advance(n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // What was read before the error is still good.
                        Err(e) if owned.is_empty() => return Err(e),
                        Err(_) => break,
                    }
                }
                Ok(owned)
            })
            .await?;
        *buf = filled;
        Ok(())
    }

    async fn write(&self, file: &FsFile, offset: u64, data: Bytes) -> io::Result<()> {
        self.writable()?;
        let f = file.file.clone();
        self.call(move || f.write_all_at(&data, offset)).await
    }

    async fn fstat(&self, file: &FsFile) -> io::Result<FileAttributes> {
        let f = file.file.clone();
        self.call(move || f.metadata().map(|m| attrs_of_std(&m))).await
    }

    async fn fsetstat(&self, file: &FsFile, attrs: &FileAttributes) -> io::Result<()> {
        self.writable()?;
        let f = file.file.clone();
        let attrs = *attrs;
        let policy = self.policy();
        // Every change goes through the open descriptor: none opens a path.
        self.call(move || {
            let chown = owner_change(attrs.owner, &rustix::fs::fstat(&*f)?, policy)?;
            if let Some(size) = attrs.size {
                f.set_len(size)?;
            }
            if let Some(mode) = attrs.permissions {
                f.set_permissions(Permissions::from_mode(mode & policy.mode_mask))?;
            }
            if let Some(t) = attrs.times {
                f.set_times(FileTimes::new().set_accessed(system_time(t.atime)).set_modified(system_time(t.mtime)))?;
            }
            if let Some(o) = chown {
                rustix::fs::fchown(&*f, Some(rustix::fs::Uid::from_raw(o.uid)), Some(rustix::fs::Gid::from_raw(o.gid)))?;
            }
            Ok(())
        })
        .await
    }

    async fn fsync(&self, file: &FsFile) -> io::Result<()> {
        let f = file.file.clone();
        self.call(move || f.sync_all()).await
    }

    async fn fstatvfs(&self, file: &FsFile) -> io::Result<StatVfs> {
        let f = file.file.clone();
        let read_only = self.read_only;
        self.call(move || Ok(statvfs_of(rustix::fs::fstatvfs(&*f)?, read_only))).await
    }

    async fn opendir(&self, path: &Path) -> io::Result<FsDir> {
        let rel = jailed(path)?;
        let (dir, entries) = self
            .blocking(move |root| {
                let dir = root.open_dir(rel)?;
                let entries = dir.entries()?;
                Ok((dir, entries))
            })
            .await?;
        Ok(FsDir { dir: Arc::new(dir), entries: Some(entries) })
    }

    async fn readdir(&self, dir: &mut FsDir) -> io::Result<Vec<DirEntry>> {
        let Some(mut entries) = dir.entries.take() else { return Ok(Vec::new()) };
        let listed = dir.dir.clone();
        let (entries, batch) = self
            .call(move || {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let names = names();
                let mut batch = Vec::new();
                for entry in entries.by_ref() {
                    let entry = match entry {
                        Ok(e) => e,
                        Err(e) if batch.is_empty() => return Ok((entries, Err(e))),
                        Err(_) => break,
                    };
                    // An entry removed since the listing was read is skipped.
                    let Ok(meta) = entry.metadata() else { continue };
                    let name = entry.file_name();
                    let attrs = attrs_of(&meta);
                    let user = name_or_id(&names.users, meta.uid());
                    let group = name_or_id(&names.groups, meta.gid());
                    let mut long = long_name(&name, &attrs, meta.nlink(), &user, &group, now);
                    if meta.file_type().is_symlink()
                        && let Ok(target) = listed.read_link_contents(&name)
                    {
                        // As `ls -l` shows it; the target is text, never followed here.
                        long.push_str(" -> ");
                        long.push_str(&target.to_string_lossy());
                    }
                    batch.push(DirEntry { name, long_name: Some(long), attrs });
                    if batch.len() == ENTRIES_PER_READDIR {
                        break;
                    }
                }
                Ok((entries, Ok(batch)))
            })
            .await?;
        dir.entries = Some(entries);
        batch
    }

    async fn stat(&self, path: &Path) -> io::Result<FileAttributes> {
        let rel = jailed(path)?;
        self.blocking(move |root| root.metadata(rel).map(|m| attrs_of(&m))).await
    }

    async fn lstat(&self, path: &Path) -> io::Result<FileAttributes> {
        let rel = jailed(path)?;
        self.blocking(move |root| root.symlink_metadata(rel).map(|m| attrs_of(&m))).await
    }

    async fn setstat(&self, path: &Path, attrs: &FileAttributes) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        let (attrs, policy) = (*attrs, self.policy());
        self.blocking(move |root| set_attrs(root, &rel, true, attrs, policy)).await
    }

    async fn lsetstat(&self, path: &Path, attrs: &FileAttributes) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        let (attrs, policy) = (*attrs, self.policy());
        self.blocking(move |root| set_attrs(root, &rel, false, attrs, policy)).await
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        self.blocking(move |root| root.remove_file(rel)).await
    }

    async fn mkdir(&self, path: &Path, attrs: &FileAttributes) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        let mode = attrs.permissions.map_or(0o777, |p| p & self.mode_mask());
        self.blocking(move |root| {
            let mut builder = DirBuilder::new();
            builder.mode(mode);
            root.create_dir_with(rel, &builder)
        })
        .await
    }

    async fn rmdir(&self, path: &Path) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        self.blocking(move |root| root.remove_dir(rel)).await
    }

    async fn realpath(&self, path: &Path) -> io::Result<PathBuf> {
        let rel = jailed(path)?;
        self.blocking(move |root| realpath_beneath(root, &rel)).await
    }

    async fn readlink(&self, path: &Path) -> io::Result<PathBuf> {
        let rel = jailed(path)?;
        self.blocking(move |root| root.read_link_contents(rel)).await
    }

    async fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.writable()?;
        let link = jailed(link)?;
        let target = target.to_path_buf();
        self.linking(false, move |root| {
            let stored = symlink_target(root, &target, &link)?;
            root.symlink(stored, link)
        })
        .await
    }

    async fn rename(&self, from: &Path, to: &Path, mode: RenameMode) -> io::Result<()> {
        self.writable()?;
        let from = jailed(from)?;
        let to = jailed(to)?;
        self.linking(true, move |root| {
            check_move(root, &from, &to)?;
            match mode {
                RenameMode::Replace => root.rename(from, root, to),
                RenameMode::NoReplace => rename_no_replace(root, &from, &to),
            }
        })
        .await
    }

    async fn hardlink(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.writable()?;
        let from = jailed(from)?;
        let to = jailed(to)?;
        // `linkat` links a symbolic link itself, which then lies at `to`'s depth.
        self.linking(true, move |root| {
            check_move(root, &from, &to)?;
            root.hard_link(from, root, to)
        })
        .await
    }

    async fn statvfs(&self, path: &Path) -> io::Result<StatVfs> {
        let rel = jailed(path)?;
        let read_only = self.read_only;
        // An `O_PATH` descriptor: a FIFO or a device is named, never opened.
        self.blocking(move |root| Ok(statvfs_of(rustix::fs::fstatvfs(open_path(root, &rel, true)?)?, read_only))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stuck_calls_time_out_and_hold_their_permits() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FsBackend::open(dir.path()).unwrap().max_calls(2).call_timeout(Duration::from_millis(200));
        // Two calls that never return until released: each answers "timed out" in time.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let started = std::time::Instant::now();
        for _ in 0..2 {
            let wait = wait.clone();
            let stuck = backend.call(move || {
                let _ = wait.lock().unwrap().recv();
                Ok(())
            });
            assert_eq!(stuck.await.unwrap_err().kind(), io::ErrorKind::TimedOut);
        }
        // Their threads still hold both permits: a third call is not even started.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let third = backend.call(move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        assert_eq!(third.await.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "a third call ran beside two stuck ones");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // Another clone (another session) has its own permits meanwhile.
        assert!(backend.clone().call(|| Ok(())).await.is_ok());
        // Once released, the backend serves again.
        drop(release);
        let again = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if backend.call(|| Ok(())).await.is_ok() {
                    break;
                }
            }
        });
        again.await.expect("the backend serves again once its calls return");
    }

    /// Reads `file` through the backend in `chunk`-byte requests, as a client would.
    async fn read_all(backend: &FsBackend, file: &FsFile, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut buf = ReadBuffer::with_capacity(chunk);
            backend.read(file, out.len() as u64, &mut buf).await.unwrap();
            if buf.is_empty() {
                return out;
            }
            out.extend_from_slice(buf.filled());
        }
    }

    fn blocking_reads() -> usize {
        BLOCKING_READS.with(std::cell::Cell::get)
    }

    // A current-thread runtime: the page-cache path runs on this thread, where the counters are.
    #[tokio::test(flavor = "current_thread")]
    async fn reads_from_the_page_cache_or_the_blocking_pool_return_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // Not a multiple of the request size, nor of a page.
        let data: Vec<u8> = (0..(3 << 20) + 12_345u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(dir.path().join("f"), &data).unwrap();
        let backend = FsBackend::open(dir.path()).unwrap();
        let open = |backend: &FsBackend| {
            let backend = backend.clone();
            async move { backend.open(Path::new("f"), OpenFlags { read: true, ..OpenFlags::default() }, &FileAttributes::default()).await.unwrap() }
        };
        let chunk = 255 << 10;
        let requests = data.len().div_ceil(chunk) + 1;

        // Just written, so cached: every read is served inline.
        let file = open(&backend).await;
        let before = blocking_reads();
        assert!(read_all(&backend, &file, chunk).await == data, "cached reads");
        assert_eq!(blocking_reads() - before, 0, "a cached file took the blocking pool");

        // The page-cache path off: every read takes the blocking pool, with the same bytes.
        NOWAIT_DISABLED.with(|d| d.set(true));
        let before = blocking_reads();
        assert!(read_all(&backend, &file, chunk).await == data, "blocking reads");
        assert_eq!(blocking_reads() - before, requests, "each read took the blocking pool");
        NOWAIT_DISABLED.with(|d| d.set(false));

        // Evicted from the cache: the first read cannot be served inline; reads
        // that find part of their range cached finish on the blocking pool.
        file.file.sync_all().unwrap();
        rustix::fs::fadvise(&*file.file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let before = blocking_reads();
        assert!(read_all(&backend, &file, chunk).await == data, "reads of an evicted file");
        let trips = blocking_reads() - before;
        assert!((1..=requests).contains(&trips), "{trips} trips to the blocking pool for {requests} reads");

        // Odd offsets and lengths, and reads at and past the end.
        for (offset, len) in [(1u64, 4095usize), (4095, 8193), (data.len() as u64 - 10, 100), (data.len() as u64, 10), (1 << 40, 10)] {
            let mut buf = ReadBuffer::with_capacity(len);
            backend.read(&file, offset, &mut buf).await.unwrap();
            let start = (offset as usize).min(data.len());
            let want = &data[start..(start + len).min(data.len())];
            assert!(buf.filled() == want, "read of {len} at {offset}");
        }

        // A file that refuses RWF_NOWAIT (a pipe here) is tried once, then left to the blocking pool.
        let (reader, _writer) = std::io::pipe().unwrap();
        let pipe = FsFile { file: Arc::new(std::fs::File::from(std::os::fd::OwnedFd::from(reader))), nowait: AtomicBool::new(true) };
        let mut buf = ReadBuffer::with_capacity(16);
        assert!(!read_cached(&pipe, 0, &mut buf));
        assert!(!pipe.nowait.load(Ordering::Relaxed), "a pipe keeps being tried inline");
    }

    #[test]
    fn client_paths_map_beneath_the_root() {
        assert_eq!(jailed(Path::new("/")).unwrap(), PathBuf::from("."));
        assert_eq!(jailed(Path::new("")).unwrap(), PathBuf::from("."));
        assert_eq!(jailed(Path::new("//etc/passwd")).unwrap(), PathBuf::from("etc/passwd"));
        assert_eq!(jailed(Path::new("a/b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(jailed(Path::new(OsStr::from_bytes(b"a\0b"))).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_jail_refuses_dot_dot_and_outbound_links() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret"), b"s").unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("out")).unwrap();
        std::os::unix::fs::symlink(outer.path().join("secret"), root.join("abs")).unwrap();
        let dir = Dir::open_ambient_dir(&root, cap_std::ambient_authority()).unwrap();

        for path in ["..", "/..", "/./..", "sub/../..", "out", "abs"] {
            let rel = jailed(Path::new(path)).unwrap();
            assert!(dir.open(&rel).is_err(), "{path} opened");
        }
        assert_eq!(realpath_beneath(&dir, Path::new("sub/../sub/new")).unwrap(), PathBuf::from("/sub/new"));
        assert_eq!(realpath_beneath(&dir, Path::new(".")).unwrap(), PathBuf::from("/"));
        for at_root in ["..", "./..", "../..", "../sub/.."] {
            assert_eq!(realpath_beneath(&dir, Path::new(at_root)).unwrap(), PathBuf::from("/"), "{at_root}");
        }
        assert_eq!(realpath_beneath(&dir, Path::new("../../sub")).unwrap(), PathBuf::from("/sub"));
        assert_eq!(realpath_beneath(&dir, Path::new("sub/../../sub/../..")).unwrap(), PathBuf::from("/"));
        assert_eq!(realpath_beneath(&dir, Path::new("../sub/../../new")).unwrap(), PathBuf::from("/new"));
        // Links that climb out are refused here too, and a link's own `..` is physical.
        assert!(realpath_beneath(&dir, Path::new("out")).is_err());
        assert!(realpath_beneath(&dir, Path::new("../out")).is_err());
        assert!(realpath_beneath(&dir, Path::new("../abs")).is_err());
        std::os::unix::fs::symlink("sub", root.join("to-sub")).unwrap();
        assert_eq!(realpath_beneath(&dir, Path::new("../to-sub/../../to-sub")).unwrap(), PathBuf::from("/sub"));
        assert!(realpath_beneath(&dir, Path::new("../missing/x")).is_err());
        assert_eq!(symlink_target(&dir, Path::new("/sub/x"), Path::new("sub/link")).unwrap(), PathBuf::from("../sub/x"));
        assert!(symlink_target(&dir, Path::new("../../secret"), Path::new("sub/link")).is_err());
        assert!(symlink_target(&dir, Path::new("../x"), Path::new("link")).is_err());
        // A climb after a name could go anywhere through a link named there.
        assert!(symlink_target(&dir, Path::new("sub/../x"), Path::new("link")).is_err());
        assert!(symlink_target(&dir, Path::new("/sub/../x"), Path::new("sub/link")).is_err());
        assert_eq!(symlink_target(&dir, Path::new("./../x"), Path::new("sub/link")).unwrap(), PathBuf::from("./../x"));
    }
}
