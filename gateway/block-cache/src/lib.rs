//! The NFS gateway's local-disk block cache.
//!
//! * [`BlockCache`]: checksummed fixed-size blocks keyed by change counter, LRU-evicted within a
//!   byte bound, plus the uncommitted WRITE data of open files (see the `cache` module header for
//!   the consistency, corruption and crash rules).
//! * [`LocalDisk`]: the seam to the cache directory, with [`FsDisk`] (real files) and
//!   [`SimDisk`] (in memory, with a crash model and fault injection) behind it.
//!
//! STYLE.md places the `LocalDisk` seam in the runtime crate; it lives here because the cache is
//! its only user so far. Moving it is a rename, not a redesign.

mod cache;
pub mod disk;
mod format;
mod ranges;
pub mod sim_disk;

pub use cache::{BlockCache, BlockKey, CacheConfig, CacheError, CacheStats, DirtySnapshot};
pub use disk::{DiskFile, FsDisk, FsFile, LocalDisk};
pub use sim_disk::{DiskOp, SimDisk, SimFile};

#[cfg(test)]
mod tests {
    /// The gateway shares one cache between tasks and calls it from `spawn_blocking`.
    #[test]
    fn cache_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<crate::BlockCache<crate::FsDisk>>();
        assert_send_sync::<crate::BlockCache<crate::SimDisk>>();
    }
}
