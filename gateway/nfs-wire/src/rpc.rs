//! ONC RPC v2 messages (RFC 5531): call header decoding, credentials, reply encoding.
//!
//! Only what an NFSv4 server needs: AUTH_NONE and AUTH_SYS credentials (any other flavor is
//! answered with an AUTH_ERROR reply), and every accepted/denied reply shape. The call decoder
//! borrows the record and hands back the procedure arguments as a slice, so the layer above
//! decodes them without a copy.

use crate::xdr::{Decoder, Encoder, XdrError};

pub const RPC_VERSION: u32 = 2;
pub const NFS_PROGRAM: u32 = 100_003;
pub const NFS_V4: u32 = 4;
pub const PROC_NULL: u32 = 0;
pub const PROC_COMPOUND: u32 = 1;

pub const MSG_CALL: u32 = 0;
pub const MSG_REPLY: u32 = 1;

pub const AUTH_NONE: u32 = 0;
pub const AUTH_SYS: u32 = 1;
pub const AUTH_SHORT: u32 = 2;
pub const AUTH_DH: u32 = 3;
pub const RPCSEC_GSS: u32 = 6;

/// opaque_auth bodies are at most 400 bytes (RFC 5531 §8.2).
pub const MAX_AUTH_BYTES: usize = 400;
/// authsys_parms.machinename is string<255>.
pub const MAX_MACHINE_NAME: usize = 255;
/// authsys_parms.gids is uint32<16>.
pub const MAX_AUTH_SYS_GIDS: usize = 16;

/// accept_stat values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum AcceptStat {
    Success = 0,
    ProgUnavail = 1,
    ProgMismatch = 2,
    ProcUnavail = 3,
    GarbageArgs = 4,
    SystemErr = 5,
}

/// auth_stat values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum AuthStat {
    Ok = 0,
    BadCred = 1,
    RejectedCred = 2,
    BadVerf = 3,
    RejectedVerf = 4,
    TooWeak = 5,
    InvalidResp = 6,
    Failed = 7,
}

/// AUTH_SYS credentials (authsys_parms). The machine name is an XDR `string`, i.e. bytes with
/// no encoding guarantee, so it is kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSys {
    pub stamp: u32,
    pub machine_name: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub gids: Vec<u32>,
}

impl AuthSys {
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(Self {
            stamp: d.u32()?,
            machine_name: d.opaque_vec(MAX_MACHINE_NAME, "authsys machinename")?,
            uid: d.u32()?,
            gid: d.u32()?,
            gids: d.array(MAX_AUTH_SYS_GIDS, 4, "authsys gids", Decoder::u32)?,
        })
    }

    pub fn encode(&self, e: &mut Encoder) {
        e.put_u32(self.stamp);
        e.put_opaque(&self.machine_name);
        e.put_u32(self.uid);
        e.put_u32(self.gid);
        e.put_len(self.gids.len());
        for g in &self.gids {
            e.put_u32(*g);
        }
    }
}

/// The caller's credentials, as far as this server understands them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    Sys(AuthSys),
}

impl Credential {
    /// Encodes as an opaque_auth.
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            Credential::None => {
                e.put_u32(AUTH_NONE);
                e.put_opaque(&[]);
            }
            Credential::Sys(sys) => {
                e.put_u32(AUTH_SYS);
                let mut body = Encoder::new();
                sys.encode(&mut body);
                e.put_opaque(body.as_slice());
            }
        }
    }
}

/// A decoded call header. `args` is the procedure's argument bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    pub xid: u32,
    pub program: u32,
    pub version: u32,
    pub procedure: u32,
    pub credential: Credential,
    pub args: &'a [u8],
}

/// What went wrong with a call header; each variant maps to the reply the server must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The record is not a call we can answer (too short for an xid, or a REPLY message):
    /// nothing can be sent back.
    Unanswerable(XdrError),
    /// Anything else is answered with this reply body.
    Reply { xid: u32, reply: ReplyBody },
}

/// The body of an RPC reply after the xid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// MSG_ACCEPTED / SUCCESS; the procedure results follow the header.
    Success,
    ProgUnavail,
    ProgMismatch {
        low: u32,
        high: u32,
    },
    ProcUnavail,
    GarbageArgs,
    SystemErr,
    /// MSG_DENIED / RPC_MISMATCH.
    RpcMismatch {
        low: u32,
        high: u32,
    },
    /// MSG_DENIED / AUTH_ERROR.
    AuthError(AuthStat),
}

impl ReplyBody {
    /// Writes `xid`, REPLY and this body; for [`ReplyBody::Success`] the caller appends results.
    pub fn encode(&self, xid: u32, e: &mut Encoder) {
        e.put_u32(xid);
        e.put_u32(MSG_REPLY);
        let accepted = |e: &mut Encoder, stat: AcceptStat| {
            e.put_u32(0); // MSG_ACCEPTED
            // Verifier: AUTH_NONE, since we never use a flavor with server verifiers.
            e.put_u32(AUTH_NONE);
            e.put_opaque(&[]);
            e.put_u32(stat as u32);
        };
        match self {
            ReplyBody::Success => accepted(e, AcceptStat::Success),
            ReplyBody::ProgUnavail => accepted(e, AcceptStat::ProgUnavail),
            ReplyBody::ProgMismatch { low, high } => {
                accepted(e, AcceptStat::ProgMismatch);
                e.put_u32(*low);
                e.put_u32(*high);
            }
            ReplyBody::ProcUnavail => accepted(e, AcceptStat::ProcUnavail),
            ReplyBody::GarbageArgs => accepted(e, AcceptStat::GarbageArgs),
            ReplyBody::SystemErr => accepted(e, AcceptStat::SystemErr),
            ReplyBody::RpcMismatch { low, high } => {
                e.put_u32(1); // MSG_DENIED
                e.put_u32(0); // RPC_MISMATCH
                e.put_u32(*low);
                e.put_u32(*high);
            }
            ReplyBody::AuthError(stat) => {
                e.put_u32(1); // MSG_DENIED
                e.put_u32(1); // AUTH_ERROR
                e.put_u32(*stat as u32);
            }
        }
    }

    /// A complete reply message with no results (for error replies).
    pub fn to_message(&self, xid: u32) -> Vec<u8> {
        let mut e = Encoder::with_capacity(32);
        self.encode(xid, &mut e);
        e.into_vec()
    }
}

fn garbage(xid: u32) -> CallError {
    CallError::Reply {
        xid,
        reply: ReplyBody::GarbageArgs,
    }
}

fn auth_error(xid: u32, stat: AuthStat) -> CallError {
    CallError::Reply {
        xid,
        reply: ReplyBody::AuthError(stat),
    }
}

/// Decodes the credential body of `flavor`. Unknown flavors and malformed bodies are BADCRED,
/// which is what Linux's sunrpc answers when no handler exists for a flavor.
fn decode_credential(xid: u32, flavor: u32, body: &[u8]) -> Result<Credential, CallError> {
    match flavor {
        AUTH_NONE => Ok(Credential::None),
        AUTH_SYS => {
            let mut d = Decoder::new(body);
            let sys = AuthSys::decode(&mut d).map_err(|_| auth_error(xid, AuthStat::BadCred))?;
            d.finish().map_err(|_| auth_error(xid, AuthStat::BadCred))?;
            Ok(Credential::Sys(sys))
        }
        _ => Err(auth_error(xid, AuthStat::BadCred)),
    }
}

/// Decodes and validates a call header for NFSv4. The checks run in the order of Linux's
/// `svc_process`: RPC version, credentials, program, version, procedure.
pub fn decode_call(record: &[u8]) -> Result<Call<'_>, CallError> {
    let mut d = Decoder::new(record);
    let xid = d.u32().map_err(CallError::Unanswerable)?;
    match d.u32().map_err(CallError::Unanswerable)? {
        MSG_CALL => {}
        other => {
            return Err(CallError::Unanswerable(XdrError::BadDiscriminant {
                what: "msg_type",
                value: other,
            }));
        }
    }
    let rpcvers = d.u32().map_err(|_| garbage(xid))?;
    if rpcvers != RPC_VERSION {
        return Err(CallError::Reply {
            xid,
            reply: ReplyBody::RpcMismatch {
                low: RPC_VERSION,
                high: RPC_VERSION,
            },
        });
    }
    let program = d.u32().map_err(|_| garbage(xid))?;
    let version = d.u32().map_err(|_| garbage(xid))?;
    let procedure = d.u32().map_err(|_| garbage(xid))?;
    let cred_flavor = d.u32().map_err(|_| garbage(xid))?;
    let cred_body = d.opaque(MAX_AUTH_BYTES, "cred").map_err(|e| match e {
        XdrError::LimitExceeded { .. } => auth_error(xid, AuthStat::BadCred),
        _ => garbage(xid),
    })?;
    let _verf_flavor = d.u32().map_err(|_| garbage(xid))?;
    d.opaque(MAX_AUTH_BYTES, "verf").map_err(|e| match e {
        XdrError::LimitExceeded { .. } => auth_error(xid, AuthStat::BadVerf),
        _ => garbage(xid),
    })?;
    let credential = decode_credential(xid, cred_flavor, cred_body)?;
    if program != NFS_PROGRAM {
        return Err(CallError::Reply {
            xid,
            reply: ReplyBody::ProgUnavail,
        });
    }
    if version != NFS_V4 {
        return Err(CallError::Reply {
            xid,
            reply: ReplyBody::ProgMismatch {
                low: NFS_V4,
                high: NFS_V4,
            },
        });
    }
    if procedure != PROC_NULL && procedure != PROC_COMPOUND {
        return Err(CallError::Reply {
            xid,
            reply: ReplyBody::ProcUnavail,
        });
    }
    Ok(Call {
        xid,
        program,
        version,
        procedure,
        credential,
        args: d.rest(),
    })
}

/// Encodes a call header (used by tests and by client-side tooling).
pub fn encode_call_header(
    xid: u32,
    program: u32,
    version: u32,
    procedure: u32,
    credential: &Credential,
    e: &mut Encoder,
) {
    e.put_u32(xid);
    e.put_u32(MSG_CALL);
    e.put_u32(RPC_VERSION);
    e.put_u32(program);
    e.put_u32(version);
    e.put_u32(procedure);
    credential.encode(e);
    e.put_u32(AUTH_NONE);
    e.put_opaque(&[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys() -> Credential {
        Credential::Sys(AuthSys {
            stamp: 1,
            machine_name: b"guest".to_vec(),
            uid: 0,
            gid: 0,
            gids: vec![0, 10],
        })
    }

    fn call(program: u32, version: u32, procedure: u32, cred: &Credential) -> Vec<u8> {
        let mut e = Encoder::new();
        encode_call_header(9, program, version, procedure, cred, &mut e);
        e.put_u32(0xdead_beef);
        e.into_vec()
    }

    #[test]
    fn decodes_auth_sys_compound_call() {
        let rec = call(NFS_PROGRAM, 4, PROC_COMPOUND, &sys());
        let c = decode_call(&rec).unwrap();
        assert_eq!(c.xid, 9);
        assert_eq!(c.procedure, PROC_COMPOUND);
        assert_eq!(c.credential, sys());
        assert_eq!(c.args, &0xdead_beefu32.to_be_bytes());
    }

    #[test]
    fn error_replies() {
        let reply = |rec: &[u8]| match decode_call(rec) {
            Err(CallError::Reply { reply, .. }) => reply,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            reply(&call(100_005, 4, 1, &Credential::None)),
            ReplyBody::ProgUnavail
        );
        assert_eq!(
            reply(&call(NFS_PROGRAM, 3, 1, &Credential::None)),
            ReplyBody::ProgMismatch { low: 4, high: 4 }
        );
        assert_eq!(
            reply(&call(NFS_PROGRAM, 4, 2, &Credential::None)),
            ReplyBody::ProcUnavail
        );
        let mut rec = call(NFS_PROGRAM, 4, 1, &Credential::None);
        rec[8..12].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(reply(&rec), ReplyBody::RpcMismatch { low: 2, high: 2 });
        let mut rec = call(NFS_PROGRAM, 4, 1, &Credential::None);
        rec[24..28].copy_from_slice(&RPCSEC_GSS.to_be_bytes());
        assert_eq!(reply(&rec), ReplyBody::AuthError(AuthStat::BadCred));
        // Truncated after the program number.
        let rec = call(NFS_PROGRAM, 4, 1, &Credential::None);
        assert_eq!(reply(&rec[..16]), ReplyBody::GarbageArgs);
        assert!(matches!(
            decode_call(&rec[..3]),
            Err(CallError::Unanswerable(_))
        ));
    }

    #[test]
    fn auth_sys_with_too_many_gids_is_badcred() {
        let mut body = Encoder::new();
        body.put_u32(0);
        body.put_opaque(b"m");
        body.put_u32(0);
        body.put_u32(0);
        body.put_len(17);
        for g in 0..17 {
            body.put_u32(g);
        }
        let mut e = Encoder::new();
        for w in [1, MSG_CALL, 2, NFS_PROGRAM, 4, 1, AUTH_SYS] {
            e.put_u32(w);
        }
        e.put_opaque(body.as_slice());
        e.put_u32(AUTH_NONE);
        e.put_opaque(&[]);
        assert_eq!(
            decode_call(e.as_slice()),
            Err(CallError::Reply {
                xid: 1,
                reply: ReplyBody::AuthError(AuthStat::BadCred)
            })
        );
    }

    #[test]
    fn reply_golden_bytes() {
        let words = |v: Vec<u8>| -> Vec<u32> {
            v.chunks(4)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
                .collect()
        };
        assert_eq!(
            words(ReplyBody::ProgMismatch { low: 4, high: 4 }.to_message(5)),
            vec![5, 1, 0, 0, 0, 2, 4, 4]
        );
        assert_eq!(
            words(ReplyBody::AuthError(AuthStat::TooWeak).to_message(5)),
            vec![5, 1, 1, 1, 5]
        );
        assert_eq!(
            words(ReplyBody::RpcMismatch { low: 2, high: 2 }.to_message(5)),
            vec![5, 1, 1, 0, 2, 2]
        );
        assert_eq!(
            words(ReplyBody::GarbageArgs.to_message(5)),
            vec![5, 1, 0, 0, 0, 4]
        );
    }
}
