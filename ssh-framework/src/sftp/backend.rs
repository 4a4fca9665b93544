//! What an SFTP session asks of the storage it serves: the [`Backend`] trait
//! and the plain data types it speaks in.
//!
//! Errors are [`std::io::Error`]s; their kind picks the SFTP status the client
//! sees (`NotFound` is "no such file", `PermissionDenied` is "permission
//! denied", `Unsupported` is "operation unsupported", anything else is a
//! failure carrying the error's text).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};

use bytes::{Bytes, BytesMut};

/// A storage an SFTP session serves: a directory tree, an in-memory map, an
/// object store.
///
/// Paths are the client's, as sent: absolute ones (`/sub/file`) name a place
/// from the backend's root, relative ones a place from its home directory
/// (the root, for the built-in backends). The backend alone decides what a
/// path means and must keep every path inside what it serves.
///
/// The required methods are those a read-only listing and download need;
/// every other operation answers "unsupported" unless implemented. Methods may
/// be called concurrently, also on the same file (reads and writes at
/// different offsets), so implementations take `&self`.
pub trait Backend: Send + Sync + 'static {
    /// An open file, as returned by [`open`](Backend::open).
    type File: Send + Sync + 'static;
    /// An open directory listing, as returned by [`opendir`](Backend::opendir).
    type Dir: Send + 'static;

    /// Opens (and with [`OpenFlags::create`], creates) a file. `attrs` are
    /// the attributes the client asks for a new file (usually permissions).
    fn open(&self, path: &Path, flags: OpenFlags, attrs: &FileAttributes) -> impl Future<Output = io::Result<Self::File>> + Send;

    /// Closes a file once every request on it has finished. The default drops it.
    fn close(&self, file: Self::File) -> impl Future<Output = io::Result<()>> + Send {
        drop(file);
        std::future::ready(Ok(()))
    }

    /// Reads from `offset` into `buf`, at most [`ReadBuffer::remaining`]
    /// bytes. Reading nothing means the end of the file.
    fn read(&self, file: &Self::File, offset: u64, buf: &mut ReadBuffer) -> impl Future<Output = io::Result<()>> + Send;

    /// Writes all of `data` at `offset`.
    fn write(&self, file: &Self::File, offset: u64, data: Bytes) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (file, offset, data);
        unsupported()
    }

    /// The attributes of an open file.
    fn fstat(&self, file: &Self::File) -> impl Future<Output = io::Result<FileAttributes>> + Send;

    /// Changes the attributes of an open file (only those that are `Some`).
    fn fsetstat(&self, file: &Self::File, attrs: &FileAttributes) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (file, attrs);
        unsupported()
    }

    /// Flushes an open file to stable storage (`fsync@openssh.com`).
    fn fsync(&self, file: &Self::File) -> impl Future<Output = io::Result<()>> + Send {
        let _ = file;
        unsupported()
    }

    /// File system statistics of an open file (`fstatvfs@openssh.com`).
    fn fstatvfs(&self, file: &Self::File) -> impl Future<Output = io::Result<StatVfs>> + Send {
        let _ = file;
        unsupported()
    }

    /// Opens a directory for listing.
    fn opendir(&self, path: &Path) -> impl Future<Output = io::Result<Self::Dir>> + Send;

    /// The next entries of a listing; an empty `Vec` ends it. Return a few
    /// dozen at a time: they travel in one packet.
    fn readdir(&self, dir: &mut Self::Dir) -> impl Future<Output = io::Result<Vec<DirEntry>>> + Send;

    /// The attributes of `path`, following symbolic links.
    fn stat(&self, path: &Path) -> impl Future<Output = io::Result<FileAttributes>> + Send;

    /// The attributes of `path` itself, not following a final symbolic link.
    /// The default is [`stat`](Backend::stat), right for backends without links.
    fn lstat(&self, path: &Path) -> impl Future<Output = io::Result<FileAttributes>> + Send {
        self.stat(path)
    }

    /// Changes the attributes of `path`, following symbolic links.
    fn setstat(&self, path: &Path, attrs: &FileAttributes) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (path, attrs);
        unsupported()
    }

    /// Changes the attributes of `path` itself (`lsetstat@openssh.com`).
    fn lsetstat(&self, path: &Path, attrs: &FileAttributes) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (path, attrs);
        unsupported()
    }

    /// Removes a file (or a symbolic link, not what it points to).
    fn remove(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send {
        let _ = path;
        unsupported()
    }

    /// Creates a directory.
    fn mkdir(&self, path: &Path, attrs: &FileAttributes) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (path, attrs);
        unsupported()
    }

    /// Removes an empty directory.
    fn rmdir(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send {
        let _ = path;
        unsupported()
    }

    /// The canonical absolute form of `path` as the client should see it
    /// (`/sub/dir`): no `.`, `..` or symbolic links. The last component may
    /// not exist yet. The default normalises the text with [`normalize`],
    /// right for backends without symbolic links.
    fn realpath(&self, path: &Path) -> impl Future<Output = io::Result<PathBuf>> + Send {
        std::future::ready(normalize(path).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "path leads above the root")))
    }

    /// The target of a symbolic link, as stored.
    fn readlink(&self, path: &Path) -> impl Future<Output = io::Result<PathBuf>> + Send {
        let _ = path;
        unsupported()
    }

    /// Creates a symbolic link at `link` pointing to `target`.
    fn symlink(&self, target: &Path, link: &Path) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (target, link);
        unsupported()
    }

    /// Renames `from` to `to`.
    fn rename(&self, from: &Path, to: &Path, mode: RenameMode) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (from, to, mode);
        unsupported()
    }

    /// Creates a hard link `to` of the file `from` (`hardlink@openssh.com`).
    fn hardlink(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + Send {
        let _ = (from, to);
        unsupported()
    }

    /// File system statistics (`statvfs@openssh.com`, `df` in OpenSSH's client).
    fn statvfs(&self, path: &Path) -> impl Future<Output = io::Result<StatVfs>> + Send {
        let _ = path;
        unsupported()
    }
}

fn unsupported<T>() -> std::future::Ready<io::Result<T>> {
    std::future::ready(Err(io::Error::from(io::ErrorKind::Unsupported)))
}

/// The canonical absolute form of a path by its text alone (`a/./b/../c` is
/// `/a/c`); `None` when `..` would climb above the root.
///
/// For backends without symbolic links, where text is all a path is. A
/// backend over a real file system must resolve paths against it instead
/// (the built-in [`FsBackend`](super::FsBackend) lets `cap-std` do it).
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
        }
    }
    Some(out)
}

/// How [`Backend::rename`] treats an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    /// `SSH_FXP_RENAME`: fail when the target exists.
    NoReplace,
    /// `posix-rename@openssh.com`: replace the target atomically, like `rename(2)`.
    Replace,
}

/// The flags of an `SSH_FXP_OPEN` request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Open for reading (`SSH_FXF_READ`).
    pub read: bool,
    /// Open for writing (`SSH_FXF_WRITE`).
    pub write: bool,
    /// Every write goes to the end of the file (`SSH_FXF_APPEND`).
    pub append: bool,
    /// Create the file if it does not exist (`SSH_FXF_CREAT`).
    pub create: bool,
    /// Truncate an existing file to zero length (`SSH_FXF_TRUNC`).
    pub truncate: bool,
    /// With `create`, fail if the file exists (`SSH_FXF_EXCL`).
    pub exclusive: bool,
}

impl OpenFlags {
    /// Decodes the wire's `pflags`.
    pub fn from_bits(bits: u32) -> Self {
        OpenFlags {
            read: bits & 0x01 != 0,
            write: bits & 0x02 != 0,
            append: bits & 0x04 != 0,
            create: bits & 0x08 != 0,
            truncate: bits & 0x10 != 0,
            exclusive: bits & 0x20 != 0,
        }
    }

    /// Whether the open may change the file system (write, append, create or truncate).
    pub fn modifies(&self) -> bool {
        self.write || self.append || self.create || self.truncate
    }
}

/// The owner of a file: numeric user and group ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Access and modification times, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Last access.
    pub atime: u32,
    /// Last modification.
    pub mtime: u32,
}

/// File attributes as SFTP version 3 carries them; `None` is "not sent".
///
/// In a request that changes attributes, only the `Some` fields change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileAttributes {
    /// Size in bytes.
    pub size: Option<u64>,
    /// Owner and group.
    pub owner: Option<Owner>,
    /// The full `st_mode`: file type bits (see [`FileAttributes::DIRECTORY`]
    /// and friends) and permission bits. Clients tell directories by it.
    pub permissions: Option<u32>,
    /// Access and modification times.
    pub times: Option<Times>,
}

impl FileAttributes {
    /// The file type bits of `permissions` (`S_IFMT`).
    pub const TYPE_MASK: u32 = 0o170_000;
    /// A regular file (`S_IFREG`).
    pub const REGULAR: u32 = 0o100_000;
    /// A directory (`S_IFDIR`).
    pub const DIRECTORY: u32 = 0o040_000;
    /// A symbolic link (`S_IFLNK`).
    pub const SYMLINK: u32 = 0o120_000;

    /// A regular file of `size` bytes with permission bits `mode` (such as `0o644`).
    pub fn file(size: u64, mode: u32) -> Self {
        FileAttributes { size: Some(size), permissions: Some(Self::REGULAR | (mode & 0o7777)), ..Default::default() }
    }

    /// A directory with permission bits `mode` (such as `0o755`).
    pub fn directory(mode: u32) -> Self {
        FileAttributes { size: Some(0), permissions: Some(Self::DIRECTORY | (mode & 0o7777)), ..Default::default() }
    }

    /// Sets the modification (and access) time.
    pub fn with_mtime(mut self, mtime: u32) -> Self {
        self.times = Some(Times { atime: mtime, mtime });
        self
    }

    /// Whether the type bits say directory.
    pub fn is_dir(&self) -> bool {
        self.permissions.is_some_and(|p| p & Self::TYPE_MASK == Self::DIRECTORY)
    }

    /// Whether the type bits say regular file.
    pub fn is_file(&self) -> bool {
        self.permissions.is_some_and(|p| p & Self::TYPE_MASK == Self::REGULAR)
    }

    /// Whether the type bits say symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.permissions.is_some_and(|p| p & Self::TYPE_MASK == Self::SYMLINK)
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name (one component, no `/`).
    pub name: OsString,
    /// The line `ls -l` would print, which OpenSSH's `sftp` shows for `ls -l`.
    /// `None` lets the session format one from `attrs` with numeric owners.
    pub long_name: Option<String>,
    /// The entry's attributes (of a symbolic link itself, not its target).
    pub attrs: FileAttributes,
}

impl DirEntry {
    /// An entry whose long name the session formats from `attrs`.
    pub fn new(name: impl Into<OsString>, attrs: FileAttributes) -> Self {
        DirEntry { name: name.into(), long_name: None, attrs }
    }
}

/// Formats the line `ls -l` prints for a file, as OpenSSH's `sftp-server`
/// sends it in a listing (`-rw-r--r--    1 alice    alice        1234 Jan  5 12:00 notes.txt`).
///
/// Times are shown in UTC; a time more than six months from `now` (seconds
/// since the epoch) shows the year instead of the time of day.
pub fn long_name(name: &OsStr, attrs: &FileAttributes, links: u64, user: &str, group: &str, now: u64) -> String {
    let mode = attrs.permissions.unwrap_or(0);
    let mut perms = String::with_capacity(10);
    perms.push(match mode & FileAttributes::TYPE_MASK {
        FileAttributes::DIRECTORY => 'd',
        FileAttributes::SYMLINK => 'l',
        0o020_000 => 'c',
        0o060_000 => 'b',
        0o010_000 => 'p',
        0o140_000 => 's',
        _ => '-',
    });
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let exec = |x: u32, special: u32, set: char, unset: char| match (mode & x != 0, mode & special != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    perms.push(bit(0o400, 'r'));
    perms.push(bit(0o200, 'w'));
    perms.push(exec(0o100, 0o4000, 's', 'S'));
    perms.push(bit(0o040, 'r'));
    perms.push(bit(0o020, 'w'));
    perms.push(exec(0o010, 0o2000, 's', 'S'));
    perms.push(bit(0o004, 'r'));
    perms.push(bit(0o002, 'w'));
    perms.push(exec(0o001, 0o1000, 't', 'T'));
    let mtime = attrs.times.map_or(0, |t| u64::from(t.mtime));
    let (year, month, day, hour, minute) = civil_time(mtime);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS[(month - 1) as usize];
    const SIX_MONTHS: u64 = 365 * 86_400 / 2;
    let when = if mtime + SIX_MONTHS > now && mtime < now + SIX_MONTHS {
        format!("{month} {day:>2} {hour:02}:{minute:02}")
    } else {
        format!("{month} {day:>2}  {year}")
    };
    format!(
        "{perms}  {links:>3} {user:<8} {group:<8} {size:>8} {when} {name}",
        size = attrs.size.unwrap_or(0),
        name = name.to_string_lossy()
    )
}

/// UTC calendar fields of a Unix time: (year, month 1-12, day, hour, minute).
fn civil_time(secs: u64) -> (i64, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rem / 3600) as u32, ((rem % 3600) / 60) as u32)
}

/// File system statistics (`statvfs@openssh.com`), as `statvfs(3)` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatVfs {
    /// File system block size.
    pub bsize: u64,
    /// Fundamental block size (the unit of the block counts).
    pub frsize: u64,
    /// Size in `frsize` units.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Free inodes for unprivileged users.
    pub favail: u64,
    /// File system id.
    pub fsid: u64,
    /// Mount flags: [`StatVfs::READ_ONLY`], [`StatVfs::NO_SUID`].
    pub flag: u64,
    /// Longest file name.
    pub namemax: u64,
}

impl StatVfs {
    /// `ST_RDONLY`: mounted read-only.
    pub const READ_ONLY: u64 = 0x1;
    /// `ST_NOSUID`: set-uid bits are ignored.
    pub const NO_SUID: u64 = 0x2;
}

/// The buffer [`Backend::read`] fills: file data goes straight into the
/// response packet, so the session sends it without another copy.
pub struct ReadBuffer {
    buf: BytesMut,
    header: usize,
    filled: usize,
}

impl fmt::Debug for ReadBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadBuffer").field("filled", &self.filled).field("remaining", &self.remaining()).finish()
    }
}

impl Default for ReadBuffer {
    /// An empty buffer with no room; see [`ReadBuffer::with_capacity`].
    fn default() -> Self {
        ReadBuffer { buf: BytesMut::new(), header: 0, filled: 0 }
    }
}

impl ReadBuffer {
    /// A buffer with room for `len` bytes.
    pub fn with_capacity(len: usize) -> Self {
        Self::with_header(0, len)
    }

    /// Room for `header` bytes the session writes later, then `len` bytes of data.
    pub(crate) fn with_header(header: usize, len: usize) -> Self {
        // `zeroed` asks the allocator for zeroed memory, which for large
        // buffers is fresh pages rather than a memset.
        ReadBuffer { buf: BytesMut::zeroed(header + len), header, filled: 0 }
    }

    /// A buffer reused from an earlier response: room for `header` bytes,
    /// then `len` bytes of data. What it held is not cleared (it is the
    /// session's own data, and only the filled part is ever sent).
    pub(crate) fn reuse(mut buf: BytesMut, header: usize, len: usize) -> Self {
        // Zeroes only what the earlier response did not fill (a short read at the end of a file).
        buf.resize(header + len, 0);
        ReadBuffer { buf, header, filled: 0 }
    }

    /// How many more bytes fit.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.header - self.filled
    }

    /// The bytes filled so far.
    pub fn filled(&self) -> &[u8] {
        &self.buf[self.header..self.header + self.filled]
    }

    /// How many bytes were filled.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether nothing was filled.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Appends as much of `data` as fits; returns how much did.
    pub fn put_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.remaining());
        let at = self.header + self.filled;
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.filled += n;
        n
    }

    /// The unfilled room, to read into (for example with `read_at`); call
    /// [`advance`](ReadBuffer::advance) with the number of bytes written.
    pub fn unfilled_mut(&mut self) -> &mut [u8] {
        let at = self.header + self.filled;
        &mut self.buf[at..]
    }

    /// Marks `n` more bytes of [`unfilled_mut`](ReadBuffer::unfilled_mut) as filled.
    ///
    /// # Panics
    ///
    /// If `n` exceeds [`remaining`](ReadBuffer::remaining).
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.remaining(), "ReadBuffer::advance past its capacity");
        self.filled += n;
    }

    /// The whole buffer (header room and data), trimmed to what was filled.
    pub(crate) fn into_parts(mut self) -> (BytesMut, usize) {
        self.buf.truncate(self.header + self.filled);
        (self.buf, self.filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_stays_under_the_root() {
        assert_eq!(normalize(Path::new("a/./b/../c")), Some(PathBuf::from("/a/c")));
        assert_eq!(normalize(Path::new("/")), Some(PathBuf::from("/")));
        assert_eq!(normalize(Path::new("")), Some(PathBuf::from("/")));
        assert_eq!(normalize(Path::new("/..")), None);
        assert_eq!(normalize(Path::new("/./..")), None);
        assert_eq!(normalize(Path::new("a/../..")), None);
    }

    #[test]
    fn long_name_reads_like_ls() {
        let attrs = FileAttributes {
            size: Some(1234),
            owner: Some(Owner { uid: 0, gid: 0 }),
            permissions: Some(FileAttributes::REGULAR | 0o644),
            times: Some(Times { atime: 0, mtime: 1_700_000_000 }),
        };
        let line = long_name(OsStr::new("notes.txt"), &attrs, 1, "root", "root", 1_700_000_100);
        assert_eq!(line, "-rw-r--r--    1 root     root         1234 Nov 14 22:13 notes.txt");
        let old = long_name(OsStr::new("d"), &FileAttributes::directory(0o1777).with_mtime(0), 2, "0", "0", 1_700_000_000);
        assert_eq!(old, "drwxrwxrwt    2 0        0               0 Jan  1  1970 d");
    }

    #[test]
    fn read_buffer_fills_after_its_header() {
        let mut buf = ReadBuffer::with_header(3, 4);
        assert_eq!(buf.put_slice(b"abcdef"), 4);
        assert_eq!(buf.filled(), b"abcd");
        assert_eq!(buf.remaining(), 0);
        let (bytes, n) = buf.into_parts();
        assert_eq!((bytes.len(), n), (7, 4));
    }
}
