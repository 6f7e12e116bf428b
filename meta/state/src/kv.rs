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
        if limit == 0 || end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        // The overlay's rows in range, deletions included: a deletion hides the base row
        // with the same key. `take_while` on the table instead of a computed upper bound
        // keeps the last table (which has no successor) as easy as the others.
        let overlay: Vec<(&[u8], Option<&Value>)> = self
            .writes
            .writes
            .range((Bound::Included((table, start.to_vec())), Bound::Unbounded))
            .take_while(|((t, k), _)| *t == table && end.is_none_or(|e| k.as_slice() < e))
            .map(|((_, k), v)| (k.as_slice(), v.as_ref()))
            .collect();
        // Each deletion can hide at most one base row, so asking the base for that many
        // extra rows usually finishes in one round; the loop covers the rest.
        let deletions = overlay.iter().filter(|(_, v)| v.is_none()).count();
        let batch = limit.saturating_add(deletions);
        let mut base = BaseCursor {
            base: self.base,
            table,
            next: start.to_vec(),
            end,
            batch,
            buffered: Vec::new().into_iter().peekable(),
            exhausted: false,
        };
        let mut overlay = overlay.into_iter().peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let base_key = base.peek_key()?;
            let over_key = overlay.peek().map(|(k, _)| *k);
            let take_overlay = match (base_key.as_deref(), over_key) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(b), Some(o)) => {
                    if b == o {
                        // The overlay shadows this base row, whatever it holds.
                        base.skip();
                    }
                    o <= b
                }
            };
            if take_overlay {
                let (k, v) = overlay.next().expect("peeked");
                if let Some(v) = v {
                    out.push((k.to_vec(), v.clone()));
                }
            } else {
                out.push(base.take().expect("peeked"));
            }
        }
        Ok(out)
    }
}

/// Pages through the base in key order, fetching `batch` rows at a time.
struct BaseCursor<'a, 'e, R: KvRead + ?Sized> {
    base: &'a R,
    table: Table,
    /// Smallest key not fetched yet.
    next: Key,
    end: Option<&'e [u8]>,
    batch: usize,
    buffered: std::iter::Peekable<std::vec::IntoIter<(Key, Value)>>,
    exhausted: bool,
}

impl<R: KvRead + ?Sized> BaseCursor<'_, '_, R> {
    fn peek_key(&mut self) -> Result<Option<Key>, MetaError> {
        if self.buffered.peek().is_none() && !self.exhausted {
            let rows = self
                .base
                .scan(self.table, &self.next, self.end, self.batch)?;
            self.exhausted = rows.len() < self.batch;
            if let Some((last, _)) = rows.last() {
                // The smallest key greater than `last`.
                self.next = last.clone();
                self.next.push(0);
            }
            self.buffered = rows.into_iter().peekable();
        }
        Ok(self.buffered.peek().map(|(k, _)| k.clone()))
    }

    fn skip(&mut self) {
        self.buffered.next();
    }

    fn take(&mut self) -> Option<(Key, Value)> {
        self.buffered.next()
    }
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
