//! The local-disk seam (STYLE.md §2.1): the block cache reaches its directory only through
//! [`LocalDisk`], so tests and the simulator can swap the real file system ([`FsDisk`]) for
//! [`SimDisk`](crate::SimDisk), which models what a crash keeps and injects faults.
//!
//! The seam is synchronous on purpose. Local file I/O blocks in the kernel whatever API wraps it
//! (tokio's own `fs` module just runs each call on the blocking pool), and a synchronous seam keeps
//! the simulated disk a plain deterministic data structure. The gateway calls whole cache
//! operations from `tokio::task::spawn_blocking`, one hop per NFS READ or WRITE rather than one per
//! system call.
//!
//! A disk is one flat directory of named files; names are plain file names (no `/`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An open file on a [`LocalDisk`].
pub trait DiskFile: Send + std::fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `data` at `offset`, extending the file (with zeros in any gap) if needed.
    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes the file's content durable (fdatasync). Its name is durable only after
    /// [`LocalDisk::sync_dir`].
    fn sync(&self) -> io::Result<()>;
    /// The file's current length in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Fills `buf` from `offset`, failing with `UnexpectedEof` if the file is shorter.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(offset, buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file too short",
                ));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// A directory of files on the gateway's local disk.
pub trait LocalDisk: Send + Sync + 'static {
    type File: DiskFile;

    /// Creates `name`, or truncates it to zero length if it exists, and opens it read-write.
    fn create(&self, name: &str) -> io::Result<Self::File>;
    /// Opens an existing file read-write; `NotFound` if there is none.
    fn open(&self, name: &str) -> io::Result<Self::File>;
    /// Removes `name`; `NotFound` if there is none.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// The names of all files, sorted, so callers that iterate them stay deterministic.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Makes creations and removals so far durable (fsync of the directory).
    fn sync_dir(&self) -> io::Result<()>;
}

/// Rejects names that could leave the directory or are not plain file names.
pub(crate) fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a plain file name: {name:?}"),
        ));
    }
    Ok(())
}

/// [`LocalDisk`] over a real directory, with positional reads and writes (pread/pwrite) and
/// fdatasync.
#[derive(Debug, Clone)]
pub struct FsDisk {
    dir: PathBuf,
}

impl FsDisk {
    /// Uses `dir` as the cache directory, creating it if needed.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory this disk lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }
}

/// An open file of an [`FsDisk`].
#[derive(Debug)]
pub struct FsFile(File);

impl DiskFile for FsFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match FileExt::read_at(&self.0, buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        FileExt::write_all_at(&self.0, data, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl LocalDisk for FsDisk {
    type File = FsFile;

    fn create(&self, name: &str) -> io::Result<FsFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(name)?)?;
        Ok(FsFile(file))
    }

    fn open(&self, name: &str) -> io::Result<FsFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(name)?)?;
        Ok(FsFile(file))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(name)?)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            // A name that is not UTF-8 was not written by us; leaving it out keeps it untouched.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}
