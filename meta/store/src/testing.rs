//! Helpers for tests of storage engines and of the adapters (here, in `bucketfs-meta-rocks`
//! and in the simulator): build log entries and feed them to a state machine the way openraft
//! does, without a running Raft.

use std::collections::BTreeSet;
use std::io;

use openraft::entry::RaftEntry;
use openraft::storage::RaftStateMachine;
use openraft::vote::RaftLeaderIdExt;

use crate::MetaStateMachine;
use crate::types::{Entry, LeaderId, LogId, LogPayload, Membership};

/// The id of entry `index` written by `leader` in `term`.
pub fn log_id(term: u64, leader: u64, index: u64) -> LogId {
    LogId::new(LeaderId::new_committed(term, leader), index)
}

pub fn blank_entry(term: u64, index: u64) -> Entry {
    Entry::new_blank(log_id(term, 0, index))
}

/// A membership entry with the given voters (and default node addresses).
pub fn membership_entry(term: u64, index: u64, voters: impl IntoIterator<Item = u64>) -> Entry {
    let voters: BTreeSet<u64> = voters.into_iter().collect();
    Entry::new_membership(
        log_id(term, 0, index),
        Membership::new_with_defaults(vec![voters], []),
    )
}

pub fn normal_entry(term: u64, index: u64, proposal: bucketfs_meta_state::Proposal) -> Entry {
    Entry::new_normal(log_id(term, 0, index), LogPayload(proposal))
}

/// Applies `entries` as one batch, without responders (as on a follower).
pub async fn apply_entries(
    sm: &mut MetaStateMachine,
    entries: impl IntoIterator<Item = Entry>,
) -> io::Result<()> {
    let items: Vec<_> = entries.into_iter().map(|e| Ok((e, None))).collect();
    sm.apply(futures::stream::iter(items)).await
}
