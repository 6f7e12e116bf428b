//! `S3ObjectStore`: the [`ObjectStore`] trait over aws-sdk-s3.
//!
//! Design points:
//! - Retries belong to the caller. The SDK is configured with `max_attempts` (default 1) so a
//!   conditional write is never silently re-sent underneath the gateway, which has to reason
//!   about "maybe applied" outcomes itself (see `ObjectStoreError`).
//! - Every call has a deadline: the SDK's connect and per-operation timeouts, plus a
//!   `tokio::time::timeout` around the whole call including reading the body, which the SDK's
//!   operation timeout does not cover.
//! - Errors are classified by S3 error code first and HTTP status second
//!   ([`classify`]), because HEAD responses carry no body and so no code.
//! - Responses are checked rather than trusted: a missing ETag or a body shorter than the
//!   announced range is a `Transport` error, not a silently short read.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CompletedMultipartUpload,
    CreateBucketConfiguration, VersioningConfiguration,
};
use bytes::Bytes;

use crate::error::{ObjectStoreError as E, Result};
use crate::metadata::UserMetadata;
use crate::store::ObjectStore;
use crate::types::*;

/// Static credentials, for tests and deployments that do not use the default provider chain.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// How to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// A non-AWS endpoint (moto, MinIO, ...). `None` uses AWS's regional endpoints.
    pub endpoint_url: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`; needed by most
    /// S3-compatible servers.
    pub force_path_style: bool,
    /// `None` uses the default chain (environment, profile, web identity, IMDS, ...).
    pub credentials: Option<S3Credentials>,
    /// Deadline of one whole call, including reading a response body.
    pub operation_timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per call inside the SDK; 1 leaves every retry decision to the caller.
    pub max_attempts: u32,
}

impl S3Config {
    pub fn new(bucket: impl Into<String>, region: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            region: region.into(),
            endpoint_url: None,
            force_path_style: false,
            credentials: None,
            operation_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 1,
        }
    }
}

/// An [`ObjectStore`] bound to one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    region: String,
    operation_timeout: Duration,
}

impl S3ObjectStore {
    /// Builds the SDK client. Loads the default credential chain only when no static
    /// credentials are given (loading it probes the environment and may take a moment).
    pub async fn connect(config: S3Config) -> Self {
        let region = Region::new(config.region.clone());
        let mut builder = match &config.credentials {
            Some(c) => aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(region)
                .credentials_provider(Credentials::new(
                    c.access_key_id.clone(),
                    c.secret_access_key.clone(),
                    c.session_token.clone(),
                    None,
                    "bucketfs-static",
                )),
            None => {
                let shared = aws_config::defaults(BehaviorVersion::latest())
                    .region(region)
                    .load()
                    .await;
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        builder = builder
            .force_path_style(config.force_path_style)
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_timeout(config.operation_timeout)
                    .operation_attempt_timeout(config.operation_timeout)
                    .build(),
            );
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        S3ObjectStore {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket,
            region: config.region,
            operation_timeout: config.operation_timeout,
        }
    }

    /// Wraps an existing client (custom HTTP client, interceptors, ...).
    pub fn from_client(
        client: Client,
        bucket: impl Into<String>,
        region: impl Into<String>,
        operation_timeout: Duration,
    ) -> Self {
        S3ObjectStore {
            client,
            bucket: bucket.into(),
            region: region.into(),
            operation_timeout,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the bucket (setup and tests; the gateway never creates buckets).
    pub async fn create_bucket(&self) -> Result<()> {
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the one region that rejects an explicit location constraint.
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        self.timed("CreateBucket", async {
            req.send()
                .await
                .map_err(|e| map_sdk_error(e, "CreateBucket"))
        })
        .await?;
        Ok(())
    }

    /// Turns versioning on (`true`) or suspends it (`false`).
    pub async fn set_versioning(&self, enabled: bool) -> Result<()> {
        let status = if enabled {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        let req = self
            .client
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build());
        self.timed("PutBucketVersioning", async {
            req.send()
                .await
                .map_err(|e| map_sdk_error(e, "PutBucketVersioning"))
        })
        .await?;
        Ok(())
    }

    async fn timed<T, F>(&self, what: &str, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        match tokio::time::timeout(self.operation_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(E::Transport(format!(
                "{what} did not finish within {:?}",
                self.operation_timeout
            ))),
        }
    }

    /// `bucket/key[?versionId=v]`, URL-encoded as CopySource requires.
    fn copy_source(&self, source: &CopySource) -> String {
        let mut s = format!("{}/{}", self.bucket, url_encode_path(&source.key));
        if let Some(v) = &source.version_id {
            s.push_str("?versionId=");
            s.push_str(&url_encode_path(v.as_str()));
        }
        s
    }
}

/// Classifies a failed response by S3 error code, falling back to the HTTP status (HEAD
/// responses have no body, hence no code). Public so the mapping can be tested on its own.
pub fn classify(status: u16, code: Option<&str>, detail: String) -> E {
    match code.unwrap_or("") {
        "NoSuchKey" | "NoSuchVersion" | "NoSuchUpload" | "NoSuchBucket" | "NotFound" => {
            return E::NotFound(detail);
        }
        // GET/HEAD of a delete marker's version id.
        "MethodNotAllowed" => return E::NotFound(detail),
        "PreconditionFailed" => return E::PreconditionFailed(detail),
        "ConditionalRequestConflict" | "OperationAborted" => return E::Conflict(detail),
        "InvalidRange" => return E::RangeNotSatisfiable(detail),
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequests"
        | "RequestThrottled"
        | "RequestThrottledException" => {
            return E::Throttled(detail);
        }
        "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
            return E::Retryable(detail);
        }
        "AccessDenied"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "AllAccessDisabled"
        | "AccountProblem" => {
            return E::AccessDenied(detail);
        }
        _ => {}
    }
    match status {
        404 | 405 => E::NotFound(detail),
        412 => E::PreconditionFailed(detail),
        409 => E::Conflict(detail),
        416 => E::RangeNotSatisfiable(detail),
        // S3 uses a bare 503 for SlowDown, and 429 is what S3-compatible servers send.
        429 | 503 => E::Throttled(detail),
        401 | 403 => E::AccessDenied(detail),
        500..=599 => E::Retryable(detail),
        _ => E::InvalidRequest(detail),
    }
}

/// Maps an SDK failure into the crate's error.
pub fn map_sdk_error<Err>(
    err: SdkError<Err, aws_sdk_s3::config::http::HttpResponse>,
    what: &str,
) -> E
where
    Err: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = format!("{what}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(ctx) => {
            classify(ctx.raw().status().as_u16(), ctx.err().code(), detail)
        }
        SdkError::ConstructionFailure(_) => E::InvalidRequest(detail),
        SdkError::DispatchFailure(d) if d.is_user() => E::InvalidRequest(detail),
        // Timeouts, connection failures and unparsable responses: the outcome is unknown.
        _ => E::Transport(detail),
    }
}

/// moto answers GetBucketVersioning with a `<GetBucketVersioningResponse>` root element instead
/// of S3's `<VersioningConfiguration>`, which the SDK refuses to parse. This reads that one
/// shape: a 200 whose body has that root, with `<Status>Enabled|Suspended</Status>` or none.
/// Anything else stays an error.
fn moto_versioning_reply<Err>(
    e: &SdkError<Err, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<BucketVersioning> {
    let raw = e.raw_response()?;
    if raw.status().as_u16() != 200 {
        return None;
    }
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    if !body.contains("<GetBucketVersioningResponse") {
        return None;
    }
    let status = match body.split_once("<Status>") {
        None => return Some(BucketVersioning::Never),
        Some((_, rest)) => rest.split_once("</Status>")?.0.trim(),
    };
    match status {
        "Enabled" => Some(BucketVersioning::Enabled),
        "Suspended" => Some(BucketVersioning::Suspended),
        _ => None,
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn url_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Range` header for a half-open range.
fn range_header(range: &Range<u64>) -> Result<String> {
    if range.start >= range.end {
        return Err(E::InvalidRequest(format!(
            "empty or inverted range {range:?}"
        )));
    }
    Ok(format!("bytes={}-{}", range.start, range.end - 1))
}

/// Parses `bytes a-b/total` into (`a..b+1`, total).
fn parse_content_range(s: &str) -> Option<(Range<u64>, u64)> {
    let rest = s.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b, total): (u64, u64, u64) = (a.parse().ok()?, b.parse().ok()?, total.parse().ok()?);
    (a <= b && b < total).then_some((a..b + 1, total))
}

fn etag_of(etag: Option<&str>, what: &str) -> Result<ETag> {
    etag.map(ETag::new)
        .ok_or_else(|| E::Transport(format!("{what}: response has no ETag")))
}

/// S3 reports the null version as `"null"` or not at all; both become `None`.
fn version_of(v: Option<&str>) -> Option<VersionId> {
    v.filter(|v| *v != VersionId::NULL).map(VersionId::new)
}

fn nanos_of(t: Option<&DateTime>) -> Option<i128> {
    t.map(|t| t.secs() as i128 * 1_000_000_000 + t.subsec_nanos() as i128)
}

fn size_of(n: Option<i64>, what: &str) -> Result<u64> {
    n.and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| E::Transport(format!("{what}: response has no valid size")))
}

fn metadata_map(m: &UserMetadata) -> Result<Option<HashMap<String, String>>> {
    m.validate()?;
    let map = m.to_map();
    Ok((!map.is_empty()).then(|| map.into_iter().collect()))
}

fn part_number_i32(n: u32) -> Result<i32> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n as i32)
    } else {
        Err(E::InvalidRequest(format!(
            "part number {n} outside 1..={MAX_PART_NUMBER}"
        )))
    }
}

/// `(if_match, if_none_match)` header values for a precondition.
fn precondition_headers(p: &Precondition) -> (Option<String>, Option<String>) {
    match p {
        Precondition::None => (None, None),
        Precondition::IfNoneMatch => (None, Some("*".to_owned())),
        Precondition::IfMatch(e) => (Some(e.quoted()), None),
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn bucket_versioning(&self) -> Result<BucketVersioning> {
        let req = self.client.get_bucket_versioning().bucket(&self.bucket);
        self.timed("GetBucketVersioning", async {
            let out = match req.send().await {
                Ok(out) => out,
                Err(e) => {
                    return match moto_versioning_reply(&e) {
                        Some(status) => Ok(status),
                        None => Err(map_sdk_error(e, "GetBucketVersioning")),
                    };
                }
            };
            match out.status() {
                Some(BucketVersioningStatus::Enabled) => Ok(BucketVersioning::Enabled),
                Some(BucketVersioningStatus::Suspended) => Ok(BucketVersioning::Suspended),
                None => Ok(BucketVersioning::Never),
                Some(other) => Err(E::Transport(format!(
                    "GetBucketVersioning: unknown status {other:?}"
                ))),
            }
        })
        .await
    }

    async fn head(&self, key: &str, version_id: Option<&VersionId>) -> Result<ObjectMeta> {
        let req = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(|v| v.as_str().to_owned()));
        let out = self
            .timed("HeadObject", async {
                req.send().await.map_err(|e| map_sdk_error(e, "HeadObject"))
            })
            .await?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: size_of(out.content_length(), "HeadObject")?,
            etag: etag_of(out.e_tag(), "HeadObject")?,
            version_id: version_of(out.version_id()),
            last_modified_ns: nanos_of(out.last_modified()),
            metadata: UserMetadata::from_map(
                out.metadata()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v.clone())),
            ),
        })
    }

    async fn get_range(&self, key: &str, opts: GetOptions) -> Result<GetOutput> {
        let range = opts.range.as_ref().map(range_header).transpose()?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .set_version_id(opts.version_id.map(|v| v.as_str().to_owned()))
            .set_if_match(opts.if_match.map(|e| e.quoted()));
        self.timed("GetObject", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "GetObject"))?;
            let len = size_of(out.content_length(), "GetObject")?;
            let (served, size) = match (opts.range.is_some(), out.content_range()) {
                (true, Some(cr)) => parse_content_range(cr)
                    .ok_or_else(|| E::Transport(format!("GetObject: bad Content-Range {cr:?}")))?,
                // A server may answer a range covering the whole object with a plain 200.
                _ => (0..len, len),
            };
            let meta = ObjectMeta {
                key: key.to_owned(),
                size,
                etag: etag_of(out.e_tag(), "GetObject")?,
                version_id: version_of(out.version_id()),
                last_modified_ns: nanos_of(out.last_modified()),
                metadata: UserMetadata::from_map(
                    out.metadata()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.as_str(), v.clone())),
                ),
            };
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| E::Transport(format!("GetObject: reading body: {e}")))?
                .into_bytes();
            if body.len() as u64 != served.end - served.start {
                return Err(E::Transport(format!(
                    "GetObject: body has {} bytes, expected {}",
                    body.len(),
                    served.end - served.start
                )));
            }
            Ok(GetOutput {
                meta,
                range: served,
                body,
            })
        })
        .await
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<PutOutput> {
        let (if_match, if_none_match) = precondition_headers(&opts.precondition);
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .set_metadata(metadata_map(&opts.metadata)?)
            .set_if_match(if_match)
            .set_if_none_match(if_none_match);
        self.timed("PutObject", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "PutObject"))?;
            Ok(PutOutput {
                etag: etag_of(out.e_tag(), "PutObject")?,
                version_id: version_of(out.version_id()),
            })
        })
        .await
    }

    async fn copy_object(
        &self,
        source: &CopySource,
        dst_key: &str,
        opts: CopyOptions,
    ) -> Result<PutOutput> {
        let (if_match, if_none_match) = precondition_headers(&opts.precondition);
        let mut req = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(dst_key)
            .copy_source(self.copy_source(source))
            .set_if_match(if_match)
            .set_if_none_match(if_none_match);
        if let MetadataDirective::Replace(m) = &opts.metadata {
            req = req
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .set_metadata(metadata_map(m)?);
        }
        self.timed("CopyObject", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "CopyObject"))?;
            let etag = out.copy_object_result().and_then(|r| r.e_tag());
            Ok(PutOutput {
                etag: etag_of(etag, "CopyObject")?,
                version_id: version_of(out.version_id()),
            })
        })
        .await
    }

    async fn delete(&self, key: &str, version_id: Option<&VersionId>) -> Result<DeleteOutput> {
        let req = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(|v| v.as_str().to_owned()));
        self.timed("DeleteObject", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "DeleteObject"))?;
            Ok(DeleteOutput {
                version_id: version_of(out.version_id()),
                delete_marker: out.delete_marker().unwrap_or(false),
            })
        })
        .await
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        let max = opts
            .max_keys
            .unwrap_or(MAX_KEYS_PER_PAGE)
            .clamp(1, MAX_KEYS_PER_PAGE);
        let req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&opts.prefix)
            .set_delimiter(opts.delimiter.filter(|d| !d.is_empty()))
            .set_continuation_token(opts.continuation)
            .max_keys(max as i32);
        self.timed("ListObjectsV2", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "ListObjectsV2"))?;
            let mut objects = Vec::with_capacity(out.contents().len());
            for o in out.contents() {
                let key = o
                    .key()
                    .ok_or_else(|| E::Transport("ListObjectsV2: entry without key".into()))?;
                objects.push(ListedObject {
                    key: key.to_owned(),
                    size: size_of(o.size(), "ListObjectsV2")?,
                    etag: etag_of(o.e_tag(), "ListObjectsV2")?,
                    last_modified_ns: nanos_of(o.last_modified()),
                });
            }
            let common_prefixes = out
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned))
                .collect();
            let next_continuation = if out.is_truncated().unwrap_or(false) {
                Some(
                    out.next_continuation_token()
                        .ok_or_else(|| {
                            E::Transport("ListObjectsV2: truncated without a token".into())
                        })?
                        .to_owned(),
                )
            } else {
                None
            };
            Ok(ListPage {
                objects,
                common_prefixes,
                next_continuation,
            })
        })
        .await
    }

    async fn list_versions(&self, opts: ListVersionsOptions) -> Result<VersionsPage> {
        let max = opts
            .max_keys
            .unwrap_or(MAX_KEYS_PER_PAGE)
            .clamp(1, MAX_KEYS_PER_PAGE);
        let req = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(&opts.prefix)
            .set_key_marker(opts.key_marker)
            .set_version_id_marker(opts.version_id_marker.map(|v| v.as_str().to_owned()))
            .max_keys(max as i32);
        self.timed("ListObjectVersions", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "ListObjectVersions"))?;
            let missing = |f: &str| E::Transport(format!("ListObjectVersions: entry without {f}"));
            let mut versions = Vec::new();
            for v in out.versions() {
                versions.push(VersionEntry {
                    key: v.key().ok_or_else(|| missing("key"))?.to_owned(),
                    version_id: VersionId::new(v.version_id().ok_or_else(|| missing("version"))?),
                    is_latest: v.is_latest().unwrap_or(false),
                    last_modified_ns: nanos_of(v.last_modified()),
                    kind: VersionKind::Object {
                        size: size_of(v.size(), "ListObjectVersions")?,
                        etag: etag_of(v.e_tag(), "ListObjectVersions")?,
                    },
                });
            }
            for m in out.delete_markers() {
                versions.push(VersionEntry {
                    key: m.key().ok_or_else(|| missing("key"))?.to_owned(),
                    version_id: VersionId::new(m.version_id().ok_or_else(|| missing("version"))?),
                    is_latest: m.is_latest().unwrap_or(false),
                    last_modified_ns: nanos_of(m.last_modified()),
                    kind: VersionKind::DeleteMarker,
                });
            }
            // The SDK splits S3's interleaved <Version>/<DeleteMarker> list into two vectors,
            // losing their relative order. Rebuild it: keys ascending, then the latest entry,
            // then newest first by time. Entries of one key written within the same second
            // (S3's timestamp resolution) may come out in either order; `is_latest` is exact.
            versions.sort_by(|a, b| {
                a.key
                    .cmp(&b.key)
                    .then(b.is_latest.cmp(&a.is_latest))
                    .then(b.last_modified_ns.cmp(&a.last_modified_ns))
            });
            let next_marker = if out.is_truncated().unwrap_or(false) {
                let key = out
                    .next_key_marker()
                    .ok_or_else(|| missing("next key marker"))?;
                let version = out
                    .next_version_id_marker()
                    .ok_or_else(|| missing("next version marker"))?;
                Some((key.to_owned(), VersionId::new(version)))
            } else {
                None
            };
            Ok(VersionsPage {
                versions,
                next_marker,
            })
        })
        .await
    }

    async fn create_multipart(&self, key: &str, metadata: UserMetadata) -> Result<UploadId> {
        let req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(metadata_map(&metadata)?);
        self.timed("CreateMultipartUpload", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "CreateMultipartUpload"))?;
            out.upload_id().map(UploadId::new).ok_or_else(|| {
                E::Transport("CreateMultipartUpload: response has no upload id".into())
            })
        })
        .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        body: Bytes,
    ) -> Result<ETag> {
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id.as_str())
            .part_number(part_number_i32(part_number)?)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
        self.timed("UploadPart", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "UploadPart"))?;
            etag_of(out.e_tag(), "UploadPart")
        })
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
        let req = self
            .client
            .upload_part_copy()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id.as_str())
            .part_number(part_number_i32(part_number)?)
            .copy_source(self.copy_source(source))
            .set_copy_source_range(range.as_ref().map(range_header).transpose()?);
        self.timed("UploadPartCopy", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "UploadPartCopy"))?;
            etag_of(
                out.copy_part_result().and_then(|r| r.e_tag()),
                "UploadPartCopy",
            )
        })
        .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        precondition: Precondition,
    ) -> Result<PutOutput> {
        let mut sdk_parts = Vec::with_capacity(parts.len());
        for p in parts {
            sdk_parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(part_number_i32(p.part_number)?)
                    .e_tag(p.etag.quoted())
                    .build(),
            );
        }
        let (if_match, if_none_match) = precondition_headers(&precondition);
        let req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id.as_str())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(sdk_parts))
                    .build(),
            )
            .set_if_match(if_match)
            .set_if_none_match(if_none_match);
        self.timed("CompleteMultipartUpload", async {
            let out = req
                .send()
                .await
                .map_err(|e| map_sdk_error(e, "CompleteMultipartUpload"))?;
            Ok(PutOutput {
                etag: etag_of(out.e_tag(), "CompleteMultipartUpload")?,
                version_id: version_of(out.version_id()),
            })
        })
        .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &UploadId) -> Result<()> {
        let req = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id.as_str());
        self.timed("AbortMultipartUpload", async {
            req.send()
                .await
                .map_err(|e| map_sdk_error(e, "AbortMultipartUpload"))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_code_then_status() {
        let c = |s, code| classify(s, code, String::new());
        assert!(c(404, Some("NoSuchKey")).is_not_found());
        assert!(c(404, Some("NoSuchVersion")).is_not_found());
        assert!(c(404, Some("NoSuchUpload")).is_not_found());
        assert!(c(404, None).is_not_found());
        assert!(c(405, None).is_not_found());
        assert!(c(412, Some("PreconditionFailed")).is_precondition_failed());
        assert!(c(412, None).is_precondition_failed());
        assert!(matches!(
            c(409, Some("ConditionalRequestConflict")),
            E::Conflict(_)
        ));
        assert!(matches!(c(503, Some("SlowDown")), E::Throttled(_)));
        assert!(matches!(c(503, None), E::Throttled(_)));
        assert!(matches!(
            c(503, Some("ServiceUnavailable")),
            E::Retryable(_)
        ));
        assert!(matches!(c(500, Some("InternalError")), E::Retryable(_)));
        assert!(matches!(c(400, Some("RequestTimeout")), E::Retryable(_)));
        assert!(matches!(c(403, Some("AccessDenied")), E::AccessDenied(_)));
        assert!(matches!(
            c(403, Some("SignatureDoesNotMatch")),
            E::AccessDenied(_)
        ));
        assert!(matches!(
            c(416, Some("InvalidRange")),
            E::RangeNotSatisfiable(_)
        ));
        assert!(matches!(
            c(400, Some("EntityTooSmall")),
            E::InvalidRequest(_)
        ));
        assert!(matches!(c(400, Some("InvalidPart")), E::InvalidRequest(_)));
        assert!(matches!(
            c(301, Some("PermanentRedirect")),
            E::InvalidRequest(_)
        ));
        for e in [c(503, None), c(500, None), c(409, None)] {
            assert!(e.is_retryable(), "{e:?}");
        }
        for e in [c(404, None), c(412, None), c(403, None), c(400, None)] {
            assert!(!e.is_retryable(), "{e:?}");
        }
    }

    #[test]
    fn wire_helpers() {
        assert_eq!(range_header(&(0..10)).unwrap(), "bytes=0-9");
        assert!(range_header(&(5..5)).is_err());
        assert_eq!(parse_content_range("bytes 1-1/2"), Some((1..2, 2)));
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0..10, 100)));
        assert_eq!(parse_content_range("bytes 5-1/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(url_encode_path("dir a/b+c%é"), "dir%20a/b%2Bc%25%C3%A9");
        assert_eq!(version_of(Some("null")), None);
        assert_eq!(version_of(Some("abc")), Some(VersionId::new("abc")));
    }
}
