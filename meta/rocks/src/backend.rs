//! [`RocksBackend`]: one RocksDB per metadata node, serving both the Raft log
//! ([`LogBackend`]) and the namespace state ([`StateBackend`]).
//!
//! Column families: `log` (entries keyed by big-endian index, so byte order is index order),
//! `raft` (vote, committed, last purged, identity) and one per
//! [`bucketfs_meta_state::kv::Table`], named by `Table::name()`.
//!
//! Durability: every write the seam calls durable (vote, append, truncate, purge, state
//! batches, snapshot install) is one `WriteBatch` written with `sync = true`, so it is in the
//! fsynced WAL before the call returns and atomic across column families. Only the committed
//! index is written without sync; the WAL is sequential, so it becomes durable with the next
//! synced write anyway.
//!
//! Every call may block on the disk; `blocking()` is true and the adapters of
//! `bucketfs-meta-store` run the calls on tokio's blocking pool.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bucketfs_meta_state::MetaError;
use bucketfs_meta_state::kv::{Key, KvRead, Table, Value, WriteSet};
use bucketfs_meta_store::{LogBackend, MetaLogStore, MetaStateMachine, Row, StateBackend};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, Direction, ErrorKind, IteratorMode, Options,
    SnapshotWithThreadMode, WriteBatch, WriteOptions,
};

use crate::error::OpenError;

/// The on-disk format this build reads and writes. Bump it (and add a migration) whenever
/// keys, column families or encodings change incompatibly.
pub const FORMAT_VERSION: u32 = 1;

pub const CF_LOG: &str = "log";
pub const CF_RAFT: &str = "raft";

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_FORMAT_VERSION: &[u8] = b"format_version";
const KEY_CLUSTER_ID: &[u8] = b"cluster_id";
const KEY_NODE_ID: &[u8] = b"node_id";

/// Who a data directory belongs to. Recorded when the store is created (with
/// [`FORMAT_VERSION`]) and checked on every open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub cluster_id: String,
    pub node_id: u64,
}

/// The RocksDB store of one metadata node.
pub struct RocksBackend {
    db: DB,
    path: PathBuf,
    identity: NodeIdentity,
}

impl std::fmt::Debug for RocksBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksBackend")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn column_families() -> Vec<&'static str> {
    let mut cfs = vec![CF_LOG, CF_RAFT];
    cfs.extend(Table::ALL.iter().map(|t| t.name()));
    cfs
}

fn db_options() -> Options {
    let mut opts = Options::default();
    opts.set_paranoid_checks(true);
    opts
}

fn classify(path: &Path, e: rocksdb::Error) -> OpenError {
    let message = e.to_string();
    if message.contains("lock") || message.contains("LOCK") {
        OpenError::Locked {
            path: path.to_path_buf(),
            message,
        }
    } else if e.kind() == ErrorKind::IOError && !message.contains("MANIFEST") {
        OpenError::Io {
            path: path.to_path_buf(),
            source: io::Error::other(message),
        }
    } else {
        OpenError::Corrupt {
            path: path.to_path_buf(),
            message,
        }
    }
}

fn rocks_io(e: rocksdb::Error) -> io::Error {
    io::Error::other(format!("rocksdb: {e}"))
}

fn synced() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn decode_index(key: &[u8]) -> io::Result<u64> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("log key of {} bytes, expected 8", key.len()),
        )
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl RocksBackend {
    /// Opens the store at `path`, checking that it belongs to `expected`. With
    /// `create_if_missing`, an absent or empty directory gets a new store recording `expected`;
    /// anything else that is not this node's intact store is refused (see [`OpenError`]).
    pub fn open(
        path: &Path,
        expected: &NodeIdentity,
        create_if_missing: bool,
    ) -> Result<RocksBackend, OpenError> {
        let io_err = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let has_current = path.join("CURRENT").try_exists().map_err(io_err)?;
        if !has_current {
            let empty = match fs::read_dir(path) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                Err(e) => return Err(io_err(e)),
            };
            if !empty {
                return Err(OpenError::NotAStore {
                    path: path.to_path_buf(),
                });
            }
            if !create_if_missing {
                return Err(OpenError::Missing {
                    path: path.to_path_buf(),
                });
            }
            return Self::create(path, expected);
        }

        let opts = db_options();
        let existing = DB::list_cf(&opts, path).map_err(|e| classify(path, e))?;
        let wanted = column_families();
        if let Some(name) = wanted.iter().find(|w| !existing.iter().any(|e| e == *w)) {
            // `list_cf` tolerates some damage (a garbage MANIFEST lists only `default`): let
            // RocksDB open what it lists, read-only, so real corruption is reported as such.
            DB::open_cf_for_read_only(&opts, path, &existing, false)
                .map_err(|e| classify(path, e))?;
            return Err(OpenError::MissingColumnFamily {
                path: path.to_path_buf(),
                name: name.to_string(),
            });
        }
        let unknown: Vec<String> = existing
            .iter()
            .filter(|e| e.as_str() != "default" && !wanted.contains(&e.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(OpenError::UnknownColumnFamilies {
                path: path.to_path_buf(),
                names: unknown,
            });
        }
        let db =
            DB::open_cf_descriptors(&opts, path, descriptors()).map_err(|e| classify(path, e))?;
        let identity = check_identity(&db, path, expected)?;
        Ok(RocksBackend {
            db,
            path: path.to_path_buf(),
            identity,
        })
    }

    fn create(path: &Path, identity: &NodeIdentity) -> Result<RocksBackend, OpenError> {
        fs::create_dir_all(path).map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut opts = db_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_error_if_exists(true);
        let db =
            DB::open_cf_descriptors(&opts, path, descriptors()).map_err(|e| classify(path, e))?;
        let raft = db
            .cf_handle(CF_RAFT)
            .expect("created with every column family");
        let mut batch = WriteBatch::default();
        batch.put_cf(raft, KEY_FORMAT_VERSION, FORMAT_VERSION.to_be_bytes());
        batch.put_cf(raft, KEY_CLUSTER_ID, identity.cluster_id.as_bytes());
        batch.put_cf(raft, KEY_NODE_ID, identity.node_id.to_be_bytes());
        db.write_opt(batch, &synced()).map_err(|e| OpenError::Io {
            path: path.to_path_buf(),
            source: rocks_io(e),
        })?;
        tracing::info!(path = %path.display(), cluster = %identity.cluster_id,
            node = identity.node_id, "created metadata store");
        Ok(RocksBackend {
            db,
            path: path.to_path_buf(),
            identity: identity.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The openraft log store and state machine of this node, sharing this one database.
    pub fn into_stores(self) -> (MetaLogStore, MetaStateMachine) {
        let this = std::sync::Arc::new(self);
        (MetaLogStore::new(this.clone()), MetaStateMachine::new(this))
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        // `open` refuses a store lacking any of our column families.
        self.db
            .cf_handle(name)
            .expect("the store was opened with every column family")
    }

    fn raft_get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(CF_RAFT), key).map_err(rocks_io)
    }

    fn write_synced(&self, batch: WriteBatch) -> io::Result<()> {
        self.db.write_opt(batch, &synced()).map_err(rocks_io)
    }
}

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    column_families()
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()))
        .collect()
}

fn check_identity(
    db: &DB,
    path: &Path,
    expected: &NodeIdentity,
) -> Result<NodeIdentity, OpenError> {
    let raft = db
        .cf_handle(CF_RAFT)
        .expect("opened with every column family");
    let get = |key: &[u8]| {
        db.get_cf(raft, key).map_err(|e| OpenError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    };
    let missing = |what| OpenError::MissingIdentity {
        path: path.to_path_buf(),
        missing: what,
    };
    let bad = |what: &str| OpenError::Corrupt {
        path: path.to_path_buf(),
        message: format!("the identity record's {what} is malformed"),
    };

    let version = get(KEY_FORMAT_VERSION)?.ok_or_else(|| missing("format version"))?;
    let version = u32::from_be_bytes(
        version
            .as_slice()
            .try_into()
            .map_err(|_| bad("format version"))?,
    );
    if version != FORMAT_VERSION {
        return Err(OpenError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let cluster = get(KEY_CLUSTER_ID)?.ok_or_else(|| missing("cluster id"))?;
    let cluster = String::from_utf8(cluster).map_err(|_| bad("cluster id"))?;
    let node = get(KEY_NODE_ID)?.ok_or_else(|| missing("node id"))?;
    let node = u64::from_be_bytes(node.as_slice().try_into().map_err(|_| bad("node id"))?);

    if cluster != expected.cluster_id {
        return Err(OpenError::WrongCluster {
            path: path.to_path_buf(),
            found: cluster,
            expected: expected.cluster_id.clone(),
        });
    }
    if node != expected.node_id {
        return Err(OpenError::WrongNode {
            path: path.to_path_buf(),
            found: node,
            expected: expected.node_id,
        });
    }
    Ok(NodeIdentity {
        cluster_id: cluster,
        node_id: node,
    })
}

impl LogBackend for RocksBackend {
    fn blocking(&self) -> bool {
        true
    }

    fn read_vote(&self) -> io::Result<Option<Vec<u8>>> {
        self.raft_get(KEY_VOTE)
    }

    fn save_vote(&self, vote: &[u8]) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_RAFT), KEY_VOTE, vote);
        self.write_synced(batch)
    }

    fn read_committed(&self) -> io::Result<Option<Vec<u8>>> {
        self.raft_get(KEY_COMMITTED)
    }

    fn save_committed(&self, committed: Option<&[u8]>) -> io::Result<()> {
        let cf = self.cf(CF_RAFT);
        match committed {
            Some(c) => self.db.put_cf(cf, KEY_COMMITTED, c),
            None => self.db.delete_cf(cf, KEY_COMMITTED),
        }
        .map_err(rocks_io)
    }

    fn append(&self, entries: &[(u64, Vec<u8>)]) -> io::Result<()> {
        let cf = self.cf(CF_LOG);
        let mut batch = WriteBatch::default();
        for (index, bytes) in entries {
            batch.put_cf(cf, index_key(*index), bytes);
        }
        self.write_synced(batch)
    }

    fn truncate_from(&self, from: u64) -> io::Result<()> {
        let cf = self.cf(CF_LOG);
        let mut batch = WriteBatch::default();
        // The range end is exclusive; index u64::MAX itself is never written by openraft
        // (indexes count entries), but delete it too so the range is truly open-ended.
        batch.delete_range_cf(cf, index_key(from), index_key(u64::MAX));
        batch.delete_cf(cf, index_key(u64::MAX));
        self.write_synced(batch)
    }

    fn purge_upto(&self, upto: u64, last_purged: &[u8]) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_RAFT), KEY_LAST_PURGED, last_purged);
        let log = self.cf(CF_LOG);
        batch.delete_range_cf(log, index_key(0), index_key(upto.saturating_add(1)));
        if upto == u64::MAX {
            batch.delete_cf(log, index_key(u64::MAX));
        }
        self.write_synced(batch)
    }

    fn read_range(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let start_key = index_key(start);
        let iter = self.db.iterator_cf(
            self.cf(CF_LOG),
            IteratorMode::From(&start_key, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(rocks_io)?;
            let index = decode_index(&k)?;
            if index >= end {
                break;
            }
            out.push((index, v.into_vec()));
        }
        Ok(out)
    }

    fn last_entry(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        match self
            .db
            .iterator_cf(self.cf(CF_LOG), IteratorMode::End)
            .next()
        {
            Some(item) => {
                let (k, v) = item.map_err(rocks_io)?;
                Ok(Some((decode_index(&k)?, v.into_vec())))
            }
            None => Ok(None),
        }
    }

    fn last_purged(&self) -> io::Result<Option<Vec<u8>>> {
        self.raft_get(KEY_LAST_PURGED)
    }
}

/// A read view over one RocksDB snapshot.
struct RocksView<'a> {
    backend: &'a RocksBackend,
    snap: SnapshotWithThreadMode<'a, DB>,
}

fn storage_err(e: rocksdb::Error) -> MetaError {
    MetaError::Storage(format!("rocksdb: {e}"))
}

impl KvRead for RocksView<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Value>, MetaError> {
        self.snap
            .get_cf(self.backend.cf(table.name()), key)
            .map_err(storage_err)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Key, Value)>, MetaError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let iter = self.snap.iterator_cf(
            self.backend.cf(table.name()),
            IteratorMode::From(start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(storage_err)?;
            if end.is_some_and(|e| &*k >= e) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

impl StateBackend for RocksBackend {
    fn blocking(&self) -> bool {
        true
    }

    fn read_view(&self) -> io::Result<Box<dyn KvRead + '_>> {
        Ok(Box::new(RocksView {
            backend: self,
            snap: self.db.snapshot(),
        }))
    }

    fn write(&self, writes: WriteSet) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        for ((table, key), value) in writes.writes {
            let cf = self.cf(table.name());
            match value {
                Some(v) => batch.put_cf(cf, key, v),
                None => batch.delete_cf(cf, key),
            }
        }
        self.write_synced(batch)
    }

    fn export(&self) -> io::Result<Vec<Row>> {
        let snap = self.db.snapshot();
        let mut rows = Vec::new();
        for table in Table::ALL {
            for item in snap.iterator_cf(self.cf(table.name()), IteratorMode::Start) {
                let (k, v) = item.map_err(rocks_io)?;
                rows.push((table, k.into_vec(), v.into_vec()));
            }
        }
        Ok(rows)
    }

    fn replace_all(&self, rows: Vec<Row>) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        // Keys are arbitrary byte strings, so no finite range covers them all: delete each
        // existing key, then put the new rows; in one batch a later put wins over a delete.
        let snap = self.db.snapshot();
        for table in Table::ALL {
            let cf = self.cf(table.name());
            for item in snap.iterator_cf(cf, IteratorMode::Start) {
                let (k, _) = item.map_err(rocks_io)?;
                batch.delete_cf(cf, k);
            }
        }
        drop(snap);
        for (table, key, value) in rows {
            batch.put_cf(self.cf(table.name()), key, value);
        }
        self.write_synced(batch)
    }
}
