//! ONC RPC record marking over a byte stream (RFC 5531 §11).
//!
//! A record is a sequence of fragments, each preceded by a 4-byte header whose top bit marks the
//! last fragment and whose low 31 bits give the fragment length. [`RecordReader`] is a push-style
//! state machine: the transport feeds whatever bytes arrived and takes complete records out. It
//! never reserves memory from a header's length field — a record buffer only grows as real bytes
//! arrive — and a record whose announced size exceeds the configured maximum poisons the reader
//! with [`RecordError::TooLarge`], which tells the server to close the connection (there is no
//! way to resynchronise a stream after skipping a record's worth of bytes we refuse to buffer).

use std::collections::VecDeque;

use thiserror::Error;

const LAST_FRAGMENT: u32 = 0x8000_0000;
const MAX_FRAGMENT: usize = 0x7fff_ffff;

/// The stream can no longer be read; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("record of at least {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
}

#[derive(Debug)]
enum State {
    /// Collecting the 4 header bytes of the next fragment.
    Header {
        bytes: [u8; 4],
        have: usize,
    },
    /// Copying `left` more bytes of the current fragment.
    Body {
        left: usize,
        last: bool,
    },
    Failed(RecordError),
}

/// Reassembles RPC records from stream bytes.
#[derive(Debug)]
pub struct RecordReader {
    max_record: usize,
    state: State,
    current: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
}

impl RecordReader {
    /// `max_record` bounds the size of one reassembled record (all fragments together).
    pub fn new(max_record: usize) -> Self {
        Self {
            max_record,
            state: State::Header {
                bytes: [0; 4],
                have: 0,
            },
            current: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    /// Consumes `data`; complete records become available through [`RecordReader::next_record`].
    /// Once an error is returned every later call returns it again.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), RecordError> {
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Header { bytes, have } => {
                    if data.is_empty() {
                        return Ok(());
                    }
                    let n = (4 - *have).min(data.len());
                    bytes[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have < 4 {
                        return Ok(());
                    }
                    let header = u32::from_be_bytes(*bytes);
                    let len = (header & !LAST_FRAGMENT) as usize;
                    let last = header & LAST_FRAGMENT != 0;
                    let size = self.current.len().saturating_add(len);
                    if size > self.max_record {
                        let e = RecordError::TooLarge {
                            size,
                            max: self.max_record,
                        };
                        self.current = Vec::new();
                        self.state = State::Failed(e.clone());
                        return Err(e);
                    }
                    self.state = State::Body { left: len, last };
                }
                State::Body { left, last } => {
                    let n = (*left).min(data.len());
                    self.current.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    *left -= n;
                    if *left > 0 {
                        return Ok(());
                    }
                    if *last {
                        self.ready.push_back(std::mem::take(&mut self.current));
                    }
                    self.state = State::Header {
                        bytes: [0; 4],
                        have: 0,
                    };
                }
            }
        }
    }

    /// The next complete record, oldest first.
    pub fn next_record(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Bytes of the record being reassembled (for memory accounting by the transport).
    pub fn buffered(&self) -> usize {
        self.current.len() + self.ready.iter().map(Vec::len).sum::<usize>()
    }
}

/// Frames `payload` as one single-fragment record.
pub fn encode_record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&record_header(payload.len()));
    out.extend_from_slice(payload);
    out
}

/// The header of a single-fragment record of `len` bytes, for transports that write the header
/// and the payload separately (vectored I/O).
pub fn record_header(len: usize) -> [u8; 4] {
    assert!(
        len <= MAX_FRAGMENT,
        "RPC replies are bounded far below 2 GiB"
    );
    (LAST_FRAGMENT | len as u32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_fragments_fed_byte_by_byte() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&3u32.to_be_bytes());
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(&(LAST_FRAGMENT | 2).to_be_bytes());
        stream.extend_from_slice(b"de");
        stream.extend_from_slice(&encode_record(b"second"));
        let mut r = RecordReader::new(64);
        for b in &stream {
            r.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(r.next_record().unwrap(), b"abcde");
        assert_eq!(r.next_record().unwrap(), b"second");
        assert!(r.next_record().is_none());
    }

    #[test]
    fn oversized_record_poisons_the_reader() {
        let mut r = RecordReader::new(8);
        r.feed(&5u32.to_be_bytes()).unwrap();
        r.feed(b"12345").unwrap();
        let err = r.feed(&(LAST_FRAGMENT | 4).to_be_bytes()).unwrap_err();
        assert_eq!(err, RecordError::TooLarge { size: 9, max: 8 });
        assert_eq!(r.feed(b"x"), Err(err));
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn huge_header_allocates_nothing() {
        let mut r = RecordReader::new(usize::MAX);
        r.feed(&(LAST_FRAGMENT | 0x7fff_ffff).to_be_bytes())
            .unwrap();
        r.feed(b"ab").unwrap();
        assert_eq!(r.buffered(), 2);
        assert!(r.next_record().is_none());
    }

    #[test]
    fn empty_last_fragment_yields_empty_record() {
        let mut r = RecordReader::new(8);
        r.feed(&LAST_FRAGMENT.to_be_bytes()).unwrap();
        assert_eq!(r.next_record().unwrap(), Vec::<u8>::new());
    }
}
