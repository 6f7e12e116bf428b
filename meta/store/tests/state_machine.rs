//! The state machine adapter: group commit, fatal apply errors, snapshots, reads.

use std::io;
use std::sync::{Arc, Mutex};

use bucketfs_meta_state::kv::{Key, KvRead, Table, Value, WriteSet};
use bucketfs_meta_state::types::{ClientId, Timestamp};
use bucketfs_meta_state::{Command, MetaError, Proposal};
use bucketfs_meta_store::testing::{
    apply_entries, blank_entry, log_id, membership_entry, normal_entry,
};
use bucketfs_meta_store::{
    MemDisk, MemStateBackend, MetaStateMachine, Row, SYSTEM_LAST_APPLIED, StateBackend,
};
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;

/// Records every write set it commits.
struct Recording {
    inner: MemStateBackend,
    writes: Mutex<Vec<WriteSet>>,
}

impl StateBackend for Recording {
    fn blocking(&self) -> bool {
        false
    }
    fn read_view(&self) -> io::Result<Box<dyn KvRead + '_>> {
        self.inner.read_view()
    }
    fn write(&self, writes: WriteSet) -> io::Result<()> {
        self.writes.lock().unwrap().push(writes.clone());
        self.inner.write(writes)
    }
    fn export(&self) -> io::Result<Vec<Row>> {
        self.inner.export()
    }
    fn replace_all(&self, rows: Vec<Row>) -> io::Result<()> {
        self.inner.replace_all(rows)
    }
}

/// A store whose reads all fail, as a broken disk would.
struct Broken;

struct BrokenView;

impl KvRead for BrokenView {
    fn get(&self, _: Table, _: &[u8]) -> Result<Option<Value>, MetaError> {
        Err(MetaError::Storage("disk on fire".into()))
    }
    fn scan(
        &self,
        _: Table,
        _: &[u8],
        _: Option<&[u8]>,
        _: usize,
    ) -> Result<Vec<(Key, Value)>, MetaError> {
        Err(MetaError::Storage("disk on fire".into()))
    }
}

impl StateBackend for Broken {
    fn blocking(&self) -> bool {
        false
    }
    fn read_view(&self) -> io::Result<Box<dyn KvRead + '_>> {
        Ok(Box::new(BrokenView))
    }
    fn write(&self, _: WriteSet) -> io::Result<()> {
        panic!("a failed batch must not be written")
    }
    fn export(&self) -> io::Result<Vec<Row>> {
        Ok(Vec::new())
    }
    fn replace_all(&self, _: Vec<Row>) -> io::Result<()> {
        Ok(())
    }
}

fn noop_proposal(seq: u64) -> Proposal {
    Proposal {
        client: ClientId(7),
        seq,
        ack_below: 0,
        now: Timestamp::from_unix_nanos(1_700_000_000_000_000_000),
        command: Command::Noop,
    }
}

#[tokio::test]
async fn a_batch_is_committed_as_one_write_with_its_last_applied_id() {
    let disk = MemDisk::new();
    let rec = Arc::new(Recording {
        inner: MemStateBackend::new(&disk),
        writes: Mutex::new(Vec::new()),
    });
    let mut sm = MetaStateMachine::new(rec.clone());
    apply_entries(
        &mut sm,
        [
            blank_entry(1, 1),
            membership_entry(1, 2, [1, 2, 3]),
            blank_entry(1, 3),
        ],
    )
    .await
    .unwrap();

    let writes = rec.writes.lock().unwrap().clone();
    assert_eq!(writes.len(), 1, "one write per batch");
    let last = writes[0]
        .writes
        .get(&(Table::System, SYSTEM_LAST_APPLIED.to_vec()))
        .cloned()
        .flatten()
        .expect("last applied recorded in the batch");
    assert_eq!(last, bucketfs_meta_state::codec::encode(&log_id(1, 0, 3)));
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 0, 3)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 0, 2)));
}

#[tokio::test]
async fn an_error_from_the_rules_is_fatal_and_writes_nothing() {
    let mut sm = MetaStateMachine::new(Arc::new(Broken));
    let err = apply_entries(
        &mut sm,
        [blank_entry(1, 1), normal_entry(1, 2, noop_proposal(1))],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot apply log entry"), "{err}");
}

#[tokio::test]
async fn normal_entries_are_applied_by_the_namespace_rules() {
    let disk = MemDisk::new();
    let (_, mut sm) = disk.open();
    apply_entries(
        &mut sm,
        [
            normal_entry(1, 1, noop_proposal(1)),
            normal_entry(1, 2, noop_proposal(2)),
        ],
    )
    .await
    .unwrap();
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 0, 2)));
}

#[tokio::test]
async fn snapshot_carries_every_row_and_install_replaces_everything() {
    let leader_disk = MemDisk::new();
    let leader_rows = MemStateBackend::new(&leader_disk);
    let mut ws = WriteSet::default();
    ws.put(Table::Fs, b"fs-1".to_vec(), b"a".to_vec());
    ws.put(Table::Inodes, b"ino-1".to_vec(), b"b".to_vec());
    ws.put(Table::Inodes, b"ino-2".to_vec(), b"c".to_vec());
    leader_rows.write(ws).unwrap();
    let (_, mut leader) = leader_disk.open();
    apply_entries(
        &mut leader,
        [membership_entry(2, 5, [1, 2]), blank_entry(2, 6)],
    )
    .await
    .unwrap();
    let snap = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(2, 0, 6)));

    let follower_disk = MemDisk::new();
    let stale = MemStateBackend::new(&follower_disk);
    let mut ws = WriteSet::default();
    ws.put(Table::Locks, b"stale".to_vec(), b"x".to_vec());
    stale.write(ws).unwrap();
    let (_, mut follower) = follower_disk.open();
    follower
        .install_snapshot(&snap.meta, snap.snapshot.clone())
        .await
        .unwrap();

    assert_eq!(
        MemStateBackend::new(&follower_disk).export().unwrap(),
        leader_rows.export().unwrap()
    );
    assert_eq!(
        follower.applied_state().await.unwrap(),
        leader.applied_state().await.unwrap()
    );
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snap.meta);

    // The reader sees the installed state.
    let got = follower
        .reader()
        .with_view(|kv| kv.get(Table::Inodes, b"ino-2").unwrap())
        .await
        .unwrap();
    assert_eq!(got, Some(b"c".to_vec()));
}

#[tokio::test]
async fn a_snapshot_whose_data_disagrees_with_its_meta_is_refused() {
    let disk = MemDisk::new();
    let (_, mut sm) = disk.open();
    apply_entries(&mut sm, [blank_entry(1, 1)]).await.unwrap();
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut meta = snap.meta.clone();
    meta.last_log_id = Some(log_id(1, 0, 9));
    let (_, mut other) = MemDisk::new().open();
    let err = other
        .install_snapshot(&meta, snap.snapshot)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(other.applied_state().await.unwrap().0, None);
}
