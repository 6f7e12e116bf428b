//! Crash semantics of `MemDisk`: what a node restarted on the same disk sees.

use bucketfs_meta_state::kv::{Table, WriteSet};
use bucketfs_meta_store::testing::{apply_entries, blank_entry, log_id, membership_entry};
use bucketfs_meta_store::{
    LogBackend, MemDisk, MemLogBackend, MemStateBackend, StateBackend, SyncMode, Vote,
};
use openraft::RaftLogReader;
use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};

async fn append(
    log: &mut bucketfs_meta_store::MetaLogStore,
    entries: Vec<bucketfs_meta_store::Entry>,
) {
    log.append(entries, IOFlushed::noop()).await.unwrap();
}

#[tokio::test]
async fn restart_sees_synced_vote_log_and_state_but_not_lazy_committed() {
    let disk = MemDisk::new();
    {
        let (mut log, mut sm) = disk.open();
        log.save_vote(&Vote::new(3, 1)).await.unwrap();
        append(&mut log, (1..=3).map(|i| blank_entry(3, i)).collect()).await;
        apply_entries(
            &mut sm,
            [membership_entry(3, 1, [1, 2, 3]), blank_entry(3, 2)],
        )
        .await
        .unwrap();
        // Recorded after the last fsync point: a crash may lose it.
        log.save_committed(Some(log_id(3, 0, 3))).await.unwrap();
        assert_eq!(disk.unsynced_writes(), 1);
    }
    disk.crash();

    let (mut log, mut sm) = disk.open();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
    let entries = log.try_get_log_entries(0..10).await.unwrap();
    assert_eq!(
        entries,
        (1..=3).map(|i| blank_entry(3, i)).collect::<Vec<_>>()
    );
    assert_eq!(log.read_committed().await.unwrap(), None);
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(3, 0, 2)));
    assert_eq!(membership.log_id(), &Some(log_id(3, 0, 1)));
}

#[tokio::test]
async fn a_later_fsync_point_makes_earlier_lazy_writes_durable() {
    let disk = MemDisk::new();
    {
        let (mut log, _) = disk.open();
        log.save_committed(Some(log_id(1, 0, 1))).await.unwrap();
        append(&mut log, vec![blank_entry(1, 1)]).await;
        assert_eq!(disk.unsynced_writes(), 0);
    }
    disk.crash();
    let (mut log, _) = disk.open();
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 0, 1)));
}

#[test]
fn truncate_and_purge_survive_a_crash() {
    let disk = MemDisk::new();
    let log = MemLogBackend::new(&disk);
    let entries: Vec<(u64, Vec<u8>)> = (1..=10).map(|i| (i, vec![i as u8])).collect();
    log.append(&entries).unwrap();
    log.truncate_from(8).unwrap();
    log.purge_upto(3, b"purged-3").unwrap();
    disk.crash();

    let log = MemLogBackend::new(&disk);
    let left: Vec<u64> = log
        .read_range(0, 100)
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(left, vec![4, 5, 6, 7]);
    assert_eq!(
        log.last_purged().unwrap().as_deref(),
        Some(&b"purged-3"[..])
    );
    assert_eq!(log.last_entry().unwrap(), Some((7, vec![7])));
}

#[test]
fn manual_sync_mode_loses_everything_since_the_last_explicit_sync() {
    let disk = MemDisk::new();
    disk.set_sync_mode(SyncMode::Manual);
    let log = MemLogBackend::new(&disk);
    let state = MemStateBackend::new(&disk);
    log.append(&[(1, b"one".to_vec())]).unwrap();
    disk.sync();
    log.append(&[(2, b"two".to_vec())]).unwrap();
    log.save_vote(b"vote").unwrap();
    let mut ws = WriteSet::default();
    ws.put(Table::Fs, b"k".to_vec(), b"v".to_vec());
    state.write(ws).unwrap();
    // The running process sees its own writes...
    assert_eq!(log.last_entry().unwrap(), Some((2, b"two".to_vec())));
    assert_eq!(disk.unsynced_writes(), 3);
    disk.crash();

    // ...a restarted one only what was synced.
    let log = MemLogBackend::new(&disk);
    let state = MemStateBackend::new(&disk);
    assert_eq!(log.read_range(0, 10).unwrap(), vec![(1, b"one".to_vec())]);
    assert_eq!(log.read_vote().unwrap(), None);
    assert_eq!(
        state.read_view().unwrap().get(Table::Fs, b"k").unwrap(),
        None
    );
}

#[test]
fn handles_of_a_crashed_process_are_fenced() {
    let disk = MemDisk::new();
    let old_log = MemLogBackend::new(&disk);
    let old_state = MemStateBackend::new(&disk);
    old_log.save_vote(b"v1").unwrap();
    disk.crash();

    let err = old_log.save_vote(b"v2").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    assert!(old_log.read_vote().is_err());
    assert!(old_state.read_view().is_err());
    assert!(old_state.write(WriteSet::default()).is_err());

    let new_log = MemLogBackend::new(&disk);
    assert_eq!(new_log.read_vote().unwrap().as_deref(), Some(&b"v1"[..]));
}

#[test]
fn replace_all_is_one_durable_write() {
    let disk = MemDisk::new();
    let state = MemStateBackend::new(&disk);
    let mut ws = WriteSet::default();
    ws.put(Table::Fs, b"old".to_vec(), b"1".to_vec());
    state.write(ws).unwrap();
    state
        .replace_all(vec![(Table::Inodes, b"new".to_vec(), b"2".to_vec())])
        .unwrap();
    disk.crash();
    let state = MemStateBackend::new(&disk);
    assert_eq!(
        state.export().unwrap(),
        vec![(Table::Inodes, b"new".to_vec(), b"2".to_vec())]
    );
}
