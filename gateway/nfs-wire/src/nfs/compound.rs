//! COMPOUND4args / COMPOUND4res framing.
//!
//! Decoding follows RFC 8881 §16.2.3 and Linux nfsd: a minor version other than 1 yields
//! NFS4ERR_MINOR_VERS_MISMATCH with no results and the operations are not parsed; operations are
//! decoded in order until one fails — an unknown opcode (OP_ILLEGAL), an opcode that is not part
//! of minor version 1 (OP_ILLEGAL), a known operation the server does not model (decoded as
//! [`NfsArgOp::NotSupported`]) or arguments that do not parse (BADXDR, or INVAL/NAMETOOLONG for
//! bad names). Decoding stops there because processing stops there. Only a header that cannot be
//! read at all (tag, minor version, op count, or an opcode word) makes the whole call
//! GARBAGE_ARGS.

use crate::nfs::NfsStatus;
use crate::nfs::attr::Fattr;
use crate::nfs::ops::{DirEntry, NfsArgOp, NfsResOp, Opcode, ReaddirResOk};
use crate::nfs::types::{Component, DecodeError, Verifier, Xdr};
use crate::xdr::{Decoder, Encoder, XdrError};

/// The only minor version this server speaks.
pub const MINOR_VERSION: u32 = 1;
/// Operations per COMPOUND this decoder accepts; the Linux client never sends more than
/// `ca_maxoperations` (8 in practice). Longer compounds fail with NFS4ERR_TOO_MANY_OPS.
pub const MAX_COMPOUND_OPS: usize = 128;
/// The tag is echoed verbatim; this bounds what we keep.
pub const MAX_TAG_BYTES: usize = 1024;

/// Why an operation stopped the decoding of its COMPOUND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFailure {
    /// The opcode to report: `Opcode::Illegal` for unknown opcodes.
    pub opcode: Opcode,
    pub status: NfsStatus,
}

impl OpFailure {
    /// The result entry to put in the reply for this failure.
    pub fn result(&self) -> NfsResOp {
        NfsResOp::error(self.opcode, self.status)
    }
}

/// What the COMPOUND asks for, once the header parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompoundBody {
    /// Operations decoded in order, and the failure that stopped decoding, if any. The server
    /// executes `ops` (stopping at its own first failure) and, if it got through all of them,
    /// appends `stop.result()`.
    Ops {
        ops: Vec<NfsArgOp>,
        stop: Option<OpFailure>,
    },
    /// minorversion ≠ 1: reply NFS4ERR_MINOR_VERS_MISMATCH with an empty result array.
    MinorVersionMismatch,
    /// More than [`MAX_COMPOUND_OPS`] operations: reply NFS4ERR_TOO_MANY_OPS, empty results.
    TooManyOps,
}

/// COMPOUND4args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundArgs {
    /// utf8str_cs, but only echoed back, so kept as bytes.
    pub tag: Vec<u8>,
    pub minor_version: u32,
    pub body: CompoundBody,
}

impl CompoundArgs {
    /// Decodes the procedure arguments of a COMPOUND call. An `Err` means GARBAGE_ARGS.
    pub fn decode(args: &[u8]) -> Result<Self, XdrError> {
        let mut d = Decoder::new(args);
        let tag = d.opaque_vec(MAX_TAG_BYTES, "tag")?;
        let minor_version = d.u32()?;
        let count = d.u32()? as usize;
        if minor_version != MINOR_VERSION {
            return Ok(Self {
                tag,
                minor_version,
                body: CompoundBody::MinorVersionMismatch,
            });
        }
        if count > MAX_COMPOUND_OPS {
            return Ok(Self {
                tag,
                minor_version,
                body: CompoundBody::TooManyOps,
            });
        }
        // Every op is at least its 4-byte opcode; capacity never exceeds what the input holds.
        let mut ops = Vec::with_capacity(count.min(d.remaining() / 4));
        let mut stop = None;
        for _ in 0..count {
            let code = d.u32()?;
            let opcode = match Opcode::from_u32(code) {
                Some(op) if op.in_minor_version_1() && op != Opcode::Illegal => op,
                _ => {
                    stop = Some(OpFailure {
                        opcode: Opcode::Illegal,
                        status: NfsStatus::OpIllegal,
                    });
                    break;
                }
            };
            match NfsArgOp::decode_args(opcode, &mut d) {
                Ok(NfsArgOp::NotSupported(op)) => {
                    stop = Some(OpFailure {
                        opcode: op,
                        status: NfsStatus::NotSupp,
                    });
                    break;
                }
                Ok(op) => ops.push(op),
                Err(e) => {
                    stop = Some(OpFailure {
                        opcode,
                        status: e.status(),
                    });
                    break;
                }
            }
        }
        Ok(Self {
            tag,
            minor_version,
            body: CompoundBody::Ops { ops, stop },
        })
    }

    /// Encodes a well-formed COMPOUND (client side and tests). For `Ops`, `stop` is ignored;
    /// for the other bodies an empty op list is written.
    pub fn encode(&self, e: &mut Encoder) {
        e.put_opaque(&self.tag);
        e.put_u32(self.minor_version);
        match &self.body {
            CompoundBody::Ops { ops, .. } => {
                e.put_len(ops.len());
                for op in ops {
                    op.encode(e);
                }
            }
            CompoundBody::MinorVersionMismatch | CompoundBody::TooManyOps => e.put_u32(0),
        }
    }
}

/// COMPOUND4res.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundRes {
    pub status: NfsStatus,
    pub tag: Vec<u8>,
    pub results: Vec<NfsResOp>,
}

impl CompoundRes {
    /// A reply whose status is that of its last result (NFS4_OK when there are none), as
    /// RFC 8881 §16.2.3 requires.
    pub fn new(tag: Vec<u8>, results: Vec<NfsResOp>) -> Self {
        let status = results.last().map_or(NfsStatus::Ok, NfsResOp::status);
        Self {
            status,
            tag,
            results,
        }
    }

    /// A reply with a status and no results (MINOR_VERS_MISMATCH, TOO_MANY_OPS).
    pub fn empty(tag: Vec<u8>, status: NfsStatus) -> Self {
        Self {
            status,
            tag,
            results: Vec::new(),
        }
    }

    pub fn encode(&self, e: &mut Encoder) {
        self.status.encode(e);
        e.put_opaque(&self.tag);
        e.put_len(self.results.len());
        for r in &self.results {
            r.encode(e);
        }
    }

    /// Decodes a reply (client side and tests).
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let status = NfsStatus::decode(d)?;
        let tag = d.opaque_vec(MAX_TAG_BYTES, "tag")?;
        let results = d.array(MAX_COMPOUND_OPS, 8, "resarray", NfsResOp::decode)?;
        Ok(Self {
            status,
            tag,
            results,
        })
    }
}

/// Fixed bytes of a READDIR4resok: cookieverf, end-of-list word, eof.
const READDIR_FIXED: usize = 8 + 4 + 4;

/// The entry did not fit in the client's budget; nothing was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExhausted;

/// Builds a READDIR4resok within the client's `maxcount` (bytes of the whole READDIR4resok)
/// and `dircount` (bytes of cookies and names; 0 means no separate limit), so the server can
/// stop adding entries as soon as one no longer fits.
#[derive(Debug, Clone)]
pub struct ReaddirBuilder {
    cookieverf: Verifier,
    maxcount: usize,
    dircount: usize,
    used: usize,
    dir_used: usize,
    entries: Vec<DirEntry>,
    full: bool,
}

impl ReaddirBuilder {
    pub fn new(cookieverf: Verifier, dircount: u32, maxcount: u32) -> Self {
        Self {
            cookieverf,
            maxcount: maxcount as usize,
            dircount: dircount as usize,
            used: READDIR_FIXED,
            dir_used: 0,
            entries: Vec::new(),
            full: false,
        }
    }

    /// Adds an entry if it fits in both budgets. Once an entry has been refused, every later
    /// one is refused too, so the listing has no holes.
    pub fn push(
        &mut self,
        cookie: u64,
        name: Component,
        attrs: Fattr,
    ) -> Result<(), BudgetExhausted> {
        let entry = DirEntry {
            cookie,
            name,
            attrs,
        };
        let len = entry.xdr_len();
        let dir_len = entry.dircount_len();
        // dircount is a hint (RFC 8881 §18.23.3); the first entry is always allowed against it.
        let over_dircount = self.dircount != 0
            && !self.entries.is_empty()
            && self.dir_used + dir_len > self.dircount;
        if self.full || self.used + len > self.maxcount || over_dircount {
            self.full = true;
            return Err(BudgetExhausted);
        }
        self.used += len;
        self.dir_used += dir_len;
        self.entries.push(entry);
        Ok(())
    }

    /// Encoded size of the result so far.
    pub fn encoded_len(&self) -> usize {
        self.used
    }

    /// Finishes the listing. `eof` is whether the directory has no entries after the last one
    /// offered; it is cleared if an entry was refused. If not even one entry fit, the reply
    /// must be NFS4ERR_TOOSMALL (RFC 8881 §18.23.4).
    pub fn finish(self, eof: bool) -> Result<ReaddirResOk, NfsStatus> {
        if self.full && self.entries.is_empty() {
            return Err(NfsStatus::TooSmall);
        }
        if self.used > self.maxcount {
            // Only reachable when maxcount cannot hold even an empty listing.
            return Err(NfsStatus::TooSmall);
        }
        Ok(ReaddirResOk {
            cookieverf: self.cookieverf,
            entries: self.entries,
            eof: eof && !self.full,
        })
    }
}
