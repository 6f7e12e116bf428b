//! [`SimDisk`]: an in-memory [`LocalDisk`] for tests and the simulator, deterministic (ordered
//! maps only, no time, no randomness) and with a crash model.
//!
//! Crash model, after what a journaling file system promises: each file has a *current* content
//! and a *durable* content, and the directory has a current and a durable name table.
//! [`DiskFile::sync`] copies a file's current content to durable; [`LocalDisk::sync_dir`] copies
//! the name table. [`SimDisk::crash`] throws away everything not made durable: a file created but
//! never named durably vanishes, a file whose name is durable but whose data was never synced comes
//! back with its last synced content (empty if none), a removal not made durable is undone. Handles
//! opened before a crash belong to the dead process and fail afterwards.
//!
//! Faults: [`SimDisk::fail_next`] / [`SimDisk::fail_after`] make calls of one kind fail with EIO,
//! [`SimDisk::set_capacity`] makes writes past a byte budget fail with ENOSPC, and
//! [`SimDisk::flip_bit`] corrupts stored bytes the way failing media does (durable and current
//! alike), which the cache must catch by checksum.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::disk::{DiskFile, LocalDisk, check_name};

/// Linux errno values the fake reports, so callers see the same `raw_os_error` as on a real disk.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// The kinds of disk call a fault can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiskOp {
    Create,
    Open,
    Remove,
    List,
    SyncDir,
    Read,
    Write,
    Sync,
    Size,
}

#[derive(Debug, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    inodes: BTreeMap<u64, Inode>,
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    next_inode: u64,
    /// Bumped by every crash; handles carry the epoch they were opened in.
    epoch: u64,
    /// Per kind of call: how many calls still succeed, then how many fail.
    failures: BTreeMap<DiskOp, (u32, u32)>,
    capacity: Option<u64>,
}

impl State {
    fn inject(&mut self, op: DiskOp) -> io::Result<()> {
        if let Some((skip, fail)) = self.failures.get_mut(&op) {
            if *skip > 0 {
                *skip -= 1;
            } else if *fail > 0 {
                *fail -= 1;
                return Err(io::Error::from_raw_os_error(EIO));
            }
        }
        Ok(())
    }

    /// Space in use counts files reachable by a current name, as `df` would after unlink.
    fn used_bytes(&self) -> u64 {
        self.names
            .values()
            .filter_map(|id| self.inodes.get(id))
            .map(|i| i.current.len() as u64)
            .sum()
    }

    /// Drops inode `id` if no name, current or durable, reaches it any more.
    fn collect(&mut self, id: u64) {
        let reachable = self
            .names
            .values()
            .chain(self.durable_names.values())
            .any(|&n| n == id);
        if !reachable {
            self.inodes.remove(&id);
        }
    }
}

/// In-memory [`LocalDisk`] with a crash model and fault injection. Clones share one disk.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Loses everything not made durable, as a power cut would, and invalidates open handles.
    pub fn crash(&self) {
        let mut st = self.lock();
        st.names = st.durable_names.clone();
        for inode in st.inodes.values_mut() {
            inode.current = inode.durable.clone();
        }
        let live: std::collections::BTreeSet<u64> = st.names.values().copied().collect();
        st.inodes.retain(|id, _| live.contains(id));
        st.epoch += 1;
    }

    /// Makes the next `count` calls of kind `op` fail with EIO (replacing any earlier count).
    pub fn fail_next(&self, op: DiskOp, count: u32) {
        self.fail_after(op, 0, count);
    }

    /// Lets `skip` calls of kind `op` succeed, then makes `count` fail with EIO; for hitting the
    /// second step of a multi-step operation.
    pub fn fail_after(&self, op: DiskOp, skip: u32, count: u32) {
        self.lock().failures.insert(op, (skip, count));
    }

    /// Limits the bytes all files may hold; writes that would pass it fail with ENOSPC.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Flips one bit of a stored file, in its current and durable content alike.
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) -> io::Result<()> {
        let mut st = self.lock();
        let id = *st.names.get(name).ok_or_else(not_found)?;
        let inode = st.inodes.get_mut(&id).ok_or_else(not_found)?;
        let at = usize::try_from(offset).map_err(|_| out_of_range())?;
        let mask = 1u8 << (bit % 8);
        let byte = inode.current.get_mut(at).ok_or_else(out_of_range)?;
        *byte ^= mask;
        if let Some(byte) = inode.durable.get_mut(at) {
            *byte ^= mask;
        }
        Ok(())
    }

    /// The current content of a file, for assertions.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        let id = st.names.get(name)?;
        st.inodes.get(id).map(|i| i.current.clone())
    }

    /// Total bytes held by all current files.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock can only come from a bug in this file; the state is plain
    // data and still consistent enough for a test to report on.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file")
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "offset past end of file")
}

/// An open file of a [`SimDisk`]. It stops working after a crash.
#[derive(Debug)]
pub struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
    epoch: u64,
}

impl SimFile {
    fn with_inode<T>(
        &self,
        op: DiskOp,
        f: impl FnOnce(&mut Inode, Option<u64>) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut st = lock(&self.state);
        if st.epoch != self.epoch {
            return Err(io::Error::other("handle opened before a simulated crash"));
        }
        st.inject(op)?;
        let room = st.capacity.map(|cap| cap.saturating_sub(st.used_bytes()));
        let inode = st.inodes.get_mut(&self.inode).ok_or_else(not_found)?;
        f(inode, room)
    }
}

impl DiskFile for SimFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.with_inode(DiskOp::Read, |inode, _| {
            let len = inode.current.len() as u64;
            if offset >= len {
                return Ok(0);
            }
            let start = offset as usize;
            let n = buf.len().min(inode.current.len() - start);
            buf[..n].copy_from_slice(&inode.current[start..start + n]);
            Ok(n)
        })
    }

    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with_inode(DiskOp::Write, |inode, room| {
            let end = offset
                .checked_add(data.len() as u64)
                .and_then(|e| usize::try_from(e).ok())
                .ok_or_else(out_of_range)?;
            let growth = (end as u64).saturating_sub(inode.current.len() as u64);
            if room.is_some_and(|room| growth > room) {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
            if end > inode.current.len() {
                inode.current.resize(end, 0);
            }
            inode.current[offset as usize..end].copy_from_slice(data);
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with_inode(DiskOp::Sync, |inode, _| {
            inode.durable = inode.current.clone();
            Ok(())
        })
    }

    fn size(&self) -> io::Result<u64> {
        self.with_inode(DiskOp::Size, |inode, _| Ok(inode.current.len() as u64))
    }
}

impl LocalDisk for SimDisk {
    type File = SimFile;

    fn create(&self, name: &str) -> io::Result<SimFile> {
        check_name(name)?;
        let mut st = self.lock();
        st.inject(DiskOp::Create)?;
        let id = match st.names.get(name) {
            Some(&id) => {
                // O_TRUNC keeps the inode; the truncation is as volatile as any unsynced write.
                if let Some(inode) = st.inodes.get_mut(&id) {
                    inode.current.clear();
                }
                id
            }
            None => {
                let id = st.next_inode;
                st.next_inode += 1;
                st.inodes.insert(id, Inode::default());
                st.names.insert(name.to_owned(), id);
                id
            }
        };
        Ok(SimFile {
            state: Arc::clone(&self.state),
            inode: id,
            epoch: st.epoch,
        })
    }

    fn open(&self, name: &str) -> io::Result<SimFile> {
        check_name(name)?;
        let mut st = self.lock();
        st.inject(DiskOp::Open)?;
        let id = *st.names.get(name).ok_or_else(not_found)?;
        Ok(SimFile {
            state: Arc::clone(&self.state),
            inode: id,
            epoch: st.epoch,
        })
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        let mut st = self.lock();
        st.inject(DiskOp::Remove)?;
        let id = st.names.remove(name).ok_or_else(not_found)?;
        // The inode stays while the durable name table still reaches it, because a crash would
        // bring the name back. Unlike Unix, a handle to a fully removed file stops working; the
        // cache never uses one.
        st.collect(id);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut st = self.lock();
        st.inject(DiskOp::List)?;
        Ok(st.names.keys().cloned().collect())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.inject(DiskOp::SyncDir)?;
        let dropped: Vec<u64> = st.durable_names.values().copied().collect();
        st.durable_names = st.names.clone();
        for id in dropped {
            st.collect(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(disk: &SimDisk, name: &str, data: &[u8]) -> SimFile {
        let f = disk.create(name).unwrap();
        f.write_all_at(0, data).unwrap();
        f
    }

    #[test]
    fn crash_keeps_synced_data_and_durable_names_only() {
        let disk = SimDisk::new();
        let a = write(&disk, "a", b"synced");
        a.sync().unwrap();
        disk.sync_dir().unwrap();
        a.write_all_at(0, b"SYNCED-and-more").unwrap();
        let c = write(&disk, "c", b"named, data not synced");
        disk.sync_dir().unwrap();
        c.write_all_at(0, b"x").unwrap();
        write(&disk, "b", b"data synced, never named durably")
            .sync()
            .unwrap();
        disk.remove("a").unwrap();

        disk.crash();

        assert_eq!(disk.list().unwrap(), vec!["a".to_owned(), "c".to_owned()]);
        assert_eq!(disk.contents("a").unwrap(), b"synced");
        assert_eq!(disk.contents("c").unwrap(), b"");
        assert!(
            a.size().is_err(),
            "a handle from before the crash must not work after it"
        );
        assert_eq!(disk.open("a").unwrap().size().unwrap(), 6);
    }

    #[test]
    fn removal_made_durable_survives_a_crash() {
        let disk = SimDisk::new();
        write(&disk, "a", b"x").sync().unwrap();
        disk.sync_dir().unwrap();
        disk.remove("a").unwrap();
        disk.sync_dir().unwrap();
        disk.crash();
        assert!(disk.list().unwrap().is_empty());
        assert_eq!(disk.open("a").unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn injected_faults_fire_the_requested_number_of_times() {
        let disk = SimDisk::new();
        let f = write(&disk, "a", b"abc");
        disk.fail_next(DiskOp::Read, 2);
        let mut buf = [0u8; 3];
        for _ in 0..2 {
            assert_eq!(
                f.read_at(0, &mut buf).unwrap_err().raw_os_error(),
                Some(EIO)
            );
        }
        f.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"abc");

        disk.set_capacity(Some(5));
        assert_eq!(
            f.write_all_at(3, b"def").unwrap_err().raw_os_error(),
            Some(ENOSPC)
        );
        f.write_all_at(3, b"de").unwrap();
        disk.set_capacity(None);

        disk.flip_bit("a", 1, 0).unwrap();
        assert_eq!(disk.contents("a").unwrap(), b"accde");
        assert!(disk.flip_bit("a", 5, 0).is_err());
    }
}
