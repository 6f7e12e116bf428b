//! `MemObjectStore`: one S3 bucket in memory, for unit tests and the simulator.
//!
//! It models what the gateway's correctness depends on, not just the happy path: every version
//! is kept (so pinned reads of overwritten data work), deletes add delete markers, ETags are
//! the MD5 of the body or S3's multipart form (`md5(concat(part md5s))-N`), preconditions are
//! checked atomically with the write under one lock, multipart enforces S3's part rules
//! (minimum part size, ascending part numbers, matching part ETags), and listings paginate with
//! a delimiter exactly like ListObjectsV2. It is deterministic: version and upload ids come from
//! a counter (prefixed with the caller's seed, so ids from two stores never collide by
//! accident), and time only from the optional injected [`Clock`].

use std::collections::BTreeMap;
use std::ops::{Bound, Range};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bucketfs_runtime::Clock;
use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};

use crate::error::{ObjectStoreError as E, Result};
use crate::metadata::UserMetadata;
use crate::store::ObjectStore;
use crate::types::*;

/// Construction parameters of a [`MemObjectStore`].
#[derive(Clone)]
pub struct MemConfig {
    pub versioning: BucketVersioning,
    /// Minimum size of every part but the last at completion. S3 uses 5 MiB; tests may lower
    /// it to keep buffers small.
    pub min_part_size: u64,
    /// Mixed into version and upload ids.
    pub seed: u64,
    /// Source of `last_modified_ns`; without one, times are `None`.
    pub clock: Option<Arc<dyn Clock>>,
}

impl Default for MemConfig {
    fn default() -> Self {
        MemConfig {
            versioning: BucketVersioning::Enabled,
            min_part_size: MIN_PART_SIZE,
            seed: 0,
            clock: None,
        }
    }
}

impl std::fmt::Debug for MemConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemConfig")
            .field("versioning", &self.versioning)
            .field("min_part_size", &self.min_part_size)
            .field("seed", &self.seed)
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

#[derive(Debug, Clone)]
struct Version {
    /// `"null"` for versions written while versioning was not enabled.
    id: VersionId,
    last_modified_ns: Option<i128>,
    data: Option<ObjectData>,
}

/// Contents of a real version; a delete marker has none.
#[derive(Debug, Clone)]
struct ObjectData {
    body: Bytes,
    etag: ETag,
    metadata: UserMetadata,
}

#[derive(Debug)]
struct Upload {
    key: String,
    metadata: UserMetadata,
    parts: BTreeMap<u32, Part>,
}

#[derive(Debug)]
struct Part {
    body: Bytes,
    md5: [u8; 16],
}

#[derive(Debug, Default)]
struct State {
    versioning: Option<BucketVersioning>,
    /// Per key, oldest first; the last entry is the current version.
    objects: BTreeMap<String, Vec<Version>>,
    uploads: BTreeMap<String, Upload>,
    next_id: u64,
}

/// An in-memory, versioned, single-bucket object store with S3 semantics.
#[derive(Debug)]
pub struct MemObjectStore {
    config: MemConfig,
    state: Mutex<State>,
}

impl Default for MemObjectStore {
    fn default() -> Self {
        MemObjectStore::new(MemConfig::default())
    }
}

impl MemObjectStore {
    /// A bucket with versioning enabled, 5 MiB minimum parts, no clock.
    pub fn new(config: MemConfig) -> Self {
        let state = State {
            versioning: Some(config.versioning),
            ..State::default()
        };
        MemObjectStore {
            config,
            state: Mutex::new(state),
        }
    }

    /// Changes the bucket's versioning, as PutBucketVersioning does. A bucket that has been
    /// versioned can only be suspended, never returned to `Never`.
    pub fn set_versioning(&self, status: BucketVersioning) -> Result<()> {
        let mut st = self.lock();
        if status == BucketVersioning::Never && st.versioning != Some(BucketVersioning::Never) {
            return Err(E::InvalidRequest(
                "versioning cannot be turned off once enabled, only suspended".into(),
            ));
        }
        st.versioning = Some(status);
        Ok(())
    }

    /// Number of open multipart uploads (to check that callers abort what they abandon).
    pub fn open_uploads(&self) -> usize {
        self.lock().uploads.len()
    }

    /// Total bytes held across all versions and open parts.
    pub fn stored_bytes(&self) -> u64 {
        let st = self.lock();
        let versions: u64 = st
            .objects
            .values()
            .flatten()
            .filter_map(|v| v.data.as_ref())
            .map(|d| d.body.len() as u64)
            .sum();
        let parts: u64 = st
            .uploads
            .values()
            .flat_map(|u| u.parts.values())
            .map(|p| p.body.len() as u64)
            .sum();
        versions + parts
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation completes its checks before it changes anything, so a panic in
        // another thread cannot have left the state half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Option<i128> {
        self.config.clock.as_ref().map(|c| c.wall_nanos())
    }

    fn new_id(&self, st: &mut State) -> String {
        st.next_id += 1;
        format!("{:x}-{:08}", self.config.seed, st.next_id)
    }

    /// Adds a version under the bucket's versioning rules and returns its public id.
    fn push_version(
        &self,
        st: &mut State,
        key: &str,
        data: Option<ObjectData>,
    ) -> Option<VersionId> {
        let enabled = st.versioning == Some(BucketVersioning::Enabled);
        let id = if enabled {
            VersionId::new(self.new_id(st))
        } else {
            VersionId::new(VersionId::NULL)
        };
        let version = Version {
            id: id.clone(),
            last_modified_ns: self.now(),
            data,
        };
        let versions = st.objects.entry(key.to_owned()).or_default();
        if !enabled {
            // Unversioned and suspended buckets keep one "null" version per key, replaced in place.
            versions.retain(|v| !v.id.is_null());
        }
        versions.push(version);
        enabled.then_some(id)
    }
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn not_found_key(key: &str) -> E {
    E::NotFound(format!("no such key {key:?}"))
}

/// The current version of `key` if it is a real object (not a delete marker).
fn current<'a>(st: &'a State, key: &str) -> Option<(&'a Version, &'a ObjectData)> {
    let v = st.objects.get(key)?.last()?;
    v.data.as_ref().map(|d| (v, d))
}

/// Resolves a read of `key` (current or pinned) to a real object version.
fn resolve<'a>(
    st: &'a State,
    key: &str,
    version_id: Option<&VersionId>,
) -> Result<(&'a Version, &'a ObjectData)> {
    match version_id {
        None => current(st, key).ok_or_else(|| not_found_key(key)),
        Some(id) => {
            let v = st
                .objects
                .get(key)
                .and_then(|vs| vs.iter().find(|v| &v.id == id))
                .ok_or_else(|| E::NotFound(format!("no version {id} of {key:?}")))?;
            // S3 answers 405 for a delete marker's version id; to the caller it holds no data.
            let d = v.data.as_ref().ok_or_else(|| {
                E::NotFound(format!("version {id} of {key:?} is a delete marker"))
            })?;
            Ok((v, d))
        }
    }
}

fn check_precondition(st: &State, key: &str, precondition: &Precondition) -> Result<()> {
    match precondition {
        Precondition::None => Ok(()),
        Precondition::IfNoneMatch => match current(st, key) {
            Some(_) => Err(E::PreconditionFailed(format!(
                "If-None-Match: {key:?} already exists"
            ))),
            None => Ok(()),
        },
        Precondition::IfMatch(want) => match current(st, key) {
            None => Err(not_found_key(key)),
            Some((_, d)) if &d.etag == want => Ok(()),
            Some((_, d)) => Err(E::PreconditionFailed(format!(
                "If-Match: {key:?} has ETag {}, not {want}",
                d.etag
            ))),
        },
    }
}

fn meta_of(key: &str, v: &Version, d: &ObjectData) -> ObjectMeta {
    ObjectMeta {
        key: key.to_owned(),
        size: d.body.len() as u64,
        etag: d.etag.clone(),
        version_id: (!v.id.is_null()).then(|| v.id.clone()),
        last_modified_ns: v.last_modified_ns,
        metadata: d.metadata.clone(),
    }
}

/// Clips a requested range to `size` the way S3 interprets `bytes=a-b`.
fn clip_range(range: Range<u64>, size: u64) -> Result<Range<u64>> {
    if range.start >= range.end {
        return Err(E::InvalidRequest(format!(
            "empty or inverted range {range:?}"
        )));
    }
    if range.start >= size {
        return Err(E::RangeNotSatisfiable(format!(
            "range {range:?} starts at or past the object size {size}"
        )));
    }
    Ok(range.start..range.end.min(size))
}

fn page_size(max_keys: Option<u32>) -> usize {
    max_keys
        .unwrap_or(MAX_KEYS_PER_PAGE)
        .clamp(1, MAX_KEYS_PER_PAGE) as usize
}

fn check_part_number(part_number: u32) -> Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&part_number) {
        Ok(())
    } else {
        Err(E::InvalidRequest(format!(
            "part number {part_number} outside 1..={MAX_PART_NUMBER}"
        )))
    }
}

fn upload_for<'a>(st: &'a mut State, key: &str, upload_id: &UploadId) -> Result<&'a mut Upload> {
    match st.uploads.get_mut(upload_id.as_str()) {
        Some(u) if u.key == key => Ok(u),
        _ => Err(E::NotFound(format!("no upload {upload_id} for {key:?}"))),
    }
}

fn add_part(st: &mut State, key: &str, upload_id: &UploadId, n: u32, body: Bytes) -> Result<ETag> {
    check_part_number(n)?;
    if body.len() as u64 > MAX_PART_SIZE {
        return Err(E::InvalidRequest(format!("part {n} exceeds 5 GiB")));
    }
    let upload = upload_for(st, key, upload_id)?;
    let md5 = md5_of(&body);
    upload.parts.insert(n, Part { body, md5 });
    Ok(ETag::new(hex(&md5)))
}

#[async_trait]
impl ObjectStore for MemObjectStore {
    async fn bucket_versioning(&self) -> Result<BucketVersioning> {
        Ok(self.lock().versioning.unwrap_or(BucketVersioning::Never))
    }

    async fn head(&self, key: &str, version_id: Option<&VersionId>) -> Result<ObjectMeta> {
        let st = self.lock();
        let (v, d) = resolve(&st, key, version_id)?;
        Ok(meta_of(key, v, d))
    }

    async fn get_range(&self, key: &str, opts: GetOptions) -> Result<GetOutput> {
        let st = self.lock();
        let (v, d) = resolve(&st, key, opts.version_id.as_ref())?;
        if let Some(want) = &opts.if_match
            && want != &d.etag
        {
            return Err(E::PreconditionFailed(format!(
                "If-Match: {key:?} has ETag {}, not {want}",
                d.etag
            )));
        }
        let size = d.body.len() as u64;
        let range = match opts.range {
            Some(r) => clip_range(r, size)?,
            None => 0..size,
        };
        Ok(GetOutput {
            meta: meta_of(key, v, d),
            body: d.body.slice(range.start as usize..range.end as usize),
            range,
        })
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<PutOutput> {
        opts.metadata.validate()?;
        if body.len() as u64 > MAX_PART_SIZE {
            return Err(E::InvalidRequest("single PUT exceeds 5 GiB".into()));
        }
        let mut st = self.lock();
        check_precondition(&st, key, &opts.precondition)?;
        let etag = ETag::new(hex(&md5_of(&body)));
        let data = ObjectData {
            body,
            etag: etag.clone(),
            metadata: opts.metadata,
        };
        let version_id = self.push_version(&mut st, key, Some(data));
        Ok(PutOutput { etag, version_id })
    }

    async fn copy_object(
        &self,
        source: &CopySource,
        dst_key: &str,
        opts: CopyOptions,
    ) -> Result<PutOutput> {
        let mut st = self.lock();
        let (_, src) = resolve(&st, &source.key, source.version_id.as_ref())?;
        let src = src.clone();
        if source.key == dst_key
            && source.version_id.is_none()
            && opts.metadata == MetadataDirective::Copy
        {
            return Err(E::InvalidRequest(
                "copying an object onto itself without changing its metadata".into(),
            ));
        }
        let metadata = match opts.metadata {
            MetadataDirective::Copy => src.metadata,
            MetadataDirective::Replace(m) => {
                m.validate()?;
                m
            }
        };
        check_precondition(&st, dst_key, &opts.precondition)?;
        // A single-request copy gets a plain MD5 ETag even when the source was multipart.
        let etag = ETag::new(hex(&md5_of(&src.body)));
        let data = ObjectData {
            body: src.body,
            etag: etag.clone(),
            metadata,
        };
        let version_id = self.push_version(&mut st, dst_key, Some(data));
        Ok(PutOutput { etag, version_id })
    }

    async fn delete(&self, key: &str, version_id: Option<&VersionId>) -> Result<DeleteOutput> {
        let mut st = self.lock();
        if let Some(id) = version_id {
            let mut delete_marker = false;
            if let Some(versions) = st.objects.get_mut(key) {
                if let Some(pos) = versions.iter().position(|v| &v.id == id) {
                    delete_marker = versions.remove(pos).data.is_none();
                }
                if versions.is_empty() {
                    st.objects.remove(key);
                }
            }
            return Ok(DeleteOutput {
                version_id: Some(id.clone()),
                delete_marker,
            });
        }
        match st.versioning.unwrap_or(BucketVersioning::Never) {
            BucketVersioning::Never => {
                st.objects.remove(key);
                Ok(DeleteOutput {
                    version_id: None,
                    delete_marker: false,
                })
            }
            BucketVersioning::Enabled | BucketVersioning::Suspended => {
                let version_id = self.push_version(&mut st, key, None);
                Ok(DeleteOutput {
                    version_id,
                    delete_marker: true,
                })
            }
        }
    }

    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        let st = self.lock();
        let limit = page_size(opts.max_keys);
        let delimiter = opts.delimiter.as_deref().filter(|d| !d.is_empty());
        // The continuation token names the last entry returned: `k:<key>` or `p:<common
        // prefix>`. Resuming after a common prefix skips every key under it, which keeps a
        // rolled-up "directory" from appearing on two pages.
        let (after, skip_prefix) = match opts.continuation.as_deref() {
            None => (None, None),
            Some(t) => match (t.strip_prefix("k:"), t.strip_prefix("p:")) {
                (Some(k), _) => (Some(k.to_owned()), None),
                (_, Some(p)) => (Some(p.to_owned()), Some(p.to_owned())),
                _ => {
                    return Err(E::InvalidRequest(format!(
                        "continuation token {t:?} was not issued by this store"
                    )));
                }
            },
        };
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(opts.prefix.clone()),
        };
        let mut page = ListPage::default();
        let mut count = 0;
        let mut last: Option<String> = None;
        for (key, versions) in st.objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(&opts.prefix) {
                if key.as_str() > opts.prefix.as_str() {
                    break;
                }
                continue;
            }
            if skip_prefix
                .as_ref()
                .is_some_and(|p| key.starts_with(p.as_str()))
            {
                continue;
            }
            let Some(data) = versions
                .last()
                .and_then(|v| v.data.as_ref().map(|d| (v, d)))
            else {
                continue;
            };
            let rest = &key[opts.prefix.len()..];
            let entry = match delimiter.and_then(|d| rest.find(d).map(|i| i + d.len())) {
                Some(end) => {
                    let cp = format!("{}{}", opts.prefix, &rest[..end]);
                    if page.common_prefixes.last() == Some(&cp) {
                        continue;
                    }
                    Err(cp)
                }
                None => Ok(data),
            };
            if count == limit {
                page.next_continuation = last.clone();
                break;
            }
            count += 1;
            match entry {
                Ok((v, d)) => {
                    last = Some(format!("k:{key}"));
                    page.objects.push(ListedObject {
                        key: key.clone(),
                        size: d.body.len() as u64,
                        etag: d.etag.clone(),
                        last_modified_ns: v.last_modified_ns,
                    });
                }
                Err(cp) => {
                    last = Some(format!("p:{cp}"));
                    page.common_prefixes.push(cp);
                }
            }
        }
        Ok(page)
    }

    async fn list_versions(&self, opts: ListVersionsOptions) -> Result<VersionsPage> {
        let st = self.lock();
        let limit = page_size(opts.max_keys);
        let start = match &opts.key_marker {
            Some(k) => Bound::Included(k.clone()),
            None => Bound::Included(opts.prefix.clone()),
        };
        let mut page = VersionsPage::default();
        let mut last: Option<(String, VersionId)> = None;
        'keys: for (key, versions) in st.objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(&opts.prefix) {
                if key.as_str() > opts.prefix.as_str() {
                    break;
                }
                continue;
            }
            let mut newest_first: Vec<(usize, &Version)> =
                versions.iter().rev().enumerate().collect();
            if opts.key_marker.as_deref() == Some(key.as_str()) {
                match &opts.version_id_marker {
                    // Resume after the marker version of this key.
                    Some(marker) => match newest_first.iter().position(|(_, v)| &v.id == marker) {
                        Some(pos) => {
                            newest_first.drain(..=pos);
                        }
                        None => newest_first.clear(),
                    },
                    None => continue,
                }
            }
            for (rank, v) in newest_first {
                if page.versions.len() == limit {
                    page.next_marker = last;
                    break 'keys;
                }
                last = Some((key.clone(), v.id.clone()));
                page.versions.push(VersionEntry {
                    key: key.clone(),
                    version_id: v.id.clone(),
                    is_latest: rank == 0,
                    last_modified_ns: v.last_modified_ns,
                    kind: match &v.data {
                        Some(d) => VersionKind::Object {
                            size: d.body.len() as u64,
                            etag: d.etag.clone(),
                        },
                        None => VersionKind::DeleteMarker,
                    },
                });
            }
        }
        Ok(page)
    }

    async fn create_multipart(&self, key: &str, metadata: UserMetadata) -> Result<UploadId> {
        metadata.validate()?;
        let mut st = self.lock();
        let id = UploadId::new(format!("upload-{}", self.new_id(&mut st)));
        st.uploads.insert(
            id.as_str().to_owned(),
            Upload {
                key: key.to_owned(),
                metadata,
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        body: Bytes,
    ) -> Result<ETag> {
        let mut st = self.lock();
        add_part(&mut st, key, upload_id, part_number, body)
    }

    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        source: &CopySource,
        range: Option<Range<u64>>,
    ) -> Result<ETag> {
        let mut st = self.lock();
        check_part_number(part_number)?;
        upload_for(&mut st, key, upload_id)?;
        let (_, src) = resolve(&st, &source.key, source.version_id.as_ref())?;
        let size = src.body.len() as u64;
        let range = range.unwrap_or(0..size);
        // S3 rejects a copy range that does not lie inside the source with 400 InvalidArgument.
        if range.start >= range.end || range.end > size {
            return Err(E::InvalidRequest(format!(
                "copy range {range:?} is not inside the source of size {size}"
            )));
        }
        let body = src.body.slice(range.start as usize..range.end as usize);
        add_part(&mut st, key, upload_id, part_number, body)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        precondition: Precondition,
    ) -> Result<PutOutput> {
        let mut st = self.lock();
        let upload = upload_for(&mut st, key, upload_id)?;
        if parts.is_empty() {
            return Err(E::InvalidRequest("completion lists no parts".into()));
        }
        let mut digests = Vec::with_capacity(parts.len() * 16);
        let mut len = 0usize;
        for (i, p) in parts.iter().enumerate() {
            if i > 0 && p.part_number <= parts[i - 1].part_number {
                return Err(E::InvalidRequest("parts are not in ascending order".into()));
            }
            let stored = upload
                .parts
                .get(&p.part_number)
                .filter(|s| hex(&s.md5) == p.etag.as_str())
                .ok_or_else(|| {
                    E::InvalidRequest(format!("part {} missing or ETag differs", p.part_number))
                })?;
            if i + 1 < parts.len() && (stored.body.len() as u64) < self.config.min_part_size {
                return Err(E::InvalidRequest(format!(
                    "part {} is smaller than the minimum part size",
                    p.part_number
                )));
            }
            digests.extend_from_slice(&stored.md5);
            len += stored.body.len();
        }
        check_precondition(&st, key, &precondition)?;
        let upload = st
            .uploads
            .remove(upload_id.as_str())
            .expect("checked above under the same lock");
        let mut body = BytesMut::with_capacity(len);
        for p in parts {
            body.extend_from_slice(&upload.parts[&p.part_number].body);
        }
        let etag = ETag::new(format!("{}-{}", hex(&md5_of(&digests)), parts.len()));
        let data = ObjectData {
            body: body.freeze(),
            etag: etag.clone(),
            metadata: upload.metadata,
        };
        let version_id = self.push_version(&mut st, key, Some(data));
        Ok(PutOutput { etag, version_id })
    }

    async fn abort_multipart(&self, key: &str, upload_id: &UploadId) -> Result<()> {
        let mut st = self.lock();
        upload_for(&mut st, key, upload_id)?;
        st.uploads.remove(upload_id.as_str());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(versioning: BucketVersioning) -> MemObjectStore {
        MemObjectStore::new(MemConfig {
            versioning,
            min_part_size: 4,
            seed: 9,
            clock: None,
        })
    }

    async fn put(s: &MemObjectStore, key: &str, body: &'static [u8]) -> PutOutput {
        s.put(key, Bytes::from_static(body), PutOptions::default())
            .await
            .unwrap()
    }

    async fn body(s: &MemObjectStore, key: &str, v: Option<&VersionId>) -> Result<Bytes> {
        let opts = GetOptions {
            version_id: v.cloned(),
            ..GetOptions::default()
        };
        Ok(s.get_range(key, opts).await?.body)
    }

    #[tokio::test]
    async fn suspended_versioning_replaces_only_the_null_version() {
        let s = store(BucketVersioning::Enabled);
        let v1 = put(&s, "k", b"1").await.version_id.unwrap();
        s.set_versioning(BucketVersioning::Suspended).unwrap();
        assert_eq!(put(&s, "k", b"2").await.version_id, None);
        assert_eq!(put(&s, "k", b"3").await.version_id, None);
        let vs = s
            .list_versions(ListVersionsOptions::default())
            .await
            .unwrap();
        let ids: Vec<_> = vs.versions.iter().map(|v| v.version_id.as_str()).collect();
        assert_eq!(ids, ["null", v1.as_str()]);
        assert_eq!(body(&s, "k", None).await.unwrap(), &b"3"[..]);
        assert_eq!(body(&s, "k", Some(&v1)).await.unwrap(), &b"1"[..]);
        // A suspended delete replaces the null version with a null delete marker.
        let del = s.delete("k", None).await.unwrap();
        assert_eq!((del.delete_marker, del.version_id), (true, None));
        assert_eq!(
            s.list_versions(ListVersionsOptions::default())
                .await
                .unwrap()
                .versions
                .len(),
            2
        );
        assert!(s.set_versioning(BucketVersioning::Never).is_err());
    }

    #[tokio::test]
    async fn ids_are_deterministic_per_seed() {
        let run = || async {
            let s = store(BucketVersioning::Enabled);
            let a = put(&s, "a", b"x").await.version_id.unwrap();
            let u = s
                .create_multipart("a", UserMetadata::default())
                .await
                .unwrap();
            let b = s.delete("a", None).await.unwrap().version_id.unwrap();
            (a, u, b)
        };
        let first = run().await;
        assert_eq!(first, run().await);
        assert_ne!(first.0, first.2);
    }

    #[tokio::test]
    async fn multipart_rules() {
        let s = store(BucketVersioning::Enabled);
        let u = s
            .create_multipart("k", UserMetadata::default())
            .await
            .unwrap();
        for bad in [0, MAX_PART_NUMBER + 1] {
            let e = s.upload_part("k", &u, bad, Bytes::new()).await.unwrap_err();
            assert!(matches!(e, E::InvalidRequest(_)), "{e:?}");
        }
        let e = s
            .upload_part("other", &u, 1, Bytes::new())
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "an upload belongs to its key: {e:?}");
        let p1 = s
            .upload_part("k", &u, 1, Bytes::from_static(b"abcd"))
            .await
            .unwrap();
        let p2 = s
            .upload_part("k", &u, 2, Bytes::from_static(b"ef"))
            .await
            .unwrap();
        let part = |n, e: &ETag| CompletedPart {
            part_number: n,
            etag: e.clone(),
        };
        let complete = |parts: Vec<CompletedPart>| {
            let s = &s;
            let u = u.clone();
            async move {
                s.complete_multipart("k", &u, &parts, Precondition::None)
                    .await
            }
        };
        for parts in [
            vec![],
            vec![part(2, &p2), part(1, &p1)],
            vec![part(1, &p2)],
            vec![part(1, &p1), part(3, &p2)],
        ] {
            let e = complete(parts).await.unwrap_err();
            assert!(matches!(e, E::InvalidRequest(_)), "{e:?}");
        }
        // Re-uploading a part replaces it.
        let p2 = s
            .upload_part("k", &u, 2, Bytes::from_static(b"gh"))
            .await
            .unwrap();
        let out = complete(vec![part(1, &p1), part(2, &p2)]).await.unwrap();
        assert_eq!(out.etag.part_count(), Some(2));
        assert_eq!(body(&s, "k", None).await.unwrap(), &b"abcdgh"[..]);
        assert_eq!(s.open_uploads(), 0);
        assert_eq!(s.stored_bytes(), 6);

        // A copy range must lie inside the source.
        let u = s
            .create_multipart("k2", UserMetadata::default())
            .await
            .unwrap();
        let src = CopySource {
            key: "k".into(),
            version_id: None,
        };
        let e = s
            .upload_part_copy("k2", &u, 1, &src, Some(4..7))
            .await
            .unwrap_err();
        assert!(matches!(e, E::InvalidRequest(_)), "{e:?}");
        s.upload_part_copy("k2", &u, 1, &src, Some(4..6))
            .await
            .unwrap();
        s.upload_part_copy("k2", &u, 2, &src, None).await.unwrap();
        assert_eq!(s.stored_bytes(), 6 + 2 + 6);
    }

    #[tokio::test]
    async fn oversized_metadata_is_rejected_before_anything_is_stored() {
        let s = store(BucketVersioning::Enabled);
        let mut m = UserMetadata::default();
        m.other.insert("big".into(), "x".repeat(3000));
        let e = s
            .put(
                "k",
                Bytes::from_static(b"x"),
                PutOptions {
                    metadata: m.clone(),
                    ..PutOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, E::InvalidRequest(_)));
        assert!(s.create_multipart("k", m).await.is_err());
        assert_eq!((s.stored_bytes(), s.open_uploads()), (0, 0));
    }

    #[tokio::test]
    async fn foreign_continuation_tokens_are_rejected() {
        let s = store(BucketVersioning::Enabled);
        let e = s
            .list(ListOptions {
                continuation: Some("1c9d6f96b4af5954".into()),
                ..ListOptions::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(e, E::InvalidRequest(_)));
    }

    #[derive(Debug)]
    struct FixedClock(i128);

    impl Clock for FixedClock {
        fn now(&self) -> tokio::time::Instant {
            tokio::time::Instant::now()
        }

        fn wall_nanos(&self) -> i128 {
            self.0
        }
    }

    #[tokio::test]
    async fn times_come_from_the_injected_clock() {
        let s = MemObjectStore::new(MemConfig {
            clock: Some(Arc::new(FixedClock(1_234))),
            ..MemConfig::default()
        });
        put(&s, "k", b"x").await;
        assert_eq!(
            s.head("k", None).await.unwrap().last_modified_ns,
            Some(1_234)
        );
        let page = s.list(ListOptions::default()).await.unwrap();
        assert_eq!(page.objects[0].last_modified_ns, Some(1_234));
        assert_eq!(store(BucketVersioning::Enabled).now(), None);
    }
}
