//! Request and response values of the [`ObjectStore`](crate::ObjectStore) seam. Plain data, no
//! I/O; every backend speaks exactly these.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::metadata::UserMetadata;

/// An entity tag, stored without the surrounding quotes S3 puts on the wire. Single PUTs have
/// the MD5 of the body in hex; multipart objects have `md5(concat(part md5s))-N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ETag(String);

impl ETag {
    /// Accepts the quoted wire form or the bare value.
    pub fn new(s: impl AsRef<str>) -> Self {
        let s = s.as_ref();
        let bare = s
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(s);
        ETag(bare.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The wire form for `If-Match` and part lists.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The part count of a multipart ETag (`…-N`), `None` for a single-PUT ETag.
    pub fn part_count(&self) -> Option<u32> {
        self.0.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An S3 object version id. Opaque; `"null"` names the version written while versioning was
/// off or suspended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(String);

impl VersionId {
    pub const NULL: &'static str = "null";

    pub fn new(s: impl Into<String>) -> Self {
        VersionId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_null(&self) -> bool {
        self.0 == Self::NULL
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A multipart upload id. Opaque.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    pub fn new(s: impl Into<String>) -> Self {
        UploadId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bucket's versioning state. The gateway requires `Enabled`: it pins reads to the
/// version it linked, which needs old versions to survive overwrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketVersioning {
    Enabled,
    Suspended,
    /// Versioning was never turned on (S3 reports no status).
    Never,
}

/// Condition on the key's current object for a write to take effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    #[default]
    None,
    /// `If-None-Match: *`: create only; fails if the key has a current object (a delete marker
    /// does not count).
    IfNoneMatch,
    /// `If-Match: etag`: replace only this object; fails on another ETag, `NotFound` if the
    /// key has no current object.
    IfMatch(ETag),
}

/// Options of [`get_range`](crate::ObjectStore::get_range).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Half-open byte range; `None` reads the whole object. The end is clipped to the object
    /// size; a start at or past the end is `RangeNotSatisfiable`; an empty range is invalid.
    pub range: Option<Range<u64>>,
    /// Read this version instead of the current one.
    pub version_id: Option<VersionId>,
    /// Fail with `PreconditionFailed` unless the object read has this ETag.
    pub if_match: Option<ETag>,
}

/// What `head` and `get_range` report about one object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    /// Size of the whole object, not of the range read.
    pub size: u64,
    pub etag: ETag,
    /// `None` when the bucket is not versioned (the null version).
    pub version_id: Option<VersionId>,
    /// Nanoseconds since the epoch. S3 reports whole seconds; the in-memory store reports its
    /// clock's value or `None` if it has no clock.
    pub last_modified_ns: Option<i128>,
    pub metadata: UserMetadata,
}

/// Result of [`get_range`](crate::ObjectStore::get_range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOutput {
    pub meta: ObjectMeta,
    /// The bytes actually returned, after clipping to the object size.
    pub range: Range<u64>,
    pub body: Bytes,
}

/// Options of [`put`](crate::ObjectStore::put).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub precondition: Precondition,
    pub metadata: UserMetadata,
}

/// Result of every call that creates an object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutput {
    pub etag: ETag,
    /// `None` when the bucket is not versioned.
    pub version_id: Option<VersionId>,
}

/// Result of [`delete`](crate::ObjectStore::delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutput {
    /// The delete marker created (unversioned delete), or the version removed (versioned
    /// delete). `None` when the bucket is not versioned.
    pub version_id: Option<VersionId>,
    /// True if a delete marker was created, or if the version removed was one.
    pub delete_marker: bool,
}

/// An existing object version to copy from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub key: String,
    /// `None` copies the current version.
    pub version_id: Option<VersionId>,
}

/// Where [`copy_object`](crate::ObjectStore::copy_object) takes the new object's metadata from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MetadataDirective {
    #[default]
    Copy,
    Replace(UserMetadata),
}

/// Options of [`copy_object`](crate::ObjectStore::copy_object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// Condition on the destination key.
    pub precondition: Precondition,
    pub metadata: MetadataDirective,
}

/// One part of a multipart upload, as returned by `upload_part`/`upload_part_copy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// 1..=10000, strictly increasing in a completion list.
    pub part_number: u32,
    pub etag: ETag,
}

/// Options of [`list`](crate::ObjectStore::list) (ListObjectsV2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub prefix: String,
    /// Usually `"/"`: keys with the delimiter after the prefix are rolled up into
    /// `common_prefixes`.
    pub delimiter: Option<String>,
    /// `next_continuation` of the previous page.
    pub continuation: Option<String>,
    /// Entries (objects plus common prefixes) per page; `None` or values above 1000 mean 1000.
    pub max_keys: Option<u32>,
}

/// One page of [`list`](crate::ObjectStore::list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub common_prefixes: Vec<String>,
    /// Set when more entries follow.
    pub next_continuation: Option<String>,
}

/// An object's current version as listed (user metadata is not part of a listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: ETag,
    pub last_modified_ns: Option<i128>,
}

/// Options of [`list_versions`](crate::ObjectStore::list_versions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListVersionsOptions {
    pub prefix: String,
    /// Resume after this key (after all its versions if `version_id_marker` is `None`).
    pub key_marker: Option<String>,
    /// Resume after this version of `key_marker`.
    pub version_id_marker: Option<VersionId>,
    /// `None` or values above 1000 mean 1000.
    pub max_keys: Option<u32>,
}

/// One page of [`list_versions`](crate::ObjectStore::list_versions): keys in ascending order,
/// each key's versions newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionsPage {
    pub versions: Vec<VersionEntry>,
    /// `(key_marker, version_id_marker)` for the next page, set when more follow.
    pub next_marker: Option<(String, VersionId)>,
}

/// One version or delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: VersionId,
    pub is_latest: bool,
    pub last_modified_ns: Option<i128>,
    pub kind: VersionKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionKind {
    Object { size: u64, etag: ETag },
    DeleteMarker,
}

/// Largest page S3 returns.
pub const MAX_KEYS_PER_PAGE: u32 = 1000;

/// S3's multipart limits.
pub const MAX_PART_NUMBER: u32 = 10_000;
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
