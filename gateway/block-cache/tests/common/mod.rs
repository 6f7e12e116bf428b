//! Helpers shared by the integration tests: small blocks, and each test run once per disk.

#![allow(dead_code)]

use bucketfs_block_cache::{BlockKey, CacheConfig};

pub const BS: u32 = 4096;

pub fn cfg(capacity_blocks: u64, dirty_blocks: u64) -> CacheConfig {
    CacheConfig {
        block_size: BS,
        capacity_bytes: capacity_blocks * u64::from(BS),
        dirty_limit_bytes: dirty_blocks * u64::from(BS),
    }
}

pub fn key(ino: u64, change: u64, index: u64) -> BlockKey {
    BlockKey {
        fs: 1,
        ino,
        change,
        index,
    }
}

/// Distinct, recognisable content for each seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (seed.wrapping_mul(0x9E37_79B9).wrapping_add(i * 7) % 251) as u8)
        .collect()
}

/// Runs a generic test body once on `SimDisk` and once on `FsDisk` in a fresh temporary
/// directory.
#[macro_export]
macro_rules! on_both_disks {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sim_disk() {
                    super::$name(bucketfs_block_cache::SimDisk::new());
                }

                #[test]
                fn fs_disk() {
                    let dir = tempfile::tempdir().expect("temporary directory");
                    super::$name(bucketfs_block_cache::FsDisk::new(dir.path()).expect("cache dir"));
                }
            }
        )*
    };
}
