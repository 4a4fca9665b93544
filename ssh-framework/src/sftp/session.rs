//! One SFTP session: a reader that parses requests, a task per request, one
//! writer that sends the responses.
//!
//! Requests run concurrently, so a client that keeps 64 reads in flight (as
//! OpenSSH's does) is served at the speed of the file system and the
//! channel, not at one round trip per request. Responses still leave in the
//! order the requests came: OpenSSH's client counts on it (it truncates an
//! in-place `scp` upload at the first write acknowledged out of order).
//!
//! The order the file system sees is kept by locks the reader takes in
//! arrival order before it spawns a request (tokio's locks are fair, so they
//! are granted in that order too):
//!
//! * requests on one handle: reads run together and writes run together; a
//!   read after writes (or a write after reads) waits for them; writes to a
//!   file opened for appending, and anything else on a handle (`fstat`,
//!   `readdir`, `close`, ...), wait for what came before and run alone;
//! * requests on paths: lookups run together; a change (`mkdir`, `rename`,
//!   an `open` that may create, ...) waits for what came before and runs alone.
//!
//! Memory is bounded: a packet may be at most [`MAX_PACKET`] long, at most
//! `max_in_flight` requests are read ahead (a request's permit is returned
//! only once its response is written), at most `max_handles` files and
//! directories are open (fewer when the user's share of the server's budget,
//! [`budget`](super::budget), is spent), and a listing reply is at most
//! [`MAX_NAMES_REPLY`](protocol::MAX_NAMES_REPLY) long, the rest of the
//! backend's batch waiting for the next `SSH_FXP_READDIR`.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, OwnedSemaphorePermit, RwLock, Semaphore, mpsc};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::backend::{Backend, DirEntry, FileAttributes, ReadBuffer, RenameMode, long_name};
use crate::open_files::{self as budget, OpenFile, UserFiles};
use super::protocol::{self, Request, StatusCode, fxp};

/// The largest request packet accepted (OpenSSH's limit); a longer one ends the session.
pub(crate) const MAX_PACKET: usize = 256 * 1024;
/// The largest read or write, as advertised by `limits@openssh.com` (OpenSSH's value).
pub(crate) const MAX_IO: usize = MAX_PACKET - 1024;
/// Responses at most this long are gathered into one channel write.
const SMALL_RESPONSE: usize = 4096;
/// Read buffers a session keeps for reuse once their response is written.
const SPARE_BUFFERS: usize = 8;
/// Buffers smaller than this are not worth keeping.
const SPARE_MIN: usize = 32 * 1024;
/// How long a closing session waits for requests still running.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) max_in_flight: usize,
    pub(crate) max_handles: usize,
}

/// What the writer sends, in `seq` order; the permit goes back once the bytes are written.
struct Outgoing {
    seq: u64,
    bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

/// The promise of the response to one request. Responses leave in the order
/// the requests came (OpenSSH's client truncates an `scp` upload at the
/// first write acknowledged out of order), so every request must answer: one
/// that ends without answering (a panic in a backend) answers with a failure.
struct Reply {
    seq: u64,
    id: u32,
    tx: mpsc::Sender<Outgoing>,
    permit: Option<OwnedSemaphorePermit>,
    sent: bool,
}

impl Reply {
    async fn send(mut self, bytes: Bytes) {
        self.sent = true;
        let _ = self.tx.send(Outgoing { seq: self.seq, bytes, _permit: self.permit.take() }).await;
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if !self.sent {
            let bytes = protocol::status(self.id, StatusCode::Failure, "Internal error");
            // The channel has room: it holds one slot per permit, and this reply holds one.
            let _ = self.tx.try_send(Outgoing { seq: self.seq, bytes, _permit: self.permit.take() });
        }
    }
}

enum Guard {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

const LAST_NONE: u8 = 0;
const LAST_READ: u8 = 1;
const LAST_WRITE: u8 = 2;

enum Open<B: Backend> {
    File(B::File),
    Dir(tokio::sync::Mutex<Listing<B::Dir>>),
}

/// An open directory and the entries of the backend's last batch that did not
/// fit in a reply (one batch at most, so bounded by the backend).
struct Listing<D> {
    dir: D,
    pending: VecDeque<DirEntry>,
}

struct Handle<B: Backend> {
    open: Open<B>,
    /// Opened with `SSH_FXF_APPEND`: every write goes to the end, so writes run one at a time, in order.
    append: bool,
    order: Arc<RwLock<()>>,
    /// Whether the requests running on this handle are reads or writes
    /// (only the reader touches it).
    last: AtomicU8,
    /// Its place in the server's budget, given back when the file closes.
    _budget: Option<OpenFile>,
}

/// Open handles: small integers (slot and generation) in a bounded table.
struct Handles<B: Backend> {
    slots: Vec<Slot<B>>,
    in_use: usize,
    max: usize,
    /// The user's share of the server's budget, when served on a channel.
    budget: Option<UserFiles>,
}

enum Slot<B: Backend> {
    Free { generation: u16 },
    Reserved { generation: u16 },
    Open { generation: u16, handle: Arc<Handle<B>> },
}

impl<B: Backend> Slot<B> {
    fn generation(&self) -> u16 {
        match self {
            Slot::Free { generation } | Slot::Reserved { generation } | Slot::Open { generation, .. } => *generation,
        }
    }
}

impl<B: Backend> Handles<B> {
    fn new(max: usize, budget: Option<UserFiles>) -> Self {
        Handles { slots: Vec::new(), in_use: 0, max, budget }
    }

    /// Keeps a slot for an `open` or `opendir` in progress, and its place in
    /// the server's budget; `Err` with the message for the client when either is full.
    fn reserve(&mut self) -> Result<(usize, Option<OpenFile>), &'static str> {
        if self.in_use >= self.max {
            return Err("Too many open handles");
        }
        let counted = budget::open(self.budget.as_ref()).map_err(|_| "Too many open files")?;
        self.in_use += 1;
        if let Some(i) = self.slots.iter().position(|s| matches!(s, Slot::Free { .. })) {
            let generation = self.slots[i].generation();
            self.slots[i] = Slot::Reserved { generation };
            return Ok((i, counted));
        }
        self.slots.push(Slot::Reserved { generation: 0 });
        Ok((self.slots.len() - 1, counted))
    }

    fn fill(&mut self, slot: usize, handle: Arc<Handle<B>>) -> [u8; 4] {
        let generation = self.slots[slot].generation();
        self.slots[slot] = Slot::Open { generation, handle };
        ((u32::from(generation) << 16) | slot as u32).to_be_bytes()
    }

    fn release(&mut self, slot: usize) {
        let generation = self.slots[slot].generation().wrapping_add(1);
        self.slots[slot] = Slot::Free { generation };
        self.in_use -= 1;
    }

    fn decode(&self, handle: &[u8]) -> Option<usize> {
        let bytes: [u8; 4] = handle.try_into().ok()?;
        let v = u32::from_be_bytes(bytes);
        let slot = (v & 0xffff) as usize;
        match self.slots.get(slot)? {
            Slot::Open { generation, .. } if u32::from(*generation) == v >> 16 => Some(slot),
            _ => None,
        }
    }

    fn get(&self, handle: &[u8]) -> Option<Arc<Handle<B>>> {
        match &self.slots[self.decode(handle)?] {
            Slot::Open { handle, .. } => Some(handle.clone()),
            _ => None,
        }
    }

    fn remove(&mut self, handle: &[u8]) -> Option<Arc<Handle<B>>> {
        let slot = self.decode(handle)?;
        let generation = self.slots[slot].generation();
        let old = std::mem::replace(&mut self.slots[slot], Slot::Free { generation: generation.wrapping_add(1) });
        self.in_use -= 1;
        match old {
            Slot::Open { handle, .. } => Some(handle),
            _ => None,
        }
    }

    fn drain(&mut self) -> Vec<Arc<Handle<B>>> {
        self.in_use = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|s| match s {
                Slot::Open { handle, .. } => Some(handle),
                _ => None,
            })
            .collect()
    }
}

struct Shared<B: Backend> {
    backend: Arc<B>,
    handles: Mutex<Handles<B>>,
    spare: Arc<SpareBuffers>,
}

/// Buffers of written `SSH_FXP_DATA` responses, reused for the next reads:
/// a fresh buffer is zeroed (and, at 255 KiB, often fresh pages that fault
/// in one by one), a reused one is not. At most [`SPARE_BUFFERS`] are kept,
/// and none once the session has nothing in flight, so an idle session holds none.
#[derive(Default)]
struct SpareBuffers(Mutex<Vec<BytesMut>>);

impl SpareBuffers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BytesMut>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer for a read of `len` bytes after the response header.
    fn read_buffer(&self, len: usize) -> ReadBuffer {
        let spare = self.lock().pop();
        match spare {
            Some(buf) if buf.capacity() >= protocol::DATA_HEADER + len => ReadBuffer::reuse(buf, protocol::DATA_HEADER, len),
            _ => ReadBuffer::with_header(protocol::DATA_HEADER, len),
        }
    }

    /// Keeps a written response's buffer, if nothing else holds it and there is room.
    fn give_back(&self, bytes: Bytes) {
        if bytes.len() < SPARE_MIN {
            return;
        }
        if let Ok(buf) = bytes.try_into_mut() {
            let mut spare = self.lock();
            if spare.len() < SPARE_BUFFERS {
                spare.push(buf);
            }
        }
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

impl<B: Backend> Shared<B> {
    fn handles(&self) -> std::sync::MutexGuard<'_, Handles<B>> {
        // A panic while holding this lock leaves the table consistent (every
        // change is one assignment), so a poisoned lock is still usable.
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves one session until the client closes its end.
pub(crate) async fn run<B, R, W>(config: Config, backend: Arc<B>, budget: Option<UserFiles>, reader: R, writer: W) -> io::Result<()>
where
    B: Backend,
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let (tx, rx) = mpsc::channel::<Outgoing>(config.max_in_flight + 8);
    let spare = Arc::new(SpareBuffers::default());
    let permits = Arc::new(Semaphore::new(config.max_in_flight));
    let idle = Idle { permits: permits.clone(), all: config.max_in_flight, spare: spare.clone() };
    let writer = tokio::spawn(write_responses(writer, rx, idle).in_current_span());

    // The first packet must be SSH_FXP_INIT; its version and extensions do not change our answer.
    let first = match read_packet(&mut reader).await? {
        Some(p) => p,
        None => return Ok(()),
    };
    if first.first() != Some(&fxp::INIT) {
        tracing::warn!("the first SFTP packet is not SSH_FXP_INIT; closing");
        return Err(io::Error::new(io::ErrorKind::InvalidData, "the first SFTP packet is not SSH_FXP_INIT"));
    }
    let _ = tx.send(Outgoing { seq: 0, bytes: protocol::version(), _permit: None }).await;
    let mut next_seq = 1u64;

    let shared = Arc::new(Shared { backend, handles: Mutex::new(Handles::new(config.max_handles, budget)), spare });
    let paths = Arc::new(RwLock::new(()));
    let tasks = TaskTracker::new();

    let result = loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = tx.closed() => break Ok(()),
        };
        let packet = tokio::select! {
            p = read_packet(&mut reader) => p,
            () = tx.closed() => break Ok(()),
        };
        let packet = match packet {
            Ok(Some(p)) => p,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let (id, request) = match protocol::parse(packet) {
            Ok(parsed) => parsed,
            Err((Some(id), _)) => {
                tracing::debug!(id, "malformed SFTP request");
                let reply = Reply { seq: next_seq, id, tx: tx.clone(), permit: Some(permit), sent: false };
                next_seq += 1;
                reply.send(protocol::status(id, StatusCode::BadMessage, "Bad message")).await;
                continue;
            }
            Err((None, _)) => break Err(io::Error::new(io::ErrorKind::InvalidData, "an SFTP packet too short for its id")),
        };
        let reply = Reply { seq: next_seq, id, tx: tx.clone(), permit: Some(permit), sent: false };
        next_seq += 1;
        tracing::trace!(id, request = request.name(), "SFTP request");

        // Decide the handle or path lock in arrival order, then run the request on its own.
        let handle_bytes = match &request {
            Request::Close { handle }
            | Request::Read { handle, .. }
            | Request::Write { handle, .. }
            | Request::Fstat { handle }
            | Request::Fsetstat { handle, .. }
            | Request::Readdir { handle }
            | Request::Fstatvfs { handle }
            | Request::Fsync { handle } => Some(handle.clone()),
            _ => None,
        };
        let mut reserved = None;
        let (handle, guard) = if let Some(bytes) = handle_bytes {
            let found = if matches!(request, Request::Close { .. }) {
                // Later requests on a closing handle must find it gone.
                shared.handles().remove(&bytes)
            } else {
                shared.handles().get(&bytes)
            };
            let Some(handle) = found else {
                reply.send(protocol::status(id, StatusCode::Failure, "Invalid handle")).await;
                continue;
            };
            let class = match request {
                Request::Read { .. } => LAST_READ,
                Request::Write { .. } if !handle.append => LAST_WRITE,
                _ => LAST_NONE,
            };
            let guard = if class == LAST_NONE {
                handle.last.store(LAST_NONE, Ordering::Relaxed);
                Guard::Exclusive(handle.order.clone().write_owned().await)
            } else {
                let previous = handle.last.swap(class, Ordering::Relaxed);
                if previous != LAST_NONE && previous != class {
                    // Let the reads (or writes) before this write (or read) finish first.
                    drop(handle.order.clone().write_owned().await);
                }
                Guard::Shared(handle.order.clone().read_owned().await)
            };
            (Some(handle), guard)
        } else {
            if matches!(request, Request::Open { .. } | Request::Opendir { .. }) {
                let slot = shared.handles().reserve();
                match slot {
                    Ok(slot) => reserved = Some(slot),
                    Err(message) => {
                        reply.send(protocol::status(id, StatusCode::Failure, message)).await;
                        continue;
                    }
                }
            }
            let guard = if changes_paths(&request) {
                Guard::Exclusive(paths.clone().write_owned().await)
            } else {
                Guard::Shared(paths.clone().read_owned().await)
            };
            (None, guard)
        };

        let shared = shared.clone();
        tasks.spawn(
            async move {
                let bytes = execute(&shared, id, request, handle, reserved).await;
                drop(guard);
                reply.send(bytes).await;
            }
            .in_current_span(),
        );
    };

    // Let running requests answer, then close what the client left open.
    tasks.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tasks.wait()).await.is_err() {
        tracing::warn!("SFTP requests still running {DRAIN_TIMEOUT:?} after the session ended");
    }
    let left_open = shared.handles().drain();
    for handle in left_open {
        if let Ok(Handle { open: Open::File(file), .. }) = Arc::try_unwrap(handle)
            && let Err(e) = shared.backend.close(file).await
        {
            tracing::debug!(error = %e, "closing a file the client left open failed");
        }
    }
    drop(tx);
    match writer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "SFTP responses could not all be written"),
        Err(e) => tracing::warn!(error = %e, "the SFTP writer task failed"),
    }
    if let Err(e) = &result {
        tracing::warn!(error = %e, "SFTP session ended with an error");
    }
    result
}

/// Whether a path request changes the file system (and so runs alone).
fn changes_paths(request: &Request) -> bool {
    match request {
        Request::Open { flags, .. } => flags.modifies(),
        Request::Setstat { .. }
        | Request::Lsetstat { .. }
        | Request::Remove { .. }
        | Request::Mkdir { .. }
        | Request::Rmdir { .. }
        | Request::Rename { .. }
        | Request::PosixRename { .. }
        | Request::Symlink { .. }
        | Request::Hardlink { .. } => true,
        _ => false,
    }
}

/// Reads one packet (without its length prefix); `None` at a clean end of input.
async fn read_packet<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Bytes>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_PACKET {
        tracing::warn!(len, max = MAX_PACKET, "SFTP packet too long; closing the session");
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("SFTP packet of {len} bytes exceeds {MAX_PACKET}")));
    }
    // Read into spare capacity: a 255 KiB `SSH_FXP_WRITE` is not zeroed first.
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let missing = len - buf.len();
        if reader.read_buf(&mut (&mut buf).limit(missing)).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Some(buf.freeze()))
}

/// What the writer needs to tell a busy session from an idle one.
struct Idle {
    permits: Arc<Semaphore>,
    all: usize,
    spare: Arc<SpareBuffers>,
}

/// Sends responses in request order, gathering small ones into one write.
/// Written buffers go back to the session's spares, which are dropped when
/// every response is written and no request is in flight.
async fn write_responses<W: AsyncWrite + Unpin>(mut writer: W, mut rx: mpsc::Receiver<Outgoing>, idle: Idle) -> io::Result<()> {
    let mut batch = BytesMut::with_capacity(64 * 1024);
    // Responses that finished before an earlier one; bounded by the in-flight permits.
    let mut early: BTreeMap<u64, Outgoing> = BTreeMap::new();
    let mut next = 0u64;
    while let Some(first) = rx.recv().await {
        let mut arrived = Some(first);
        while let Some(out) = arrived {
            early.insert(out.seq, out);
            while let Some(out) = early.remove(&next) {
                next += 1;
                if out.bytes.len() <= SMALL_RESPONSE {
                    batch.extend_from_slice(&out.bytes);
                } else {
                    if !batch.is_empty() {
                        writer.write_all(&batch).await?;
                        batch.clear();
                    }
                    writer.write_all(&out.bytes).await?;
                    let Outgoing { bytes, _permit: permit, .. } = out;
                    // The permit last: a buffer comes back before its request counts as done.
                    idle.spare.give_back(bytes);
                    drop(permit);
                    continue;
                }
                drop(out);
                if batch.len() >= 32 * 1024 {
                    writer.write_all(&batch).await?;
                    batch.clear();
                }
            }
            arrived = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            writer.write_all(&batch).await?;
            batch.clear();
        }
        writer.flush().await?;
        // Idle: nothing in flight but the permit the reader holds while it waits for the next request.
        if idle.permits.available_permits() + 1 >= idle.all && rx.is_empty() {
            idle.spare.clear();
        }
    }
    Ok(())
}

fn status_of(id: u32, result: io::Result<()>) -> Bytes {
    match result {
        Ok(()) => protocol::status(id, StatusCode::Ok, "Success"),
        Err(e) => error_status(id, &e),
    }
}

/// The status an I/O error becomes; its kind picks the code.
fn error_status(id: u32, e: &io::Error) -> Bytes {
    let (code, message) = match e.kind() {
        io::ErrorKind::NotFound => (StatusCode::NoSuchFile, "No such file".to_owned()),
        io::ErrorKind::PermissionDenied => (StatusCode::PermissionDenied, "Permission denied".to_owned()),
        io::ErrorKind::Unsupported => (StatusCode::OpUnsupported, "Operation unsupported".to_owned()),
        io::ErrorKind::UnexpectedEof => (StatusCode::Eof, "End of file".to_owned()),
        _ => {
            let text = e.to_string();
            // "File exists (os error 17)" reads better without the number.
            let text = match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
            (StatusCode::Failure, text)
        }
    };
    protocol::status(id, code, &message)
}

fn attrs_reply(id: u32, result: io::Result<FileAttributes>) -> Bytes {
    match result {
        Ok(a) => protocol::attrs(id, &a),
        Err(e) => error_status(id, &e),
    }
}

fn name_reply(id: u32, result: io::Result<PathBuf>) -> Bytes {
    match result {
        Ok(p) => protocol::single_name(id, &p, &FileAttributes::default()),
        Err(e) => error_status(id, &e),
    }
}

/// `~` and `~/rest` are the home directory, which is the root; `~user` is unknown.
fn expand_tilde(path: &Path) -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes == b"~" {
        return Ok(PathBuf::from("."));
    }
    if let Some(rest) = bytes.strip_prefix(b"~/") {
        let rest = std::ffi::OsStr::from_bytes(rest);
        return Ok(if rest.is_empty() { PathBuf::from(".") } else { PathBuf::from(rest) });
    }
    if bytes.starts_with(b"~") {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such user"));
    }
    Ok(path.to_path_buf())
}

async fn execute<B: Backend>(
    shared: &Shared<B>,
    id: u32,
    request: Request,
    handle: Option<Arc<Handle<B>>>,
    reserved: Option<(usize, Option<OpenFile>)>,
) -> Bytes {
    let backend = &*shared.backend;
    let file = |h: &Option<Arc<Handle<B>>>| -> Option<Arc<Handle<B>>> {
        h.as_ref().filter(|h| matches!(h.open, Open::File(_))).cloned()
    };
    macro_rules! with_file {
        ($f:ident => $body:expr) => {
            match file(&handle) {
                Some(h) => {
                    let Open::File($f) = &h.open else { unreachable!() };
                    $body
                }
                None => protocol::status(id, StatusCode::Failure, "Not a file handle"),
            }
        };
    }
    match request {
        Request::Open { path, flags, attrs } => {
            let (slot, counted) = reserved.expect("open reserves a slot");
            match backend.open(&path, flags, &attrs).await {
                Ok(f) => {
                    let open = Open::File(f);
                    let handle =
                        Arc::new(Handle { open, append: flags.append, order: Arc::default(), last: AtomicU8::new(LAST_NONE), _budget: counted });
                    let bytes = shared.handles().fill(slot, handle);
                    protocol::handle(id, &bytes)
                }
                Err(e) => {
                    shared.handles().release(slot);
                    error_status(id, &e)
                }
            }
        }
        Request::Opendir { path } => {
            let (slot, counted) = reserved.expect("opendir reserves a slot");
            match backend.opendir(&path).await {
                Ok(d) => {
                    let open = Open::Dir(tokio::sync::Mutex::new(Listing { dir: d, pending: VecDeque::new() }));
                    let handle = Arc::new(Handle { open, append: false, order: Arc::default(), last: AtomicU8::new(LAST_NONE), _budget: counted });
                    let bytes = shared.handles().fill(slot, handle);
                    protocol::handle(id, &bytes)
                }
                Err(e) => {
                    shared.handles().release(slot);
                    error_status(id, &e)
                }
            }
        }
        Request::Close { .. } => {
            let handle = handle.expect("close carries its handle");
            // Every earlier request on this handle has finished (the reader
            // took the handle's lock exclusively), so this is the last reference.
            match Arc::try_unwrap(handle) {
                Ok(Handle { open: Open::File(f), .. }) => status_of(id, backend.close(f).await),
                Ok(Handle { open: Open::Dir(_), .. }) => status_of(id, Ok(())),
                Err(_) => {
                    tracing::debug!("a closed handle is still referenced; it closes when released");
                    status_of(id, Ok(()))
                }
            }
        }
        Request::Read { offset, len, .. } => with_file!(f => {
            let len = (len as usize).min(MAX_IO);
            let mut buf = shared.spare.read_buffer(len);
            match backend.read(f, offset, &mut buf).await {
                Ok(()) if buf.is_empty() => protocol::status(id, StatusCode::Eof, "End of file"),
                Ok(()) => {
                    let (bytes, n) = buf.into_parts();
                    protocol::data(id, bytes, n)
                }
                Err(e) => error_status(id, &e),
            }
        }),
        Request::Write { offset, data, .. } => with_file!(f => status_of(id, backend.write(f, offset, data).await)),
        Request::Fstat { .. } => with_file!(f => attrs_reply(id, backend.fstat(f).await)),
        Request::Fsetstat { attrs, .. } => with_file!(f => status_of(id, backend.fsetstat(f, &attrs).await)),
        Request::Fsync { .. } => with_file!(f => status_of(id, backend.fsync(f).await)),
        Request::Fstatvfs { .. } => with_file!(f => match backend.fstatvfs(f).await {
            Ok(s) => protocol::statvfs(id, &s),
            Err(e) => error_status(id, &e),
        }),
        Request::Readdir { .. } => {
            let handle = handle.expect("readdir carries its handle");
            let Open::Dir(dir) = &handle.open else {
                return protocol::status(id, StatusCode::Failure, "Not a directory handle");
            };
            let mut listing = dir.lock().await;
            let listing = &mut *listing;
            // Each reply stays within MAX_NAMES_REPLY; what does not fit waits for the next READDIR.
            if let Some(reply) = protocol::names(id, &mut listing.pending) {
                return reply;
            }
            loop {
                match backend.readdir(&mut listing.dir).await {
                    Ok(entries) if entries.is_empty() => return protocol::status(id, StatusCode::Eof, "End of file"),
                    Ok(entries) => {
                        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                        listing.pending.extend(entries.into_iter().map(|mut e| {
                            if e.long_name.is_none() {
                                e.long_name = Some(default_long_name(&e, now));
                            }
                            e
                        }));
                        // `None` only when every entry of the batch was unsendable: read on.
                        if let Some(reply) = protocol::names(id, &mut listing.pending) {
                            return reply;
                        }
                    }
                    Err(e) => return error_status(id, &e),
                }
            }
        }
        Request::Lstat { path } => attrs_reply(id, backend.lstat(&path).await),
        Request::Stat { path } => attrs_reply(id, backend.stat(&path).await),
        Request::Setstat { path, attrs } => status_of(id, backend.setstat(&path, &attrs).await),
        Request::Lsetstat { path, attrs } => status_of(id, backend.lsetstat(&path, &attrs).await),
        Request::Remove { path } => status_of(id, backend.remove(&path).await),
        Request::Mkdir { path, attrs } => status_of(id, backend.mkdir(&path, &attrs).await),
        Request::Rmdir { path } => status_of(id, backend.rmdir(&path).await),
        Request::Realpath { path } => name_reply(id, backend.realpath(&path).await),
        Request::ExpandPath { path } => match expand_tilde(&path) {
            Ok(path) => name_reply(id, backend.realpath(&path).await),
            Err(e) => error_status(id, &e),
        },
        Request::Readlink { path } => name_reply(id, backend.readlink(&path).await),
        Request::Symlink { target, link } => status_of(id, backend.symlink(&target, &link).await),
        Request::Rename { from, to } => status_of(id, backend.rename(&from, &to, RenameMode::NoReplace).await),
        Request::PosixRename { from, to } => status_of(id, backend.rename(&from, &to, RenameMode::Replace).await),
        Request::Hardlink { from, to } => status_of(id, backend.hardlink(&from, &to).await),
        Request::Statvfs { path } => match backend.statvfs(&path).await {
            Ok(s) => protocol::statvfs(id, &s),
            Err(e) => error_status(id, &e),
        },
        Request::Limits => {
            let table = shared.handles();
            // The session's bound, or the user's share of the server's budget when smaller.
            let handles = table.budget.as_ref().map_or(table.max, |b| b.share().min(table.max)) as u64;
            drop(table);
            protocol::limits(id, MAX_PACKET as u64, MAX_IO as u64, MAX_IO as u64, handles)
        }
        Request::Unsupported { kind, extension } => {
            tracing::debug!(kind, ?extension, "unsupported SFTP request");
            protocol::status(id, StatusCode::OpUnsupported, "Operation unsupported")
        }
    }
}

fn default_long_name(entry: &DirEntry, now: u64) -> String {
    let (user, group) = entry.attrs.owner.map_or((String::from("0"), String::from("0")), |o| (o.uid.to_string(), o.gid.to_string()));
    long_name(&entry.name, &entry.attrs, 1, &user, &group, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_buffers_are_reused_bounded_and_never_shared() {
        let spare = SpareBuffers::default();
        let len = MAX_IO;
        // Written responses come back, up to the bound.
        let (fresh, n) = spare.read_buffer(len).into_parts();
        assert_eq!((fresh.len(), n), (protocol::DATA_HEADER, 0));
        for _ in 0..SPARE_BUFFERS + 3 {
            spare.give_back(Bytes::from(vec![7u8; protocol::DATA_HEADER + len]));
        }
        assert_eq!(spare.lock().len(), SPARE_BUFFERS);
        // A reused buffer has room for the whole read and nothing filled.
        let mut reused = spare.read_buffer(len);
        assert_eq!((reused.remaining(), reused.len()), (len, 0));
        assert_eq!(reused.put_slice(b"abc"), 3);
        assert_eq!(reused.filled(), b"abc");
        assert_eq!(spare.lock().len(), SPARE_BUFFERS - 1);
        // One too small for the read is dropped, not handed out.
        spare.clear();
        spare.give_back(Bytes::from(vec![0u8; SPARE_MIN]));
        assert_eq!(spare.read_buffer(SPARE_MIN).remaining(), SPARE_MIN);
        assert!(spare.lock().is_empty());
        // Small responses, and buffers something else still holds, are not kept.
        spare.give_back(Bytes::from(vec![0u8; SPARE_MIN - 1]));
        let held = Bytes::from(vec![0u8; 2 * SPARE_MIN]);
        spare.give_back(held.clone());
        assert!(spare.lock().is_empty());
        drop(held);
    }
}
