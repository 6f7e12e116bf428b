//! Invariant: a committed entry is never lost or replaced (Raft's Leader Completeness and
//! State Machine Safety), across crashes that drop unsynced writes.
//!
//! The committed log is the chain that ends at the cluster's final applied log id, rebuilt
//! from the wire ([`crate::observer::Observer::chain`]). Then:
//!
//! * every log id some node reported as applied during the run sits at its index in that
//!   chain: an entry once applied anywhere was never replaced by another;
//! * every node's final log agrees with the chain at every index it still holds up to the
//!   index that node had applied (entries past it may be uncommitted and are not judged).

use std::collections::BTreeMap;

use crate::observer::{Lid, WireEntry};

/// `chain`: the committed log in index order. `applied_seen`: index → log id applied by some
/// node. `node_logs`: each node's final applied index and log ids.
pub fn check(
    chain: &[(Lid, WireEntry)],
    applied_seen: &BTreeMap<u64, Lid>,
    node_logs: &BTreeMap<u64, (Option<u64>, Vec<Lid>)>,
) -> Vec<String> {
    let mut out = Vec::new();
    let by_index: BTreeMap<u64, Lid> = chain.iter().map(|(l, _)| (l.2, *l)).collect();
    let end = chain.last().map_or(0, |(l, _)| l.2);
    for (index, seen) in applied_seen {
        match by_index.get(index) {
            Some(c) if c == seen => {}
            Some(c) => out.push(format!(
                "committed entry lost: {seen:?} was applied at index {index}, the final log has {c:?}"
            )),
            None if *index > end => out.push(format!(
                "committed entry lost: {seen:?} was applied, but the final log ends at {end}"
            )),
            None => out.push(format!(
                "committed log has no entry at index {index} where {seen:?} was applied"
            )),
        }
    }
    for (node, (applied, log)) in node_logs {
        let Some(applied) = applied else { continue };
        for l in log.iter().filter(|l| l.2 <= end.min(*applied)) {
            if by_index.get(&l.2) != Some(l) {
                out.push(format!(
                    "n{node}'s log holds {l:?} at index {} where the committed log has {:?}",
                    l.2,
                    by_index.get(&l.2)
                ));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(ids: &[Lid]) -> Vec<(Lid, WireEntry)> {
        let mut prev = None;
        ids.iter()
            .map(|l| {
                let e = WireEntry {
                    prev,
                    hash: 0,
                    proposal: None,
                };
                prev = Some(*l);
                (*l, e)
            })
            .collect()
    }

    #[test]
    fn replaced_applied_entry_is_reported() {
        let c = chain(&[(1, 1, 0), (1, 1, 1), (2, 2, 2)]);
        let ok = BTreeMap::from([(1, (1, 1, 1)), (2, (2, 2, 2))]);
        assert!(check(&c, &ok, &BTreeMap::new()).is_empty());
        // Index 2 was applied from term 1, but the final log has term 2's entry there.
        let lost = BTreeMap::from([(2, (1, 1, 2))]);
        assert_eq!(check(&c, &lost, &BTreeMap::new()).len(), 1);
        let beyond = BTreeMap::from([(5, (1, 1, 5))]);
        assert_eq!(check(&c, &beyond, &BTreeMap::new()).len(), 1);
    }

    #[test]
    fn diverging_node_log_is_reported_but_uncommitted_tail_is_not() {
        let c = chain(&[(1, 1, 0), (1, 1, 1)]);
        let logs = BTreeMap::from([
            (1, (Some(2), vec![(1, 1, 0), (1, 1, 1), (3, 1, 2)])),
            (2, (Some(1), vec![(1, 1, 0), (2, 2, 1)])),
            // Applied only index 0: its divergent index 1 may be an uncommitted leftover.
            (3, (Some(0), vec![(1, 1, 0), (2, 2, 1)])),
        ]);
        let v = check(&c, &BTreeMap::new(), &logs);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("n2"));
    }
}
