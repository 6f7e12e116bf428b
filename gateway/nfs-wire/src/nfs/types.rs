//! Basic NFSv4.1 types (RFC 5662) and the [`Xdr`] codec trait they share.
//!
//! Decoding returns [`DecodeError`], which knows the NFS status an operation must fail with when
//! its arguments cannot be decoded: BADXDR in general, INVAL for invalid UTF-8 in a `utf8str_*`
//! (RFC 8881 §14.2), NAMETOOLONG for an over-long component.

use thiserror::Error;

use crate::nfs::NfsStatus;
use crate::xdr::{Decoder, Encoder, XdrError};

/// NFS4_FHSIZE.
pub const NFS4_FHSIZE: usize = 128;
/// NFS4_VERIFIER_SIZE.
pub const NFS4_VERIFIER_SIZE: usize = 8;
/// NFS4_OTHER_SIZE.
pub const NFS4_OTHER_SIZE: usize = 12;
/// NFS4_SESSIONID_SIZE.
pub const NFS4_SESSIONID_SIZE: usize = 16;
/// NFS4_OPAQUE_LIMIT: bound of owner ids, server scope, etc.
pub const NFS4_OPAQUE_LIMIT: usize = 1024;
/// A component is at most 255 characters; in UTF-8 that is at most 1020 bytes.
pub const MAX_NAME_BYTES: usize = 255 * 4;
/// Symlink targets: PATH_MAX.
pub const MAX_LINK_BYTES: usize = 4096;
/// Owner and group strings.
pub const MAX_OWNER_BYTES: usize = NFS4_OPAQUE_LIMIT;
/// Bitmap words: 8 words cover attribute numbers up to 255, three times what exists.
pub const MAX_BITMAP_WORDS: usize = 8;

/// Why a value could not be decoded, and so which status the operation fails with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error(transparent)]
    Xdr(#[from] XdrError),
    #[error("component of {len} bytes exceeds {max}")]
    NameTooLong { len: usize, max: usize },
}

impl DecodeError {
    /// The status of an operation whose arguments failed to decode this way.
    pub fn status(&self) -> NfsStatus {
        match self {
            DecodeError::Xdr(XdrError::BadUtf8 { .. }) => NfsStatus::Inval,
            DecodeError::Xdr(_) => NfsStatus::BadXdr,
            DecodeError::NameTooLong { .. } => NfsStatus::NameTooLong,
        }
    }
}

/// A type with an XDR representation.
pub trait Xdr: Sized {
    fn encode(&self, e: &mut Encoder);
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;
}

impl Xdr for u32 {
    fn encode(&self, e: &mut Encoder) {
        e.put_u32(*self);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(d.u32()?)
    }
}

impl Xdr for u64 {
    fn encode(&self, e: &mut Encoder) {
        e.put_u64(*self);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(d.u64()?)
    }
}

impl Xdr for bool {
    fn encode(&self, e: &mut Encoder) {
        e.put_bool(*self);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(d.bool()?)
    }
}

impl<const N: usize> Xdr for [u8; N] {
    fn encode(&self, e: &mut Encoder) {
        e.put_fixed_opaque(self);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(d.fixed_opaque::<N>()?)
    }
}

impl Xdr for NfsStatus {
    fn encode(&self, e: &mut Encoder) {
        e.put_u32(self.code());
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let value = d.u32()?;
        NfsStatus::from_code(value).ok_or(DecodeError::Xdr(XdrError::BadDiscriminant {
            what: "nfsstat4",
            value,
        }))
    }
}

/// Encodes a counted array.
pub fn encode_array<T: Xdr>(items: &[T], e: &mut Encoder) {
    e.put_len(items.len());
    for item in items {
        item.encode(e);
    }
}

/// Decodes a counted array of at most `max` elements of at least `min_size` bytes each.
pub fn decode_array<T: Xdr>(
    d: &mut Decoder<'_>,
    max: usize,
    min_size: usize,
    what: &'static str,
) -> Result<Vec<T>, DecodeError> {
    d.array(max, min_size, what, T::decode)
}

/// Declares a struct whose XDR form is its fields in order.
macro_rules! xdr_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::nfs::types::Xdr for $name {
            fn encode(&self, e: &mut $crate::xdr::Encoder) {
                $( $crate::nfs::types::Xdr::encode(&self.$field, e); )*
            }
            fn decode(d: &mut $crate::xdr::Decoder<'_>) -> Result<Self, $crate::nfs::types::DecodeError> {
                Ok(Self { $( $field: <$ty as $crate::nfs::types::Xdr>::decode(d)?, )* })
            }
        }
    };
}
pub(crate) use xdr_struct;

/// Declares a C-like enum with explicit XDR values; unknown values fail to decode.
macro_rules! xdr_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $value:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $name { $($variant = $value),* }

        impl $name {
            pub fn from_u32(value: u32) -> Option<Self> {
                match value {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl $crate::nfs::types::Xdr for $name {
            fn encode(&self, e: &mut $crate::xdr::Encoder) {
                e.put_u32(*self as u32);
            }
            fn decode(d: &mut $crate::xdr::Decoder<'_>) -> Result<Self, $crate::nfs::types::DecodeError> {
                let value = d.u32()?;
                $name::from_u32(value).ok_or($crate::nfs::types::DecodeError::Xdr(
                    $crate::xdr::XdrError::BadDiscriminant { what: stringify!($name), value },
                ))
            }
        }
    };
}
pub(crate) use xdr_enum;

/// nfs_fh4: an opaque file handle of at most 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileHandle(Vec<u8>);

impl FileHandle {
    /// `None` if `bytes` is longer than NFS4_FHSIZE.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() <= NFS4_FHSIZE).then_some(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Xdr for FileHandle {
    fn encode(&self, e: &mut Encoder) {
        e.put_opaque(&self.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self(d.opaque_vec(NFS4_FHSIZE, "nfs_fh4")?))
    }
}

/// component4: one path component (utf8str_cs), 1..=1020 bytes of UTF-8 on the wire. An empty
/// name decodes (the server answers INVAL, RFC 8881 §18.*), so the status stays op-specific.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Component(String);

impl Component {
    /// `None` if longer than [`MAX_NAME_BYTES`].
    pub fn new(name: impl Into<String>) -> Option<Self> {
        let name = name.into();
        (name.len() <= MAX_NAME_BYTES).then_some(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Xdr for Component {
    fn encode(&self, e: &mut Encoder) {
        e.put_str(&self.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match d.utf8(MAX_NAME_BYTES, "component4") {
            Err(XdrError::LimitExceeded { len, max, .. }) => {
                Err(DecodeError::NameTooLong { len, max })
            }
            other => Ok(Self(other?)),
        }
    }
}

/// linktext4: a symlink target. RFC 5662 types it utf8str_cs, but Linux stores arbitrary bytes
/// in symlinks and nfsd does not check, so it is kept raw to round-trip any target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkText(pub Vec<u8>);

impl Xdr for LinkText {
    fn encode(&self, e: &mut Encoder) {
        e.put_opaque(&self.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match d.opaque_vec(MAX_LINK_BYTES, "linktext4") {
            Err(XdrError::LimitExceeded { len, max, .. }) => {
                Err(DecodeError::NameTooLong { len, max })
            }
            other => Ok(Self(other?)),
        }
    }
}

/// A bounded variable-length opaque (owner ids, server scope, …) of at most NFS4_OPAQUE_LIMIT.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Opaque(pub Vec<u8>);

impl Xdr for Opaque {
    fn encode(&self, e: &mut Encoder) {
        e.put_opaque(&self.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self(d.opaque_vec(NFS4_OPAQUE_LIMIT, "opaque")?))
    }
}

/// A `utf8str_*` of at most NFS4_OPAQUE_LIMIT bytes (owner, group, implementation ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8String(pub String);

impl Xdr for Utf8String {
    fn encode(&self, e: &mut Encoder) {
        e.put_str(&self.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self(d.utf8(MAX_OWNER_BYTES, "utf8str")?))
    }
}

xdr_struct! {
    /// stateid4.
    pub struct StateId {
        pub seqid: u32,
        pub other: [u8; NFS4_OTHER_SIZE],
    }
}

impl StateId {
    /// The anonymous stateid (all zeros).
    pub const ANONYMOUS: StateId = StateId {
        seqid: 0,
        other: [0; NFS4_OTHER_SIZE],
    };
    /// The READ bypass stateid (all ones).
    pub const BYPASS: StateId = StateId {
        seqid: u32::MAX,
        other: [0xff; NFS4_OTHER_SIZE],
    };
    /// The current stateid (seqid 1, other all zeros; RFC 8881 §8.2.3).
    pub const CURRENT: StateId = StateId {
        seqid: 1,
        other: [0; NFS4_OTHER_SIZE],
    };
    /// The invalid stateid (seqid all ones, other all zeros).
    pub const INVALID: StateId = StateId {
        seqid: u32::MAX,
        other: [0; NFS4_OTHER_SIZE],
    };
}

/// verifier4.
pub type Verifier = [u8; NFS4_VERIFIER_SIZE];
/// sessionid4.
pub type SessionId = [u8; NFS4_SESSIONID_SIZE];

xdr_struct! {
    /// nfstime4. `nseconds` is not range-checked here; SETATTR validation does that.
    pub struct NfsTime {
        pub seconds: i64,
        pub nseconds: u32,
    }
}

impl Xdr for i64 {
    fn encode(&self, e: &mut Encoder) {
        e.put_i64(*self);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(d.i64()?)
    }
}

xdr_struct! {
    /// change_info4.
    pub struct ChangeInfo {
        pub atomic: bool,
        pub before: u64,
        pub after: u64,
    }
}

xdr_struct! {
    /// fsid4.
    pub struct Fsid {
        pub major: u64,
        pub minor: u64,
    }
}

xdr_struct! {
    /// specdata4 (device numbers).
    pub struct SpecData {
        pub major: u32,
        pub minor: u32,
    }
}

xdr_struct! {
    /// state_owner4 (open_owner4, lock_owner4).
    pub struct StateOwner {
        pub clientid: u64,
        pub owner: Opaque,
    }
}

xdr_enum! {
    /// nfs_ftype4.
    pub enum NfsFileType {
        Regular = 1,
        Directory = 2,
        Block = 3,
        Char = 4,
        Link = 5,
        Socket = 6,
        Fifo = 7,
        AttrDir = 8,
        NamedAttr = 9,
    }
}

/// bitmap4. Trailing zero words are dropped on construction so equal sets compare equal
/// whatever length the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Bitmap(Vec<u32>);

impl Bitmap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_words(mut words: Vec<u32>) -> Self {
        while words.last() == Some(&0) {
            words.pop();
        }
        Self(words)
    }

    pub fn from_bits(bits: &[u32]) -> Self {
        let mut b = Self::new();
        for &bit in bits {
            b.insert(bit);
        }
        b
    }

    pub fn words(&self) -> &[u32] {
        &self.0
    }

    pub fn contains(&self, bit: u32) -> bool {
        let word = (bit / 32) as usize;
        self.0.get(word).is_some_and(|w| w & (1 << (bit % 32)) != 0)
    }

    pub fn insert(&mut self, bit: u32) {
        let word = (bit / 32) as usize;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (bit % 32);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Set bits in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            (0..32u32)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| i as u32 * 32 + b)
        })
    }

    pub fn intersection(&self, other: &Bitmap) -> Bitmap {
        Bitmap::from_words(self.0.iter().zip(&other.0).map(|(a, b)| a & b).collect())
    }

    /// Bits set here but not in `other`.
    pub fn difference(&self, other: &Bitmap) -> Bitmap {
        Bitmap::from_words(
            self.0
                .iter()
                .enumerate()
                .map(|(i, w)| w & !other.0.get(i).copied().unwrap_or(0))
                .collect(),
        )
    }
}

impl Xdr for Bitmap {
    fn encode(&self, e: &mut Encoder) {
        encode_array(&self.0, e);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self::from_words(decode_array(
            d,
            MAX_BITMAP_WORDS,
            4,
            "bitmap4",
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_ops() {
        let b = Bitmap::from_words(vec![0x0003_2065, 0, 0x800, 0]);
        assert_eq!(b.words(), &[0x0003_2065, 0, 0x800]);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![0, 2, 5, 6, 13, 16, 17, 75]
        );
        assert!(b.contains(75) && !b.contains(74) && !b.contains(500));
        let c = Bitmap::from_bits(&[2, 75, 3]);
        assert_eq!(b.intersection(&c), Bitmap::from_bits(&[2, 75]));
        assert_eq!(c.difference(&b), Bitmap::from_bits(&[3]));
    }

    #[test]
    fn component_limits() {
        let mut e = Encoder::new();
        e.put_opaque(&[b'a'; MAX_NAME_BYTES + 1]);
        let err = Component::decode(&mut Decoder::new(e.as_slice())).unwrap_err();
        assert_eq!(err.status(), NfsStatus::NameTooLong);
        let mut e = Encoder::new();
        e.put_opaque(&[0xc3, 0x28]);
        let err = Component::decode(&mut Decoder::new(e.as_slice())).unwrap_err();
        assert_eq!(err.status(), NfsStatus::Inval);
    }

    #[test]
    fn file_handle_limit() {
        assert!(FileHandle::new(vec![0; 129]).is_none());
        let mut e = Encoder::new();
        e.put_opaque(&[1; 129]);
        assert_eq!(
            FileHandle::decode(&mut Decoder::new(e.as_slice()))
                .unwrap_err()
                .status(),
            NfsStatus::BadXdr
        );
    }
}
