//! Byte encoding of everything the state machine persists or replicates. The first byte is
//! the format version, so a future format can be told apart from this one and migrated.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::MetaError;

/// The first development format. Its records lack what version 2 added (special files,
/// `Inode::rdev`, the link index, `CommitObject::expect_change`, the `Exchanged` and
/// `Renamed` replies) and nothing was deployed with it, so it is refused rather than
/// migrated.
pub const FORMAT_V1: u8 = 1;

/// The format [`encode`] writes and the only one [`decode`] reads.
pub const FORMAT_V2: u8 = 2;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V2];
    // postcard only fails on writer errors, and a Vec writer cannot fail.
    out.extend(postcard::to_stdvec(value).expect("encoding to a Vec cannot fail"));
    out
}

pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, MetaError> {
    let corrupt = |reason: String| MetaError::Corrupt { table, reason };
    match bytes.split_first() {
        Some((&FORMAT_V2, rest)) => postcard::from_bytes(rest).map_err(|e| corrupt(e.to_string())),
        // Postcard would often decode a version 1 record into garbage instead of failing,
        // so the version byte is the only reliable way to tell; say what it means.
        Some((&FORMAT_V1, _)) => Err(corrupt(format!(
            "format version {FORMAT_V1} was written by an older development build; this build \
             reads only version {FORMAT_V2} (start from an empty data directory)"
        ))),
        Some((v, _)) => Err(corrupt(format!("unknown format version {v}"))),
        None => Err(corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_the_current_format() {
        let bytes = encode(&(7u64, "x".to_string()));
        assert_eq!(bytes[0], FORMAT_V2);
        let back: (u64, String) = decode("t", &bytes).unwrap();
        assert_eq!(back, (7, "x".to_string()));
    }

    #[test]
    fn refuses_version_1_with_a_reason() {
        let mut bytes = encode(&7u64);
        bytes[0] = FORMAT_V1;
        let err = decode::<u64>("inodes", &bytes).unwrap_err();
        let MetaError::Corrupt { table, reason } = err else {
            panic!("{err:?}")
        };
        assert_eq!(table, "inodes");
        assert!(
            reason.contains("older development build"),
            "unclear reason: {reason}"
        );
        bytes[0] = 9;
        assert!(
            matches!(decode::<u64>("t", &bytes), Err(MetaError::Corrupt { reason, .. }) if reason == "unknown format version 9")
        );
        assert!(decode::<u64>("t", &[]).is_err());
    }
}
