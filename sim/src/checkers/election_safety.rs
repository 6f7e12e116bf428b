//! Invariant: at most one leader per term (Raft §5.2, "Election Safety").
//!
//! Evidence comes from two independent places (see [`crate::observer`]): AppendEntries sent
//! with a committed vote (only a leader sends those) and nodes' own metrics reporting the
//! Leader role. Two different nodes seen leading one term is a violation, whichever evidence
//! showed it. The observer flags it the moment it is seen; this check restates the ledger.

use crate::observer::Observer;

pub fn check(observer: &Observer) -> Vec<String> {
    observer
        .leaders()
        .into_iter()
        .filter(|(_, nodes)| nodes.len() > 1)
        .map(|(term, nodes)| format!("election safety: term {term} had leaders {nodes:?}"))
        .collect()
}
