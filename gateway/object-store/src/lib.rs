//! The S3 seam of the bucketfs gateway.
//!
//! The gateway stores each file as one S3 object in a versioned bucket and records the version
//! it wrote in the metadata cluster; reads are pinned to that version. Everything it needs from
//! S3 is the [`ObjectStore`] trait, bound to one bucket. Three implementations:
//!
//! - [`MemObjectStore`]: in-memory, deterministic, with real S3 semantics (versions, delete
//!   markers, MD5 and multipart ETags, conditional writes, paginated listings with a delimiter),
//!   for unit tests and the simulator.
//! - [`FaultyObjectStore`]: wraps any store and injects seeded faults: errors before the call,
//!   acknowledgements lost after it applied, 503 SlowDown, latency.
//! - `S3ObjectStore` (feature `s3`, on by default): aws-sdk-s3, with error mapping and a
//!   timeout on every call. Crates that must not link the SDK (the simulator, core logic)
//!   depend on this crate with `default-features = false`.
//!
//! All three pass one conformance suite (`tests/conformance.rs`); the S3 one runs against a
//! real moto server started by [`moto::MotoServer`].

pub mod error;
pub mod faulty;
pub mod mem;
pub mod metadata;
pub mod store;
pub mod types;

#[cfg(feature = "s3")]
pub mod moto;
#[cfg(feature = "s3")]
pub mod s3;

pub use error::{ObjectStoreError, Result};
pub use faulty::{Fault, FaultConfig, FaultStats, FaultyObjectStore, OpKind, SleepFn, tokio_sleep};
pub use mem::{MemConfig, MemObjectStore};
pub use metadata::UserMetadata;
#[cfg(feature = "s3")]
pub use s3::{S3Config, S3Credentials, S3ObjectStore};
pub use store::ObjectStore;
pub use types::*;
