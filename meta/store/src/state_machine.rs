//! [`MetaStateMachine`]: openraft's state machine over any [`StateBackend`], running the
//! namespace rules of `bucketfs-meta-state`.
//!
//! Group commit: `apply` runs every entry of the batch openraft hands over inside ONE
//! transaction and commits ONE write set, which also records the last applied log id and the
//! last membership in [`Table::System`]. The state on disk therefore always corresponds to a
//! whole number of batches, and its last-applied id says exactly which — after a crash openraft
//! re-applies from there. Replies are sent only after that write is durable.
//!
//! A `MetaError` from the rules (storage failure, undecodable record) is fatal: `apply` returns
//! an `io::Error`, openraft stops the node, and no entry is ever skipped, because a replica that
//! skipped one would silently diverge from the others.
//!
//! Snapshots are every row of every table plus last applied id and membership, encoded with
//! `bucketfs_meta_state::codec` and held in memory (see [`crate::SnapshotData`]). The last
//! built or installed snapshot is kept in memory only: the state machine itself is durable, so
//! after a restart openraft builds a new snapshot when it needs one.
//!
//! Reads: [`MetaStateMachine::reader`] returns a [`StateReader`] holding the backend directly,
//! so queries read the last committed batch without queueing behind openraft's state machine
//! task. For a linearizable read the server first waits (openraft's read linearizer) until the
//! state machine has applied the read log id, then queries through the reader.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use bucketfs_meta_state::command::ApplyResult;
use bucketfs_meta_state::kv::{KvRead, Table, Txn};
use bucketfs_meta_state::{NsError, Query, QueryReply, Reply};
use futures::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use crate::backend::{Row, StateBackend};
use crate::log_store::{call_backend, decode, encode};
use crate::types::{
    Entry, EntryPayload, LogId, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};

/// [`Table::System`] key of the last applied log id.
pub const SYSTEM_LAST_APPLIED: &[u8] = b"last_applied";
/// [`Table::System`] key of the last applied membership.
pub const SYSTEM_MEMBERSHIP: &[u8] = b"last_membership";

/// The namespace state machine of one node. Cloning shares the backend and current snapshot.
#[derive(Clone)]
pub struct MetaStateMachine {
    backend: Arc<dyn StateBackend>,
    current: Arc<Mutex<Option<Snapshot>>>,
}

impl fmt::Debug for MetaStateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaStateMachine").finish_non_exhaustive()
    }
}

/// Read access to the committed namespace state, independent of openraft's state machine
/// task. Cheap to clone.
#[derive(Clone)]
pub struct StateReader {
    backend: Arc<dyn StateBackend>,
}

impl fmt::Debug for StateReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateReader").finish_non_exhaustive()
    }
}

/// The snapshot builder openraft runs concurrently with `apply`; it exports one consistent view.
pub struct MetaSnapshotBuilder {
    backend: Arc<dyn StateBackend>,
    current: Arc<Mutex<Option<Snapshot>>>,
}

/// What a snapshot's bytes decode to. Tables are named by [`Table::name`] so that adding a
/// table later does not renumber the others.
/// The rows of one table in a snapshot: its [`Table::name`] and its `(key, value)` pairs.
type TableRows = (String, Vec<(Vec<u8>, Vec<u8>)>);

#[derive(Serialize, Deserialize)]
struct SnapshotImage {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    tables: Vec<TableRows>,
}

fn io_invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn meta_err(e: bucketfs_meta_state::MetaError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Last applied id and membership as recorded in [`Table::System`].
fn read_applied(kv: &dyn KvRead) -> io::Result<(Option<LogId>, StoredMembership)> {
    let last = kv
        .get(Table::System, SYSTEM_LAST_APPLIED)
        .map_err(meta_err)?
        .map(|b| decode("system", &b))
        .transpose()?;
    let membership = kv
        .get(Table::System, SYSTEM_MEMBERSHIP)
        .map_err(meta_err)?
        .map(|b| decode("system", &b))
        .transpose()?
        .unwrap_or_default();
    Ok((last, membership))
}

/// Applies a batch in one transaction and commits it; returns one result per entry.
fn apply_batch(backend: &dyn StateBackend, entries: &[Entry]) -> io::Result<Vec<ApplyResult>> {
    let mut results = Vec::with_capacity(entries.len());
    let writes = {
        let view = backend.read_view()?;
        let mut txn = Txn::new(&*view);
        let mut membership = None;
        for entry in entries {
            let log_id = entry.log_id();
            let result = match &entry.payload {
                EntryPayload::Blank => Ok(Reply::Done),
                EntryPayload::Normal(payload) => {
                    bucketfs_meta_state::apply(&mut txn, log_id.index(), &payload.0).map_err(
                        |e| {
                            io::Error::other(format!(
                                "cannot apply log entry {log_id}; stopping rather than \
                                 diverging from the other replicas: {e}"
                            ))
                        },
                    )?
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(log_id), m.clone()));
                    Ok(Reply::Done)
                }
            };
            results.push(result);
        }
        if let Some(last) = entries.last() {
            txn.put(
                Table::System,
                SYSTEM_LAST_APPLIED.to_vec(),
                encode(&last.log_id()),
            );
        }
        if let Some(m) = membership {
            txn.put(Table::System, SYSTEM_MEMBERSHIP.to_vec(), encode(&m));
        }
        txn.into_writes()
        // The view (a lock, for the memory engine) is dropped here, before the write.
    };
    backend.write(writes)?;
    Ok(results)
}

/// Exports the state into a snapshot, meta taken from the same consistent export.
fn build_snapshot(backend: &dyn StateBackend) -> io::Result<Snapshot> {
    let rows = backend.export()?;
    let mut last_applied = None;
    let mut membership = StoredMembership::default();
    let mut tables: Vec<TableRows> = Vec::new();
    for (table, key, value) in rows {
        if table == Table::System {
            if key == SYSTEM_LAST_APPLIED {
                last_applied = Some(decode("system", &value)?);
            } else if key == SYSTEM_MEMBERSHIP {
                membership = decode("system", &value)?;
            }
            continue;
        }
        match tables.last_mut() {
            Some((name, rows)) if name == table.name() => rows.push((key, value)),
            _ => tables.push((table.name().to_string(), vec![(key, value)])),
        }
    }
    let meta = SnapshotMeta {
        last_log_id: last_applied,
        last_membership: membership.clone(),
    };
    let image = SnapshotImage {
        last_applied,
        membership,
        tables,
    };
    Ok(Snapshot {
        meta,
        snapshot: encode(&image),
    })
}

/// Decodes snapshot bytes into rows (System rows included) after checking them against `meta`.
fn snapshot_rows(meta: &SnapshotMeta, data: &[u8]) -> io::Result<Vec<Row>> {
    let image: SnapshotImage = decode("snapshot", data)?;
    if image.last_applied != meta.last_log_id || image.membership != meta.last_membership {
        return Err(io_invalid(format!(
            "snapshot data (last applied {:?}) does not match its metadata ({meta})",
            image.last_applied
        )));
    }
    let mut rows = Vec::new();
    for (name, table_rows) in image.tables {
        let table = Table::ALL
            .iter()
            .copied()
            .find(|t| t.name() == name && *t != Table::System)
            .ok_or_else(|| io_invalid(format!("snapshot names an unknown table {name:?}")))?;
        rows.extend(table_rows.into_iter().map(|(k, v)| (table, k, v)));
    }
    if let Some(last) = &image.last_applied {
        rows.push((Table::System, SYSTEM_LAST_APPLIED.to_vec(), encode(last)));
    }
    rows.push((
        Table::System,
        SYSTEM_MEMBERSHIP.to_vec(),
        encode(&image.membership),
    ));
    Ok(rows)
}

fn store_current(slot: &Mutex<Option<Snapshot>>, snap: Snapshot) {
    let mut cur = slot.lock().unwrap_or_else(|e| e.into_inner());
    // A snapshot installed meanwhile may be newer than the one just built; keep the newest.
    if cur
        .as_ref()
        .is_none_or(|c| c.meta.last_log_id <= snap.meta.last_log_id)
    {
        *cur = Some(snap);
    }
}

impl MetaStateMachine {
    pub fn new(backend: Arc<dyn StateBackend>) -> Self {
        MetaStateMachine {
            backend,
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// Read access to the committed state, usable while openraft owns this state machine.
    pub fn reader(&self) -> StateReader {
        StateReader {
            backend: self.backend.clone(),
        }
    }
}

impl StateReader {
    /// Answers `query` against the last committed batch.
    pub async fn query(&self, query: Query) -> io::Result<Result<QueryReply, NsError>> {
        self.with_view(move |kv| bucketfs_meta_state::query(kv, &query).map_err(meta_err))
            .await?
    }

    /// The last applied log id and membership, as committed.
    pub async fn applied_state(&self) -> io::Result<(Option<LogId>, StoredMembership)> {
        self.with_view(read_applied).await?
    }

    /// Runs `f` on a consistent view of the committed state (on the blocking pool for disk
    /// engines). Keep `f` short: the memory engine holds its lock meanwhile.
    pub async fn with_view<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn KvRead) -> T + Send + 'static,
    {
        call_backend(&self.backend, self.backend.blocking(), move |b| {
            let view = b.read_view()?;
            Ok(f(&*view))
        })
        .await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for MetaSnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let snap = call_backend(&self.backend, self.backend.blocking(), |b| {
            build_snapshot(&**b)
        })
        .await?;
        store_current(&self.current, snap.clone());
        Ok(snap)
    }
}

impl RaftStateMachine<TypeConfig> for MetaStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = MetaSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        self.reader().applied_state().await
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let batch: Vec<EntryResponder<TypeConfig>> = entries.try_collect().await?;
        if batch.is_empty() {
            return Ok(());
        }
        let (entries, responders): (Vec<Entry>, Vec<_>) = batch.into_iter().unzip();
        let results = call_backend(&self.backend, self.backend.blocking(), move |b| {
            apply_batch(&**b, &entries)
        })
        .await?;
        for (responder, result) in responders.into_iter().zip(results) {
            if let Some(r) = responder {
                r.send(result);
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        Some(self.get_snapshot_builder().await)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetaSnapshotBuilder {
            backend: self.backend.clone(),
            current: self.current.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let rows = snapshot_rows(meta, &snapshot)?;
        call_backend(&self.backend, self.backend.blocking(), move |b| {
            b.replace_all(rows)
        })
        .await?;
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *cur = Some(Snapshot {
            meta: meta.clone(),
            snapshot,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }
}
