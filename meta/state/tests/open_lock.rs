//! NFS opens (share reservations) and byte-range locks through the public commands: the
//! conflict rules in both directions, upgrades and downgrades, CLOSE with locks held, POSIX
//! merge/split of one lock-owner's ranges, ranges to EOF and overflowing ones, and state
//! dropped with its client (expiry, reboot, DESTROY_CLIENTID).

mod common;

use bucketfs_meta_state::command::{CreateMode, Locker, NewInode, Proposal};
use bucketfs_meta_state::nfs_state::{
    ClientOwner, LeaseConfig, LockKind, LockRange, LockState, OpenState, ShareMode,
};
use bucketfs_meta_state::types::{FsId, InodeId, Timestamp};
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use common::Harness;

use LockKind::{Read, Write};

const LEASE: LeaseConfig = LeaseConfig {
    duration_ms: 90_000,
    skew_margin_ms: 2_000,
};
const R: u32 = 1;
const W: u32 = 2;
const RW: u32 = 3;
const EOF: u64 = u64::MAX;

struct World {
    h: Harness,
    fs: FsId,
    file: InodeId,
}

impl World {
    fn new() -> Self {
        let mut h = Harness::new();
        let fs = h.mkfs("main");
        let file = match h.run(common::create(
            fs,
            InodeId::ROOT,
            "f".into(),
            NewInode::File,
            CreateMode::Guarded,
        )) {
            Ok(Reply::Changed {
                inode: Some(inode), ..
            }) => inode.id,
            other => panic!("create: {other:?}"),
        };
        World { h, fs, file }
    }

    fn client(&mut self, owner: &str, verifier: u64) -> u64 {
        match self.h.run(Command::ExchangeClient {
            owner: ClientOwner {
                owner_id: owner.as_bytes().to_vec(),
                verifier,
            },
            lease: LEASE,
        }) {
            Ok(Reply::Exchanged { record: r, .. }) => r.client,
            other => panic!("exchange: {other:?}"),
        }
    }

    fn open_ino(
        &mut self,
        ino: InodeId,
        client: u64,
        owner: &str,
        access: u32,
        deny: u32,
    ) -> Result<OpenState, NsError> {
        let fs = self.fs;
        self.h
            .run(Command::Open {
                fs,
                ino,
                client,
                owner: owner.as_bytes().to_vec(),
                access,
                deny,
            })
            .map(|r| match r {
                Reply::Open(o) => o,
                other => panic!("open: {other:?}"),
            })
    }

    fn open(
        &mut self,
        client: u64,
        owner: &str,
        access: u32,
        deny: u32,
    ) -> Result<OpenState, NsError> {
        self.open_ino(self.file, client, owner, access, deny)
    }

    fn lock(
        &mut self,
        client: u64,
        open: &OpenState,
        owner: &str,
        kind: LockKind,
        offset: u64,
        length: u64,
    ) -> Result<LockState, NsError> {
        self.lock_with(
            client,
            Locker::New {
                open_state_id: open.state_id,
                lock_owner: owner.as_bytes().to_vec(),
            },
            kind,
            offset,
            length,
        )
    }

    fn lock_with(
        &mut self,
        client: u64,
        locker: Locker,
        kind: LockKind,
        offset: u64,
        length: u64,
    ) -> Result<LockState, NsError> {
        self.h
            .run(Command::Lock {
                client,
                locker,
                kind,
                offset,
                length,
            })
            .map(|r| match r {
                Reply::Lock(l) => l,
                other => panic!("lock: {other:?}"),
            })
    }

    fn unlock(
        &mut self,
        client: u64,
        lock_state_id: u64,
        offset: u64,
        length: u64,
    ) -> Result<LockState, NsError> {
        self.h
            .run(Command::Unlock {
                client,
                lock_state_id,
                offset,
                length,
            })
            .map(|r| match r {
                Reply::Lock(l) => l,
                other => panic!("unlock: {other:?}"),
            })
    }

    fn lock_test(
        &self,
        client: u64,
        owner: &str,
        kind: LockKind,
        offset: u64,
        length: u64,
    ) -> Result<QueryReply, NsError> {
        self.h.query(Query::LockTest {
            fs: self.fs,
            ino: self.file,
            client,
            lock_owner: owner.as_bytes().to_vec(),
            kind,
            offset,
            length,
        })
    }

    fn test_ids(&self, client: u64, state_ids: &[u64]) -> Vec<bool> {
        match self.h.query(Query::TestStateIds {
            client,
            state_ids: state_ids.to_vec(),
        }) {
            Ok(QueryReply::StateIds(v)) => v,
            other => panic!("test_stateid: {other:?}"),
        }
    }
}

fn range(kind: LockKind, first: u64, last: u64) -> LockRange {
    LockRange { kind, first, last }
}

fn denied(client: u64, owner: &str, kind: LockKind, offset: u64, length: u64) -> NsError {
    NsError::LockDenied {
        client,
        owner: owner.as_bytes().to_vec(),
        kind,
        offset,
        length,
    }
}

#[test]
fn share_reservations_conflict_both_ways() {
    // (held access, held deny, asked access, asked deny, granted)
    let table = [
        (R, 0, R, 0, true),
        (RW, 0, RW, 0, true),
        (R, W, R, 0, true),
        (R, W, W, 0, false), // asked access hits held deny
        (R, W, RW, 0, false),
        (RW, R, R, 0, false),
        (W, 0, R, W, false), // asked deny hits held access
        (R, 0, R, W, true),
        (R, 0, W, R, false),
        (R, RW, R, 0, false),
        (W, R, W, R, true),
        (W, R, R, 0, false),
        (W, R, W, 0, true),
        (R, W, R, W, true),
    ];
    for (i, &(ha, hd, aa, ad, ok)) in table.iter().enumerate() {
        // Another client, and another owner of the same client: both are other open-owners.
        for same_client in [false, true] {
            let mut w = World::new();
            let a = w.client("a", 1);
            let b = if same_client { a } else { w.client("b", 1) };
            w.open(a, "oa", ha, hd).expect("first open");
            let got = w.open(b, "ob", aa, ad);
            if ok {
                assert!(got.is_ok(), "row {i} same_client={same_client}: {got:?}");
            } else {
                assert_eq!(
                    got,
                    Err(NsError::ShareDenied),
                    "row {i} same_client={same_client}"
                );
            }
        }
    }
}

#[test]
fn reopening_upgrades_the_same_open() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let b = w.client("b", 1);
    let first = w.open(a, "o", R, 0).unwrap();
    assert_eq!(
        (first.seqid, first.share),
        (1, ShareMode { access: R, deny: 0 })
    );
    let other = w.open(b, "o", R, 0).unwrap();
    assert_ne!(
        other.state_id, first.state_id,
        "same owner bytes, other client"
    );

    let up = w.open(a, "o", W, 0).unwrap();
    assert_eq!(up.state_id, first.state_id);
    assert_eq!(
        (up.seqid, up.share),
        (
            2,
            ShareMode {
                access: RW,
                deny: 0
            }
        )
    );
    // An upgrade is checked against the others like a fresh open: b reads, so a cannot
    // start denying reads, and nothing changes.
    assert_eq!(w.open(a, "o", R, R), Err(NsError::ShareDenied));
    let again = w.open(a, "o", R, W);
    assert_eq!(
        again.map(|o| (o.seqid, o.share)),
        Ok((
            3,
            ShareMode {
                access: RW,
                deny: W
            }
        ))
    );
    // Now b may not upgrade to write.
    assert_eq!(w.open(b, "o", W, 0), Err(NsError::ShareDenied));
}

#[test]
fn open_checks_its_arguments() {
    let mut w = World::new();
    let a = w.client("a", 1);
    assert_eq!(w.open(99, "o", R, 0), Err(NsError::NoSuchClient(99)));
    for (access, deny) in [(0, 0), (4, 0), (R, 4), (R | 8, 0)] {
        assert!(
            matches!(w.open(a, "o", access, deny), Err(NsError::Invalid(_))),
            "{access} {deny}"
        );
    }
    let long = "o".repeat(1025);
    assert!(matches!(w.open(a, &long, R, 0), Err(NsError::Invalid(_))));
    assert_eq!(w.open_ino(InodeId::ROOT, a, "o", R, 0), Err(NsError::IsDir));
    assert_eq!(w.open_ino(InodeId(999), a, "o", R, 0), Err(NsError::Stale));
    // Special files are opened on the client; there is no share state to keep for them.
    let fs = w.fs;
    let fifo = match w.h.run(common::create(
        fs,
        InodeId::ROOT,
        "p".into(),
        NewInode::Special {
            kind: bucketfs_meta_state::types::FileType::Fifo,
            major: 0,
            minor: 0,
        },
        CreateMode::Guarded,
    )) {
        Ok(Reply::Changed {
            inode: Some(inode), ..
        }) => inode.id,
        other => panic!("mknod: {other:?}"),
    };
    assert!(matches!(
        w.open_ino(fifo, a, "o", R, 0),
        Err(NsError::Invalid(_))
    ));

    // A lease that ran out is refused before the sweeper removes the record.
    w.h.now = Timestamp::from_unix_nanos(w.h.now.as_unix_nanos() + 93_000_000_000);
    assert_eq!(w.open(a, "o", R, 0), Err(NsError::NoSuchClient(a)));
}

#[test]
fn a_successful_open_renews_the_lease() {
    let mut w = World::new();
    let a = w.client("a", 1);
    w.h.now = Timestamp::from_unix_nanos(w.h.now.as_unix_nanos() + 60_000_000_000);
    w.open(a, "o", R, 0).unwrap();
    let Ok(QueryReply::Client(rec)) = w.h.query(Query::GetClient { client: a }) else {
        panic!("client exists")
    };
    assert_eq!(rec.last_renewed, w.h.now);
}

#[test]
fn downgrade_rules() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let b = w.client("b", 1);
    let open = w.open(a, "o", RW, RW).unwrap();
    let down = |client, state_id, seqid, access, deny| Command::OpenDowngrade {
        client,
        state_id,
        seqid,
        access,
        deny,
    };
    assert_eq!(w.open(b, "o", R, 0), Err(NsError::ShareDenied));
    let id = open.state_id;
    // The same bits are a (non-strict) subset.
    let Ok(Reply::Open(same)) = w.h.run(down(a, id, 0, RW, RW)) else {
        panic!("same bits")
    };
    assert_eq!(
        (same.seqid, same.share),
        (
            2,
            ShareMode {
                access: RW,
                deny: RW
            }
        )
    );
    let Ok(Reply::Open(less)) = w.h.run(down(a, id, 2, R, 0)) else {
        panic!("subset")
    };
    assert_eq!(less.seqid, 3);
    // Adding bits back is not a downgrade.
    assert!(matches!(
        w.h.run(down(a, id, 0, RW, 0)),
        Err(NsError::Invalid(_))
    ));
    assert!(matches!(
        w.h.run(down(a, id, 0, R, W)),
        Err(NsError::Invalid(_))
    ));
    let Ok(Reply::Open(_)) = w.h.run(down(a, id, 0, R, 0)) else {
        panic!("no-op downgrade")
    };
    // seqid 4 now; an older one is OLD_STATEID, a newer one BAD_STATEID.
    assert_eq!(w.h.run(down(a, id, 3, R, 0)), Err(NsError::OldStateId(id)));
    assert_eq!(w.h.run(down(a, id, 9, R, 0)), Err(NsError::BadStateId(id)));
    assert_eq!(w.h.run(down(b, id, 0, R, 0)), Err(NsError::BadStateId(id)));
    assert!(matches!(
        w.h.run(down(a, id, 4, 0, 0)),
        Err(NsError::Invalid(_))
    ));
    assert_eq!(w.h.run(down(a, 99, 0, R, 0)), Err(NsError::BadStateId(99)));
    let Ok(Reply::Open(now)) = w.h.run(down(a, id, 4, R, 0)) else {
        panic!("current seqid")
    };
    assert_eq!(
        (now.seqid, now.share),
        (5, ShareMode { access: R, deny: 0 })
    );
    // The dropped deny no longer stands in b's way.
    assert!(w.open(b, "o", RW, 0).is_ok());
}

#[test]
fn close_refuses_while_locks_are_held() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let b = w.client("b", 1);
    let open = w.open(a, "o", RW, W).unwrap();
    let lock = w.lock(a, &open, "l", Write, 0, 10).unwrap();
    let close = |state_id| Command::Close {
        client: a,
        state_id,
    };
    assert_eq!(w.h.run(close(open.state_id)), Err(NsError::LocksHeld));
    assert_eq!(
        w.h.run(Command::Close {
            client: b,
            state_id: open.state_id
        }),
        Err(NsError::BadStateId(open.state_id))
    );
    assert_eq!(
        w.test_ids(a, &[open.state_id, lock.state_id, 12345]),
        [true, true, false]
    );
    assert_eq!(
        w.test_ids(b, &[open.state_id, lock.state_id]),
        [false, false]
    );

    let released = w.unlock(a, lock.state_id, 0, 10).unwrap();
    assert!(released.ranges.is_empty());
    assert_eq!(
        w.test_ids(a, &[lock.state_id]),
        [true],
        "an empty lock stateid stays valid"
    );
    assert_eq!(w.h.run(close(open.state_id)), Ok(Reply::Done));
    // The open and its lock stateid are gone, with their index rows: b may now deny writes.
    assert_eq!(
        w.test_ids(a, &[open.state_id, lock.state_id]),
        [false, false]
    );
    assert!(w.open(b, "o", R, W).is_ok());
    assert_eq!(
        w.h.run(close(open.state_id)),
        Err(NsError::BadStateId(open.state_id))
    );
    assert_eq!(
        w.lock(a, &open, "l", Read, 0, 1),
        Err(NsError::BadStateId(open.state_id))
    );
}

#[test]
fn lock_conflicts_across_owners() {
    // (held kind, held range, asked kind, asked range, conflict)
    let table = [
        (Read, (0, 100), Read, (50, 100), false),
        (Read, (0, 100), Write, (50, 100), true),
        (Write, (0, 100), Read, (99, 1), true),
        (Write, (0, 100), Write, (0, 1), true),
        (Write, (0, 100), Write, (100, 5), false), // adjacent, not overlapping
        (Write, (10, 10), Write, (0, 10), false),
        (Write, (10, 10), Write, (0, 11), true),
        (Write, (10, EOF), Read, (u64::MAX - 1, 1), true),
        (Read, (0, EOF), Write, (1 << 62, 1), true),
    ];
    for (i, &(hk, (ho, hl), ak, (ao, al), conflict)) in table.iter().enumerate() {
        let mut w = World::new();
        let a = w.client("a", 1);
        let b = w.client("b", 1);
        let oa = w.open(a, "o", RW, 0).unwrap();
        let ob = w.open(b, "o", RW, 0).unwrap();
        w.lock(a, &oa, "la", hk, ho, hl).unwrap();
        // The owner never conflicts with its own ranges.
        assert_eq!(
            w.lock_test(a, "la", Write, 0, EOF),
            Ok(QueryReply::LockFree)
        );
        // Another lock-owner of the *same* client conflicts like another client's.
        let same = w.lock_test(a, "la2", ak, ao, al);
        assert_eq!(same.is_err(), conflict, "row {i} same client: {same:?}");
        let tested = w.lock_test(b, "lb", ak, ao, al);
        let got = w.lock(b, &ob, "lb", ak, ao, al);
        if conflict {
            assert_eq!(got, Err(denied(a, "la", hk, ho, hl)), "row {i}");
            assert_eq!(tested, Err(denied(a, "la", hk, ho, hl)), "row {i} LOCKT");
        } else {
            assert!(got.is_ok(), "row {i}: {got:?}");
            assert_eq!(tested, Ok(QueryReply::LockFree), "row {i} LOCKT");
        }
    }
}

#[test]
fn one_owner_merges_splits_and_changes_kind() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let b = w.client("b", 1);
    let oa = w.open(a, "o", RW, 0).unwrap();
    let ob = w.open(b, "o", RW, 0).unwrap();

    let l = w.lock(a, &oa, "l", Read, 0, 50).unwrap();
    assert_eq!((l.seqid, l.ranges.clone()), (1, vec![range(Read, 0, 49)]));
    // Adjacent range of the same kind merges.
    let l2 = w.lock(a, &oa, "l", Read, 50, 50).unwrap();
    assert_eq!(
        l2.state_id, l.state_id,
        "one stateid per lock-owner and file"
    );
    assert_eq!((l2.seqid, l2.ranges.clone()), (2, vec![range(Read, 0, 99)]));
    // b can share reads.
    w.lock(b, &ob, "lb", Read, 90, 5).unwrap();
    // An upgrade in the middle splits the read range; it is refused where b reads.
    assert_eq!(
        w.lock(a, &oa, "l", Write, 80, 20),
        Err(denied(b, "lb", Read, 90, 5))
    );
    let up = w
        .lock_with(
            a,
            Locker::Existing {
                lock_state_id: l.state_id,
            },
            Write,
            40,
            20,
        )
        .unwrap();
    assert_eq!(
        up.ranges,
        vec![
            range(Read, 0, 39),
            range(Write, 40, 59),
            range(Read, 60, 99)
        ]
    );
    assert_eq!(
        w.lock(b, &ob, "lb", Read, 45, 1),
        Err(denied(a, "l", Write, 40, 20))
    );
    // Downgrading back merges the three ranges into one again.
    let down = w.lock(a, &oa, "l", Read, 40, 20).unwrap();
    assert_eq!(down.ranges, vec![range(Read, 0, 99)]);
    assert!(w.lock(b, &ob, "lb", Read, 45, 1).is_ok());
    // An existing lock stateid of another client is refused.
    assert_eq!(
        w.lock_with(
            b,
            Locker::Existing {
                lock_state_id: l.state_id
            },
            Read,
            0,
            1
        ),
        Err(NsError::BadStateId(l.state_id))
    );
}

#[test]
fn the_open_must_allow_the_lock_kind() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let ro = w.open(a, "r", R, 0).unwrap();
    let wo = w.open(a, "w", W, 0).unwrap();
    assert_eq!(w.lock(a, &ro, "l", Write, 0, 1), Err(NsError::OpenMode));
    assert_eq!(w.lock(a, &wo, "m", Read, 0, 1), Err(NsError::OpenMode));
    let l = w.lock(a, &ro, "l", Read, 0, 1).unwrap();
    assert_eq!(
        w.lock_with(
            a,
            Locker::Existing {
                lock_state_id: l.state_id
            },
            Write,
            0,
            1
        ),
        Err(NsError::OpenMode),
        "an existing lock-owner is held to its open's access too"
    );
    assert!(w.lock(a, &wo, "m", Write, 5, 1).is_ok());
}

#[test]
fn unlock_splits_ranges() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let b = w.client("b", 1);
    let oa = w.open(a, "o", RW, 0).unwrap();
    let ob = w.open(b, "o", RW, 0).unwrap();
    let l = w.lock(a, &oa, "l", Write, 0, 100).unwrap();
    let after = w.unlock(a, l.state_id, 10, 10).unwrap();
    assert_eq!(after.ranges, vec![range(Write, 0, 9), range(Write, 20, 99)]);
    assert_eq!(after.seqid, 2);
    assert!(w.lock(b, &ob, "lb", Write, 10, 10).is_ok());
    assert_eq!(
        w.lock(b, &ob, "lb", Write, 5, 6),
        Err(denied(a, "l", Write, 0, 10))
    );
    // Unlocking bytes that are not locked is fine and changes no range.
    let same = w.unlock(a, l.state_id, 1000, 10).unwrap();
    assert_eq!(same.ranges, after.ranges);
    assert_eq!(
        w.unlock(b, l.state_id, 0, 1),
        Err(NsError::BadStateId(l.state_id))
    );
    assert!(matches!(
        w.unlock(a, l.state_id, 0, 0),
        Err(NsError::Invalid(_))
    ));
}

#[test]
fn locks_to_end_of_file() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let b = w.client("b", 1);
    let oa = w.open(a, "o", RW, 0).unwrap();
    let ob = w.open(b, "o", RW, 0).unwrap();
    let l = w.lock(a, &oa, "l", Write, 100, EOF).unwrap();
    assert_eq!(l.ranges, vec![range(Write, 100, u64::MAX)]);
    assert_eq!(l.ranges[0].length(), EOF);
    assert_eq!(
        w.lock(b, &ob, "lb", Read, 1 << 60, 1),
        Err(denied(a, "l", Write, 100, EOF))
    );
    assert!(w.lock(b, &ob, "lb", Write, 0, 100).is_ok());
    // Releasing the tail leaves a bounded range.
    let cut = w.unlock(a, l.state_id, 200, EOF).unwrap();
    assert_eq!(cut.ranges, vec![range(Write, 100, 199)]);
    assert_eq!(cut.ranges[0].length(), 100);
    assert!(w.lock(b, &ob, "lb", Write, 200, EOF).is_ok());
}

#[test]
fn lock_ranges_must_fit_in_64_bits() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let oa = w.open(a, "o", RW, 0).unwrap();
    let invalid = |r: Result<LockState, NsError>| matches!(r, Err(NsError::Invalid(_)));
    assert!(invalid(w.lock(a, &oa, "l", Write, 2, u64::MAX - 1)));
    assert!(invalid(w.lock(a, &oa, "l", Write, u64::MAX, 2)));
    assert!(invalid(w.lock(a, &oa, "l", Write, 0, 0)));
    assert!(matches!(
        w.lock_test(a, "x", Read, 2, u64::MAX - 1),
        Err(NsError::Invalid(_))
    ));
    // `offset + length == u64::MAX` is the largest bounded range; only EOF reaches further.
    let l = w.lock(a, &oa, "l", Write, 1, u64::MAX - 1).unwrap();
    assert_eq!(l.ranges, vec![range(Write, 1, u64::MAX - 1)]);
    let l = w.lock(a, &oa, "l", Read, u64::MAX, EOF).unwrap();
    assert_eq!(
        l.ranges,
        vec![
            range(Write, 1, u64::MAX - 1),
            range(Read, u64::MAX, u64::MAX)
        ]
    );
}

#[test]
fn free_stateid_only_frees_empty_lock_stateids() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let oa = w.open(a, "o", RW, 0).unwrap();
    let l = w.lock(a, &oa, "l", Write, 0, 10).unwrap();
    let free = |state_id| Command::FreeStateId {
        client: a,
        state_id,
    };
    assert_eq!(w.h.run(free(l.state_id)), Err(NsError::LocksHeld));
    assert_eq!(w.h.run(free(oa.state_id)), Err(NsError::LocksHeld));
    assert_eq!(w.h.run(free(777)), Err(NsError::BadStateId(777)));
    w.unlock(a, l.state_id, 0, 10).unwrap();
    assert_eq!(w.h.run(free(l.state_id)), Ok(Reply::Done));
    assert_eq!(w.test_ids(a, &[oa.state_id, l.state_id]), [true, false]);
    // The lock-owner starts over with a new stateid.
    let again = w.lock(a, &oa, "l", Write, 0, 10).unwrap();
    assert_ne!(again.state_id, l.state_id);
    assert_eq!(again.seqid, 1);
}

/// Opens with a deny and a whole-file write lock, the worst state a client can leave behind.
fn hold_everything(w: &mut World, client: u64) -> Vec<u64> {
    let open = w.open(client, "o", RW, RW).unwrap();
    let lock = w.lock(client, &open, "l", Write, 0, EOF).unwrap();
    vec![open.state_id, lock.state_id]
}

fn others_can_use_the_file(w: &mut World) {
    let b = w.client("b", 1);
    let ob = w.open(b, "o", RW, RW).expect("no share reservation left");
    w.lock(b, &ob, "l", Write, 0, EOF)
        .expect("no byte-range lock left");
}

#[test]
fn expiry_drops_opens_and_locks() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let ids = hold_everything(&mut w, a);
    w.h.now = Timestamp::from_unix_nanos(w.h.now.as_unix_nanos() + 93_000_000_000);
    assert_eq!(
        w.h.run(Command::ExpireLeases),
        Ok(Reply::Expired { clients: vec![a] })
    );
    assert_eq!(w.test_ids(a, &ids), [false, false]);
    others_can_use_the_file(&mut w);
}

#[test]
fn destroy_drops_opens_and_locks() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let ids = hold_everything(&mut w, a);
    assert_eq!(
        w.h.run(Command::DestroyClient { client: a }),
        Ok(Reply::Done)
    );
    assert_eq!(w.test_ids(a, &ids), [false, false]);
    others_can_use_the_file(&mut w);
}

#[test]
fn reboot_drops_opens_and_locks() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let ids = hold_everything(&mut w, a);
    assert_eq!(w.client("a", 2), a, "same owner keeps its client id");
    assert_eq!(w.test_ids(a, &ids), [false, false]);
    others_can_use_the_file(&mut w);
}

#[test]
fn a_retried_lock_is_applied_once() {
    let mut w = World::new();
    let a = w.client("a", 1);
    let oa = w.open(a, "o", RW, 0).unwrap();
    let cmd = Command::Lock {
        client: a,
        locker: Locker::New {
            open_state_id: oa.state_id,
            lock_owner: b"l".to_vec(),
        },
        kind: Write,
        offset: 0,
        length: 10,
    };
    w.h.seq += 1;
    let proposal = Proposal {
        client: w.h.client,
        seq: w.h.seq,
        ack_below: w.h.seq,
        now: w.h.now,
        command: cmd,
    };
    let first = w.h.propose(&proposal);
    let before = w.h.kv.clone();
    let retried = w.h.propose(&proposal);
    assert_eq!(first, retried);
    assert_eq!(w.h.kv, before, "a duplicate changes nothing");
    let Ok(Reply::Lock(l)) = first else { panic!() };
    assert_eq!(l.seqid, 1);
}

/// A script touching every command, run twice from scratch: the same log gives the same
/// bytes in every table, refusals included.
#[test]
fn replaying_the_log_gives_the_same_state() {
    fn script() -> Harness {
        let mut w = World::new();
        let a = w.client("a", 1);
        let b = w.client("b", 1);
        let oa = w.open(a, "o", RW, W).unwrap();
        let ob = w.open(b, "o", R, 0).unwrap();
        let _ = w.open(b, "p", W, 0);
        let la = w.lock(a, &oa, "l", Write, 0, 100).unwrap();
        let _ = w.lock(b, &ob, "l", Read, 50, 10);
        w.lock(b, &ob, "l", Read, 100, EOF).unwrap();
        w.unlock(a, la.state_id, 20, 10).unwrap();
        let _ = w.h.run(Command::OpenDowngrade {
            client: a,
            state_id: oa.state_id,
            seqid: 0,
            access: R,
            deny: 0,
        });
        let _ = w.h.run(Command::Close {
            client: a,
            state_id: oa.state_id,
        });
        w.h.now = Timestamp::from_unix_nanos(w.h.now.as_unix_nanos() + 93_000_000_000);
        let _ = w.h.run(Command::ExpireLeases);
        w.h
    }
    let (x, y) = (script(), script());
    assert_eq!(x.kv, y.kv);
    assert!(x.kv.rows.len() > 10, "the script left state to compare");
}
