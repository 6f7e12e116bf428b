#![no_main]
//! Decodes arbitrary COMPOUND4args and re-encodes what decoded.

use bucketfs_nfs_wire::nfs::{CompoundArgs, CompoundBody};
use bucketfs_nfs_wire::xdr::Encoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(args) = CompoundArgs::decode(data) {
        if let CompoundBody::Ops { stop: None, .. } = &args.body {
            // A fully decoded compound re-encodes to a decodable one with the same ops.
            let mut e = Encoder::new();
            args.encode(&mut e);
            let again = CompoundArgs::decode(e.as_slice()).expect("re-encoded compound decodes");
            assert_eq!(again.body, args.body);
        }
    }
});
