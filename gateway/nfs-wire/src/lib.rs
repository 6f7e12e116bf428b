//! The NFS v4.1 wire layer of the bucketfs gateway: pure encoding and decoding, no I/O.
//!
//! Layers, bottom up:
//! - [`xdr`]: RFC 4506 primitives over `&[u8]` / `Vec<u8>` with bounded allocation.
//! - [`record`]: RFC 5531 record marking (stream → records, records → stream).
//! - [`rpc`]: ONC RPC call headers, AUTH_NONE/AUTH_SYS credentials, reply headers.
//! - [`nfs`]: NFSv4.1 types, attributes, operation arguments/results, COMPOUND framing.
//! - [`dispatch`]: one record in, one decision out (dispatch, answer, or drop).
//!
//! Every decoder is total: hostile input yields an error value, never a panic, and never an
//! allocation larger than the input itself (see README.md for the bounds).

pub mod dispatch;
pub mod nfs;
pub mod record;
pub mod rpc;
pub mod xdr;

pub use dispatch::{Classified, classify_call, null_reply, success_reply};
pub use record::{RecordError, RecordReader, encode_record};
