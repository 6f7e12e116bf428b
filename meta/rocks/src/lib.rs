//! RocksDB storage engine of a bucketfs metadata node: [`RocksBackend`] implements both seams of
//! `bucketfs-meta-store` ([`bucketfs_meta_store::LogBackend`] and
//! [`bucketfs_meta_store::StateBackend`]) on one database per node, and refuses to open a data
//! directory that is not this node's intact store ([`OpenError`]). This is the only crate that
//! links RocksDB.

mod backend;
mod error;

pub use backend::{CF_LOG, CF_RAFT, FORMAT_VERSION, NodeIdentity, RocksBackend};
pub use error::OpenError;
