//! What the simulator learns about Raft while the run goes on, for the safety checkers.
//!
//! Two vantage points, both outside the code under test:
//!
//! * The network: every AppendEntries request passes through the simulated network, and one
//!   sent with a committed vote proves that its sender was the leader of that term. Its
//!   entries show which payload each log id carries.
//! * Each node's metrics: `state == Leader` in a term, and `last_applied`, which can only name
//!   a committed entry.
//!
//! Facts are recorded as they are seen, and a contradiction is recorded as a violation at
//! once, with the virtual time, so the trace shows where it happened.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bucketfs_meta_state::Proposal;
use bucketfs_meta_store::{Entry, EntryPayload, LogId};

use crate::trace::{Fnv64, Trace};

/// A log id as plain numbers: (term, leader node, index). In standard Raft mode a log id
/// records only the term (one leader per term), so the leader node is always 0 here.
pub type Lid = (u64, u64, u64);

pub fn lid(log_id: &LogId) -> Lid {
    let leader = log_id.committed_leader_id();
    (leader.term, 0, log_id.index())
}

#[derive(Debug, Default)]
struct Ledgers {
    /// Nodes seen acting as leader, per term, and how each was seen.
    leaders: BTreeMap<u64, BTreeMap<u64, &'static str>>,
    /// Every entry seen on the wire: its predecessor, payload hash and proposal (none for
    /// blank and membership entries).
    entries: BTreeMap<Lid, WireEntry>,
    /// For each index, the log id some node has applied there.
    applied: BTreeMap<u64, Lid>,
    /// Per node, the highest applied index seen, to notice a node going backwards.
    node_applied: BTreeMap<u64, u64>,
    violations: Vec<String>,
    /// Terms with two leaders, reported once each.
    split_terms: BTreeSet<u64>,
    /// Indexes where two different applied entries were seen, reported once each.
    split_indexes: BTreeSet<u64>,
}

#[derive(Debug, Clone)]
pub struct WireEntry {
    pub prev: Option<Lid>,
    pub hash: u64,
    pub proposal: Option<Proposal>,
}

#[derive(Clone)]
pub struct Observer {
    inner: Arc<Mutex<Ledgers>>,
    trace: Trace,
}

impl Observer {
    pub fn new(trace: Trace) -> Self {
        Observer {
            inner: Arc::new(Mutex::new(Ledgers::default())),
            trace,
        }
    }

    /// `node` acted as leader of `term` (`how`: which observation showed it).
    pub fn saw_leader(&self, term: u64, node: u64, how: &'static str) {
        let mut l = self.lock();
        let nodes = l.leaders.entry(term).or_default();
        nodes.entry(node).or_insert(how);
        if nodes.len() > 1 && !l.split_terms.contains(&term) {
            let who: Vec<String> = l.leaders[&term]
                .iter()
                .map(|(n, how)| format!("n{n} ({how})"))
                .collect();
            let msg = format!(
                "election safety: term {term} has two leaders: {}",
                who.join(", ")
            );
            l.split_terms.insert(term);
            l.violations.push(msg.clone());
            drop(l);
            self.trace.event("checker", msg);
        }
    }

    /// Entries seen in an AppendEntries request that follows `prev`.
    pub fn saw_entries(&self, prev: Option<&LogId>, entries: &[Entry]) {
        let mut l = self.lock();
        let mut prev = prev.map(lid);
        for e in entries {
            let id = lid(&e.log_id);
            let mut h = Fnv64::new();
            h.write(&bucketfs_meta_state::codec::encode(&e.payload));
            let hash = h.finish();
            match l.entries.get(&id) {
                Some(seen) if seen.hash != hash || seen.prev != prev => {
                    let msg = format!(
                        "log matching: log id {id:?} seen with two different payloads or predecessors"
                    );
                    l.violations.push(msg.clone());
                    self.trace.event("checker", msg);
                }
                Some(_) => {}
                None => {
                    let proposal = match &e.payload {
                        EntryPayload::Normal(p) => Some(p.0.clone()),
                        _ => None,
                    };
                    l.entries.insert(
                        id,
                        WireEntry {
                            prev,
                            hash,
                            proposal,
                        },
                    );
                }
            }
            prev = Some(id);
        }
    }

    /// The log that ends at `tip`, rebuilt from the wire by following predecessors. Every
    /// committed entry was replicated by AppendEntries before it could commit, so the chain
    /// of any committed log id is complete.
    pub fn chain(&self, tip: Lid) -> Result<Vec<(Lid, WireEntry)>, String> {
        let l = self.lock();
        let mut out = Vec::new();
        let mut cur = Some(tip);
        while let Some(id) = cur {
            let Some(e) = l.entries.get(&id) else {
                return Err(format!(
                    "entry {id:?} of the committed log was never seen on the wire"
                ));
            };
            out.push((id, e.clone()));
            cur = e.prev;
        }
        out.reverse();
        Ok(out)
    }

    /// `node` reports having applied up to `log_id`.
    pub fn saw_applied(&self, node: u64, log_id: &LogId) {
        let id = lid(log_id);
        let mut l = self.lock();
        match l.applied.get(&id.2).copied() {
            Some(prev) if prev != id => {
                if !l.split_indexes.insert(id.2) {
                    return;
                }
                let msg = format!(
                    "state machine safety: n{node} applied {id:?} at index {} where {prev:?} was applied before",
                    id.2
                );
                l.violations.push(msg.clone());
                drop(l);
                self.trace.event("checker", msg);
                return;
            }
            Some(_) => {}
            None => {
                l.applied.insert(id.2, id);
            }
        }
        let prev = l.node_applied.insert(node, id.2).unwrap_or(0);
        if id.2 < prev {
            // Only legal across a restart, where the node re-applies from its durable state;
            // the caller resets the node's mark then (see `restarted`).
            let msg = format!("n{node}'s applied index went back from {prev} to {}", id.2);
            l.violations.push(msg.clone());
            drop(l);
            self.trace.event("checker", msg);
        }
    }

    /// A restarted node may report a lower applied index than before its crash.
    pub fn restarted(&self, node: u64) {
        self.lock().node_applied.remove(&node);
    }

    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Log ids known to be committed (some node applied them), by index.
    pub fn applied(&self) -> BTreeMap<u64, Lid> {
        self.lock().applied.clone()
    }

    pub fn leaders(&self) -> BTreeMap<u64, BTreeSet<u64>> {
        self.lock()
            .leaders
            .iter()
            .map(|(t, m)| (*t, m.keys().copied().collect()))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Ledgers> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
