//! Property tests: decoding arbitrary or mutated bytes never panics and never allocates more
//! than a small multiple of the input. A counting global allocator measures every allocation
//! made by the decoding thread.

// A global allocator can only be written with `unsafe impl GlobalAlloc`; it forwards to
// `System` unchanged and only adds up requested sizes.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bucketfs_nfs_wire::nfs::ops::{NfsArgOp, NfsResOp};
use bucketfs_nfs_wire::nfs::{CompoundArgs, CompoundBody, Fattr, Xdr};
use bucketfs_nfs_wire::rpc::decode_call;
use bucketfs_nfs_wire::xdr::{Decoder, Encoder};
use bucketfs_nfs_wire::{RecordReader, classify_call};
use proptest::prelude::*;

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // try_with: the slot may be gone while the thread is being torn down.
    let _ = ALLOCATED.try_with(|c| c.set(c.get().saturating_add(bytes)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated by `f` on this thread (the result is dropped after measuring).
fn allocated_by<T>(f: impl FnOnce() -> T) -> usize {
    let before = ALLOCATED.with(Cell::get);
    let out = f();
    let after = ALLOCATED.with(Cell::get);
    drop(out);
    after - before
}

/// Allowed allocation: a decoded operation is a Rust enum much larger than its 4-byte minimum
/// wire form, so the bound is per input byte; the constant covers fixed-size work.
const PER_INPUT_BYTE: usize = 64;
const FIXED: usize = 4096;

fn bound(input: usize) -> usize {
    PER_INPUT_BYTE * input + FIXED
}

fn rpc_compound(args: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    for w in [1u32, 0, 2, 100_003, 4, 1, 0, 0, 0, 0] {
        e.put_u32(w);
    }
    let mut v = e.into_vec();
    v.extend_from_slice(args);
    v
}

fn valid_compounds() -> Vec<Vec<u8>> {
    common::sample_args()
        .into_iter()
        .map(|op| {
            let mut e = Encoder::new();
            CompoundArgs {
                tag: vec![],
                minor_version: 1,
                body: CompoundBody::Ops {
                    ops: vec![NfsArgOp::PutRootFh, op],
                    stop: None,
                },
            }
            .encode(&mut e);
            e.into_vec()
        })
        .collect()
}

fn valid_results() -> Vec<Vec<u8>> {
    common::sample_results()
        .into_iter()
        .map(|r| {
            let mut e = Encoder::new();
            r.encode(&mut e);
            e.into_vec()
        })
        .collect()
}

/// Overwrites the 4 bytes at a word-aligned position with `word`; length fields are words, so
/// this reaches hostile lengths far more often than random bytes do.
fn mutate(mut bytes: Vec<u8>, pos: usize, word: u32) -> Vec<u8> {
    if bytes.len() >= 4 {
        let at = (pos % (bytes.len() / 4)) * 4;
        bytes[at..at + 4].copy_from_slice(&word.to_be_bytes());
    }
    bytes
}

fn hostile_word() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0x0100_0000),
        0u32..300,
        any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn record_reader_is_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..64,
        max in 0usize..8192,
    ) {
        let alloc = allocated_by(|| {
            let mut r = RecordReader::new(max);
            for piece in data.chunks(chunk) {
                if r.feed(piece).is_err() {
                    break;
                }
                prop_assert!(r.buffered() <= data.len());
                while let Some(rec) = r.next_record() {
                    prop_assert!(rec.len() <= max);
                }
            }
            Ok(())
        });
        prop_assert!(alloc <= bound(data.len()), "{alloc} bytes for {} input", data.len());
    }

    #[test]
    fn call_decoder_is_bounded(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let alloc = allocated_by(|| (decode_call(&data).is_ok(), classify_call(&data)));
        prop_assert!(alloc <= bound(data.len()));
    }

    #[test]
    fn mutated_calls_are_bounded(
        which in any::<prop::sample::Index>(),
        pos in any::<usize>(),
        word in hostile_word(),
    ) {
        let calls = valid_compounds();
        let rec = mutate(rpc_compound(which.get::<Vec<u8>>(&calls)), pos, word);
        let alloc = allocated_by(|| classify_call(&rec));
        prop_assert!(alloc <= bound(rec.len()));
    }

    #[test]
    fn compound_decoder_is_bounded(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let alloc = allocated_by(|| CompoundArgs::decode(&data));
        prop_assert!(alloc <= bound(data.len()));
    }

    #[test]
    fn mutated_compounds_are_bounded(
        which in any::<prop::sample::Index>(),
        pos in any::<usize>(),
        word in hostile_word(),
    ) {
        let compounds = valid_compounds();
        let data = mutate(which.get(&compounds).clone(), pos, word);
        let alloc = allocated_by(|| CompoundArgs::decode(&data));
        prop_assert!(alloc <= bound(data.len()));
    }

    #[test]
    fn mutated_results_are_bounded(
        which in any::<prop::sample::Index>(),
        pos in any::<usize>(),
        word in hostile_word(),
    ) {
        let results = valid_results();
        let data = mutate(which.get(&results).clone(), pos, word);
        let alloc = allocated_by(|| NfsResOp::decode(&mut Decoder::new(&data)));
        prop_assert!(alloc <= bound(data.len()));
    }

    #[test]
    fn fattr_decoder_is_bounded(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let alloc = allocated_by(|| {
            Fattr::decode(&mut Decoder::new(&data)).map(|f| (f.decode_attrs(), f.settable()))
        });
        prop_assert!(alloc <= bound(data.len()));
    }

    #[test]
    fn mutated_compounds_reencode_consistently(
        which in any::<prop::sample::Index>(),
        pos in any::<usize>(),
        word in hostile_word(),
    ) {
        // Whatever the change, decoding yields a value (an Ok body or a GARBAGE_ARGS error),
        // and a compound that still decodes completely re-encodes to the same operations.
        let compounds = valid_compounds();
        let data = mutate(which.get(&compounds).clone(), pos, word);
        if let Ok(args) = CompoundArgs::decode(&data)
            && let CompoundBody::Ops { stop: None, .. } = &args.body
        {
            let mut e = Encoder::new();
            args.encode(&mut e);
            let again = CompoundArgs::decode(e.as_slice()).expect("re-encoded compound decodes");
            prop_assert_eq!(again.body, args.body);
        }
    }
}

#[test]
fn hostile_lengths_allocate_nothing_large() {
    // opaque length 0xffffffff inside PUTFH; op count 0xffffffff; bitmap of 0x7fffffff words.
    let cases: Vec<Vec<u32>> = vec![
        vec![0, 1, 1, 22, u32::MAX],
        vec![0, 1, u32::MAX, 24],
        vec![0, 1, 1, 9, 0x7fff_ffff, 1],
        vec![0, 1, 1, 55, 0x4000_0000],
        vec![u32::MAX],
    ];
    for words in cases {
        let mut e = Encoder::new();
        for w in &words {
            e.put_u32(*w);
        }
        let data = e.into_vec();
        let alloc = allocated_by(|| CompoundArgs::decode(&data));
        assert!(alloc <= 1024, "{words:x?} allocated {alloc}");
    }
    assert!(std::mem::size_of::<NfsArgOp>() <= PER_INPUT_BYTE * 4);
}
