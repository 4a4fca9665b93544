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
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cap_fs_ext::{DirExt, SystemTimeSpec};
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, MetadataExt, OpenOptions, OpenOptionsExt, ReadDir};

use super::backend::{Backend, DirEntry, FileAttributes, OpenFlags, Owner, ReadBuffer, RenameMode, StatVfs, Times, long_name};

/// Entries per `SSH_FXP_NAME` answer (OpenSSH's server sends 100).
const ENTRIES_PER_READDIR: usize = 100;

/// A directory served as a jail, optionally read-only.
///
/// Cloning is cheap: clones share the open root directory.
#[derive(Clone)]
pub struct FsBackend {
    root: Arc<Dir>,
    read_only: bool,
}

impl fmt::Debug for FsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBackend").field("read_only", &self.read_only).finish_non_exhaustive()
    }
}

/// A file opened by [`FsBackend`].
#[derive(Debug)]
pub struct FsFile {
    file: Arc<std::fs::File>,
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
    /// Serves the directory at `root` (which must exist), read-write.
    ///
    /// This is the only place a path is resolved the ordinary way; blocks briefly.
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(FsBackend { root: Arc::new(dir), read_only: false })
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

    /// A backend for the existing directory `path` beneath this one (such as
    /// a user's own folder), with the same read-only setting. `path` is
    /// resolved like a client's, so a user name like `../x` cannot lead out.
    pub fn subdir(&self, path: impl AsRef<Path>) -> io::Result<Self> {
        let rel = jailed(path.as_ref())?;
        Ok(FsBackend { root: Arc::new(self.root.open_dir(rel)?), read_only: self.read_only })
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
            other => Ok(FsBackend { root: Arc::new(other?), read_only: self.read_only }),
        }
    }

    async fn blocking<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> io::Result<T> + Send + 'static,
    {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || f(&root)).await.map_err(io::Error::other)?
    }

    fn writable(&self) -> io::Result<()> {
        if self.read_only {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"))
        } else {
            Ok(())
        }
    }
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

/// `chown` beneath the root. With `follow`, the path is first resolved by
/// `cap-std` (links included); then its parent is opened through `cap-std`
/// and the last name changed without following it, so a link swapped in
/// meanwhile changes nothing outside.
fn chown_beneath(root: &Dir, rel: &Path, owner: Owner, follow: bool) -> io::Result<()> {
    let uid = Some(rustix::fs::Uid::from_raw(owner.uid));
    let gid = Some(rustix::fs::Gid::from_raw(owner.gid));
    let target = if follow || rel.file_name().is_none() { root.canonicalize(rel)? } else { rel.to_path_buf() };
    if target.file_name().is_none() {
        // The root itself.
        return Ok(rustix::fs::fchown(root, uid, gid)?);
    }
    let (parent, name) = parent_and_name(&target)?;
    let dir = open_parent(root, &parent)?;
    Ok(rustix::fs::chownat(&dir, name, uid, gid, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?)
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

/// The target a symbolic link at `link` will store: a jail-absolute target
/// becomes relative to the link's directory (the kernel would read `/` as
/// the host's root); a target whose text climbs above the root is refused.
fn symlink_target(root: &Dir, target: &Path, link: &Path) -> io::Result<PathBuf> {
    let (parent, _) = parent_and_name(link)?;
    let depth = root.canonicalize(&parent)?.components().filter(|c| matches!(c, Component::Normal(_))).count();
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
    let mut level = depth as isize;
    for c in stored.components() {
        match c {
            Component::ParentDir => level -= 1,
            Component::Normal(_) => level += 1,
            _ => {}
        }
        if level < 0 {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "symbolic link would point outside the root"));
        }
    }
    Ok(stored)
}

/// The canonical client path of `rel`; the last component may be missing.
fn realpath_beneath(root: &Dir, rel: &Path) -> io::Result<PathBuf> {
    match root.canonicalize(rel) {
        Ok(p) => Ok(jail_absolute(&p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, name) = parent_and_name(rel).map_err(|_| e)?;
            Ok(jail_absolute(&root.canonicalize(parent)?).join(name))
        }
        Err(e) => Err(e),
    }
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
        let mode = attrs.permissions.map_or(0o666, |p| p & 0o7777);
        let file = self
            .blocking(move |root| {
                let mut options = OpenOptions::new();
                options
                    .read(flags.read || !(flags.write || flags.append))
                    .write(flags.write)
                    .append(flags.append)
                    .truncate(flags.truncate)
                    .mode(mode)
                    // A FIFO or device in the jail must not block a thread
                    // forever on open; regular files ignore the flag.
                    .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
                if flags.create && flags.exclusive {
                    options.create_new(true);
                } else {
                    options.create(flags.create);
                }
                root.open_with(rel, &options)
            })
            .await?;
        Ok(FsFile { file: Arc::new(file.into_std()) })
    }

    async fn read(&self, file: &FsFile, offset: u64, buf: &mut ReadBuffer) -> io::Result<()> {
        let f = file.file.clone();
        let mut owned = std::mem::take(buf);
        let filled = tokio::task::spawn_blocking(move || {
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
        .await
        .map_err(io::Error::other)??;
        *buf = filled;
        Ok(())
    }

    async fn write(&self, file: &FsFile, offset: u64, data: Bytes) -> io::Result<()> {
        self.writable()?;
        let f = file.file.clone();
        tokio::task::spawn_blocking(move || f.write_all_at(&data, offset)).await.map_err(io::Error::other)?
    }

    async fn fstat(&self, file: &FsFile) -> io::Result<FileAttributes> {
        let f = file.file.clone();
        tokio::task::spawn_blocking(move || f.metadata().map(|m| attrs_of_std(&m))).await.map_err(io::Error::other)?
    }

    async fn fsetstat(&self, file: &FsFile, attrs: &FileAttributes) -> io::Result<()> {
        self.writable()?;
        let f = file.file.clone();
        let attrs = *attrs;
        tokio::task::spawn_blocking(move || {
            if let Some(size) = attrs.size {
                f.set_len(size)?;
            }
            if let Some(mode) = attrs.permissions {
                f.set_permissions(Permissions::from_mode(mode & 0o7777))?;
            }
            if let Some(t) = attrs.times {
                f.set_times(FileTimes::new().set_accessed(system_time(t.atime)).set_modified(system_time(t.mtime)))?;
            }
            if let Some(o) = attrs.owner {
                rustix::fs::fchown(&*f, Some(rustix::fs::Uid::from_raw(o.uid)), Some(rustix::fs::Gid::from_raw(o.gid)))?;
            }
            Ok(())
        })
        .await
        .map_err(io::Error::other)?
    }

    async fn fsync(&self, file: &FsFile) -> io::Result<()> {
        let f = file.file.clone();
        tokio::task::spawn_blocking(move || f.sync_all()).await.map_err(io::Error::other)?
    }

    async fn fstatvfs(&self, file: &FsFile) -> io::Result<StatVfs> {
        let f = file.file.clone();
        let read_only = self.read_only;
        tokio::task::spawn_blocking(move || Ok(statvfs_of(rustix::fs::fstatvfs(&*f)?, read_only)))
            .await
            .map_err(io::Error::other)?
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
        let (entries, batch) = tokio::task::spawn_blocking(move || {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let names = names();
            let mut batch = Vec::new();
            for entry in entries.by_ref() {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) if batch.is_empty() => return (entries, Err(e)),
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
            (entries, Ok(batch))
        })
        .await
        .map_err(io::Error::other)?;
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
        let attrs = *attrs;
        self.blocking(move |root| {
            if let Some(size) = attrs.size {
                root.open_with(&rel, OpenOptions::new().write(true))?.set_len(size)?;
            }
            if let Some(mode) = attrs.permissions {
                root.set_permissions(&rel, cap_std::fs::Permissions::from_std(Permissions::from_mode(mode & 0o7777)))?;
            }
            if let Some(t) = attrs.times {
                root.set_times(&rel, time_spec(t.atime), time_spec(t.mtime))?;
            }
            if let Some(owner) = attrs.owner {
                chown_beneath(root, &rel, owner, true)?;
            }
            Ok(())
        })
        .await
    }

    async fn lsetstat(&self, path: &Path, attrs: &FileAttributes) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        let attrs = *attrs;
        self.blocking(move |root| {
            let is_link = root.symlink_metadata(&rel)?.file_type().is_symlink();
            if let Some(size) = attrs.size {
                if is_link {
                    return Err(io::Error::new(io::ErrorKind::Unsupported, "a symbolic link has no size to set"));
                }
                root.open_with(&rel, OpenOptions::new().write(true))?.set_len(size)?;
            }
            if let Some(mode) = attrs.permissions {
                if is_link {
                    // Linux keeps no permissions on symbolic links.
                    return Err(io::Error::new(io::ErrorKind::Unsupported, "symbolic links have no permissions"));
                }
                root.set_permissions(&rel, cap_std::fs::Permissions::from_std(Permissions::from_mode(mode & 0o7777)))?;
            }
            if let Some(t) = attrs.times {
                root.set_symlink_times(&rel, time_spec(t.atime), time_spec(t.mtime))?;
            }
            if let Some(owner) = attrs.owner {
                chown_beneath(root, &rel, owner, false)?;
            }
            Ok(())
        })
        .await
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        self.blocking(move |root| root.remove_file(rel)).await
    }

    async fn mkdir(&self, path: &Path, attrs: &FileAttributes) -> io::Result<()> {
        self.writable()?;
        let rel = jailed(path)?;
        let mode = attrs.permissions.map_or(0o777, |p| p & 0o7777);
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
        self.blocking(move |root| {
            let stored = symlink_target(root, &target, &link)?;
            root.symlink(stored, link)
        })
        .await
    }

    async fn rename(&self, from: &Path, to: &Path, mode: RenameMode) -> io::Result<()> {
        self.writable()?;
        let from = jailed(from)?;
        let to = jailed(to)?;
        self.blocking(move |root| match mode {
            RenameMode::Replace => root.rename(from, root, to),
            RenameMode::NoReplace => rename_no_replace(root, &from, &to),
        })
        .await
    }

    async fn hardlink(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.writable()?;
        let from = jailed(from)?;
        let to = jailed(to)?;
        self.blocking(move |root| root.hard_link(from, root, to)).await
    }

    async fn statvfs(&self, path: &Path) -> io::Result<StatVfs> {
        let rel = jailed(path)?;
        let read_only = self.read_only;
        self.blocking(move |root| {
            let stats = match root.open_dir(&rel) {
                Ok(dir) => rustix::fs::fstatvfs(&dir)?,
                Err(_) => rustix::fs::fstatvfs(&root.open(&rel)?)?,
            };
            Ok(statvfs_of(stats, read_only))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(symlink_target(&dir, Path::new("/sub/x"), Path::new("sub/link")).unwrap(), PathBuf::from("../sub/x"));
        assert!(symlink_target(&dir, Path::new("../../secret"), Path::new("sub/link")).is_err());
        assert!(symlink_target(&dir, Path::new("../x"), Path::new("link")).is_err());
    }
}
