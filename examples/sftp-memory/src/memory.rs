//! A complete in-memory SFTP backend: directories and files in a map, gone
//! when the process ends. Everything a custom backend needs is here; swap the
//! map for an object store's client and it serves that instead.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ssh_framework::sftp::{
    Backend, Bytes, DirEntry, FileAttributes, OpenFlags, ReadBuffer, RenameMode, Times, normalize,
};

/// One node of the tree: a directory, or a file's bytes shared with its open handles.
#[derive(Debug, Clone)]
enum Node {
    Dir { mtime: u32 },
    File { data: Arc<RwLock<Vec<u8>>>, mtime: u32 },
}

/// Files and directories kept in memory, keyed by their normalised absolute path.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBackend {
    nodes: Arc<Mutex<BTreeMap<PathBuf, Node>>>,
}

/// An open file: its bytes, which stay valid even if the file is removed meanwhile.
#[derive(Debug)]
pub(crate) struct MemoryFile {
    data: Arc<RwLock<Vec<u8>>>,
}

/// An open listing: a snapshot taken at `opendir`, handed out in one batch.
#[derive(Debug)]
pub(crate) struct MemoryDir {
    entries: Vec<DirEntry>,
}

fn now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// The client's path, made absolute and normalised (there are no links to resolve).
fn key(path: &Path) -> io::Result<PathBuf> {
    normalize(path).ok_or_else(not_found)
}

fn attrs(node: &Node) -> FileAttributes {
    match node {
        Node::Dir { mtime } => FileAttributes::directory(0o755).with_mtime(*mtime),
        Node::File { data, mtime } => {
            let len = data.read().unwrap_or_else(|e| e.into_inner()).len() as u64;
            FileAttributes::file(len, 0o644).with_mtime(*mtime)
        }
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// An empty tree: just the root directory.
    pub(crate) fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(PathBuf::from("/"), Node::Dir { mtime: now() });
        MemoryBackend { nodes: Arc::new(Mutex::new(nodes)) }
    }

    /// Adds a file (its directory must exist), for content served from the start.
    pub(crate) fn with_file(self, path: &str, contents: &[u8]) -> Self {
        let node = Node::File { data: Arc::new(RwLock::new(contents.to_vec())), mtime: now() };
        self.lock().insert(PathBuf::from(path), node);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn parent_is_dir(nodes: &BTreeMap<PathBuf, Node>, path: &Path) -> io::Result<()> {
        match path.parent().and_then(|p| nodes.get(p)) {
            Some(Node::Dir { .. }) => Ok(()),
            _ => Err(not_found()),
        }
    }
}

impl Backend for MemoryBackend {
    type File = MemoryFile;
    type Dir = MemoryDir;

    async fn open(&self, path: &Path, flags: OpenFlags, _attrs: &FileAttributes) -> io::Result<MemoryFile> {
        let path = key(path)?;
        let mut nodes = self.lock();
        match nodes.get(&path) {
            Some(Node::File { .. }) if flags.create && flags.exclusive => Err(io::ErrorKind::AlreadyExists.into()),
            Some(Node::File { data, .. }) => {
                if flags.truncate {
                    data.write().unwrap_or_else(|e| e.into_inner()).clear();
                }
                Ok(MemoryFile { data: data.clone() })
            }
            Some(Node::Dir { .. }) => Err(io::Error::other("is a directory")),
            None if flags.create => {
                Self::parent_is_dir(&nodes, &path)?;
                let data = Arc::new(RwLock::new(Vec::new()));
                nodes.insert(path, Node::File { data: data.clone(), mtime: now() });
                Ok(MemoryFile { data })
            }
            None => Err(not_found()),
        }
    }

    // ANCHOR: read_write
    async fn read(&self, file: &MemoryFile, offset: u64, buf: &mut ReadBuffer) -> io::Result<()> {
        let data = file.data.read().unwrap_or_else(|e| e.into_inner());
        if let Some(rest) = data.get(offset as usize..) {
            buf.put_slice(rest);
        }
        Ok(())
    }

    async fn write(&self, file: &MemoryFile, offset: u64, bytes: Bytes) -> io::Result<()> {
        let mut data = file.data.write().unwrap_or_else(|e| e.into_inner());
        let start = offset as usize;
        let end = start.checked_add(bytes.len()).ok_or_else(|| io::Error::other("offset too large"))?;
        if end > data.len() {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(&bytes);
        Ok(())
    }
    // ANCHOR_END: read_write

    async fn fstat(&self, file: &MemoryFile) -> io::Result<FileAttributes> {
        let len = file.data.read().unwrap_or_else(|e| e.into_inner()).len() as u64;
        Ok(FileAttributes::file(len, 0o644))
    }

    async fn fsetstat(&self, file: &MemoryFile, attrs: &FileAttributes) -> io::Result<()> {
        if let Some(size) = attrs.size {
            file.data.write().unwrap_or_else(|e| e.into_inner()).resize(size as usize, 0);
        }
        Ok(())
    }

    async fn opendir(&self, path: &Path) -> io::Result<MemoryDir> {
        let dir = key(path)?;
        let nodes = self.lock();
        match nodes.get(&dir) {
            Some(Node::Dir { .. }) => {}
            Some(_) => return Err(io::Error::other("not a directory")),
            None => return Err(not_found()),
        }
        let entries = nodes
            .iter()
            .filter(|(p, _)| p.parent() == Some(&dir))
            .map(|(p, node)| DirEntry::new(p.file_name().map(OsString::from).unwrap_or_default(), attrs(node)))
            .collect();
        Ok(MemoryDir { entries })
    }

    async fn readdir(&self, dir: &mut MemoryDir) -> io::Result<Vec<DirEntry>> {
        Ok(std::mem::take(&mut dir.entries))
    }

    async fn stat(&self, path: &Path) -> io::Result<FileAttributes> {
        self.lock().get(&key(path)?).map(attrs).ok_or_else(not_found)
    }

    async fn setstat(&self, path: &Path, new: &FileAttributes) -> io::Result<()> {
        let mut nodes = self.lock();
        let node = nodes.get_mut(&key(path)?).ok_or_else(not_found)?;
        if let (Some(Times { mtime, .. }), Node::File { mtime: m, .. } | Node::Dir { mtime: m }) = (new.times, node) {
            *m = mtime;
        }
        Ok(())
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let path = key(path)?;
        let mut nodes = self.lock();
        match nodes.get(&path) {
            Some(Node::File { .. }) => {
                nodes.remove(&path);
                Ok(())
            }
            Some(Node::Dir { .. }) => Err(io::Error::other("is a directory")),
            None => Err(not_found()),
        }
    }

    async fn mkdir(&self, path: &Path, _attrs: &FileAttributes) -> io::Result<()> {
        let path = key(path)?;
        let mut nodes = self.lock();
        if nodes.contains_key(&path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        Self::parent_is_dir(&nodes, &path)?;
        nodes.insert(path, Node::Dir { mtime: now() });
        Ok(())
    }

    async fn rmdir(&self, path: &Path) -> io::Result<()> {
        let path = key(path)?;
        let mut nodes = self.lock();
        if !matches!(nodes.get(&path), Some(Node::Dir { .. })) || path == Path::new("/") {
            return Err(io::Error::other("not a removable directory"));
        }
        if nodes.keys().any(|p| p.parent() == Some(&path)) {
            return Err(io::Error::other("directory not empty"));
        }
        nodes.remove(&path);
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path, mode: RenameMode) -> io::Result<()> {
        let (from, to) = (key(from)?, key(to)?);
        let mut nodes = self.lock();
        if !nodes.contains_key(&from) {
            return Err(not_found());
        }
        if mode == RenameMode::NoReplace && nodes.contains_key(&to) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        if to.starts_with(&from) {
            return Err(io::Error::other("cannot move a directory into itself"));
        }
        Self::parent_is_dir(&nodes, &to)?;
        // Move the node and, for a directory, everything beneath it.
        let moved: Vec<PathBuf> = nodes.keys().filter(|p| p.starts_with(&from)).cloned().collect();
        for old in moved {
            let node = nodes.remove(&old).expect("listed above");
            let rest = old.strip_prefix(&from).expect("listed under from");
            let new = if rest.as_os_str().is_empty() { to.clone() } else { to.join(rest) };
            nodes.insert(new, node);
        }
        Ok(())
    }
}
