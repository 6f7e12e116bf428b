//! In-memory storage engine with an explicit crash model, for the simulator and tests.
//!
//! A [`MemDisk`] is the simulated disk of one node. It outlives the node's process: the
//! simulator keeps the handle, kills the node, calls [`MemDisk::crash`], and starts a new node
//! on the same disk through fresh [`MemLogBackend`] / [`MemStateBackend`] handles.
//!
//! Fault model, honestly:
//! - Every write first lands in the *live* image (what the running process reads) and in a
//!   queue of unsynced writes. An fsync point makes the whole queue durable, in order, like an
//!   fsync of a write-ahead log.
//! - The fsync points are exactly the calls whose contract says "durable": `save_vote`,
//!   `append`, `truncate_from`, `purge_upto` (log) and `write`, `replace_all` (state). Only
//!   `save_committed` is lazy; it becomes durable with the next fsync point.
//! - [`MemDisk::crash`] throws away every unsynced write: the next process sees exactly the
//!   durable image. With the default [`SyncMode::Immediate`] the only thing a crash can lose is
//!   a committed index recorded after the last fsync point, which openraft tolerates.
//! - Writes are atomic: each call's write is applied whole or (if unsynced at a crash) not at
//!   all. Torn writes, bit rot and lying disks are not modelled by default, because the
//!   simulator runs one thread and calls return synchronously, so a crash can only fall
//!   between calls.
//! - [`SyncMode::Manual`] turns fsync points into no-ops (only [`MemDisk::sync`] persists):
//!   a disk that acknowledges fsync without persisting. Raft is NOT safe on such a disk
//!   (double votes, lost acknowledged entries); the mode exists to check that the simulator's
//!   safety checker notices.
//! - A crash also fences the dead process: handles opened before the crash fail every later
//!   call, so a task of the killed node that is still scheduled cannot write to the disk the
//!   restarted node uses.
//!
//! Everything runs inline under one mutex: no threads, no `spawn_blocking`, deterministic.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bucketfs_meta_state::MetaError;
use bucketfs_meta_state::kv::{Key, KvRead, MemKv, Table, Value, WriteSet};

use crate::backend::{LogBackend, Row, StateBackend};
use crate::log_store::MetaLogStore;
use crate::state_machine::MetaStateMachine;

/// When fsync points persist data (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Every fsync point makes all earlier writes durable before the call returns.
    #[default]
    Immediate,
    /// Nothing is durable until [`MemDisk::sync`]: a disk that lies about fsync.
    Manual,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Image {
    vote: Option<Vec<u8>>,
    committed: Option<Vec<u8>>,
    last_purged: Option<Vec<u8>>,
    log: BTreeMap<u64, Vec<u8>>,
    kv: MemKv,
}

#[derive(Debug, Clone)]
enum Op {
    Vote(Vec<u8>),
    Committed(Option<Vec<u8>>),
    Append(Vec<(u64, Vec<u8>)>),
    TruncateFrom(u64),
    Purge { upto: u64, last_purged: Vec<u8> },
    Write(WriteSet),
    ReplaceAll(Vec<Row>),
}

impl Image {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Vote(v) => self.vote = Some(v.clone()),
            Op::Committed(c) => self.committed = c.clone(),
            Op::Append(entries) => {
                for (i, e) in entries {
                    self.log.insert(*i, e.clone());
                }
            }
            Op::TruncateFrom(from) => {
                self.log.split_off(from);
            }
            Op::Purge { upto, last_purged } => {
                self.log = self.log.split_off(&(upto.saturating_add(1)));
                self.last_purged = Some(last_purged.clone());
            }
            Op::Write(ws) => self.kv.apply(ws.clone()),
            Op::ReplaceAll(rows) => {
                self.kv.rows = rows
                    .iter()
                    .map(|(t, k, v)| ((*t, k.clone()), v.clone()))
                    .collect();
            }
        }
    }
}

#[derive(Debug, Default)]
struct DiskState {
    live: Image,
    durable: Image,
    unsynced: Vec<Op>,
    mode: SyncMode,
    /// Bumped by every crash; handles from an older generation belong to a dead process.
    generation: u64,
}

impl DiskState {
    fn sync(&mut self) {
        for op in self.unsynced.drain(..) {
            self.durable.apply(&op);
        }
    }
}

/// The simulated disk of one node; cloning shares it.
#[derive(Clone, Default)]
pub struct MemDisk {
    state: Arc<Mutex<DiskState>>,
}

impl fmt::Debug for MemDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MemDisk")
            .field("generation", &s.generation)
            .field("unsynced", &s.unsynced.len())
            .field("log_entries", &s.live.log.len())
            .field("rows", &s.live.kv.rows.len())
            .finish()
    }
}

impl MemDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Log store and state machine of a (re)started node on this disk.
    pub fn open(&self) -> (MetaLogStore, MetaStateMachine) {
        (
            MetaLogStore::new(Arc::new(MemLogBackend::new(self))),
            MetaStateMachine::new(Arc::new(MemStateBackend::new(self))),
        )
    }

    /// Simulates a power loss: drops every unsynced write and fences every handle opened so
    /// far. Reopen with [`MemDisk::open`] or new backends.
    pub fn crash(&self) {
        let mut s = self.lock();
        s.unsynced.clear();
        s.live = s.durable.clone();
        s.generation += 1;
    }

    /// Makes every write so far durable.
    pub fn sync(&self) {
        self.lock().sync();
    }

    pub fn set_sync_mode(&self, mode: SyncMode) {
        self.lock().mode = mode;
    }

    /// Writes a crash would lose right now.
    pub fn unsynced_writes(&self) -> usize {
        self.lock().unsynced.len()
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        // A panic elsewhere while holding the lock leaves the images consistent: every
        // mutation below is a single in-memory step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A handle on a [`MemDisk`] bound to the process that opened it.
#[derive(Clone)]
struct Handle {
    disk: MemDisk,
    generation: u64,
}

impl Handle {
    fn new(disk: &MemDisk) -> Self {
        Handle {
            disk: disk.clone(),
            generation: disk.lock().generation,
        }
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, DiskState>> {
        let s = self.disk.lock();
        if s.generation != self.generation {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "this storage handle was opened before MemDisk::crash(); its process is dead",
            ));
        }
        Ok(s)
    }

    fn write(&self, op: Op, fsync: bool) -> io::Result<()> {
        let mut s = self.lock()?;
        s.live.apply(&op);
        s.unsynced.push(op);
        if fsync && s.mode == SyncMode::Immediate {
            s.sync();
        }
        Ok(())
    }
}

/// Raft log on a [`MemDisk`].
#[derive(Clone)]
pub struct MemLogBackend {
    handle: Handle,
}

impl MemLogBackend {
    pub fn new(disk: &MemDisk) -> Self {
        MemLogBackend {
            handle: Handle::new(disk),
        }
    }
}

impl LogBackend for MemLogBackend {
    fn blocking(&self) -> bool {
        false
    }

    fn read_vote(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.handle.lock()?.live.vote.clone())
    }

    fn save_vote(&self, vote: &[u8]) -> io::Result<()> {
        self.handle.write(Op::Vote(vote.to_vec()), true)
    }

    fn read_committed(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.handle.lock()?.live.committed.clone())
    }

    fn save_committed(&self, committed: Option<&[u8]>) -> io::Result<()> {
        self.handle
            .write(Op::Committed(committed.map(<[u8]>::to_vec)), false)
    }

    fn append(&self, entries: &[(u64, Vec<u8>)]) -> io::Result<()> {
        self.handle.write(Op::Append(entries.to_vec()), true)
    }

    fn truncate_from(&self, from: u64) -> io::Result<()> {
        self.handle.write(Op::TruncateFrom(from), true)
    }

    fn purge_upto(&self, upto: u64, last_purged: &[u8]) -> io::Result<()> {
        self.handle.write(
            Op::Purge {
                upto,
                last_purged: last_purged.to_vec(),
            },
            true,
        )
    }

    fn read_range(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        Ok(self
            .handle
            .lock()?
            .live
            .log
            .range(start..end)
            .map(|(i, e)| (*i, e.clone()))
            .collect())
    }

    fn last_entry(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        Ok(self
            .handle
            .lock()?
            .live
            .log
            .last_key_value()
            .map(|(i, e)| (*i, e.clone())))
    }

    fn last_purged(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.handle.lock()?.live.last_purged.clone())
    }
}

/// Namespace state on a [`MemDisk`].
#[derive(Clone)]
pub struct MemStateBackend {
    handle: Handle,
}

impl MemStateBackend {
    pub fn new(disk: &MemDisk) -> Self {
        MemStateBackend {
            handle: Handle::new(disk),
        }
    }
}

/// A read view holding the disk lock, so it sees one committed write set.
struct MemView<'a> {
    state: MutexGuard<'a, DiskState>,
}

impl KvRead for MemView<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Value>, MetaError> {
        self.state.live.kv.get(table, key)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Key, Value)>, MetaError> {
        self.state.live.kv.scan(table, start, end, limit)
    }
}

impl StateBackend for MemStateBackend {
    fn blocking(&self) -> bool {
        false
    }

    fn read_view(&self) -> io::Result<Box<dyn KvRead + '_>> {
        Ok(Box::new(MemView {
            state: self.handle.lock()?,
        }))
    }

    fn write(&self, writes: WriteSet) -> io::Result<()> {
        self.handle.write(Op::Write(writes), true)
    }

    fn export(&self) -> io::Result<Vec<Row>> {
        Ok(self
            .handle
            .lock()?
            .live
            .kv
            .rows
            .iter()
            .map(|((t, k), v)| (*t, k.clone(), v.clone()))
            .collect())
    }

    fn replace_all(&self, rows: Vec<Row>) -> io::Result<()> {
        self.handle.write(Op::ReplaceAll(rows), true)
    }
}
