#![no_main]
//! Classifies an arbitrary record as an RPC call (header, credentials, COMPOUND header).

use bucketfs_nfs_wire::classify_call;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify_call(data);
});
