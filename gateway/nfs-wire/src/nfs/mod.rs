//! NFSv4.1 protocol types (RFC 8881, XDR from RFC 5662).

pub mod attr;
pub mod compound;
pub mod ops;
pub mod status;
pub mod types;

pub use attr::{Attr, AttrEncoder, AttrError, Fattr, SetAttrs, SetTime};
pub use compound::{
    BudgetExhausted, CompoundArgs, CompoundBody, CompoundRes, OpFailure, ReaddirBuilder,
};
pub use ops::{NfsArgOp, NfsResOp, Opcode};
pub use status::NfsStatus;
pub use types::{
    Bitmap, ChangeInfo, Component, DecodeError, FileHandle, Fsid, NfsFileType, NfsTime, StateId,
    StateOwner, Xdr,
};
