//! The storage seam: the two narrow traits a storage engine implements so that the generic-free
//! openraft adapters ([`crate::MetaLogStore`], [`crate::MetaStateMachine`]) can run on it.
//! RocksDB (`bucketfs-meta-rocks`) and memory ([`crate::mem`]) implement them; nothing else
//! should.
//!
//! Both traits are synchronous and byte-level: encoding openraft's types is the adapters' job,
//! so an engine only stores opaque bytes under integer or `(Table, key)` keys.
//!
//! Blocking: an engine whose calls can wait on a disk returns `true` from `blocking()`; the
//! adapters then run its calls on tokio's blocking pool so a slow fsync never stalls the async
//! runtime. In-memory engines return `false` and are called inline, with no thread and no
//! `spawn_blocking`, which keeps the simulator single-threaded and deterministic.
//!
//! Durability contract (what "durable" means below): once the call returns `Ok`, the data
//! survives a crash of the process or the machine. Raft's safety depends on it for the vote
//! (never vote twice in a term) and for appended entries (never lose an acknowledged entry).

use std::io;

use bucketfs_meta_state::kv::{Key, KvRead, Table, Value, WriteSet};

/// Durable storage of the Raft log and of the Raft node's own small records.
///
/// Entries are stored as `(index, bytes)`; indexes of stored entries are contiguous.
pub trait LogBackend: Send + Sync + 'static {
    /// True when calls may block on disk I/O (see the module docs).
    fn blocking(&self) -> bool;

    fn read_vote(&self) -> io::Result<Option<Vec<u8>>>;

    /// Stores the vote durably before returning.
    fn save_vote(&self, vote: &[u8]) -> io::Result<()>;

    fn read_committed(&self) -> io::Result<Option<Vec<u8>>>;

    /// Records the committed log id. Need not be durable: openraft recomputes the committed
    /// index when it is lost; durability only saves re-applying entries after a restart.
    fn save_committed(&self, committed: Option<&[u8]>) -> io::Result<()>;

    /// Appends (or overwrites) entries durably before returning; all or none of them.
    fn append(&self, entries: &[(u64, Vec<u8>)]) -> io::Result<()>;

    /// Deletes every entry with index `>= from`.
    fn truncate_from(&self, from: u64) -> io::Result<()>;

    /// Deletes every entry with index `<= upto` and records `last_purged` (the encoded log id
    /// of entry `upto`) in the same atomic write.
    fn purge_upto(&self, upto: u64, last_purged: &[u8]) -> io::Result<()>;

    /// Entries with `start <= index < end`, in index order.
    fn read_range(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>>;

    /// The entry with the greatest index, if any entry is stored.
    fn last_entry(&self) -> io::Result<Option<(u64, Vec<u8>)>>;

    /// The log id recorded by the last [`purge_upto`](Self::purge_upto), if any.
    fn last_purged(&self) -> io::Result<Option<Vec<u8>>>;
}

/// One row of the state machine, as exported for a snapshot.
pub type Row = (Table, Key, Value);

/// Durable storage of the namespace state machine: one ordered map per [`Table`].
pub trait StateBackend: Send + Sync + 'static {
    /// True when calls may block on disk I/O (see the module docs).
    fn blocking(&self) -> bool;

    /// A consistent view of the last committed write set. While the view lives, other calls on
    /// this backend may wait for it (the memory engine holds a lock), so drop it before writing.
    fn read_view(&self) -> io::Result<Box<dyn KvRead + '_>>;

    /// Applies `writes` atomically and durably before returning.
    fn write(&self, writes: WriteSet) -> io::Result<()>;

    /// Every row of every table, from one consistent view, in `(table, key)` order.
    fn export(&self) -> io::Result<Vec<Row>>;

    /// Replaces every row of every table by `rows`, atomically and durably.
    fn replace_all(&self, rows: Vec<Row>) -> io::Result<()>;
}
