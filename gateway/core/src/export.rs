//! The S3 side of namespace changes (S3FILES_SPEC.md §4.2): directory markers, symlink
//! objects, new object versions for changed POSIX attributes, moves after a rename, deletes.
//!
//! File *data* is never at stake here: its upload is part of the flush and its failure is
//! the client's error (`data`). These are the object-side consequences of a namespace change
//! that meta has already committed; if S3 keeps failing after retries, the change stands, the
//! failure is logged and counted (`bucketfs_gateway_export_failures_total`), and the object
//! side is repaired the next time the object is exported.

use bucketfs_block_cache::LocalDisk;
use bucketfs_meta_state::types::{FileType, Inode, InodeId};
use bucketfs_meta_state::{Query, QueryReply};
use bucketfs_nfs_wire::nfs::NfsStatus;
use bucketfs_object_store::{
    CompletedPart, CopyOptions, MAX_PART_SIZE, MetadataDirective, Precondition, PutOptions,
    PutOutput, UserMetadata, metadata,
};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::context::{Context, unexpected, with_retries};
use crate::data::{CommitError, NewVersion, copy_source, file_metadata, nanos};
use crate::errors::s3_status;
use crate::handle::Handle;
use crate::keys;
use crate::metrics;

/// Directory entries read per page while walking a moved directory.
const WALK_PAGE: u32 = 1000;
/// Objects moved at once while walking a moved directory.
const MOVE_CONCURRENCY: usize = 16;
/// Part size when copying objects too large for one CopyObject.
const COPY_PART: u64 = 1 << 30;

fn dir_metadata(inode: &Inode) -> UserMetadata {
    UserMetadata::posix(
        inode.uid,
        inode.gid,
        metadata::S_IFDIR | (inode.mode & 0o7777),
        nanos(inode.mtime),
    )
}

fn symlink_metadata(inode: &Inode) -> UserMetadata {
    UserMetadata::posix(
        inode.uid,
        inode.gid,
        metadata::S_IFLNK | (inode.mode & 0o7777),
        nanos(inode.mtime),
    )
}

impl<D: LocalDisk> Context<D> {
    /// Deletes `key` (a delete marker in the versioned bucket). Best effort.
    pub(crate) async fn delete_key(&self, key: &str) {
        if let Err(e) = with_retries("delete", || self.store.delete(key, None)).await {
            tracing::warn!(key, error = %e, "deleting an object failed");
            metrics::export_failure("delete");
        }
    }

    async fn put_best_effort(
        &self,
        what: &'static str,
        key: &str,
        body: Bytes,
        meta: UserMetadata,
    ) {
        if key.len() > keys::MAX_KEY_BYTES {
            tracing::warn!(key, "path too long for an S3 key; not exported");
            metrics::export_failure("path_too_long");
            return;
        }
        let opts = PutOptions {
            metadata: meta,
            precondition: Precondition::None,
        };
        if let Err(e) =
            with_retries("put", || self.store.put(key, body.clone(), opts.clone())).await
        {
            tracing::warn!(key, what, error = %e, "exporting an object failed");
            metrics::export_failure(what);
        }
    }

    /// The zero-byte `path/` marker of a directory, with its attributes.
    pub(crate) async fn put_marker(&self, dir: &Inode, path: &str) {
        if let Some(key) = keys::marker_key(&self.prefix, path) {
            self.put_best_effort("marker", &key, Bytes::new(), dir_metadata(dir))
                .await;
        }
    }

    /// A symlink's object: the target as the body, `file-permissions` with S_IFLNK.
    pub(crate) async fn put_symlink(&self, link: &Inode, path: &str) {
        let key = keys::object_key(&self.prefix, path);
        let target = Bytes::from(link.symlink_target.clone().unwrap_or_default());
        self.put_best_effort("symlink", &key, target, symlink_metadata(link))
            .await;
    }

    /// Brings the object of a directory or symlink in line with its inode, at `path`.
    pub(crate) async fn export_entry(&self, inode: &Inode, path: &str) {
        match inode.kind {
            FileType::Dir => self.put_marker(inode, path).await,
            FileType::Symlink => self.put_symlink(inode, path).await,
            _ => {}
        }
    }

    /// Makes the regular file's object match its inode: present (an empty or zero-filled
    /// file gets one), at the key of its current path, with its current POSIX attributes.
    /// Used after CLOSE, SETATTR and moves; the bytes themselves are copied inside S3.
    pub(crate) async fn export_file(&self, h: &Handle) -> Result<(), NfsStatus> {
        for _ in 0..self.config.commit_attempts {
            let inode = self.inode(h).await?;
            let Some(key) = self.key_of(h.ino).await? else {
                return Ok(());
            };
            let current = inode.object.as_ref().is_some_and(|l| l.key == key)
                && inode.sync == bucketfs_meta_state::types::SyncState::Clean;
            if current {
                return Ok(());
            }
            if key.len() > keys::MAX_KEY_BYTES {
                tracing::warn!(key, "path too long for an S3 key; not exported");
                metrics::export_failure("path_too_long");
                return Err(NfsStatus::NameTooLong);
            }
            let meta = file_metadata(&inode, inode.mtime);
            let put = match &inode.object {
                Some(link) => {
                    self.copy_with_metadata(link, inode.size, &key, meta)
                        .await?
                }
                None => {
                    self.compose_and_upload(&inode, &[], inode.size, &key, meta)
                        .await?
                }
            };
            let version = NewVersion {
                size: inode.size,
                mtime: inode.mtime,
                link: self.link_of(&key, &put),
                data_changed: false,
            };
            match self.commit_version(&inode, version).await {
                Ok(_) => {
                    self.drop_moved_object(inode.object.as_ref(), &key).await;
                    return Ok(());
                }
                Err(CommitError::Changed) => continue,
                Err(CommitError::Status(s)) => return Err(s),
            }
        }
        Err(NfsStatus::Delay)
    }

    /// Truncates or zero-extends a file to `size`: a new object version from the current one
    /// (copied inside S3 where possible), committed with `mtime`.
    pub(crate) async fn truncate(
        &self,
        h: &Handle,
        size: u64,
        mtime: bucketfs_meta_state::types::Timestamp,
    ) -> Result<(), NfsStatus> {
        for _ in 0..self.config.commit_attempts {
            let inode = self.inode(h).await?;
            let Some(key) = self.key_of(h.ino).await? else {
                return Ok(());
            };
            let meta = file_metadata(&inode, mtime);
            let put = self
                .compose_and_upload(&inode, &[], size, &key, meta)
                .await?;
            let version = NewVersion {
                size,
                mtime,
                link: self.link_of(&key, &put),
                data_changed: true,
            };
            match self.commit_version(&inode, version).await {
                Ok(_) => {
                    self.drop_moved_object(inode.object.as_ref(), &key).await;
                    return Ok(());
                }
                Err(CommitError::Changed) => continue,
                Err(CommitError::Status(s)) => return Err(s),
            }
        }
        Err(NfsStatus::Delay)
    }

    /// A copy of an object version at `dst_key` with new user metadata, inside S3: one
    /// CopyObject up to 5 GiB, a multipart upload of part copies beyond.
    async fn copy_with_metadata(
        &self,
        link: &bucketfs_meta_state::types::ObjectLink,
        size: u64,
        dst_key: &str,
        meta: UserMetadata,
    ) -> Result<PutOutput, NfsStatus> {
        let source = copy_source(link);
        if size <= MAX_PART_SIZE {
            let opts = CopyOptions {
                precondition: Precondition::None,
                metadata: MetadataDirective::Replace(meta),
            };
            return with_retries("copy_object", || {
                self.store.copy_object(&source, dst_key, opts.clone())
            })
            .await
            .map_err(|e| s3_status(&e));
        }
        let upload = with_retries("create_multipart", || {
            self.store.create_multipart(dst_key, meta.clone())
        })
        .await
        .map_err(|e| s3_status(&e))?;
        let mut parts = Vec::new();
        let mut start = 0;
        let mut number = 1;
        while start < size {
            let end = (start + COPY_PART).min(size);
            let etag = with_retries("upload_part_copy", || {
                self.store
                    .upload_part_copy(dst_key, &upload, number, &source, Some(start..end))
            })
            .await;
            match etag {
                Ok(etag) => parts.push(CompletedPart {
                    part_number: number,
                    etag,
                }),
                Err(e) => {
                    let _ = self.store.abort_multipart(dst_key, &upload).await;
                    return Err(s3_status(&e));
                }
            }
            start = end;
            number += 1;
        }
        match with_retries("complete_multipart", || {
            self.store
                .complete_multipart(dst_key, &upload, &parts, Precondition::None)
        })
        .await
        {
            Ok(put) => Ok(put),
            Err(e) => {
                let _ = self.store.abort_multipart(dst_key, &upload).await;
                Err(s3_status(&e))
            }
        }
    }

    /// After a rename: moves the objects of `moved` — and of everything below it, for a
    /// directory — from under `old_path` to the keys of their paths now. S3 has no rename,
    /// so each object is copied inside S3 and the old key deleted (S3FILES_SPEC.md §4.3).
    pub(crate) async fn relocate(&self, moved: &Inode, old_path: &str, new_path: &str) {
        match moved.kind {
            FileType::File => self.relocate_file(moved.id).await,
            FileType::Symlink => {
                self.put_symlink(moved, new_path).await;
                self.delete_key(&keys::object_key(&self.prefix, old_path))
                    .await;
            }
            FileType::Dir => {
                self.put_marker(moved, new_path).await;
                if let Some(old) = keys::marker_key(&self.prefix, old_path) {
                    self.delete_key(&old).await;
                }
                self.relocate_children(moved.id, old_path, new_path).await;
            }
            FileType::Fifo | FileType::Socket | FileType::CharDev | FileType::BlockDev => {}
        }
    }

    /// Moves a file's object to the key of its current primary path, if it is not there.
    pub(crate) async fn relocate_file(&self, ino: InodeId) {
        let inode = match self.inode_by_id(ino).await {
            Ok(inode) => inode,
            Err(_) => return,
        };
        if inode.object.is_none() {
            return;
        }
        let h = Handle::of(self.fs, &inode);
        if let Err(status) = self.export_file(&h).await {
            tracing::warn!(ino = ino.0, ?status, "moving a file's object failed");
            metrics::export_failure("move");
        }
    }

    async fn relocate_children(&self, dir: InodeId, old_path: &str, new_path: &str) {
        // Breadth-first over the moved tree, so the walk needs no recursion.
        let mut pending = vec![(dir, old_path.to_owned(), new_path.to_owned())];
        while let Some((dir, old_dir, new_dir)) = pending.pop() {
            let mut after = 0;
            loop {
                let page = match self
                    .query(Query::ReadDir {
                        fs: self.fs,
                        dir,
                        after_cookie: after,
                        limit: WALK_PAGE,
                    })
                    .await
                {
                    Ok(QueryReply::Page(page)) => page,
                    Ok(other) => {
                        unexpected("ReadDir", &other);
                        metrics::export_failure("move");
                        break;
                    }
                    Err(status) => {
                        tracing::warn!(?status, "listing a moved directory failed");
                        metrics::export_failure("move");
                        break;
                    }
                };
                let mut moves = Vec::new();
                for entry in &page.entries {
                    after = entry.cookie;
                    let old = format!("{old_dir}/{}", entry.name);
                    let new = format!("{new_dir}/{}", entry.name);
                    if entry.inode.kind == FileType::Dir {
                        pending.push((entry.inode.id, old.clone(), new.clone()));
                    }
                    moves.push((entry.inode.clone(), old, new));
                }
                stream::iter(moves)
                    .for_each_concurrent(MOVE_CONCURRENCY, |(inode, old, new)| async move {
                        match inode.kind {
                            FileType::File => self.relocate_file(inode.id).await,
                            FileType::Symlink => {
                                self.put_symlink(&inode, &new).await;
                                self.delete_key(&keys::object_key(&self.prefix, &old)).await;
                            }
                            FileType::Dir => {
                                self.put_marker(&inode, &new).await;
                                if let Some(key) = keys::marker_key(&self.prefix, &old) {
                                    self.delete_key(&key).await;
                                }
                            }
                            _ => {}
                        }
                    })
                    .await;
                if page.eof {
                    break;
                }
            }
        }
    }
}
