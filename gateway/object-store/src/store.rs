//! The [`ObjectStore`] trait: the gateway's whole view of S3. It is bound to one bucket, is
//! object-safe (`Arc<dyn ObjectStore>`) via `async_trait`, and exposes only what a
//! write-through file gateway needs: versioned, conditional, ranged single-object operations,
//! multipart with part copy, and listings. Semantics follow S3; every backend (S3, in-memory,
//! fault-injecting) passes the same conformance suite in `tests/conformance.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::metadata::UserMetadata;
use crate::types::*;

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// The bucket's versioning state.
    async fn bucket_versioning(&self) -> Result<BucketVersioning>;

    /// Metadata of the current version, or of `version_id`. A key whose current version is a
    /// delete marker, or a version id naming a delete marker, is `NotFound`.
    async fn head(&self, key: &str, version_id: Option<&VersionId>) -> Result<ObjectMeta>;

    /// Reads bytes of the current version or of a pinned version.
    async fn get_range(&self, key: &str, opts: GetOptions) -> Result<GetOutput>;

    /// Writes a whole object in one request.
    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<PutOutput>;

    /// Server-side copy of a whole object version to `dst_key` (at most 5 GiB).
    async fn copy_object(
        &self,
        source: &CopySource,
        dst_key: &str,
        opts: CopyOptions,
    ) -> Result<PutOutput>;

    /// Without `version_id`: hides the key behind a new delete marker (versioned bucket) or
    /// removes it. With `version_id`: removes that version permanently. Deleting a missing key
    /// succeeds, as in S3.
    async fn delete(&self, key: &str, version_id: Option<&VersionId>) -> Result<DeleteOutput>;

    /// One page of current objects (ListObjectsV2).
    async fn list(&self, opts: ListOptions) -> Result<ListPage>;

    /// One page of versions and delete markers (ListObjectVersions).
    async fn list_versions(&self, opts: ListVersionsOptions) -> Result<VersionsPage>;

    /// Starts a multipart upload; the metadata applies to the completed object.
    async fn create_multipart(&self, key: &str, metadata: UserMetadata) -> Result<UploadId>;

    /// Uploads one part (1..=10000). Every part but the last must be at least 5 MiB by the time
    /// the upload completes.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        body: Bytes,
    ) -> Result<ETag>;

    /// Makes a part from a byte range (half-open, `None` = whole object) of an existing
    /// object version, without moving the bytes through the gateway.
    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        source: &CopySource,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ETag>;

    /// Assembles the listed parts into the object, if `precondition` holds on the key. On
    /// `PreconditionFailed` the upload stays open (retry or abort it).
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        precondition: Precondition,
    ) -> Result<PutOutput>;

    /// Discards an upload and its parts.
    async fn abort_multipart(&self, key: &str, upload_id: &UploadId) -> Result<()>;
}

/// Lets decorators and callers hold `Arc<dyn ObjectStore>` (or `Arc<S>`) where an
/// `ObjectStore` is expected, e.g. `FaultyObjectStore<Arc<dyn ObjectStore>>`.
#[async_trait]
impl<S: ObjectStore + ?Sized> ObjectStore for Arc<S> {
    async fn bucket_versioning(&self) -> Result<BucketVersioning> {
        (**self).bucket_versioning().await
    }

    async fn head(&self, key: &str, version_id: Option<&VersionId>) -> Result<ObjectMeta> {
        (**self).head(key, version_id).await
    }

    async fn get_range(&self, key: &str, opts: GetOptions) -> Result<GetOutput> {
        (**self).get_range(key, opts).await
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<PutOutput> {
        (**self).put(key, body, opts).await
    }

    async fn copy_object(
        &self,
        source: &CopySource,
        dst_key: &str,
        opts: CopyOptions,
    ) -> Result<PutOutput> {
        (**self).copy_object(source, dst_key, opts).await
    }

    async fn delete(&self, key: &str, version_id: Option<&VersionId>) -> Result<DeleteOutput> {
        (**self).delete(key, version_id).await
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        (**self).list(opts).await
    }

    async fn list_versions(&self, opts: ListVersionsOptions) -> Result<VersionsPage> {
        (**self).list_versions(opts).await
    }

    async fn create_multipart(&self, key: &str, metadata: UserMetadata) -> Result<UploadId> {
        (**self).create_multipart(key, metadata).await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        body: Bytes,
    ) -> Result<ETag> {
        (**self)
            .upload_part(key, upload_id, part_number, body)
            .await
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        source: &CopySource,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ETag> {
        (**self)
            .upload_part_copy(key, upload_id, part_number, source, range)
            .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        precondition: Precondition,
    ) -> Result<PutOutput> {
        (**self)
            .complete_multipart(key, upload_id, parts, precondition)
            .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &UploadId) -> Result<()> {
        (**self).abort_multipart(key, upload_id).await
    }
}
