//! Behaviour of `BlockCache`, each test run on `SimDisk` and on `FsDisk`.

mod common;

use bucketfs_block_cache::{BlockCache, CacheConfig, CacheError, DiskFile, LocalDisk};
use common::{BS, cfg, key, pattern};

const B: u64 = BS as u64;

fn files<D: LocalDisk>(disk: &D, prefix: &str) -> Vec<String> {
    disk.list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Flips one byte through the seam itself, as media corruption would.
fn corrupt<D: LocalDisk>(disk: &D, name: &str, offset: u64) {
    let f = disk.open(name).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(offset, &mut b).unwrap();
    f.write_all_at(offset, &[b[0] ^ 0x40]).unwrap();
}

on_both_disks!(
    hit_and_miss_by_change_counter,
    block_length_is_checked,
    lru_evicts_least_recently_used_within_the_byte_bound,
    dirty_blocks_are_never_evicted,
    dirty_limit_asks_for_a_flush,
    partial_block_writes_accumulate_and_read_back,
    first_dirty_write_is_seeded_from_the_base_block,
    mark_clean_rekeys_complete_blocks_to_the_new_change,
    base_mismatch_is_refused,
    corrupt_clean_block_is_a_miss_and_is_dropped,
    corrupt_dirty_block_is_reported,
    restart_keeps_valid_clean_blocks_and_drops_the_rest,
    restart_evicts_down_to_a_smaller_capacity,
    invalidate_drops_one_inode_only,
);

fn hit_and_miss_by_change_counter<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(8, 8)).unwrap();
    let data = pattern(1, BS as usize);
    cache.put_clean(key(5, 3, 0), &data).unwrap();

    assert_eq!(cache.get(&key(5, 3, 0)).unwrap(), data);
    assert_eq!(
        cache.get(&key(5, 4, 0)),
        None,
        "a newer change counter must miss"
    );
    assert_eq!(
        cache.get(&key(5, 2, 0)),
        None,
        "an older change counter must miss"
    );
    assert_eq!(cache.get(&key(5, 3, 1)), None);
    assert_eq!(cache.get(&key(6, 3, 0)), None);
    let mut other_fs = key(5, 3, 0);
    other_fs.fs = 2;
    assert_eq!(cache.get(&other_fs), None);

    let s = cache.stats();
    assert_eq!(
        (s.hits, s.misses, s.clean_blocks, s.clean_bytes),
        (1, 5, 1, B)
    );
    // contains_clean answers from the index without counting a hit or a miss.
    assert!(cache.contains_clean(&key(5, 3, 0)));
    assert!(!cache.contains_clean(&key(5, 4, 0)));
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 5));

    // Replacing a block keeps one copy and serves the new bytes.
    let data2 = pattern(2, BS as usize);
    cache.put_clean(key(5, 3, 0), &data2).unwrap();
    assert_eq!(cache.get(&key(5, 3, 0)).unwrap(), data2);
    assert_eq!(cache.stats().clean_blocks, 1);
    assert_eq!(files(cache.disk(), "c-").len(), 1);
}

fn block_length_is_checked<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(8, 8)).unwrap();
    // The last block of a file may be short.
    cache.put_clean(key(1, 1, 7), &pattern(3, 10)).unwrap();
    assert_eq!(cache.get(&key(1, 1, 7)).unwrap(), pattern(3, 10));
    assert!(matches!(
        cache.put_clean(key(1, 1, 0), &[]),
        Err(CacheError::BadBlockLength { len: 0, .. })
    ));
    assert!(matches!(
        cache.put_clean(key(1, 1, 0), &pattern(1, BS as usize + 1)),
        Err(CacheError::BadBlockLength { .. })
    ));
    let bad = CacheConfig {
        block_size: 0,
        ..CacheConfig::default()
    };
    assert!(matches!(
        BlockCache::open(bucketfs_block_cache::SimDisk::new(), bad),
        Err(CacheError::Config(_))
    ));
}

fn lru_evicts_least_recently_used_within_the_byte_bound<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(3, 8)).unwrap();
    for i in 0..3 {
        cache
            .put_clean(key(1, 1, i), &pattern(i, BS as usize))
            .unwrap();
    }
    assert!(cache.get(&key(1, 1, 0)).is_some()); // 0 is now the most recent; 1 the oldest.
    cache
        .put_clean(key(1, 1, 3), &pattern(3, BS as usize))
        .unwrap();
    assert_eq!(
        cache.get(&key(1, 1, 1)),
        None,
        "the least recently used block goes first"
    );
    for i in [0, 2, 3] {
        assert_eq!(cache.get(&key(1, 1, i)).unwrap(), pattern(i, BS as usize));
    }
    // Recency is now 0, 2, 3: a new block evicts 0.
    cache
        .put_clean(key(1, 1, 4), &pattern(4, BS as usize))
        .unwrap();
    assert_eq!(cache.get(&key(1, 1, 0)), None);

    // The bound is in bytes: two short blocks fit where one full block left.
    let half = BS as usize / 2;
    cache.put_clean(key(2, 1, 0), &pattern(20, half)).unwrap();
    cache.put_clean(key(2, 1, 1), &pattern(21, half)).unwrap();
    let s = cache.stats();
    assert_eq!(s.evictions, 3);
    assert_eq!(s.clean_bytes, 3 * B);
    assert_eq!(s.clean_blocks, 4);
    assert_eq!(
        files(cache.disk(), "c-").len(),
        4,
        "evicted blocks leave the disk"
    );
    assert_eq!(
        cache.get(&key(1, 1, 2)),
        None,
        "2 was the oldest when room was needed"
    );
    assert!(cache.get(&key(1, 1, 3)).is_some());
    assert!(cache.get(&key(1, 1, 4)).is_some());
}

fn dirty_blocks_are_never_evicted<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(2, 4)).unwrap();
    let dirty = pattern(9, 3 * BS as usize);
    cache.write_dirty(1, 10, 0, 0, &dirty).unwrap();
    for i in 0..6 {
        cache
            .put_clean(key(20, 1, i), &pattern(i, BS as usize))
            .unwrap();
    }
    let s = cache.stats();
    assert_eq!(s.dirty_bytes, 3 * B);
    assert_eq!(s.dirty_blocks, 3);
    assert!(s.clean_bytes <= 2 * B);
    assert_eq!(s.evictions, 4);
    assert_eq!(cache.read_dirty(1, 10, 0..3 * B).unwrap(), dirty);
    assert_eq!(files(cache.disk(), "d-").len(), 3);
}

fn dirty_limit_asks_for_a_flush<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(4, 2)).unwrap();
    cache
        .write_dirty(1, 1, 0, 0, &pattern(1, BS as usize))
        .unwrap();
    cache.write_dirty(1, 2, 0, 100, &pattern(2, 50)).unwrap();
    let before = cache.stats();
    assert_eq!(before.dirty_bytes, B + 150);

    // A write that would pass the limit changes nothing, even the blocks that would fit.
    let err = cache
        .write_dirty(1, 3, 0, B - 10, &pattern(3, BS as usize))
        .unwrap_err();
    assert!(
        matches!(err, CacheError::DirtyLimit { needed, limit } if needed == 3 * B + 140 && limit == 2 * B)
    );
    assert_eq!(cache.stats(), before);
    assert_eq!(cache.dirty_ranges(1, 3), None);

    // Overwriting known bytes needs no room.
    cache
        .write_dirty(1, 1, 0, 0, &pattern(4, BS as usize))
        .unwrap();
    // Growing inside the limit is fine.
    cache
        .write_dirty(1, 2, 0, 150, &pattern(5, BS as usize - 150))
        .unwrap();
    assert_eq!(cache.stats().dirty_bytes, 2 * B);
    assert!(matches!(
        cache.write_dirty(1, 2, 0, B, &[1]),
        Err(CacheError::DirtyLimit { .. })
    ));

    // A flush frees the room.
    let snap = cache.dirty_ranges(1, 1).unwrap();
    cache.mark_clean(1, 1, snap.seq, 1, B);
    assert_eq!(cache.stats().dirty_bytes, B);
    cache.write_dirty(1, 2, 0, B, &[1]).unwrap();
}

fn partial_block_writes_accumulate_and_read_back<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(4, 8)).unwrap();
    let mut model = vec![0u8; 3 * BS as usize];
    let mut write = |off: u64, data: Vec<u8>| {
        cache.write_dirty(1, 7, 0, off, &data).unwrap();
        model[off as usize..off as usize + data.len()].copy_from_slice(&data);
    };
    write(100, pattern(1, 100));
    write(150, pattern(2, 150)); // overlaps the first write
    write(B - 96, pattern(3, 200)); // crosses the block boundary
    write(B + 904, pattern(4, 100)); // leaves a gap inside block 1
    write(2 * B + 50, pattern(5, 10));

    let snap = cache.dirty_ranges(1, 7).unwrap();
    assert_eq!(snap.base_change, 0);
    assert_eq!(
        snap.ranges,
        vec![
            100..300,
            B - 96..B + 104,
            B + 904..B + 1004,
            2 * B + 50..2 * B + 60
        ]
    );
    for r in &snap.ranges {
        assert_eq!(
            cache.read_dirty(1, 7, r.clone()).unwrap(),
            model[r.start as usize..r.end as usize]
        );
    }
    assert_eq!(cache.read_dirty(1, 7, 120..290).unwrap(), model[120..290]);
    assert_eq!(cache.read_dirty(1, 7, 0..0).unwrap(), &[][..]);
    for bad in [0..101, 299..301, B + 100..B + 905, 2 * B + 50..3 * B] {
        assert!(
            matches!(
                cache.read_dirty(1, 7, bad.clone()),
                Err(CacheError::NotDirty { .. })
            ),
            "{bad:?} is not all known"
        );
    }
    assert!(matches!(
        cache.read_dirty(1, 8, 0..1),
        Err(CacheError::NotDirty { .. })
    ));
    // Dirty bytes count each block's known prefix: 300, B (block 0 ends at B), 1004, 60.
    assert_eq!(cache.stats().dirty_bytes, B + 1004 + 60);
    assert!(matches!(
        cache.write_dirty(1, 7, 0, u64::MAX - 1, &[1, 2, 3]),
        Err(CacheError::RangeOverflow { .. })
    ));
    // The last block of the 64-bit offset space works like any other.
    cache.write_dirty(1, 9, 0, u64::MAX - 10, b"edge").unwrap();
    assert_eq!(
        cache.read_dirty(1, 9, u64::MAX - 10..u64::MAX - 6).unwrap(),
        &b"edge"[..]
    );
    assert_eq!(
        cache.dirty_ranges(1, 9).unwrap().ranges,
        vec![u64::MAX - 10..u64::MAX - 6]
    );
}

fn first_dirty_write_is_seeded_from_the_base_block<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(4, 8)).unwrap();
    let base = pattern(30, BS as usize);
    cache.put_clean(key(3, 7, 2), &base).unwrap();
    let patch = pattern(31, 5);
    cache.write_dirty(1, 3, 7, 2 * B + 10, &patch).unwrap();

    let mut expect = base.clone();
    expect[10..15].copy_from_slice(&patch);
    assert_eq!(cache.read_dirty(1, 3, 2 * B..3 * B).unwrap(), expect);
    let snap = cache.dirty_ranges(1, 3).unwrap();
    assert_eq!(
        snap.ranges,
        vec![2 * B + 10..2 * B + 15],
        "only written bytes need uploading"
    );
    // The clean block of the base change is still served for that change.
    assert_eq!(cache.get(&key(3, 7, 2)).unwrap(), base);
}

fn mark_clean_rekeys_complete_blocks_to_the_new_change<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(8, 8)).unwrap();
    let base2 = pattern(40, BS as usize);
    cache.put_clean(key(4, 7, 2), &base2).unwrap();

    let b0 = pattern(41, BS as usize);
    cache.write_dirty(1, 4, 7, 0, &b0).unwrap(); // block 0: complete
    cache
        .write_dirty(1, 4, 7, B + 10, &pattern(42, 20))
        .unwrap(); // block 1: incomplete
    cache.write_dirty(1, 4, 7, 2 * B + 1, &[0xAA]).unwrap(); // block 2: seeded, complete
    let tail = pattern(43, 100);
    cache.write_dirty(1, 4, 7, 3 * B, &tail).unwrap(); // block 3: the new EOF block
    let snap = cache.dirty_ranges(1, 4).unwrap();
    // Written after the snapshot was taken: must stay dirty.
    let late = pattern(44, 30);
    cache.write_dirty(1, 4, 7, B + 100, &late).unwrap();

    cache.mark_clean(1, 4, snap.seq, 8, 3 * B + 100);

    assert_eq!(cache.get(&key(4, 8, 0)).unwrap(), b0);
    let mut b2 = base2.clone();
    b2[1] = 0xAA;
    assert_eq!(cache.get(&key(4, 8, 2)).unwrap(), b2);
    assert_eq!(
        cache.get(&key(4, 8, 3)).unwrap(),
        tail,
        "a short EOF block is complete"
    );
    assert_eq!(
        cache.get(&key(4, 8, 1)),
        None,
        "incomplete blocks are not cached"
    );
    assert_eq!(
        cache.get(&key(4, 7, 2)).unwrap(),
        base2,
        "the old version stays valid for its change"
    );

    let rest = cache.dirty_ranges(1, 4).unwrap();
    assert_eq!(rest.base_change, 8);
    assert!(rest.seq > snap.seq);
    assert_eq!(rest.ranges, vec![B + 10..B + 30, B + 100..B + 130]);
    assert_eq!(cache.read_dirty(1, 4, B + 100..B + 130).unwrap(), late);
    let s = cache.stats();
    assert_eq!((s.dirty_blocks, s.dirty_bytes), (1, 130));
    assert_eq!(files(cache.disk(), "d-").len(), 1);

    cache.mark_clean(1, 4, rest.seq, 9, 3 * B + 100);
    assert_eq!(cache.dirty_ranges(1, 4), None);
    assert_eq!(cache.stats().dirty_bytes, 0);
    assert!(files(cache.disk(), "d-").is_empty());
    // Marking clean an inode with nothing dirty is harmless.
    cache.mark_clean(1, 4, rest.seq, 9, 0);
}

fn base_mismatch_is_refused<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(4, 4)).unwrap();
    cache.write_dirty(1, 5, 7, 0, b"abc").unwrap();
    let err = cache.write_dirty(1, 5, 8, 3, b"def").unwrap_err();
    assert!(matches!(
        err,
        CacheError::BaseMismatch {
            dirty_base: 7,
            given: 8,
            ..
        }
    ));
    cache.discard_dirty(1, 5);
    assert_eq!(cache.stats().dirty_bytes, 0);
    cache.write_dirty(1, 5, 8, 3, b"def").unwrap();
    assert!(matches!(
        cache.read_dirty(1, 5, 0..6),
        Err(CacheError::NotDirty { .. })
    ));
    assert_eq!(cache.read_dirty(1, 5, 3..6).unwrap(), &b"def"[..]);
}

fn corrupt_clean_block_is_a_miss_and_is_dropped<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(4, 4)).unwrap();
    let data = pattern(50, BS as usize);
    cache.put_clean(key(1, 1, 0), &data).unwrap();
    let name = files(cache.disk(), "c-").pop().unwrap();
    corrupt(cache.disk(), &name, 56 + 1000);

    assert_eq!(cache.get(&key(1, 1, 0)), None);
    let s = cache.stats();
    assert_eq!(
        (s.checksum_failures, s.misses, s.hits, s.clean_blocks),
        (1, 1, 0, 0)
    );
    assert!(
        files(cache.disk(), "c-").is_empty(),
        "the corrupt file is deleted"
    );
    assert_eq!(cache.get(&key(1, 1, 0)), None);
    assert_eq!(cache.stats().checksum_failures, 1);

    // A corrupt header (here: the change counter) is caught too.
    cache.put_clean(key(1, 1, 0), &data).unwrap();
    corrupt(cache.disk(), &files(cache.disk(), "c-")[0], 24);
    assert_eq!(cache.get(&key(1, 1, 0)), None);
    assert_eq!(cache.stats().checksum_failures, 2);

    // A corrupt base block is not used as a seed for dirty data.
    cache.put_clean(key(1, 1, 0), &data).unwrap();
    corrupt(cache.disk(), &files(cache.disk(), "c-")[0], 56);
    cache.write_dirty(1, 1, 1, 10, b"xyz").unwrap();
    assert_eq!(cache.stats().checksum_failures, 3);
    assert!(matches!(
        cache.read_dirty(1, 1, 0..13),
        Err(CacheError::NotDirty { .. })
    ));
    assert_eq!(cache.read_dirty(1, 1, 10..13).unwrap(), &b"xyz"[..]);
}

fn corrupt_dirty_block_is_reported<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(4, 4)).unwrap();
    cache.write_dirty(1, 6, 0, 0, &pattern(60, 500)).unwrap();
    let name = files(cache.disk(), "d-").pop().unwrap();
    corrupt(cache.disk(), &name, 56 + 200);
    assert!(matches!(
        cache.read_dirty(1, 6, 0..10),
        Err(CacheError::DirtyCorrupt {
            ino: 6,
            index: 0,
            ..
        })
    ));
    assert!(matches!(
        cache.write_dirty(1, 6, 0, 10, b"a"),
        Err(CacheError::DirtyCorrupt { .. })
    ));
    assert_eq!(cache.stats().checksum_failures, 2);
    // A flush that marks it clean does not cache the damaged bytes.
    let snap = cache.dirty_ranges(1, 6).unwrap();
    cache.mark_clean(1, 6, snap.seq, 1, 500);
    assert_eq!(cache.get(&key(6, 1, 0)), None);
    assert_eq!(cache.stats().dirty_bytes, 0);
}

fn restart_keeps_valid_clean_blocks_and_drops_the_rest<D: LocalDisk + Clone>(disk: D) {
    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    for i in 0..4 {
        cache
            .put_clean(key(1, 1, i), &pattern(i, BS as usize))
            .unwrap();
    }
    cache
        .write_dirty(1, 2, 0, 0, &pattern(9, 2 * BS as usize))
        .unwrap();
    drop(cache);
    let names = files(&disk, "c-");
    corrupt(&disk, &names[1], 10); // header: dropped by the scan
    corrupt(&disk, &names[2], 56 + 5); // data: kept by the scan, caught on read
    disk.create(&names[3])
        .unwrap()
        .write_all_at(0, b"torn")
        .unwrap(); // torn write
    disk.create("operator-notes.txt")
        .unwrap()
        .write_all_at(0, b"not ours")
        .unwrap();

    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    let s = cache.stats();
    assert_eq!((s.scan_kept, s.scan_dropped, s.dirty_discarded), (2, 2, 2));
    assert_eq!((s.clean_blocks, s.dirty_blocks, s.dirty_bytes), (2, 0, 0));
    assert_eq!(cache.get(&key(1, 1, 0)).unwrap(), pattern(0, BS as usize));
    assert_eq!(cache.get(&key(1, 1, 2)), None);
    assert_eq!(cache.stats().checksum_failures, 1);
    assert_eq!(
        cache.dirty_ranges(1, 2),
        None,
        "dirty data does not survive a restart"
    );
    assert!(files(&disk, "d-").is_empty());
    assert_eq!(files(&disk, "c-").len(), 1);
    assert!(
        disk.list()
            .unwrap()
            .contains(&"operator-notes.txt".to_owned())
    );
}

fn restart_evicts_down_to_a_smaller_capacity<D: LocalDisk + Clone>(disk: D) {
    let cache = BlockCache::open(disk.clone(), cfg(4, 4)).unwrap();
    for i in 0..4 {
        cache
            .put_clean(key(1, 1, i), &pattern(i, BS as usize))
            .unwrap();
    }
    drop(cache);
    let cache = BlockCache::open(disk.clone(), cfg(2, 4)).unwrap();
    let s = cache.stats();
    assert_eq!((s.scan_kept, s.clean_blocks, s.evictions), (4, 2, 2));
    assert_eq!(files(&disk, "c-").len(), 2);
}

fn invalidate_drops_one_inode_only<D: LocalDisk>(disk: D) {
    let cache = BlockCache::open(disk, cfg(8, 8)).unwrap();
    cache.put_clean(key(1, 1, 0), &pattern(1, 10)).unwrap();
    cache.put_clean(key(1, 2, 0), &pattern(2, 10)).unwrap();
    cache.put_clean(key(2, 1, 0), &pattern(3, 10)).unwrap();
    cache.write_dirty(1, 1, 2, 0, b"dirty").unwrap();
    // Inode 2's first block is seeded from its cached 10-byte base block.
    cache.write_dirty(1, 2, 1, 0, b"other").unwrap();
    cache.invalidate(1, 1);
    assert_eq!(cache.get(&key(1, 1, 0)), None);
    assert_eq!(cache.get(&key(1, 2, 0)), None);
    assert_eq!(cache.dirty_ranges(1, 1), None);
    assert_eq!(cache.get(&key(2, 1, 0)).unwrap(), pattern(3, 10));
    assert_eq!(cache.read_dirty(1, 2, 0..5).unwrap(), &b"other"[..]);
    let s = cache.stats();
    assert_eq!((s.clean_blocks, s.dirty_blocks, s.dirty_bytes), (1, 1, 10));
    assert_eq!(
        files(cache.disk(), "c-").len() + files(cache.disk(), "d-").len(),
        2
    );
}
