//! Errors, shaped by what the caller can do about them.

use serde::{Deserialize, Serialize};

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
    /// A proposal whose sequence number the client already declared finished; applying it
    /// again could apply it twice.
    #[error("request sequence {seq} is older than the client's window (starts at {window_start})")]
    StaleRequest { seq: u64, window_start: u64 },
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
