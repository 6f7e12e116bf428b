//! The wire contract of bucketfs: `proto/bucketfs/v1/{raft,meta}.proto` compiled with protox
//! and tonic-prost-build, plus everything needed to keep prost types at the edge.
//!
//! * [`pb`]: the generated prost messages and tonic clients/servers. Only transport adapters
//!   (the meta server's gRPC services and network, the meta client) should name them.
//! * [`types`]: plain Rust values of the admin and read API ([`types::NodeStatus`],
//!   [`types::ReadConsistency`], ...), shared by server and client so that neither depends on
//!   the other.
//! * [`convert`]: conversions between [`pb`] and [`types`], and the codec for the opaque
//!   payloads (namespace commands, queries, openraft messages) that travel as `bytes`.
//! * [`wire_error`]: how failures are carried in a `tonic::Status` (the `bucketfs-error`
//!   metadata key and the not-leader hint), in one place for both ends.

pub mod convert;
pub mod types;
pub mod wire_error;

/// Generated code; see the .proto files for the meaning of every field.
#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("bucketfs.v1");
}

pub use convert::DecodeError;
pub use types::{
    LeaderHint, Member, MembershipChange, MembershipStatus, NodeStatus, ReadConsistency, Role,
};
pub use wire_error::WireError;
