//! Restarting from a data directory, and refusing directories that are not this node's store.

use std::fs;
use std::path::{Path, PathBuf};

use bucketfs_meta_rocks::{CF_RAFT, NodeIdentity, OpenError, RocksBackend};
use bucketfs_meta_state::kv::{Table, WriteSet};
use bucketfs_meta_store::testing::{apply_entries, blank_entry, log_id, membership_entry};
use bucketfs_meta_store::{LogBackend, StateBackend, Vote};
use openraft::RaftLogReader;
use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use tempfile::TempDir;

fn me() -> NodeIdentity {
    NodeIdentity {
        cluster_id: "cluster-a".into(),
        node_id: 3,
    }
}

fn new_store(dir: &TempDir) -> PathBuf {
    let path = dir.path().join("meta");
    drop(RocksBackend::open(&path, &me(), true).unwrap());
    path
}

fn open_err(path: &Path, who: &NodeIdentity, create: bool) -> OpenError {
    RocksBackend::open(path, who, create).expect_err("open must refuse")
}

#[tokio::test]
async fn restart_keeps_vote_log_and_state() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("meta");
    {
        let (mut log, mut sm) = RocksBackend::open(&path, &me(), true)
            .unwrap()
            .into_stores();
        log.save_vote(&Vote::new(4, 3)).await.unwrap();
        log.append((1..=5).map(|i| blank_entry(4, i)), IOFlushed::noop())
            .await
            .unwrap();
        log.truncate_after(Some(log_id(4, 0, 4))).await.unwrap();
        log.purge(log_id(4, 0, 1)).await.unwrap();
        log.save_committed(Some(log_id(4, 0, 3))).await.unwrap();
        apply_entries(
            &mut sm,
            [membership_entry(4, 1, [1, 2, 3]), blank_entry(4, 2)],
        )
        .await
        .unwrap();
    }

    let backend = RocksBackend::open(&path, &me(), false).unwrap();
    assert_eq!(backend.identity(), &me());
    let (mut log, mut sm) = backend.into_stores();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(4, 3)));
    let entries = log.try_get_log_entries(0..100).await.unwrap();
    assert_eq!(
        entries,
        (2..=4).map(|i| blank_entry(4, i)).collect::<Vec<_>>()
    );
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(4, 0, 1)));
    assert_eq!(state.last_log_id, Some(log_id(4, 0, 4)));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(4, 0, 3)));
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(4, 0, 2)));
    assert_eq!(membership.log_id(), &Some(log_id(4, 0, 1)));
}

#[test]
fn state_rows_survive_restart_and_snapshot_install_replaces_them() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("meta");
    {
        let b = RocksBackend::open(&path, &me(), true).unwrap();
        let mut ws = WriteSet::default();
        ws.put(Table::Inodes, b"a".to_vec(), b"1".to_vec());
        ws.put(Table::Inodes, b"b".to_vec(), b"2".to_vec());
        ws.put(Table::Dirents, b"x".to_vec(), b"3".to_vec());
        StateBackend::write(&b, ws).unwrap();
        let mut ws = WriteSet::default();
        ws.delete(Table::Inodes, b"a".to_vec());
        StateBackend::write(&b, ws).unwrap();
    }
    let b = RocksBackend::open(&path, &me(), false).unwrap();
    assert_eq!(
        b.export().unwrap(),
        vec![
            (Table::Inodes, b"b".to_vec(), b"2".to_vec()),
            (Table::Dirents, b"x".to_vec(), b"3".to_vec()),
        ]
    );
    let view = b.read_view().unwrap();
    assert_eq!(
        view.scan(Table::Inodes, b"", None, 10).unwrap(),
        vec![(b"b".to_vec(), b"2".to_vec())]
    );
    assert_eq!(
        view.scan(Table::Inodes, b"", Some(b"b"), 10).unwrap(),
        vec![]
    );
    drop(view);
    b.replace_all(vec![(Table::Fs, b"f".to_vec(), b"9".to_vec())])
        .unwrap();
    assert_eq!(
        b.export().unwrap(),
        vec![(Table::Fs, b"f".to_vec(), b"9".to_vec())]
    );
    // The log side of the same database is untouched by state writes.
    assert_eq!(LogBackend::last_entry(&b).unwrap(), None);
}

#[test]
fn another_clusters_store_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = new_store(&dir);
    let other = NodeIdentity {
        cluster_id: "cluster-b".into(),
        node_id: 3,
    };
    let err = open_err(&path, &other, true);
    assert!(matches!(err, OpenError::WrongCluster { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"cluster-a\"") && msg.contains("\"cluster-b\""),
        "{msg}"
    );
}

#[test]
fn another_nodes_store_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = new_store(&dir);
    let other = NodeIdentity {
        cluster_id: "cluster-a".into(),
        node_id: 4,
    };
    let err = open_err(&path, &other, true);
    assert!(
        matches!(
            err,
            OpenError::WrongNode {
                found: 3,
                expected: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("node 3"), "{err}");
}

fn raw_db(path: &Path) -> rocksdb::DB {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).unwrap();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, cfs).unwrap()
}

#[test]
fn an_unknown_format_version_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = new_store(&dir);
    {
        let db = raw_db(&path);
        let cf = db.cf_handle(CF_RAFT).unwrap();
        db.put_cf(cf, b"format_version", 99u32.to_be_bytes())
            .unwrap();
    }
    let err = open_err(&path, &me(), false);
    assert!(
        matches!(
            err,
            OpenError::UnsupportedFormat {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_store_without_identity_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = new_store(&dir);
    {
        let db = raw_db(&path);
        let cf = db.cf_handle(CF_RAFT).unwrap();
        db.delete_cf(cf, b"node_id").unwrap();
    }
    let err = open_err(&path, &me(), true);
    assert!(
        matches!(
            err,
            OpenError::MissingIdentity {
                missing: "node id",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn garbage_over_current_is_refused_not_recreated() {
    let dir = TempDir::new().unwrap();
    let path = new_store(&dir);
    fs::write(path.join("CURRENT"), b"\x00garbage\xff").unwrap();
    let err = open_err(&path, &me(), true);
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("restore it from a backup"),
        "{err}"
    );
    // Still refused: nothing was reset behind our back.
    assert!(matches!(
        open_err(&path, &me(), true),
        OpenError::Corrupt { .. }
    ));
}

#[test]
fn garbage_over_the_manifest_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = new_store(&dir);
    let manifest = fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("MANIFEST-")
        })
        .expect("a MANIFEST file");
    let len = fs::metadata(&manifest).unwrap().len() as usize;
    fs::write(&manifest, vec![0xA5; len.max(64)]).unwrap();
    let err = open_err(&path, &me(), true);
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
}

#[test]
fn a_missing_column_family_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("meta");
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        rocksdb::DB::open_cf(&opts, &path, ["log", "raft", "inodes"]).unwrap();
    }
    let err = open_err(&path, &me(), true);
    assert!(
        matches!(err, OpenError::MissingColumnFamily { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("column family"), "{err}");
}

#[test]
fn unknown_files_are_not_turned_into_a_store() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("meta");
    fs::create_dir_all(&path).unwrap();
    fs::write(path.join("notes.txt"), b"hello").unwrap();
    let err = open_err(&path, &me(), true);
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err}");
    assert_eq!(
        fs::read_dir(&path).unwrap().count(),
        1,
        "nothing was created"
    );
}

#[test]
fn an_absent_store_is_created_only_when_asked() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("meta");
    let err = open_err(&path, &me(), false);
    assert!(matches!(err, OpenError::Missing { .. }), "{err}");
    assert!(!path.exists());
    RocksBackend::open(&path, &me(), true).unwrap();
}

#[test]
fn a_store_open_elsewhere_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("meta");
    let _first = RocksBackend::open(&path, &me(), true).unwrap();
    let err = open_err(&path, &me(), false);
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");
}
