//! NFS file handles: `[MAGIC, VERSION, fs (8), inode (8), generation (8)]`, big-endian.
//!
//! A handle names an inode by ids the metadata cluster assigns and never reuses, so it is
//! the same on every gateway and after any restart (RFC 8881 `FH4_PERSISTENT`). The
//! generation (the log index that created the inode) makes a handle of a deleted inode stale
//! even if some future scheme were to reuse inode numbers.

use bucketfs_meta_state::types::{FsId, Inode, InodeId};
use bucketfs_nfs_wire::nfs::NfsStatus;

const MAGIC: u8 = 0xB5;
const VERSION: u8 = 1;
pub const HANDLE_LEN: usize = 26;

/// A decoded file handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    pub fs: FsId,
    pub ino: InodeId,
    pub generation: u64,
}

impl Handle {
    pub fn of(fs: FsId, inode: &Inode) -> Self {
        Handle {
            fs,
            ino: inode.id,
            generation: inode.generation,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HANDLE_LEN);
        out.push(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.fs.0.to_be_bytes());
        out.extend_from_slice(&self.ino.0.to_be_bytes());
        out.extend_from_slice(&self.generation.to_be_bytes());
        out
    }

    /// NFS4ERR_BADHANDLE for bytes this gateway never made.
    pub fn decode(bytes: &[u8]) -> Result<Self, NfsStatus> {
        if bytes.len() != HANDLE_LEN || bytes[0] != MAGIC || bytes[1] != VERSION {
            return Err(NfsStatus::BadHandle);
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        Ok(Handle {
            fs: FsId(word(2)),
            ino: InodeId(word(10)),
            generation: word(18),
        })
    }

    /// Checks that `inode` (looked up by this handle's ids) is the object the handle was
    /// made for.
    pub fn check(&self, inode: &Inode) -> Result<(), NfsStatus> {
        if inode.generation == self.generation {
            Ok(())
        } else {
            Err(NfsStatus::Stale)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_bytes() {
        let h = Handle {
            fs: FsId(3),
            ino: InodeId(0x0102_0304_0506_0708),
            generation: 99,
        };
        let bytes = h.encode();
        assert_eq!(bytes.len(), HANDLE_LEN);
        assert_eq!(Handle::decode(&bytes), Ok(h));
        assert_eq!(Handle::decode(&bytes[..25]), Err(NfsStatus::BadHandle));
        let mut wrong = bytes.clone();
        wrong[1] = 2;
        assert_eq!(Handle::decode(&wrong), Err(NfsStatus::BadHandle));
        assert_eq!(Handle::decode(&[0u8; 8]), Err(NfsStatus::BadHandle));
    }
}
