//! File bytes: WRITE into the block cache, flush to S3 then meta, READ from the cache or a
//! ranged GET pinned to the linked object version.
//!
//! # Writes and flushes (DESIGN.md "The data path", invariant 1 and 2)
//!
//! An UNSTABLE WRITE lands as dirty data in the block cache, over the inode's change counter
//! at the first write (its *base*); this gateway then reports the file's size and mtime with
//! the dirty data on top. A flush — COMMIT, a FILE_SYNC WRITE, CLOSE, a truncation — builds
//! the whole new object from the current linked object with the dirty ranges laid over it,
//! uploads it (one PUT for small files; a multipart upload for large ones, where parts without
//! dirty bytes are copied inside S3 with UploadPartCopy and never downloaded), and only then
//! records it in meta with `CommitObject`. That commit is guarded by the change counter the
//! new object was composed from: if another gateway committed in between, the flush composes
//! again on top of the newer object, so concurrent writers to different ranges of one file
//! through different gateways both keep their bytes.
//!
//! One flush or write per inode runs at a time on this gateway (an async mutex per inode);
//! reads of an inode with dirty data take it too, so they never see a half-moved base.
//!
//! # Reads (invariant 3)
//!
//! A read asks meta for the inode first and uses clean blocks of exactly its current change
//! counter, so a block cached before another gateway committed is never served again. Misses
//! fetch whole blocks with a ranged GET pinned to the linked version; concurrent misses of one
//! block share one GET, and a sequential reader gets the next blocks fetched ahead in parallel.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bucketfs_block_cache::{BlockKey, CacheError, LocalDisk};
use bucketfs_meta_state::types::{Inode, InodeId, ObjectLink, Timestamp};
use bucketfs_meta_state::{Command, NsError, Reply};
use bucketfs_nfs_wire::nfs::NfsStatus;
use bucketfs_object_store::{
    CompletedPart, CopySource, GetOptions, MAX_PART_NUMBER, PutOptions, UserMetadata, VersionId,
    metadata,
};
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::context::{Context, unexpected, with_retries};
use crate::errors::{meta_status, s3_status};
use crate::handle::Handle;
use crate::metrics;

/// What this gateway holds for one inode beyond meta: uncommitted writes.
#[derive(Debug, Clone)]
pub(crate) struct Dirty {
    /// The change counter the first dirty write was made over.
    pub base_change: u64,
    /// The file's size with the dirty writes.
    pub size: u64,
    /// When the last write happened.
    pub mtime: Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct FileState {
    pub dirty: Option<Dirty>,
}

/// Per-inode state. `overlay` mirrors the dirty size and mtime for GETATTR, which must not
/// wait behind a flush.
#[derive(Debug, Default)]
pub(crate) struct FileEntry {
    pub state: tokio::sync::Mutex<FileState>,
    overlay: Mutex<Option<(u64, Timestamp)>>,
}

impl FileEntry {
    fn set_overlay(&self, dirty: &Option<Dirty>) {
        *self.overlay.lock().unwrap_or_else(|e| e.into_inner()) =
            dirty.as_ref().map(|d| (d.size, d.mtime));
    }
}

/// The inodes this gateway holds state for.
#[derive(Debug, Default)]
pub(crate) struct FileTable {
    entries: Mutex<HashMap<InodeId, Arc<FileEntry>>>,
    /// End of the last read of each inode, to spot sequential readers.
    last_read: Mutex<HashMap<InodeId, u64>>,
}

/// Sequential-read tracking is a hint; past this many inodes it starts over.
const MAX_READ_HINTS: usize = 4096;

impl FileTable {
    pub fn entry(&self, ino: InodeId) -> Arc<FileEntry> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(ino).or_default())
    }

    fn existing(&self, ino: InodeId) -> Option<Arc<FileEntry>> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ino).cloned()
    }

    /// Size and mtime of uncommitted writes here, for GETATTR.
    pub fn overlay(&self, ino: InodeId) -> Option<(u64, Timestamp)> {
        let entry = self.existing(ino)?;
        *entry.overlay.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the entry of an inode that has nothing dirty (its lock must not be held by
    /// the caller): entries exist only while there is something to remember.
    fn release(&self, ino: InodeId) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get(&ino)
            && Arc::strong_count(entry) == 1
            && entry
                .state
                .try_lock()
                .is_ok_and(|state| state.dirty.is_none())
        {
            map.remove(&ino);
        }
    }

    pub fn forget(&self, ino: InodeId) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ino);
        self.last_read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ino);
    }

    /// Records a read of `range` and says whether it continued the previous one.
    fn note_read(&self, ino: InodeId, range: &Range<u64>) -> bool {
        let mut map = self.last_read.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > MAX_READ_HINTS {
            map.clear();
        }
        let sequential = map.get(&ino).is_some_and(|&end| end == range.start);
        map.insert(ino, range.end);
        sequential
    }

    /// Inodes with dirty data, for freeing the dirty budget.
    fn dirty_inodes(&self) -> Vec<(InodeId, Arc<FileEntry>)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(i, e)| (*i, Arc::clone(e))).collect()
    }
}

type BlockFetch = Shared<BoxFuture<'static, Result<Bytes, NfsStatus>>>;

/// Block fetches in flight, so concurrent misses of one block share one GET.
#[derive(Default)]
pub(crate) struct Fetches {
    inflight: Mutex<HashMap<BlockKey, BlockFetch>>,
}

/// The ranges of `within` not covered by the sorted, disjoint `covered`.
fn gaps(within: Range<u64>, covered: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut at = within.start;
    for r in covered {
        if r.end <= at || r.start >= within.end {
            continue;
        }
        if r.start > at {
            out.push(at..r.start.min(within.end));
        }
        at = at.max(r.end);
        if at >= within.end {
            break;
        }
    }
    if at < within.end {
        out.push(at..within.end);
    }
    out
}

fn intersect(a: &Range<u64>, b: &Range<u64>) -> Option<Range<u64>> {
    let r = a.start.max(b.start)..a.end.min(b.end);
    (r.start < r.end).then_some(r)
}

fn cache_status(e: &CacheError) -> NfsStatus {
    match e {
        CacheError::DirtyLimit { .. } => NfsStatus::Delay,
        CacheError::RangeOverflow { .. } => NfsStatus::FBig,
        other => {
            tracing::error!(error = %other, "local block cache failed");
            NfsStatus::Io
        }
    }
}

/// The POSIX user metadata of a regular file's object.
pub(crate) fn file_metadata(inode: &Inode, mtime: Timestamp) -> UserMetadata {
    UserMetadata::posix(
        inode.uid,
        inode.gid,
        metadata::S_IFREG | (inode.mode & 0o7777),
        nanos(mtime),
    )
}

pub(crate) fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_unix_nanos()).unwrap_or(i64::MAX)
}

impl<D: LocalDisk> Context<D> {
    /// What meta records of a version just written: reads are pinned by its version id, or
    /// only by its ETag when the gateway is told not to trust version ids to last.
    pub(crate) fn link_of(&self, key: &str, put: &bucketfs_object_store::PutOutput) -> ObjectLink {
        ObjectLink {
            key: key.to_owned(),
            version_id: put
                .version_id
                .as_ref()
                .filter(|_| self.config.pin_versions)
                .map(|v| v.as_str().to_owned()),
            etag: put.etag.as_str().to_owned(),
        }
    }
}

pub(crate) fn copy_source(link: &ObjectLink) -> CopySource {
    CopySource {
        key: link.key.clone(),
        version_id: link.version_id.clone().map(VersionId::new),
    }
}

/// What a commit of a new object version is to record.
pub(crate) struct NewVersion {
    pub size: u64,
    pub mtime: Timestamp,
    pub link: ObjectLink,
    /// False for the same bytes under new metadata or another key: then the file's change
    /// counter and ctime stay as they are.
    pub data_changed: bool,
}

impl<D: LocalDisk> Context<D> {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&bucketfs_block_cache::BlockCache<D>) -> T + Send + 'static,
    ) -> T {
        let cache = Arc::clone(&self.cache);
        match tokio::task::spawn_blocking(move || f(&cache)).await {
            Ok(v) => v,
            // The closure panicked: the cache's own locks recover, so re-raise here.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    fn block_size(&self) -> u64 {
        u64::from(self.cache.config().block_size)
    }

    // ------------------------------------------------------------------ writes

    /// WRITE: `stable` makes it durable before returning.
    pub async fn write_data(
        &self,
        h: &Handle,
        offset: u64,
        data: &[u8],
        stable: bool,
    ) -> Result<bool, NfsStatus> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(NfsStatus::FBig)?;
        let entry = self.files.entry(h.ino);
        let mut state = entry.state.lock().await;
        let inode = self.inode(h).await?;
        if !data.is_empty() {
            let mut flushed_for_room = false;
            loop {
                let base = state.dirty.as_ref().map_or(inode.change, |d| d.base_change);
                let bytes = data.to_vec();
                let (fs, ino) = (self.fs.0, h.ino.0);
                let r = self
                    .blocking(move |c| c.write_dirty(fs, ino, base, offset, &bytes))
                    .await;
                match r {
                    Ok(()) => break,
                    Err(CacheError::DirtyLimit { .. }) if !flushed_for_room => {
                        // Make room: this inode's own dirty data first, then others'.
                        flushed_for_room = true;
                        self.flush_locked(h, &entry, &mut state).await?;
                        self.flush_others(h.ino).await;
                    }
                    Err(CacheError::BaseMismatch { .. }) if !flushed_for_room => {
                        flushed_for_room = true;
                        self.flush_locked(h, &entry, &mut state).await?;
                    }
                    Err(e) => return Err(cache_status(&e)),
                }
            }
            let now = self.now();
            let base_size = state.dirty.as_ref().map_or(inode.size, |d| d.size);
            let base_change = state.dirty.as_ref().map_or(inode.change, |d| d.base_change);
            state.dirty = Some(Dirty {
                base_change,
                size: base_size.max(end),
                mtime: now,
            });
            entry.set_overlay(&state.dirty);
            metrics::dirty_bytes(self.cache.stats().dirty_bytes);
        }
        if stable {
            self.flush_locked(h, &entry, &mut state).await?;
        }
        drop(state);
        if stable {
            self.files.release(h.ino);
        }
        Ok(stable)
    }

    /// COMMIT: everything written so far is durable when this returns.
    pub async fn flush(&self, h: &Handle) -> Result<(), NfsStatus> {
        let Some(entry) = self.files.existing(h.ino) else {
            return Ok(());
        };
        let mut state = entry.state.lock().await;
        self.flush_locked(h, &entry, &mut state).await?;
        drop(state);
        drop(entry);
        self.files.release(h.ino);
        Ok(())
    }

    /// Flushes every inode with dirty data, waiting for busy ones (an orderly shutdown).
    pub(crate) async fn flush_everything(&self) -> Result<(), NfsStatus> {
        let mut first_error = None;
        for (ino, entry) in self.files.dirty_inodes() {
            let mut state = entry.state.lock().await;
            if state.dirty.is_none() {
                continue;
            }
            let result = match self.inode_by_id(ino).await {
                Ok(inode) => {
                    let h = Handle::of(self.fs, &inode);
                    self.flush_locked(&h, &entry, &mut state).await
                }
                Err(status) => Err(status),
            };
            if let Err(status) = result {
                tracing::error!(ino = ino.0, ?status, "flushing at shutdown failed");
                first_error.get_or_insert(status);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Flushes other inodes' dirty data (when the dirty budget is full), skipping any that
    /// are busy: their own writers will flush them.
    async fn flush_others(&self, except: InodeId) {
        for (ino, entry) in self.files.dirty_inodes() {
            if ino == except {
                continue;
            }
            let Ok(mut state) = entry.state.try_lock() else {
                continue;
            };
            if state.dirty.is_none() {
                continue;
            }
            let Ok(inode) = self.inode_by_id(ino).await else {
                continue;
            };
            let h = Handle::of(self.fs, &inode);
            if let Err(status) = self.flush_locked(&h, &entry, &mut state).await {
                tracing::warn!(
                    ino = ino.0,
                    ?status,
                    "flush to free the dirty budget failed"
                );
            }
        }
    }

    /// Uploads the inode's dirty data as a new object version and commits it (see the module
    /// documentation). The caller holds the inode's lock.
    pub(crate) async fn flush_locked(
        &self,
        h: &Handle,
        entry: &FileEntry,
        state: &mut FileState,
    ) -> Result<(), NfsStatus> {
        let Some(dirty) = state.dirty.clone() else {
            return Ok(());
        };
        let (fs, ino) = (self.fs.0, h.ino.0);
        let _timer = metrics::Timer::flush();
        let mut rebased = false;
        for _ in 0..self.config.commit_attempts {
            let inode = self.inode(h).await?;
            let Some(snapshot) = self.blocking(move |c| c.dirty_ranges(fs, ino)).await else {
                state.dirty = None;
                entry.set_overlay(&state.dirty);
                return Ok(());
            };
            rebased |= inode.change != snapshot.base_change;
            let dirty_end = snapshot.ranges.last().map_or(0, |r| r.end);
            let new_size = inode.size.max(dirty_end);
            let Some(key) = self.key_of(h.ino).await? else {
                // The file has no name left (removed by another client): nothing to export.
                self.blocking(move |c| c.discard_dirty(fs, ino)).await;
                state.dirty = None;
                entry.set_overlay(&state.dirty);
                return Ok(());
            };
            let meta = file_metadata(&inode, dirty.mtime);
            let put = self
                .compose_and_upload(&inode, &snapshot.ranges, new_size, &key, meta)
                .await?;
            let version = NewVersion {
                size: new_size,
                mtime: dirty.mtime,
                link: self.link_of(&key, &put),
                data_changed: true,
            };
            match self.commit_version(&inode, version).await {
                Ok(new) => {
                    if rebased {
                        // Dirty blocks were seeded from an older version: drop them rather
                        // than cache them as the new one.
                        self.blocking(move |c| c.discard_dirty(fs, ino)).await;
                    } else {
                        let (seq, change) = (snapshot.seq, new.change);
                        self.blocking(move |c| c.mark_clean(fs, ino, seq, change, new_size))
                            .await;
                    }
                    self.drop_moved_object(inode.object.as_ref(), &key).await;
                    state.dirty = None;
                    entry.set_overlay(&state.dirty);
                    metrics::dirty_bytes(self.cache.stats().dirty_bytes);
                    return Ok(());
                }
                Err(Changed) => {
                    rebased = true;
                    tracing::debug!(ino, "inode changed under a flush; composing again");
                }
                Err(CommitError::Status(status)) => return Err(status),
            }
        }
        tracing::warn!(ino, "flush kept losing to other writers");
        Err(NfsStatus::Delay)
    }

    /// Records a new object version of `inode` if nobody changed the inode since it was
    /// read. `Err(Changed)` asks the caller to read the inode again and retry.
    pub(crate) async fn commit_version(
        &self,
        inode: &Inode,
        version: NewVersion,
    ) -> Result<Inode, CommitError> {
        let command = Command::CommitObject {
            fs: self.fs,
            ino: inode.id,
            size: version.size,
            mtime: version.mtime,
            object: version.link,
            expect_change: Some(inode.change),
            data_changed: version.data_changed,
        };
        match self.meta.write(command).await {
            Ok(Reply::Inode(new)) => Ok(new),
            Ok(other) => Err(CommitError::Status(unexpected("CommitObject", &other))),
            Err(bucketfs_meta_client::ClientError::Ns(NsError::Changed { .. })) => {
                Err(CommitError::Changed)
            }
            Err(e) => Err(CommitError::Status(meta_status(&e))),
        }
    }

    /// After a new version went to `new_key`, the previous object at another key (the file
    /// was renamed, or its first name removed) is deleted there. Best effort: the namespace
    /// no longer points at it.
    pub(crate) async fn drop_moved_object(&self, old: Option<&ObjectLink>, new_key: &str) {
        if let Some(old) = old
            && old.key != new_key
        {
            self.delete_key(&old.key).await;
        }
    }

    // ------------------------------------------------------------------ composing objects

    /// Uploads the file `inode` would be with `dirty` (ranges held in the block cache) laid
    /// over its linked object, cut or zero-extended to `new_size`.
    pub(crate) async fn compose_and_upload(
        &self,
        inode: &Inode,
        dirty: &[Range<u64>],
        new_size: u64,
        key: &str,
        meta: UserMetadata,
    ) -> Result<bucketfs_object_store::PutOutput, NfsStatus> {
        if new_size <= self.config.single_put_max {
            let body = self.compose(inode, dirty, 0..new_size).await?;
            metrics::s3_bytes_out(body.len() as u64);
            let opts = PutOptions {
                metadata: meta,
                ..PutOptions::default()
            };
            return with_retries("put", || self.store.put(key, body.clone(), opts.clone()))
                .await
                .map_err(|e| s3_status(&e));
        }
        self.multipart(inode, dirty, new_size, key, meta).await
    }

    async fn multipart(
        &self,
        inode: &Inode,
        dirty: &[Range<u64>],
        new_size: u64,
        key: &str,
        meta: UserMetadata,
    ) -> Result<bucketfs_object_store::PutOutput, NfsStatus> {
        let part_size = self
            .config
            .part_size
            .max(self.config.min_part_size)
            .max(new_size.div_ceil(u64::from(MAX_PART_NUMBER)));
        let upload = with_retries("create_multipart", || {
            self.store.create_multipart(key, meta.clone())
        })
        .await
        .map_err(|e| s3_status(&e))?;
        let parts: Vec<(u32, Range<u64>)> = (0..new_size.div_ceil(part_size))
            .map(|i| {
                let start = i * part_size;
                (i as u32 + 1, start..(start + part_size).min(new_size))
            })
            .collect();
        let uploaded: Result<Vec<CompletedPart>, NfsStatus> = stream::iter(parts)
            .map(|(number, range)| {
                let upload = &upload;
                async move {
                    let copyable = inode.object.is_some()
                        && range.end <= inode.size
                        && !dirty.iter().any(|d| intersect(d, &range).is_some());
                    let etag = if copyable {
                        let source = copy_source(inode.object.as_ref().expect("checked above"));
                        with_retries("upload_part_copy", || {
                            self.store.upload_part_copy(
                                key,
                                upload,
                                number,
                                &source,
                                Some(range.clone()),
                            )
                        })
                        .await
                    } else {
                        let body = self.compose(inode, dirty, range.clone()).await?;
                        metrics::s3_bytes_out(body.len() as u64);
                        with_retries("upload_part", || {
                            self.store.upload_part(key, upload, number, body.clone())
                        })
                        .await
                    }
                    .map_err(|e| s3_status(&e))?;
                    Ok(CompletedPart {
                        part_number: number,
                        etag,
                    })
                }
            })
            .buffered(self.config.upload_concurrency.max(1))
            .try_collect()
            .await;
        let completed = match uploaded {
            Ok(parts) => {
                with_retries("complete_multipart", || {
                    self.store.complete_multipart(
                        key,
                        &upload,
                        &parts,
                        bucketfs_object_store::Precondition::None,
                    )
                })
                .await
            }
            Err(status) => {
                let _ = self.store.abort_multipart(key, &upload).await;
                return Err(status);
            }
        };
        match completed {
            Ok(put) => Ok(put),
            Err(e) => {
                let _ = self.store.abort_multipart(key, &upload).await;
                Err(s3_status(&e))
            }
        }
    }

    /// The bytes `range` of the file: dirty ranges from the block cache, the rest from the
    /// linked object (as of `inode`), zeros past its end.
    async fn compose(
        &self,
        inode: &Inode,
        dirty: &[Range<u64>],
        range: Range<u64>,
    ) -> Result<Bytes, NfsStatus> {
        let len = usize::try_from(range.end - range.start).map_err(|_| NfsStatus::FBig)?;
        let mut buf = vec![0u8; len];
        let base_end = inode.size.min(range.end);
        if range.start < base_end {
            for gap in gaps(range.start..base_end, dirty) {
                let bytes = self.read_clean(inode, gap.clone()).await?;
                let at = (gap.start - range.start) as usize;
                buf[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        for d in dirty {
            let Some(part) = intersect(d, &range) else {
                continue;
            };
            let (fs, ino, r) = (self.fs.0, inode.id.0, part.clone());
            let bytes = self
                .blocking(move |c| c.read_dirty(fs, ino, r))
                .await
                .map_err(|e| cache_status(&e))?;
            let at = (part.start - range.start) as usize;
            buf[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        Ok(Bytes::from(buf))
    }

    // ------------------------------------------------------------------ reads

    /// READ: up to `count` bytes from `offset`, and whether they reach the end of the file.
    pub async fn read_data(
        &self,
        h: &Handle,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), NfsStatus> {
        if let Some(entry) = self.files.existing(h.ino) {
            let state = entry.state.lock().await;
            if state.dirty.is_some() {
                return self.read_with_dirty(h, &state, offset, count).await;
            }
        }
        let inode = self.inode(h).await?;
        let end = offset.saturating_add(u64::from(count)).min(inode.size);
        if offset >= end {
            return Ok((Vec::new(), true));
        }
        let range = offset..end;
        let sequential = self.files.note_read(h.ino, &range);
        let bytes = self.read_clean(&inode, range.clone()).await?;
        if sequential {
            self.read_ahead(&inode, range.end);
        }
        metrics::nfs_bytes_read(bytes.len() as u64);
        Ok((bytes.to_vec(), end == inode.size))
    }

    async fn read_with_dirty(
        &self,
        h: &Handle,
        state: &FileState,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<u8>, bool), NfsStatus> {
        let inode = self.inode(h).await?;
        // Another gateway may have committed a longer file since our first write.
        let size = state
            .dirty
            .as_ref()
            .map_or(inode.size, |d| d.size.max(inode.size));
        let end = offset.saturating_add(u64::from(count)).min(size);
        if offset >= end {
            return Ok((Vec::new(), true));
        }
        let (fs, ino) = (self.fs.0, h.ino.0);
        let ranges = self
            .blocking(move |c| c.dirty_ranges(fs, ino))
            .await
            .map(|s| s.ranges)
            .unwrap_or_default();
        let bytes = self.compose(&inode, &ranges, offset..end).await?;
        metrics::nfs_bytes_read(bytes.len() as u64);
        Ok((bytes.to_vec(), end == size))
    }

    /// The bytes `range` (within `inode.size`) of the object version linked to `inode`.
    pub(crate) async fn read_clean(
        &self,
        inode: &Inode,
        range: Range<u64>,
    ) -> Result<Bytes, NfsStatus> {
        let range = range.start..range.end.min(inode.size);
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let bs = self.block_size();
        let (first, last) = (range.start / bs, (range.end - 1) / bs);
        let blocks = stream::iter(first..=last)
            .map(|index| self.block(inode, index))
            .buffered(4)
            .try_collect::<Vec<Bytes>>()
            .await?;
        if first == last {
            let start = (range.start - first * bs) as usize;
            let end = (range.end - first * bs) as usize;
            return Ok(blocks[0].slice(start..end));
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        for (i, block) in blocks.iter().enumerate() {
            let block_start = (first + i as u64) * bs;
            let from = range.start.max(block_start) - block_start;
            let to = range.end.min(block_start + block.len() as u64) - block_start;
            out.extend_from_slice(&block[from as usize..to as usize]);
        }
        Ok(Bytes::from(out))
    }

    /// One whole block of the inode's current version: cached, or fetched once however many
    /// readers want it.
    async fn block(&self, inode: &Inode, index: u64) -> Result<Bytes, NfsStatus> {
        let key = BlockKey {
            fs: self.fs.0,
            ino: inode.id.0,
            change: inode.change,
            index,
        };
        if let Some(bytes) = self.blocking(move |c| c.get(&key)).await {
            metrics::cache_hit();
            return Ok(bytes);
        }
        metrics::cache_miss();
        self.fetch_shared(inode, key).await
    }

    fn fetch_shared(&self, inode: &Inode, key: BlockKey) -> BlockFetch {
        let mut inflight = self
            .fetches
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(f) = inflight.get(&key) {
            return f.clone();
        }
        let bs = self.block_size();
        let start = key.index * bs;
        let end = (start + bs).min(inode.size);
        let link = inode.object.clone();
        let store = Arc::clone(&self.store);
        let cache = Arc::clone(&self.cache);
        let fetches = Arc::clone(&self.fetches);
        let fut = async move {
            let result = fetch_block(store, link, start..end).await;
            if let Ok(bytes) = &result {
                let data = bytes.clone();
                let _ = tokio::task::spawn_blocking(move || cache.put_clean(key, &data)).await;
            }
            fetches
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            result
        }
        .boxed()
        .shared();
        inflight.insert(key, fut.clone());
        fut
    }

    /// Starts fetches of the blocks after `from` for a sequential reader; they land in the
    /// cache for the reads that follow.
    fn read_ahead(&self, inode: &Inode, from: u64) {
        let bs = self.block_size();
        let first = from.div_ceil(bs);
        for index in first..first + self.config.readahead_blocks {
            if index * bs >= inode.size {
                break;
            }
            let key = BlockKey {
                fs: self.fs.0,
                ino: inode.id.0,
                change: inode.change,
                index,
            };
            if self.cache.contains_clean(&key) {
                continue;
            }
            let fetch = self.fetch_shared(inode, key);
            tokio::spawn(async move {
                let _ = fetch.await;
            });
        }
    }
}

/// A failed guarded commit: someone changed the inode, or a plain failure.
pub(crate) enum CommitError {
    Changed,
    Status(NfsStatus),
}

use CommitError::Changed;

impl From<NfsStatus> for CommitError {
    fn from(s: NfsStatus) -> Self {
        CommitError::Status(s)
    }
}

async fn fetch_block(
    store: Arc<dyn bucketfs_object_store::ObjectStore>,
    link: Option<ObjectLink>,
    range: Range<u64>,
) -> Result<Bytes, NfsStatus> {
    let Some(link) = link else {
        // Meta records a size only together with the object that holds it, so this is a
        // file that was extended by a truncate before any object existed: zeros.
        return Ok(Bytes::from(vec![0u8; (range.end - range.start) as usize]));
    };
    let opts = GetOptions {
        range: Some(range.clone()),
        version_id: link.version_id.clone().map(VersionId::new),
        if_match: link
            .version_id
            .is_none()
            .then(|| bucketfs_object_store::ETag::new(&link.etag)),
    };
    let out = with_retries("get_range", || store.get_range(&link.key, opts.clone()))
        .await
        .map_err(|e| s3_status(&e))?;
    if out.body.len() as u64 != range.end - range.start {
        tracing::error!(key = %link.key, expected = range.end - range.start,
            got = out.body.len(), "object shorter than the inode says");
        return Err(NfsStatus::Io);
    }
    metrics::s3_bytes_in(out.body.len() as u64);
    Ok(out.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_between_covered_ranges() {
        assert_eq!(gaps(0..10, &[]), vec![0..10]);
        assert_eq!(gaps(0..10, &[2..4, 6..8]), vec![0..2, 4..6, 8..10]);
        assert_eq!(
            gaps(0..10, std::slice::from_ref(&(0..10))),
            Vec::<Range<u64>>::new()
        );
        assert_eq!(gaps(5..10, &[0..6, 9..20]), vec![6..9]);
        assert_eq!(gaps(5..10, std::slice::from_ref(&(20..30))), vec![5..10]);
    }
}
