//! The SFTP version 3 wire format (draft-ietf-secsh-filexfer-02) and the
//! OpenSSH extensions its client uses (PROTOCOL.sftp-server in OpenSSH).
//!
//! Parsing works on one whole packet already bounded in length; every field
//! read checks what is left, so a lying length inside a packet is a
//! [`Malformed`] error, never an allocation or a panic.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::backend::{DirEntry, FileAttributes, OpenFlags, Owner, StatVfs, Times};

/// The protocol version this server speaks.
pub(crate) const VERSION: u32 = 3;

/// Request and response packet types.
pub(crate) mod fxp {
    pub(crate) const INIT: u8 = 1;
    pub(crate) const VERSION: u8 = 2;
    pub(crate) const OPEN: u8 = 3;
    pub(crate) const CLOSE: u8 = 4;
    pub(crate) const READ: u8 = 5;
    pub(crate) const WRITE: u8 = 6;
    pub(crate) const LSTAT: u8 = 7;
    pub(crate) const FSTAT: u8 = 8;
    pub(crate) const SETSTAT: u8 = 9;
    pub(crate) const FSETSTAT: u8 = 10;
    pub(crate) const OPENDIR: u8 = 11;
    pub(crate) const READDIR: u8 = 12;
    pub(crate) const REMOVE: u8 = 13;
    pub(crate) const MKDIR: u8 = 14;
    pub(crate) const RMDIR: u8 = 15;
    pub(crate) const REALPATH: u8 = 16;
    pub(crate) const STAT: u8 = 17;
    pub(crate) const RENAME: u8 = 18;
    pub(crate) const READLINK: u8 = 19;
    pub(crate) const SYMLINK: u8 = 20;
    pub(crate) const STATUS: u8 = 101;
    pub(crate) const HANDLE: u8 = 102;
    pub(crate) const DATA: u8 = 103;
    pub(crate) const NAME: u8 = 104;
    pub(crate) const ATTRS: u8 = 105;
    pub(crate) const EXTENDED: u8 = 200;
    pub(crate) const EXTENDED_REPLY: u8 = 201;
}

/// Status codes of `SSH_FXP_STATUS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusCode {
    Ok = 0,
    Eof = 1,
    NoSuchFile = 2,
    PermissionDenied = 3,
    Failure = 4,
    BadMessage = 5,
    OpUnsupported = 8,
}

/// The extensions announced in `SSH_FXP_VERSION`, with OpenSSH's version strings.
pub(crate) const EXTENSIONS: &[(&str, &str)] = &[
    ("posix-rename@openssh.com", "1"),
    ("statvfs@openssh.com", "2"),
    ("fstatvfs@openssh.com", "2"),
    ("hardlink@openssh.com", "1"),
    ("fsync@openssh.com", "1"),
    ("lsetstat@openssh.com", "1"),
    ("limits@openssh.com", "1"),
    ("expand-path@openssh.com", "1"),
];

const ATTR_SIZE: u32 = 0x01;
const ATTR_UIDGID: u32 = 0x02;
const ATTR_PERMISSIONS: u32 = 0x04;
const ATTR_ACMODTIME: u32 = 0x08;
const ATTR_EXTENDED: u32 = 0x8000_0000;

/// Bytes before the data in an `SSH_FXP_DATA` packet: length, type, id, data length.
pub(crate) const DATA_HEADER: usize = 4 + 1 + 4 + 4;

/// A packet that ended early or held an impossible value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// A request, decoded. Handles stay opaque bytes; the session maps them.
#[derive(Debug)]
pub(crate) enum Request {
    Open { path: PathBuf, flags: OpenFlags, attrs: FileAttributes },
    Close { handle: Bytes },
    Read { handle: Bytes, offset: u64, len: u32 },
    Write { handle: Bytes, offset: u64, data: Bytes },
    Lstat { path: PathBuf },
    Fstat { handle: Bytes },
    Setstat { path: PathBuf, attrs: FileAttributes },
    Fsetstat { handle: Bytes, attrs: FileAttributes },
    Opendir { path: PathBuf },
    Readdir { handle: Bytes },
    Remove { path: PathBuf },
    Mkdir { path: PathBuf, attrs: FileAttributes },
    Rmdir { path: PathBuf },
    Realpath { path: PathBuf },
    Stat { path: PathBuf },
    Rename { from: PathBuf, to: PathBuf },
    Readlink { path: PathBuf },
    /// OpenSSH sends the target first and the link second, the reverse of the
    /// draft; every client follows OpenSSH.
    Symlink { target: PathBuf, link: PathBuf },
    PosixRename { from: PathBuf, to: PathBuf },
    Statvfs { path: PathBuf },
    Fstatvfs { handle: Bytes },
    Hardlink { from: PathBuf, to: PathBuf },
    Fsync { handle: Bytes },
    Limits,
    ExpandPath { path: PathBuf },
    Lsetstat { path: PathBuf, attrs: FileAttributes },
    /// A request type or extension this server does not know.
    Unsupported { kind: u8, extension: Option<String> },
}

impl Request {
    /// A short name for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Request::Open { .. } => "open",
            Request::Close { .. } => "close",
            Request::Read { .. } => "read",
            Request::Write { .. } => "write",
            Request::Lstat { .. } => "lstat",
            Request::Fstat { .. } => "fstat",
            Request::Setstat { .. } => "setstat",
            Request::Fsetstat { .. } => "fsetstat",
            Request::Opendir { .. } => "opendir",
            Request::Readdir { .. } => "readdir",
            Request::Remove { .. } => "remove",
            Request::Mkdir { .. } => "mkdir",
            Request::Rmdir { .. } => "rmdir",
            Request::Realpath { .. } => "realpath",
            Request::Stat { .. } => "stat",
            Request::Rename { .. } => "rename",
            Request::Readlink { .. } => "readlink",
            Request::Symlink { .. } => "symlink",
            Request::PosixRename { .. } => "posix-rename",
            Request::Statvfs { .. } => "statvfs",
            Request::Fstatvfs { .. } => "fstatvfs",
            Request::Hardlink { .. } => "hardlink",
            Request::Fsync { .. } => "fsync",
            Request::Limits => "limits",
            Request::ExpandPath { .. } => "expand-path",
            Request::Lsetstat { .. } => "lsetstat",
            Request::Unsupported { .. } => "unsupported",
        }
    }
}

/// A cursor over one packet's fields.
pub(crate) struct Fields {
    buf: Bytes,
}

impl Fields {
    pub(crate) fn new(buf: Bytes) -> Self {
        Fields { buf }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        if self.buf.remaining() < 1 {
            return Err(Malformed);
        }
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        if self.buf.remaining() < 4 {
            return Err(Malformed);
        }
        Ok(self.buf.get_u32())
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        if self.buf.remaining() < 8 {
            return Err(Malformed);
        }
        Ok(self.buf.get_u64())
    }

    /// A length-prefixed string, as a slice of the packet (no copy).
    fn string(&mut self) -> Result<Bytes, Malformed> {
        let len = self.u32()? as usize;
        if self.buf.remaining() < len {
            return Err(Malformed);
        }
        Ok(self.buf.split_to(len))
    }

    fn path(&mut self) -> Result<PathBuf, Malformed> {
        Ok(Path::new(OsStr::from_bytes(&self.string()?)).to_path_buf())
    }

    fn attrs(&mut self) -> Result<FileAttributes, Malformed> {
        let flags = self.u32()?;
        let mut attrs = FileAttributes::default();
        if flags & ATTR_SIZE != 0 {
            attrs.size = Some(self.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            attrs.owner = Some(Owner { uid: self.u32()?, gid: self.u32()? });
        }
        if flags & ATTR_PERMISSIONS != 0 {
            attrs.permissions = Some(self.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            attrs.times = Some(Times { atime: self.u32()?, mtime: self.u32()? });
        }
        if flags & ATTR_EXTENDED != 0 {
            // Extended attributes are read past and ignored; each pair is
            // bounded by the packet, so the count cannot make us loop long.
            let count = self.u32()?;
            for _ in 0..count {
                self.string()?;
                self.string()?;
            }
        }
        Ok(attrs)
    }
}

/// Decodes a request packet (without its length): type, id and request.
/// `SSH_FXP_INIT` is the session's to handle and is not decoded here.
pub(crate) fn parse(packet: Bytes) -> Result<(u32, Request), (Option<u32>, Malformed)> {
    let mut f = Fields::new(packet);
    let kind = f.u8().map_err(|e| (None, e))?;
    let id = f.u32().map_err(|e| (None, e))?;
    parse_body(kind, &mut f).map(|r| (id, r)).map_err(|e| (Some(id), e))
}

fn parse_body(kind: u8, f: &mut Fields) -> Result<Request, Malformed> {
    Ok(match kind {
        fxp::OPEN => {
            let path = f.path()?;
            let flags = OpenFlags::from_bits(f.u32()?);
            Request::Open { path, flags, attrs: f.attrs()? }
        }
        fxp::CLOSE => Request::Close { handle: f.string()? },
        fxp::READ => Request::Read { handle: f.string()?, offset: f.u64()?, len: f.u32()? },
        fxp::WRITE => Request::Write { handle: f.string()?, offset: f.u64()?, data: f.string()? },
        fxp::LSTAT => Request::Lstat { path: f.path()? },
        fxp::FSTAT => Request::Fstat { handle: f.string()? },
        fxp::SETSTAT => Request::Setstat { path: f.path()?, attrs: f.attrs()? },
        fxp::FSETSTAT => Request::Fsetstat { handle: f.string()?, attrs: f.attrs()? },
        fxp::OPENDIR => Request::Opendir { path: f.path()? },
        fxp::READDIR => Request::Readdir { handle: f.string()? },
        fxp::REMOVE => Request::Remove { path: f.path()? },
        fxp::MKDIR => Request::Mkdir { path: f.path()?, attrs: f.attrs()? },
        fxp::RMDIR => Request::Rmdir { path: f.path()? },
        fxp::REALPATH => Request::Realpath { path: f.path()? },
        fxp::STAT => Request::Stat { path: f.path()? },
        fxp::RENAME => Request::Rename { from: f.path()?, to: f.path()? },
        fxp::READLINK => Request::Readlink { path: f.path()? },
        fxp::SYMLINK => Request::Symlink { target: f.path()?, link: f.path()? },
        fxp::EXTENDED => {
            let name = f.string()?;
            match &name[..] {
                b"posix-rename@openssh.com" => Request::PosixRename { from: f.path()?, to: f.path()? },
                b"statvfs@openssh.com" => Request::Statvfs { path: f.path()? },
                b"fstatvfs@openssh.com" => Request::Fstatvfs { handle: f.string()? },
                b"hardlink@openssh.com" => Request::Hardlink { from: f.path()?, to: f.path()? },
                b"fsync@openssh.com" => Request::Fsync { handle: f.string()? },
                b"limits@openssh.com" => Request::Limits,
                b"expand-path@openssh.com" => Request::ExpandPath { path: f.path()? },
                b"lsetstat@openssh.com" => Request::Lsetstat { path: f.path()?, attrs: f.attrs()? },
                other => {
                    Request::Unsupported { kind, extension: Some(String::from_utf8_lossy(other).into_owned()) }
                }
            }
        }
        other => Request::Unsupported { kind: other, extension: None },
    })
}

/// Builds one response packet, length prefix included.
pub(crate) struct Packet {
    buf: BytesMut,
}

impl Packet {
    pub(crate) fn new(kind: u8, id: Option<u32>, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(capacity + 9);
        buf.put_u32(0);
        buf.put_u8(kind);
        if let Some(id) = id {
            buf.put_u32(id);
        }
        Packet { buf }
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.put_u32(v);
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.put_u64(v);
        self
    }

    pub(crate) fn string(&mut self, s: &[u8]) -> &mut Self {
        self.buf.put_u32(s.len() as u32);
        self.buf.put_slice(s);
        self
    }

    pub(crate) fn attrs(&mut self, a: &FileAttributes) -> &mut Self {
        let flags = (if a.size.is_some() { ATTR_SIZE } else { 0 })
            | (if a.owner.is_some() { ATTR_UIDGID } else { 0 })
            | (if a.permissions.is_some() { ATTR_PERMISSIONS } else { 0 })
            | (if a.times.is_some() { ATTR_ACMODTIME } else { 0 });
        self.u32(flags);
        if let Some(size) = a.size {
            self.u64(size);
        }
        if let Some(owner) = a.owner {
            self.u32(owner.uid).u32(owner.gid);
        }
        if let Some(p) = a.permissions {
            self.u32(p);
        }
        if let Some(t) = a.times {
            self.u32(t.atime).u32(t.mtime);
        }
        self
    }

    pub(crate) fn finish(mut self) -> Bytes {
        let len = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf.freeze()
    }
}

/// `SSH_FXP_VERSION` with our extensions.
pub(crate) fn version() -> Bytes {
    let mut p = Packet::new(fxp::VERSION, None, 256);
    p.u32(VERSION);
    for (name, value) in EXTENSIONS {
        p.string(name.as_bytes()).string(value.as_bytes());
    }
    p.finish()
}

pub(crate) fn status(id: u32, code: StatusCode, message: &str) -> Bytes {
    let mut p = Packet::new(fxp::STATUS, Some(id), 16 + message.len());
    p.u32(code as u32).string(message.as_bytes()).string(b"en");
    p.finish()
}

pub(crate) fn handle(id: u32, handle: &[u8]) -> Bytes {
    let mut p = Packet::new(fxp::HANDLE, Some(id), 8 + handle.len());
    p.string(handle);
    p.finish()
}

pub(crate) fn attrs(id: u32, attrs: &FileAttributes) -> Bytes {
    let mut p = Packet::new(fxp::ATTRS, Some(id), 40);
    p.attrs(attrs);
    p.finish()
}

/// `SSH_FXP_NAME` with one name, as realpath, readlink and expand-path answer.
pub(crate) fn single_name(id: u32, path: &Path, attrs: &FileAttributes) -> Bytes {
    let name = path.as_os_str().as_bytes();
    let mut p = Packet::new(fxp::NAME, Some(id), 2 * name.len() + 48);
    p.u32(1).string(name).string(name).attrs(attrs);
    p.finish()
}

/// The most a listing reply (`SSH_FXP_NAME` to `SSH_FXP_READDIR`) may be,
/// length included. OpenSSH's client gives up on a packet over 256 KiB; its
/// server sends at most 100 names, about this much with the longest names.
pub(crate) const MAX_NAMES_REPLY: usize = 64 * 1024;

/// Bytes an entry takes in `SSH_FXP_NAME`: name, long name, attributes.
fn entry_len(entry: &DirEntry) -> usize {
    let a = &entry.attrs;
    let attrs = 4
        + if a.size.is_some() { 8 } else { 0 }
        + if a.owner.is_some() { 8 } else { 0 }
        + if a.permissions.is_some() { 4 } else { 0 }
        + if a.times.is_some() { 8 } else { 0 };
    4 + entry.name.len() + 4 + entry.long_name.as_ref().map_or(0, String::len) + attrs
}

/// `SSH_FXP_NAME` with the entries at the front of `pending` that fit in
/// [`MAX_NAMES_REPLY`] bytes, taken out of it; the rest wait for the next
/// `SSH_FXP_READDIR`. `None` when `pending` is empty.
///
/// A long name (display text) too long for a reply of its own is cut to fit;
/// an entry whose name alone is too long is dropped. Neither happens with
/// names a file system allows.
pub(crate) fn names(id: u32, pending: &mut VecDeque<DirEntry>) -> Option<Bytes> {
    // length, type, id, count
    const HEADER: usize = 4 + 1 + 4 + 4;
    let mut size = HEADER;
    let mut count = 0;
    while let Some(entry) = pending.get_mut(count) {
        let mut len = entry_len(entry);
        if count == 0 && HEADER + len > MAX_NAMES_REPLY {
            let over = HEADER + len - MAX_NAMES_REPLY;
            let long = entry.long_name.get_or_insert_with(String::new);
            if over > long.len() {
                tracing::warn!(len = entry.name.len(), "a directory entry's name is too long for a reply; skipped");
                pending.pop_front();
                continue;
            }
            let mut cut = long.len() - over;
            while !long.is_char_boundary(cut) {
                cut -= 1;
            }
            long.truncate(cut);
            len = entry_len(entry);
        }
        if size + len > MAX_NAMES_REPLY {
            break;
        }
        size += len;
        count += 1;
    }
    if count == 0 {
        return None;
    }
    let mut p = Packet::new(fxp::NAME, Some(id), size);
    p.u32(count as u32);
    for entry in pending.drain(..count) {
        let long = entry.long_name.as_deref().unwrap_or_default();
        p.string(entry.name.as_bytes()).string(long.as_bytes()).attrs(&entry.attrs);
    }
    Some(p.finish())
}

pub(crate) fn statvfs(id: u32, s: &StatVfs) -> Bytes {
    let mut p = Packet::new(fxp::EXTENDED_REPLY, Some(id), 88);
    for v in [s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.fsid, s.flag, s.namemax] {
        p.u64(v);
    }
    p.finish()
}

/// `limits@openssh.com`: packet, read and write lengths and open handles.
pub(crate) fn limits(id: u32, packet: u64, read: u64, write: u64, handles: u64) -> Bytes {
    let mut p = Packet::new(fxp::EXTENDED_REPLY, Some(id), 32);
    p.u64(packet).u64(read).u64(write).u64(handles);
    p.finish()
}

/// Writes the `SSH_FXP_DATA` header into the room a [`ReadBuffer`](super::ReadBuffer) kept for it.
pub(crate) fn data(id: u32, mut buf: BytesMut, len: usize) -> Bytes {
    let mut header = [0u8; DATA_HEADER];
    header[..4].copy_from_slice(&((DATA_HEADER - 4 + len) as u32).to_be_bytes());
    header[4] = fxp::DATA;
    header[5..9].copy_from_slice(&id.to_be_bytes());
    header[9..13].copy_from_slice(&(len as u32).to_be_bytes());
    buf[..DATA_HEADER].copy_from_slice(&header);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A field of a request body: a `u32`, a `u64`, or a string of any bytes
    /// whose length prefix may lie.
    fn field() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<u32>().prop_map(|v| v.to_be_bytes().to_vec()),
            any::<u64>().prop_map(|v| v.to_be_bytes().to_vec()),
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(lie, s)| {
                let len = if lie { u32::MAX - s.len() as u32 } else { s.len() as u32 };
                [len.to_be_bytes().as_slice(), &s].concat()
            }),
        ]
    }

    proptest! {
        // Any bytes at all: decoded or refused, never a panic.
        #[test]
        fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(Bytes::from(bytes));
        }

        // Every request kind with fields of the right shapes and lying lengths,
        // which reach past the first field of each decoder.
        #[test]
        fn request_kinds_with_random_fields_parse_or_are_refused(
            kind in prop_oneof![3u8..=20, Just(200u8)],
            id in any::<u32>(),
            fields in proptest::collection::vec(field(), 0..8),
        ) {
            let _ = parse(packet(kind, id, &fields.concat()));
        }
    }

    fn packet(kind: u8, id: u32, body: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(kind);
        b.put_u32(id);
        b.put_slice(body);
        b.freeze()
    }

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn parses_write_without_copying_its_data() {
        let mut body = string(b"\0\0\0\x01");
        body.extend_from_slice(&7u64.to_be_bytes());
        body.extend(string(b"hello"));
        let (id, req) = parse(packet(fxp::WRITE, 9, &body)).unwrap();
        assert_eq!(id, 9);
        match req {
            Request::Write { handle, offset, data } => {
                assert_eq!((&handle[..], offset, &data[..]), (&b"\0\0\0\x01"[..], 7, &b"hello"[..]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_string_longer_than_the_packet_is_malformed() {
        let mut body = 1000u32.to_be_bytes().to_vec();
        body.extend_from_slice(b"short");
        assert_eq!(parse(packet(fxp::STAT, 3, &body)).unwrap_err(), (Some(3), Malformed));
        assert_eq!(parse(Bytes::from_static(&[fxp::STAT, 0])).unwrap_err(), (None, Malformed));
    }

    #[test]
    fn parses_extensions_and_refuses_unknown_ones() {
        let mut body = string(b"posix-rename@openssh.com");
        body.extend(string(b"/a"));
        body.extend(string(b"/b"));
        assert!(matches!(parse(packet(fxp::EXTENDED, 1, &body)).unwrap().1, Request::PosixRename { .. }));
        let body = string(b"copy-data");
        match parse(packet(fxp::EXTENDED, 1, &body)).unwrap().1 {
            Request::Unsupported { extension, .. } => assert_eq!(extension.as_deref(), Some("copy-data")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attrs_round_trip() {
        let a = FileAttributes {
            size: Some(5),
            owner: Some(Owner { uid: 1, gid: 2 }),
            permissions: Some(0o100644),
            times: Some(Times { atime: 3, mtime: 4 }),
        };
        let mut p = Packet::new(fxp::ATTRS, Some(1), 0);
        p.attrs(&a);
        let bytes = p.finish();
        let mut f = Fields::new(bytes.slice(9..));
        assert_eq!(f.attrs().unwrap(), a);
    }

    /// Decodes an `SSH_FXP_NAME` packet (length included) into its names.
    fn decode_names(reply: &Bytes) -> Vec<Vec<u8>> {
        let len = u32::from_be_bytes(reply[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, reply.len(), "the length prefix covers the packet");
        let mut f = Fields::new(reply.slice(4..));
        assert_eq!(f.u8().unwrap(), fxp::NAME);
        f.u32().unwrap();
        let count = f.u32().unwrap();
        let names = (0..count)
            .map(|_| {
                let name = f.string().unwrap().to_vec();
                f.string().unwrap();
                f.attrs().unwrap();
                name
            })
            .collect();
        assert_eq!(f.buf.remaining(), 0);
        names
    }

    #[test]
    fn listing_replies_stay_within_their_bound_and_lose_no_name() {
        // 300 symbolic links with 255-byte names and 4,000-byte targets in their
        // long names: about 1.3 MiB, which one reply per 100 names would
        // split into packets of 440 KiB.
        let mut pending: VecDeque<DirEntry> = (0..300)
            .map(|i| {
                let name = format!("{i:03}{}", "n".repeat(252));
                let long = format!("lrwxrwxrwx    1 0        0              10 Jan  1  1970 {name} -> {}", "t".repeat(4000));
                DirEntry { name: name.into(), long_name: Some(long), attrs: FileAttributes::file(4000, 0o777) }
            })
            .collect();
        let mut listed = Vec::new();
        let mut replies = 0;
        while let Some(reply) = names(7, &mut pending) {
            assert!(reply.len() <= MAX_NAMES_REPLY, "a reply of {} bytes", reply.len());
            listed.extend(decode_names(&reply));
            replies += 1;
        }
        assert_eq!(listed.len(), 300);
        assert!(listed.iter().enumerate().all(|(i, n)| n.starts_with(format!("{i:03}").as_bytes())), "in order");
        assert!(replies >= 20, "{replies} replies");
    }

    #[test]
    fn an_entry_too_long_for_any_reply_is_cut_or_skipped() {
        let huge = DirEntry { name: "a".into(), long_name: Some("é".repeat(MAX_NAMES_REPLY)), attrs: FileAttributes::default() };
        let nameless = DirEntry { name: "b".repeat(MAX_NAMES_REPLY).into(), long_name: None, attrs: FileAttributes::default() };
        let after = DirEntry::new("c", FileAttributes::default());
        let mut pending = VecDeque::from([huge, nameless, after]);
        let first = names(1, &mut pending).unwrap();
        assert!(first.len() <= MAX_NAMES_REPLY);
        assert_eq!(decode_names(&first), [b"a".to_vec()]);
        let second = names(2, &mut pending).unwrap();
        assert_eq!(decode_names(&second), [b"c".to_vec()]);
        assert!(names(3, &mut pending).is_none());
    }
}
