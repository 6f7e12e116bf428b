//! Conversions between the prost messages of [`crate::pb`] and the plain values of
//! [`crate::types`], and the codec for opaque `bytes` payloads.
//!
//! Payloads (namespace commands and replies, openraft messages) use
//! `bucketfs_meta_state::codec`: one format-version byte, then postcard. Decoding is strict:
//! an unknown version or trailing garbage is an error, never a default value.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pb;
use crate::types::{Member, MembershipChange, MembershipStatus, NodeStatus, ReadConsistency, Role};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("unknown value {value} for enum field {field}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("cannot decode {what}: {reason}")]
    Payload { what: &'static str, reason: String },
}

/// Encodes a payload for a `bytes` field.
pub fn encode_payload<T: Serialize>(value: &T) -> Vec<u8> {
    bucketfs_meta_state::codec::encode(value)
}

/// Decodes a payload from a `bytes` field; `what` names it in the error.
pub fn decode_payload<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    bucketfs_meta_state::codec::decode(what, bytes).map_err(|e| DecodeError::Payload {
        what,
        reason: e.to_string(),
    })
}

impl From<ReadConsistency> for pb::Consistency {
    fn from(c: ReadConsistency) -> Self {
        match c {
            ReadConsistency::Linearizable => pb::Consistency::Linearizable,
            ReadConsistency::LeaderLocal => pb::Consistency::LeaderLocal,
            ReadConsistency::AnyLocal => pb::Consistency::AnyLocal,
        }
    }
}

/// The consistency of a read request's raw enum field; UNSPECIFIED means linearizable, the
/// safe default for a client that did not say.
pub fn read_consistency(raw: i32) -> Result<ReadConsistency, DecodeError> {
    match pb::Consistency::try_from(raw) {
        Ok(pb::Consistency::Unspecified | pb::Consistency::Linearizable) => {
            Ok(ReadConsistency::Linearizable)
        }
        Ok(pb::Consistency::LeaderLocal) => Ok(ReadConsistency::LeaderLocal),
        Ok(pb::Consistency::AnyLocal) => Ok(ReadConsistency::AnyLocal),
        Err(_) => Err(DecodeError::UnknownEnum {
            field: "consistency",
            value: raw,
        }),
    }
}

impl From<Role> for pb::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Leader => pb::Role::Leader,
            Role::Follower => pb::Role::Follower,
            Role::Candidate => pb::Role::Candidate,
            Role::Learner => pb::Role::Learner,
            Role::Shutdown => pb::Role::Shutdown,
        }
    }
}

fn role(raw: i32) -> Result<Role, DecodeError> {
    match pb::Role::try_from(raw) {
        Ok(pb::Role::Leader) => Ok(Role::Leader),
        Ok(pb::Role::Follower) => Ok(Role::Follower),
        Ok(pb::Role::Candidate) => Ok(Role::Candidate),
        Ok(pb::Role::Learner) => Ok(Role::Learner),
        Ok(pb::Role::Shutdown) => Ok(Role::Shutdown),
        Ok(pb::Role::Unspecified) | Err(_) => Err(DecodeError::UnknownEnum {
            field: "role",
            value: raw,
        }),
    }
}

impl From<Member> for pb::Member {
    fn from(m: Member) -> Self {
        pb::Member {
            id: m.id,
            addr: m.addr,
        }
    }
}

impl From<pb::Member> for Member {
    fn from(m: pb::Member) -> Self {
        Member {
            id: m.id,
            addr: m.addr,
        }
    }
}

impl From<MembershipStatus> for pb::Membership {
    fn from(m: MembershipStatus) -> Self {
        pb::Membership {
            voters: m.voters.into_iter().map(Into::into).collect(),
            learners: m.learners.into_iter().map(Into::into).collect(),
            joint: m.joint,
            log_index: m.log_index,
            committed: m.committed,
        }
    }
}

impl From<pb::Membership> for MembershipStatus {
    fn from(m: pb::Membership) -> Self {
        MembershipStatus {
            voters: m.voters.into_iter().map(Into::into).collect(),
            learners: m.learners.into_iter().map(Into::into).collect(),
            joint: m.joint,
            log_index: m.log_index,
            committed: m.committed,
        }
    }
}

impl From<NodeStatus> for pb::StatusResponse {
    fn from(s: NodeStatus) -> Self {
        pb::StatusResponse {
            node_id: s.node_id,
            addr: s.addr,
            role: pb::Role::from(s.role) as i32,
            current_term: s.current_term,
            voted_for: s.voted_for,
            last_log_index: s.last_log_index,
            applied_index: s.applied_index,
            committed_index: s.committed_index,
            snapshot_index: s.snapshot_index,
            purged_index: s.purged_index,
            leader_id: s.leader_id,
            leader_addr: s.leader_addr.unwrap_or_default(),
            membership: Some(s.membership.into()),
        }
    }
}

impl TryFrom<pb::StatusResponse> for NodeStatus {
    type Error = DecodeError;

    fn try_from(s: pb::StatusResponse) -> Result<Self, DecodeError> {
        Ok(NodeStatus {
            node_id: s.node_id,
            addr: s.addr,
            role: role(s.role)?,
            current_term: s.current_term,
            voted_for: s.voted_for,
            last_log_index: s.last_log_index,
            applied_index: s.applied_index,
            committed_index: s.committed_index,
            snapshot_index: s.snapshot_index,
            purged_index: s.purged_index,
            leader_id: s.leader_id,
            leader_addr: Some(s.leader_addr).filter(|a| !a.is_empty()),
            membership: s
                .membership
                .ok_or(DecodeError::MissingField("membership"))?
                .into(),
        })
    }
}

impl From<MembershipChange> for pb::MembershipResponse {
    fn from(c: MembershipChange) -> Self {
        pb::MembershipResponse {
            membership: Some(c.membership.into()),
            log_index: c.log_index,
        }
    }
}

impl TryFrom<pb::MembershipResponse> for MembershipChange {
    type Error = DecodeError;

    fn try_from(r: pb::MembershipResponse) -> Result<Self, DecodeError> {
        Ok(MembershipChange {
            membership: r
                .membership
                .ok_or(DecodeError::MissingField("membership"))?
                .into(),
            log_index: r.log_index,
        })
    }
}

#[cfg(test)]
mod tests {
    use bucketfs_meta_state::command::ApplyResult;
    use bucketfs_meta_state::{Command, NsError, Reply};

    use super::*;

    fn status() -> NodeStatus {
        NodeStatus {
            node_id: 2,
            addr: "127.0.0.1:7402".into(),
            role: Role::Follower,
            current_term: 5,
            voted_for: Some(1),
            last_log_index: Some(40),
            applied_index: Some(39),
            committed_index: Some(39),
            snapshot_index: None,
            purged_index: None,
            leader_id: Some(1),
            leader_addr: Some("127.0.0.1:7401".into()),
            membership: MembershipStatus {
                voters: vec![
                    Member {
                        id: 1,
                        addr: "127.0.0.1:7401".into(),
                    },
                    Member {
                        id: 2,
                        addr: "127.0.0.1:7402".into(),
                    },
                ],
                learners: vec![Member {
                    id: 4,
                    addr: "127.0.0.1:7404".into(),
                }],
                joint: false,
                log_index: Some(3),
                committed: true,
            },
        }
    }

    #[test]
    fn status_round_trips() {
        let s = status();
        let wire = pb::StatusResponse::from(s.clone());
        assert_eq!(NodeStatus::try_from(wire), Ok(s.clone()));

        let unknown_leader = NodeStatus {
            leader_id: None,
            leader_addr: None,
            ..s
        };
        let wire = pb::StatusResponse::from(unknown_leader.clone());
        assert_eq!(NodeStatus::try_from(wire), Ok(unknown_leader));
    }

    #[test]
    fn status_without_membership_or_role_is_refused() {
        let mut wire = pb::StatusResponse::from(status());
        wire.membership = None;
        assert_eq!(
            NodeStatus::try_from(wire),
            Err(DecodeError::MissingField("membership"))
        );
        let mut wire = pb::StatusResponse::from(status());
        wire.role = 0;
        assert!(matches!(
            NodeStatus::try_from(wire),
            Err(DecodeError::UnknownEnum { field: "role", .. })
        ));
    }

    #[test]
    fn consistency_defaults_to_linearizable_and_refuses_unknown_values() {
        for c in [
            ReadConsistency::Linearizable,
            ReadConsistency::LeaderLocal,
            ReadConsistency::AnyLocal,
        ] {
            assert_eq!(read_consistency(pb::Consistency::from(c) as i32), Ok(c));
        }
        assert_eq!(read_consistency(0), Ok(ReadConsistency::Linearizable));
        assert!(read_consistency(99).is_err());
    }

    #[test]
    fn payloads_round_trip_and_garbage_is_refused() {
        let cmd = Command::CreateFs {
            name: "photos".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
        };
        let bytes = encode_payload(&cmd);
        assert_eq!(decode_payload::<Command>("command", &bytes), Ok(cmd));

        let result: ApplyResult = Err(NsError::Exists);
        let bytes = encode_payload(&result);
        assert_eq!(decode_payload::<ApplyResult>("result", &bytes), Ok(result));
        let ok: ApplyResult = Ok(Reply::Done);
        assert_eq!(
            decode_payload::<ApplyResult>("result", &encode_payload(&ok)),
            Ok(ok)
        );

        assert!(decode_payload::<Command>("command", &[]).is_err());
        assert!(decode_payload::<Command>("command", &[9, 0]).is_err());
        assert!(decode_payload::<Command>("command", &[1, 250, 250, 250]).is_err());
    }
}
