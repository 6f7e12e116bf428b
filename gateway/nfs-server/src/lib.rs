//! The NFS v4.1 server core of the bucketfs gateway.
//!
//! - [`conn`]: TCP accept loop and per-connection record handling ([`serve`]).
//! - [`server`]: COMPOUND execution and the operations ([`NfsServer`]).
//! - [`state`]: client records behind [`ClientRegistry`]; sessions and slots in
//!   [`SessionTable`].
//! - [`open`]: open and lock stateids, share reservations, byte-range locks behind
//!   [`OpenStore`].
//! - [`fs`]: the namespace seam [`FileSystem`] and the in-memory [`MemFs`] for tests.
//!
//! Wire formats come from `bucketfs-nfs-wire`; this crate owns I/O and state.

pub mod conn;
pub mod fs;
mod observe;
pub mod open;
pub mod server;
pub mod state;

pub use conn::serve;
pub use fs::{
    AttrUpdate, CreateHow, Created, DirEntryInfo, DirPage, FileAttrs, FileSystem, FsResult,
    FsStats, MemFs, NewAttrs, NewNode, Stability, TimeUpdate,
};
pub use open::{MemOpenStore, OpenStore};
pub use server::{NfsServer, ServerConfig, supported_attrs};
pub use state::{
    ClientRegistry, ExchangeOutcome, MemClientRegistry, PreviousRecord, Registered, RequestShape,
    SequenceOutcome, SessionLimits, SessionTable,
};
