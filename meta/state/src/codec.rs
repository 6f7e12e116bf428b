//! Byte encoding of everything the state machine persists or replicates. The first byte is
//! the format version, so a future format can be told apart from this one and migrated.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::MetaError;

pub const FORMAT_V1: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    // postcard only fails on writer errors, and a Vec writer cannot fail.
    out.extend(postcard::to_stdvec(value).expect("encoding to a Vec cannot fail"));
    out
}

pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, MetaError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, rest)) => postcard::from_bytes(rest).map_err(|e| MetaError::Corrupt {
            table,
            reason: e.to_string(),
        }),
        Some((v, _)) => Err(MetaError::Corrupt {
            table,
            reason: format!("unknown format version {v}"),
        }),
        None => Err(MetaError::Corrupt {
            table,
            reason: "empty record".into(),
        }),
    }
}
