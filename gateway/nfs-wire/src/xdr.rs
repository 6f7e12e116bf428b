//! XDR (RFC 4506) primitives.
//!
//! [`Decoder`] walks a borrowed `&[u8]` and never reads past its end: every read first checks the
//! bytes that remain and returns [`XdrError::Truncated`] otherwise. Variable-length items are
//! checked against both a per-type maximum and the bytes actually remaining *before* anything is
//! allocated, so a hostile length field can make the decoder allocate at most what the input
//! itself holds. Padding bytes must be present but their value is not checked (RFC 4506 says they
//! are zero; being lenient costs nothing and matches common servers).
//!
//! [`Encoder`] appends to a `Vec<u8>`; it is infallible because the server only encodes values it
//! built itself.

use thiserror::Error;

/// Why an XDR item could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XdrError {
    /// The input ended before the item did.
    #[error("truncated: need {needed} bytes at offset {offset}, {remaining} remain")]
    Truncated {
        offset: usize,
        needed: usize,
        remaining: usize,
    },
    /// A length or count exceeds the limit of its type.
    #[error("{what}: length {len} exceeds the limit {max}")]
    LimitExceeded {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A union or enum discriminant outside the defined set.
    #[error("{what}: invalid discriminant {value}")]
    BadDiscriminant { what: &'static str, value: u32 },
    /// A boolean that is neither 0 nor 1.
    #[error("invalid boolean {0}")]
    BadBool(u32),
    /// A `utf8str_*` item that is not valid UTF-8.
    #[error("{what}: invalid UTF-8")]
    BadUtf8 { what: &'static str },
    /// Bytes left over where the item must fill its container exactly.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

/// Number of padding bytes after an item of `len` bytes.
pub const fn pad_len(len: usize) -> usize {
    (4 - (len % 4)) % 4
}

/// Encoded size of a variable-length opaque/string of `len` bytes (length word + data + padding).
pub const fn opaque_xdr_len(len: usize) -> usize {
    4 + len + pad_len(len)
}

/// A position-tracking XDR reader over a borrowed buffer.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next byte to be read.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread rest of the input, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails unless the whole input was consumed.
    pub fn finish(&self) -> Result<(), XdrError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(XdrError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        if n > self.remaining() {
            return Err(XdrError::Truncated {
                offset: self.pos,
                needed: n,
                remaining: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], XdrError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u32(&mut self) -> Result<u32, XdrError> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }

    pub fn i32(&mut self) -> Result<i32, XdrError> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }

    pub fn u64(&mut self) -> Result<u64, XdrError> {
        Ok(u64::from_be_bytes(self.take_array()?))
    }

    pub fn i64(&mut self) -> Result<i64, XdrError> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }

    pub fn bool(&mut self) -> Result<bool, XdrError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(XdrError::BadBool(v)),
        }
    }

    /// Fixed-length opaque `opaque x[N]` (plus its padding).
    pub fn fixed_opaque<const N: usize>(&mut self) -> Result<[u8; N], XdrError> {
        let out = self.take_array::<N>()?;
        self.take(pad_len(N))?;
        Ok(out)
    }

    /// Variable-length opaque `opaque x<max>`, borrowed from the input.
    pub fn opaque(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], XdrError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(XdrError::LimitExceeded { what, len, max });
        }
        // Check data and padding together so a short final item is reported as truncated
        // before anything is sliced.
        let total = len.saturating_add(pad_len(len));
        if total > self.remaining() {
            return Err(XdrError::Truncated {
                offset: self.pos,
                needed: total,
                remaining: self.remaining(),
            });
        }
        let data = self.take(len)?;
        self.take(pad_len(len))?;
        Ok(data)
    }

    /// Variable-length opaque copied into a `Vec`; allocation is bounded by the input length.
    pub fn opaque_vec(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, XdrError> {
        self.opaque(max, what).map(<[u8]>::to_vec)
    }

    /// A `utf8str_*` string: variable opaque that must be valid UTF-8.
    pub fn utf8(&mut self, max: usize, what: &'static str) -> Result<String, XdrError> {
        let bytes = self.opaque(max, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| XdrError::BadUtf8 { what })
    }

    /// Reads an array count and checks it against `max` and against the remaining input,
    /// given that every element occupies at least `min_elem_size` bytes.
    pub fn array_len(
        &mut self,
        max: usize,
        min_elem_size: usize,
        what: &'static str,
    ) -> Result<usize, XdrError> {
        let count = self.u32()? as usize;
        if count > max {
            return Err(XdrError::LimitExceeded {
                what,
                len: count,
                max,
            });
        }
        let needed = count.saturating_mul(min_elem_size.max(1));
        if needed > self.remaining() {
            return Err(XdrError::Truncated {
                offset: self.pos,
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(count)
    }

    /// A counted array whose elements are decoded by `elem`.
    pub fn array<T, E>(
        &mut self,
        max: usize,
        min_elem_size: usize,
        what: &'static str,
        mut elem: impl FnMut(&mut Self) -> Result<T, E>,
    ) -> Result<Vec<T>, E>
    where
        E: From<XdrError>,
    {
        let count = self.array_len(max, min_elem_size, what)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(elem(self)?);
        }
        Ok(out)
    }
}

/// An XDR writer appending to a `Vec<u8>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Continues writing at the end of an existing buffer.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Drops everything written after `len`; lets a caller undo a partially written item.
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn put_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn put_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn put_bool(&mut self, v: bool) {
        self.put_u32(u32::from(v));
    }

    /// Reserves a u32 slot to be filled in later with [`Encoder::patch_u32`].
    pub fn reserve_u32(&mut self) -> usize {
        let at = self.buf.len();
        self.put_u32(0);
        at
    }

    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    fn put_padding(&mut self, len: usize) {
        self.buf.extend_from_slice(&[0u8; 3][..pad_len(len)]);
    }

    /// Fixed-length opaque: the bytes and their padding, no length word.
    pub fn put_fixed_opaque(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.put_padding(data.len());
    }

    /// Variable-length opaque or string.
    pub fn put_opaque(&mut self, data: &[u8]) {
        self.put_len(data.len());
        self.put_fixed_opaque(data);
    }

    pub fn put_str(&mut self, s: &str) {
        self.put_opaque(s.as_bytes());
    }

    /// An array or opaque length word.
    pub fn put_len(&mut self, len: usize) {
        // Every item we encode is bounded by the record size limit, far below 4 GiB.
        self.put_u32(u32::try_from(len).expect("XDR items are smaller than 4 GiB"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut e = Encoder::new();
        e.put_u32(7);
        e.put_i32(-2);
        e.put_u64(u64::MAX - 1);
        e.put_i64(-5);
        e.put_bool(true);
        e.put_opaque(b"abcde");
        e.put_fixed_opaque(b"xy");
        e.put_str("héllo");
        let bytes = e.into_vec();
        assert_eq!(bytes.len() % 4, 0);
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.u32().unwrap(), 7);
        assert_eq!(d.i32().unwrap(), -2);
        assert_eq!(d.u64().unwrap(), u64::MAX - 1);
        assert_eq!(d.i64().unwrap(), -5);
        assert!(d.bool().unwrap());
        assert_eq!(d.opaque(8, "o").unwrap(), b"abcde");
        assert_eq!(&d.fixed_opaque::<2>().unwrap(), b"xy");
        assert_eq!(d.utf8(16, "s").unwrap(), "héllo");
        d.finish().unwrap();
    }

    #[test]
    fn opaque_checks_limit_then_remaining() {
        let bytes = [0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8];
        assert!(matches!(
            Decoder::new(&bytes).opaque(8, "o"),
            Err(XdrError::LimitExceeded { len: 9, max: 8, .. })
        ));
        assert!(matches!(
            Decoder::new(&bytes).opaque(100, "o"),
            Err(XdrError::Truncated { .. })
        ));
        // Data present but its padding missing.
        let short_pad = [0, 0, 0, 5, 1, 2, 3, 4, 5, 0];
        assert!(matches!(
            Decoder::new(&short_pad).opaque(100, "o"),
            Err(XdrError::Truncated { .. })
        ));
        // Non-zero padding is tolerated.
        let dirty_pad = [0, 0, 0, 1, 9, 0xff, 0xff, 0xff];
        assert_eq!(Decoder::new(&dirty_pad).opaque(4, "o").unwrap(), &[9]);
    }

    #[test]
    fn array_len_bounds_by_remaining_input() {
        let bytes = [0xff, 0xff, 0xff, 0xff];
        assert!(Decoder::new(&bytes).array_len(usize::MAX, 4, "a").is_err());
        let bytes = [0, 0, 0, 2, 0, 0, 0, 1];
        assert!(matches!(
            Decoder::new(&bytes).array_len(10, 4, "a"),
            Err(XdrError::Truncated { needed: 8, .. })
        ));
        assert_eq!(Decoder::new(&bytes).array_len(10, 2, "a").unwrap(), 2);
    }

    #[test]
    fn bad_bool_and_utf8() {
        assert_eq!(
            Decoder::new(&[0, 0, 0, 2]).bool(),
            Err(XdrError::BadBool(2))
        );
        let bytes = [0, 0, 0, 1, 0xff, 0, 0, 0];
        assert!(matches!(
            Decoder::new(&bytes).utf8(4, "s"),
            Err(XdrError::BadUtf8 { .. })
        ));
    }
}
