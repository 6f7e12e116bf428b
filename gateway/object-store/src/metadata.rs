//! User metadata (`x-amz-meta-*`) with the POSIX attributes of S3 Files typed out.
//!
//! Format follows S3FILES_SPEC.md §2.3/§2.4: `file-owner` and `file-group` are decimal ids,
//! `file-permissions` is `st_mode` in octal including the type bits, zero-padded to seven
//! digits (`0100644`, `0040755`, `0120777`), and `file-mtime` is nanoseconds since the epoch
//! with an `ns` suffix. Keys are stored without the `x-amz-meta-` prefix and in lower case,
//! which is how S3 returns them.
//!
//! Parsing is lenient because objects may have been written by other tools: a POSIX key whose
//! value does not parse leaves the typed field empty (so the gateway applies its defaults) and
//! is kept verbatim in `other`, so nothing is lost on a rewrite. Writing is strict:
//! [`UserMetadata::validate`] enforces what S3 would reject, so every backend rejects it alike.

use std::collections::BTreeMap;

use crate::error::{ObjectStoreError, Result};

/// `x-amz-meta-file-owner`: numeric uid.
pub const KEY_OWNER: &str = "file-owner";
/// `x-amz-meta-file-group`: numeric gid.
pub const KEY_GROUP: &str = "file-group";
/// `x-amz-meta-file-permissions`: `st_mode` in octal, type bits included.
pub const KEY_PERMISSIONS: &str = "file-permissions";
/// `x-amz-meta-file-mtime`: modification time, nanoseconds since the epoch, `ns` suffix.
pub const KEY_MTIME: &str = "file-mtime";

/// S3 limits user metadata to 2 KB, counted as the UTF-8 bytes of every key and value.
pub const MAX_USER_METADATA_BYTES: usize = 2048;

/// `st_mode` type bits, for building `mode` values.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;

/// The user metadata of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserMetadata {
    pub owner: Option<u32>,
    pub group: Option<u32>,
    /// Full `st_mode`, type bits included (`0o100644`).
    pub mode: Option<u32>,
    /// Nanoseconds since the Unix epoch; negative before 1970.
    pub mtime_ns: Option<i64>,
    /// Every other key (lower case, no prefix), and POSIX keys whose value did not parse.
    pub other: BTreeMap<String, String>,
}

impl UserMetadata {
    /// The POSIX attributes of a file, directory or symlink as the gateway writes them.
    pub fn posix(owner: u32, group: u32, mode: u32, mtime_ns: i64) -> Self {
        UserMetadata {
            owner: Some(owner),
            group: Some(group),
            mode: Some(mode),
            mtime_ns: Some(mtime_ns),
            other: BTreeMap::new(),
        }
    }

    /// Builds from the metadata map a backend returned (keys without `x-amz-meta-`).
    pub fn from_map<K, V, I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut m = UserMetadata::default();
        for (k, v) in entries {
            let key = k.as_ref().to_ascii_lowercase();
            let value: String = v.into();
            let parsed = match key.as_str() {
                KEY_OWNER => parse_decimal_u32(&value).map(|x| m.owner = Some(x)),
                KEY_GROUP => parse_decimal_u32(&value).map(|x| m.group = Some(x)),
                KEY_PERMISSIONS => parse_mode(&value).map(|x| m.mode = Some(x)),
                KEY_MTIME => parse_nanos(&value).map(|x| m.mtime_ns = Some(x)),
                _ => None,
            };
            if parsed.is_none() {
                m.other.insert(key, value);
            }
        }
        m
    }

    /// The map to send (keys without `x-amz-meta-`). Typed fields win over a same-named
    /// leftover in `other`.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = self.other.clone();
        if let Some(x) = self.owner {
            map.insert(KEY_OWNER.to_owned(), x.to_string());
        }
        if let Some(x) = self.group {
            map.insert(KEY_GROUP.to_owned(), x.to_string());
        }
        if let Some(x) = self.mode {
            map.insert(KEY_PERMISSIONS.to_owned(), format_mode(x));
        }
        if let Some(x) = self.mtime_ns {
            map.insert(KEY_MTIME.to_owned(), format!("{x}ns"));
        }
        map
    }

    /// Size as S3 counts it against [`MAX_USER_METADATA_BYTES`].
    pub fn encoded_len(&self) -> usize {
        self.to_map().iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Rejects what S3 would reject, so the in-memory store and the S3 store fail alike (and
    /// before any bytes are uploaded): oversized metadata, keys that are not lower-case header
    /// tokens, values that are not printable ASCII (S3 would silently RFC 2047-encode them).
    pub fn validate(&self) -> Result<()> {
        let len = self.encoded_len();
        if len > MAX_USER_METADATA_BYTES {
            return Err(ObjectStoreError::InvalidRequest(format!(
                "user metadata is {len} bytes, S3 allows {MAX_USER_METADATA_BYTES}"
            )));
        }
        for (k, v) in self.to_map() {
            let key_ok = !k.is_empty()
                && k.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                });
            if !key_ok {
                return Err(ObjectStoreError::InvalidRequest(format!(
                    "user metadata key {k:?} is not a lower-case header token"
                )));
            }
            if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(ObjectStoreError::InvalidRequest(format!(
                    "user metadata value for {k:?} is not printable ASCII"
                )));
            }
        }
        Ok(())
    }
}

/// `st_mode` as S3 Files writes it: octal, at least seven digits (`0100644`).
pub fn format_mode(mode: u32) -> String {
    format!("{mode:07o}")
}

fn parse_decimal_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o177777)
}

/// Accepts the `ns` suffix or a bare number: the suffix is the documented form, but a bare
/// number is unambiguous and some tools write it.
fn parse_nanos(s: &str) -> Option<i64> {
    let digits = s.strip_suffix("ns").unwrap_or(s);
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_spec_examples() {
        let m = UserMetadata::posix(1000, 1000, S_IFREG | 0o644, 1_775_614_097_672_000_000);
        let map = m.to_map();
        assert_eq!(map["file-owner"], "1000");
        assert_eq!(map["file-group"], "1000");
        assert_eq!(map["file-permissions"], "0100644");
        assert_eq!(map["file-mtime"], "1775614097672000000ns");
        assert_eq!(format_mode(S_IFDIR | 0o755), "0040755");
        assert_eq!(format_mode(S_IFLNK | 0o777), "0120777");
    }

    #[test]
    fn round_trips_and_keeps_unknown_keys() {
        let mut m = UserMetadata::posix(0, 50, S_IFDIR | 0o1777, -5);
        m.other.insert("user-agent".into(), "aws-s3-files".into());
        let back = UserMetadata::from_map(m.to_map());
        assert_eq!(back, m);
    }

    #[test]
    fn malformed_posix_values_are_kept_verbatim_not_guessed() {
        let back = UserMetadata::from_map([
            ("File-Owner", "root"),
            ("file-permissions", "0100648"),
            ("file-mtime", "12"),
            ("file-group", "-1"),
        ]);
        assert_eq!(back.owner, None);
        assert_eq!(back.mode, None);
        assert_eq!(back.group, None);
        assert_eq!(back.mtime_ns, Some(12));
        assert_eq!(back.other["file-owner"], "root");
        assert_eq!(back.other["file-permissions"], "0100648");
        assert_eq!(back.other["file-group"], "-1");
    }

    #[test]
    fn validate_enforces_size_and_charset() {
        assert!(UserMetadata::posix(1, 2, 0o100600, 3).validate().is_ok());
        let mut big = UserMetadata::default();
        big.other
            .insert("a".into(), "x".repeat(MAX_USER_METADATA_BYTES - 1));
        assert!(big.validate().is_ok());
        big.other.insert("b".into(), "y".into());
        assert!(matches!(
            big.validate(),
            Err(ObjectStoreError::InvalidRequest(_))
        ));
        let mut bad_key = UserMetadata::default();
        bad_key.other.insert("Upper".into(), "v".into());
        assert!(bad_key.validate().is_err());
        let mut bad_value = UserMetadata::default();
        bad_value.other.insert("k".into(), "é".into());
        assert!(bad_value.validate().is_err());
    }
}
