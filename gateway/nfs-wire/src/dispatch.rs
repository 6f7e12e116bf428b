//! Classifies one RPC record into the work the server must do.
//!
//! This is the single entry point a transport needs: feed it a record from
//! [`crate::record::RecordReader`] and either dispatch the decoded COMPOUND, answer NULL, send
//! the prepared error reply, or (for records that carry no usable xid) drop the record.

use crate::nfs::{CompoundArgs, CompoundBody, CompoundRes, NfsStatus};
use crate::rpc::{CallError, Credential, PROC_NULL, ReplyBody, decode_call};
use crate::xdr::{Encoder, XdrError};

/// What to do with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// NULL procedure: reply SUCCESS with no results.
    Null { xid: u32, credential: Credential },
    /// COMPOUND whose header decoded; the server executes `args.body`.
    Compound {
        xid: u32,
        credential: Credential,
        args: CompoundArgs,
    },
    /// Send this complete reply message (record-frame it first).
    Reply { xid: u32, message: Vec<u8> },
    /// Nothing can be answered (no xid, or not a CALL). RFC 5531 gives no reply for these;
    /// a server should count them and may close the connection.
    Drop(XdrError),
}

/// Decodes an RPC call record for NFSv4 (see the module docs).
pub fn classify_call(record: &[u8]) -> Classified {
    let call = match decode_call(record) {
        Ok(call) => call,
        Err(CallError::Unanswerable(e)) => return Classified::Drop(e),
        Err(CallError::Reply { xid, reply }) => {
            return Classified::Reply {
                xid,
                message: reply.to_message(xid),
            };
        }
    };
    if call.procedure == PROC_NULL {
        return Classified::Null {
            xid: call.xid,
            credential: call.credential,
        };
    }
    match CompoundArgs::decode(call.args) {
        Ok(args) => match args.body {
            // These need no server state, so they are answered right here.
            CompoundBody::MinorVersionMismatch => Classified::Reply {
                xid: call.xid,
                message: success_reply(
                    call.xid,
                    &CompoundRes::empty(args.tag, NfsStatus::MinorVersMismatch),
                ),
            },
            CompoundBody::TooManyOps => Classified::Reply {
                xid: call.xid,
                message: success_reply(
                    call.xid,
                    &CompoundRes::empty(args.tag, NfsStatus::TooManyOps),
                ),
            },
            CompoundBody::Ops { .. } => Classified::Compound {
                xid: call.xid,
                credential: call.credential,
                args,
            },
        },
        Err(_) => Classified::Reply {
            xid: call.xid,
            message: ReplyBody::GarbageArgs.to_message(call.xid),
        },
    }
}

/// A complete MSG_ACCEPTED/SUCCESS reply carrying `res`.
pub fn success_reply(xid: u32, res: &CompoundRes) -> Vec<u8> {
    let mut e = Encoder::with_capacity(256);
    ReplyBody::Success.encode(xid, &mut e);
    res.encode(&mut e);
    e.into_vec()
}

/// The reply to the NULL procedure.
pub fn null_reply(xid: u32) -> Vec<u8> {
    ReplyBody::Success.to_message(xid)
}
