//! On-disk format of one cached block: one file per block, a fixed 56-byte header, then the data.
//!
//! ```text
//!  0  magic "BFCB"        4  format version u16   6  kind u8 (0 clean, 1 dirty)   7  zero
//!  8  file system id u64  16 inode id u64         24 change counter u64           32 block index u64
//! 40  data length u32     44 CRC32C of the data   48 CRC32C of bytes 0..48        52 zero u32
//! 56  data
//! ```
//!
//! All integers are little-endian. The header has its own checksum so that a flipped bit in the
//! key or the length is caught as surely as one in the data: without it, a corrupted change counter
//! would make a block answer for the wrong version of a file. The key is also in the file name;
//! the startup scan requires both to agree.
//!
//! A dirty block's "change counter" is the change its unwritten bytes were seeded from; dirty files
//! are never read back after a restart, so their name leaves the change out.

use crate::BlockKey;

pub(crate) const MAGIC: [u8; 4] = *b"BFCB";
pub(crate) const VERSION: u16 = 1;
pub(crate) const HEADER_LEN: usize = 56;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Clean = 0,
    Dirty = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: Kind,
    pub key: BlockKey,
    pub len: u32,
    pub data_crc: u32,
}

pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // CRC-32/ISCSI is CRC32C; crc-fast returns every width as u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

impl Header {
    pub fn new(kind: Kind, key: BlockKey, data: &[u8]) -> Self {
        let len = u32::try_from(data.len()).expect("blocks are bounded by a u32 block size");
        Self {
            kind,
            key,
            len,
            data_crc: crc32c(data),
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6] = self.kind as u8;
        b[8..16].copy_from_slice(&self.key.fs.to_le_bytes());
        b[16..24].copy_from_slice(&self.key.ino.to_le_bytes());
        b[24..32].copy_from_slice(&self.key.change.to_le_bytes());
        b[32..40].copy_from_slice(&self.key.index.to_le_bytes());
        b[40..44].copy_from_slice(&self.len.to_le_bytes());
        b[44..48].copy_from_slice(&self.data_crc.to_le_bytes());
        let header_crc = crc32c(&b[0..48]);
        b[48..52].copy_from_slice(&header_crc.to_le_bytes());
        b
    }

    /// Parses and verifies a header; `None` for anything not written by [`Header::encode`] of
    /// this version.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if b[0..4] != MAGIC
            || u16::from_le_bytes([b[4], b[5]]) != VERSION
            || b[7] != 0
            || u32_at(52) != 0
            || u32_at(48) != crc32c(&b[0..48])
        {
            return None;
        }
        let kind = match b[6] {
            0 => Kind::Clean,
            1 => Kind::Dirty,
            _ => return None,
        };
        let key = BlockKey {
            fs: u64_at(8),
            ino: u64_at(16),
            change: u64_at(24),
            index: u64_at(32),
        };
        Some(Self {
            kind,
            key,
            len: u32_at(40),
            data_crc: u32_at(44),
        })
    }
}

/// What a file name in the cache directory says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    Clean(BlockKey),
    Dirty { fs: u64, ino: u64, index: u64 },
}

pub(crate) fn clean_name(key: &BlockKey) -> String {
    format!(
        "c-{:016x}-{:016x}-{:016x}-{:016x}",
        key.fs, key.ino, key.change, key.index
    )
}

pub(crate) fn dirty_name(fs: u64, ino: u64, index: u64) -> String {
    format!("d-{fs:016x}-{ino:016x}-{index:016x}")
}

/// Parses a name made by [`clean_name`] or [`dirty_name`]; `None` for any other file.
pub(crate) fn parse_name(name: &str) -> Option<Name> {
    let (prefix, rest) = name.split_once('-')?;
    let fields: Vec<u64> = rest
        .split('-')
        .map(|f| {
            if f.len() == 16
                && f.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            {
                u64::from_str_radix(f, 16).ok()
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    match (prefix, fields.as_slice()) {
        ("c", &[fs, ino, change, index]) => Some(Name::Clean(BlockKey {
            fs,
            ino,
            change,
            index,
        })),
        ("d", &[fs, ino, index]) => Some(Name::Dirty { fs, ino, index }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value from the CRC catalogue (and RFC 3720's test vectors family).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn header_round_trips_and_every_bit_flip_is_caught() {
        let key = BlockKey {
            fs: 7,
            ino: 0x1234_5678_9abc,
            change: 42,
            index: 3,
        };
        let h = Header::new(Kind::Clean, key, b"hello");
        let bytes = h.encode();
        assert_eq!(Header::decode(&bytes), Some(h));
        for bit in 0..HEADER_LEN * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                Header::decode(&bad),
                None,
                "flip of bit {bit} went unnoticed"
            );
        }
        assert_eq!(Header::decode(&bytes[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        let key = BlockKey {
            fs: 1,
            ino: u64::MAX,
            change: 0,
            index: 9,
        };
        assert_eq!(parse_name(&clean_name(&key)), Some(Name::Clean(key)));
        assert_eq!(
            parse_name(&dirty_name(1, 2, 3)),
            Some(Name::Dirty {
                fs: 1,
                ino: 2,
                index: 3
            })
        );
        for foreign in [
            "",
            "c-",
            "lost+found",
            "c-0-0-0-0",
            "x-0000000000000001-0000000000000002-0000000000000003",
            "d-000000000000000G-0000000000000002-0000000000000003",
            "c-0000000000000001-0000000000000002-0000000000000003",
        ] {
            assert_eq!(parse_name(foreign), None, "{foreign:?}");
        }
    }
}
