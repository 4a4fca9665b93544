//! The legacy SCP protocol (`scp -O`): the remote end of `scp -t` (the
//! client uploads) and `scp -f` (the client downloads), over any
//! [`sftp::Backend`](crate::sftp::Backend).
//!
//! OpenSSH's `scp` speaks SFTP since version 9.0; with `-O`, or when it is
//! older, it runs `scp -t PATH` or `scp -f PATH` on the server and talks the
//! old line protocol over the exec channel. Route that command to [`Scp`]:
//!
//! ```no_run
//! use ssh_framework::scp::Scp;
//! use ssh_framework::sftp::FsBackend;
//! use ssh_framework::{ChannelIo, Command, ExitStatus};
//!
//! struct Files {
//!     root: std::path::PathBuf,
//! }
//!
//! #[ssh_framework::server]
//! impl Files {
//!     #[exec("scp")]
//!     async fn scp(&self, command: Command, io: ChannelIo) -> std::io::Result<ExitStatus> {
//!         Ok(Scp::new(FsBackend::open(&self.root)?).serve(&command, io).await)
//!     }
//! }
//! ```
//!
//! Supported options are those OpenSSH's client sends: `-t`, `-f`, `-r`
//! (directories), `-p` (modes and times), `-d` (the target must be a
//! directory) and `-v`. Paths are split and unquoted like a shell would
//! (quotes and backslashes) but wildcards are not expanded.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::channel::{ChannelIo, Command, ExitStatus};
use crate::open_files::{self as budget, OpenFile, UserFiles};
use crate::sftp::{Backend, FileAttributes, OpenFlags, ReadBuffer, Times};

/// Bytes moved per read or write of file data.
const CHUNK: usize = 256 * 1024;
/// The longest control line accepted (`C0644 12345 name`).
const MAX_LINE: usize = 8 * 1024;
/// How deep `-r` may descend.
const MAX_DEPTH: usize = 256;

/// The remote end of the legacy SCP protocol over a [`Backend`].
pub struct Scp<B> {
    backend: Arc<B>,
}

impl<B> fmt::Debug for Scp<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp").finish_non_exhaustive()
    }
}

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    to: bool,
    from: bool,
    recursive: bool,
    preserve: bool,
    target_is_dir: bool,
    paths: Vec<PathBuf>,
}

impl<B: Backend> Scp<B> {
    /// An SCP endpoint over `backend`.
    pub fn new(backend: B) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// An SCP endpoint over a backend shared with other sessions.
    pub fn from_arc(backend: Arc<B>) -> Self {
        Scp { backend }
    }

    /// Runs the `scp -t ...` or `scp -f ...` of `command` on the channel.
    ///
    /// Returns exit status 0 when every file was copied, 1 otherwise (the
    /// client has then been told why, as the protocol does).
    ///
    /// Files and directories it opens count against the server's budget
    /// ([`ServerBuilder::max_open_files`](crate::ServerBuilder::max_open_files)):
    /// one beyond it is reported to the client as "Too many open files". A
    /// download (`-f -r`) holds one directory open per level it descends, and
    /// one batch of entries per level in memory, whatever the directories' sizes.
    pub async fn serve(self, command: &Command, mut io: ChannelIo) -> ExitStatus {
        let files = io.open_files.take();
        let (stdin, mut stdout, _stderr, _events) = io.split();
        let mut stdin = tokio::io::BufReader::new(stdin);
        let options = match parse_command(command.as_str()) {
            Ok(o) => o,
            Err(message) => {
                tracing::debug!(%command, message, "unusable scp command");
                let _ = stdout.write_all(format!("\x02scp: {message}\n").as_bytes()).await;
                return ExitStatus::FAILURE;
            }
        };
        let span = tracing::debug_span!("scp", mode = if options.to { "sink" } else { "source" });
        let run = async {
            if options.to {
                let mut sink = Sink { backend: &*self.backend, options: &options, files: files.as_ref(), errors: 0 };
                sink.run(&mut stdin, &mut stdout).await.map(|()| sink.errors)
            } else {
                let mut source = Source { backend: &*self.backend, options: &options, files: files.as_ref(), errors: 0 };
                source.run(&mut stdin, &mut stdout).await.map(|()| source.errors)
            }
        };
        let result = tracing::Instrument::instrument(run, span).await;
        let _ = stdout.flush().await;
        match result {
            Ok(0) => ExitStatus::SUCCESS,
            Ok(errors) => {
                tracing::debug!(errors, "scp finished with errors");
                ExitStatus::FAILURE
            }
            Err(e) => {
                tracing::debug!(error = %e, "scp ended early");
                ExitStatus::FAILURE
            }
        }
    }
}

/// Splits a command line like a POSIX shell: blanks separate words, single
/// quotes keep everything, double quotes keep all but `\"`, `\\`, `\$`, `` \` ``.
fn shell_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated quote"),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(c) => word.push(c),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn parse_command(line: &str) -> Result<Options, &'static str> {
    let words = shell_words(line)?;
    let mut words = words.into_iter();
    if words.next().as_deref() != Some("scp") {
        return Err("not an scp command");
    }
    let mut options = Options::default();
    let mut rest = Vec::new();
    let mut options_done = false;
    for word in words {
        if !options_done && word == "--" {
            options_done = true;
        } else if !options_done && word.len() > 1 && word.starts_with('-') {
            for flag in word[1..].chars() {
                match flag {
                    't' => options.to = true,
                    'f' => options.from = true,
                    'r' => options.recursive = true,
                    'p' => options.preserve = true,
                    'd' => options.target_is_dir = true,
                    'v' | 'q' | 'T' => {}
                    _ => return Err("unknown option"),
                }
            }
        } else {
            options_done = true;
            rest.push(PathBuf::from(word));
        }
    }
    if options.to == options.from {
        return Err("exactly one of -t and -f is needed");
    }
    if rest.is_empty() {
        return Err("no path given");
    }
    if options.to && rest.len() != 1 {
        return Err("ambiguous target");
    }
    options.paths = rest;
    Ok(options)
}

/// The directory-or-file decision the protocol makes from a `stat`.
async fn is_dir<B: Backend>(backend: &B, path: &Path) -> bool {
    backend.stat(path).await.is_ok_and(|a| a.is_dir())
}

/// Receives files: `scp -t TARGET`.
struct Sink<'a, B> {
    backend: &'a B,
    options: &'a Options,
    files: Option<&'a UserFiles>,
    errors: u32,
}

/// A parsed `C` or `D` line.
struct Entry {
    mode: u32,
    size: u64,
    name: PathBuf,
}

fn parse_entry(line: &[u8]) -> Result<Entry, &'static str> {
    let text = &line[1..];
    let mut parts = text.splitn(3, |&b| b == b' ');
    let mode = std::str::from_utf8(parts.next().ok_or("bad mode")?).map_err(|_| "bad mode")?;
    let mode = u32::from_str_radix(mode, 8).map_err(|_| "bad mode")?;
    let size = std::str::from_utf8(parts.next().ok_or("bad size")?).map_err(|_| "bad size")?;
    let size = size.parse::<u64>().map_err(|_| "bad size")?;
    let name = parts.next().ok_or("missing name")?;
    // One plain name: no separator, not `.` or `..` (the checks OpenSSH's client makes too).
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) || name == b".." || name == b"." {
        return Err("unexpected filename");
    }
    Ok(Entry { mode: mode & 0o7777, size, name: PathBuf::from(OsStr::from_bytes(name)) })
}

fn parse_times(line: &[u8]) -> Result<Times, &'static str> {
    let text = std::str::from_utf8(&line[1..]).map_err(|_| "bad times")?;
    let fields: Vec<&str> = text.split(' ').collect();
    let [mtime, _, atime, _] = fields.as_slice() else { return Err("bad times") };
    let mtime = mtime.parse::<u32>().map_err(|_| "bad mtime")?;
    let atime = atime.parse::<u32>().map_err(|_| "bad atime")?;
    Ok(Times { atime, mtime })
}

/// Reads one line up to `\n` (not included), at most [`MAX_LINE`] bytes; `None` at EOF.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = (&mut *r).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "scp control line too long or cut short"));
    }
    line.pop();
    Ok(Some(line))
}

async fn ack<W: AsyncWrite + Unpin>(w: &mut W) -> io::Result<()> {
    w.write_all(b"\0").await?;
    w.flush().await
}

/// Reports a failure the way `scp` does: `\x01scp: message\n`, and the transfer goes on.
async fn report<W: AsyncWrite + Unpin>(w: &mut W, message: &str) -> io::Result<()> {
    let message = message.replace('\n', " ");
    w.write_all(format!("\x01scp: {message}\n").as_bytes()).await?;
    w.flush().await
}

fn describe(path: &Path, e: &io::Error) -> String {
    let text = match e.kind() {
        io::ErrorKind::NotFound => "No such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "Permission denied".to_owned(),
        _ => {
            let t = e.to_string();
            t.find(" (os error").map_or(t.clone(), |i| t[..i].to_owned())
        }
    };
    format!("{}: {text}", path.display())
}

impl<B: Backend> Sink<'_, B> {
    async fn run<R, W>(&mut self, r: &mut R, w: &mut W) -> io::Result<()>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        let target = self.options.paths[0].clone();
        let target_is_dir = is_dir(self.backend, &target).await;
        if self.options.target_is_dir && !target_is_dir {
            w.write_all(format!("\x02scp: {}: Not a directory\n", target.display()).as_bytes()).await?;
            self.errors += 1;
            return Ok(());
        }
        ack(w).await?;
        // Directories entered with `D`, and the times to give each when it is left.
        let mut stack: Vec<(PathBuf, Option<Times>, u32)> = Vec::new();
        let mut times: Option<Times> = None;
        while let Some(line) = read_line(r).await? {
            let Some(&kind) = line.first() else {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "empty scp control line"));
            };
            match kind {
                1 | 2 => {
                    tracing::debug!(message = %String::from_utf8_lossy(&line[1..]), "scp client reported an error");
                    if kind == 2 {
                        return Ok(());
                    }
                }
                b'T' => match parse_times(&line) {
                    Ok(t) => {
                        times = Some(t);
                        ack(w).await?;
                    }
                    Err(m) => return self.fatal(w, m).await,
                },
                b'E' => {
                    let Some((dir, dir_times, mode)) = stack.pop() else {
                        return self.fatal(w, "unexpected E").await;
                    };
                    if self.options.preserve {
                        let attrs = FileAttributes { permissions: Some(mode), times: dir_times, ..Default::default() };
                        if let Err(e) = self.backend.setstat(&dir, &attrs).await {
                            self.errors += 1;
                            report(w, &describe(&dir, &e)).await?;
                            continue;
                        }
                    }
                    ack(w).await?;
                }
                b'C' | b'D' => {
                    let entry = match parse_entry(&line) {
                        Ok(e) => e,
                        Err(m) => return self.fatal(w, m).await,
                    };
                    let dest = match stack.last() {
                        Some((dir, ..)) => dir.join(&entry.name),
                        None if target_is_dir => target.join(&entry.name),
                        None => target.clone(),
                    };
                    let entry_times = times.take();
                    if kind == b'D' {
                        if !self.options.recursive {
                            return self.fatal(w, "received directory without -r").await;
                        }
                        if stack.len() >= MAX_DEPTH {
                            return self.fatal(w, "directories nested too deep").await;
                        }
                        if !is_dir(self.backend, &dest).await {
                            let attrs = FileAttributes { permissions: Some(entry.mode | 0o700), ..Default::default() };
                            if let Err(e) = self.backend.mkdir(&dest, &attrs).await {
                                // The client would send the directory's contents next; stop.
                                w.write_all(format!("\x02scp: {}\n", describe(&dest, &e)).as_bytes()).await?;
                                self.errors += 1;
                                return Ok(());
                            }
                        }
                        stack.push((dest, entry_times, entry.mode));
                        ack(w).await?;
                    } else {
                        self.receive_file(r, w, &dest, &entry, entry_times).await?;
                    }
                }
                _ => return self.fatal(w, "unexpected control line").await,
            }
        }
        Ok(())
    }

    async fn fatal<W: AsyncWrite + Unpin>(&mut self, w: &mut W, message: &str) -> io::Result<()> {
        self.errors += 1;
        w.write_all(format!("\x02scp: protocol error: {message}\n").as_bytes()).await?;
        w.flush().await?;
        Err(io::Error::new(io::ErrorKind::InvalidData, message.to_owned()))
    }

    async fn receive_file<R, W>(
        &mut self,
        r: &mut R,
        w: &mut W,
        dest: &Path,
        entry: &Entry,
        times: Option<Times>,
    ) -> io::Result<()>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        let flags = OpenFlags { write: true, create: true, truncate: true, ..Default::default() };
        let create = FileAttributes { permissions: Some(entry.mode), ..Default::default() };
        let mut failure = None;
        let (file, _counted) = match budget::open(self.files) {
            Ok(counted) => match self.backend.open(dest, flags, &create).await {
                Ok(f) => (Some(f), counted),
                Err(e) => {
                    failure = Some(e);
                    (None, None)
                }
            },
            Err(e) => {
                failure = Some(e);
                (None, None)
            }
        };
        // The data comes whether or not it can be stored: read it all.
        ack(w).await?;
        let mut offset = 0u64;
        while offset < entry.size {
            let want = (entry.size - offset).min(CHUNK as u64) as usize;
            let mut chunk = vec![0u8; want];
            r.read_exact(&mut chunk).await?;
            if let (Some(f), None) = (&file, &failure)
                && let Err(e) = self.backend.write(f, offset, Bytes::from(chunk)).await
            {
                failure = Some(e);
            }
            offset += want as u64;
        }
        // The client ends the data with a status byte of its own.
        let mut status = [0u8; 1];
        r.read_exact(&mut status).await?;
        if let Some(f) = file {
            if failure.is_none() && self.options.preserve {
                let attrs = FileAttributes { permissions: Some(entry.mode), times, ..Default::default() };
                if let Err(e) = self.backend.fsetstat(&f, &attrs).await {
                    failure = Some(e);
                }
            }
            if let Err(e) = self.backend.close(f).await
                && failure.is_none()
            {
                failure = Some(e);
            }
        }
        match failure {
            None => ack(w).await,
            Some(e) => {
                self.errors += 1;
                report(w, &describe(dest, &e)).await
            }
        }
    }
}

/// Sends files: `scp -f PATH...`.
struct Source<'a, B> {
    backend: &'a B,
    options: &'a Options,
    files: Option<&'a UserFiles>,
    errors: u32,
}

/// Reads the client's answer: `Ok(true)` for `\0`, `Ok(false)` for a warning.
async fn response<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<bool> {
    let mut byte = [0u8; 1];
    r.read_exact(&mut byte).await?;
    match byte[0] {
        0 => Ok(true),
        kind @ (1 | 2) => {
            let message = read_line(r).await?.unwrap_or_default();
            tracing::debug!(message = %String::from_utf8_lossy(&message), "scp client reported an error");
            if kind == 2 {
                return Err(io::Error::other("the scp client gave up"));
            }
            Ok(false)
        }
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected scp response")),
    }
}

fn base_name(path: &Path) -> Vec<u8> {
    path.file_name().map_or_else(|| b".".to_vec(), |n| n.as_bytes().to_vec())
}

impl<B: Backend> Source<'_, B> {
    async fn run<R, W>(&mut self, r: &mut R, w: &mut W) -> io::Result<()>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        // The receiving client starts by saying it is ready.
        if !response(r).await? {
            return Ok(());
        }
        for path in self.options.paths.clone() {
            self.send(r, w, &path, 0).await?;
        }
        Ok(())
    }

    fn send<'s, R, W>(
        &'s mut self,
        r: &'s mut R,
        w: &'s mut W,
        path: &'s Path,
        depth: usize,
    ) -> futures_util::future::BoxFuture<'s, io::Result<()>>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        Box::pin(async move {
            let attrs = match self.backend.stat(path).await {
                Ok(a) => a,
                Err(e) => {
                    self.errors += 1;
                    return report(w, &describe(path, &e)).await;
                }
            };
            let name = match path.file_name() {
                Some(_) => base_name(path),
                // `.`, `/` or `dir/..`: name it as the backend resolves it.
                None => base_name(&self.backend.realpath(path).await.unwrap_or_default()),
            };
            let mode = attrs.permissions.unwrap_or(0o644) & 0o7777;
            if attrs.is_dir() {
                if !self.options.recursive {
                    self.errors += 1;
                    return report(w, &format!("{}: not a regular file", path.display())).await;
                }
                if depth >= MAX_DEPTH {
                    self.errors += 1;
                    return report(w, &format!("{}: directories nested too deep", path.display())).await;
                }
                if !self.send_times(r, w, &attrs).await? {
                    return Ok(());
                }
                let mut line = format!("D{mode:04o} 0 ").into_bytes();
                line.extend_from_slice(&name);
                line.push(b'\n');
                w.write_all(&line).await?;
                w.flush().await?;
                if !response(r).await? {
                    return Ok(());
                }
                // Streamed batch by batch: memory does not grow with the directory.
                match self.opendir(path).await {
                    Ok((mut dir, _counted)) => loop {
                        let batch = match self.backend.readdir(&mut dir).await {
                            Ok(batch) if batch.is_empty() => break,
                            Ok(batch) => batch,
                            Err(e) => {
                                self.errors += 1;
                                report(w, &describe(path, &e)).await?;
                                break;
                            }
                        };
                        for entry in batch {
                            if entry.name != "." && entry.name != ".." {
                                self.send(r, w, &path.join(entry.name), depth + 1).await?;
                            }
                        }
                    },
                    Err(e) => {
                        self.errors += 1;
                        report(w, &describe(path, &e)).await?;
                    }
                }
                w.write_all(b"E\n").await?;
                w.flush().await?;
                response(r).await?;
                return Ok(());
            }
            if !attrs.is_file() {
                self.errors += 1;
                return report(w, &format!("{}: not a regular file", path.display())).await;
            }
            self.send_file(r, w, path, &name, mode, &attrs).await
        })
    }

    /// Opens a directory, counted in the budget while it is open.
    async fn opendir(&self, path: &Path) -> io::Result<(B::Dir, Option<OpenFile>)> {
        let counted = budget::open(self.files)?;
        Ok((self.backend.opendir(path).await?, counted))
    }

    async fn send_times<R, W>(&mut self, r: &mut R, w: &mut W, attrs: &FileAttributes) -> io::Result<bool>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        match (self.options.preserve, attrs.times) {
            (true, Some(t)) => {
                w.write_all(format!("T{} 0 {} 0\n", t.mtime, t.atime).as_bytes()).await?;
                w.flush().await?;
                response(r).await
            }
            _ => Ok(true),
        }
    }

    async fn send_file<R, W>(
        &mut self,
        r: &mut R,
        w: &mut W,
        path: &Path,
        name: &[u8],
        mode: u32,
        attrs: &FileAttributes,
    ) -> io::Result<()>
    where
        R: AsyncBufRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        let flags = OpenFlags { read: true, ..Default::default() };
        let counted = match budget::open(self.files) {
            Ok(counted) => counted,
            Err(e) => {
                self.errors += 1;
                return report(w, &describe(path, &e)).await;
            }
        };
        let file = match self.backend.open(path, flags, &FileAttributes::default()).await {
            Ok(f) => f,
            Err(e) => {
                self.errors += 1;
                return report(w, &describe(path, &e)).await;
            }
        };
        // The size is what fstat says now, so a file that grows is sent as it was.
        let size = match self.backend.fstat(&file).await {
            Ok(a) => a.size.unwrap_or(0),
            Err(_) => attrs.size.unwrap_or(0),
        };
        if !self.send_times(r, w, attrs).await? {
            return Ok(());
        }
        let mut line = format!("C{mode:04o} {size} ").into_bytes();
        line.extend_from_slice(name);
        line.push(b'\n');
        w.write_all(&line).await?;
        w.flush().await?;
        if !response(r).await? {
            return Ok(());
        }
        let mut offset = 0u64;
        let mut failure = None;
        while offset < size {
            let want = (size - offset).min(CHUNK as u64) as usize;
            let mut buf = ReadBuffer::with_capacity(want);
            if failure.is_none() {
                if let Err(e) = self.backend.read(&file, offset, &mut buf).await {
                    failure = Some(e);
                } else if buf.is_empty() {
                    failure = Some(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent"));
                }
            }
            // The size is promised: after a failure, pad with zeros and report it.
            let data = if failure.is_none() { buf.filled().to_vec() } else { vec![0u8; want] };
            w.write_all(&data).await?;
            offset += data.len() as u64;
        }
        let _ = self.backend.close(file).await;
        drop(counted);
        match failure {
            None => w.write_all(b"\0").await?,
            Some(e) => {
                self.errors += 1;
                report(w, &describe(path, &e)).await?;
            }
        }
        w.flush().await?;
        response(r).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Control lines and commands of any bytes: parsed or refused, never a panic.
        #[test]
        fn any_control_line_parses_or_is_refused(kind in prop_oneof![Just(b'C'), Just(b'D'), Just(b'T')], rest in proptest::collection::vec(any::<u8>(), 0..128)) {
            let line = [&[kind][..], &rest].concat();
            let _ = parse_entry(&line);
            let _ = parse_times(&line);
        }

        #[test]
        fn any_command_parses_or_is_refused(command in ".{0,128}") {
            let _ = parse_command(&command);
        }

        // What OpenSSH's client sends comes back as sent.
        #[test]
        fn entries_round_trip(mode in 0u32..0o10000, size in any::<u64>(), name in "[^/\\x00\n]{1,64}") {
            prop_assume!(name != "." && name != "..");
            let entry = parse_entry(format!("C{mode:04o} {size} {name}").as_bytes()).unwrap();
            prop_assert_eq!((entry.mode, entry.size, entry.name), (mode, size, PathBuf::from(name)));
        }
    }

    #[test]
    fn parses_what_openssh_sends() {
        let o = parse_command("scp -r -p -d -t -- /some dir").unwrap_err();
        assert_eq!(o, "ambiguous target");
        let o = parse_command("scp -r -p -d -t -- '/some dir'").unwrap();
        assert!(o.to && o.recursive && o.preserve && o.target_is_dir && !o.from);
        assert_eq!(o.paths, [PathBuf::from("/some dir")]);
        let o = parse_command(r#"scp -v -f a "b c" d\ e"#).unwrap();
        assert_eq!(o.paths, [PathBuf::from("a"), PathBuf::from("b c"), PathBuf::from("d e")]);
        assert!(parse_command("scp -x -t a").is_err());
        assert!(parse_command("scp -t").is_err());
        assert!(parse_command("scp a").is_err());
    }

    #[test]
    fn entries_must_be_plain_names() {
        let e = parse_entry(b"C0644 12 hello world").unwrap();
        assert_eq!((e.mode, e.size, e.name), (0o644, 12, PathBuf::from("hello world")));
        for bad in [&b"C0644 1 ../x"[..], b"C0644 1 a/b", b"D0755 0 ..", b"C0644 1 .", b"C0644 x a", b"C06z4 1 a"] {
            assert!(parse_entry(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_times(b"T1700000000 0 1700000001 0").unwrap(), Times { mtime: 1_700_000_000, atime: 1_700_000_001 });
    }

    /// A generated directory `big` of `entries` empty files, listed 100 at a
    /// time, that records the most entries listed but not yet opened.
    struct Generated {
        entries: usize,
        listed: std::sync::atomic::AtomicUsize,
        opened: std::sync::atomic::AtomicUsize,
        most_pending: std::sync::atomic::AtomicUsize,
    }

    impl Backend for Generated {
        type File = ();
        type Dir = usize;

        async fn open(&self, _: &Path, _: OpenFlags, _: &FileAttributes) -> io::Result<()> {
            use std::sync::atomic::Ordering::Relaxed;
            let opened = self.opened.fetch_add(1, Relaxed) + 1;
            self.most_pending.fetch_max(self.listed.load(Relaxed) - opened + 1, Relaxed);
            Ok(())
        }

        async fn read(&self, _: &(), _: u64, _: &mut ReadBuffer) -> io::Result<()> {
            Ok(())
        }

        async fn fstat(&self, _: &()) -> io::Result<FileAttributes> {
            Ok(FileAttributes::file(0, 0o644))
        }

        async fn stat(&self, path: &Path) -> io::Result<FileAttributes> {
            Ok(if path == Path::new("big") { FileAttributes::directory(0o755) } else { FileAttributes::file(0, 0o644) })
        }

        async fn opendir(&self, _: &Path) -> io::Result<usize> {
            Ok(0)
        }

        async fn readdir(&self, next: &mut usize) -> io::Result<Vec<crate::sftp::DirEntry>> {
            let end = (*next + 100).min(self.entries);
            let batch = (*next..end).map(|i| crate::sftp::DirEntry::new(format!("f{i}"), FileAttributes::file(0, 0o644))).collect();
            self.listed.fetch_add(end - *next, std::sync::atomic::Ordering::Relaxed);
            *next = end;
            Ok(batch)
        }
    }

    #[tokio::test]
    async fn a_download_holds_one_batch_of_entries_whatever_the_directory_size() {
        let backend = Generated { entries: 100_000, listed: Default::default(), opened: Default::default(), most_pending: Default::default() };
        let options = Options { from: true, recursive: true, paths: vec![PathBuf::from("big")], ..Options::default() };
        let mut source = Source { backend: &backend, options: &options, files: None, errors: 0 };
        // A client that accepts everything: every answer is `\0`.
        let mut client = tokio::io::BufReader::new(tokio::io::repeat(0));
        source.run(&mut client, &mut tokio::io::sink()).await.unwrap();
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!((source.errors, backend.opened.load(Relaxed)), (0, 100_000));
        assert!(backend.most_pending.load(Relaxed) <= 100, "{} entries held at once", backend.most_pending.load(Relaxed));
    }
}
