//! The data path when S3 misbehaves: brief failures are retried inside the gateway, lasting
//! ones become NFS4ERR_DELAY (a hard-mounted client retries) or NFS4ERR_IO (S3 refuses for
//! good), and an acknowledged write is in S3 whatever happened before the acknowledgement.

mod common;

use bucketfs_nfs_server::{CreateHow, FileSystem, NewAttrs, NewNode, Stability};
use bucketfs_nfs_wire::nfs::NfsStatus;
use bucketfs_object_store::{
    Fault, FaultConfig, GetOptions, ObjectStore, ObjectStoreError, OpKind,
};

const ATTRS: NewAttrs = NewAttrs {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

async fn new_file(s: &common::Setup, name: &str) -> Vec<u8> {
    s.fs.create(&s.fs.root(), name, NewNode::File, ATTRS, CreateHow::Guarded)
        .await
        .expect("create")
        .fh
}

async fn s3_bytes(s: &common::Setup, key: &str) -> Option<Vec<u8>> {
    match s.store.inner().get_range(key, GetOptions::default()).await {
        Ok(out) => Some(out.body.to_vec()),
        Err(ObjectStoreError::NotFound(_)) => None,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn brief_s3_failures_are_retried_inside_the_gateway() {
    let s = common::start().await;
    let fh = new_file(&s, "f").await;
    // Two failed PUTs (a 503 and a response lost after S3 applied it), then success.
    s.store.inject(Some(OpKind::Put), Fault::SlowDown);
    s.store.inject(Some(OpKind::Put), Fault::AckLost);
    let got = s.fs.write(&fh, 0, b"durable", true).await;
    assert_eq!(got, Ok(Stability::FileSync));
    assert_eq!(s3_bytes(&s, "f").await, Some(b"durable".to_vec()));
    assert_eq!(s.store.stats().slowdowns, 1);
    assert_eq!(s.store.stats().acks_lost, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lasting_outage_asks_the_client_to_retry_and_loses_nothing() {
    let s = common::start().await;
    let fh = new_file(&s, "f").await;
    assert_eq!(
        s.fs.write(&fh, 0, b"held", false).await,
        Ok(Stability::Unstable)
    );
    // Every S3 call fails: the COMMIT cannot be acknowledged.
    s.store.set_config(FaultConfig {
        error_before: 1.0,
        ..FaultConfig::none()
    });
    assert_eq!(s.fs.commit(&fh).await, Err(NfsStatus::Delay));
    assert_eq!(s3_bytes(&s, "f").await, None);
    // The write is still held; once S3 is back, the client's retry of COMMIT succeeds.
    s.store.set_config(FaultConfig::none());
    assert_eq!(s.fs.read(&fh, 0, 100).await, Ok((b"held".to_vec(), true)));
    assert_eq!(s.fs.commit(&fh).await, Ok(()));
    assert_eq!(s3_bytes(&s, "f").await, Some(b"held".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_records_only_what_s3_has() {
    let s = common::start().await;
    let fh = new_file(&s, "f").await;
    s.fs.write(&fh, 0, b"v1", true).await.expect("v1");
    let before = s.fs.getattr(&fh).await.expect("attrs");
    // The upload of v2 fails for good: meta must keep pointing at v1 (S3 first, meta second).
    s.store.set_config(FaultConfig {
        error_before: 1.0,
        ..FaultConfig::none()
    });
    assert_eq!(s.fs.write(&fh, 0, b"v2", true).await, Err(NfsStatus::Delay));
    s.store.set_config(FaultConfig::none());
    let after = s.fs.getattr(&fh).await.expect("attrs");
    assert_eq!(after.change, before.change);
    // What this gateway still holds is not lost either: the next flush carries it.
    s.fs.commit(&fh).await.expect("commit");
    assert_eq!(s3_bytes(&s, "f").await, Some(b"v2".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_pin_the_linked_version_even_if_the_key_was_overwritten_in_s3() {
    let s = common::start().await;
    let fh = new_file(&s, "f").await;
    s.fs.write(&fh, 0, b"through nfs", true)
        .await
        .expect("write");
    // Someone overwrites the key through the S3 API. Import is not built, so the file system
    // keeps serving the version it linked rather than a mix.
    s.store
        .inner()
        .put(
            "f",
            bytes::Bytes::from_static(b"OTHER BYTES"),
            Default::default(),
        )
        .await
        .expect("put");
    // Another gateway, with nothing cached, reads from S3: the linked version.
    let dir = tempfile::tempdir().expect("tempdir");
    let other = s.second_gateway(dir.path()).await;
    assert_eq!(
        other.read(&fh, 0, 100).await,
        Ok((b"through nfs".to_vec(), true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn directories_and_symlinks_are_exported_and_specials_are_not() {
    let s = common::start().await;
    let root = s.fs.root();
    let d =
        s.fs.create(&root, "d", NewNode::Directory, ATTRS, CreateHow::Guarded)
            .await
            .expect("mkdir");
    s.fs.create(
        &d.fh,
        "l",
        NewNode::Symlink(b"../x".to_vec()),
        ATTRS,
        CreateHow::Guarded,
    )
    .await
    .expect("symlink");
    s.fs.create(
        &d.fh,
        "p",
        NewNode::Special {
            ftype: bucketfs_nfs_wire::nfs::NfsFileType::Fifo,
            rawdev: (0, 0),
        },
        ATTRS,
        CreateHow::Guarded,
    )
    .await
    .expect("mkfifo");
    assert_eq!(s3_bytes(&s, "d/").await, Some(Vec::new()));
    assert_eq!(s3_bytes(&s, "d/l").await, Some(b"../x".to_vec()));
    assert_eq!(s3_bytes(&s, "d/p").await, None);
}
