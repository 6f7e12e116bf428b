#![no_main]
//! Feeds arbitrary bytes, split at a data-chosen chunk size, through the record reader.

use bucketfs_nfs_wire::RecordReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut reader = RecordReader::new(64 * 1024);
    for piece in rest.chunks(usize::from(chunk).max(1)) {
        if reader.feed(piece).is_err() {
            break;
        }
        while let Some(record) = reader.next_record() {
            assert!(record.len() <= 64 * 1024);
        }
        assert!(reader.buffered() <= rest.len());
    }
});
