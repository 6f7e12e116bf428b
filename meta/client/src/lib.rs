//! Client of the bucketfs metadata cluster, for gateways, the CLI and benchmarks.
//!
//! # Routing
//!
//! [`MetaClient`] is given any subset of the cluster's addresses. It caches the node that last
//! answered as leader and sends writes, linearizable reads and membership changes there. A
//! node that is not the leader answers `not-leader` with the leader's id and address when it
//! knows them ([`bucketfs_proto::WireError`]); the client follows that hint at once (adding the
//! address to its list if it was not given). Without a hint, or when a node is unreachable, it
//! tries the next address after a bounded exponential backoff with jitter drawn from the
//! [`bucketfs_runtime::Entropy`] seam. Every call has an overall deadline
//! ([`ClientOptions::call_timeout`]) and every attempt a shorter one
//! ([`ClientOptions::rpc_timeout`]), measured on the [`bucketfs_runtime::Clock`] seam.
//!
//! # Exactly-once writes
//!
//! The client has a random [`ClientId`](bucketfs_meta_state::types::ClientId) and numbers its
//! writes with an increasing `seq`. A write keeps its `seq` across every retry, so a command
//! that was committed by a leader that died before answering is recognised by the next leader
//! and answered from the saved reply instead of being applied again. With each write the
//! client sends `ack_below`, the smallest `seq` still in flight: the cluster may forget the
//! replies below it. Concurrent calls on one client are safe; each owns its `seq` until it
//! returns (or is dropped).

mod client;
mod error;
mod options;
mod seq;

pub use bucketfs_proto::{
    LeaderHint, Member, MembershipChange, MembershipStatus, NodeStatus, ReadConsistency, Role,
};
pub use client::MetaClient;
pub use error::ClientError;
pub use options::ClientOptions;
