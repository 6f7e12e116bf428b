//! [`MeteredStore`]: an [`ObjectStore`] decorator that gives every S3 call a tracing span
//! (a child of the NFS request that caused it) and counts it, its outcome and its latency.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bucketfs_object_store::{
    BucketVersioning, CompletedPart, CopyOptions, CopySource, DeleteOutput, ETag, GetOptions,
    GetOutput, ListOptions, ListPage, ListVersionsOptions, ObjectMeta, ObjectStore,
    ObjectStoreError, Precondition, PutOptions, PutOutput, Result, UploadId, UserMetadata,
    VersionId, VersionsPage,
};
use bucketfs_telemetry::metrics::names;
use bytes::Bytes;
use tracing::Instrument;

pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

fn outcome(e: &ObjectStoreError) -> &'static str {
    match e {
        ObjectStoreError::NotFound(_) => "not_found",
        ObjectStoreError::PreconditionFailed(_) => "precondition_failed",
        ObjectStoreError::Conflict(_) => "conflict",
        ObjectStoreError::RangeNotSatisfiable(_) => "range_not_satisfiable",
        ObjectStoreError::Throttled(_) => "throttled",
        ObjectStoreError::Retryable(_) => "retryable",
        ObjectStoreError::AccessDenied(_) => "access_denied",
        ObjectStoreError::InvalidRequest(_) => "invalid_request",
        ObjectStoreError::Transport(_) => "transport",
    }
}

async fn observe<T>(
    op: &'static str,
    key: &str,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let span = tracing::debug_span!("s3", op, key);
    let start = tokio::time::Instant::now();
    let result = call.instrument(span).await;
    let label = match &result {
        Ok(_) => names::outcome::OK,
        Err(e) => outcome(e),
    };
    metrics::counter!(names::GATEWAY_S3_REQUESTS_TOTAL, names::S3_OP => op, names::OUTCOME => label)
        .increment(1);
    metrics::histogram!(names::GATEWAY_S3_REQUEST_SECONDS, names::S3_OP => op)
        .record(start.elapsed().as_secs_f64());
    result
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn bucket_versioning(&self) -> Result<BucketVersioning> {
        observe("bucket_versioning", "", self.inner.bucket_versioning()).await
    }

    async fn head(&self, key: &str, version_id: Option<&VersionId>) -> Result<ObjectMeta> {
        observe("head", key, self.inner.head(key, version_id)).await
    }

    async fn get_range(&self, key: &str, opts: GetOptions) -> Result<GetOutput> {
        observe("get_range", key, self.inner.get_range(key, opts)).await
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<PutOutput> {
        observe("put", key, self.inner.put(key, body, opts)).await
    }

    async fn copy_object(
        &self,
        source: &CopySource,
        dst_key: &str,
        opts: CopyOptions,
    ) -> Result<PutOutput> {
        observe(
            "copy_object",
            dst_key,
            self.inner.copy_object(source, dst_key, opts),
        )
        .await
    }

    async fn delete(&self, key: &str, version_id: Option<&VersionId>) -> Result<DeleteOutput> {
        observe("delete", key, self.inner.delete(key, version_id)).await
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        let prefix = opts.prefix.clone();
        observe("list", &prefix, self.inner.list(opts)).await
    }

    async fn list_versions(&self, opts: ListVersionsOptions) -> Result<VersionsPage> {
        let prefix = opts.prefix.clone();
        observe("list_versions", &prefix, self.inner.list_versions(opts)).await
    }

    async fn create_multipart(&self, key: &str, metadata: UserMetadata) -> Result<UploadId> {
        observe(
            "create_multipart",
            key,
            self.inner.create_multipart(key, metadata),
        )
        .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        body: Bytes,
    ) -> Result<ETag> {
        observe(
            "upload_part",
            key,
            self.inner.upload_part(key, upload_id, part_number, body),
        )
        .await
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        source: &CopySource,
        range: Option<Range<u64>>,
    ) -> Result<ETag> {
        observe(
            "upload_part_copy",
            key,
            self.inner
                .upload_part_copy(key, upload_id, part_number, source, range),
        )
        .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        precondition: Precondition,
    ) -> Result<PutOutput> {
        observe(
            "complete_multipart",
            key,
            self.inner
                .complete_multipart(key, upload_id, parts, precondition),
        )
        .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &UploadId) -> Result<()> {
        observe(
            "abort_multipart",
            key,
            self.inner.abort_multipart(key, upload_id),
        )
        .await
    }
}
