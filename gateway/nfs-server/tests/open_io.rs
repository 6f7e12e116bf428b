//! OPEN/CLOSE/READ/WRITE/COMMIT and stateid operations over real TCP against MemFs.

mod common;

use bucketfs_nfs_server::MemFs;
use bucketfs_nfs_wire::nfs::attr::*;
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::Opaque;
use bucketfs_nfs_wire::nfs::{
    Bitmap, Component, Fattr, NfsArgOp, NfsResOp, NfsStatus, SetAttrs, StateId, StateOwner,
};
use common::*;

fn open_op(
    clientid: u64,
    owner: &[u8],
    name: &str,
    access: u32,
    deny: u32,
    how: OpenFlag,
) -> NfsArgOp {
    NfsArgOp::Open(OpenArgs {
        seqid: 0,
        share_access: access,
        share_deny: deny,
        owner: StateOwner {
            clientid,
            owner: Opaque(owner.to_vec()),
        },
        openhow: how,
        claim: OpenClaim::Null(Component::new(name.to_owned()).unwrap()),
    })
}

fn no_attrs() -> Fattr {
    SetAttrs::default().to_fattr()
}

fn mode_attrs(mode: u32) -> Fattr {
    SetAttrs {
        mode: Some(mode),
        ..SetAttrs::default()
    }
    .to_fattr()
}

async fn connected(srv: &TestServer<MemFs>, owner: &[u8]) -> Client {
    let mut c = Client::connect(srv.addr).await;
    c.establish(owner).await;
    c
}

/// PUTROOTFH + OPEN + GETFH; returns (stateid, filehandle) or the failing status.
async fn open(
    c: &mut Client,
    owner: &[u8],
    name: &str,
    access: u32,
    deny: u32,
    how: OpenFlag,
) -> Result<(OpenResOk, Vec<u8>), NfsStatus> {
    let clientid = c.clientid;
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            open_op(clientid, owner, name, access, deny, how),
            NfsArgOp::GetFh,
        ])
        .await;
    if res.status != NfsStatus::Ok {
        return Err(res.status);
    }
    let (NfsResOp::Open(Ok(ok)), NfsResOp::GetFh(Ok(fh))) = (&res.results[2], &res.results[3])
    else {
        panic!("open: {res:?}");
    };
    Ok((ok.clone(), fh.as_bytes().to_vec()))
}

fn putfh(fh: &[u8]) -> NfsArgOp {
    NfsArgOp::PutFh(PutFhArgs {
        object: bucketfs_nfs_wire::nfs::FileHandle::new(fh.to_vec()).unwrap(),
    })
}

#[tokio::test]
async fn create_write_close_reopen_read_commit() {
    let srv = start(MemFs::new()).await;
    let mut c = connected(&srv, b"io").await;
    let (ok, fh) = open(
        &mut c,
        b"owner",
        "f",
        OPEN4_SHARE_ACCESS_BOTH,
        OPEN4_SHARE_DENY_NONE,
        OpenFlag::Create(CreateHow::Unchecked(mode_attrs(0o600))),
    )
    .await
    .unwrap();
    assert_eq!(ok.delegation, OpenDelegation::None);
    assert!(ok.attrset.contains(FATTR4_MODE));
    assert_ne!(ok.cinfo.before, ok.cinfo.after);
    let sid = ok.stateid.clone();
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Write(WriteArgs {
                stateid: sid.clone(),
                offset: 0,
                stable: StableHow::Unstable,
                data: Data(b"hello world".to_vec()),
            }),
            NfsArgOp::Commit(CommitArgs {
                offset: 0,
                count: 0,
            }),
            NfsArgOp::GetAttr(GetAttrArgs {
                attr_request: Bitmap::from_bits(&[FATTR4_SIZE]),
            }),
            NfsArgOp::Close(CloseArgs {
                seqid: 0,
                open_stateid: sid.clone(),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::Write(Ok(w)) = &res.results[2] else {
        panic!("{res:?}")
    };
    assert_eq!((w.count, w.committed), (11, StableHow::FileSync));
    assert_eq!(w.writeverf, WRITE_VERIFIER);
    assert_eq!(res.results[3], NfsResOp::Commit(Ok(w.writeverf)));
    let NfsResOp::GetAttr(Ok(attrs)) = &res.results[4] else {
        panic!("{res:?}")
    };
    assert_eq!(attrs.vals, 11u64.to_be_bytes().to_vec());
    assert_eq!(res.results[5], NfsResOp::Close(Ok(StateId::INVALID)));

    // The closed stateid no longer reads.
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Read(ReadArgs {
                stateid: sid.clone(),
                offset: 0,
                count: 100,
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::BadStateId);

    // Reopen by name and read back, in two pieces to see the eof flag.
    let (ok, fh2) = open(
        &mut c,
        b"owner",
        "f",
        OPEN4_SHARE_ACCESS_READ,
        OPEN4_SHARE_DENY_NONE,
        OpenFlag::NoCreate,
    )
    .await
    .unwrap();
    assert_eq!(fh2, fh);
    assert_ne!(ok.stateid.other, sid.other);
    let read = |offset, count| {
        NfsArgOp::Read(ReadArgs {
            stateid: ok.stateid.clone(),
            offset,
            count,
        })
    };
    let res = c
        .seq_compound(vec![putfh(&fh), read(0, 5), read(5, 100)])
        .await;
    assert_eq!(
        res.results[2],
        NfsResOp::Read(Ok(ReadResOk {
            eof: false,
            data: Data(b"hello".to_vec())
        }))
    );
    assert_eq!(
        res.results[3],
        NfsResOp::Read(Ok(ReadResOk {
            eof: true,
            data: Data(b" world".to_vec())
        }))
    );
    // A read-only open cannot write.
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Write(WriteArgs {
                stateid: ok.stateid.clone(),
                offset: 0,
                stable: StableHow::FileSync,
                data: Data(b"x".to_vec()),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::OpenMode);
    // The anonymous and bypass stateids read (root may).
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Read(ReadArgs {
                stateid: StateId::BYPASS,
                offset: 6,
                count: 5,
            }),
            NfsArgOp::Read(ReadArgs {
                stateid: StateId::ANONYMOUS,
                offset: 0,
                count: 1,
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
}

#[tokio::test]
async fn create_modes() {
    let srv = start(MemFs::new()).await;
    let mut c = connected(&srv, b"modes").await;
    let both = OPEN4_SHARE_ACCESS_BOTH;
    let (ok, _) = open(
        &mut c,
        b"o",
        "g",
        both,
        0,
        OpenFlag::Create(CreateHow::Guarded(no_attrs())),
    )
    .await
    .unwrap();
    assert_eq!(ok.stateid.seqid, 1);
    assert_eq!(
        open(
            &mut c,
            b"o",
            "g",
            both,
            0,
            OpenFlag::Create(CreateHow::Guarded(no_attrs()))
        )
        .await
        .unwrap_err(),
        NfsStatus::Exist
    );
    // UNCHECKED on an existing file opens it; the same owner's second open bumps the seqid.
    let (ok2, _) = open(
        &mut c,
        b"o",
        "g",
        both,
        0,
        OpenFlag::Create(CreateHow::Unchecked(no_attrs())),
    )
    .await
    .unwrap();
    assert_eq!(
        (ok2.stateid.seqid, ok2.stateid.other),
        (2, ok.stateid.other)
    );

    let excl = |v: u8| {
        OpenFlag::Create(CreateHow::Exclusive41 {
            verifier: [v; 8],
            attrs: mode_attrs(0o640),
        })
    };
    let (first, fh) = open(&mut c, b"o", "x", both, 0, excl(1)).await.unwrap();
    assert!(first.attrset.contains(FATTR4_MODE));
    let (_, again) = open(&mut c, b"o", "x", both, 0, excl(1)).await.unwrap();
    assert_eq!(again, fh);
    assert_eq!(
        open(&mut c, b"o", "x", both, 0, excl(2)).await.unwrap_err(),
        NfsStatus::Exist
    );
    // OPEN of a name that does not exist without create.
    assert_eq!(
        open(&mut c, b"o", "none", both, 0, OpenFlag::NoCreate)
            .await
            .unwrap_err(),
        NfsStatus::NoEnt
    );
    // A reclaim outside a grace period (there never is one).
    let clientid = c.clientid;
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::Open(OpenArgs {
                seqid: 0,
                share_access: both,
                share_deny: 0,
                owner: StateOwner {
                    clientid,
                    owner: Opaque(b"o".to_vec()),
                },
                openhow: OpenFlag::NoCreate,
                claim: OpenClaim::DelegatePrev(Component::new("g".to_owned()).unwrap()),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::NoGrace);
}

#[tokio::test]
async fn share_deny_and_stateid_ops() {
    let srv = start(MemFs::new()).await;
    let mut c = connected(&srv, b"share").await;
    let (a, fh) = open(
        &mut c,
        b"alice",
        "s",
        OPEN4_SHARE_ACCESS_READ,
        OPEN4_SHARE_DENY_WRITE,
        OpenFlag::Create(CreateHow::Unchecked(no_attrs())),
    )
    .await
    .unwrap();
    assert_eq!(
        open(
            &mut c,
            b"bob",
            "s",
            OPEN4_SHARE_ACCESS_WRITE,
            0,
            OpenFlag::NoCreate
        )
        .await
        .unwrap_err(),
        NfsStatus::ShareDenied
    );
    let (b, _) = open(
        &mut c,
        b"bob",
        "s",
        OPEN4_SHARE_ACCESS_READ,
        0,
        OpenFlag::NoCreate,
    )
    .await
    .unwrap();
    // Alice drops her deny; now Bob may open for writing.
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::OpenDowngrade(OpenDowngradeArgs {
                open_stateid: a.stateid.clone(),
                seqid: 0,
                share_access: OPEN4_SHARE_ACCESS_READ,
                share_deny: OPEN4_SHARE_DENY_NONE,
            }),
        ])
        .await;
    let NfsResOp::OpenDowngrade(Ok(a2)) = &res.results[2] else {
        panic!("{res:?}")
    };
    assert_eq!(a2.seqid, a.stateid.seqid + 1);
    open(
        &mut c,
        b"bob",
        "s",
        OPEN4_SHARE_ACCESS_WRITE,
        0,
        OpenFlag::NoCreate,
    )
    .await
    .unwrap();

    let bogus = StateId {
        seqid: 1,
        other: [9; 12],
    };
    let res = c
        .seq_compound(vec![NfsArgOp::TestStateId(TestStateIdArgs {
            stateids: vec![
                a2.clone(),
                a.stateid.clone(),
                bogus.clone(),
                b.stateid.clone(),
            ],
        })])
        .await;
    assert_eq!(
        res.results[1],
        NfsResOp::TestStateId(Ok(vec![
            NfsStatus::Ok,
            NfsStatus::OldStateId,
            NfsStatus::BadStateId,
            // Bob's stateid moved on when he upgraded.
            NfsStatus::OldStateId,
        ]))
    );
    let res = c
        .seq_compound(vec![NfsArgOp::FreeStateId(FreeStateIdArgs {
            stateid: bogus.clone(),
        })])
        .await;
    assert_eq!(res.status, NfsStatus::BadStateId);
    let res = c
        .seq_compound(vec![NfsArgOp::FreeStateId(FreeStateIdArgs {
            stateid: a2.clone(),
        })])
        .await;
    assert_eq!(res.status, NfsStatus::LocksHeld);
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::DelegReturn(DelegReturnArgs {
                deleg_stateid: a2.clone(),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::BadStateId);
}

#[tokio::test]
async fn truncate_change_and_foreign_stateids() {
    let srv = start(MemFs::new()).await;
    let mut c = connected(&srv, b"one").await;
    let mut other = connected(&srv, b"two").await;
    let (ok, fh) = open(
        &mut c,
        b"o",
        "t",
        OPEN4_SHARE_ACCESS_BOTH,
        0,
        OpenFlag::Create(CreateHow::Unchecked(no_attrs())),
    )
    .await
    .unwrap();
    let getattr = || {
        NfsArgOp::GetAttr(GetAttrArgs {
            attr_request: Bitmap::from_bits(&[FATTR4_CHANGE, FATTR4_SIZE]),
        })
    };
    let truncate = |stateid: StateId, size: u64| {
        NfsArgOp::SetAttr(SetAttrArgs {
            stateid,
            obj_attributes: SetAttrs {
                size: Some(size),
                ..SetAttrs::default()
            }
            .to_fattr(),
        })
    };
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            getattr(),
            NfsArgOp::Write(WriteArgs {
                stateid: ok.stateid.clone(),
                offset: 4,
                stable: StableHow::DataSync,
                data: Data(b"abcd".to_vec()),
            }),
            getattr(),
            truncate(ok.stateid.clone(), 2),
            getattr(),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let vals = |i: usize| -> (u64, u64) {
        let NfsResOp::GetAttr(Ok(f)) = &res.results[i] else {
            panic!("{res:?}")
        };
        let v = &f.vals;
        (
            u64::from_be_bytes(v[..8].try_into().unwrap()),
            u64::from_be_bytes(v[8..16].try_into().unwrap()),
        )
    };
    let (c0, s0) = vals(2);
    let (c1, s1) = vals(4);
    let (c2, s2) = vals(6);
    assert_eq!((s0, s1, s2), (0, 8, 2));
    assert!(c0 < c1 && c1 < c2);
    // The sparse gap reads as zeros.
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Read(ReadArgs {
                stateid: ok.stateid.clone(),
                offset: 0,
                count: 10,
            }),
        ])
        .await;
    assert_eq!(
        res.results[2],
        NfsResOp::Read(Ok(ReadResOk {
            eof: true,
            data: Data(vec![0, 0])
        }))
    );
    // Another client cannot use this client's stateid, for I/O or truncation.
    let res = other
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Read(ReadArgs {
                stateid: ok.stateid.clone(),
                offset: 0,
                count: 1,
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::BadStateId);
    let res = other
        .seq_compound(vec![putfh(&fh), truncate(ok.stateid.clone(), 0)])
        .await;
    assert_eq!(res.status, NfsStatus::BadStateId);
    // A client holding opens cannot be destroyed.
    let clientid = c.clientid;
    let res = other
        .compound(vec![NfsArgOp::DestroyClientId(DestroyClientIdArgs {
            clientid,
        })])
        .await;
    assert_eq!(res.status, NfsStatus::ClientIdBusy);
}

#[tokio::test]
async fn byte_range_locks() {
    let srv = start(MemFs::new()).await;
    let mut c = connected(&srv, b"locks").await;
    let clientid = c.clientid;
    let both = OPEN4_SHARE_ACCESS_BOTH;
    let (a, fh) = open(
        &mut c,
        b"a",
        "l",
        both,
        0,
        OpenFlag::Create(CreateHow::Unchecked(no_attrs())),
    )
    .await
    .unwrap();
    let (b, _) = open(
        &mut c,
        b"b",
        "l",
        OPEN4_SHARE_ACCESS_READ,
        0,
        OpenFlag::NoCreate,
    )
    .await
    .unwrap();
    let lock_owner = |name: &[u8]| StateOwner {
        clientid,
        owner: Opaque(name.to_vec()),
    };
    let new_lock = |open: &StateId, owner: &[u8], locktype, offset, length| {
        NfsArgOp::Lock(LockArgs {
            locktype,
            reclaim: false,
            offset,
            length,
            locker: Locker::New(OpenToLockOwner {
                open_seqid: 0,
                open_stateid: open.clone(),
                lock_seqid: 0,
                lock_owner: lock_owner(owner),
            }),
        })
    };
    // A write-locks [10, 20).
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            new_lock(&a.stateid, b"la", LockType::Write, 10, 10),
        ])
        .await;
    let NfsResOp::Lock(Ok(la)) = res.results[2].clone() else {
        panic!("{res:?}")
    };
    // B's read lock over it is denied with A's range; B cannot write-lock a read-only open.
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            new_lock(&b.stateid, b"lb", LockType::Read, 0, 15),
        ])
        .await;
    assert_eq!(
        res.results[2],
        NfsResOp::Lock(Err(LockError::Denied(LockDenied {
            offset: 10,
            length: 10,
            locktype: LockType::Write,
            owner: lock_owner(b"la"),
        })))
    );
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            new_lock(&b.stateid, b"lb", LockType::Write, 30, 1),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::OpenMode);
    let lockt = |owner: &[u8], offset| {
        NfsArgOp::LockT(LockTArgs {
            locktype: LockType::Read,
            offset,
            length: u64::MAX,
            owner: lock_owner(owner),
        })
    };
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            lockt(b"lb", 20),
            lockt(b"la", 0),
            lockt(b"lb", 19),
        ])
        .await;
    assert_eq!(res.results[2], NfsResOp::LockT(Ok(())));
    assert_eq!(res.results[3], NfsResOp::LockT(Ok(())));
    assert!(matches!(
        res.results[4],
        NfsResOp::LockT(Err(LockError::Denied(_)))
    ));

    // The lock stateid is good for I/O; CLOSE with locks held fails; LOCKU frees the way.
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Write(WriteArgs {
                stateid: la.clone(),
                offset: 10,
                stable: StableHow::FileSync,
                data: Data(b"x".to_vec()),
            }),
            NfsArgOp::Close(CloseArgs {
                seqid: 0,
                open_stateid: a.stateid.clone(),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::LocksHeld, "{res:?}");
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::LockU(LockUArgs {
                locktype: LockType::Write,
                seqid: 0,
                lock_stateid: la.clone(),
                offset: 0,
                length: u64::MAX,
            }),
            lockt(b"lb", 0),
            NfsArgOp::TestStateId(TestStateIdArgs {
                stateids: vec![la.clone()],
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::LockU(Ok(unlocked)) = res.results[2].clone() else {
        panic!("{res:?}")
    };
    assert_eq!((unlocked.seqid, unlocked.other), (la.seqid + 1, la.other));
    assert_eq!(
        res.results[4],
        NfsResOp::TestStateId(Ok(vec![NfsStatus::OldStateId]))
    );
    let res = c
        .seq_compound(vec![NfsArgOp::FreeStateId(FreeStateIdArgs {
            stateid: unlocked.clone(),
        })])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
    let res = c
        .seq_compound(vec![
            putfh(&fh),
            NfsArgOp::Close(CloseArgs {
                seqid: 0,
                open_stateid: a.stateid.clone(),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
}

/// No grace period is ever in force, so every reclaim is NO_GRACE (the Linux client then
/// opens its files anew), and delegations, never granted, cannot be claimed.
#[tokio::test]
async fn reclaims_get_no_grace_and_delegation_claims_bad_stateid() {
    let srv = start(MemFs::new()).await;
    let mut c = connected(&srv, b"reclaim").await;
    let claim = |claim: OpenClaim, clientid: u64| {
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: OPEN4_SHARE_ACCESS_READ,
            share_deny: 0,
            owner: StateOwner {
                clientid,
                owner: Opaque(b"o".to_vec()),
            },
            openhow: OpenFlag::NoCreate,
            claim,
        })
    };
    let clientid = c.clientid;
    for (how, want) in [
        (
            OpenClaim::Previous(OpenDelegationType::None),
            NfsStatus::NoGrace,
        ),
        (
            OpenClaim::DelegatePrev(Component::new("f").unwrap()),
            NfsStatus::NoGrace,
        ),
        (OpenClaim::DelegPrevFh, NfsStatus::NoGrace),
        (
            OpenClaim::DelegCurFh(StateId::ANONYMOUS),
            NfsStatus::BadStateId,
        ),
    ] {
        let res = c
            .seq_compound(vec![NfsArgOp::PutRootFh, claim(how.clone(), clientid)])
            .await;
        assert_eq!(res.status, want, "{how:?}");
    }
}
