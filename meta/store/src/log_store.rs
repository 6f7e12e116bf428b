//! [`MetaLogStore`]: openraft's log storage over any [`LogBackend`].
//!
//! Entries, votes and log ids are encoded with `bucketfs_meta_state::codec` (a format-version
//! byte, then postcard), so every engine stores the same bytes. The adapter is generic-free
//! (`Arc<dyn LogBackend>`): the server and the simulator name one type whatever the engine.

use std::fmt;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::LogBackend;
use crate::types::{Entry, LogId, LogState, TypeConfig, Vote};

/// The Raft log of one node. Cloning shares the backend (the clone is also its log reader).
#[derive(Clone)]
pub struct MetaLogStore {
    backend: Arc<dyn LogBackend>,
}

impl fmt::Debug for MetaLogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaLogStore").finish_non_exhaustive()
    }
}

impl MetaLogStore {
    pub fn new(backend: Arc<dyn LogBackend>) -> Self {
        MetaLogStore { backend }
    }

    async fn call<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn LogBackend) -> io::Result<T> + Send + 'static,
    {
        call_backend(&self.backend, self.backend.blocking(), move |b| f(&**b)).await
    }
}

/// Runs `f` on the backend: inline for in-memory engines, on tokio's blocking pool for engines
/// that wait on a disk (see `backend` module docs).
pub(crate) async fn call_backend<B, T, F>(backend: &Arc<B>, blocking: bool, f: F) -> io::Result<T>
where
    B: ?Sized + Send + Sync + 'static,
    T: Send + 'static,
    F: FnOnce(&Arc<B>) -> io::Result<T> + Send + 'static,
{
    if blocking {
        let backend = backend.clone();
        tokio::task::spawn_blocking(move || f(&backend))
            .await
            .map_err(|e| io::Error::other(format!("storage task failed: {e}")))?
    } else {
        f(backend)
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bucketfs_meta_state::codec::encode(value)
}

pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> io::Result<T> {
    bucketfs_meta_state::codec::decode(what, bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

fn range_to_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for MetaLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = range_to_bounds(&range);
        if start >= end {
            return Ok(Vec::new());
        }
        let raw = self.call(move |b| b.read_range(start, end)).await?;
        raw.iter()
            .map(|(index, bytes)| {
                let entry: Entry = decode("raft log", bytes)?;
                if entry.index() != *index {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "log entry stored at index {index} claims index {}",
                            entry.index()
                        ),
                    ));
                }
                Ok(entry)
            })
            .collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        let raw = self.call(|b| b.read_vote()).await?;
        raw.map(|v| decode("raft vote", &v)).transpose()
    }
}

impl RaftLogStorage<TypeConfig> for MetaLogStore {
    type LogReader = MetaLogStore;

    async fn get_log_state(&mut self) -> Result<LogState, io::Error> {
        let (purged, last) = self
            .call(|b| Ok((b.last_purged()?, b.last_entry()?)))
            .await?;
        let last_purged_log_id: Option<LogId> =
            purged.map(|p| decode("raft log", &p)).transpose()?;
        let last_log_id = match last {
            Some((_, bytes)) => Some(decode::<Entry>("raft log", &bytes)?.log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let bytes = encode(vote);
        self.call(move |b| b.save_vote(&bytes)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let bytes = committed.map(|c| encode(&c));
        self.call(move |b| b.save_committed(bytes.as_deref())).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let raw = self.call(|b| b.read_committed()).await?;
        raw.map(|c| decode("raft log", &c)).transpose()
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let raw: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| (e.index(), encode(&e)))
            .collect();
        // The backend returns only once the entries are durable, so the flush notification
        // can follow directly.
        let res = if raw.is_empty() {
            Ok(())
        } else {
            self.call(move |b| b.append(&raw)).await
        };
        match res {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index() + 1);
        self.call(move |b| b.truncate_from(from)).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let upto = log_id.index();
        let bytes = encode(&log_id);
        self.call(move |b| b.purge_upto(upto, &bytes)).await
    }
}
