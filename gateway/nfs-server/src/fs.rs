//! The seam between NFS operations and the namespace: [`FileSystem`].
//!
//! File handles are opaque bytes (at most 128, RFC 8881 §4.2.1) minted by the implementation;
//! the server never looks inside them. Errors are NFS statuses because every backend has to
//! pick one anyway and the mapping (ENOENT → NOENT, stale handle → STALE, …) belongs next to
//! the backend's own error types. The production implementation talks to the metadata cluster;
//! [`MemFs`] is a small in-memory tree for tests of the protocol layer.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use bucketfs_nfs_wire::nfs::types::Verifier;
use bucketfs_nfs_wire::nfs::{ChangeInfo, NfsFileType, NfsStatus, NfsTime};

/// Result of a file system call: the NFS status is the error.
pub type FsResult<T> = Result<T, NfsStatus>;

/// The POSIX attributes of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAttrs {
    pub fileid: u64,
    pub ftype: NfsFileType,
    /// Permission bits only (07777).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub space_used: u64,
    /// The NFS change attribute: bumps on every data or metadata change.
    pub change: u64,
    pub atime: NfsTime,
    pub mtime: NfsTime,
    pub ctime: NfsTime,
    /// Device numbers of character and block devices; (0, 0) otherwise.
    pub rawdev: (u32, u32),
}

/// One directory entry as listed by [`FileSystem::readdir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntryInfo {
    /// Position to resume after this entry; never 0, 1 or 2 (reserved by RFC 8881 §18.23.3).
    pub cookie: u64,
    pub name: String,
    pub fh: Vec<u8>,
    pub attrs: FsResult<FileAttrs>,
}

/// One page of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirPage {
    pub entries: Vec<DirEntryInfo>,
    /// No entries follow the last one returned.
    pub eof: bool,
}

/// What CREATE (directories, symlinks, device nodes, FIFOs, sockets) or OPEN (regular
/// files) makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewNode {
    Directory,
    Symlink(Vec<u8>),
    File,
    /// A FIFO, socket, character or block device: a name and attributes, no data.
    Special {
        ftype: NfsFileType,
        rawdev: (u32, u32),
    },
}

/// How a create treats a name that already exists (NFS `createmode4`). The decision is the
/// file system's, so that it is atomic with the create itself: two gateways racing on one
/// exclusive create must not both win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateHow {
    /// An existing regular file is opened as it is (a `File` create only).
    Unchecked,
    /// An existing name is `NfsStatus::Exist`.
    Guarded,
    /// An existing name is `Exist` unless it holds the file an earlier create with the same
    /// verifier made (a retransmitted exclusive create succeeds).
    Exclusive(Verifier),
}

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub fh: Vec<u8>,
    /// The directory's change attribute before and after.
    pub cinfo: ChangeInfo,
    /// The name already held this object (UNCHECKED reuse, or a retransmitted exclusive
    /// create); nothing was created.
    pub existed: bool,
}

/// Capacity as `statfs(2)` reports it (NFS `space_*` and `files_*` attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    pub space_total: u64,
    pub space_free: u64,
    pub space_avail: u64,
    pub files_total: u64,
    pub files_free: u64,
    pub files_avail: u64,
}

/// The stability a WRITE reached (NFS `stable_how4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    /// Held by this gateway only; a COMMIT makes it durable.
    Unstable,
    /// Durable: it survives the loss of this gateway.
    FileSync,
}

/// Attributes of a new object, already resolved by the server (credentials, umask by client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAttrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A time to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeUpdate {
    /// The server's current time.
    Now,
    Set(NfsTime),
}

/// SETATTR, with owners already mapped to ids. `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrUpdate {
    pub size: Option<u64>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<TimeUpdate>,
    pub mtime: Option<TimeUpdate>,
}

/// Namespace operations the NFS server needs. Handles come from [`FileSystem::root`] and
/// from lookups; an unknown or deleted handle is `NfsStatus::Stale`, a malformed one
/// `NfsStatus::BadHandle`.
pub trait FileSystem: Send + Sync + 'static {
    /// The handle of the export root.
    fn root(&self) -> Vec<u8>;
    /// The fsid reported for every object (one export = one file system).
    fn fsid(&self) -> (u64, u64);
    /// Capacity and usage of the file system.
    fn statfs(&self) -> impl Future<Output = FsResult<FsStats>> + Send;
    fn getattr(&self, fh: &[u8]) -> impl Future<Output = FsResult<FileAttrs>> + Send;
    /// The child `name` of directory `dir` (NOTDIR if `dir` is not a directory), with its
    /// attributes.
    fn lookup(
        &self,
        dir: &[u8],
        name: &str,
    ) -> impl Future<Output = FsResult<(Vec<u8>, FileAttrs)>> + Send;
    /// The parent of directory `dir`; NOENT at the root.
    fn lookupp(&self, dir: &[u8]) -> impl Future<Output = FsResult<Vec<u8>>> + Send;
    /// Up to `max` entries after `cookie` (0 = from the start), in a stable order. "." and ".."
    /// are not listed (NFSv4 has no such entries).
    fn readdir(
        &self,
        dir: &[u8],
        cookie: u64,
        max: usize,
    ) -> impl Future<Output = FsResult<DirPage>> + Send;
    fn readlink(&self, fh: &[u8]) -> impl Future<Output = FsResult<Vec<u8>>> + Send;
    /// Creates `name` in `dir`; an existing name is handled as `how` says.
    fn create(
        &self,
        dir: &[u8],
        name: &str,
        node: NewNode,
        attrs: NewAttrs,
        how: CreateHow,
    ) -> impl Future<Output = FsResult<Created>> + Send;
    /// Removes `name` from `dir` (NOTEMPTY for a non-empty directory).
    fn remove(&self, dir: &[u8], name: &str) -> impl Future<Output = FsResult<ChangeInfo>> + Send;
    /// Renames with POSIX semantics: an existing target of a compatible type is replaced.
    /// Returns the change info of the source and target directories.
    fn rename(
        &self,
        src_dir: &[u8],
        src: &str,
        dst_dir: &[u8],
        dst: &str,
    ) -> impl Future<Output = FsResult<(ChangeInfo, ChangeInfo)>> + Send;
    /// A new hard link `name` in `dir` to the non-directory `file`.
    fn link(
        &self,
        file: &[u8],
        dir: &[u8],
        name: &str,
    ) -> impl Future<Output = FsResult<ChangeInfo>> + Send;
    fn setattr(&self, fh: &[u8], update: AttrUpdate) -> impl Future<Output = FsResult<()>> + Send;
    /// Up to `count` bytes of regular file `fh` from `offset`, and whether they reach the end.
    fn read(
        &self,
        fh: &[u8],
        offset: u64,
        count: u32,
    ) -> impl Future<Output = FsResult<(Vec<u8>, bool)>> + Send;
    /// Writes `data` at `offset` of regular file `fh` (zero-filling any gap). With `stable`
    /// the bytes are durable before this returns; otherwise the file system may hold them
    /// until [`FileSystem::commit`] and reports which it did.
    fn write(
        &self,
        fh: &[u8],
        offset: u64,
        data: &[u8],
        stable: bool,
    ) -> impl Future<Output = FsResult<Stability>> + Send;
    /// Makes every write to `fh` acknowledged as unstable durable (NFS COMMIT).
    fn commit(&self, fh: &[u8]) -> impl Future<Output = FsResult<()>> + Send;
    /// An open of `fh` was closed. Where a file system exports files on close (bucketfs:
    /// the S3 object appears when the file is closed), this is where it happens.
    fn close(&self, fh: &[u8]) -> impl Future<Output = FsResult<()>> + Send;
}

#[derive(Debug, Clone)]
struct Node {
    attrs: FileAttrs,
    parent: u64,
    /// Directories: cookie → (name, child inode); cookies only grow, so a listing resumed
    /// after concurrent changes never repeats or skips a surviving entry.
    children: BTreeMap<u64, (String, u64)>,
    names: HashMap<String, u64>,
    next_cookie: u64,
    /// File contents, or a symlink's target.
    data: Vec<u8>,
}

#[derive(Debug)]
struct MemInner {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Verifiers of exclusive creates, by inode.
    verifiers: HashMap<u64, Verifier>,
}

/// An in-memory [`FileSystem`] for tests: directories, regular files and symlinks with
/// numeric owners. Handles are the 8-byte big-endian inode number.
#[derive(Debug)]
pub struct MemFs {
    inner: Mutex<MemInner>,
}

const ROOT_INO: u64 = 1;
/// The first cookie handed out: 0 means "start", 1 and 2 are reserved.
const FIRST_COOKIE: u64 = 3;

fn fh_of(ino: u64) -> Vec<u8> {
    ino.to_be_bytes().to_vec()
}

fn ino_of(fh: &[u8]) -> FsResult<u64> {
    let bytes: [u8; 8] = fh.try_into().map_err(|_| NfsStatus::BadHandle)?;
    Ok(u64::from_be_bytes(bytes))
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFs {
    /// An empty root directory, mode 0755, owned by 0:0.
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT_INO,
            new_node(
                new_attrs(ROOT_INO, NfsFileType::Directory, 0o755, 0, 0),
                ROOT_INO,
                Vec::new(),
            ),
        );
        Self {
            inner: Mutex::new(MemInner {
                nodes,
                next_ino: ROOT_INO + 1,
                verifiers: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an object under directory `dir`; returns its handle. Test set-up helper.
    pub fn add(
        &self,
        dir: &[u8],
        name: &str,
        ftype: NfsFileType,
        mode: u32,
        owner: (u32, u32),
        content: &[u8],
    ) -> FsResult<Vec<u8>> {
        let dir_ino = ino_of(dir)?;
        let mut inner = self.lock();
        let ino = inner.next_ino;
        inner.insert_entry(dir_ino, name, ino, ftype == NfsFileType::Directory)?;
        inner.next_ino += 1;
        let mut attrs = new_attrs(ino, ftype, mode, owner.0, owner.1);
        attrs.size = content.len() as u64;
        attrs.space_used = content.len() as u64;
        inner
            .nodes
            .insert(ino, new_node(attrs, dir_ino, content.to_vec()));
        Ok(fh_of(ino))
    }
}

fn new_attrs(fileid: u64, ftype: NfsFileType, mode: u32, uid: u32, gid: u32) -> FileAttrs {
    let t = NfsTime {
        seconds: 1_700_000_000,
        nseconds: 0,
    };
    FileAttrs {
        fileid,
        ftype,
        mode: mode & 0o7777,
        nlink: if ftype == NfsFileType::Directory {
            2
        } else {
            1
        },
        uid,
        gid,
        size: 0,
        space_used: 0,
        change: 1,
        atime: t.clone(),
        mtime: t.clone(),
        ctime: t,
        rawdev: (0, 0),
    }
}

impl MemInner {
    fn dir_mut(&mut self, ino: u64) -> FsResult<&mut Node> {
        let node = self.nodes.get_mut(&ino).ok_or(NfsStatus::Stale)?;
        if node.attrs.ftype != NfsFileType::Directory {
            return Err(NfsStatus::NotDir);
        }
        Ok(node)
    }

    /// Inserts `name → ino` into directory `dir`; returns the directory's change info.
    fn insert_entry(
        &mut self,
        dir: u64,
        name: &str,
        ino: u64,
        is_dir: bool,
    ) -> FsResult<ChangeInfo> {
        let d = self.dir_mut(dir)?;
        if d.names.contains_key(name) {
            return Err(NfsStatus::Exist);
        }
        let before = d.attrs.change;
        let cookie = d.next_cookie;
        d.next_cookie += 1;
        d.children.insert(cookie, (name.to_owned(), ino));
        d.names.insert(name.to_owned(), ino);
        d.attrs.change += 1;
        d.attrs.size += 1;
        if is_dir {
            d.attrs.nlink += 1;
        }
        Ok(ChangeInfo {
            atomic: true,
            before,
            after: d.attrs.change,
        })
    }

    /// Removes `name` from directory `dir`; returns the child and the change info.
    fn remove_entry(&mut self, dir: u64, name: &str) -> FsResult<(u64, ChangeInfo)> {
        let d = self.dir_mut(dir)?;
        let ino = d.names.remove(name).ok_or(NfsStatus::NoEnt)?;
        d.children.retain(|_, (n, _)| n != name);
        let before = d.attrs.change;
        d.attrs.change += 1;
        d.attrs.size = d.attrs.size.saturating_sub(1);
        let after = d.attrs.change;
        let child_is_dir = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.attrs.ftype == NfsFileType::Directory);
        if child_is_dir && let Some(d) = self.nodes.get_mut(&dir) {
            d.attrs.nlink -= 1;
        }
        Ok((
            ino,
            ChangeInfo {
                atomic: true,
                before,
                after,
            },
        ))
    }

    /// Drops one link of `ino`; the node goes when no link is left.
    fn unlink_node(&mut self, ino: u64) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        if node.attrs.ftype == NfsFileType::Directory || node.attrs.nlink <= 1 {
            self.nodes.remove(&ino);
            self.verifiers.remove(&ino);
        } else {
            node.attrs.nlink -= 1;
            node.attrs.change += 1;
        }
    }

    fn is_ancestor(&self, ancestor: u64, mut ino: u64) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.nodes.get(&ino) {
                Some(n) if n.parent != ino => ino = n.parent,
                _ => return false,
            }
        }
    }

    fn node(&self, fh: &[u8]) -> FsResult<&Node> {
        self.nodes.get(&ino_of(fh)?).ok_or(NfsStatus::Stale)
    }

    fn dir(&self, fh: &[u8]) -> FsResult<&Node> {
        let node = self.node(fh)?;
        if node.attrs.ftype != NfsFileType::Directory {
            return Err(NfsStatus::NotDir);
        }
        Ok(node)
    }
}

impl FileSystem for MemFs {
    fn root(&self) -> Vec<u8> {
        fh_of(ROOT_INO)
    }

    fn fsid(&self) -> (u64, u64) {
        (0x6275_636b, 1)
    }

    async fn statfs(&self) -> FsResult<FsStats> {
        // Memory has no fixed size; report what is used against a nominal 1 GiB.
        let inner = self.lock();
        let used: u64 = inner.nodes.values().map(|n| n.attrs.space_used).sum();
        let total = 1u64 << 30;
        let files = 1u64 << 20;
        let free = total.saturating_sub(used);
        let files_free = files.saturating_sub(inner.nodes.len() as u64);
        Ok(FsStats {
            space_total: total,
            space_free: free,
            space_avail: free,
            files_total: files,
            files_free,
            files_avail: files_free,
        })
    }

    async fn getattr(&self, fh: &[u8]) -> FsResult<FileAttrs> {
        Ok(self.lock().node(fh)?.attrs.clone())
    }

    async fn lookup(&self, dir: &[u8], name: &str) -> FsResult<(Vec<u8>, FileAttrs)> {
        let inner = self.lock();
        let ino = *inner.dir(dir)?.names.get(name).ok_or(NfsStatus::NoEnt)?;
        let attrs = inner
            .nodes
            .get(&ino)
            .map(|n| n.attrs.clone())
            .ok_or(NfsStatus::ServerFault)?;
        Ok((fh_of(ino), attrs))
    }

    async fn lookupp(&self, dir: &[u8]) -> FsResult<Vec<u8>> {
        let inner = self.lock();
        let node = inner.dir(dir)?;
        if node.attrs.fileid == ROOT_INO {
            return Err(NfsStatus::NoEnt);
        }
        Ok(fh_of(node.parent))
    }

    async fn readdir(&self, dir: &[u8], cookie: u64, max: usize) -> FsResult<DirPage> {
        let inner = self.lock();
        let node = inner.dir(dir)?;
        let mut rest = node.children.range(cookie.saturating_add(1)..);
        let entries = rest
            .by_ref()
            .take(max)
            .map(|(c, (name, ino))| DirEntryInfo {
                cookie: *c,
                name: name.clone(),
                fh: fh_of(*ino),
                attrs: inner
                    .nodes
                    .get(ino)
                    .map(|n| n.attrs.clone())
                    .ok_or(NfsStatus::Stale),
            })
            .collect();
        Ok(DirPage {
            entries,
            eof: rest.next().is_none(),
        })
    }

    async fn readlink(&self, fh: &[u8]) -> FsResult<Vec<u8>> {
        let inner = self.lock();
        let node = inner.node(fh)?;
        if node.attrs.ftype != NfsFileType::Link {
            return Err(NfsStatus::Inval);
        }
        Ok(node.data.clone())
    }

    async fn create(
        &self,
        dir: &[u8],
        name: &str,
        node: NewNode,
        attrs: NewAttrs,
        how: CreateHow,
    ) -> FsResult<Created> {
        let dir_ino = ino_of(dir)?;
        let mut inner = self.lock();
        let (ftype, target, rawdev) = match node {
            NewNode::Directory => (NfsFileType::Directory, Vec::new(), (0, 0)),
            NewNode::Symlink(t) => (NfsFileType::Link, t, (0, 0)),
            NewNode::File => (NfsFileType::Regular, Vec::new(), (0, 0)),
            NewNode::Special { ftype, rawdev } => (ftype, Vec::new(), rawdev),
        };
        if let Some(&existing) = inner.dir(dir)?.names.get(name) {
            let node = inner.nodes.get(&existing).ok_or(NfsStatus::ServerFault)?;
            let reuse = match how {
                CreateHow::Unchecked => {
                    ftype == NfsFileType::Regular && node.attrs.ftype == NfsFileType::Regular
                }
                CreateHow::Guarded => false,
                CreateHow::Exclusive(v) => inner.verifiers.get(&existing) == Some(&v),
            };
            if !reuse {
                return Err(NfsStatus::Exist);
            }
            let change = inner.dir(dir)?.attrs.change;
            return Ok(Created {
                fh: fh_of(existing),
                cinfo: ChangeInfo {
                    atomic: true,
                    before: change,
                    after: change,
                },
                existed: true,
            });
        }
        let ino = inner.next_ino;
        let cinfo = inner.insert_entry(dir_ino, name, ino, ftype == NfsFileType::Directory)?;
        inner.next_ino += 1;
        let mut a = new_attrs(ino, ftype, attrs.mode, attrs.uid, attrs.gid);
        a.size = target.len() as u64;
        a.rawdev = rawdev;
        inner.nodes.insert(ino, new_node(a, dir_ino, target));
        if let CreateHow::Exclusive(v) = how {
            inner.verifiers.insert(ino, v);
        }
        Ok(Created {
            fh: fh_of(ino),
            cinfo,
            existed: false,
        })
    }

    async fn remove(&self, dir: &[u8], name: &str) -> FsResult<ChangeInfo> {
        let dir_ino = ino_of(dir)?;
        let mut inner = self.lock();
        let child = *inner.dir(dir)?.names.get(name).ok_or(NfsStatus::NoEnt)?;
        if inner.nodes.get(&child).is_some_and(|n| !n.names.is_empty()) {
            return Err(NfsStatus::NotEmpty);
        }
        let (ino, cinfo) = inner.remove_entry(dir_ino, name)?;
        inner.unlink_node(ino);
        Ok(cinfo)
    }

    async fn rename(
        &self,
        src_dir: &[u8],
        src: &str,
        dst_dir: &[u8],
        dst: &str,
    ) -> FsResult<(ChangeInfo, ChangeInfo)> {
        let (sd, dd) = (ino_of(src_dir)?, ino_of(dst_dir)?);
        let mut inner = self.lock();
        inner.dir(dst_dir)?;
        let ino = *inner.dir(src_dir)?.names.get(src).ok_or(NfsStatus::NoEnt)?;
        let is_dir = inner
            .nodes
            .get(&ino)
            .is_some_and(|n| n.attrs.ftype == NfsFileType::Directory);
        if is_dir && inner.is_ancestor(ino, dd) {
            return Err(NfsStatus::Inval);
        }
        if let Some(&existing) = inner.dir(dst_dir)?.names.get(dst) {
            if existing == ino {
                // Same object under both names: POSIX says do nothing.
                let c = |d: u64| {
                    let change = inner.nodes.get(&d).map_or(0, |n| n.attrs.change);
                    ChangeInfo {
                        atomic: true,
                        before: change,
                        after: change,
                    }
                };
                return Ok((c(sd), c(dd)));
            }
            let target = inner.nodes.get(&existing).ok_or(NfsStatus::ServerFault)?;
            let target_is_dir = target.attrs.ftype == NfsFileType::Directory;
            if target_is_dir != is_dir {
                return Err(NfsStatus::Exist);
            }
            if target_is_dir && !target.names.is_empty() {
                return Err(NfsStatus::Exist);
            }
            inner.remove_entry(dd, dst)?;
            inner.unlink_node(existing);
        }
        let (_, src_cinfo) = inner.remove_entry(sd, src)?;
        let dst_cinfo = inner.insert_entry(dd, dst, ino, is_dir)?;
        if let Some(n) = inner.nodes.get_mut(&ino) {
            n.parent = dd;
            n.attrs.change += 1;
        }
        Ok((src_cinfo, dst_cinfo))
    }

    async fn link(&self, file: &[u8], dir: &[u8], name: &str) -> FsResult<ChangeInfo> {
        let (ino, dir_ino) = (ino_of(file)?, ino_of(dir)?);
        let mut inner = self.lock();
        if inner.node(file)?.attrs.ftype == NfsFileType::Directory {
            return Err(NfsStatus::IsDir);
        }
        let cinfo = inner.insert_entry(dir_ino, name, ino, false)?;
        if let Some(n) = inner.nodes.get_mut(&ino) {
            n.attrs.nlink += 1;
            n.attrs.change += 1;
        }
        Ok(cinfo)
    }

    async fn setattr(&self, fh: &[u8], update: AttrUpdate) -> FsResult<()> {
        let ino = ino_of(fh)?;
        let mut inner = self.lock();
        let node = inner.nodes.get_mut(&ino).ok_or(NfsStatus::Stale)?;
        if let Some(size) = update.size {
            match node.attrs.ftype {
                NfsFileType::Regular => {
                    node.data
                        .resize(usize::try_from(size).map_err(|_| NfsStatus::FBig)?, 0);
                    node.attrs.size = size;
                    node.attrs.space_used = size;
                }
                NfsFileType::Directory => return Err(NfsStatus::IsDir),
                _ => return Err(NfsStatus::Inval),
            }
        }
        if let Some(mode) = update.mode {
            node.attrs.mode = mode & 0o7777;
        }
        if let Some(uid) = update.uid {
            node.attrs.uid = uid;
        }
        if let Some(gid) = update.gid {
            node.attrs.gid = gid;
        }
        // MemFs has no clock: "now" leaves a time as it is.
        if let Some(TimeUpdate::Set(t)) = update.atime {
            node.attrs.atime = t;
        }
        if let Some(TimeUpdate::Set(t)) = update.mtime {
            node.attrs.mtime = t;
        }
        node.attrs.change += 1;
        Ok(())
    }

    async fn read(&self, fh: &[u8], offset: u64, count: u32) -> FsResult<(Vec<u8>, bool)> {
        let inner = self.lock();
        let node = inner.node(fh)?;
        match node.attrs.ftype {
            NfsFileType::Regular => {}
            NfsFileType::Directory => return Err(NfsStatus::IsDir),
            _ => return Err(NfsStatus::Inval),
        }
        let len = node.data.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
        let end = start.saturating_add(count as usize).min(len);
        Ok((node.data[start..end].to_vec(), end == len))
    }

    async fn write(
        &self,
        fh: &[u8],
        offset: u64,
        data: &[u8],
        _stable: bool,
    ) -> FsResult<Stability> {
        let ino = ino_of(fh)?;
        let mut inner = self.lock();
        let node = inner.nodes.get_mut(&ino).ok_or(NfsStatus::Stale)?;
        match node.attrs.ftype {
            NfsFileType::Regular => {}
            NfsFileType::Directory => return Err(NfsStatus::IsDir),
            _ => return Err(NfsStatus::Inval),
        }
        let start = usize::try_from(offset).map_err(|_| NfsStatus::FBig)?;
        let end = start.checked_add(data.len()).ok_or(NfsStatus::FBig)?;
        if end > node.data.len() {
            node.data.resize(end, 0);
        }
        node.data[start..end].copy_from_slice(data);
        node.attrs.size = node.data.len() as u64;
        node.attrs.space_used = node.attrs.size;
        node.attrs.change += 1;
        // Memory is as durable as this file system gets.
        Ok(Stability::FileSync)
    }

    async fn commit(&self, fh: &[u8]) -> FsResult<()> {
        self.lock().node(fh).map(|_| ())
    }

    async fn close(&self, fh: &[u8]) -> FsResult<()> {
        self.lock().node(fh).map(|_| ())
    }
}

fn new_node(attrs: FileAttrs, parent: u64, data: Vec<u8>) -> Node {
    Node {
        attrs,
        parent,
        children: BTreeMap::new(),
        names: HashMap::new(),
        next_cookie: FIRST_COOKIE,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lookup_readdir_and_cookies() {
        let fs = MemFs::new();
        let root = fs.root();
        let d = fs
            .add(&root, "d", NfsFileType::Directory, 0o700, (5, 6), b"")
            .unwrap();
        let f = fs
            .add(&d, "f", NfsFileType::Regular, 0o644, (5, 6), b"hello")
            .unwrap();
        fs.add(&d, "l", NfsFileType::Link, 0o777, (5, 6), b"f")
            .unwrap();
        assert_eq!(fs.lookup(&root, "d").await.map(|(fh, _)| fh), Ok(d.clone()));
        assert_eq!(fs.lookup(&d, "f").await.map(|(fh, _)| fh), Ok(f.clone()));
        assert_eq!(
            fs.lookup(&d, "x").await.map(|(fh, _)| fh),
            Err(NfsStatus::NoEnt)
        );
        assert_eq!(
            fs.lookup(&f, "x").await.map(|(fh, _)| fh),
            Err(NfsStatus::NotDir)
        );
        assert_eq!(fs.lookupp(&d).await, Ok(root.clone()));
        assert_eq!(fs.lookupp(&root).await, Err(NfsStatus::NoEnt));
        assert_eq!(fs.getattr(&f).await.unwrap().size, 5);
        assert_eq!(fs.getattr(&root).await.unwrap().nlink, 3);
        assert_eq!(
            fs.readlink(&fs.lookup(&d, "l").await.unwrap().0).await,
            Ok(b"f".to_vec())
        );
        assert_eq!(fs.readlink(&f).await, Err(NfsStatus::Inval));
        assert_eq!(fs.getattr(&[1, 2]).await, Err(NfsStatus::BadHandle));
        assert_eq!(fs.getattr(&fh_of(99)).await, Err(NfsStatus::Stale));

        let first = fs.readdir(&d, 0, 1).await.unwrap();
        assert_eq!(first.entries.len(), 1);
        assert_eq!(first.entries[0].name, "f");
        assert!(!first.eof);
        let second = fs.readdir(&d, first.entries[0].cookie, 10).await.unwrap();
        assert_eq!(second.entries.len(), 1);
        assert_eq!(second.entries[0].name, "l");
        assert!(second.eof);
        assert!(second.entries[0].cookie > 2);
    }

    fn attrs() -> NewAttrs {
        NewAttrs {
            mode: 0o755,
            uid: 1,
            gid: 2,
        }
    }

    #[tokio::test]
    async fn create_remove_rename_link() {
        let fs = MemFs::new();
        let root = fs.root();
        let created = fs
            .create(&root, "a", NewNode::Directory, attrs(), CreateHow::Guarded)
            .await
            .unwrap();
        let (a, c1) = (created.fh, created.cinfo);
        assert_eq!((c1.before + 1, c1.atomic), (c1.after, true));
        assert_eq!(
            fs.create(&root, "a", NewNode::Directory, attrs(), CreateHow::Guarded)
                .await,
            Err(NfsStatus::Exist)
        );
        let l = fs
            .create(
                &a,
                "l",
                NewNode::Symlink(b"../x".to_vec()),
                attrs(),
                CreateHow::Guarded,
            )
            .await
            .unwrap()
            .fh;
        assert_eq!(fs.readlink(&l).await, Ok(b"../x".to_vec()));
        assert_eq!(fs.remove(&root, "a").await, Err(NfsStatus::NotEmpty));
        // A directory cannot move under itself.
        assert_eq!(
            fs.rename(&root, "a", &a, "self").await,
            Err(NfsStatus::Inval)
        );
        let f = fs
            .add(&root, "f", NfsFileType::Regular, 0o644, (0, 0), b"abc")
            .unwrap();
        fs.link(&f, &a, "hard").await.unwrap();
        assert_eq!(fs.getattr(&f).await.unwrap().nlink, 2);
        assert_eq!(fs.link(&a, &root, "x").await, Err(NfsStatus::IsDir));
        // Replacing a file with a file; the replaced one loses a link.
        fs.rename(&root, "f", &a, "l").await.unwrap();
        assert_eq!(fs.lookup(&a, "l").await.map(|(fh, _)| fh), Ok(f.clone()));
        assert_eq!(fs.getattr(&l).await, Err(NfsStatus::Stale));
        assert_eq!(
            fs.lookup(&root, "f").await.map(|(fh, _)| fh),
            Err(NfsStatus::NoEnt)
        );
        // A file cannot replace a directory.
        fs.create(&root, "d", NewNode::Directory, attrs(), CreateHow::Guarded)
            .await
            .unwrap();
        assert_eq!(fs.rename(&a, "l", &root, "d").await, Err(NfsStatus::Exist));
        fs.remove(&a, "hard").await.unwrap();
        assert_eq!(fs.getattr(&f).await.unwrap().nlink, 1);
        fs.remove(&a, "l").await.unwrap();
        assert_eq!(fs.getattr(&f).await, Err(NfsStatus::Stale));
        let root_links = fs.getattr(&root).await.unwrap().nlink;
        fs.remove(&root, "a").await.unwrap();
        assert_eq!(fs.getattr(&root).await.unwrap().nlink, root_links - 1);
    }

    #[tokio::test]
    async fn setattr_size_mode_owner() {
        let fs = MemFs::new();
        let root = fs.root();
        let f = fs
            .add(&root, "f", NfsFileType::Regular, 0o644, (0, 0), b"abc")
            .unwrap();
        let before = fs.getattr(&f).await.unwrap().change;
        let update = AttrUpdate {
            size: Some(10),
            mode: Some(0o100600),
            uid: Some(7),
            gid: Some(8),
            ..Default::default()
        };
        fs.setattr(&f, update).await.unwrap();
        let a = fs.getattr(&f).await.unwrap();
        assert_eq!((a.size, a.mode, a.uid, a.gid), (10, 0o600, 7, 8));
        assert!(a.change > before);
        let dir_size = AttrUpdate {
            size: Some(0),
            ..Default::default()
        };
        assert_eq!(fs.setattr(&root, dir_size).await, Err(NfsStatus::IsDir));
    }
}

#[cfg(test)]
mod create_how_tests {
    use super::*;

    fn attrs() -> NewAttrs {
        NewAttrs {
            mode: 0o644,
            uid: 1,
            gid: 2,
        }
    }

    #[tokio::test]
    async fn unchecked_reuses_files_exclusive_matches_its_verifier() {
        let fs = MemFs::new();
        let root = fs.root();
        let first = fs
            .create(
                &root,
                "f",
                NewNode::File,
                attrs(),
                CreateHow::Exclusive(*b"verifier"),
            )
            .await
            .unwrap();
        assert!(!first.existed);
        let again = fs
            .create(
                &root,
                "f",
                NewNode::File,
                attrs(),
                CreateHow::Exclusive(*b"verifier"),
            )
            .await
            .unwrap();
        assert_eq!((again.fh.clone(), again.existed), (first.fh.clone(), true));
        assert_eq!(
            fs.create(
                &root,
                "f",
                NewNode::File,
                attrs(),
                CreateHow::Exclusive(*b"other!!!")
            )
            .await,
            Err(NfsStatus::Exist)
        );
        let reused = fs
            .create(&root, "f", NewNode::File, attrs(), CreateHow::Unchecked)
            .await
            .unwrap();
        assert!(reused.existed);
        fs.create(&root, "d", NewNode::Directory, attrs(), CreateHow::Guarded)
            .await
            .unwrap();
        assert_eq!(
            fs.create(&root, "d", NewNode::File, attrs(), CreateHow::Unchecked)
                .await,
            Err(NfsStatus::Exist)
        );
        let fifo = fs
            .create(
                &root,
                "p",
                NewNode::Special {
                    ftype: NfsFileType::Char,
                    rawdev: (4, 5),
                },
                attrs(),
                CreateHow::Guarded,
            )
            .await
            .unwrap();
        let a = fs.getattr(&fifo.fh).await.unwrap();
        assert_eq!((a.ftype, a.rawdev), (NfsFileType::Char, (4, 5)));
    }
}
