//! Errors, shaped by what the caller can do about them.

use serde::{Deserialize, Serialize};

use crate::nfs_state::LockKind;

/// A refusal by the namespace rules. These are results, not failures: they are committed,
/// replicated and replayed to a retried request exactly like a success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum NsError {
    #[error("no such file system: {0}")]
    NoSuchFs(String),
    #[error("a file system named {0} already exists")]
    FsExists(String),
    #[error("no such file or directory")]
    NotFound,
    /// The inode a handle names no longer exists (NFS4ERR_STALE).
    #[error("stale file handle")]
    Stale,
    #[error("file exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("rename or link across file systems")]
    CrossFs,
    #[error("too many links")]
    TooManyLinks,
    #[error("not a symbolic link")]
    NotSymlink,
    /// A SETATTR guard did not match (NFS4ERR_NOT_SAME).
    #[error("attribute guard did not match")]
    GuardMismatch,
    #[error("no such NFS client: {0}")]
    NoSuchClient(u64),
    /// An OPEN conflicts with another open-owner's share reservation (NFS4ERR_SHARE_DENIED).
    #[error("share reservation conflict")]
    ShareDenied,
    /// CLOSE (or freeing a stateid) while the open's lock-owners still hold byte ranges
    /// (NFS4ERR_LOCKS_HELD).
    #[error("locks held")]
    LocksHeld,
    /// A byte-range lock conflicts with another lock-owner's (NFS4ERR_DENIED); describes the
    /// first conflicting range, as `LOCK4denied` does. `length == u64::MAX` means to EOF.
    #[error("lock denied: held by another lock-owner of client {client}")]
    LockDenied {
        client: u64,
        owner: Vec<u8>,
        kind: LockKind,
        offset: u64,
        length: u64,
    },
    /// A lock kind the open does not allow: a write lock through an open without write
    /// access, or a read lock through one without read access (NFS4ERR_OPENMODE).
    #[error("lock kind not allowed by the open's access")]
    OpenMode,
    /// The stateid does not name an open or lock of this client (NFS4ERR_BAD_STATEID), or
    /// its seqid is newer than the state's.
    #[error("bad stateid {0}")]
    BadStateId(u64),
    /// The stateid's seqid is older than the state's current one (NFS4ERR_OLD_STATEID).
    #[error("old stateid {0}")]
    OldStateId(u64),
    /// A proposal whose sequence number the client already declared finished; applying it
    /// again could apply it twice.
    #[error("request sequence {seq} is older than the client's window (starts at {window_start})")]
    StaleRequest { seq: u64, window_start: u64 },
    // Appended: refusals are stored as replies (exactly-once rows) by variant position.
    /// A guarded `CommitObject` found the inode's change counter moved past the one the
    /// caller read: someone else changed the file in between, so the caller's whole-object
    /// read-modify-write must start over from `current`.
    #[error("the file changed since it was read (change counter is now {current})")]
    Changed { current: u64 },
}

/// Failures of the machinery under the rules (storage, decoding). Not replicated: a node
/// that hits one cannot apply the log and must stop rather than diverge.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("corrupt record in table {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
}
