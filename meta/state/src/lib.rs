//! The bucketfs namespace as a deterministic state machine.
//!
//! Everything the metadata cluster agrees on through Raft is changed here and only here:
//! [`apply`] takes a committed [`Proposal`] and a transaction over an ordered key-value view
//! ([`kv::KvRead`]) and returns the reply. It reads no clock (the proposer stamps the time
//! into the proposal), draws no randomness and does no I/O, so every replica that applies
//! the same log reaches the same bytes, and the simulator can run it unchanged.
//!
//! Storage engines only have to provide an ordered map per [`kv::Table`] and apply a
//! [`kv::WriteSet`] atomically: RocksDB column families in `bucketfs-meta-rocks`, a
//! `BTreeMap` in `bucketfs-meta-store`.

pub mod codec;
pub mod command;
pub mod error;
mod keys;
pub mod kv;
pub mod name;
pub mod nfs_state;
pub mod state;
pub mod types;

pub use command::{Command, Proposal, Query, QueryReply, Reply};
pub use error::{MetaError, NsError};
pub use state::{apply, query};
