//! The bucketfs gateway: the NFS v4.1 server of `bucketfs-nfs-server` on the metadata
//! cluster and an S3 bucket.
//!
//! - [`fs`]: [`GatewayFs`], the `FileSystem` — namespace operations as meta commands, with
//!   their S3 side (`export`) once meta has committed.
//! - `data`: file bytes — WRITE to the local block cache, flush to S3 then meta, READ pinned
//!   to the linked object version.
//! - [`nfs_state`]: client records, opens and locks in meta ([`MetaRegistry`], [`MetaOpens`]).
//! - [`gateway`]: [`Gateway`], a whole running gateway.
//!
//! DESIGN.md's invariants 1 (an acknowledged write is never lost), 2 (S3 first, meta
//! second) and 3 (close-to-open through change counters) are kept in `data`.

mod context;
mod data;
pub mod errors;
mod export;
pub mod fs;
pub mod gateway;
pub mod handle;
pub mod keys;
mod metered;
mod metrics;
pub mod nfs_state;

pub use context::DataConfig;
pub use fs::{FsParts, GatewayFs};
pub use gateway::{Gateway, GatewayConfig, GatewayError};
pub use metered::MeteredStore;
pub use nfs_state::{LeaseTerms, MetaOpens, MetaRegistry};
