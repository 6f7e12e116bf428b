//! Invariants: no retried mutation is applied twice, every acknowledged mutation is in the
//! committed log with the reply its client got, and every replica's state is what the
//! committed log produces.
//!
//! The committed log is replayed through `bucketfs_meta_state::apply` on a fresh [`MemKv`]:
//!
//! * A `(client, seq)` that appears in the log more than once (a retry that was proposed
//!   again) must change nothing the second time: no row of any table may differ afterwards.
//!   That is the exactly-once promise, checked on the log the cluster actually committed.
//! * Each mutation the history shows as acknowledged must be in the log, and the reply of its
//!   first application must be the reply the client received (compared in the abstract
//!   form of [`crate::model::Answer`]).
//! * When the replay reaches the index a node had applied when it stopped, the node's tables
//!   must equal the replay's, row for row (the Raft bookkeeping table aside).

use std::collections::BTreeMap;

use bucketfs_meta_state::command::ApplyResult;
use bucketfs_meta_state::kv::{MemKv, Table, Txn};
use bucketfs_meta_store::Row;

use crate::history::{HistOp, Outcome};
use crate::observer::{Lid, WireEntry};
use crate::workload::write_answer;

/// A node's final state: the index it had applied and its rows.
pub struct NodeState {
    pub applied: Option<u64>,
    pub rows: Vec<Row>,
}

pub fn check(
    chain: &[(Lid, WireEntry)],
    nodes: &BTreeMap<u64, NodeState>,
    history: &[HistOp],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut kv = MemKv::default();
    // (client, seq) → (index of first application, its reply).
    let mut first: BTreeMap<(u64, u64), (u64, ApplyResult)> = BTreeMap::new();
    let mut compare_at: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (id, n) in nodes {
        match n.applied {
            Some(i) => compare_at.entry(i).or_default().push(*id),
            None => out.push(format!("n{id} applied nothing")),
        }
    }
    for (lid, entry) in chain {
        let index = lid.2;
        if let Some(p) = &entry.proposal {
            let key = (p.client.0, p.seq);
            let before = first.contains_key(&key).then(|| kv.clone());
            let result = {
                let mut txn = Txn::new(&kv);
                match bucketfs_meta_state::apply(&mut txn, index, p) {
                    Ok(r) => Some((r, txn.into_writes())),
                    Err(e) => {
                        out.push(format!("replay failed at index {index}: {e}"));
                        None
                    }
                }
            };
            let Some((reply, writes)) = result else {
                return out;
            };
            kv.apply(writes);
            match before {
                Some(before) => {
                    if before != kv {
                        let (at, _) = &first[&key];
                        out.push(format!(
                            "exactly-once: client {:x} seq {} applied again at index {index} (first at {at})",
                            key.0, key.1
                        ));
                    }
                }
                None => {
                    first.insert(key, (index, reply));
                }
            }
        }
        for node in compare_at.remove(&index).unwrap_or_default() {
            if let Some(diff) = diff_rows(&kv, &nodes[&node].rows) {
                out.push(format!(
                    "n{node}'s state at index {index} differs from the replayed log: {diff}"
                ));
            }
        }
    }
    for (index, nodes) in compare_at {
        out.push(format!(
            "nodes {nodes:?} applied up to {index}, past the end of the committed log"
        ));
    }
    for op in history {
        let (Outcome::Ok(got), Some(req)) = (&op.outcome, op.request) else {
            continue;
        };
        match first.get(&req) {
            None => out.push(format!(
                "acknowledged but not in the committed log: {op} (client {:x} seq {})",
                req.0, req.1
            )),
            Some((index, reply)) => {
                let logged = write_answer(reply);
                if &logged != got {
                    out.push(format!(
                        "{op}: the client got {got} but the log applied it at index {index} as {logged}"
                    ));
                }
            }
        }
    }
    out
}

/// The first difference between the replay and a node's rows, ignoring [`Table::System`]
/// (Raft's own bookkeeping, which the namespace rules never touch).
fn diff_rows(kv: &MemKv, rows: &[Row]) -> Option<String> {
    let mine: BTreeMap<(Table, &[u8]), &[u8]> = kv
        .rows
        .iter()
        .filter(|((t, _), _)| *t != Table::System)
        .map(|((t, k), v)| ((*t, k.as_slice()), v.as_slice()))
        .collect();
    let theirs: BTreeMap<(Table, &[u8]), &[u8]> = rows
        .iter()
        .filter(|(t, _, _)| *t != Table::System)
        .map(|(t, k, v)| ((*t, k.as_slice()), v.as_slice()))
        .collect();
    if mine == theirs {
        return None;
    }
    for (k, v) in &mine {
        match theirs.get(k) {
            None => return Some(format!("node lacks {} row {:?}", k.0.name(), k.1)),
            Some(w) if w != v => return Some(format!("{} row {:?} differs", k.0.name(), k.1)),
            _ => {}
        }
    }
    let extra = theirs.keys().find(|k| !mine.contains_key(*k));
    Some(format!(
        "node has an extra row {:?}",
        extra.map(|k| (k.0.name(), k.1))
    ))
}
