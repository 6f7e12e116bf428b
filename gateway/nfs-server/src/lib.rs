//! The NFS v4.1 server core of the bucketfs gateway.
//!
//! - [`conn`]: TCP accept loop and per-connection record handling ([`serve`]).
//! - [`server`]: COMPOUND execution and the operations ([`NfsServer`]).
//! - [`state`]: client, session and slot state behind [`ClientStore`].
//! - [`open`]: open and lock stateids, share reservations, byte-range locks behind
//!   [`OpenStore`].
//! - [`fs`]: the namespace seam [`FileSystem`] and the in-memory [`MemFs`] for tests.
//!
//! Wire formats come from `bucketfs-nfs-wire`; this crate owns I/O and state.

pub mod conn;
pub mod fs;
pub mod open;
pub mod server;
pub mod state;

pub use conn::serve;
pub use fs::{
    AttrUpdate, DirEntryInfo, DirPage, FileAttrs, FileSystem, FsResult, MemFs, NewAttrs, NewNode,
    TimeUpdate,
};
pub use open::{MemOpenStore, OpenStore};
pub use server::{NfsServer, ServerConfig, supported_attrs};
pub use state::{
    ClientStore, ExchangeOutcome, MemClientStore, RequestShape, SequenceOutcome, SessionLimits,
};
