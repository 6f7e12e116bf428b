//! What every part of the gateway's file system shares: the metadata client, the bucket, the
//! block cache, the file system being served, and the typed calls into meta that turn
//! refusals into NFS statuses.

use std::sync::Arc;
use std::time::Duration;

use bucketfs_block_cache::{BlockCache, LocalDisk};
use bucketfs_meta_client::{MetaClient, ReadConsistency};
use bucketfs_meta_state::types::{FsId, Inode, InodeId, Timestamp};
use bucketfs_meta_state::{Command, Query, QueryReply, Reply};
use bucketfs_nfs_wire::nfs::NfsStatus;
use bucketfs_object_store::ObjectStore;
use bucketfs_runtime::Clock;

use crate::errors::meta_status;
use crate::handle::Handle;
use crate::keys;

/// Tuning of the data path.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// Files up to this size are uploaded in one PUT, larger ones as multipart uploads.
    pub single_put_max: u64,
    /// Part size of multipart uploads; grown for files so large that 10,000 parts would not
    /// hold them.
    pub part_size: u64,
    /// The store's smallest part (S3: 5 MiB); `part_size` is never below it.
    pub min_part_size: u64,
    /// Parts uploaded at once by one flush.
    pub upload_concurrency: usize,
    /// Blocks fetched ahead of a sequential reader.
    pub readahead_blocks: u64,
    /// Attempts of a guarded commit that keeps meeting another writer's change.
    pub commit_attempts: u32,
    /// Pin reads to object version ids (the default). Off, reads are pinned by ETag only:
    /// for a store whose version ids do not survive a restart (`bucketfs up`'s local server).
    pub pin_versions: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            single_put_max: 16 << 20,
            part_size: 8 << 20,
            min_part_size: bucketfs_object_store::MIN_PART_SIZE,
            upload_concurrency: 4,
            readahead_blocks: 4,
            commit_attempts: 8,
            pin_versions: true,
        }
    }
}

pub(crate) struct Context<D: LocalDisk> {
    pub meta: MetaClient,
    pub store: Arc<dyn ObjectStore>,
    pub cache: Arc<BlockCache<D>>,
    pub clock: Arc<dyn Clock>,
    pub fs: FsId,
    /// The bucket prefix of the file system's root: "" or "a/b/".
    pub prefix: String,
    pub root: Handle,
    pub config: DataConfig,
    /// Reads that decide what a client sees (GETATTR, LOOKUP, READ's inode) are
    /// linearizable: close-to-open across gateways needs the latest committed change.
    pub consistency: ReadConsistency,
    pub files: crate::data::FileTable,
    pub fetches: Arc<crate::data::Fetches>,
}

impl<D: LocalDisk> Context<D> {
    pub fn now(&self) -> Timestamp {
        Timestamp::from_unix_nanos(self.clock.wall_nanos())
    }

    pub async fn query(&self, query: Query) -> Result<QueryReply, NfsStatus> {
        self.meta
            .read(query, self.consistency)
            .await
            .map_err(|e| meta_status(&e))
    }

    pub async fn write(&self, command: Command) -> Result<Reply, NfsStatus> {
        self.meta.write(command).await.map_err(|e| meta_status(&e))
    }

    /// The inode a handle names, checked against the handle's generation.
    pub async fn inode(&self, h: &Handle) -> Result<Inode, NfsStatus> {
        if h.fs != self.fs {
            return Err(NfsStatus::Stale);
        }
        let inode = self.inode_by_id(h.ino).await?;
        h.check(&inode)?;
        Ok(inode)
    }

    pub async fn inode_by_id(&self, ino: InodeId) -> Result<Inode, NfsStatus> {
        match self.query(Query::GetAttr { fs: self.fs, ino }).await? {
            QueryReply::Inode(inode) => Ok(inode),
            other => Err(unexpected("GetAttr", &other)),
        }
    }

    /// The inode's primary path, `None` if it has no name left.
    pub async fn path(&self, ino: InodeId) -> Result<Option<String>, NfsStatus> {
        match self.query(Query::Path { fs: self.fs, ino }).await? {
            QueryReply::Path(p) => Ok(p),
            other => Err(unexpected("Path", &other)),
        }
    }

    /// The key of the object for the inode's primary path.
    pub async fn key_of(&self, ino: InodeId) -> Result<Option<String>, NfsStatus> {
        Ok(self
            .path(ino)
            .await?
            .map(|p| keys::object_key(&self.prefix, &p)))
    }
}

pub(crate) fn unexpected(what: &str, reply: &dyn std::fmt::Debug) -> NfsStatus {
    tracing::error!(what, reply = ?reply, "unexpected answer from the metadata cluster");
    NfsStatus::ServerFault
}

/// Retries an S3 call that failed transiently a few times with a short backoff before the
/// NFS client is told to retry (DELAY) — most throttling passes within a second.
pub(crate) async fn with_retries<T, F, Fut>(
    what: &'static str,
    mut call: F,
) -> Result<T, bucketfs_object_store::ObjectStoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, bucketfs_object_store::ObjectStoreError>>,
{
    let mut delay = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_retryable() && attempt < 4 => {
                tracing::debug!(what, attempt, error = %e, "retrying S3 call");
                tokio::time::sleep(delay).await;
                delay *= 4;
                attempt += 1;
            }
            other => return other,
        }
    }
}
