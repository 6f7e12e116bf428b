//! The storage seam: an ordered key-value map per [`Table`], read through [`KvRead`], changed
//! only by applying a [`WriteSet`] atomically. [`Txn`] layers a transaction's own writes
//! over a read view, so each proposal in a batch sees the effects of the ones before it.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::error::MetaError;

/// Every table the state machine keeps. Engines map each to a column family or a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Counters and other singletons of the state machine.
    Meta,
    /// File systems by id, and their names.
    Fs,
    /// `(fs, ino)` → inode.
    Inodes,
    /// `(fs, parent, name)` → entry (inode id and cookie).
    Dirents,
    /// `(fs, parent, cookie)` → name, for READDIR in cookie order.
    DirCookies,
    /// `(client, seq)` → stored reply, for exactly-once application.
    Requests,
    /// NFS client records.
    Clients,
    /// NFS open state.
    Opens,
    /// NFS byte-range locks.
    Locks,
    /// Export jobs waiting for a sync worker.
    SyncQueue,
    /// Reserved for the Raft adapter (last applied log id, membership); the namespace
    /// rules never touch it.
    System,
}

impl Table {
    pub const ALL: [Table; 11] = [
        Table::Meta,
        Table::Fs,
        Table::Inodes,
        Table::Dirents,
        Table::DirCookies,
        Table::Requests,
        Table::Clients,
        Table::Opens,
        Table::Locks,
        Table::SyncQueue,
        Table::System,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Fs => "fs",
            Table::Inodes => "inodes",
            Table::Dirents => "dirents",
            Table::DirCookies => "dir_cookies",
            Table::Requests => "requests",
            Table::Clients => "clients",
            Table::Opens => "opens",
            Table::Locks => "locks",
            Table::SyncQueue => "sync_queue",
            Table::System => "system",
        }
    }
}

pub type Key = Vec<u8>;
pub type Value = Vec<u8>;

/// A consistent read view of all tables.
pub trait KvRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Value>, MetaError>;

    /// Up to `limit` pairs with `start <= key < end` (no upper bound when `end` is `None`),
    /// in key order.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Key, Value)>, MetaError>;
}

/// Writes to apply atomically; `None` deletes. Ordered so that every engine applies them
/// the same way.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteSet {
    pub writes: BTreeMap<(Table, Key), Option<Value>>,
}

impl WriteSet {
    pub fn put(&mut self, table: Table, key: Key, value: Value) {
        self.writes.insert((table, key), Some(value));
    }

    pub fn delete(&mut self, table: Table, key: Key) {
        self.writes.insert((table, key), None);
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }
}

/// A transaction: reads see `base` overlaid with the transaction's own writes.
pub struct Txn<'a, R: KvRead + ?Sized> {
    base: &'a R,
    writes: WriteSet,
}

impl<'a, R: KvRead + ?Sized> Txn<'a, R> {
    pub fn new(base: &'a R) -> Self {
        Txn {
            base,
            writes: WriteSet::default(),
        }
    }

    pub fn put(&mut self, table: Table, key: Key, value: Value) {
        self.writes.put(table, key, value);
    }

    pub fn delete(&mut self, table: Table, key: Key) {
        self.writes.delete(table, key);
    }

    pub fn into_writes(self) -> WriteSet {
        self.writes
    }

    /// The writes so far, for callers that stage several transactions.
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }
}

impl<R: KvRead + ?Sized> KvRead for Txn<'_, R> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Value>, MetaError> {
        match self.writes.writes.get(&(table, key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(table, key),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Key, Value)>, MetaError> {
        // Merge the base's rows with our overlay. Deleted rows in the overlay can hide base
        // rows, so keep asking the base for more until `limit` survivors or the end.
        let lower = Bound::Included((table, start.to_vec()));
        let upper = match end {
            Some(e) => Bound::Excluded((table, e.to_vec())),
            None => Bound::Excluded((next_table_bound(table), Vec::new())),
        };
        let overlay: Vec<(&Key, &Option<Value>)> = self
            .writes
            .writes
            .range((lower, upper))
            .map(|((_, k), v)| (k, v))
            .collect();
        let mut out: BTreeMap<Key, Value> = BTreeMap::new();
        let mut cursor = start.to_vec();
        loop {
            let batch = self.base.scan(table, &cursor, end, limit.max(16))?;
            let exhausted = batch.len() < limit.max(16);
            let last = batch.last().map(|(k, _)| k.clone());
            for (k, v) in batch {
                out.insert(k, v);
            }
            for (k, v) in &overlay {
                if last.as_ref().is_none_or(|l| *k <= l) || exhausted {
                    match v {
                        Some(v) => out.insert((*k).clone(), v.clone()),
                        None => out.remove(*k),
                    };
                }
            }
            if out.len() >= limit || exhausted {
                break;
            }
            match last {
                Some(mut l) => {
                    l.push(0);
                    cursor = l;
                }
                None => break,
            }
        }
        // Overlay rows beyond the base's last row are only added once the base is exhausted;
        // if the base stopped early, rows past its last key were already excluded above.
        Ok(out.into_iter().take(limit).collect())
    }
}

fn next_table_bound(table: Table) -> Table {
    // BTreeMap ranges need an exclusive upper bound past every key of `table`: the next
    // table in order works, and System (the last) has nothing after it, so scanning past
    // it is handled by the Unbounded arm in the caller's use.
    let i = Table::ALL.iter().position(|t| *t == table).unwrap_or(0);
    Table::ALL.get(i + 1).copied().unwrap_or(Table::System)
}

/// A plain in-memory table set, for tests and as the simplest engine.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemKv {
    pub rows: BTreeMap<(Table, Key), Value>,
}

impl MemKv {
    pub fn apply(&mut self, writes: WriteSet) {
        for ((t, k), v) in writes.writes {
            match v {
                Some(v) => self.rows.insert((t, k), v),
                None => self.rows.remove(&(t, k)),
            };
        }
    }
}

impl KvRead for MemKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Value>, MetaError> {
        Ok(self.rows.get(&(table, key.to_vec())).cloned())
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Key, Value)>, MetaError> {
        Ok(self
            .rows
            .range((table, start.to_vec())..)
            .take_while(|((t, k), _)| *t == table && end.is_none_or(|e| k.as_slice() < e))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}
