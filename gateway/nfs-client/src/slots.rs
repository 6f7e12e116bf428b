//! The fore channel's slot table (RFC 8881 §2.10.6.1): one request per slot at a time, each
//! slot with its own sequence id.
//!
//! A request takes the lowest free slot; when its reply arrives the slot's seqid advances if
//! the server processed the SEQUENCE. A slot whose request has an unknown outcome (the caller
//! gave up, the reply was unreadable) is retired for the rest of the session rather than
//! guessed at: reusing it could make the server replay someone else's reply or answer
//! SEQ_MISORDERED. Sessions are replaced on any transport failure, so retired slots come back
//! with the next session.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

struct State {
    seqids: Vec<u32>,
    free: BTreeSet<u32>,
    busy: BTreeSet<u32>,
}

pub(crate) struct SlotTable {
    sem: Arc<Semaphore>,
    state: Mutex<State>,
}

/// A slot held by one request. Dropping it without [`Slot::complete`] retires the slot.
pub(crate) struct Slot<'a> {
    table: &'a SlotTable,
    pub(crate) id: u32,
    pub(crate) seqid: u32,
    /// Highest slot id in use when this one was taken (sa_highest_slotid).
    pub(crate) highest: u32,
    permit: Option<OwnedSemaphorePermit>,
}

impl SlotTable {
    pub(crate) fn new(slots: u32) -> Self {
        let slots = slots.max(1);
        Self {
            sem: Arc::new(Semaphore::new(slots as usize)),
            state: Mutex::new(State {
                seqids: vec![1; slots as usize],
                free: (0..slots).collect(),
                busy: BTreeSet::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn size(&self) -> usize {
        self.lock().seqids.len()
    }

    /// Waits up to `timeout` for a free slot.
    pub(crate) async fn acquire(&self, timeout: Duration) -> Result<Slot<'_>> {
        let permit = tokio::time::timeout(timeout, Arc::clone(&self.sem).acquire_owned())
            .await
            .map_err(|_| Error::Timeout {
                what: "waiting for a free session slot",
                after: timeout,
            })?
            .map_err(|_| Error::ConnectionLost("session closed".into()))?;
        let mut st = self.lock();
        // A permit guarantees a free slot: permits = free slots.
        let Some(id) = st.free.pop_first() else {
            return Err(Error::ConnectionLost("slot table exhausted".into()));
        };
        st.busy.insert(id);
        let highest = st.busy.last().copied().unwrap_or(id);
        let seqid = st.seqids[id as usize];
        Ok(Slot {
            table: self,
            id,
            seqid,
            highest,
            permit: Some(permit),
        })
    }
}

impl Slot<'_> {
    /// Returns the slot; `consumed` says whether the server processed the SEQUENCE (so the
    /// next request on this slot takes the next seqid).
    pub(crate) fn complete(mut self, consumed: bool) {
        let mut st = self.table.lock();
        st.busy.remove(&self.id);
        if consumed {
            let s = &mut st.seqids[self.id as usize];
            *s = s.wrapping_add(1);
        }
        st.free.insert(self.id);
        drop(st);
        // Releasing the permit after the slot is back in `free`.
        drop(self.permit.take());
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            // Outcome unknown: retire the slot for this session.
            self.table.lock().busy.remove(&self.id);
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lowest_free_slot_seqids_and_retirement() {
        let t = SlotTable::new(2);
        let a = t.acquire(Duration::from_secs(1)).await.unwrap();
        let b = t.acquire(Duration::from_secs(1)).await.unwrap();
        assert_eq!((a.id, a.seqid, a.highest), (0, 1, 0));
        assert_eq!((b.id, b.seqid, b.highest), (1, 1, 1));
        assert!(t.acquire(Duration::from_millis(20)).await.is_err());
        a.complete(true);
        let a = t.acquire(Duration::from_secs(1)).await.unwrap();
        assert_eq!((a.id, a.seqid), (0, 2));
        a.complete(false);
        let a = t.acquire(Duration::from_secs(1)).await.unwrap();
        assert_eq!((a.id, a.seqid), (0, 2));
        drop(a); // retired
        b.complete(true);
        let b = t.acquire(Duration::from_secs(1)).await.unwrap();
        assert_eq!((b.id, b.seqid), (1, 2));
        assert!(t.acquire(Duration::from_millis(20)).await.is_err());
    }
}
