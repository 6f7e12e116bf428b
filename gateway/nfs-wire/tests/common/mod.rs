//! Sample values for every operation, shared by the round-trip and truncation tests.

use bucketfs_nfs_wire::nfs::attr::{Attr, FATTR4_MODE, FATTR4_SIZE};
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::{LinkText, Opaque, SpecData, Utf8String};
use bucketfs_nfs_wire::nfs::{
    Bitmap, ChangeInfo, Component, Fattr, FileHandle, NfsFileType, NfsStatus, NfsTime, StateId,
    StateOwner,
};
use bucketfs_nfs_wire::rpc::AuthSys;

pub fn sid(n: u8) -> StateId {
    StateId {
        seqid: u32::from(n),
        other: [n; 12],
    }
}

pub fn name(s: &str) -> Component {
    Component::new(s).unwrap()
}

pub fn owner() -> StateOwner {
    StateOwner {
        clientid: 0x6b0a_3782_0000_0001,
        owner: Opaque(b"open id:\x00\x00\x00\x2c".to_vec()),
    }
}

pub fn mode_attrs() -> Fattr {
    Fattr::encode_attrs(
        &Bitmap::from_bits(&[FATTR4_SIZE, FATTR4_MODE]),
        [Attr::Mode(0o644), Attr::Size(0)],
    )
}

pub fn chan(maxreq: u32, ird: Option<u32>) -> ChannelAttrs {
    ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: maxreq,
        maxresponsesize: 1_049_480,
        maxresponsesize_cached: 7584,
        maxoperations: 8,
        maxrequests: 64,
        rdma_ird: ird,
    }
}

pub fn cinfo() -> ChangeInfo {
    ChangeInfo {
        atomic: true,
        before: 7,
        after: 8,
    }
}

pub fn impl_id() -> NfsImplId {
    NfsImplId {
        domain: Utf8String("kernel.org".into()),
        name: Utf8String("Linux 6.1.0".into()),
        date: NfsTime {
            seconds: 0,
            nseconds: 0,
        },
    }
}

/// One sample of every modelled argument op, with every union arm covered at least once.
pub fn sample_args() -> Vec<NfsArgOp> {
    let fh = FileHandle::new(vec![1, 2, 3, 4, 5]).unwrap();
    vec![
        NfsArgOp::Access(AccessArgs { access: 0x1f }),
        NfsArgOp::Close(CloseArgs {
            seqid: 3,
            open_stateid: sid(1),
        }),
        NfsArgOp::Commit(CommitArgs {
            offset: 4096,
            count: 0,
        }),
        NfsArgOp::Create(CreateArgs {
            objtype: CreateType::Directory,
            objname: name("dir"),
            createattrs: mode_attrs(),
        }),
        NfsArgOp::Create(CreateArgs {
            objtype: CreateType::Link(LinkText(b"../t\xff".to_vec())),
            objname: name("sym"),
            createattrs: Fattr::default(),
        }),
        NfsArgOp::Create(CreateArgs {
            objtype: CreateType::Block(SpecData { major: 8, minor: 1 }),
            objname: name("blk"),
            createattrs: Fattr::default(),
        }),
        NfsArgOp::Create(CreateArgs {
            objtype: CreateType::Char(SpecData { major: 1, minor: 3 }),
            objname: name("chr"),
            createattrs: Fattr::default(),
        }),
        NfsArgOp::Create(CreateArgs {
            objtype: CreateType::Socket,
            objname: name("s"),
            createattrs: Fattr::default(),
        }),
        NfsArgOp::Create(CreateArgs {
            objtype: CreateType::Fifo,
            objname: name("f"),
            createattrs: Fattr::default(),
        }),
        NfsArgOp::Create(CreateArgs {
            objtype: CreateType::Other(NfsFileType::Regular),
            objname: name("r"),
            createattrs: Fattr::default(),
        }),
        NfsArgOp::DelegReturn(DelegReturnArgs {
            deleg_stateid: sid(2),
        }),
        NfsArgOp::GetAttr(GetAttrArgs {
            attr_request: Bitmap::from_words(vec![0x0010_011a, 0x00b0_a23a]),
        }),
        NfsArgOp::GetFh,
        NfsArgOp::Link(LinkArgs {
            newname: name("hard"),
        }),
        NfsArgOp::Lock(LockArgs {
            locktype: LockType::WriteW,
            reclaim: false,
            offset: 0,
            length: u64::MAX,
            locker: Locker::New(OpenToLockOwner {
                open_seqid: 1,
                open_stateid: sid(3),
                lock_seqid: 0,
                lock_owner: owner(),
            }),
        }),
        NfsArgOp::Lock(LockArgs {
            locktype: LockType::Read,
            reclaim: true,
            offset: 10,
            length: 20,
            locker: Locker::Existing(ExistLockOwner {
                lock_stateid: sid(4),
                lock_seqid: 2,
            }),
        }),
        NfsArgOp::LockT(LockTArgs {
            locktype: LockType::Write,
            offset: 1,
            length: 2,
            owner: owner(),
        }),
        NfsArgOp::LockU(LockUArgs {
            locktype: LockType::Write,
            seqid: 5,
            lock_stateid: sid(5),
            offset: 0,
            length: u64::MAX,
        }),
        NfsArgOp::Lookup(LookupArgs {
            objname: name("export"),
        }),
        NfsArgOp::LookupP,
        NfsArgOp::NVerify(VerifyArgs {
            obj_attributes: mode_attrs(),
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: OPEN4_SHARE_ACCESS_WRITE,
            share_deny: OPEN4_SHARE_DENY_NONE,
            owner: owner(),
            openhow: OpenFlag::Create(CreateHow::Unchecked(mode_attrs())),
            claim: OpenClaim::Null(name("file")),
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: OPEN4_SHARE_ACCESS_BOTH,
            share_deny: OPEN4_SHARE_DENY_NONE,
            owner: owner(),
            openhow: OpenFlag::Create(CreateHow::Exclusive41 {
                verifier: [9; 8],
                attrs: mode_attrs(),
            }),
            claim: OpenClaim::Null(name("excl")),
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: 1,
            share_deny: 0,
            owner: owner(),
            openhow: OpenFlag::Create(CreateHow::Guarded(Fattr::default())),
            claim: OpenClaim::DelegateCur {
                delegate_stateid: sid(6),
                file: name("d"),
            },
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: 1,
            share_deny: 0,
            owner: owner(),
            openhow: OpenFlag::Create(CreateHow::Exclusive([7; 8])),
            claim: OpenClaim::DelegatePrev(name("p")),
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: 1,
            share_deny: 0,
            owner: owner(),
            openhow: OpenFlag::NoCreate,
            claim: OpenClaim::Fh,
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: 1,
            share_deny: 0,
            owner: owner(),
            openhow: OpenFlag::NoCreate,
            claim: OpenClaim::Previous(OpenDelegationType::Read),
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: 1,
            share_deny: 0,
            owner: owner(),
            openhow: OpenFlag::NoCreate,
            claim: OpenClaim::DelegPrevFh,
        }),
        NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: 1,
            share_deny: 0,
            owner: owner(),
            openhow: OpenFlag::NoCreate,
            claim: OpenClaim::DelegCurFh(sid(7)),
        }),
        NfsArgOp::OpenDowngrade(OpenDowngradeArgs {
            open_stateid: sid(8),
            seqid: 2,
            share_access: 1,
            share_deny: 0,
        }),
        NfsArgOp::PutFh(PutFhArgs { object: fh }),
        NfsArgOp::PutPubFh,
        NfsArgOp::PutRootFh,
        NfsArgOp::Read(ReadArgs {
            stateid: sid(0),
            offset: 1 << 20,
            count: 131_072,
        }),
        NfsArgOp::Readdir(ReaddirArgs {
            cookie: 0,
            cookieverf: [0; 8],
            dircount: 65448,
            maxcount: 65448,
            attr_request: Bitmap::from_words(vec![0x0018_091a, 0x00b0_a23a]),
        }),
        NfsArgOp::ReadLink,
        NfsArgOp::Remove(RemoveArgs {
            target: name("gone"),
        }),
        NfsArgOp::Rename(RenameArgs {
            oldname: name("a"),
            newname: name(".nfs0000000000000001000000aa"),
        }),
        NfsArgOp::RestoreFh,
        NfsArgOp::SaveFh,
        NfsArgOp::Secinfo(SecinfoArgs { name: name("x") }),
        NfsArgOp::SetAttr(SetAttrArgs {
            stateid: StateId::ANONYMOUS,
            obj_attributes: mode_attrs(),
        }),
        NfsArgOp::Verify(VerifyArgs {
            obj_attributes: mode_attrs(),
        }),
        NfsArgOp::Write(WriteArgs {
            stateid: sid(9),
            offset: 3,
            stable: StableHow::FileSync,
            data: Data(b"hello".to_vec()),
        }),
        NfsArgOp::BindConnToSession(BindConnToSessionArgs {
            sessid: [3; 16],
            dir: ChannelDirFromClient::ForeOrBoth,
            use_conn_in_rdma_mode: false,
        }),
        NfsArgOp::ExchangeId(ExchangeIdArgs {
            clientowner: ClientOwner {
                verifier: [0x18, 0xec, 0x13, 0x68, 0xe2, 0x29, 0x5d, 0xef],
                ownerid: Opaque(b"Linux NFSv4.1 guest".to_vec()),
            },
            flags: EXCHGID4_FLAG_SUPP_MOVED_REFER | EXCHGID4_FLAG_BIND_PRINC_STATEID,
            state_protect: StateProtectArgs::None,
            client_impl_id: Some(impl_id()),
        }),
        NfsArgOp::ExchangeId(ExchangeIdArgs {
            clientowner: ClientOwner {
                verifier: [1; 8],
                ownerid: Opaque(vec![]),
            },
            flags: 0,
            state_protect: StateProtectArgs::MachCred(StateProtectOps {
                must_enforce: Bitmap::from_bits(&[42, 53]),
                must_allow: Bitmap::new(),
            }),
            client_impl_id: None,
        }),
        NfsArgOp::ExchangeId(ExchangeIdArgs {
            clientowner: ClientOwner {
                verifier: [1; 8],
                ownerid: Opaque(vec![1]),
            },
            flags: 0,
            state_protect: StateProtectArgs::Ssv,
            client_impl_id: None,
        }),
        NfsArgOp::CreateSession(CreateSessionArgs {
            clientid: 0x6b0a_3782_0000_0002,
            sequence: 1,
            flags: CREATE_SESSION4_FLAG_PERSIST | CREATE_SESSION4_FLAG_CONN_BACK_CHAN,
            fore_chan_attrs: chan(1_049_620, None),
            back_chan_attrs: chan(4096, Some(0)),
            cb_program: 0x4000_0000,
            sec_parms: vec![
                CallbackSecParms::Sys(AuthSys {
                    stamp: 0,
                    machine_name: b"guest".to_vec(),
                    uid: 0,
                    gid: 0,
                    gids: vec![],
                }),
                CallbackSecParms::None,
                CallbackSecParms::Gss(GssCbHandles {
                    service: 1,
                    handle_from_server: Opaque(vec![1, 2]),
                    handle_from_client: Opaque(vec![3]),
                }),
            ],
        }),
        NfsArgOp::DestroySession(DestroySessionArgs { sessionid: [5; 16] }),
        NfsArgOp::FreeStateId(FreeStateIdArgs { stateid: sid(10) }),
        NfsArgOp::SecinfoNoName(SecinfoStyle::CurrentFh),
        NfsArgOp::SecinfoNoName(SecinfoStyle::Parent),
        NfsArgOp::Sequence(SequenceArgs {
            sessionid: [5; 16],
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: true,
        }),
        NfsArgOp::TestStateId(TestStateIdArgs {
            stateids: vec![sid(1), sid(2)],
        }),
        NfsArgOp::DestroyClientId(DestroyClientIdArgs { clientid: 9 }),
        NfsArgOp::ReclaimComplete(ReclaimCompleteArgs { one_fs: false }),
    ]
}

/// One sample of every result variant (success and failure arms).
pub fn sample_results() -> Vec<NfsResOp> {
    let fh = FileHandle::new(vec![9; 16]).unwrap();
    vec![
        NfsResOp::Access(Ok(AccessResOk {
            supported: 0x1f,
            access: 0x03,
        })),
        NfsResOp::Access(Err(NfsStatus::Stale)),
        NfsResOp::Close(Ok(sid(1))),
        NfsResOp::Close(Err(NfsStatus::OldStateId)),
        NfsResOp::Commit(Ok([4; 8])),
        NfsResOp::Create(Ok(CreateResOk {
            cinfo: cinfo(),
            attrset: Bitmap::from_bits(&[FATTR4_MODE]),
        })),
        NfsResOp::DelegReturn(NfsStatus::Ok),
        NfsResOp::GetAttr(Ok(mode_attrs())),
        NfsResOp::GetFh(Ok(fh)),
        NfsResOp::Link(Ok(cinfo())),
        NfsResOp::Lock(Ok(sid(2))),
        NfsResOp::Lock(Err(LockError::Denied(LockDenied {
            offset: 0,
            length: 5,
            locktype: LockType::Write,
            owner: owner(),
        }))),
        NfsResOp::Lock(Err(LockError::Status(NfsStatus::BadStateId))),
        NfsResOp::LockT(Ok(())),
        NfsResOp::LockT(Err(LockError::Denied(LockDenied {
            offset: 1,
            length: 1,
            locktype: LockType::Read,
            owner: owner(),
        }))),
        NfsResOp::LockU(Ok(sid(3))),
        NfsResOp::Lookup(NfsStatus::NoEnt),
        NfsResOp::LookupP(NfsStatus::Ok),
        NfsResOp::NVerify(NfsStatus::Same),
        NfsResOp::Open(Ok(OpenResOk {
            stateid: sid(4),
            cinfo: cinfo(),
            rflags: OPEN4_RESULT_LOCKTYPE_POSIX,
            attrset: Bitmap::from_bits(&[FATTR4_MODE]),
            delegation: OpenDelegation::None,
        })),
        NfsResOp::Open(Ok(OpenResOk {
            stateid: sid(5),
            cinfo: cinfo(),
            rflags: 0,
            attrset: Bitmap::new(),
            delegation: OpenDelegation::NoneExt(WhyNoDelegation::Contention {
                server_will_push_deleg: false,
            }),
        })),
        NfsResOp::Open(Ok(OpenResOk {
            stateid: sid(5),
            cinfo: cinfo(),
            rflags: 0,
            attrset: Bitmap::new(),
            delegation: OpenDelegation::NoneExt(WhyNoDelegation::Resource {
                server_will_signal_avail: true,
            }),
        })),
        NfsResOp::Open(Ok(OpenResOk {
            stateid: sid(5),
            cinfo: cinfo(),
            rflags: 0,
            attrset: Bitmap::new(),
            delegation: OpenDelegation::NoneExt(WhyNoDelegation::NotSuppFtype),
        })),
        NfsResOp::OpenDowngrade(Ok(sid(6))),
        NfsResOp::PutFh(NfsStatus::BadHandle),
        NfsResOp::PutPubFh(NfsStatus::Ok),
        NfsResOp::PutRootFh(NfsStatus::Ok),
        NfsResOp::Read(Ok(ReadResOk {
            eof: true,
            data: Data(b"abc".to_vec()),
        })),
        NfsResOp::Readdir(Ok(ReaddirResOk {
            cookieverf: [1; 8],
            entries: vec![
                DirEntry {
                    cookie: 3,
                    name: name("a"),
                    attrs: mode_attrs(),
                },
                DirEntry {
                    cookie: 4,
                    name: name("bb"),
                    attrs: Fattr::default(),
                },
            ],
            eof: true,
        })),
        NfsResOp::ReadLink(Ok(LinkText(b"/target".to_vec()))),
        NfsResOp::Remove(Ok(cinfo())),
        NfsResOp::Rename(Ok(RenameResOk {
            source_cinfo: cinfo(),
            target_cinfo: cinfo(),
        })),
        NfsResOp::RestoreFh(NfsStatus::RestoreFh),
        NfsResOp::SaveFh(NfsStatus::Ok),
        NfsResOp::Secinfo(Ok(vec![
            SecInfo::Flavor(1),
            SecInfo::Gss {
                oid: Opaque(vec![0x2a, 0x86]),
                qop: 0,
                service: 1,
            },
        ])),
        NfsResOp::SetAttr {
            status: NfsStatus::Perm,
            attrsset: Bitmap::new(),
        },
        NfsResOp::Verify(NfsStatus::NotSame),
        NfsResOp::Write(Ok(WriteResOk {
            count: 5,
            committed: StableHow::FileSync,
            writeverf: [2; 8],
        })),
        NfsResOp::BindConnToSession(Ok(BindConnToSessionResOk {
            sessid: [1; 16],
            dir: ChannelDirFromServer::Both,
            use_conn_in_rdma_mode: false,
        })),
        NfsResOp::ExchangeId(Ok(ExchangeIdResOk {
            clientid: 1,
            sequenceid: 1,
            flags: EXCHGID4_FLAG_USE_NON_PNFS,
            state_protect: StateProtectReply::None,
            server_owner: ServerOwner {
                minor_id: 0,
                major_id: Opaque(b"gw".to_vec()),
            },
            server_scope: Opaque(b"bucketfs".to_vec()),
            server_impl_id: Some(impl_id()),
        })),
        NfsResOp::ExchangeId(Ok(ExchangeIdResOk {
            clientid: 1,
            sequenceid: 1,
            flags: 0,
            state_protect: StateProtectReply::MachCred(StateProtectOps {
                must_enforce: Bitmap::new(),
                must_allow: Bitmap::from_bits(&[1]),
            }),
            server_owner: ServerOwner {
                minor_id: 0,
                major_id: Opaque(vec![]),
            },
            server_scope: Opaque(vec![]),
            server_impl_id: None,
        })),
        NfsResOp::CreateSession(Ok(CreateSessionResOk {
            sessionid: [7; 16],
            sequence: 1,
            flags: CREATE_SESSION4_FLAG_CONN_BACK_CHAN,
            fore_chan_attrs: chan(1_049_620, None),
            back_chan_attrs: chan(4096, None),
        })),
        NfsResOp::DestroySession(NfsStatus::Ok),
        NfsResOp::FreeStateId(NfsStatus::LocksHeld),
        NfsResOp::SecinfoNoName(Ok(vec![SecInfo::Flavor(1)])),
        NfsResOp::Sequence(Ok(SequenceResOk {
            sessionid: [7; 16],
            sequenceid: 2,
            slotid: 0,
            highest_slotid: 63,
            target_highest_slotid: 63,
            status_flags: 0,
        })),
        NfsResOp::Sequence(Err(NfsStatus::SeqMisordered)),
        NfsResOp::TestStateId(Ok(vec![NfsStatus::Ok, NfsStatus::BadStateId])),
        NfsResOp::DestroyClientId(NfsStatus::ClientIdBusy),
        NfsResOp::ReclaimComplete(NfsStatus::CompleteAlready),
        NfsResOp::Failed {
            opcode: Opcode::LayoutGet,
            status: NfsStatus::NotSupp,
        },
        NfsResOp::Illegal,
    ]
}
