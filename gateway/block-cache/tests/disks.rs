//! The `LocalDisk` implementations, and cache behaviour that needs one disk's own tools: SimDisk's
//! crash model and fault injection, and corruption written behind FsDisk's back.

mod common;

use std::io;

use bucketfs_block_cache::{BlockCache, CacheError, DiskFile, DiskOp, FsDisk, LocalDisk, SimDisk};
use common::{BS, cfg, key, pattern};

on_both_disks!(disk_conformance);

/// What the cache relies on from any `LocalDisk`.
fn disk_conformance<D: LocalDisk>(disk: D) {
    assert!(disk.list().unwrap().is_empty());
    let f = disk.create("b").unwrap();
    f.write_all_at(0, b"hello").unwrap();
    f.write_all_at(8, b"!").unwrap(); // past the end: the gap reads as zeros
    assert_eq!(f.size().unwrap(), 9);
    let mut buf = [0xFFu8; 9];
    f.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"hello\0\0\0!");
    let mut tail = [0u8; 4];
    assert_eq!(
        f.read_at(7, &mut tail).unwrap(),
        2,
        "short read at end of file"
    );
    assert_eq!(
        f.read_exact_at(7, &mut tail).unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
    f.sync().unwrap();
    drop(f);

    disk.create("a").unwrap();
    disk.sync_dir().unwrap();
    assert_eq!(disk.list().unwrap(), vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(disk.open("b").unwrap().size().unwrap(), 9);
    // Creating an existing name truncates it.
    assert_eq!(disk.create("b").unwrap().size().unwrap(), 0);
    disk.remove("b").unwrap();
    assert_eq!(disk.open("b").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(
        disk.remove("b").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    for bad in ["", "..", "x/y", "."] {
        assert_eq!(
            disk.create(bad).unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
}

fn clean_files(disk: &impl LocalDisk) -> Vec<String> {
    disk.list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("c-"))
        .collect()
}

#[test]
fn sim_bit_flip_in_data_or_header_is_caught() {
    let disk = SimDisk::new();
    let cache = BlockCache::open(disk.clone(), cfg(4, 4)).unwrap();
    let data = pattern(1, BS as usize);
    // Every bit position class: header key, header length, data CRC field, data.
    for (i, offset) in [17u64, 41, 45, 56, 56 + 4095].into_iter().enumerate() {
        cache.put_clean(key(1, 1, 0), &data).unwrap();
        disk.flip_bit(&clean_files(&disk)[0], offset, (i % 8) as u8)
            .unwrap();
        assert_eq!(cache.get(&key(1, 1, 0)), None, "flip at byte {offset}");
        assert_eq!(cache.stats().checksum_failures, i as u64 + 1);
        assert!(clean_files(&disk).is_empty());
    }
}

#[test]
fn fs_byte_overwritten_in_the_real_file_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FsDisk::new(dir.path()).unwrap();
    let cache = BlockCache::open(disk.clone(), cfg(4, 4)).unwrap();
    let data = pattern(2, 1000);
    cache.put_clean(key(1, 1, 0), &data).unwrap();
    cache.put_clean(key(1, 1, 1), &data).unwrap();

    // Overwrite one data byte with std::fs, outside the seam.
    let path = dir.path().join(&clean_files(&disk)[0]);
    let mut raw = std::fs::read(&path).unwrap();
    raw[56 + 500] ^= 0x01;
    std::fs::write(&path, &raw).unwrap();

    assert_eq!(cache.get(&key(1, 1, 0)), None);
    assert_eq!(cache.get(&key(1, 1, 1)).unwrap(), data);
    assert_eq!(cache.stats().checksum_failures, 1);
    assert!(!path.exists(), "the damaged file is deleted");

    // Truncation behind the cache's back is caught the same way.
    let path = dir.path().join(&clean_files(&disk)[0]);
    std::fs::write(&path, &std::fs::read(&path).unwrap()[..100]).unwrap();
    assert_eq!(cache.get(&key(1, 1, 1)), None);
    assert_eq!(cache.stats().checksum_failures, 2);
}

#[test]
fn crash_loses_unsynced_blocks_only() {
    let disk = SimDisk::new();
    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    cache
        .put_clean(key(1, 1, 0), &pattern(0, BS as usize))
        .unwrap();
    cache.put_clean(key(1, 1, 1), &pattern(1, 100)).unwrap();
    cache.sync_clean().unwrap();
    cache
        .put_clean(key(1, 1, 2), &pattern(2, BS as usize))
        .unwrap();
    cache.write_dirty(1, 9, 0, 0, &pattern(3, 10)).unwrap();
    drop(cache);
    disk.crash();

    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    assert_eq!(cache.get(&key(1, 1, 0)).unwrap(), pattern(0, BS as usize));
    assert_eq!(cache.get(&key(1, 1, 1)).unwrap(), pattern(1, 100));
    assert_eq!(cache.get(&key(1, 1, 2)), None);
    assert_eq!(cache.dirty_ranges(1, 9), None);
    let s = cache.stats();
    assert_eq!(
        (s.scan_kept, s.scan_dropped, s.checksum_failures),
        (2, 0, 0)
    );
}

#[test]
fn crash_after_the_name_but_before_the_data_is_dropped_by_the_scan() {
    let disk = SimDisk::new();
    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    cache
        .put_clean(key(1, 1, 0), &pattern(0, BS as usize))
        .unwrap();
    // The directory entry becomes durable, the block's data never does.
    disk.sync_dir().unwrap();
    drop(cache);
    disk.crash();
    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    let s = cache.stats();
    assert_eq!((s.scan_kept, s.scan_dropped), (0, 1));
    assert!(disk.list().unwrap().is_empty());
}

#[test]
fn crash_between_overwrite_and_sync_keeps_the_synced_version() {
    let disk = SimDisk::new();
    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    cache
        .put_clean(key(1, 1, 0), &pattern(0, BS as usize))
        .unwrap();
    cache.sync_clean().unwrap();
    // Same key re-cached with other (short) content and not synced: torn by the crash.
    cache.put_clean(key(1, 1, 0), &pattern(7, 10)).unwrap();
    drop(cache);
    disk.crash();
    let cache = BlockCache::open(disk, cfg(8, 8)).unwrap();
    assert_eq!(cache.get(&key(1, 1, 0)).unwrap(), pattern(0, BS as usize));
}

#[test]
fn disk_errors_are_misses_or_errors_never_wrong_data() {
    let disk = SimDisk::new();
    let cache = BlockCache::open(disk.clone(), cfg(8, 8)).unwrap();
    let data = pattern(5, BS as usize);

    cache.put_clean(key(1, 1, 0), &data).unwrap();
    disk.fail_next(DiskOp::Read, 1);
    assert_eq!(cache.get(&key(1, 1, 0)), None);
    assert_eq!(cache.stats().io_errors, 1);
    assert_eq!(cache.stats().clean_blocks, 0);

    disk.fail_next(DiskOp::Write, 1);
    let err = cache.put_clean(key(1, 1, 0), &data).unwrap_err();
    assert!(
        matches!(&err, CacheError::Io(e) if e.raw_os_error() == Some(5)),
        "{err}"
    );
    assert_eq!(cache.stats().clean_blocks, 0);
    assert!(
        disk.list().unwrap().is_empty(),
        "a failed put leaves no file"
    );

    disk.set_capacity(Some(2 * u64::from(BS)));
    cache.put_clean(key(1, 1, 0), &data).unwrap();
    let err = cache.put_clean(key(1, 1, 1), &data).unwrap_err();
    assert!(
        matches!(&err, CacheError::Io(e) if e.raw_os_error() == Some(28)),
        "{err}"
    );
    disk.set_capacity(None);
    assert_eq!(cache.get(&key(1, 1, 0)).unwrap(), data);

    // A failed first write of a dirty block records nothing.
    disk.fail_next(DiskOp::Write, 1);
    assert!(matches!(
        cache.write_dirty(1, 2, 0, 0, b"abc"),
        Err(CacheError::Io(_))
    ));
    assert_eq!(cache.dirty_ranges(1, 2), None);
    assert_eq!(cache.stats().dirty_bytes, 0);
    // A failed overwrite of a dirty block leaves it detectably damaged, never silently stale.
    cache.write_dirty(1, 2, 0, 0, b"abc").unwrap();
    disk.fail_next(DiskOp::Write, 1); // the data write fails: nothing changed
    assert!(matches!(
        cache.write_dirty(1, 2, 0, 1, b"X"),
        Err(CacheError::Io(_))
    ));
    assert_eq!(cache.read_dirty(1, 2, 0..3).unwrap(), &b"abc"[..]);
    disk.fail_after(DiskOp::Write, 1, 1); // the data lands, the header write fails
    assert!(matches!(
        cache.write_dirty(1, 2, 0, 1, b"X"),
        Err(CacheError::Io(_))
    ));
    assert!(matches!(
        cache.read_dirty(1, 2, 0..3),
        Err(CacheError::DirtyCorrupt {
            ino: 2,
            index: 0,
            ..
        })
    ));
    // An unreadable dirty block is an error, and a transient one passes.
    cache.write_dirty(1, 3, 0, 0, b"def").unwrap();
    disk.fail_next(DiskOp::Open, 1);
    assert!(matches!(
        cache.read_dirty(1, 3, 0..3),
        Err(CacheError::Io(_))
    ));
    assert_eq!(cache.read_dirty(1, 3, 0..3).unwrap(), &b"def"[..]);
}
