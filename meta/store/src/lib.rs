//! openraft wiring of the bucketfs metadata state machine.
//!
//! - [`TypeConfig`] and type aliases ([`types`]): what the metadata cluster's Raft is made of.
//! - [`BucketfsRuntime`]: openraft's tokio runtime with a per-thread RNG the simulator re-seeds
//!   ([`seed_thread_rng`]).
//! - The storage seam ([`LogBackend`], [`StateBackend`]): byte-level, synchronous traits that
//!   a storage engine implements; RocksDB lives in `bucketfs-meta-rocks`, memory in [`mem`].
//! - Generic-free adapters over that seam: [`MetaLogStore`] (openraft log storage) and
//!   [`MetaStateMachine`] (openraft state machine running `bucketfs_meta_state::apply` with one
//!   atomic write per applied batch), plus [`StateReader`] for queries.

pub mod backend;
mod log_store;
pub mod mem;
pub mod runtime;
mod state_machine;
pub mod testing;
pub mod types;

pub use backend::{LogBackend, Row, StateBackend};
pub use log_store::MetaLogStore;
pub use mem::{MemDisk, MemLogBackend, MemStateBackend, SyncMode};
pub use runtime::{BucketfsRng, BucketfsRuntime, seed_thread_rng};
pub use state_machine::{
    MetaSnapshotBuilder, MetaStateMachine, SYSTEM_LAST_APPLIED, SYSTEM_MEMBERSHIP, StateReader,
};
pub use types::*;
