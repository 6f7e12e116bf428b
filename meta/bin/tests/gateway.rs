//! The gateway as a user meets it: real `bucketfs gateway serve` processes on a real metadata
//! cluster and moto, driven over NFS v4.1 by the in-process client, with the bucket checked
//! through the S3 API.

mod common;

use std::time::Duration;

use bucketfs_nfs_client::{
    Client, ClientOptions, CreateMode, NfsStatus, OpenAccess, OpenOptions, SetAttrs, SetTime,
    StableHow,
};
use bucketfs_nfs_wire::nfs::NfsTime;
use bucketfs_object_store::ObjectStore;
use bucketfs_object_store::metadata::UserMetadata;
use common::system::System;

async fn client(sys: &System, gateway: usize) -> Client {
    Client::connect(sys.gateway_addr(gateway), ClientOptions::default())
        .await
        .expect("mount the gateway")
}

/// Bytes that differ at every offset, so a misplaced range shows.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 131 + u64::from(seed) * 7 + (i as u64 >> 12)) as u8)
        .collect()
}

async fn meta_of(sys: &System, key: &str) -> UserMetadata {
    sys.store
        .head(key, None)
        .await
        .unwrap_or_else(|e| panic!("head {key}: {e}"))
        .metadata
}

#[tokio::test(flavor = "multi_thread")]
async fn files_directories_and_symlinks_become_objects_with_posix_metadata() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let root = c.root().clone();
    let (dir, _) = c.mkdir(&root, "data", 0o750).await.expect("mkdir");
    let body = pattern(1, 300_000);
    c.write_file("/data/train.bin", &body)
        .await
        .expect("write a file");
    c.symlink(&root, "latest", b"data/train.bin")
        .await
        .expect("symlink");
    let (_, attrs) = c.lookup("/data/train.bin").await.expect("lookup");

    // The file: same bytes, owner/group/mode with type bits, mtime in ns.
    assert_eq!(sys.object_bytes("data/train.bin").await, Some(body));
    let m = meta_of(&sys, "data/train.bin").await;
    assert_eq!((m.owner, m.group), (Some(0), Some(0)));
    assert_eq!(m.mode, Some(0o100000 | attrs.mode));
    let mtime_ns = attrs.mtime.seconds as i128 * 1_000_000_000 + i128::from(attrs.mtime.nseconds);
    assert_eq!(m.mtime_ns.map(i128::from), Some(mtime_ns));
    // The directory: a zero-byte "data/" marker with its mode.
    assert_eq!(sys.object_bytes("data/").await, Some(Vec::new()));
    assert_eq!(meta_of(&sys, "data/").await.mode, Some(0o040750));
    // The symlink: its target as the body, S_IFLNK.
    assert_eq!(
        sys.object_bytes("latest").await,
        Some(b"data/train.bin".to_vec())
    );
    assert_eq!(meta_of(&sys, "latest").await.mode, Some(0o120777));
    // A FIFO exists in the namespace only.
    c.mknod(&dir, "pipe", bucketfs_nfs_client::NodeKind::Fifo, 0o644)
        .await
        .expect("mkfifo");
    assert_eq!(sys.object_bytes("data/pipe").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_file_is_an_object_once_closed() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let root = c.root().clone();
    let f = c
        .open(&root, "empty", &OpenOptions::create(0o600))
        .await
        .expect("create");
    // Not exported before the close (export on close).
    assert_eq!(sys.object_bytes("empty").await, None);
    c.close_file(&f.fh, &f.stateid).await.expect("close");
    assert_eq!(sys.object_bytes("empty").await, Some(Vec::new()));
    assert_eq!(meta_of(&sys, "empty").await.mode, Some(0o100600));
}

#[tokio::test(flavor = "multi_thread")]
async fn unstable_writes_reach_s3_on_commit_and_file_sync_writes_at_once() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let root = c.root().clone();
    let f = c
        .open(&root, "log", &OpenOptions::create(0o644))
        .await
        .expect("create");
    let w = c
        .write(&f.fh, &f.stateid, 0, b"first ", StableHow::Unstable)
        .await
        .expect("unstable write");
    assert_eq!(w.committed, StableHow::Unstable);
    // The writer sees its own bytes before they are committed.
    let r = c.read(&f.fh, &f.stateid, 0, 100).await.expect("read");
    assert_eq!(r.data, b"first ");
    assert_eq!(c.getattr(&f.fh).await.expect("getattr").size, 6);
    assert_eq!(sys.object_bytes("log").await, None);
    let v = c.commit(&f.fh, 0, 0).await.expect("commit");
    assert_eq!(v, w.verifier);
    assert_eq!(sys.object_bytes("log").await, Some(b"first ".to_vec()));
    let w2 = c
        .write(&f.fh, &f.stateid, 6, b"second", StableHow::FileSync)
        .await
        .expect("file-sync write");
    assert_eq!(w2.committed, StableHow::FileSync);
    assert_eq!(
        sys.object_bytes("log").await,
        Some(b"first second".to_vec())
    );
    c.close_file(&f.fh, &f.stateid).await.expect("close");
    // Every commit is a new version of the same key.
    let versions = sys.versions("log").await;
    assert!(versions.len() >= 2, "{versions:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_moves_objects_and_remove_leaves_delete_markers() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let root = c.root().clone();
    let (a, _) = c.mkdir(&root, "a", 0o755).await.expect("mkdir a");
    c.mkdir(&a, "sub", 0o700).await.expect("mkdir a/sub");
    c.write_file("/a/sub/x", b"xx").await.expect("write x");
    c.write_file("/a/y", b"yy").await.expect("write y");
    c.symlink(&a, "l", b"y").await.expect("symlink");

    c.rename(&root, "a", &root, "b")
        .await
        .expect("rename a -> b");
    for (key, bytes) in [
        ("b/", Some(Vec::new())),
        ("b/sub/", Some(Vec::new())),
        ("b/sub/x", Some(b"xx".to_vec())),
        ("b/y", Some(b"yy".to_vec())),
        ("b/l", Some(b"y".to_vec())),
        ("a/", None),
        ("a/sub/", None),
        ("a/sub/x", None),
        ("a/y", None),
        ("a/l", None),
    ] {
        assert_eq!(sys.object_bytes(key).await, bytes, "{key}");
    }
    // The moved directory keeps its mode in its new marker.
    assert_eq!(meta_of(&sys, "b/sub/").await.mode, Some(0o040700));
    // The old keys are hidden by delete markers, not destroyed: versioning keeps history.
    let old = sys.versions("a/y").await;
    assert!(
        matches!(
            old.first().map(|v| &v.kind),
            Some(bucketfs_object_store::VersionKind::DeleteMarker)
        ),
        "{old:?}"
    );
    assert!(old.len() >= 2);

    // Rename over an existing file replaces its object at that key.
    c.write_file("/other", b"other").await.expect("write other");
    let (b, _) = c.lookup("/b").await.expect("lookup b");
    c.rename(&b, "y", &root, "other")
        .await
        .expect("rename over");
    assert_eq!(sys.object_bytes("other").await, Some(b"yy".to_vec()));
    assert_eq!(sys.object_bytes("b/y").await, None);

    // Remove: the object goes behind a delete marker; an empty directory's marker too.
    c.remove(&root, "other").await.expect("rm other");
    assert_eq!(sys.object_bytes("other").await, None);
    let (sub, _) = c.lookup("/b/sub").await.expect("lookup sub");
    c.remove(&sub, "x").await.expect("rm x");
    c.remove(&b, "sub").await.expect("rmdir sub");
    assert_eq!(sys.object_bytes("b/sub/").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn attribute_changes_are_new_object_versions() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let root = c.root().clone();
    c.write_file("/f", b"data").await.expect("write");
    let (fh, before) = c.lookup("/f").await.expect("lookup");
    let at = NfsTime {
        seconds: 981_173_106,
        nseconds: 500,
    };
    let after = c
        .setattr(
            &fh,
            None,
            &SetAttrs {
                mode: Some(0o640),
                owner: Some("1234".into()),
                owner_group: Some("5678".into()),
                time_modify: Some(SetTime::ClientTime(at.clone())),
                ..SetAttrs::default()
            },
        )
        .await
        .expect("chmod/chown/utimes");
    assert_eq!((after.mode, after.mtime.clone()), (0o640, at));
    // The bytes did not change, so neither does the change attribute's view of the data:
    // only the metadata change itself moved it.
    assert!(after.change > before.change);
    let m = meta_of(&sys, "f").await;
    assert_eq!(
        (m.owner, m.group, m.mode, m.mtime_ns),
        (
            Some(1234),
            Some(5678),
            Some(0o100640),
            Some(981_173_106_000_000_500)
        )
    );
    assert_eq!(sys.object_bytes("f").await, Some(b"data".to_vec()));
    // A directory's attributes go to its marker.
    let (d, _) = c.mkdir(&root, "d", 0o755).await.expect("mkdir");
    c.setattr(
        &d,
        None,
        &SetAttrs {
            mode: Some(0o711),
            ..SetAttrs::default()
        },
    )
    .await
    .expect("chmod dir");
    assert_eq!(meta_of(&sys, "d/").await.mode, Some(0o040711));
}

#[tokio::test(flavor = "multi_thread")]
async fn truncation_shrinks_and_zero_extends_the_object() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    c.write_file("/t", &pattern(3, 10_000))
        .await
        .expect("write");
    let (fh, _) = c.lookup("/t").await.expect("lookup");
    let set_size = |size| SetAttrs {
        size: Some(size),
        ..SetAttrs::default()
    };
    let both = OpenOptions {
        access: OpenAccess::Both,
        ..OpenOptions::default()
    };
    let f = c.open_fh(&fh, &both).await.expect("open");
    c.setattr(&fh, Some(&f.stateid), &set_size(100))
        .await
        .expect("shrink");
    assert_eq!(
        sys.object_bytes("t").await,
        Some(pattern(3, 10_000)[..100].to_vec())
    );
    c.setattr(&fh, Some(&f.stateid), &set_size(300))
        .await
        .expect("grow");
    let mut want = pattern(3, 10_000)[..100].to_vec();
    want.resize(300, 0);
    assert_eq!(sys.object_bytes("t").await, Some(want.clone()));
    // What was cut off does not come back when the file grows again.
    let r = c.read(&fh, &f.stateid, 0, 1000).await.expect("read");
    assert_eq!(r.data, want);
    c.close_file(&fh, &f.stateid).await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn large_files_are_multipart_and_unchanged_parts_are_copied_inside_s3() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let mut body = pattern(5, 40 << 20);
    c.write_file("/big", &body).await.expect("write 40 MiB");
    let meta = sys.store.head("big", None).await.expect("head");
    assert_eq!(meta.size, 40 << 20);
    // 8 MiB parts: a multipart ETag with 5 parts.
    assert_eq!(meta.etag.part_count(), Some(5), "{:?}", meta.etag);

    // One byte in the middle: the new version copies the four untouched parts.
    let (fh, _) = c.lookup("/big").await.expect("lookup");
    let f = c.open_fh(&fh, &OpenOptions::write()).await.expect("open");
    c.write(&f.fh, &f.stateid, 20 << 20, b"!", StableHow::FileSync)
        .await
        .expect("write one byte");
    c.close_file(&f.fh, &f.stateid).await.expect("close");
    body[20 << 20] = b'!';
    assert_eq!(sys.object_bytes("big").await, Some(body.clone()));
    let metrics = sys.gateway_metrics(0).await;
    let copies = metrics
        .lines()
        .filter(|l| l.contains("s3_op=\"upload_part_copy\"") && l.contains("outcome=\"ok\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert!(copies >= 4.0, "expected part copies in:\n{metrics}");
    // Reading it back through the gateway gives the same bytes.
    assert_eq!(c.read_file("/big").await.expect("read back"), body);
}

#[tokio::test(flavor = "multi_thread")]
async fn close_to_open_across_gateways() {
    let mut sys = System::start(3).await;
    sys.start_gateway(&[]).await;
    sys.start_gateway(&[]).await;
    let a = client(&sys, 0).await;
    let b = client(&sys, 1).await;
    a.write_file("/shared", &pattern(7, 3 << 20))
        .await
        .expect("A writes");
    // B, on the other gateway, opens after A's close and sees every byte.
    assert_eq!(
        b.read_file("/shared").await.expect("B reads"),
        pattern(7, 3 << 20)
    );
    // A reads once more (now cached on gateway 0), then B overwrites part of the file.
    assert_eq!(
        a.read_file("/shared").await.expect("A reads"),
        pattern(7, 3 << 20)
    );
    let (fh, _) = b.lookup("/shared").await.expect("lookup");
    let f = b.open_fh(&fh, &OpenOptions::write()).await.expect("open");
    b.write(
        &f.fh,
        &f.stateid,
        1 << 20,
        b"written by B",
        StableHow::Unstable,
    )
    .await
    .expect("B writes");
    b.close_file(&f.fh, &f.stateid).await.expect("B closes");
    // A reopens: gateway 0 must not serve the blocks it cached before B's change.
    let mut want = pattern(7, 3 << 20);
    want[1 << 20..(1 << 20) + 12].copy_from_slice(b"written by B");
    assert_eq!(a.read_file("/shared").await.expect("A reads again"), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn writers_of_one_file_on_two_gateways_keep_both_ranges() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    sys.start_gateway(&[]).await;
    let a = client(&sys, 0).await;
    let b = client(&sys, 1).await;
    a.write_file("/both", &[b'.'; 8192]).await.expect("create");
    let (fh, _) = a.lookup("/both").await.expect("lookup");
    let fa = a.open_fh(&fh, &OpenOptions::write()).await.expect("open A");
    let fb = b.open_fh(&fh, &OpenOptions::write()).await.expect("open B");
    // Both write before either flushes; each flush composes over the other's commit.
    a.write(&fh, &fa.stateid, 0, &[b'a'; 4096], StableHow::Unstable)
        .await
        .expect("A writes");
    b.write(&fh, &fb.stateid, 4096, &[b'b'; 4096], StableHow::Unstable)
        .await
        .expect("B writes");
    let (ra, rb) = tokio::join!(a.commit(&fh, 0, 0), b.commit(&fh, 0, 0));
    ra.expect("A commits");
    rb.expect("B commits");
    let mut want = vec![b'a'; 4096];
    want.extend_from_slice(&[b'b'; 4096]);
    assert_eq!(sys.object_bytes("both").await, Some(want.clone()));
    a.close_file(&fh, &fa.stateid).await.expect("close A");
    b.close_file(&fh, &fb.stateid).await.expect("close B");
    assert_eq!(a.read_file("/both").await.expect("read"), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn handles_outlive_gateway_restarts_and_deleted_files_are_stale() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    c.write_file("/keep", b"keep").await.expect("write keep");
    c.write_file("/gone", b"gone").await.expect("write gone");
    let (keep, _) = c.lookup("/keep").await.expect("lookup keep");
    let (gone, _) = c.lookup("/gone").await.expect("lookup gone");
    c.remove(c.root(), "gone").await.expect("rm gone");
    let err = c.getattr(&gone).await.expect_err("deleted file");
    assert_eq!(err.status(), Some(NfsStatus::Stale));

    // A second gateway knows the handle the first one gave out.
    sys.start_gateway(&[]).await;
    let other = client(&sys, 1).await;
    let attrs = other
        .getattr(&keep)
        .await
        .expect("same handle, other gateway");
    assert_eq!(attrs.size, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_continues_on_another_gateway_with_its_opens_and_locks() {
    let mut sys = System::start(3).await;
    sys.start_gateway(&[]).await;
    sys.start_gateway(&[]).await;
    // The client talks to gateway 0 first; then gateway 0 dies and "the load balancer"
    // sends it to gateway 1 (the test moves the client by hand through a proxy).
    let proxy = common::proxy::Proxy::start(&sys.gateway_addr(0)).await;
    let c = Client::connect(proxy.addr(), ClientOptions::default())
        .await
        .expect("mount through the proxy");
    let root = c.root().clone();
    let f = c
        .open(
            &root,
            "locked",
            &OpenOptions {
                access: OpenAccess::Both,
                create: Some(CreateMode::Unchecked(SetAttrs::default())),
                ..OpenOptions::default()
            },
        )
        .await
        .expect("open");
    let lock = c
        .lock(
            &f,
            b"lockowner",
            bucketfs_nfs_client::LockKind::Write,
            0,
            100,
        )
        .await
        .expect("lock");
    c.write(&f.fh, &f.stateid, 0, b"before", StableHow::FileSync)
        .await
        .expect("write before");
    sys.kill_gateway(0);
    proxy.switch(&sys.gateway_addr(1));
    // Same stateids on the new gateway: the open and the lock live in meta.
    c.write(&f.fh, &f.stateid, 6, b" after", StableHow::FileSync)
        .await
        .expect("write through gateway 1 with the old open stateid");
    c.locku(&f.fh, &lock, bucketfs_nfs_client::LockKind::Write, 0, 100)
        .await
        .expect("unlock with the old lock stateid");
    c.close_file(&f.fh, &f.stateid).await.expect("close");
    assert!(c.stats().sessions >= 2, "{:?}", c.stats());
    assert_eq!(
        c.stats().exchanges,
        1,
        "the clientid survived: {:?}",
        c.stats()
    );
    assert_eq!(
        sys.object_bytes("locked").await,
        Some(b"before after".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unversioned_bucket_is_refused_unless_allowed() {
    let sys = System::start(1).await;
    let bucket = bucketfs_object_store::moto::MotoServer::unique_bucket_name("plain");
    sys.moto.bucket(&bucket, false).await.expect("bucket");
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", common::free_port());
    let out = sys
        .gateway_command_for(&bucket, &listen, &dir.path().join("cache"))
        .output()
        .expect("run the gateway");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not have versioning enabled")
            && stderr.contains("--allow-unversioned"),
        "{stderr}"
    );
    // With the flag it serves (and says what it gives up).
    let mut child = sys
        .gateway_command_for(&bucket, &listen, &dir.path().join("cache"))
        .arg("--allow-unversioned")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut served = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    assert!(served, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without versioning"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_s3_credentials_are_named_with_the_fix() {
    let sys = System::start(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", common::free_port());
    let out = sys
        .gateway_command(&listen, &dir.path().join("cache"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        // No ~/.aws files and no instance metadata service to fall back on.
        .env("HOME", dir.path())
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run the gateway");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_exports_request_s3_and_cache_metrics() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    sys.start_gateway(&[]).await;
    let writer = client(&sys, 0).await;
    writer
        .write_file("/m", &pattern(9, 2 << 20))
        .await
        .expect("write");
    let _ = writer.lookup("/missing").await;
    // Gateway 1 has never seen the file: its first read misses and goes to S3, its second
    // is served from its cache.
    let reader = client(&sys, 1).await;
    assert_eq!(
        reader.read_file("/m").await.expect("read"),
        pattern(9, 2 << 20)
    );
    assert_eq!(
        reader.read_file("/m").await.expect("read again"),
        pattern(9, 2 << 20)
    );
    let written = sys.gateway_metrics(0).await;
    let read = sys.gateway_metrics(1).await;
    let has = |text: &str, needle: &str| {
        text.lines()
            .any(|l| !l.starts_with('#') && l.contains(needle))
    };
    for needle in [
        "bucketfs_gateway_nfs_ops_total{op=\"Write\",status=\"Ok\"}",
        "bucketfs_gateway_nfs_ops_total{op=\"Lookup\",status=\"NoEnt\"}",
        "bucketfs_gateway_nfs_op_seconds_count{op=\"Write\"}",
        "bucketfs_gateway_nfs_compounds_total",
        "bucketfs_gateway_nfs_bytes_written_total",
        "bucketfs_gateway_s3_requests_total{s3_op=\"put\",outcome=\"ok\"}",
        "bucketfs_gateway_s3_request_seconds_count{s3_op=\"put\"}",
        "bucketfs_gateway_s3_bytes_out_total",
        "bucketfs_gateway_dirty_bytes",
        "bucketfs_gateway_flush_seconds_count",
    ] {
        assert!(has(&written, needle), "no {needle} in:\n{written}");
    }
    for needle in [
        "bucketfs_gateway_nfs_op_seconds_count{op=\"Read\"}",
        "bucketfs_gateway_nfs_bytes_read_total",
        "bucketfs_gateway_s3_requests_total{s3_op=\"get_range\",outcome=\"ok\"}",
        "bucketfs_gateway_s3_bytes_in_total",
        "bucketfs_gateway_cache_misses_total",
        "bucketfs_gateway_cache_hits_total",
    ] {
        assert!(has(&read, needle), "no {needle} in:\n{read}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hard_linked_file_is_one_object_at_its_first_name() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let root = c.root().clone();
    let (d, _) = c.mkdir(&root, "d", 0o755).await.expect("mkdir");
    c.write_file("/first", b"shared").await.expect("write");
    let (f, _) = c.lookup("/first").await.expect("lookup");
    c.link(&f, &d, "second").await.expect("link");
    assert_eq!(c.getattr(&f).await.expect("getattr").nlink, 2);
    assert_eq!(sys.object_bytes("first").await, Some(b"shared".to_vec()));
    assert_eq!(sys.object_bytes("d/second").await, None);
    // When the first name goes, the object moves to the name that is left.
    c.remove(&root, "first").await.expect("rm first");
    assert_eq!(sys.object_bytes("first").await, None);
    assert_eq!(sys.object_bytes("d/second").await, Some(b"shared".to_vec()));
    assert_eq!(c.read_file("/d/second").await.expect("read"), b"shared");
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_put_through_the_s3_api_are_not_imported_yet() {
    // Import of bucket-side changes is not built: the namespace only holds what was made
    // through NFS. When import lands, this test turns into its opposite.
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    use bucketfs_object_store::PutOptions;
    sys.store
        .put(
            "from-s3.txt",
            bytes::Bytes::from_static(b"hi"),
            PutOptions::default(),
        )
        .await
        .expect("put through S3");
    let c = client(&sys, 0).await;
    let err = c.lookup("/from-s3.txt").await.expect_err("not imported");
    assert_eq!(err.status(), Some(NfsStatus::NoEnt));
}

#[tokio::test(flavor = "multi_thread")]
async fn statfs_reports_a_nominal_unbounded_size() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let stats = c.statfs().await.expect("statfs");
    assert_eq!(stats.space_total, 1 << 50);
    assert_eq!(stats.space_avail, 1 << 50);
    assert_eq!(stats.files_free, 1 << 40);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_uncommitted_writes_before_the_gateway_exits() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    let c = client(&sys, 0).await;
    let f = c
        .open(c.root(), "held", &OpenOptions::create(0o644))
        .await
        .expect("create");
    c.write(
        &f.fh,
        &f.stateid,
        0,
        b"not yet committed",
        StableHow::Unstable,
    )
    .await
    .expect("unstable write");
    assert_eq!(sys.object_bytes("held").await, None);
    let status = sys.stop_gateway(0);
    assert!(status.success(), "{status}");
    assert_eq!(
        sys.object_bytes("held").await,
        Some(b"not yet committed".to_vec())
    );
}

/// The benchmarks of docs/benchmarks.md run end to end: `bench nfs` with a cold read through a
/// second gateway (the bytes come from S3, not the first gateway's cache), and `bench s3`
/// against the same S3 server, each row without errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmarks_run_against_gateways_and_the_raw_s3_server() {
    let mut sys = System::start(1).await;
    sys.start_gateway(&[]).await;
    sys.start_gateway(&[]).await;
    let bin = env!("CARGO_BIN_EXE_bucketfs");
    let out = std::process::Command::new(bin)
        .args(["bench", "nfs", "--target", &sys.gateway_addr(0)])
        .args(["--cold-read-via", &sys.gateway_addr(1)])
        .args(["--count", "20", "--stat-ops", "50", "--concurrency", "4"])
        .args(["--size-mib", "9", "--json"])
        .output()
        .expect("bench nfs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["create_4k", "seq_write", "first_read", "cold_read"] {
        let row = stdout
            .lines()
            .find(|l| l.contains(&format!("\"benchmark\":\"{name}\"")))
            .unwrap_or_else(|| panic!("{name} in {stdout}"));
        assert!(row.contains("\"errors\":0"), "{row}");
    }
    // The cold read went to S3: the second gateway fetched the 9 MiB from it.
    let metrics = sys.gateway_metrics(1).await;
    let fetched: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("bucketfs_gateway_s3_bytes_in_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(fetched >= (9u64 << 20) as f64, "{metrics}");

    // The side-by-side table: the cold read is the first target's alone and has no ratio.
    let out = std::process::Command::new(bin)
        .args(["bench", "nfs", "--target", &sys.gateway_addr(0)])
        .args(["--compare", &sys.gateway_addr(1)])
        .args(["--cold-read-via", &sys.gateway_addr(1)])
        .args(["--count", "10", "--stat-ops", "20", "--concurrency", "2"])
        .args(["--size-mib", "2"])
        .output()
        .expect("bench nfs --compare");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ratios = table
        .split("ratio to the first target")
        .nth(1)
        .unwrap_or_else(|| panic!("no ratio table in {table}"));
    let cold = ratios
        .lines()
        .find(|l| l.starts_with("cold read"))
        .unwrap_or_else(|| panic!("no cold read row in {ratios}"));
    assert!(cold.trim_end().ends_with('-'), "{cold}");

    let out = std::process::Command::new(bin)
        .args(["bench", "s3", "--s3-endpoint", sys.moto.endpoint()])
        .args(["--bucket", &sys.bucket, "--count", "20", "--size-mib", "9"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("bench s3");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in ["put 4k", "multipart", "get 1 MiB"] {
        assert!(table.contains(row), "{row:?} in {table}");
    }
    // It cleans up after itself: no live object is left under its prefix.
    assert!(sys.objects("bench-s3/").await.is_empty());
}
