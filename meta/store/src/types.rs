//! The openraft type configuration of the metadata cluster and short names for the types
//! built from it, so that other crates name openraft generics in one place only.

use std::fmt;

use bucketfs_meta_state::Proposal;
use bucketfs_meta_state::command::ApplyResult;
use serde::{Deserialize, Serialize};

use crate::runtime::BucketfsRuntime;
use crate::state_machine::MetaStateMachine;

/// One log entry's application payload: a [`Proposal`].
///
/// A newtype only because openraft requires `Display` of its `D` and the orphan rule forbids
/// implementing it here for a type of `bucketfs-meta-state`. `serde(transparent)` keeps the
/// encoded bytes identical to the proposal's own, so replacing this by `Proposal` later (once
/// that type has `Display`) changes no stored or replicated byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogPayload(pub Proposal);

impl From<Proposal> for LogPayload {
    fn from(p: Proposal) -> Self {
        LogPayload(p)
    }
}

impl fmt::Display for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Log lines show who proposed what, not the whole command (names can be long).
        let p = &self.0;
        write!(f, "proposal(client={}, seq={}, ", p.client.0, p.seq)?;
        let cmd = format!("{:?}", p.command);
        let kind = cmd.split([' ', '{', '(']).next().unwrap_or("");
        write!(f, "{kind})")
    }
}

openraft::declare_raft_types!(
    /// Raft types of the metadata cluster. `Node::addr` is the node's single gRPC address,
    /// which serves both Raft peer traffic and the client API.
    ///
    /// `LeaderId` is standard Raft's: a node grants one vote per term, so a term has at most
    /// one leader (the simulator checks exactly that). openraft's default ("advanced") leader
    /// id lets a node vote again in the same term for a higher node id, which is safe in its
    /// model but breaks the textbook invariant our checkers and operators reason with.
    pub TypeConfig:
        D = LogPayload,
        R = ApplyResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = BucketfsRuntime,
);

/// The leader part of a log id (term + node, openraft's `leader_id_adv` default).
pub type CommittedLeaderId = openraft::alias::CommittedLeaderIdOf<TypeConfig>;

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type EntryPayload = openraft::alias::EntryPayloadOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type LeaderId = openraft::alias::LeaderIdOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, Node>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type LogState = openraft::storage::LogState<TypeConfig>;

/// Snapshot bytes. Snapshots are built and held in memory for now (all rows of the state
/// machine, encoded with `bucketfs_meta_state::codec`); a streamed checkpoint can replace
/// this when states outgrow RAM.
pub type SnapshotData = Vec<u8>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// The Raft handle of a metadata node.
pub type MetaRaft = openraft::Raft<TypeConfig, MetaStateMachine>;
