//! Errors of [`crate::MetaNode`], shaped by what the caller can do: go to the leader, retry,
//! fix the request, or give up on this node. Each maps onto one [`WireError`] kind.

use bucketfs_proto::{LeaderHint, WireError};

use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// openraft could not start on this storage (it read a broken state).
    #[error("cannot start the raft node: {0}")]
    Start(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Not proposed here, or proposed and discarded by a leader change (then it may or may
    /// not commit): retry on the leader with the SAME (client, seq).
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    /// Transient: no quorum, an election, shutting down, or the entry did not commit within
    /// the commit timeout (outcome unknown). Retry with the same (client, seq).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The node stopped (storage failure); it serves nothing more.
    #[error("node failed: {0}")]
    Fatal(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// This consistency level needs the leader, and this node is not it.
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    /// Leadership could not be confirmed in time (no quorum, election); retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("node failed: {0}")]
    Fatal(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    /// The change was refused by the membership rules (for example the voter to add is not
    /// a learner yet, or a previous change is still not committed after the timeout).
    #[error("membership change refused: {0}")]
    Membership(String),
    /// The request cannot work as given (unknown node, empty voter set, this node is not
    /// among the initial members, already initialized differently).
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("node failed: {0}")]
    Fatal(String),
}

fn hint(leader_id: Option<u64>, leader_addr: Option<String>) -> WireError {
    WireError::NotLeader(LeaderHint {
        leader_id,
        leader_addr,
    })
}

impl From<WriteError> for WireError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotLeader {
                leader_id,
                leader_addr,
            } => hint(leader_id, leader_addr),
            WriteError::Unavailable(m) => WireError::Unavailable(m),
            WriteError::Fatal(m) => WireError::Fatal(m),
        }
    }
}

impl From<ReadError> for WireError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotLeader {
                leader_id,
                leader_addr,
            } => hint(leader_id, leader_addr),
            ReadError::Unavailable(m) => WireError::Unavailable(m),
            ReadError::Fatal(m) => WireError::Fatal(m),
        }
    }
}

impl From<AdminError> for WireError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotLeader {
                leader_id,
                leader_addr,
            } => hint(leader_id, leader_addr),
            AdminError::Membership(m) => WireError::Membership(m),
            AdminError::Invalid(m) => WireError::Invalid(m),
            AdminError::Unavailable(m) => WireError::Unavailable(m),
            AdminError::Fatal(m) => WireError::Fatal(m),
        }
    }
}
