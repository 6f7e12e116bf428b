//! Client side of ONC RPC: call records out, reply headers in.

use bucketfs_nfs_wire::nfs::{CompoundArgs, CompoundBody, CompoundRes, NfsArgOp};
use bucketfs_nfs_wire::rpc::{
    Credential, MAX_AUTH_BYTES, MSG_REPLY, NFS_PROGRAM, NFS_V4, PROC_COMPOUND, PROC_NULL,
    encode_call_header,
};
use bucketfs_nfs_wire::xdr::{Decoder, Encoder};

use crate::error::{Error, Result};

const LAST_FRAGMENT: u32 = 0x8000_0000;

/// A call record: record mark, RPC header, COMPOUND args (`ops` in order).
pub(crate) fn compound_record(
    xid: u32,
    cred: &Credential,
    tag: &[u8],
    first: Option<&NfsArgOp>,
    ops: &[NfsArgOp],
    capacity: usize,
) -> Vec<u8> {
    let mut e = Encoder::with_capacity(capacity + 256);
    let mark = e.reserve_u32();
    encode_call_header(xid, NFS_PROGRAM, NFS_V4, PROC_COMPOUND, cred, &mut e);
    e.put_opaque(tag);
    e.put_u32(bucketfs_nfs_wire::nfs::compound::MINOR_VERSION);
    e.put_len(ops.len() + usize::from(first.is_some()));
    for op in first.into_iter().chain(ops) {
        op.encode(&mut e);
    }
    finish(e, mark)
}

/// A NULL call record.
pub(crate) fn null_record(xid: u32, cred: &Credential) -> Vec<u8> {
    let mut e = Encoder::with_capacity(128);
    let mark = e.reserve_u32();
    encode_call_header(xid, NFS_PROGRAM, NFS_V4, PROC_NULL, cred, &mut e);
    finish(e, mark)
}

fn finish(mut e: Encoder, mark: usize) -> Vec<u8> {
    let len = e.len() - 4;
    // Calls are bounded by the session's request size, far below 2 GiB.
    let len = u32::try_from(len).unwrap_or(u32::MAX) & !LAST_FRAGMENT;
    e.patch_u32(mark, LAST_FRAGMENT | len);
    e.into_vec()
}

/// Checks a reply header; returns the procedure results (empty for NULL).
pub(crate) fn reply_body(record: &[u8]) -> Result<&[u8]> {
    let bad = |what: &str| Error::Malformed(format!("RPC reply header: {what}"));
    let mut d = Decoder::new(record);
    let _xid = d.u32().map_err(|_| bad("no xid"))?;
    if d.u32().map_err(|_| bad("no message type"))? != MSG_REPLY {
        return Err(bad("not a REPLY"));
    }
    match d.u32().map_err(|_| bad("no reply status"))? {
        0 => {
            // MSG_ACCEPTED: verifier, accept_stat.
            d.u32().map_err(|_| bad("no verifier flavor"))?;
            d.opaque(MAX_AUTH_BYTES, "verifier")
                .map_err(|e| bad(&e.to_string()))?;
            match d.u32().map_err(|_| bad("no accept status"))? {
                0 => Ok(d.rest()),
                1 => Err(Error::Rpc("PROG_UNAVAIL: not an NFS server".into())),
                2 => {
                    let low = d.u32().unwrap_or(0);
                    let high = d.u32().unwrap_or(0);
                    Err(Error::Rpc(format!(
                        "PROG_MISMATCH: the server speaks NFS versions {low}..{high}, not 4"
                    )))
                }
                3 => Err(Error::Rpc("PROC_UNAVAIL".into())),
                4 => Err(Error::Rpc(
                    "GARBAGE_ARGS: the server could not decode the call".into(),
                )),
                5 => Err(Error::Rpc("SYSTEM_ERR".into())),
                other => Err(bad(&format!("accept status {other}"))),
            }
        }
        1 => match d.u32().map_err(|_| bad("no reject status"))? {
            0 => {
                let low = d.u32().unwrap_or(0);
                let high = d.u32().unwrap_or(0);
                Err(Error::Rpc(format!("RPC_MISMATCH: versions {low}..{high}")))
            }
            1 => {
                let stat = d.u32().unwrap_or(u32::MAX);
                Err(Error::Rpc(format!(
                    "AUTH_ERROR {stat} (credentials refused)"
                )))
            }
            other => Err(bad(&format!("reject status {other}"))),
        },
        other => Err(bad(&format!("reply status {other}"))),
    }
}

/// Decodes a COMPOUND reply record completely (no trailing bytes).
pub(crate) fn decode_compound(record: &[u8]) -> Result<CompoundRes> {
    let body = reply_body(record)?;
    let mut d = Decoder::new(body);
    let res =
        CompoundRes::decode(&mut d).map_err(|e| Error::Malformed(format!("COMPOUND4res: {e}")))?;
    d.finish()
        .map_err(|e| Error::Malformed(format!("COMPOUND4res: {e}")))?;
    Ok(res)
}

/// The arguments a [`CompoundArgs`] would carry, for tests that want to compare encodings.
#[allow(dead_code)]
pub(crate) fn args_of(tag: &[u8], ops: Vec<NfsArgOp>) -> CompoundArgs {
    CompoundArgs {
        tag: tag.to_vec(),
        minor_version: 1,
        body: CompoundBody::Ops { ops, stop: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bucketfs_nfs_wire::rpc::{AuthSys, ReplyBody};
    use bucketfs_nfs_wire::{Classified, classify_call};

    fn cred() -> Credential {
        Credential::Sys(AuthSys {
            stamp: 1,
            machine_name: b"m".to_vec(),
            uid: 1,
            gid: 2,
            gids: vec![],
        })
    }

    #[test]
    fn compound_record_is_a_framed_call_the_server_decodes() {
        let ops = [NfsArgOp::PutRootFh, NfsArgOp::GetFh];
        let rec = compound_record(77, &cred(), b"tag", None, &ops, 0);
        let mark = u32::from_be_bytes(rec[..4].try_into().unwrap());
        assert_eq!(mark, LAST_FRAGMENT | (rec.len() as u32 - 4));
        match classify_call(&rec[4..]) {
            Classified::Compound { xid, args, .. } => {
                assert_eq!(xid, 77);
                assert_eq!(args, args_of(b"tag", ops.to_vec()));
            }
            other => panic!("{other:?}"),
        }
        let null = null_record(5, &cred());
        assert!(matches!(
            classify_call(&null[4..]),
            Classified::Null { xid: 5, .. }
        ));
    }

    #[test]
    fn reply_headers() {
        assert!(
            reply_body(&ReplyBody::Success.to_message(1))
                .unwrap()
                .is_empty()
        );
        for (body, want) in [
            (ReplyBody::ProgUnavail, "PROG_UNAVAIL"),
            (ReplyBody::ProgMismatch { low: 2, high: 3 }, "2..3"),
            (ReplyBody::GarbageArgs, "GARBAGE_ARGS"),
            (ReplyBody::RpcMismatch { low: 2, high: 2 }, "RPC_MISMATCH"),
            (
                ReplyBody::AuthError(bucketfs_nfs_wire::rpc::AuthStat::TooWeak),
                "AUTH_ERROR",
            ),
        ] {
            let err = reply_body(&body.to_message(1)).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        for junk in [
            &[][..],
            &[0, 0, 0, 1],
            &[0, 0, 0, 1, 0, 0, 0, 0],
            &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9],
        ] {
            assert!(matches!(reply_body(junk), Err(Error::Malformed(_))));
        }
        // SUCCESS followed by junk is a malformed COMPOUND, not a panic.
        let mut msg = ReplyBody::Success.to_message(1);
        msg.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(decode_compound(&msg), Err(Error::Malformed(_))));
    }
}
