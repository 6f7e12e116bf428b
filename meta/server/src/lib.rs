//! One node of the bucketfs metadata cluster.
//!
//! * [`MetaNode`] ([`node`]): openraft's `Raft` over the bucketfs storage adapters, with a
//!   transport-free API (write, read, membership, status). The simulator drives it directly.
//! * [`GrpcNetwork`] ([`network`]): openraft's network to peers over tonic.
//! * [`RaftServiceImpl`], [`MetaServiceImpl`] ([`service`]) and [`serve`]: the gRPC face of
//!   a node; peers and clients share its one address.
//! * [`NodeConfig`] ([`config`]): validated settings.
//! * Metrics (request counts and latencies, committed writes, Raft gauges) go through the
//!   `metrics` facade under the names of `bucketfs_telemetry::metrics::names`; a binary
//!   that installs a recorder exports them, anything else pays nothing.
//!
//! Wiring a node (what `bucketfs meta serve` does):
//!
//! ```ignore
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:7400").await?;
//! let config = NodeConfig::new(1, "10.0.0.1:7400");
//! let (log, sm) = /* bucketfs-meta-rocks or bucketfs_meta_store::MemDisk::new().open() */;
//! let node = MetaNode::start(config, log, sm, GrpcNetwork::new(1), Arc::new(SystemClock)).await?;
//! serve(node.clone(), listener, ctrl_c()).await?;
//! node.shutdown().await;
//! ```

pub mod config;
pub mod error;
pub mod network;
pub mod node;
mod observe;
mod serve;
pub mod service;

pub use config::{ConfigError, NodeConfig};
pub use error::{AdminError, NodeError, ReadError, WriteError};
pub use network::{GrpcNetwork, GrpcPeer};
pub use node::MetaNode;
pub use serve::{ServeError, serve};
pub use service::{MetaServiceImpl, RaftServiceImpl};
