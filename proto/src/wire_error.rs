//! Failures as they travel in a `tonic::Status`.
//!
//! The gRPC code alone is ambiguous (tonic itself reports UNAVAILABLE for a refused
//! connection, for instance), so every status produced by a bucketfs service carries the
//! metadata key [`ERROR_KEY`] naming the [`WireError`] kind; a status without it came from the
//! transport. A not-leader answer also carries the leader's id and address when the node
//! knows them, so a client can go straight there.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::types::LeaderHint;

pub const ERROR_KEY: &str = "bucketfs-error";
pub const LEADER_ID_KEY: &str = "bucketfs-leader-id";
pub const LEADER_ADDR_KEY: &str = "bucketfs-leader-addr";

/// A failure reported by a bucketfs node, shaped by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// This node cannot serve the request; the leader (if known) can.
    #[error("not the leader (leader: {:?} at {:?})", .0.leader_id, .0.leader_addr)]
    NotLeader(LeaderHint),
    /// Transient: an election, a lost quorum, a node shutting down. Retry; writes with the
    /// same (client, seq).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request is malformed or cannot be served as asked; retrying will not help.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A membership change was refused (one is in progress, the learner is unknown, ...).
    #[error("membership change refused: {0}")]
    Membership(String),
    /// The node stopped (for example its storage failed); another node may still serve.
    #[error("node failed: {0}")]
    Fatal(String),
}

impl WireError {
    fn kind(&self) -> (&'static str, Code) {
        match self {
            WireError::NotLeader(_) => ("not-leader", Code::FailedPrecondition),
            WireError::Unavailable(_) => ("unavailable", Code::Unavailable),
            WireError::Invalid(_) => ("invalid", Code::InvalidArgument),
            WireError::Membership(_) => ("membership", Code::FailedPrecondition),
            WireError::Fatal(_) => ("fatal", Code::Internal),
        }
    }

    pub fn into_status(self) -> Status {
        let (kind, code) = self.kind();
        let mut md = MetadataMap::new();
        md.insert(ERROR_KEY, MetadataValue::from_static(kind));
        if let WireError::NotLeader(hint) = &self {
            if let Some(id) = hint.leader_id {
                md.insert(LEADER_ID_KEY, MetadataValue::from(id));
            }
            // An address that is not a valid header value is left out: the id still lets the
            // client look the leader up in its own list.
            if let Some(addr) = hint.leader_addr.as_deref()
                && let Ok(v) = MetadataValue::try_from(addr)
            {
                md.insert(LEADER_ADDR_KEY, v);
            }
        }
        // The message is the bare detail, so that `from_status` rebuilds the same value.
        let message = match self {
            WireError::NotLeader(_) => self.to_string(),
            WireError::Unavailable(m)
            | WireError::Invalid(m)
            | WireError::Membership(m)
            | WireError::Fatal(m) => m,
        };
        Status::with_metadata(code, message, md)
    }

    /// The bucketfs error carried by `status`, or `None` if the status did not come from a
    /// bucketfs service (a transport failure, a deadline, a proxy).
    pub fn from_status(status: &Status) -> Option<WireError> {
        let md = status.metadata();
        let kind = md.get(ERROR_KEY)?.to_str().ok()?;
        let msg = status.message().to_string();
        Some(match kind {
            "not-leader" => WireError::NotLeader(LeaderHint {
                leader_id: md
                    .get(LEADER_ID_KEY)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse().ok()),
                leader_addr: md
                    .get(LEADER_ADDR_KEY)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            }),
            "unavailable" => WireError::Unavailable(msg),
            "invalid" => WireError::Invalid(msg),
            "membership" => WireError::Membership(msg),
            "fatal" => WireError::Fatal(msg),
            _ => return None,
        })
    }
}

impl From<WireError> for Status {
    fn from(e: WireError) -> Self {
        e.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_a_status() {
        let cases = [
            WireError::NotLeader(LeaderHint {
                leader_id: Some(7),
                leader_addr: Some("10.0.0.7:7400".into()),
            }),
            WireError::NotLeader(LeaderHint::default()),
            WireError::NotLeader(LeaderHint {
                leader_id: Some(3),
                leader_addr: None,
            }),
            WireError::Unavailable("electing".into()),
            WireError::Invalid("bad query".into()),
            WireError::Membership("in progress".into()),
            WireError::Fatal("storage".into()),
        ];
        for e in cases {
            let status = e.clone().into_status();
            assert_eq!(WireError::from_status(&status), Some(e));
        }
    }

    #[test]
    fn a_plain_transport_status_is_not_a_bucketfs_error() {
        assert_eq!(
            WireError::from_status(&Status::unavailable("connection refused")),
            None
        );
    }
}
