#![no_main]
//! Decodes an arbitrary fattr4 and interprets it as attribute values and as SETATTR input.

use bucketfs_nfs_wire::nfs::{Fattr, Xdr};
use bucketfs_nfs_wire::xdr::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(fattr) = Fattr::decode(&mut Decoder::new(data)) {
        let _ = fattr.decode_attrs();
        let _ = fattr.settable();
    }
});
