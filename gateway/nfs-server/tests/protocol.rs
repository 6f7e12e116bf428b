//! End-to-end protocol tests over real TCP against MemFs.

mod common;

use bucketfs_nfs_server::MemFs;
use bucketfs_nfs_wire::encode_record;
use bucketfs_nfs_wire::nfs::attr::*;
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::{
    Attr, Bitmap, Component, FileHandle, NfsArgOp, NfsFileType, NfsResOp, NfsStatus, Opcode,
};
use bucketfs_nfs_wire::rpc::{AUTH_NONE, AUTH_SYS, NFS_PROGRAM, NFS_V4, encode_call_header};
use bucketfs_nfs_wire::xdr::Encoder;
use common::*;

fn fs_with_tree() -> MemFs {
    let fs = MemFs::new();
    let root = bucketfs_nfs_server::FileSystem::root(&fs);
    fs.add(
        &root,
        "hello.txt",
        NfsFileType::Regular,
        0o644,
        (1000, 100),
        b"hi!\n",
    )
    .unwrap();
    let d = fs
        .add(
            &root,
            "dir",
            NfsFileType::Directory,
            0o755,
            (1000, 100),
            b"",
        )
        .unwrap();
    for i in 0..40 {
        fs.add(
            &d,
            &format!("entry-{i:03}"),
            NfsFileType::Regular,
            0o600,
            (1, 1),
            b"x",
        )
        .unwrap();
    }
    fs
}

fn getattr(bits: &[u32]) -> NfsArgOp {
    NfsArgOp::GetAttr(GetAttrArgs {
        attr_request: Bitmap::from_bits(bits),
    })
}

fn lookup(name: &str) -> NfsArgOp {
    NfsArgOp::Lookup(LookupArgs {
        objname: Component::new(name).unwrap(),
    })
}

fn statuses(res: &bucketfs_nfs_wire::nfs::CompoundRes) -> Vec<(Opcode, NfsStatus)> {
    res.results
        .iter()
        .map(|r| (r.opcode(), r.status()))
        .collect()
}

/// The mount-time attribute bitmap Linux sends with PUTROOTFH, GETFH, GETATTR.
const MOUNT_ATTRS: &[u32] = &[
    FATTR4_TYPE,
    FATTR4_CHANGE,
    FATTR4_SIZE,
    FATTR4_FSID,
    FATTR4_FILEID,
    FATTR4_MODE,
    FATTR4_NUMLINKS,
    FATTR4_OWNER,
    FATTR4_OWNER_GROUP,
    FATTR4_RAWDEV,
    FATTR4_SPACE_USED,
    FATTR4_TIME_ACCESS,
    FATTR4_TIME_METADATA,
    FATTR4_TIME_MODIFY,
    FATTR4_MOUNTED_ON_FILEID,
];

#[tokio::test]
async fn linux_mount_sequence() {
    let srv = start(fs_with_tree()).await;
    let mut c = Client::connect(srv.addr).await;

    // NULL ping.
    let mut e = Encoder::new();
    encode_call_header(77, NFS_PROGRAM, NFS_V4, 0, &root_cred(), &mut e);
    let reply = c.call_message(e.as_slice()).await;
    assert_eq!((reply.xid, reply.accept_stat), (77, 0));

    // EXCHANGE_ID twice (Linux does): same clientid, unconfirmed until CREATE_SESSION.
    let r1 = c.compound(vec![exchange_id(b"linux-client", [1; 8])]).await;
    let r2 = c.compound(vec![exchange_id(b"linux-client", [1; 8])]).await;
    let (NfsResOp::ExchangeId(Ok(ex1)), NfsResOp::ExchangeId(Ok(ex2))) =
        (&r1.results[0], &r2.results[0])
    else {
        panic!("exchange_id: {r1:?} {r2:?}");
    };
    assert_eq!(ex1.clientid, ex2.clientid);
    assert_eq!(ex1.flags, EXCHGID4_FLAG_USE_NON_PNFS);
    assert_eq!(ex1.state_protect, StateProtectReply::None);
    assert_eq!(ex1.server_owner, ex2.server_owner);
    assert_eq!(r1.tag, b"t");

    let cs = c
        .compound(vec![create_session(ex1.clientid, ex1.sequenceid)])
        .await;
    let NfsResOp::CreateSession(Ok(cs)) = &cs.results[0] else {
        panic!("create_session: {cs:?}");
    };
    assert_eq!(cs.flags, 0);
    assert_eq!(cs.sequence, ex1.sequenceid);
    assert_eq!(cs.fore_chan_attrs.maxrequests, 64);
    assert_eq!(cs.fore_chan_attrs.maxoperations, 16);
    assert_eq!(cs.fore_chan_attrs.maxresponsesize, 1_049_480);
    assert!(cs.fore_chan_attrs.maxrequestsize <= 1_049_620);
    c.session = Some(cs.sessionid);
    c.seq = 1;

    // Now confirmed.
    let r3 = c.compound(vec![exchange_id(b"linux-client", [1; 8])]).await;
    let NfsResOp::ExchangeId(Ok(ex3)) = &r3.results[0] else {
        panic!()
    };
    assert_ne!(ex3.flags & EXCHGID4_FLAG_CONFIRMED_R, 0);

    let res = c
        .seq_compound(vec![NfsArgOp::ReclaimComplete(ReclaimCompleteArgs {
            one_fs: false,
        })])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
    let NfsResOp::Sequence(Ok(seq)) = &res.results[0] else {
        panic!()
    };
    assert_eq!(
        (seq.slotid, seq.highest_slotid, seq.status_flags),
        (0, 63, 0)
    );

    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::SecinfoNoName(SecinfoStyle::CurrentFh),
        ])
        .await;
    assert_eq!(
        res.results[2],
        NfsResOp::SecinfoNoName(Ok(vec![
            SecInfo::Flavor(AUTH_SYS),
            SecInfo::Flavor(AUTH_NONE)
        ]))
    );

    // SECINFO_NO_NAME consumed the current filehandle.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::SecinfoNoName(SecinfoStyle::CurrentFh),
            NfsArgOp::GetFh,
        ])
        .await;
    assert_eq!(res.status, NfsStatus::NoFileHandle);

    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::GetFh,
            getattr(MOUNT_ATTRS),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::GetFh(Ok(root_fh)) = &res.results[2] else {
        panic!()
    };
    let NfsResOp::GetAttr(Ok(fattr)) = &res.results[3] else {
        panic!()
    };
    assert_eq!(fattr.mask, Bitmap::from_bits(MOUNT_ATTRS));
    let attrs = fattr.decode_attrs().unwrap();
    assert!(attrs.contains(&Attr::Type(NfsFileType::Directory)));
    assert!(attrs.contains(&Attr::Owner("0".into())));
    assert!(attrs.contains(&Attr::Mode(0o755)));
    assert!(attrs.contains(&Attr::NumLinks(3)));

    // The capability probe: supported_attrs and friends.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutFh(PutFhArgs {
                object: root_fh.clone(),
            }),
            getattr(&[
                FATTR4_SUPPORTED_ATTRS,
                FATTR4_FH_EXPIRE_TYPE,
                FATTR4_LINK_SUPPORT,
                FATTR4_SYMLINK_SUPPORT,
                FATTR4_NAMED_ATTR,
                FATTR4_LEASE_TIME,
                FATTR4_SUPPATTR_EXCLCREAT,
                FATTR4_MAXREAD,
                FATTR4_ACL,
            ]),
        ])
        .await;
    let NfsResOp::GetAttr(Ok(fattr)) = &res.results[2] else {
        panic!("{res:?}")
    };
    let attrs = fattr.decode_attrs().unwrap();
    assert!(attrs.contains(&Attr::SupportedAttrs(bucketfs_nfs_server::supported_attrs())));
    assert!(attrs.contains(&Attr::FhExpireType(FH4_PERSISTENT)));
    assert!(attrs.contains(&Attr::NamedAttr(false)));
    assert!(attrs.contains(&Attr::LeaseTime(90)));
    assert!(attrs.contains(&Attr::MaxRead(1 << 20)));
    // ACL is not supported, so it is absent from the reply mask.
    assert!(!fattr.mask.contains(FATTR4_ACL));

    // LOOKUP of a file, ACCESS, LOOKUPP back to the root, SAVEFH/RESTOREFH.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::SaveFh,
            lookup("hello.txt"),
            NfsArgOp::GetFh,
            getattr(&[FATTR4_TYPE, FATTR4_SIZE, FATTR4_OWNER, FATTR4_OWNER_GROUP]),
            NfsArgOp::Access(AccessArgs { access: 0x3f }),
            NfsArgOp::RestoreFh,
            lookup("dir"),
            NfsArgOp::LookupP,
            NfsArgOp::GetFh,
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::GetAttr(Ok(fattr)) = &res.results[5] else {
        panic!()
    };
    assert_eq!(
        fattr.decode_attrs().unwrap(),
        vec![
            Attr::Type(NfsFileType::Regular),
            Attr::Size(4),
            Attr::Owner("1000".into()),
            Attr::OwnerGroup("100".into()),
        ]
    );
    assert_eq!(
        res.results[6],
        NfsResOp::Access(Ok(AccessResOk {
            supported: 0x3f,
            access: ACCESS4_READ | ACCESS4_MODIFY | ACCESS4_EXTEND,
        }))
    );
    assert_eq!(res.results[10], NfsResOp::GetFh(Ok(root_fh.clone())));

    // A missing name stops the compound there.
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, lookup("nope"), NfsArgOp::GetFh])
        .await;
    assert_eq!(
        statuses(&res),
        vec![
            (Opcode::Sequence, NfsStatus::Ok),
            (Opcode::PutRootFh, NfsStatus::Ok),
            (Opcode::Lookup, NfsStatus::NoEnt),
        ]
    );
    assert_eq!(res.status, NfsStatus::NoEnt);
}

#[tokio::test]
async fn readdir_pages_with_cookies_and_budgets() {
    let srv = start(fs_with_tree()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"rd").await;
    let mut names = Vec::new();
    let mut cookie = 0;
    let mut verf = [0u8; 8];
    let mut rounds = 0;
    loop {
        rounds += 1;
        let res = c
            .seq_compound(vec![
                NfsArgOp::PutRootFh,
                lookup("dir"),
                NfsArgOp::Readdir(ReaddirArgs {
                    cookie,
                    cookieverf: verf,
                    dircount: 0,
                    maxcount: 1024,
                    attr_request: Bitmap::from_bits(&[FATTR4_TYPE, FATTR4_FILEID]),
                }),
            ])
            .await;
        let NfsResOp::Readdir(Ok(page)) = &res.results[3] else {
            panic!("{res:?}")
        };
        assert!(!page.entries.is_empty());
        for e in &page.entries {
            names.push(e.name.as_str().to_owned());
            assert_eq!(
                e.attrs.decode_attrs().unwrap()[0],
                Attr::Type(NfsFileType::Regular)
            );
        }
        cookie = page.entries.last().unwrap().cookie;
        verf = page.cookieverf;
        if page.eof {
            break;
        }
    }
    assert!(rounds > 1, "1024 bytes cannot hold 40 entries");
    let expected: Vec<String> = (0..40).map(|i| format!("entry-{i:03}")).collect();
    assert_eq!(names, expected);

    // Too small for a single entry, and reserved cookies.
    let small = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::Readdir(ReaddirArgs {
                cookie: 0,
                cookieverf: [0; 8],
                dircount: 0,
                maxcount: 20,
                attr_request: Bitmap::new(),
            }),
        ])
        .await;
    assert_eq!(small.status, NfsStatus::TooSmall);
    let bad = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::Readdir(ReaddirArgs {
                cookie: 1,
                cookieverf: [0; 8],
                dircount: 0,
                maxcount: 4096,
                attr_request: Bitmap::new(),
            }),
        ])
        .await;
    assert_eq!(bad.status, NfsStatus::BadCookie);
    let notdir = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("hello.txt"),
            NfsArgOp::Readdir(ReaddirArgs {
                cookie: 0,
                cookieverf: [0; 8],
                dircount: 0,
                maxcount: 4096,
                attr_request: Bitmap::new(),
            }),
        ])
        .await;
    assert_eq!(notdir.status, NfsStatus::NotDir);
}

#[tokio::test]
async fn sequence_replay_is_byte_identical_and_not_reexecuted() {
    let fs = fs_with_tree();
    let srv = start(fs).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"replay").await;
    let ops = vec![
        c.sequence_op(),
        NfsArgOp::PutRootFh,
        lookup("hello.txt"),
        getattr(&[FATTR4_CHANGE, FATTR4_SIZE]),
    ];
    let msg = c.compound_message(500, 1, ops);
    let first = c.call_message(&msg).await;
    assert_eq!(first.res.as_ref().unwrap().status, NfsStatus::Ok);

    // Change the file behind the server's back: a re-execution would see the new entry.
    let root = bucketfs_nfs_server::FileSystem::root(srv.server.fs());
    srv.server
        .fs()
        .add(&root, "late", NfsFileType::Regular, 0o644, (0, 0), b"")
        .unwrap();
    let replay = c.call_message(&msg).await;
    assert_eq!(replay.raw, first.raw);

    // A request sent with cachethis = false cannot be replayed.
    let uncached = NfsArgOp::Sequence(SequenceArgs {
        sessionid: c.session.unwrap(),
        sequenceid: c.seq,
        slotid: 0,
        highest_slotid: 0,
        cachethis: false,
    });
    c.seq += 1;
    let msg = c.compound_message(501, 1, vec![uncached, NfsArgOp::PutRootFh]);
    assert_eq!(
        c.call_message(&msg).await.res.unwrap().status,
        NfsStatus::Ok
    );
    let again = c.call_message(&msg).await.res.unwrap();
    assert_eq!(
        statuses(&again),
        vec![(Opcode::Sequence, NfsStatus::RetryUncachedRep)]
    );

    // A replay of a SEQUENCE that fails (misordered) is not cached, and the session goes on.
    let skip = NfsArgOp::Sequence(SequenceArgs {
        sessionid: c.session.unwrap(),
        sequenceid: c.seq + 5,
        slotid: 0,
        highest_slotid: 0,
        cachethis: true,
    });
    let res = c.compound(vec![skip, NfsArgOp::PutRootFh]).await;
    assert_eq!(
        statuses(&res),
        vec![(Opcode::Sequence, NfsStatus::SeqMisordered)]
    );
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, lookup("late")])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);

    // Slot beyond the table.
    let res = c
        .compound(vec![NfsArgOp::Sequence(SequenceArgs {
            sessionid: c.session.unwrap(),
            sequenceid: 1,
            slotid: 64,
            highest_slotid: 64,
            cachethis: false,
        })])
        .await;
    assert_eq!(res.status, NfsStatus::BadSlot);
}

#[tokio::test]
async fn session_rules() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;

    // Unknown session.
    let res = c
        .compound(vec![
            NfsArgOp::Sequence(SequenceArgs {
                sessionid: [3; 16],
                sequenceid: 1,
                slotid: 0,
                highest_slotid: 0,
                cachethis: false,
            }),
            NfsArgOp::PutRootFh,
        ])
        .await;
    assert_eq!(
        statuses(&res),
        vec![(Opcode::Sequence, NfsStatus::BadSession)]
    );

    // A sessionless op with company.
    let res = c
        .compound(vec![exchange_id(b"x", [1; 8]), NfsArgOp::PutRootFh])
        .await;
    assert_eq!(
        statuses(&res),
        vec![(Opcode::ExchangeId, NfsStatus::NotOnlyOp)]
    );

    // Unknown EXCHANGE_ID flags.
    let mut bad_flags = exchange_id(b"x", [1; 8]);
    if let NfsArgOp::ExchangeId(a) = &mut bad_flags {
        a.flags = EXCHGID4_FLAG_CONFIRMED_R;
    }
    let res = c.compound(vec![bad_flags]).await;
    assert_eq!(statuses(&res), vec![(Opcode::ExchangeId, NfsStatus::Inval)]);

    // Anything else without SEQUENCE.
    let res = c.compound(vec![NfsArgOp::PutRootFh, NfsArgOp::GetFh]).await;
    assert_eq!(
        statuses(&res),
        vec![(Opcode::PutRootFh, NfsStatus::OpNotInSession)]
    );

    c.establish(b"rules").await;
    // SEQUENCE not first.
    let inner = NfsArgOp::Sequence(SequenceArgs {
        sessionid: c.session.unwrap(),
        sequenceid: 1,
        slotid: 1,
        highest_slotid: 1,
        cachethis: false,
    });
    let res = c.seq_compound(vec![NfsArgOp::PutRootFh, inner]).await;
    assert_eq!(
        statuses(&res),
        vec![
            (Opcode::Sequence, NfsStatus::Ok),
            (Opcode::PutRootFh, NfsStatus::Ok),
            (Opcode::Sequence, NfsStatus::SequencePos),
        ]
    );
    // More ops than the session's negotiated maxoperations (16): refused by SEQUENCE without
    // consuming the slot, so the next call with the same seqid goes through.
    let res = c.seq_compound(vec![NfsArgOp::PutRootFh; 16]).await;
    assert_eq!(
        statuses(&res),
        vec![(Opcode::Sequence, NfsStatus::TooManyOps)]
    );
    c.seq -= 1;
    let res = c.seq_compound(vec![NfsArgOp::PutRootFh; 15]).await;
    assert_eq!(res.status, NfsStatus::Ok);
    // No current or saved filehandle.
    let res = c.seq_compound(vec![NfsArgOp::GetFh]).await;
    assert_eq!(res.status, NfsStatus::NoFileHandle);
    let res = c.seq_compound(vec![NfsArgOp::RestoreFh]).await;
    assert_eq!(res.status, NfsStatus::NoFileHandle);
    // Not implemented yet → NOTSUPP, never a panic.
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, NfsArgOp::PutPubFh])
        .await;
    assert_eq!(res.status, NfsStatus::NotSupp);
    // READ of a directory.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::Read(ReadArgs {
                stateid: bucketfs_nfs_wire::nfs::StateId::ANONYMOUS,
                offset: 0,
                count: 10,
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::IsDir);
    // A handle the file system never issued.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutFh(PutFhArgs {
                object: FileHandle::new(vec![0, 0, 0, 0, 0, 0, 0, 99]).unwrap(),
            }),
            getattr(&[FATTR4_TYPE]),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Stale);

    // BIND_CONN_TO_SESSION from a second connection.
    let mut c2 = Client::connect(srv.addr).await;
    let res = c2
        .compound(vec![NfsArgOp::BindConnToSession(BindConnToSessionArgs {
            sessid: c.session.unwrap(),
            dir: ChannelDirFromClient::ForeOrBoth,
            use_conn_in_rdma_mode: false,
        })])
        .await;
    let NfsResOp::BindConnToSession(Ok(b)) = &res.results[0] else {
        panic!("{res:?}")
    };
    assert_eq!(b.dir, ChannelDirFromServer::Fore);

    // DESTROY_CLIENTID is refused while a session lives; after DESTROY_SESSION it works.
    let clientid = c.clientid;
    let res = c
        .compound(vec![NfsArgOp::DestroyClientId(DestroyClientIdArgs {
            clientid,
        })])
        .await;
    assert_eq!(res.status, NfsStatus::ClientIdBusy);
    let res = c
        .compound(vec![NfsArgOp::DestroySession(DestroySessionArgs {
            sessionid: c.session.unwrap(),
        })])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
    let res = c.seq_compound(vec![NfsArgOp::PutRootFh]).await;
    assert_eq!(res.status, NfsStatus::BadSession);
    let res = c
        .compound(vec![NfsArgOp::DestroyClientId(DestroyClientIdArgs {
            clientid,
        })])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
}

#[tokio::test]
async fn minor_version_zero_and_unknown_ops() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    let msg = c.compound_message(9, 0, vec![NfsArgOp::PutRootFh]);
    let reply = c.call_message(&msg).await;
    let res = reply.res.unwrap();
    assert_eq!(res.status, NfsStatus::MinorVersMismatch);
    assert!(res.results.is_empty());

    c.establish(b"illegal").await;
    // SEQUENCE, PUTROOTFH, then opcode 9999 (hand-appended: the encoder cannot express it).
    let seq = c.sequence_op();
    let mut e = Encoder::new();
    encode_call_header(10, NFS_PROGRAM, NFS_V4, 1, &root_cred(), &mut e);
    e.put_opaque(b"t");
    e.put_u32(1);
    e.put_u32(3);
    seq.encode(&mut e);
    NfsArgOp::PutRootFh.encode(&mut e);
    e.put_u32(9999);
    let reply = c.call_message(e.as_slice()).await;
    let res = reply.res.unwrap();
    assert_eq!(
        statuses(&res),
        vec![
            (Opcode::Sequence, NfsStatus::Ok),
            (Opcode::PutRootFh, NfsStatus::Ok),
            (Opcode::Illegal, NfsStatus::OpIllegal),
        ]
    );
    assert_eq!(res.status, NfsStatus::OpIllegal);
}

#[tokio::test]
async fn garbage_args_keep_the_connection() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    // A COMPOUND whose tag claims 1 GiB.
    let mut e = Encoder::new();
    encode_call_header(41, NFS_PROGRAM, NFS_V4, 1, &root_cred(), &mut e);
    e.put_u32(1 << 30);
    e.put_u32(0xdead_beef);
    let reply = c.call_message(e.as_slice()).await;
    assert_eq!((reply.xid, reply.accept_stat), (41, 4), "GARBAGE_ARGS");

    // Bytes that are not even an RPC call are dropped silently.
    c.send_raw(&encode_record(b"xy")).await;
    // The connection still serves calls.
    let mut e = Encoder::new();
    encode_call_header(42, NFS_PROGRAM, NFS_V4, 0, &root_cred(), &mut e);
    let reply = c.call_message(e.as_slice()).await;
    assert_eq!((reply.xid, reply.accept_stat), (42, 0));
}

#[tokio::test]
async fn oversized_record_closes_the_connection() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    // Last fragment of 2 GiB - 1 bytes.
    c.send_raw(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).await;
    assert!(c.recv().await.is_none());
    // The server itself is fine.
    let mut c = Client::connect(srv.addr).await;
    let mut e = Encoder::new();
    encode_call_header(1, NFS_PROGRAM, NFS_V4, 0, &root_cred(), &mut e);
    assert_eq!(c.call_message(e.as_slice()).await.accept_stat, 0);
}

#[tokio::test]
async fn pipelined_calls_are_all_answered() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    let mut bytes = Vec::new();
    for xid in 100..120 {
        let mut e = Encoder::new();
        encode_call_header(xid, NFS_PROGRAM, NFS_V4, 0, &root_cred(), &mut e);
        bytes.extend_from_slice(&encode_record(e.as_slice()));
    }
    // One write, split mid-record by the kernel or not: the reader reassembles either way.
    c.send_raw(&bytes).await;
    // Replies go out as calls finish, so their order is not the calls' order.
    let mut xids: Vec<u32> = Vec::new();
    for _ in 100..120 {
        xids.push(decode_reply(c.recv().await.unwrap()).xid);
    }
    xids.sort_unstable();
    assert_eq!(xids, (100..120).collect::<Vec<_>>());
}

#[tokio::test]
async fn idle_clients_expire_after_twice_the_lease() {
    let config = bucketfs_nfs_server::ServerConfig {
        lease: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let srv = start_with(MemFs::new(), config).await;
    let mut busy = Client::connect(srv.addr).await;
    busy.establish(b"busy").await;
    let mut idle = Client::connect(srv.addr).await;
    idle.establish(b"idle").await;
    for _ in 0..6 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let res = busy.seq_compound(vec![NfsArgOp::PutRootFh]).await;
        assert_eq!(res.status, NfsStatus::Ok);
    }
    let res = idle.seq_compound(vec![NfsArgOp::PutRootFh]).await;
    assert_eq!(res.status, NfsStatus::BadSession);
}

#[tokio::test]
async fn verify_and_nverify_compare_encoded_values() {
    let srv = start(fs_with_tree()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"verify").await;
    let fattr = |size: u64| {
        bucketfs_nfs_wire::nfs::Fattr::encode_attrs(
            &Bitmap::from_bits(&[FATTR4_TYPE, FATTR4_SIZE]),
            [Attr::Type(NfsFileType::Regular), Attr::Size(size)],
        )
    };
    let run = |op: NfsArgOp| vec![NfsArgOp::PutRootFh, lookup("hello.txt"), op];
    let verify = |size| {
        NfsArgOp::Verify(VerifyArgs {
            obj_attributes: fattr(size),
        })
    };
    let nverify = |size| {
        NfsArgOp::NVerify(VerifyArgs {
            obj_attributes: fattr(size),
        })
    };
    assert_eq!(c.seq_compound(run(verify(4))).await.status, NfsStatus::Ok);
    assert_eq!(
        c.seq_compound(run(verify(5))).await.status,
        NfsStatus::NotSame
    );
    assert_eq!(
        c.seq_compound(run(nverify(4))).await.status,
        NfsStatus::Same
    );
    assert_eq!(c.seq_compound(run(nverify(5))).await.status, NfsStatus::Ok);
    let acl = NfsArgOp::Verify(VerifyArgs {
        obj_attributes: bucketfs_nfs_wire::nfs::Fattr {
            mask: Bitmap::from_bits(&[FATTR4_ACL]),
            vals: vec![0, 0, 0, 0],
        },
    });
    assert_eq!(
        c.seq_compound(run(acl)).await.status,
        NfsStatus::AttrNotSupp
    );
}

fn create_dir(name: &str, mode: u32) -> NfsArgOp {
    NfsArgOp::Create(CreateArgs {
        objtype: CreateType::Directory,
        objname: Component::new(name).unwrap(),
        createattrs: bucketfs_nfs_wire::nfs::Fattr::encode_attrs(
            &Bitmap::from_bits(&[FATTR4_MODE]),
            [Attr::Mode(mode)],
        ),
    })
}

#[tokio::test]
async fn namespace_changes_and_permissions() {
    let srv = start(fs_with_tree()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"ns").await;

    // mkdir, symlink inside it, readlink.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            create_dir("new", 0o755),
            NfsArgOp::Create(CreateArgs {
                objtype: CreateType::Link(bucketfs_nfs_wire::nfs::types::LinkText(
                    b"../hello.txt".to_vec(),
                )),
                objname: Component::new("sym").unwrap(),
                createattrs: bucketfs_nfs_wire::nfs::Fattr::default(),
            }),
            NfsArgOp::ReadLink,
            getattr(&[FATTR4_TYPE, FATTR4_OWNER]),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::Create(Ok(created)) = &res.results[2] else {
        panic!()
    };
    assert_eq!(created.attrset, Bitmap::from_bits(&[FATTR4_MODE]));
    assert!(created.cinfo.after > created.cinfo.before);
    assert_eq!(
        res.results[4],
        NfsResOp::ReadLink(Ok(bucketfs_nfs_wire::nfs::types::LinkText(
            b"../hello.txt".to_vec()
        )))
    );

    // Regular files come from OPEN, "." is not a name.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::Create(CreateArgs {
                objtype: CreateType::Other(NfsFileType::Regular),
                objname: Component::new("f").unwrap(),
                createattrs: bucketfs_nfs_wire::nfs::Fattr::default(),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::BadType);
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, create_dir(".", 0o755)])
        .await;
    assert_eq!(res.status, NfsStatus::BadName);

    // RENAME hello.txt into new/ (saved = source dir), LINK it back, REMOVE the original name.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::SaveFh,
            lookup("new"),
            NfsArgOp::Rename(RenameArgs {
                oldname: Component::new("hello.txt").unwrap(),
                newname: Component::new("moved.txt").unwrap(),
            }),
            lookup("moved.txt"),
            NfsArgOp::SaveFh,
            NfsArgOp::PutRootFh,
            NfsArgOp::Link(LinkArgs {
                newname: Component::new("again.txt").unwrap(),
            }),
            lookup("again.txt"),
            getattr(&[FATTR4_NUMLINKS, FATTR4_SIZE]),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::GetAttr(Ok(fattr)) = &res.results[10] else {
        panic!()
    };
    assert_eq!(
        fattr.decode_attrs().unwrap(),
        vec![Attr::Size(4), Attr::NumLinks(2)]
    );
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("new"),
            NfsArgOp::Remove(RemoveArgs {
                target: Component::new("moved.txt").unwrap(),
            }),
            NfsArgOp::PutRootFh,
            NfsArgOp::Remove(RemoveArgs {
                target: Component::new("new").unwrap(),
            }),
        ])
        .await;
    assert_eq!(
        statuses(&res)[3..],
        [
            (Opcode::Remove, NfsStatus::Ok),
            (Opcode::PutRootFh, NfsStatus::Ok),
            (Opcode::Remove, NfsStatus::NotEmpty),
        ]
    );

    // SETATTR: chmod and chown as root.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("again.txt"),
            NfsArgOp::SetAttr(SetAttrArgs {
                stateid: bucketfs_nfs_wire::nfs::StateId::ANONYMOUS,
                obj_attributes: bucketfs_nfs_wire::nfs::Fattr::encode_attrs(
                    &Bitmap::from_bits(&[FATTR4_MODE, FATTR4_OWNER]),
                    [Attr::Mode(0o600), Attr::Owner("1000".into())],
                ),
            }),
            getattr(&[FATTR4_MODE, FATTR4_OWNER]),
        ])
        .await;
    assert_eq!(
        res.results[3],
        NfsResOp::SetAttr {
            status: NfsStatus::Ok,
            attrsset: Bitmap::from_bits(&[FATTR4_MODE, FATTR4_OWNER]),
        }
    );
    let NfsResOp::GetAttr(Ok(fattr)) = &res.results[4] else {
        panic!()
    };
    assert_eq!(
        fattr.decode_attrs().unwrap(),
        vec![Attr::Mode(0o600), Attr::Owner("1000".into())]
    );

    // An unprivileged user may not write the root-owned 0755 root or chmod others' files.
    c.cred = bucketfs_nfs_wire::rpc::Credential::Sys(bucketfs_nfs_wire::rpc::AuthSys {
        stamp: 2,
        machine_name: b"test".to_vec(),
        uid: 2000,
        gid: 2000,
        gids: vec![],
    });
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, create_dir("nope", 0o755)])
        .await;
    assert_eq!(res.status, NfsStatus::Access);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("again.txt"),
            NfsArgOp::SetAttr(SetAttrArgs {
                stateid: bucketfs_nfs_wire::nfs::StateId::ANONYMOUS,
                obj_attributes: bucketfs_nfs_wire::nfs::Fattr::encode_attrs(
                    &Bitmap::from_bits(&[FATTR4_MODE]),
                    [Attr::Mode(0o777)],
                ),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Perm);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::SetAttr(SetAttrArgs {
                stateid: bucketfs_nfs_wire::nfs::StateId::ANONYMOUS,
                obj_attributes: bucketfs_nfs_wire::nfs::Fattr::encode_attrs(
                    &Bitmap::from_bits(&[FATTR4_OWNER]),
                    [Attr::Owner("bob@example".into())],
                ),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::BadOwner);
}
