//! An async NFS v4.1 client over one TCP connection, built on `bucketfs-nfs-wire`: for tools,
//! benchmarks and tests that must run where there is no kernel NFS client.
//!
//! [`Client::connect`] mounts like Linux (NULL, EXCHANGE_ID with SP4_NONE, CREATE_SESSION,
//! RECLAIM_COMPLETE, PUTROOTFH+GETFH+GETATTR). Calls from many tasks share the connection:
//! each takes a session slot, replies are matched by XID. A background SEQUENCE renews the
//! lease when the client is idle for a third of it. When the session or the connection is
//! lost the client reconnects to the same address, creates a new session for the same client
//! id (EXCHANGE_ID again only if the server forgot it) and retries the call, a bounded number
//! of times. Opens and locks belong to the client id, so stateids the caller holds stay valid
//! across such a recovery unless the server restarted.
//!
//! Every wait is bounded ([`ClientOptions`]' timeouts) and every reply is decoded by the wire
//! layer's total decoders: a malformed reply is [`Error::Malformed`], never a panic.

mod attrs;
mod client;
mod conn;
mod error;
mod file;
mod ops;
mod rpc;
mod slots;

pub use attrs::{Attributes, FileType, getattr_bitmap, mode_string};
pub use client::{Client, ClientOptions, ClientStats, FsInfo};
pub use error::{Error, Result, status_description, status_name};
pub use file::{FileReader, FileWriter, WriteSummary};
pub use ops::{
    AccessResult, CreateMode, DirEntry, FsStat, LockKind, NodeKind, OpenAccess, OpenDeny, OpenFile,
    OpenOptions, ReadResult, WriteResult, split_parent,
};

/// ACCESS4_* bits for [`Client::access`].
pub use bucketfs_nfs_wire::nfs::ops::{
    ACCESS4_DELETE, ACCESS4_EXECUTE, ACCESS4_EXTEND, ACCESS4_LOOKUP, ACCESS4_MODIFY, ACCESS4_READ,
};
/// Wire types that appear in this crate's API.
pub use bucketfs_nfs_wire::nfs::ops::{LockDenied, StableHow};
pub use bucketfs_nfs_wire::nfs::types::Verifier;
pub use bucketfs_nfs_wire::nfs::{
    Bitmap, FileHandle, NfsStatus, NfsTime, Opcode, SetAttrs, SetTime, StateId,
};
