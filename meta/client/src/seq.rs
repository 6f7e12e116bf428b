//! Sequence numbers of one client's writes and the set still in flight, from which
//! `ack_below` is derived.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct State {
    /// The next seq to hand out; seqs start at 1.
    next: u64,
    in_flight: BTreeSet<u64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Seqs {
    state: Arc<Mutex<State>>,
}

/// A seq owned by one call. Dropping it (the call returned, failed or was cancelled) takes
/// it out of flight, so `ack_below` can move past it.
#[derive(Debug)]
pub(crate) struct SeqGuard {
    seqs: Seqs,
    pub(crate) seq: u64,
}

impl Seqs {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain values updated together; a panic cannot tear them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn begin(&self) -> SeqGuard {
        let mut st = self.lock();
        st.next = st.next.max(1);
        let seq = st.next;
        st.next += 1;
        st.in_flight.insert(seq);
        SeqGuard {
            seqs: self.clone(),
            seq,
        }
    }

    /// Every seq below this one has finished (answered, given up or cancelled).
    pub(crate) fn ack_below(&self) -> u64 {
        let st = self.lock();
        st.in_flight
            .first()
            .copied()
            .unwrap_or_else(|| st.next.max(1))
    }
}

impl Drop for SeqGuard {
    fn drop(&mut self) {
        self.seqs.lock().in_flight.remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_below_is_the_oldest_write_in_flight() {
        let seqs = Seqs::default();
        assert_eq!(seqs.ack_below(), 1);
        let a = seqs.begin();
        let b = seqs.begin();
        let c = seqs.begin();
        assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
        assert_eq!(seqs.ack_below(), 1);
        drop(b);
        assert_eq!(seqs.ack_below(), 1, "a is still in flight");
        drop(a);
        assert_eq!(seqs.ack_below(), 3);
        drop(c);
        assert_eq!(seqs.ack_below(), 4);
        let d = seqs.begin();
        assert_eq!(d.seq, 4);
        assert_eq!(seqs.ack_below(), 4);
    }
}
