//! Encode → decode → equal for every argument and result type, truncation of every argument,
//! and the COMPOUND stop rules.

mod common;

use bucketfs_nfs_wire::nfs::attr::*;
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::SpecData;
use bucketfs_nfs_wire::nfs::*;
use bucketfs_nfs_wire::xdr::{Decoder, Encoder};
use common::*;

fn compound(minor: u32, ops: Vec<NfsArgOp>) -> Vec<u8> {
    let mut e = Encoder::new();
    CompoundArgs {
        tag: b"t".to_vec(),
        minor_version: minor,
        body: CompoundBody::Ops { ops, stop: None },
    }
    .encode(&mut e);
    e.into_vec()
}

#[test]
fn every_argument_op_round_trips() {
    let ops = sample_args();
    let decoded = CompoundArgs::decode(&compound(1, ops.clone())).unwrap();
    assert_eq!(decoded.tag, b"t");
    assert_eq!(decoded.body, CompoundBody::Ops { ops, stop: None });
}

#[test]
fn every_result_round_trips() {
    for r in sample_results() {
        let mut e = Encoder::new();
        r.encode(&mut e);
        let mut d = Decoder::new(e.as_slice());
        assert_eq!(NfsResOp::decode(&mut d).unwrap(), r);
        d.finish().unwrap();
    }
    let res = CompoundRes::new(b"tag".to_vec(), sample_results());
    assert_eq!(res.status, NfsStatus::OpIllegal);
    let mut e = Encoder::new();
    res.encode(&mut e);
    assert_eq!(
        CompoundRes::decode(&mut Decoder::new(e.as_slice())).unwrap(),
        res
    );
}

#[test]
fn every_attribute_round_trips() {
    let t = NfsTime {
        seconds: 1_700_000_000,
        nseconds: 999_999_999,
    };
    let all = vec![
        Attr::SupportedAttrs(Bitmap::from_words(vec![0xfdff_afff, 0x40f9_be3e, 0x802])),
        Attr::Type(NfsFileType::Regular),
        Attr::FhExpireType(FH4_PERSISTENT),
        Attr::Change(1),
        Attr::Size(2),
        Attr::LinkSupport(true),
        Attr::SymlinkSupport(true),
        Attr::NamedAttr(false),
        Attr::Fsid(Fsid { major: 3, minor: 4 }),
        Attr::UniqueHandles(true),
        Attr::LeaseTime(90),
        Attr::RdattrError(NfsStatus::Access),
        Attr::AclSupport(0),
        Attr::CanSetTime(true),
        Attr::CaseInsensitive(false),
        Attr::CasePreserving(true),
        Attr::ChownRestricted(true),
        Attr::FileHandle(FileHandle::new(vec![1; 128]).unwrap()),
        Attr::FileId(5),
        Attr::FilesAvail(6),
        Attr::FilesFree(7),
        Attr::FilesTotal(8),
        Attr::Homogeneous(true),
        Attr::MaxFileSize(u64::MAX),
        Attr::MaxLink(8),
        Attr::MaxName(255),
        Attr::MaxRead(1 << 20),
        Attr::MaxWrite(1 << 20),
        Attr::Mode(0o4755),
        Attr::NoTrunc(true),
        Attr::NumLinks(2),
        Attr::Owner("0".into()),
        Attr::OwnerGroup("1234".into()),
        Attr::RawDev(SpecData { major: 0, minor: 0 }),
        Attr::SpaceAvail(9),
        Attr::SpaceFree(10),
        Attr::SpaceTotal(11),
        Attr::SpaceUsed(12),
        Attr::TimeAccess(t.clone()),
        Attr::TimeAccessSet(SetTime::ServerTime),
        Attr::TimeDelta(NfsTime {
            seconds: 0,
            nseconds: 1,
        }),
        Attr::TimeMetadata(t.clone()),
        Attr::TimeModify(t.clone()),
        Attr::TimeModifySet(SetTime::ClientTime(t)),
        Attr::MountedOnFileId(1),
        Attr::FsLayoutTypes(vec![]),
        Attr::LayoutBlksize(0),
        Attr::SuppattrExclcreat(Bitmap::from_bits(&[FATTR4_MODE, FATTR4_SIZE])),
    ];
    let mut everything = Bitmap::new();
    for a in &all {
        everything.insert(a.id());
    }
    // Offer them in reverse: the encoder must sort.
    let f = Fattr::encode_attrs(&everything, all.iter().rev().cloned());
    assert_eq!(f.mask, everything);
    assert_eq!(f.decode_attrs().unwrap(), all);
    let mut e = Encoder::new();
    f.encode(&mut e);
    assert_eq!(e.len(), f.xdr_len());
    assert_eq!(Fattr::decode(&mut Decoder::new(e.as_slice())).unwrap(), f);
}

#[test]
fn truncated_arguments_fail_that_op_with_badxdr() {
    for op in sample_args() {
        let full = compound(1, vec![op.clone()]);
        // Header: tag "t" (8 bytes), minor version, count, opcode.
        let args_start = 8 + 4 + 4 + 4;
        for cut in args_start..full.len() {
            let got = CompoundArgs::decode(&full[..cut])
                .unwrap_or_else(|e| panic!("{op:?} cut at {cut}: {e}"));
            assert_eq!(
                got.body,
                CompoundBody::Ops {
                    ops: vec![],
                    stop: Some(OpFailure {
                        opcode: op.opcode(),
                        status: NfsStatus::BadXdr
                    })
                },
                "{op:?} cut at {cut}"
            );
        }
        // Losing the opcode itself is a malformed COMPOUND: GARBAGE_ARGS.
        assert!(CompoundArgs::decode(&full[..args_start - 1]).is_err());
    }
}

#[test]
fn truncated_results_fail_to_decode() {
    for r in sample_results() {
        let mut e = Encoder::new();
        r.encode(&mut e);
        for cut in 0..e.len() {
            assert!(
                NfsResOp::decode(&mut Decoder::new(&e.as_slice()[..cut])).is_err(),
                "{r:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn minor_versions_other_than_one_are_mismatched() {
    for minor in [0, 2, 7] {
        let got = CompoundArgs::decode(&compound(minor, vec![NfsArgOp::PutRootFh])).unwrap();
        assert_eq!(got.body, CompoundBody::MinorVersionMismatch);
        assert_eq!(got.minor_version, minor);
    }
}

fn raw_compound(words: &[u32]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.put_opaque(b"");
    e.put_u32(1);
    for w in words {
        e.put_u32(*w);
    }
    e.into_vec()
}

#[test]
fn stop_rules() {
    let body = |words: &[u32]| CompoundArgs::decode(&raw_compound(words)).unwrap().body;
    // Unknown opcode, followed by garbage that is never read.
    assert_eq!(
        body(&[2, Opcode::PutRootFh as u32, 9999, 0xffff_ffff]),
        CompoundBody::Ops {
            ops: vec![NfsArgOp::PutRootFh],
            stop: Some(OpFailure {
                opcode: Opcode::Illegal,
                status: NfsStatus::OpIllegal
            })
        }
    );
    // OP_ILLEGAL itself, opcodes 0-2 and NFSv4.2 opcodes are illegal in minor version 1.
    for code in [10044, 0, 1, 2, Opcode::Copy as u32, Opcode::ReadPlus as u32] {
        assert_eq!(
            body(&[1, code]),
            CompoundBody::Ops {
                ops: vec![],
                stop: Some(OpFailure {
                    opcode: Opcode::Illegal,
                    status: NfsStatus::OpIllegal
                })
            },
            "opcode {code}"
        );
    }
    // Known but unimplemented: NOTSUPP without reading the arguments.
    for op in [
        Opcode::LayoutGet,
        Opcode::OpenConfirm,
        Opcode::Renew,
        Opcode::BackchannelCtl,
    ] {
        assert_eq!(
            body(&[1, op as u32]),
            CompoundBody::Ops {
                ops: vec![],
                stop: Some(OpFailure {
                    opcode: op,
                    status: NfsStatus::NotSupp
                })
            }
        );
    }
    // Over-long name: NAMETOOLONG for that op.
    let mut e = Encoder::new();
    e.put_opaque(b"");
    e.put_u32(1);
    e.put_u32(1);
    e.put_u32(Opcode::Lookup as u32);
    e.put_opaque(&[b'x'; 1021]);
    assert_eq!(
        CompoundArgs::decode(e.as_slice()).unwrap().body,
        CompoundBody::Ops {
            ops: vec![],
            stop: Some(OpFailure {
                opcode: Opcode::Lookup,
                status: NfsStatus::NameTooLong
            })
        }
    );
    // Count larger than the ops present: the missing opcode is a malformed COMPOUND.
    assert!(CompoundArgs::decode(&raw_compound(&[3, Opcode::GetFh as u32])).is_err());
    // Too many ops.
    assert_eq!(body(&[MAX_OPS_PLUS_ONE]), CompoundBody::TooManyOps);
}

const MAX_OPS_PLUS_ONE: u32 = compound::MAX_COMPOUND_OPS as u32 + 1;

#[test]
fn failure_results_have_the_op_specific_shape() {
    let mut e = Encoder::new();
    NfsResOp::error(Opcode::SetAttr, NfsStatus::BadXdr).encode(&mut e);
    assert_eq!(e.as_slice(), &[0, 0, 0, 34, 0, 0, 0x27, 0x34, 0, 0, 0, 0]);
    let mut e = Encoder::new();
    NfsResOp::error(Opcode::Illegal, NfsStatus::OpIllegal).encode(&mut e);
    assert_eq!(e.as_slice(), &[0, 0, 0x27, 0x3c, 0, 0, 0x27, 0x3c]);
    // An Err(Ok) can never produce a reply without its body.
    let mut e = Encoder::new();
    NfsResOp::GetFh(Err(NfsStatus::Ok)).encode(&mut e);
    assert_eq!(e.as_slice(), &[0, 0, 0, 10, 0, 0, 0x27, 0x16]);
    assert_eq!(
        NfsResOp::GetFh(Err(NfsStatus::Ok)).status(),
        NfsStatus::ServerFault
    );
}

#[test]
fn readdir_builder_respects_maxcount_and_dircount() {
    let attrs = mode_attrs();
    let entry_len = 4 + 8 + 8 + attrs.xdr_len(); // names of 1..=4 bytes pad to 8
    let fixed = 16;
    // Room for exactly two entries.
    let mut b = ReaddirBuilder::new([0; 8], 0, (fixed + 2 * entry_len) as u32);
    b.push(1, name("a"), attrs.clone()).unwrap();
    b.push(2, name("b"), attrs.clone()).unwrap();
    assert_eq!(b.push(3, name("c"), attrs.clone()), Err(BudgetExhausted));
    assert_eq!(b.encoded_len(), fixed + 2 * entry_len);
    let res = b.finish(true).unwrap();
    assert_eq!(res.entries.len(), 2);
    assert!(!res.eof, "a refused entry means more remain");
    let mut e = Encoder::new();
    res.encode(&mut e);
    assert_eq!(e.len(), fixed + 2 * entry_len);

    // dircount: each entry counts 8 (cookie) + 8 (name); 20 bytes allows one... plus the
    // first is always allowed, so 16 allows exactly one.
    let mut b = ReaddirBuilder::new([0; 8], 16, 65448);
    b.push(1, name("a"), attrs.clone()).unwrap();
    assert!(b.push(2, name("b"), attrs.clone()).is_err());
    assert!(b.push(3, name("c"), Fattr::default()).is_err(), "no holes");

    // Not even one entry fits: TOOSMALL.
    let mut b = ReaddirBuilder::new([0; 8], 0, 20);
    assert!(b.push(1, name("a"), attrs.clone()).is_err());
    assert_eq!(b.finish(true), Err(NfsStatus::TooSmall));

    // An empty directory fits in 16 bytes and is eof.
    let res = ReaddirBuilder::new([0; 8], 0, 16).finish(true).unwrap();
    assert!(res.eof && res.entries.is_empty());
    assert_eq!(
        ReaddirBuilder::new([0; 8], 0, 15).finish(true),
        Err(NfsStatus::TooSmall)
    );
}

#[test]
fn failed_results_never_lose_a_required_body() {
    for (opcode, status) in [
        (Opcode::Lock, NfsStatus::Denied),
        (Opcode::LockT, NfsStatus::Denied),
        (Opcode::LayoutGet, NfsStatus::LayoutTryLater),
        (Opcode::Access, NfsStatus::Ok),
    ] {
        let r = NfsResOp::Failed { opcode, status };
        assert_eq!(r.status(), NfsStatus::ServerFault);
        let mut e = Encoder::new();
        r.encode(&mut e);
        assert_eq!(
            &e.as_slice()[4..],
            &NfsStatus::ServerFault.code().to_be_bytes()
        );
    }
}

#[test]
fn open_claim_wire_values() {
    // CLAIM_DELEG_CUR_FH = 5 carries a stateid; CLAIM_DELEG_PREV_FH = 6 is void (RFC 5662).
    let mut e = Encoder::new();
    OpenClaim::DelegCurFh(sid(1)).encode(&mut e);
    assert_eq!(&e.as_slice()[..4], &[0, 0, 0, 5]);
    assert_eq!(e.len(), 4 + 16);
    let mut e = Encoder::new();
    OpenClaim::DelegPrevFh.encode(&mut e);
    assert_eq!(e.as_slice(), &[0, 0, 0, 6]);
}

#[test]
fn setattr_mode_keeps_permission_bits_only() {
    let f = Fattr::encode_attrs(&Bitmap::from_bits(&[FATTR4_MODE]), [Attr::Mode(0o104_755)]);
    assert_eq!(f.settable().unwrap().mode, Some(0o4755));
}
