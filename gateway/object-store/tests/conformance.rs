//! One conformance suite, run against every backend: `MemObjectStore` (module `mem`) and
//! `S3ObjectStore` on a real moto server (module `s3`). Each case is a plain async function of
//! `&dyn ObjectStore` in `cases`; the macro at the bottom instantiates it per backend, so the
//! in-memory store used by unit tests and the simulator is held to what S3 actually does.
//!
//! moto (5.2.5) gaps, found by probing it: it does not enforce `If-Match` on
//! CompleteMultipartUpload, nor `If-None-Match`/`If-Match` on CopyObject, nor the 2 KB user
//! metadata limit; it omits `x-amz-delete-marker` when a delete marker is deleted by version
//! id, and creates no delete marker when a never-existing key is deleted. The cases for those run against `MemObjectStore` only (end of `cases`); the S3
//! implementation still sends the headers (real S3 enforces them) and validates metadata size
//! itself. moto also answers GetBucketVersioning with a `GetBucketVersioningResponse` root
//! element that the SDK cannot parse; `S3ObjectStore` reads that one response shape itself
//! (see `s3.rs`), so the versioning case runs on both backends.
//!
//! The S3 half needs moto: `BUCKETFS_MOTO_SERVER`, else /var/cache/bucketfs/venv/bin/moto_server,
//! else `moto_server` on PATH. Without it those tests fail with install instructions.

use std::sync::Arc;

use bucketfs_object_store::metadata::{S_IFDIR, S_IFREG};
use bucketfs_object_store::*;
use bytes::Bytes;
use md5::{Digest, Md5};

const MIB: usize = 1024 * 1024;

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic, position-dependent bytes so a misplaced range is caught.
fn pattern(len: usize, salt: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) ^ (i >> 8) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn put_plain(s: &dyn ObjectStore, key: &str, body: Bytes) -> PutOutput {
    s.put(key, body, PutOptions::default()).await.expect("put")
}

async fn read_all(s: &dyn ObjectStore, key: &str, version: Option<&VersionId>) -> Result<Bytes> {
    let out = s
        .get_range(
            key,
            GetOptions {
                version_id: version.cloned(),
                ..GetOptions::default()
            },
        )
        .await?;
    Ok(out.body)
}

mod cases {
    use super::*;

    pub async fn round_trip_with_metadata(s: &dyn ObjectStore) {
        let mut meta = UserMetadata::posix(1000, 100, S_IFREG | 0o640, 1_775_614_097_672_000_123);
        meta.other.insert("user-agent".into(), "bucketfs".into());
        let body = pattern(1000, 1);
        let put = s
            .put(
                "dir/file.txt",
                body.clone(),
                PutOptions {
                    precondition: Precondition::None,
                    metadata: meta.clone(),
                },
            )
            .await
            .unwrap();
        assert_eq!(put.etag.as_str(), md5_hex(&body));
        assert_eq!(put.etag.part_count(), None);
        assert!(
            put.version_id.is_some(),
            "versioned bucket returns a version id"
        );

        let head = s.head("dir/file.txt", None).await.unwrap();
        assert_eq!(head.size, 1000);
        assert_eq!(head.etag, put.etag);
        assert_eq!(head.version_id, put.version_id);
        assert_eq!(head.metadata, meta);
        assert_eq!(head.key, "dir/file.txt");

        let got = s
            .get_range("dir/file.txt", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(got.body, body);
        assert_eq!(got.range, 0..1000);
        assert_eq!(got.meta.metadata, meta);
        assert_eq!(got.meta.etag, put.etag);

        // A directory marker object: empty body, directory mode.
        let dir_meta = UserMetadata::posix(0, 0, S_IFDIR | 0o755, 0);
        let put = s
            .put(
                "dir/",
                Bytes::new(),
                PutOptions {
                    precondition: Precondition::IfNoneMatch,
                    metadata: dir_meta.clone(),
                },
            )
            .await
            .unwrap();
        assert_eq!(put.etag.as_str(), md5_hex(b""));
        let head = s.head("dir/", None).await.unwrap();
        assert_eq!(head.size, 0);
        assert_eq!(head.metadata, dir_meta);
        assert_eq!(read_all(s, "dir/", None).await.unwrap().len(), 0);

        let missing = s.head("nope", None).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing:?}");
        let missing = read_all(s, "nope", None).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing:?}");
    }

    pub async fn range_reads(s: &dyn ObjectStore) {
        let body = pattern(1000, 2);
        let put = put_plain(s, "r", body.clone()).await;
        let get = |range| {
            s.get_range(
                "r",
                GetOptions {
                    range: Some(range),
                    ..GetOptions::default()
                },
            )
        };
        let out = get(10..20).await.unwrap();
        assert_eq!(out.body, body.slice(10..20));
        assert_eq!(out.range, 10..20);
        assert_eq!(out.meta.size, 1000, "size is the object's, not the range's");
        assert_eq!(out.meta.etag, put.etag);

        let out = get(0..1).await.unwrap();
        assert_eq!(out.body, body.slice(0..1));

        // The end is clipped to the object.
        let out = get(990..5000).await.unwrap();
        assert_eq!(out.body, body.slice(990..1000));
        assert_eq!(out.range, 990..1000);

        let out = get(0..1000).await.unwrap();
        assert_eq!(out.body, body);

        let err = get(1000..1001).await.unwrap_err();
        assert!(
            matches!(err, ObjectStoreError::RangeNotSatisfiable(_)),
            "{err:?}"
        );
        let err = get(5..5).await.unwrap_err();
        assert!(
            matches!(err, ObjectStoreError::InvalidRequest(_)),
            "{err:?}"
        );
    }

    pub async fn version_pinning(s: &dyn ObjectStore) {
        let v1_body = pattern(300, 3);
        let v2_body = pattern(200, 4);
        let v1 = put_plain(s, "f", v1_body.clone()).await;
        let v2 = put_plain(s, "f", v2_body.clone()).await;
        assert_ne!(v1.version_id, v2.version_id);
        let v1_id = v1.version_id.clone().unwrap();

        assert_eq!(read_all(s, "f", None).await.unwrap(), v2_body);
        assert_eq!(read_all(s, "f", Some(&v1_id)).await.unwrap(), v1_body);
        let head = s.head("f", Some(&v1_id)).await.unwrap();
        assert_eq!((head.size, &head.etag), (300, &v1.etag));
        assert_eq!(head.version_id.as_ref(), Some(&v1_id));

        // A pinned, ranged, If-Match read: what the gateway's READ does.
        let out = s
            .get_range(
                "f",
                GetOptions {
                    range: Some(100..150),
                    version_id: Some(v1_id.clone()),
                    if_match: Some(v1.etag.clone()),
                },
            )
            .await
            .unwrap();
        assert_eq!(out.body, v1_body.slice(100..150));
        assert_eq!(out.meta.version_id.as_ref(), Some(&v1_id));

        let err = s
            .get_range(
                "f",
                GetOptions {
                    if_match: Some(v1.etag.clone()),
                    ..GetOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(err.is_precondition_failed(), "{err:?}");

        let unknown = VersionId::new("no-such-version");
        let err = read_all(s, "f", Some(&unknown)).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }

    pub async fn conditional_create(s: &dyn ObjectStore) {
        let create = |body: &'static [u8]| {
            s.put(
                "new",
                Bytes::from_static(body),
                PutOptions {
                    precondition: Precondition::IfNoneMatch,
                    ..PutOptions::default()
                },
            )
        };
        let first = create(b"one").await.unwrap();
        let err = create(b"two").await.unwrap_err();
        assert!(err.is_precondition_failed(), "{err:?}");
        assert!(!err.is_retryable());
        assert_eq!(read_all(s, "new", None).await.unwrap(), &b"one"[..]);
        assert_eq!(s.head("new", None).await.unwrap().etag, first.etag);

        // A delete marker does not count as an existing object.
        s.delete("new", None).await.unwrap();
        create(b"three").await.unwrap();
        assert_eq!(read_all(s, "new", None).await.unwrap(), &b"three"[..]);
    }

    pub async fn if_match_put(s: &dyn ObjectStore) {
        let v1 = put_plain(s, "m", Bytes::from_static(b"v1")).await;
        let put_if = |etag: &ETag, body: &'static [u8]| {
            s.put(
                "m",
                Bytes::from_static(body),
                PutOptions {
                    precondition: Precondition::IfMatch(etag.clone()),
                    ..PutOptions::default()
                },
            )
        };
        let v2 = put_if(&v1.etag, b"v2").await.unwrap();
        let err = put_if(&v1.etag, b"v3").await.unwrap_err();
        assert!(
            err.is_precondition_failed(),
            "stale ETag must fail: {err:?}"
        );
        assert_eq!(read_all(s, "m", None).await.unwrap(), &b"v2"[..]);
        assert_eq!(s.head("m", None).await.unwrap().etag, v2.etag);

        // ETags are accepted in quoted wire form too.
        let quoted = ETag::new(v2.etag.quoted());
        assert_eq!(quoted, v2.etag);
        put_if(&quoted, b"v4").await.unwrap();

        // If-Match on a key with no object: S3 answers 404.
        let err = s
            .put(
                "missing",
                Bytes::from_static(b"x"),
                PutOptions {
                    precondition: Precondition::IfMatch(v1.etag.clone()),
                    ..PutOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }

    pub async fn multipart_with_part_copy(s: &dyn ObjectStore) {
        // Version 1: 5 MiB that the next version keeps, then 1 MiB that it replaces.
        let keep = pattern(5 * MIB, 5);
        let old_tail = pattern(MIB, 6);
        let v1_body: Bytes = [keep.clone(), old_tail].concat().into();
        let meta1 = UserMetadata::posix(1, 1, S_IFREG | 0o644, 10);
        let v1 = s
            .put(
                "big",
                v1_body.clone(),
                PutOptions {
                    precondition: Precondition::IfNoneMatch,
                    metadata: meta1,
                },
            )
            .await
            .unwrap();
        let v1_id = v1.version_id.clone().unwrap();

        // Version 2: copy the unchanged 5 MiB server-side from the pinned version 1, upload
        // the new tail, complete conditionally on version 1 still being current.
        let meta2 = UserMetadata::posix(1, 1, S_IFREG | 0o644, 20);
        let upload = s.create_multipart("big", meta2.clone()).await.unwrap();
        let source = CopySource {
            key: "big".into(),
            version_id: Some(v1_id.clone()),
        };
        let e1 = s
            .upload_part_copy("big", &upload, 1, &source, Some(0..keep.len() as u64))
            .await
            .unwrap();
        assert_eq!(
            e1.as_str(),
            md5_hex(&keep),
            "a part's ETag is the MD5 of its bytes"
        );
        let new_tail = pattern(MIB / 2, 7);
        let e2 = s
            .upload_part("big", &upload, 2, new_tail.clone())
            .await
            .unwrap();
        assert_eq!(e2.as_str(), md5_hex(&new_tail));
        let parts = [
            CompletedPart {
                part_number: 1,
                etag: e1.clone(),
            },
            CompletedPart {
                part_number: 2,
                etag: e2.clone(),
            },
        ];
        let v2 = s
            .complete_multipart(
                "big",
                &upload,
                &parts,
                Precondition::IfMatch(v1.etag.clone()),
            )
            .await
            .unwrap();

        // S3's multipart ETag: MD5 over the concatenated binary part MD5s, then "-N".
        let mut digests = Vec::new();
        digests.extend_from_slice(&Md5::digest(&keep));
        digests.extend_from_slice(&Md5::digest(&new_tail));
        assert_eq!(v2.etag.as_str(), format!("{}-2", md5_hex(&digests)));
        assert_eq!(v2.etag.part_count(), Some(2));

        let expected: Bytes = [keep.clone(), new_tail].concat().into();
        assert_eq!(read_all(s, "big", None).await.unwrap(), expected);
        let head = s.head("big", None).await.unwrap();
        assert_eq!(head.size, expected.len() as u64);
        assert_eq!(head.metadata, meta2);
        assert_eq!(head.version_id, v2.version_id);
        assert_eq!(read_all(s, "big", Some(&v1_id)).await.unwrap(), v1_body);

        // A create-only completion on an existing key fails, and the upload stays open until
        // aborted.
        let upload = s
            .create_multipart("big", UserMetadata::default())
            .await
            .unwrap();
        let e = s
            .upload_part("big", &upload, 1, Bytes::from_static(b"small"))
            .await
            .unwrap();
        let parts = [CompletedPart {
            part_number: 1,
            etag: e,
        }];
        let err = s
            .complete_multipart("big", &upload, &parts, Precondition::IfNoneMatch)
            .await
            .unwrap_err();
        assert!(err.is_precondition_failed(), "{err:?}");
        s.abort_multipart("big", &upload).await.unwrap();
        assert_eq!(read_all(s, "big", None).await.unwrap(), expected);

        // Parts other than the last must be at least 5 MiB.
        let upload = s
            .create_multipart("small", UserMetadata::default())
            .await
            .unwrap();
        let a = s
            .upload_part("small", &upload, 1, Bytes::from_static(b"aaa"))
            .await
            .unwrap();
        let b = s
            .upload_part("small", &upload, 2, Bytes::from_static(b"bbb"))
            .await
            .unwrap();
        let parts = [
            CompletedPart {
                part_number: 1,
                etag: a,
            },
            CompletedPart {
                part_number: 2,
                etag: b,
            },
        ];
        let err = s
            .complete_multipart("small", &upload, &parts, Precondition::None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ObjectStoreError::InvalidRequest(_)),
            "{err:?}"
        );
        s.abort_multipart("small", &upload).await.unwrap();
        let err = s.abort_multipart("small", &upload).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }

    pub async fn delete_creates_marker(s: &dyn ObjectStore) {
        let v1 = put_plain(s, "gone", Bytes::from_static(b"data")).await;
        let v1_id = v1.version_id.clone().unwrap();
        let del = s.delete("gone", None).await.unwrap();
        assert!(del.delete_marker);
        let marker = del
            .version_id
            .clone()
            .expect("a delete marker has a version id");
        assert_ne!(marker, v1_id);

        assert!(s.head("gone", None).await.unwrap_err().is_not_found());
        assert!(read_all(s, "gone", None).await.unwrap_err().is_not_found());
        assert!(
            s.head("gone", Some(&marker))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert_eq!(
            read_all(s, "gone", Some(&v1_id)).await.unwrap(),
            &b"data"[..],
            "the old version survives the delete"
        );
        let listed = s
            .list(ListOptions {
                prefix: "gone".into(),
                ..ListOptions::default()
            })
            .await
            .unwrap();
        assert!(listed.objects.is_empty(), "{listed:?}");

        let versions = s
            .list_versions(ListVersionsOptions {
                prefix: "gone".into(),
                ..ListVersionsOptions::default()
            })
            .await
            .unwrap();
        assert_eq!(versions.versions.len(), 2, "{versions:?}");
        let m = versions
            .versions
            .iter()
            .find(|v| v.version_id == marker)
            .unwrap();
        assert!(m.is_latest);
        assert_eq!(m.kind, VersionKind::DeleteMarker);
        let o = versions
            .versions
            .iter()
            .find(|v| v.version_id == v1_id)
            .unwrap();
        assert!(!o.is_latest);
        assert_eq!(
            o.kind,
            VersionKind::Object {
                size: 4,
                etag: v1.etag.clone()
            }
        );

        // Removing the marker by version id brings the object back.
        let del = s.delete("gone", Some(&marker)).await.unwrap();
        assert_eq!(del.version_id.as_ref(), Some(&marker));
        assert_eq!(read_all(s, "gone", None).await.unwrap(), &b"data"[..]);

        // Removing a version permanently.
        s.delete("gone", Some(&v1_id)).await.unwrap();
        assert!(
            read_all(s, "gone", Some(&v1_id))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(s.head("gone", None).await.unwrap_err().is_not_found());

        // Deleting a key that never existed succeeds.
        s.delete("never", None).await.unwrap();
        assert!(s.head("never", None).await.unwrap_err().is_not_found());
    }

    pub async fn list_with_delimiter_and_pagination(s: &dyn ObjectStore) {
        let keys = [
            "d/a",
            "d/b",
            "d/e/x",
            "d/e/y",
            "d/f/z",
            "d/g",
            "d/h/q",
            "d/h/r/s",
            "dz",
            "other/x",
            "d/deleted",
        ];
        for k in keys {
            put_plain(s, k, Bytes::from(k.as_bytes().to_vec())).await;
        }
        s.delete("d/deleted", None).await.unwrap();

        let mut objects = Vec::new();
        let mut prefixes = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = s
                .list(ListOptions {
                    prefix: "d/".into(),
                    delimiter: Some("/".into()),
                    continuation: token.take(),
                    max_keys: Some(2),
                })
                .await
                .unwrap();
            pages += 1;
            assert!(
                page.objects.len() + page.common_prefixes.len() <= 2,
                "page too big: {page:?}"
            );
            objects.extend(page.objects.iter().map(|o| o.key.clone()));
            prefixes.extend(page.common_prefixes.iter().cloned());
            match page.next_continuation {
                Some(t) => token = Some(t),
                None => break,
            }
            assert!(pages < 20, "pagination does not terminate");
        }
        assert_eq!(objects, ["d/a", "d/b", "d/g"]);
        assert_eq!(prefixes, ["d/e/", "d/f/", "d/h/"]);
        assert_eq!(pages, 3);

        let page = s
            .list(ListOptions {
                prefix: "d/".into(),
                delimiter: Some("/".into()),
                ..ListOptions::default()
            })
            .await
            .unwrap();
        assert_eq!(page.next_continuation, None);
        assert_eq!(page.objects.len(), 3);
        let a = &page.objects[0];
        assert_eq!((a.key.as_str(), a.size), ("d/a", 3));
        assert_eq!(a.etag.as_str(), md5_hex(b"d/a"));

        // Without a delimiter: every key under the prefix, recursively, in order.
        let page = s
            .list(ListOptions {
                prefix: "d/".into(),
                ..ListOptions::default()
            })
            .await
            .unwrap();
        let all: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            all,
            [
                "d/a", "d/b", "d/e/x", "d/e/y", "d/f/z", "d/g", "d/h/q", "d/h/r/s"
            ]
        );

        // The root of the bucket.
        let page = s
            .list(ListOptions {
                delimiter: Some("/".into()),
                ..ListOptions::default()
            })
            .await
            .unwrap();
        assert_eq!(page.common_prefixes, ["d/", "other/"]);
        let root: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(root, ["dz"]);
    }

    pub async fn list_versions_pagination(s: &dyn ObjectStore) {
        let mut expected: Vec<(String, VersionId)> = Vec::new();
        for key in ["va", "vb"] {
            let mut ids = Vec::new();
            for i in 0..3u8 {
                let put = put_plain(s, key, Bytes::from(vec![i; 1 + i as usize])).await;
                ids.push(put.version_id.unwrap());
            }
            ids.reverse();
            expected.extend(ids.into_iter().map(|id| (key.to_owned(), id)));
        }
        put_plain(s, "vc-other", Bytes::from_static(b"x")).await;

        let mut seen = Vec::new();
        let mut marker: Option<(String, VersionId)> = None;
        for _ in 0..10 {
            let (key_marker, version_id_marker) = match marker.take() {
                Some((k, v)) => (Some(k), Some(v)),
                None => (None, None),
            };
            let page = s
                .list_versions(ListVersionsOptions {
                    prefix: "v".into(),
                    key_marker,
                    version_id_marker,
                    max_keys: Some(2),
                })
                .await
                .unwrap();
            assert!(page.versions.len() <= 2);
            seen.extend(page.versions);
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        let seen_ids: Vec<_> = seen
            .iter()
            .filter(|v| v.key != "vc-other")
            .map(|v| (v.key.clone(), v.version_id.clone()))
            .collect();
        assert_eq!(
            seen_ids, expected,
            "keys ascending, versions newest first, no repeats"
        );
        assert_eq!(seen.len(), 7);
        let latest: Vec<_> = seen
            .iter()
            .filter(|v| v.is_latest)
            .map(|v| v.key.as_str())
            .collect();
        assert_eq!(latest, ["va", "vb", "vc-other"]);
        assert!(matches!(seen[0].kind, VersionKind::Object { size: 3, .. }));
    }

    pub async fn copy_object(s: &dyn ObjectStore) {
        let meta = UserMetadata::posix(7, 8, S_IFREG | 0o600, 99);
        let v1 = s
            .put(
                "src",
                Bytes::from_static(b"first"),
                PutOptions {
                    metadata: meta.clone(),
                    ..PutOptions::default()
                },
            )
            .await
            .unwrap();
        put_plain(s, "src", Bytes::from_static(b"second")).await;

        // Copy a pinned old version, keeping its metadata (a rename of that version).
        let source = CopySource {
            key: "src".into(),
            version_id: v1.version_id.clone(),
        };
        let out = s
            .copy_object(&source, "dst", CopyOptions::default())
            .await
            .unwrap();
        assert_eq!(out.etag, v1.etag);
        assert!(out.version_id.is_some());
        assert_eq!(read_all(s, "dst", None).await.unwrap(), &b"first"[..]);
        assert_eq!(s.head("dst", None).await.unwrap().metadata, meta);

        // Replace metadata in place (chown/chmod without rewriting data).
        let meta2 = UserMetadata::posix(0, 0, S_IFREG | 0o644, 100);
        let current = CopySource {
            key: "dst".into(),
            version_id: None,
        };
        s.copy_object(
            &current,
            "dst",
            CopyOptions {
                metadata: MetadataDirective::Replace(meta2.clone()),
                ..CopyOptions::default()
            },
        )
        .await
        .unwrap();
        let head = s.head("dst", None).await.unwrap();
        assert_eq!(head.metadata, meta2);
        assert_eq!(head.etag, v1.etag);

        let missing = CopySource {
            key: "no-such".into(),
            version_id: None,
        };
        let err = s
            .copy_object(&missing, "x", CopyOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }

    /// Keys with spaces, `+`, `%`, `?`, `&` and non-ASCII survive every call, including the
    /// URL-encoded copy source of CopyObject and UploadPartCopy.
    pub async fn unusual_keys(s: &dyn ObjectStore) {
        let key = "dir with space/ü+%?&=file";
        let v1 = put_plain(s, key, pattern(100, 9)).await;
        assert_eq!(s.head(key, None).await.unwrap().etag, v1.etag);
        let source = CopySource {
            key: key.into(),
            version_id: v1.version_id.clone(),
        };
        let dst = "dir with space/copy é";
        s.copy_object(&source, dst, CopyOptions::default())
            .await
            .unwrap();
        let upload = s
            .create_multipart(dst, UserMetadata::default())
            .await
            .unwrap();
        let e = s
            .upload_part_copy(dst, &upload, 1, &source, Some(10..20))
            .await
            .unwrap();
        let parts = [CompletedPart {
            part_number: 1,
            etag: e,
        }];
        s.complete_multipart(dst, &upload, &parts, Precondition::None)
            .await
            .unwrap();
        assert_eq!(
            read_all(s, dst, None).await.unwrap(),
            pattern(100, 9).slice(10..20)
        );
        let page = s
            .list(ListOptions {
                prefix: "dir with space/".into(),
                delimiter: Some("/".into()),
                ..ListOptions::default()
            })
            .await
            .unwrap();
        let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, [dst, key]);
    }

    pub async fn versioning_status(unversioned: &dyn ObjectStore, versioned: &dyn ObjectStore) {
        assert_eq!(
            unversioned.bucket_versioning().await.unwrap(),
            BucketVersioning::Never
        );
        assert_eq!(
            versioned.bucket_versioning().await.unwrap(),
            BucketVersioning::Enabled
        );
        // Without versioning, writes carry no version id and overwrite in place.
        let put = put_plain(unversioned, "k", Bytes::from_static(b"1")).await;
        assert_eq!(put.version_id, None);
        put_plain(unversioned, "k", Bytes::from_static(b"2")).await;
        let versions = unversioned
            .list_versions(ListVersionsOptions::default())
            .await
            .unwrap();
        assert_eq!(versions.versions.len(), 1, "{versions:?}");
        assert!(versions.versions[0].version_id.is_null());
        let del = unversioned.delete("k", None).await.unwrap();
        assert!(!del.delete_marker);
        assert!(
            unversioned
                .head("k", None)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }

    pub async fn usable_as_arc_dyn(s: Arc<dyn ObjectStore>) {
        let faulty = FaultyObjectStore::new(
            s.clone(),
            FaultConfig::none(),
            bucketfs_runtime::Entropy::seeded(1),
            tokio_sleep(),
        );
        faulty.inject(Some(OpKind::Put), Fault::AckLost);
        let err = faulty
            .put("ack", Bytes::from_static(b"x"), PutOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(read_all(&*s, "ack", None).await.unwrap(), &b"x"[..]);
    }

    // ---- MemObjectStore only: behaviour moto does not implement (see the module docs) ----

    pub async fn complete_if_match_stale_fails(s: &dyn ObjectStore) {
        let v1 = put_plain(s, "c", Bytes::from_static(b"v1")).await;
        put_plain(s, "c", Bytes::from_static(b"v2")).await;
        let upload = s
            .create_multipart("c", UserMetadata::default())
            .await
            .unwrap();
        let e = s
            .upload_part("c", &upload, 1, Bytes::from_static(b"v3"))
            .await
            .unwrap();
        let parts = [CompletedPart {
            part_number: 1,
            etag: e,
        }];
        let err = s
            .complete_multipart("c", &upload, &parts, Precondition::IfMatch(v1.etag))
            .await
            .unwrap_err();
        assert!(err.is_precondition_failed(), "{err:?}");
        assert_eq!(read_all(s, "c", None).await.unwrap(), &b"v2"[..]);
        // The upload is still open: completing without the stale condition works.
        s.complete_multipart("c", &upload, &parts, Precondition::None)
            .await
            .unwrap();
        assert_eq!(read_all(s, "c", None).await.unwrap(), &b"v3"[..]);
    }

    /// S3 sets `x-amz-delete-marker: true` when the version deleted was a delete marker, and
    /// adds a delete marker even for a key that never existed; moto does neither.
    pub async fn delete_marker_details(s: &dyn ObjectStore) {
        let del = s.delete("never", None).await.unwrap();
        assert!(del.delete_marker);
        let never = del.version_id.unwrap();
        s.delete("never", Some(&never)).await.unwrap();

        let v1 = put_plain(s, "dm", Bytes::from_static(b"x")).await;
        let marker = s.delete("dm", None).await.unwrap().version_id.unwrap();
        let del = s.delete("dm", Some(&marker)).await.unwrap();
        assert!(del.delete_marker);
        let del = s.delete("dm", v1.version_id.as_ref()).await.unwrap();
        assert!(!del.delete_marker);
        assert!(
            s.list_versions(ListVersionsOptions::default())
                .await
                .unwrap()
                .versions
                .is_empty()
        );
    }

    pub async fn copy_preconditions(s: &dyn ObjectStore) {
        put_plain(s, "a", Bytes::from_static(b"a")).await;
        let b = put_plain(s, "b", Bytes::from_static(b"b")).await;
        let src = CopySource {
            key: "a".into(),
            version_id: None,
        };
        let err = s
            .copy_object(
                &src,
                "b",
                CopyOptions {
                    precondition: Precondition::IfNoneMatch,
                    ..CopyOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(err.is_precondition_failed(), "{err:?}");
        let err = s
            .copy_object(
                &src,
                "b",
                CopyOptions {
                    precondition: Precondition::IfMatch(ETag::new("0123")),
                    ..CopyOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(err.is_precondition_failed(), "{err:?}");
        s.copy_object(
            &src,
            "b",
            CopyOptions {
                precondition: Precondition::IfMatch(b.etag),
                ..CopyOptions::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(read_all(s, "b", None).await.unwrap(), &b"a"[..]);
    }
}

/// Instantiates each listed case as a `#[tokio::test]` against the enclosing module's
/// `versioned(name)` fixture.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = versioned(stringify!($case)).await;
                cases::$case(&*fixture.store).await;
            }
        )*
    };
}

/// Cases every backend must pass.
macro_rules! common_suite {
    () => {
        suite!(
            round_trip_with_metadata,
            range_reads,
            version_pinning,
            conditional_create,
            if_match_put,
            multipart_with_part_copy,
            delete_creates_marker,
            list_with_delimiter_and_pagination,
            list_versions_pagination,
            copy_object,
            unusual_keys,
        );

        #[tokio::test]
        async fn versioning_status() {
            let unversioned = unversioned("versioning_status").await;
            let versioned = versioned("versioning_status").await;
            cases::versioning_status(&*unversioned.store, &*versioned.store).await;
        }

        #[tokio::test]
        async fn usable_as_arc_dyn() {
            let fixture = versioned("usable_as_arc_dyn").await;
            cases::usable_as_arc_dyn(fixture.store.clone()).await;
        }
    };
}

mod mem {
    use super::*;

    struct Fixture {
        store: Arc<dyn ObjectStore>,
    }

    async fn versioned(_name: &str) -> Fixture {
        Fixture {
            store: Arc::new(MemObjectStore::new(MemConfig {
                seed: 42,
                ..MemConfig::default()
            })),
        }
    }

    async fn unversioned(_name: &str) -> Fixture {
        Fixture {
            store: Arc::new(MemObjectStore::new(MemConfig {
                versioning: BucketVersioning::Never,
                ..MemConfig::default()
            })),
        }
    }

    common_suite!();

    // moto does not enforce these preconditions (see the module docs).
    suite!(
        complete_if_match_stale_fails,
        copy_preconditions,
        delete_marker_details
    );
}

// Built without the `s3` feature (`--no-default-features`), only the in-memory half exists.
#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use bucketfs_object_store::moto::MotoServer;

    struct Fixture {
        store: Arc<dyn ObjectStore>,
        // Keeps the shared moto server alive for the test's duration.
        _moto: Arc<MotoServer>,
    }

    async fn fixture(name: &str, versioned: bool) -> Fixture {
        let moto = match MotoServer::shared().await {
            Ok(m) => m,
            Err(e) => panic!("the S3 conformance tests need moto: {e}"),
        };
        let bucket = MotoServer::unique_bucket_name(name);
        let store = moto
            .bucket(&bucket, versioned)
            .await
            .unwrap_or_else(|e| panic!("creating bucket {bucket} on moto: {e}"));
        Fixture {
            store: Arc::new(store),
            _moto: moto,
        }
    }

    async fn versioned(name: &str) -> Fixture {
        fixture(name, true).await
    }

    async fn unversioned(name: &str) -> Fixture {
        fixture(name, false).await
    }

    common_suite!();
}
