//! [`BlockCache`]: the gateway's cache of file blocks on local disk.
//!
//! **Keys and consistency.** A clean block is keyed by (file system, inode, change counter, block
//! index) and is served only for that exact change counter. The gateway asks with the inode's
//! current change counter from meta, so a block cached before another gateway committed a new
//! version is simply never hit again and ages out of the LRU; that is how close-to-open holds
//! across gateways (DESIGN.md invariant 3) without any cross-gateway invalidation.
//!
//! **Never wrong data.** Every block file carries a header with its key, length and CRC32Cs
//! (see `format`). Every read verifies them; a mismatch or an I/O error drops the block and is
//! a miss, counted in [`CacheStats`]. A cache miss costs a ranged GET; wrong bytes would cost a
//! user's file.
//!
//! **Dirty data.** WRITE data not yet committed lives here too, per inode, in blocks addressed by
//! (file system, inode, block index) and tracked with the byte ranges actually known. Dirty
//! blocks are never evicted and have their own byte limit; a write that would pass it fails with
//! [`CacheError::DirtyLimit`] so the caller flushes first. After the gateway has made a snapshot
//! of the dirty data durable in S3 and meta, [`BlockCache::mark_clean`] turns the blocks that are
//! complete into clean blocks of the new change counter.
//!
//! A block's checksum covers the whole block, so each dirty write reads its block back to
//! recompute it: one block read per WRITE. The Linux client streams aligned `wsize` writes (up to
//! 1 MiB), which makes that one read per block; if small random writes turn out to matter,
//! per-4-KiB checksums kept in memory (dirty data never outlives the process) would remove it.
//!
//! **Crashes.** The cache is never the only copy of acknowledged data, so nothing here is synced
//! on the write path: a clean block lost or torn by a crash fails its checksum or is missing, and
//! is a miss. On startup ([`BlockCache::open`]) clean blocks whose header verifies are kept (their
//! data is verified on each read) and dirty files are deleted: a restarted gateway has a new NFS
//! write verifier, so clients resend every write they have not seen committed, and old dirty data
//! could only be stale.
//!
//! **Threads.** The API is synchronous and `Sync`; one mutex covers the index and the disk calls
//! made under it, so an eviction can never delete a file another call is reading. The gateway
//! calls it from `spawn_blocking` (see the `disk` module for why not async). Finer locking is a
//! later optimisation if the one lock shows up in profiles.
//!
//! **Determinism.** No clocks or randomness: LRU order is a logical counter bumped on each access,
//! and every map is ordered.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::disk::{DiskFile, LocalDisk};
use crate::format::{self, HEADER_LEN, Header, Kind, Name};
use crate::ranges::RangeSet;

/// Identifies one clean block: the `index`-th `block_size` bytes of inode `ino` of file system
/// `fs` as of change counter `change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockKey {
    pub fs: u64,
    pub ino: u64,
    pub change: u64,
    pub index: u64,
}

/// Sizing of a [`BlockCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes per block; the last block of a file may be shorter.
    pub block_size: u32,
    /// Bound on the data bytes of clean blocks; past it the least recently used are evicted.
    pub capacity_bytes: u64,
    /// Bound on the data bytes of dirty blocks, which are never evicted.
    pub dirty_limit_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            block_size: 1 << 20,
            capacity_bytes: 1 << 30,
            dirty_limit_bytes: 256 << 20,
        }
    }
}

impl CacheConfig {
    fn validate(&self) -> Result<(), CacheError> {
        if self.block_size == 0 {
            return Err(CacheError::Config("block_size must be positive"));
        }
        if self.capacity_bytes < u64::from(self.block_size) {
            return Err(CacheError::Config(
                "capacity_bytes must hold at least one block",
            ));
        }
        if self.dirty_limit_bytes < u64::from(self.block_size) {
            return Err(CacheError::Config(
                "dirty_limit_bytes must hold at least one block",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("invalid cache configuration: {0}")]
    Config(&'static str),
    #[error("a block of {len} bytes is empty or larger than the block size {block_size}")]
    BadBlockLength { len: usize, block_size: u32 },
    #[error("byte range starting at {offset} overflows a 64-bit offset")]
    RangeOverflow { offset: u64 },
    #[error("dirty data would grow to {needed} bytes, past the limit of {limit}: flush first")]
    DirtyLimit { needed: u64, limit: u64 },
    #[error(
        "dirty data of inode {ino} (fs {fs}) is based on change {dirty_base}, not {given}: \
         flush or discard it first"
    )]
    BaseMismatch {
        fs: u64,
        ino: u64,
        dirty_base: u64,
        given: u64,
    },
    #[error("bytes {start}..{end} of inode {ino} (fs {fs}) are not held as dirty data")]
    NotDirty {
        fs: u64,
        ino: u64,
        start: u64,
        end: u64,
    },
    /// The only copy of uncommitted writes failed verification. The caller must treat the
    /// inode's uncommitted writes as lost: discard them and change its write verifier so that
    /// clients resend.
    #[error("dirty block {index} of inode {ino} (fs {fs}) failed verification")]
    DirtyCorrupt { fs: u64, ino: u64, index: u64 },
    #[error("local cache disk: {0}")]
    Io(#[from] io::Error),
}

/// Counters and gauges of a [`BlockCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    /// Blocks, clean or dirty, whose header or data failed verification.
    pub checksum_failures: u64,
    /// Disk errors that a cache operation absorbed (turned into a miss or a dropped block).
    pub io_errors: u64,
    pub clean_blocks: u64,
    /// Data bytes of clean blocks (headers not counted).
    pub clean_bytes: u64,
    pub dirty_blocks: u64,
    /// Data bytes of dirty blocks (headers not counted).
    pub dirty_bytes: u64,
    /// Clean blocks the startup scan kept.
    pub scan_kept: u64,
    /// Block files the startup scan deleted as corrupt, torn or unreadable.
    pub scan_dropped: u64,
    /// Dirty block files from before a restart that the startup scan deleted.
    pub dirty_discarded: u64,
}

/// What [`BlockCache::dirty_ranges`] reports for an inode: the bytes written since the last
/// [`BlockCache::mark_clean`], on top of change `base_change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtySnapshot {
    /// The change counter the dirty data was written over.
    pub base_change: u64,
    /// Identifies this snapshot; pass it to [`BlockCache::mark_clean`] so that writes made after
    /// it stay dirty.
    pub seq: u64,
    /// The written byte ranges of the file, sorted and coalesced.
    pub ranges: Vec<Range<u64>>,
}

#[derive(Debug, Clone, Copy)]
struct CleanEntry {
    len: u32,
    tick: u64,
}

#[derive(Debug)]
struct DirtyBlock {
    /// Data bytes in the file: the block's known prefix, with zeros in unknown gaps.
    len: u32,
    /// Bytes of the block whose content is known: written by the client, or seeded from the
    /// clean block of the base change.
    valid: RangeSet,
    /// Bytes the client wrote; what a flush must upload.
    written: RangeSet,
    /// The write sequence number of the last write to this block.
    seq: u64,
    /// The change counter in the block file's header: the inode's base when the block was
    /// created, which a later `mark_clean` may have moved on from.
    header_change: u64,
}

#[derive(Debug)]
struct DirtyInode {
    base_change: u64,
    blocks: BTreeMap<u64, DirtyBlock>,
}

#[derive(Debug, Default)]
struct Inner {
    tick: u64,
    clean: BTreeMap<BlockKey, CleanEntry>,
    lru: BTreeMap<u64, BlockKey>,
    dirty: BTreeMap<(u64, u64), DirtyInode>,
    /// Last write sequence number handed out; never reset, so snapshots stay comparable.
    seq: u64,
    stats: CacheStats,
}

impl Inner {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn touch(&mut self, key: BlockKey) {
        let tick = self.next_tick();
        if let Some(entry) = self.clean.get_mut(&key) {
            self.lru.remove(&entry.tick);
            entry.tick = tick;
            self.lru.insert(tick, key);
        }
    }

    fn insert_clean(&mut self, key: BlockKey, len: u32) {
        let tick = self.next_tick();
        if let Some(old) = self.clean.insert(key, CleanEntry { len, tick }) {
            self.lru.remove(&old.tick);
            self.stats.clean_bytes -= u64::from(old.len);
            self.stats.clean_blocks -= 1;
        }
        self.lru.insert(tick, key);
        self.stats.clean_bytes += u64::from(len);
        self.stats.clean_blocks += 1;
    }

    fn forget_clean(&mut self, key: &BlockKey) -> bool {
        match self.clean.remove(key) {
            Some(entry) => {
                self.lru.remove(&entry.tick);
                self.stats.clean_bytes -= u64::from(entry.len);
                self.stats.clean_blocks -= 1;
                true
            }
            None => false,
        }
    }
}

/// The parts of one `write_dirty` call shared by every block it touches.
#[derive(Debug, Clone, Copy)]
struct DirtyWrite {
    fs: u64,
    ino: u64,
    base_change: u64,
    seq: u64,
}

/// Why reading a block back failed.
enum ReadFail {
    Corrupt,
    Io(io::Error),
}

/// The gateway's local-disk block cache. See the module documentation for its rules.
pub struct BlockCache<D: LocalDisk> {
    disk: D,
    config: CacheConfig,
    inner: Mutex<Inner>,
}

impl<D: LocalDisk> std::fmt::Debug for BlockCache<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<D: LocalDisk> BlockCache<D> {
    /// Opens the cache on `disk`, scanning what a previous run left: clean blocks whose header
    /// and size verify are kept, anything torn or corrupt is deleted, dirty blocks are deleted
    /// (see the module documentation), and files with names the cache never makes are left alone.
    /// If the kept blocks exceed the capacity, the excess is evicted.
    pub fn open(disk: D, config: CacheConfig) -> Result<Self, CacheError> {
        config.validate()?;
        let cache = Self {
            disk,
            config,
            inner: Mutex::new(Inner::default()),
        };
        let names = cache.disk.list()?;
        {
            let mut inner = cache.lock();
            for name in names {
                match format::parse_name(&name) {
                    None => {}
                    Some(Name::Dirty { .. }) => {
                        cache.remove_file(&mut inner, &name);
                        inner.stats.dirty_discarded += 1;
                    }
                    Some(Name::Clean(key)) => match cache.scan_clean(&name, &key) {
                        Ok(Some(len)) => {
                            inner.insert_clean(key, len);
                            inner.stats.scan_kept += 1;
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!(file = %name, "dropping damaged cache block at startup");
                            cache.remove_file(&mut inner, &name);
                            inner.stats.scan_dropped += 1;
                        }
                    },
                }
            }
            // Kept blocks entered the LRU in name order, which is as good a guess as any: the
            // access order of the previous run is not recorded.
            cache.evict_for(&mut inner, 0);
        }
        Ok(cache)
    }

    /// The length of a clean block file whose header verifies and matches its name and size.
    fn scan_clean(&self, name: &str, key: &BlockKey) -> io::Result<Option<u32>> {
        let file = self.disk.open(name)?;
        let size = file.size()?;
        let mut buf = [0u8; HEADER_LEN];
        if size < HEADER_LEN as u64 {
            return Ok(None);
        }
        file.read_exact_at(0, &mut buf)?;
        Ok(Header::decode(&buf)
            .filter(|h| {
                h.kind == Kind::Clean
                    && h.key == *key
                    && h.len > 0
                    && h.len <= self.config.block_size
                    && size == HEADER_LEN as u64 + u64::from(h.len)
            })
            .map(|h| h.len))
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The disk the cache lives on.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("a panic inside the block cache left its index inconsistent")
    }

    fn block_size(&self) -> u64 {
        u64::from(self.config.block_size)
    }

    /// Removes a file whose content is no longer wanted. A failure leaves an orphan that only
    /// wastes space until the next startup scan, so it is counted, not returned.
    fn remove_file(&self, inner: &mut Inner, name: &str) {
        match self.disk.remove(name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "could not remove cache file");
                inner.stats.io_errors += 1;
            }
        }
    }

    /// Reads and verifies a block file: header, kind, key, length, data checksum.
    fn read_block(
        &self,
        name: &str,
        kind: Kind,
        key: &BlockKey,
        len: u32,
    ) -> Result<Bytes, ReadFail> {
        let file = self.disk.open(name).map_err(ReadFail::Io)?;
        let mut buf = vec![0u8; HEADER_LEN + len as usize];
        file.read_exact_at(0, &mut buf)
            .map_err(|e| match e.kind() {
                // A file shorter than its index says was torn or truncated behind our back.
                io::ErrorKind::UnexpectedEof => ReadFail::Corrupt,
                _ => ReadFail::Io(e),
            })?;
        let header = Header::decode(&buf).ok_or(ReadFail::Corrupt)?;
        let data = Bytes::from(buf).slice(HEADER_LEN..);
        if header.kind != kind
            || header.key != *key
            || header.len != len
            || format::crc32c(&data) != header.data_crc
        {
            return Err(ReadFail::Corrupt);
        }
        Ok(data)
    }

    /// Writes a whole block file: data first, header last, so a failure part-way leaves a file
    /// that does not verify.
    fn write_block(&self, name: &str, kind: Kind, key: BlockKey, data: &[u8]) -> io::Result<()> {
        let file = self.disk.create(name)?;
        file.write_all_at(HEADER_LEN as u64, data)?;
        file.write_all_at(0, &Header::new(kind, key, data).encode())
    }

    /// Evicts least recently used clean blocks until `incoming` more bytes fit.
    fn evict_for(&self, inner: &mut Inner, incoming: u64) {
        while inner.stats.clean_bytes + incoming > self.config.capacity_bytes {
            let Some((_, key)) = inner.lru.pop_first() else {
                break;
            };
            let entry = inner.clean.remove(&key).expect("lru and index agree");
            inner.stats.clean_bytes -= u64::from(entry.len);
            inner.stats.clean_blocks -= 1;
            inner.stats.evictions += 1;
            self.remove_file(inner, &format::clean_name(&key));
        }
    }

    /// Drops a clean block after a failed read, counting why.
    fn drop_clean(&self, inner: &mut Inner, key: &BlockKey, fail: ReadFail) {
        match fail {
            ReadFail::Corrupt => {
                tracing::warn!(?key, "cached block failed verification; dropped");
                inner.stats.checksum_failures += 1;
            }
            ReadFail::Io(e) => {
                tracing::warn!(?key, error = %e, "cached block unreadable; dropped");
                inner.stats.io_errors += 1;
            }
        }
        inner.forget_clean(key);
        self.remove_file(inner, &format::clean_name(key));
    }

    /// Whether the clean block `key` is cached (not verified, not counted as a hit or miss):
    /// for deciding whether to fetch ahead.
    pub fn contains_clean(&self, key: &BlockKey) -> bool {
        self.lock().clean.contains_key(key)
    }

    /// The clean block `key`, verified, or `None`. A block that fails verification or cannot be
    /// read is dropped and reported as a miss.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        let mut inner = self.lock();
        let Some(entry) = inner.clean.get(key).copied() else {
            inner.stats.misses += 1;
            return None;
        };
        match self.read_block(&format::clean_name(key), Kind::Clean, key, entry.len) {
            Ok(data) => {
                inner.stats.hits += 1;
                inner.touch(*key);
                Some(data)
            }
            Err(fail) => {
                self.drop_clean(&mut inner, key, fail);
                inner.stats.misses += 1;
                None
            }
        }
    }

    /// Caches `data` as the clean block `key`, replacing any earlier copy and evicting least
    /// recently used blocks to make room. `data` must be a whole block, or the shorter last block
    /// of the file; the caller vouches that it is the content of `key.change`. On error nothing is
    /// cached; callers filling the cache after a read may ignore the error.
    pub fn put_clean(&self, key: BlockKey, data: &[u8]) -> Result<(), CacheError> {
        let len = self.check_block_len(data.len())?;
        let mut inner = self.lock();
        self.store_clean(&mut inner, key, data, len)
    }

    fn check_block_len(&self, len: usize) -> Result<u32, CacheError> {
        u32::try_from(len)
            .ok()
            .filter(|&l| l > 0 && l <= self.config.block_size)
            .ok_or(CacheError::BadBlockLength {
                len,
                block_size: self.config.block_size,
            })
    }

    fn store_clean(
        &self,
        inner: &mut Inner,
        key: BlockKey,
        data: &[u8],
        len: u32,
    ) -> Result<(), CacheError> {
        // Forget the old copy first: its file is about to be overwritten, and its bytes must not
        // count when making room.
        inner.forget_clean(&key);
        self.evict_for(inner, u64::from(len));
        let name = format::clean_name(&key);
        if let Err(e) = self.write_block(&name, Kind::Clean, key, data) {
            inner.stats.io_errors += 1;
            self.remove_file(inner, &name);
            return Err(e.into());
        }
        inner.insert_clean(key, len);
        Ok(())
    }

    /// Makes every clean block durable (file data, then the directory), so that a crash after
    /// this keeps them. For an orderly shutdown; the write path never needs it.
    pub fn sync_clean(&self) -> Result<(), CacheError> {
        let inner = self.lock();
        for key in inner.clean.keys() {
            self.disk.open(&format::clean_name(key))?.sync()?;
        }
        self.disk.sync_dir()?;
        Ok(())
    }

    /// Records `data`, written by a client at byte `offset` of inode `ino`, as dirty data over
    /// change `base_change`. Parts of a block written earlier are kept, so partial-block writes
    /// accumulate; a block's first write is seeded with the clean block of `base_change` when it
    /// is cached, so that the block can become clean after the flush.
    ///
    /// Fails with [`CacheError::DirtyLimit`] (and writes nothing) if dirty data would pass its
    /// limit, and with [`CacheError::BaseMismatch`] if the inode already has dirty data over
    /// another change. After an I/O error some blocks of a multi-block write may hold the new
    /// bytes and others not; the caller answers the WRITE with an error and the client retries.
    pub fn write_dirty(
        &self,
        fs: u64,
        ino: u64,
        base_change: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), CacheError> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(CacheError::RangeOverflow { offset })?;
        let bs = self.block_size();
        let mut inner = self.lock();
        if let Some(d) = inner.dirty.get(&(fs, ino))
            && d.base_change != base_change
        {
            return Err(CacheError::BaseMismatch {
                fs,
                ino,
                dirty_base: d.base_change,
                given: base_change,
            });
        }

        // Plan first, so a write over the limit changes nothing.
        let (first, last) = (offset / bs, (end - 1) / bs);
        let mut growth = 0u64;
        for index in first..=last {
            let in_end = end.min((index * bs).saturating_add(bs)) - index * bs;
            let old = inner
                .dirty
                .get(&(fs, ino))
                .and_then(|d| d.blocks.get(&index))
                .map(|b| b.len);
            let seed = if old.is_none() {
                let key = BlockKey {
                    fs,
                    ino,
                    change: base_change,
                    index,
                };
                inner.clean.get(&key).map(|e| e.len)
            } else {
                None
            };
            let have = u64::from(old.unwrap_or(0));
            let new_len = in_end.max(have).max(u64::from(seed.unwrap_or(0)));
            growth += new_len - have;
        }
        let limit = self.config.dirty_limit_bytes;
        let needed = inner.stats.dirty_bytes + growth;
        if needed > limit {
            return Err(CacheError::DirtyLimit { needed, limit });
        }

        inner.seq += 1;
        let seq = inner.seq;
        inner.dirty.entry((fs, ino)).or_insert_with(|| DirtyInode {
            base_change,
            blocks: BTreeMap::new(),
        });
        for index in first..=last {
            let block_start = index * bs;
            let in_start = offset.max(block_start) - block_start;
            let in_end = end.min(block_start.saturating_add(bs)) - block_start;
            let src = &data[(block_start + in_start - offset) as usize
                ..(block_start + in_end - offset) as usize];
            let w = DirtyWrite {
                fs,
                ino,
                base_change,
                seq,
            };
            let result = self.write_dirty_block(&mut inner, &w, index, in_start..in_end, src);
            if let Err(e) = result {
                if inner
                    .dirty
                    .get(&(fs, ino))
                    .is_some_and(|d| d.blocks.is_empty())
                {
                    inner.dirty.remove(&(fs, ino));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes `src` at `range` (offsets within the block) of dirty block `index`.
    fn write_dirty_block(
        &self,
        inner: &mut Inner,
        w: &DirtyWrite,
        index: u64,
        range: Range<u64>,
        src: &[u8],
    ) -> Result<(), CacheError> {
        let DirtyWrite {
            fs,
            ino,
            base_change,
            seq,
        } = *w;
        let name = format::dirty_name(fs, ino, index);
        let existing = inner
            .dirty
            .get(&(fs, ino))
            .and_then(|d| d.blocks.get(&index))
            .map(|b| (b.len, b.header_change));
        match existing {
            Some((old_len, header_change)) => {
                let key = BlockKey {
                    fs,
                    ino,
                    change: header_change,
                    index,
                };
                let old = match self.read_block(&name, Kind::Dirty, &key, old_len) {
                    Ok(old) => old,
                    Err(fail) => return Err(self.dirty_read_failed(inner, fs, ino, index, fail)),
                };
                let new_len = (range.end).max(u64::from(old_len)) as usize;
                let mut buf = Vec::with_capacity(new_len);
                buf.extend_from_slice(&old);
                buf.resize(new_len, 0);
                buf[range.start as usize..range.end as usize].copy_from_slice(src);
                // Only the new bytes and the header change; the rest of the file already holds
                // the old bytes (and a gap past the old end reads as zeros, as in `buf`).
                let file = self.disk.open(&name)?;
                file.write_all_at(HEADER_LEN as u64 + range.start, src)?;
                if range.start > u64::from(old_len) {
                    let gap = &buf[old_len as usize..range.start as usize];
                    file.write_all_at(HEADER_LEN as u64 + u64::from(old_len), gap)?;
                }
                file.write_all_at(0, &Header::new(Kind::Dirty, key, &buf).encode())?;
                let new_len = u32::try_from(new_len).expect("within one block");
                inner.stats.dirty_bytes += u64::from(new_len - old_len);
                let block = inner
                    .dirty
                    .get_mut(&(fs, ino))
                    .and_then(|d| d.blocks.get_mut(&index))
                    .expect("checked above");
                block.len = new_len;
                block.valid.insert(range.clone());
                block.written.insert(range);
                block.seq = seq;
            }
            None => {
                let key = BlockKey {
                    fs,
                    ino,
                    change: base_change,
                    index,
                };
                let mut valid = RangeSet::default();
                let mut buf = Vec::new();
                if let Some(entry) = inner.clean.get(&key).copied() {
                    match self.read_block(&format::clean_name(&key), Kind::Clean, &key, entry.len) {
                        Ok(seed) => {
                            inner.touch(key);
                            buf.extend_from_slice(&seed);
                            valid.insert(0..u64::from(entry.len));
                        }
                        Err(fail) => self.drop_clean(inner, &key, fail),
                    }
                }
                if buf.len() < range.end as usize {
                    buf.resize(range.end as usize, 0);
                }
                buf[range.start as usize..range.end as usize].copy_from_slice(src);
                if let Err(e) = self.write_block(&name, Kind::Dirty, key, &buf) {
                    self.remove_file(inner, &name);
                    return Err(e.into());
                }
                valid.insert(range.clone());
                let mut written = RangeSet::default();
                written.insert(range);
                let len = u32::try_from(buf.len()).expect("within one block");
                inner.stats.dirty_bytes += u64::from(len);
                inner.stats.dirty_blocks += 1;
                inner
                    .dirty
                    .get_mut(&(fs, ino))
                    .expect("created by write_dirty")
                    .blocks
                    .insert(
                        index,
                        DirtyBlock {
                            len,
                            valid,
                            written,
                            seq,
                            header_change: base_change,
                        },
                    );
            }
        }
        Ok(())
    }

    fn dirty_read_failed(
        &self,
        inner: &mut Inner,
        fs: u64,
        ino: u64,
        index: u64,
        fail: ReadFail,
    ) -> CacheError {
        match fail {
            ReadFail::Corrupt => {
                tracing::error!(fs, ino, index, "dirty block failed verification");
                inner.stats.checksum_failures += 1;
                CacheError::DirtyCorrupt { fs, ino, index }
            }
            ReadFail::Io(e) => CacheError::Io(e),
        }
    }

    /// The dirty data of an inode, or `None` if it has none.
    pub fn dirty_ranges(&self, fs: u64, ino: u64) -> Option<DirtySnapshot> {
        let inner = self.lock();
        let d = inner.dirty.get(&(fs, ino))?;
        let bs = self.block_size();
        let mut all = RangeSet::default();
        let mut seq = 0;
        for (index, block) in &d.blocks {
            seq = seq.max(block.seq);
            for r in block.written.iter() {
                all.insert(index * bs + r.start..index * bs + r.end);
            }
        }
        Some(DirtySnapshot {
            base_change: d.base_change,
            seq,
            ranges: all.iter().cloned().collect(),
        })
    }

    /// Reads dirty bytes back. Every byte of `range` must be known in the dirty blocks: written by
    /// the client, or seeded from the base change (so the reported ranges of
    /// [`BlockCache::dirty_ranges`] always qualify).
    pub fn read_dirty(&self, fs: u64, ino: u64, range: Range<u64>) -> Result<Bytes, CacheError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let bs = self.block_size();
        let mut inner = self.lock();
        let not_dirty = CacheError::NotDirty {
            fs,
            ino,
            start: range.start,
            end: range.end,
        };
        let Some(d) = inner.dirty.get(&(fs, ino)) else {
            return Err(not_dirty);
        };
        let (first, last) = (range.start / bs, (range.end - 1) / bs);
        let mut plan = Vec::new();
        for index in first..=last {
            let block_start = index * bs;
            let r = range.start.max(block_start) - block_start
                ..range.end.min(block_start.saturating_add(bs)) - block_start;
            match d.blocks.get(&index) {
                Some(b) if b.valid.covers(&r) => plan.push((index, b.len, b.header_change, r)),
                _ => return Err(not_dirty),
            }
        }
        let mut out = Vec::new();
        for (index, len, header_change, r) in plan {
            let key = BlockKey {
                fs,
                ino,
                change: header_change,
                index,
            };
            let data = match self.read_block(
                &format::dirty_name(fs, ino, index),
                Kind::Dirty,
                &key,
                len,
            ) {
                Ok(data) => data,
                Err(fail) => return Err(self.dirty_read_failed(&mut inner, fs, ino, index, fail)),
            };
            let part = data.slice(r.start as usize..r.end as usize);
            if first == last {
                return Ok(part);
            }
            out.extend_from_slice(&part);
        }
        Ok(Bytes::from(out))
    }

    /// Called after the dirty data of snapshot `flushed_seq` is durable in S3 and meta has
    /// recorded it as change `new_change` with file size `new_size`. Blocks not written since the
    /// snapshot leave the dirty set: those whose content is fully known up to the block size (or
    /// to `new_size` for the last block) become clean blocks of `new_change`, the rest are dropped.
    /// Blocks written after the snapshot stay dirty, now over `new_change`.
    ///
    /// Never fails: a block that cannot be moved is only a future miss, and is counted.
    pub fn mark_clean(&self, fs: u64, ino: u64, flushed_seq: u64, new_change: u64, new_size: u64) {
        let bs = self.block_size();
        let mut inner = self.lock();
        let Some(d) = inner.dirty.get_mut(&(fs, ino)) else {
            return;
        };
        d.base_change = new_change;
        let done: Vec<u64> = d
            .blocks
            .iter()
            .filter(|(_, b)| b.seq <= flushed_seq)
            .map(|(&i, _)| i)
            .collect();
        let mut moved = Vec::new();
        for index in done {
            let block = d.blocks.remove(&index).expect("listed above");
            moved.push((index, block));
        }
        if d.blocks.is_empty() {
            inner.dirty.remove(&(fs, ino));
        }
        for (index, block) in moved {
            inner.stats.dirty_bytes -= u64::from(block.len);
            inner.stats.dirty_blocks -= 1;
            let name = format::dirty_name(fs, ino, index);
            let expected = new_size.saturating_sub(index * bs).min(bs);
            if expected > 0 && block.valid.covers(&(0..expected)) {
                let key = BlockKey {
                    fs,
                    ino,
                    change: block.header_change,
                    index,
                };
                match self.read_block(&name, Kind::Dirty, &key, block.len) {
                    Ok(data) => {
                        let clean = BlockKey {
                            fs,
                            ino,
                            change: new_change,
                            index,
                        };
                        let part = &data[..expected as usize];
                        // An error is already counted; the block is just not cached.
                        let _ = self.store_clean(&mut inner, clean, part, expected as u32);
                    }
                    Err(fail) => {
                        let _ = self.dirty_read_failed(&mut inner, fs, ino, index, fail);
                    }
                }
            }
            self.remove_file(&mut inner, &name);
        }
    }

    /// Drops the inode's dirty data without flushing it.
    pub fn discard_dirty(&self, fs: u64, ino: u64) {
        let mut inner = self.lock();
        self.discard_dirty_locked(&mut inner, fs, ino);
    }

    fn discard_dirty_locked(&self, inner: &mut Inner, fs: u64, ino: u64) {
        let Some(d) = inner.dirty.remove(&(fs, ino)) else {
            return;
        };
        for (index, block) in d.blocks {
            inner.stats.dirty_bytes -= u64::from(block.len);
            inner.stats.dirty_blocks -= 1;
            self.remove_file(inner, &format::dirty_name(fs, ino, index));
        }
    }

    /// Drops everything cached for the inode, clean blocks of every change and dirty data alike
    /// (for a removed file, or after the caller lost track of it).
    pub fn invalidate(&self, fs: u64, ino: u64) {
        let mut inner = self.lock();
        let lo = BlockKey {
            fs,
            ino,
            change: 0,
            index: 0,
        };
        let hi = BlockKey {
            fs,
            ino,
            change: u64::MAX,
            index: u64::MAX,
        };
        let keys: Vec<BlockKey> = inner.clean.range(lo..=hi).map(|(k, _)| *k).collect();
        for key in keys {
            inner.forget_clean(&key);
            self.remove_file(&mut inner, &format::clean_name(&key));
        }
        self.discard_dirty_locked(&mut inner, fs, ino);
    }
}
