//! Golden-byte tests: messages written out word by word from the RFC 5531 / RFC 5662 layouts
//! (the shapes of LINUX_CLIENT_PROFILE.md §7 and §9), checked against both decoder and encoder.

use bucketfs_nfs_wire::nfs::attr::Attr;
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::{Opaque, SpecData, Utf8String};
use bucketfs_nfs_wire::nfs::*;
use bucketfs_nfs_wire::rpc::{AuthSys, Credential};
use bucketfs_nfs_wire::xdr::Encoder;
use bucketfs_nfs_wire::{Classified, classify_call, encode_record, null_reply, success_reply};

/// Hand assembly: words and raw byte strings (already padded by the test author).
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn w(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn h(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn b(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
}

const XID: u32 = 0x1122_3344;
const SESSION: [u8; 16] = *b"session-id-16byt";

/// RPC call header of a COMPOUND with AUTH_SYS uid 0 gid 0 from machine "guest".
fn call_header() -> Raw {
    Raw::default()
        .w(XID)
        .w(0) // CALL
        .w(2) // rpcvers
        .w(100_003)
        .w(4)
        .w(1) // COMPOUND
        .w(1) // AUTH_SYS
        .w(28) // body length
        .w(0) // stamp
        .w(5)
        .b(b"guest\0\0\0")
        .w(0) // uid
        .w(0) // gid
        .w(0) // no extra gids
        .w(0) // verifier AUTH_NONE
        .w(0)
}

fn root_cred() -> Credential {
    Credential::Sys(AuthSys {
        stamp: 0,
        machine_name: b"guest".to_vec(),
        uid: 0,
        gid: 0,
        gids: vec![],
    })
}

fn expect_compound(record: &[u8]) -> CompoundArgs {
    match classify_call(record) {
        Classified::Compound {
            xid,
            credential,
            args,
        } => {
            assert_eq!(xid, XID);
            assert_eq!(credential, root_cred());
            args
        }
        other => panic!("not a compound: {other:?}"),
    }
}

fn encode_args(ops: Vec<NfsArgOp>) -> Vec<u8> {
    let mut e = Encoder::new();
    CompoundArgs {
        tag: vec![],
        minor_version: 1,
        body: CompoundBody::Ops { ops, stop: None },
    }
    .encode(&mut e);
    e.into_vec()
}

#[test]
fn linux_exchange_id() {
    let args = Raw::default()
        .w(0) // tag ""
        .w(1) // minorversion
        .w(1) // one op
        .w(42) // EXCHANGE_ID
        .b(&[0x18, 0xec, 0x13, 0x68, 0xe2, 0x29, 0x5d, 0xef]) // co_verifier
        .w(19)
        .b(b"Linux NFSv4.1 guest\0") // co_ownerid
        .w(0x101) // SUPP_MOVED_REFER | BIND_PRINC_STATEID
        .w(0) // SP4_NONE
        .w(1) // one nfs_impl_id4
        .w(10)
        .b(b"kernel.org\0\0")
        .w(11)
        .b(b"Linux 6.1.0\0")
        .h(0) // nii_date.seconds
        .w(0); // nii_date.nseconds
    let expected_op = NfsArgOp::ExchangeId(ExchangeIdArgs {
        clientowner: ClientOwner {
            verifier: [0x18, 0xec, 0x13, 0x68, 0xe2, 0x29, 0x5d, 0xef],
            ownerid: Opaque(b"Linux NFSv4.1 guest".to_vec()),
        },
        flags: EXCHGID4_FLAG_SUPP_MOVED_REFER | EXCHGID4_FLAG_BIND_PRINC_STATEID,
        state_protect: StateProtectArgs::None,
        client_impl_id: Some(NfsImplId {
            domain: Utf8String("kernel.org".into()),
            name: Utf8String("Linux 6.1.0".into()),
            date: NfsTime {
                seconds: 0,
                nseconds: 0,
            },
        }),
    });
    let record = call_header().b(&args.0).0;
    let decoded = expect_compound(&record);
    assert_eq!(
        decoded.body,
        CompoundBody::Ops {
            ops: vec![expected_op.clone()],
            stop: None
        }
    );
    assert_eq!(encode_args(vec![expected_op]), args.0);

    // The reply a plain server sends (USE_NON_PNFS, SP4_NONE), word by word.
    let reply = success_reply(
        XID,
        &CompoundRes::new(
            vec![],
            vec![NfsResOp::ExchangeId(Ok(ExchangeIdResOk {
                clientid: 0x6b0a_3782_0000_0001,
                sequenceid: 1,
                flags: EXCHGID4_FLAG_USE_NON_PNFS,
                state_protect: StateProtectReply::None,
                server_owner: ServerOwner {
                    minor_id: 0,
                    major_id: Opaque(b"gw".to_vec()),
                },
                server_scope: Opaque(b"bucketfs".to_vec()),
                server_impl_id: None,
            }))],
        ),
    );
    let expected = Raw::default()
        .w(XID)
        .w(1) // REPLY
        .w(0) // MSG_ACCEPTED
        .w(0)
        .w(0) // verifier AUTH_NONE
        .w(0) // SUCCESS
        .w(0) // NFS4_OK
        .w(0) // tag
        .w(1) // one result
        .w(42)
        .w(0)
        .h(0x6b0a_3782_0000_0001)
        .w(1)
        .w(0x0001_0000)
        .w(0) // SP4_NONE
        .h(0) // so_minor_id
        .w(2)
        .b(b"gw\0\0")
        .w(8)
        .b(b"bucketfs")
        .w(0); // no impl id
    assert_eq!(reply, expected.0);
}

#[test]
fn linux_root_getattr_compound() {
    let args = Raw::default()
        .w(0)
        .w(1)
        .w(4)
        .w(53) // SEQUENCE
        .b(&SESSION)
        .w(1) // sequenceid
        .w(0) // slotid
        .w(0) // highest_slotid
        .w(0) // cachethis
        .w(24) // PUTROOTFH
        .w(10) // GETFH
        .w(9) // GETATTR
        .w(2)
        .w(0x0010_011a)
        .w(0x00b0_a23a);
    let inode_bitmap = Bitmap::from_words(vec![0x0010_011a, 0x00b0_a23a]);
    let ops = vec![
        NfsArgOp::Sequence(SequenceArgs {
            sessionid: SESSION,
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        }),
        NfsArgOp::PutRootFh,
        NfsArgOp::GetFh,
        NfsArgOp::GetAttr(GetAttrArgs {
            attr_request: inode_bitmap.clone(),
        }),
    ];
    let record = call_header().b(&args.0).0;
    assert_eq!(
        expect_compound(&record).body,
        CompoundBody::Ops {
            ops: ops.clone(),
            stop: None
        }
    );
    assert_eq!(encode_args(ops), args.0);
    assert_eq!(
        inode_bitmap.iter().collect::<Vec<_>>(),
        vec![1, 3, 4, 8, 20, 33, 35, 36, 37, 41, 45, 47, 52, 53, 55]
    );

    // Reply. Values are offered out of order and with extras the client did not ask for.
    let t = |s: i64| NfsTime {
        seconds: s,
        nseconds: 7,
    };
    let values = vec![
        Attr::MountedOnFileId(1),
        Attr::TimeModify(t(3)),
        Attr::TimeMetadata(t(2)),
        Attr::TimeAccess(t(1)),
        Attr::SpaceUsed(4096),
        Attr::RawDev(SpecData { major: 0, minor: 0 }),
        Attr::OwnerGroup("0".into()),
        Attr::Owner("0".into()),
        Attr::NumLinks(2),
        Attr::Mode(0o755),
        Attr::FileId(1),
        Attr::Fsid(Fsid {
            major: 152,
            minor: 152,
        }),
        Attr::Size(4096),
        Attr::Change(42),
        Attr::Type(NfsFileType::Directory),
        Attr::LeaseTime(90),                 // not requested
        Attr::MaxName(255),                  // not requested
        Attr::SupportedAttrs(Bitmap::new()), // not requested
    ];
    let fh = FileHandle::new(b"rootfh01".to_vec()).unwrap();
    let reply = success_reply(
        XID,
        &CompoundRes::new(
            vec![],
            vec![
                NfsResOp::Sequence(Ok(SequenceResOk {
                    sessionid: SESSION,
                    sequenceid: 1,
                    slotid: 0,
                    highest_slotid: 63,
                    target_highest_slotid: 63,
                    status_flags: 0,
                })),
                NfsResOp::PutRootFh(NfsStatus::Ok),
                NfsResOp::GetFh(Ok(fh)),
                NfsResOp::GetAttr(Ok(Fattr::encode_attrs(&inode_bitmap, values))),
            ],
        ),
    );
    let expected = Raw::default()
        .w(XID)
        .w(1)
        .w(0)
        .w(0)
        .w(0)
        .w(0)
        .w(0) // NFS4_OK
        .w(0) // tag
        .w(4)
        .w(53)
        .w(0)
        .b(&SESSION)
        .w(1)
        .w(0)
        .w(63)
        .w(63)
        .w(0)
        .w(24)
        .w(0)
        .w(10)
        .w(0)
        .w(8)
        .b(b"rootfh01")
        .w(9)
        .w(0)
        .w(2)
        .w(0x0010_011a)
        .w(0x00b0_a23a)
        .w(128) // attr_vals length
        .w(2) // type NF4DIR
        .h(42) // change
        .h(4096) // size
        .h(152)
        .h(152) // fsid
        .h(1) // fileid
        .w(0o755) // mode
        .w(2) // numlinks
        .w(1)
        .b(b"0\0\0\0") // owner
        .w(1)
        .b(b"0\0\0\0") // owner_group
        .w(0)
        .w(0) // rawdev
        .h(4096) // space_used
        .h(1)
        .w(7) // time_access
        .h(2)
        .w(7) // time_metadata
        .h(3)
        .w(7) // time_modify
        .h(1); // mounted_on_fileid
    assert_eq!(reply, expected.0);
}

#[test]
fn null_and_error_classification() {
    let null_call = Raw::default()
        .w(7)
        .w(0)
        .w(2)
        .w(100_003)
        .w(4)
        .w(0)
        .w(0)
        .w(0)
        .w(0)
        .w(0);
    assert_eq!(
        classify_call(&null_call.0),
        Classified::Null {
            xid: 7,
            credential: Credential::None
        }
    );
    assert_eq!(
        null_reply(7),
        Raw::default().w(7).w(1).w(0).w(0).w(0).w(0).0
    );

    // NFSv4.0 COMPOUND: answered here with MINOR_VERS_MISMATCH, tag echoed, no results.
    let v40 = call_header().w(3).b(b"abc\0").w(0).w(1).w(24).0;
    match classify_call(&v40) {
        Classified::Reply { xid, message } => {
            assert_eq!(xid, XID);
            let expected = Raw::default()
                .w(XID)
                .w(1)
                .w(0)
                .w(0)
                .w(0)
                .w(0)
                .w(10021)
                .w(3)
                .b(b"abc\0")
                .w(0);
            assert_eq!(message, expected.0);
        }
        other => panic!("{other:?}"),
    }

    // Header cut inside the minor version: GARBAGE_ARGS.
    let garbage = call_header().w(0).b(&[0, 0]).0;
    match classify_call(&garbage) {
        Classified::Reply { message, .. } => {
            assert_eq!(message, Raw::default().w(XID).w(1).w(0).w(0).w(0).w(4).0)
        }
        other => panic!("{other:?}"),
    }

    // A REPLY message or a stub record cannot be answered.
    assert!(matches!(
        classify_call(&Raw::default().w(1).w(1).0),
        Classified::Drop(_)
    ));
    assert!(matches!(classify_call(&[1, 2]), Classified::Drop(_)));

    // Framing of a reply.
    assert_eq!(
        encode_record(&null_reply(7))[..4],
        (0x8000_0000u32 | 24).to_be_bytes()
    );
}

#[test]
fn linux_create_session_and_mount_probes() {
    // CREATE_SESSION with the values of LINUX_CLIENT_PROFILE.md §9.
    let args = Raw::default()
        .w(0)
        .w(1)
        .w(1)
        .w(43)
        .h(0x6b0a_3782_0000_0002) // csa_clientid
        .w(1) // csa_sequence
        .w(3) // PERSIST | CONN_BACK_CHAN
        .w(0)
        .w(1_049_620)
        .w(1_049_480)
        .w(7584)
        .w(8)
        .w(64)
        .w(0) // fore: no rdma_ird
        .w(0)
        .w(4096)
        .w(4096)
        .w(0)
        .w(2)
        .w(16)
        .w(0) // back: no rdma_ird
        .w(0x4000_0000) // cb_program
        .w(1) // one callback_sec_parms4
        .w(1) // AUTH_SYS
        .w(0)
        .w(5)
        .b(b"guest\0\0\0")
        .w(0)
        .w(0)
        .w(0);
    let chan = |req, resp, cached, ops, slots| ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: req,
        maxresponsesize: resp,
        maxresponsesize_cached: cached,
        maxoperations: ops,
        maxrequests: slots,
        rdma_ird: None,
    };
    let op = NfsArgOp::CreateSession(CreateSessionArgs {
        clientid: 0x6b0a_3782_0000_0002,
        sequence: 1,
        flags: CREATE_SESSION4_FLAG_PERSIST | CREATE_SESSION4_FLAG_CONN_BACK_CHAN,
        fore_chan_attrs: chan(1_049_620, 1_049_480, 7584, 8, 64),
        back_chan_attrs: chan(4096, 4096, 0, 2, 16),
        cb_program: 0x4000_0000,
        sec_parms: vec![CallbackSecParms::Sys(AuthSys {
            stamp: 0,
            machine_name: b"guest".to_vec(),
            uid: 0,
            gid: 0,
            gids: vec![],
        })],
    });
    let record = call_header().b(&args.0).0;
    assert_eq!(
        expect_compound(&record).body,
        CompoundBody::Ops {
            ops: vec![op.clone()],
            stop: None
        }
    );
    assert_eq!(encode_args(vec![op]), args.0);

    // SEQUENCE, RECLAIM_COMPLETE(FALSE) and SEQUENCE, PUTROOTFH, SECINFO_NO_NAME(CURRENT_FH).
    let seq = |id: u32| Raw::default().w(53).b(&SESSION).w(id).w(0).w(0).w(0);
    let reclaim = Raw::default().w(0).w(1).w(2).b(&seq(1).0).w(58).w(0);
    let secinfo = Raw::default().w(0).w(1).w(3).b(&seq(2).0).w(24).w(52).w(0);
    let sequence = |id| {
        NfsArgOp::Sequence(SequenceArgs {
            sessionid: SESSION,
            sequenceid: id,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        })
    };
    assert_eq!(
        expect_compound(&call_header().b(&reclaim.0).0).body,
        CompoundBody::Ops {
            ops: vec![
                sequence(1),
                NfsArgOp::ReclaimComplete(ReclaimCompleteArgs { one_fs: false })
            ],
            stop: None
        }
    );
    assert_eq!(
        expect_compound(&call_header().b(&secinfo.0).0).body,
        CompoundBody::Ops {
            ops: vec![
                sequence(2),
                NfsArgOp::PutRootFh,
                NfsArgOp::SecinfoNoName(SecinfoStyle::CurrentFh)
            ],
            stop: None
        }
    );

    // The SECINFO_NO_NAME answer of a sec=sys server: AUTH_SYS only.
    let reply = success_reply(
        XID,
        &CompoundRes::new(
            vec![],
            vec![
                NfsResOp::PutRootFh(NfsStatus::Ok),
                NfsResOp::SecinfoNoName(Ok(vec![SecInfo::Flavor(1)])),
            ],
        ),
    );
    let expected = Raw::default()
        .w(XID)
        .w(1)
        .w(0)
        .w(0)
        .w(0)
        .w(0)
        .w(0)
        .w(0)
        .w(2)
        .w(24)
        .w(0)
        .w(52)
        .w(0)
        .w(1)
        .w(1);
    assert_eq!(reply, expected.0);
}
