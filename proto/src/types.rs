//! Plain values of the metadata service's admin and read API. The server produces them from
//! openraft's state, the client hands them to the CLI; the prost forms live in [`crate::pb`].

use std::fmt;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReadConsistency {
    /// Linearizable: the leader confirms its leadership with a quorum (read index) and
    /// answers once its state machine has applied up to that point.
    #[default]
    Linearizable,
    /// The leader's applied state without a quorum round. Stale only if the node was deposed
    /// without noticing yet.
    LeaderLocal,
    /// Whatever the receiving node has applied; may be arbitrarily stale.
    AnyLocal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        })
    }
}

/// A cluster member: its Raft node id and the one gRPC address that serves both peer and
/// client traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    pub id: u64,
    pub addr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipStatus {
    /// Union of the voter sets (both old and new voters during a joint change), by id.
    pub voters: Vec<Member>,
    /// Members that replicate the log but do not vote, by id.
    pub learners: Vec<Member>,
    /// A joint configuration is in effect: a membership change is half done.
    pub joint: bool,
    /// Log index of the entry that set this membership; `None` before initialization.
    pub log_index: Option<u64>,
    /// Whether that entry is committed. A new change is refused until it is.
    pub committed: bool,
}

impl MembershipStatus {
    pub fn voter_ids(&self) -> Vec<u64> {
        self.voters.iter().map(|m| m.id).collect()
    }

    pub fn learner_ids(&self) -> Vec<u64> {
        self.learners.iter().map(|m| m.id).collect()
    }

    /// The address of a voter or learner.
    pub fn addr_of(&self, id: u64) -> Option<&str> {
        self.voters
            .iter()
            .chain(&self.learners)
            .find(|m| m.id == id)
            .map(|m| m.addr.as_str())
    }
}

/// One node's view of itself and of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: u64,
    /// The address this node advertises.
    pub addr: String,
    pub role: Role,
    pub current_term: u64,
    /// The node this node voted for in `current_term`.
    pub voted_for: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub membership: MembershipStatus,
}

/// Where the leader is, as far as the answering node knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderHint {
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
}

/// The result of a membership change: the membership after it and the log entry that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub membership: MembershipStatus,
    pub log_index: u64,
}
