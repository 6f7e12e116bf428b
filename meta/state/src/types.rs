//! Plain values of the namespace. Persisted through [`crate::codec`]; a change to any
//! persisted type needs a new format version there, never an edit in place.

use serde::{Deserialize, Serialize};

/// A file system served by bucketfs: one bucket (or prefix of one) with its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FsId(pub u64);

/// An inode number. Never reused within a file system: ids come from a counter in the
/// state machine, so a stale file handle can always be recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InodeId(pub u64);

impl InodeId {
    /// Every file system's root directory.
    pub const ROOT: InodeId = InodeId(1);
}

/// Identifies one writer of proposals (a gateway process, a CLI run) for exactly-once
/// application. Chosen at random by the writer; 64 bits make collisions negligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

/// Wall-clock time with nanoseconds, as NFS `nfstime4` carries it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub const fn new(secs: i64, nanos: u32) -> Self {
        Timestamp { secs, nanos }
    }

    pub fn from_unix_nanos(ns: i128) -> Self {
        let secs = ns.div_euclid(1_000_000_000) as i64;
        let nanos = ns.rem_euclid(1_000_000_000) as u32;
        Timestamp { secs, nanos }
    }

    pub fn as_unix_nanos(&self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    // Special files (`mknod(2)`). They only exist in the namespace: no bytes, no object, and
    // for links, rename and remove they are non-directories like regular files.
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

impl FileType {
    /// A FIFO, socket or device node: the kinds `NewInode::Special` creates.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            FileType::Fifo | FileType::Socket | FileType::CharDev | FileType::BlockDev
        )
    }

    /// Whether the inode's `rdev` means something (NFS `specdata4` of `NF4CHR`/`NF4BLK`).
    pub fn is_device(self) -> bool {
        matches!(self, FileType::CharDev | FileType::BlockDev)
    }
}

/// Where a file's bytes live in S3. Written by the gateway after the upload succeeded
/// (S3 first, meta second), so meta never points at bytes S3 does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLink {
    pub key: String,
    pub version_id: Option<String>,
    pub etag: String,
}

/// Whether a directory's S3 prefix has been listed into the namespace yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportState {
    /// Created through the file system, or the bucket is empty there: nothing to import.
    #[default]
    Complete,
    /// The prefix exists in S3 and has not been listed yet.
    NotImported,
    /// Listed up to (and including) this key; the next listing continues after it.
    Partial { after_key: String },
}

/// Export state of a file's contents towards its S3 object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncState {
    /// The linked object holds the file's current contents (or the file is empty and new).
    #[default]
    Clean,
    /// Changed in the file system since this log index and not yet exported.
    Dirty { since_index: u64 },
    /// A sync worker holds the export job.
    Exporting { since_index: u64, worker: ClientId },
    /// The last export attempt failed; it will be retried.
    Failed { since_index: u64, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inode {
    pub id: InodeId,
    /// Log index of the entry that created the inode; part of the NFS file handle.
    pub generation: u64,
    pub kind: FileType,
    /// Permission bits only (`0o7777`); the type lives in `kind`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub nlink: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// The NFSv4 `change` attribute: the log index of the last entry that changed this
    /// inode, so it increases with every committed change and is equal on every replica.
    pub change: u64,
    /// For directories, the directory that holds it (the root points at itself). Files may
    /// have several parents through hard links, so they carry none.
    pub parent: Option<InodeId>,
    /// For symlinks, the target.
    pub symlink_target: Option<String>,
    /// For character and block devices, `(major, minor)`; `(0, 0)` for every other kind.
    pub rdev: (u32, u32),
    pub object: Option<ObjectLink>,
    pub import: ImportState,
    pub sync: SyncState,
}

/// The attributes a SETATTR may change. `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttrs {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetTime {
    /// The proposal's timestamp (NFS `SET_TO_SERVER_TIME4`).
    ServerTime,
    At(Timestamp),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsInfo {
    pub id: FsId,
    pub name: String,
    pub bucket: String,
    pub prefix: String,
    pub root: InodeId,
    pub created_index: u64,
}

/// One row of a READDIR reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    /// Position of the entry in its directory. Assigned once when the entry is linked and
    /// never reused, so a cookie stays valid while the directory changes: entries added
    /// later appear after it, removed entries just stop appearing.
    pub cookie: u64,
    pub inode: Inode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDirPage {
    pub entries: Vec<DirEntry>,
    /// No entry after the last one returned.
    pub eof: bool,
    /// The directory's change counter when the page was read (NFS `cookieverf`).
    pub dir_change: u64,
}
