//! Whole-file helpers: pipelined READs and WRITEs in rsize/wsize chunks.

use std::future::Future;

use bucketfs_nfs_wire::nfs::ops::StableHow;
use bucketfs_nfs_wire::nfs::types::Verifier;
use bucketfs_nfs_wire::nfs::{NfsStatus, Opcode, SetAttrs};
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::ops::{CreateMode, OpenAccess, OpenFile, OpenOptions};

/// How often a segment is re-sent when COMMIT's verifier differs from the WRITEs'.
const VERIFIER_ATTEMPTS: u32 = 3;
/// Bytes [`Client::read_file`] asks for per segment.
const READ_SEGMENT: usize = 8 << 20;

/// Runs `futs` with at most `depth` in flight, in order; every future is driven to its end
/// even after a failure (a dropped call would retire its session slot), and the first error
/// is returned.
async fn pipelined<T, F>(depth: usize, futs: impl IntoIterator<Item = F>) -> Result<Vec<T>>
where
    F: Future<Output = Result<T>>,
{
    let mut pending = futs.into_iter();
    let mut inflight = FuturesOrdered::new();
    let mut out = Vec::new();
    let mut first_err = None;
    for f in pending.by_ref().take(depth.max(1)) {
        inflight.push_back(f);
    }
    while let Some(r) = inflight.next().await {
        match r {
            Ok(v) if first_err.is_none() => out.push(v),
            Ok(_) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        if first_err.is_none()
            && let Some(f) = pending.next()
        {
            inflight.push_back(f);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A file open for reading, read front to back in segments.
#[derive(Debug)]
pub struct FileReader {
    client: Client,
    file: Option<OpenFile>,
    offset: u64,
    eof: bool,
}

/// A file open for writing, written front to back in segments; each segment is durable
/// (committed with a matching verifier) when [`FileWriter::write_segment`] returns.
#[derive(Debug)]
pub struct FileWriter {
    client: Client,
    file: Option<OpenFile>,
    offset: u64,
    stable: StableHow,
    summary: WriteSummary,
}

/// What a [`FileWriter`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub bytes: u64,
    pub writes: u64,
    pub commits: u64,
    /// Segments sent again because COMMIT's verifier did not match the WRITEs'.
    pub resent_segments: u64,
}

fn close_in_background(client: &Client, file: OpenFile) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let client = client.clone();
        handle.spawn(async move {
            let _ = client.close_file(&file.fh, &file.stateid).await;
        });
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            close_in_background(&self.client, file);
        }
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            close_in_background(&self.client, file);
        }
    }
}

impl FileReader {
    /// The open file (handle, stateid, attributes at open).
    pub fn file(&self) -> Option<&OpenFile> {
        self.file.as_ref()
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads up to `max` bytes from the current offset with several READs in flight; an
    /// empty result means end of file. A short READ ends the segment early.
    pub async fn read_segment(&mut self, max: usize) -> Result<Vec<u8>> {
        let Some(file) = &self.file else {
            return Err(Error::Closed);
        };
        if self.eof || max == 0 {
            return Ok(Vec::new());
        }
        let rsize = self.client.fs_info().rsize as usize;
        let depth = self.client.inner.opts.io_depth;
        let base = self.offset;
        // The size at OPEN bounds the READs sent; a file that grew is read on by the next
        // segment (EOF has not been seen), one that shrank ends early.
        let left = file.attrs.size.saturating_sub(base);
        let max = match usize::try_from(left) {
            Ok(0) => max.min(rsize),
            Ok(left) => max.min(left),
            Err(_) => max,
        };
        let mut chunks = Vec::with_capacity(max.div_ceil(rsize));
        for i in 0..max.div_ceil(rsize) {
            let len = rsize.min(max - i * rsize);
            chunks.push(read_chunk(
                &self.client,
                file,
                base + (i * rsize) as u64,
                len,
            ));
        }
        let mut out = Vec::with_capacity(max.min(64 << 20));
        let mut done = false;
        // Results beyond a short read or EOF are dropped: the next segment starts after the
        // last byte actually returned.
        for (want, r) in pipelined(depth, chunks).await? {
            if done {
                continue;
            }
            let got = r.data.len();
            out.extend_from_slice(&r.data);
            if r.eof {
                self.eof = true;
                done = true;
            } else if got < want {
                done = true;
            }
        }
        if out.is_empty() && !self.eof {
            return Err(Error::Malformed(
                "READ returned no data before end of file".into(),
            ));
        }
        self.offset += out.len() as u64;
        Ok(out)
    }

    /// CLOSE.
    pub async fn close(mut self) -> Result<()> {
        match self.file.take() {
            Some(f) => self.client.close_file(&f.fh, &f.stateid).await,
            None => Ok(()),
        }
    }
}

impl FileWriter {
    pub fn file(&self) -> Option<&OpenFile> {
        self.file.as_ref()
    }

    /// Bytes written (and committed) so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes `data` at the current offset in wsize chunks, several in flight, then one
    /// COMMIT if any WRITE came back unstable. If COMMIT's verifier differs from a WRITE's
    /// (the server restarted and may have lost them) the whole segment is sent again.
    pub async fn write_segment(&mut self, data: &[u8]) -> Result<()> {
        let Some(file) = &self.file else {
            return Err(Error::Closed);
        };
        let wsize = self.client.fs_info().wsize as usize;
        let depth = self.client.inner.opts.io_depth;
        for _attempt in 0..VERIFIER_ATTEMPTS {
            let base = self.offset;
            let mut chunks = Vec::with_capacity(data.len().div_ceil(wsize));
            for (i, chunk) in data.chunks(wsize).enumerate() {
                let off = base + (i * wsize) as u64;
                chunks.push(write_fully(&self.client, file, off, chunk, self.stable));
            }
            let results = pipelined(depth, chunks).await?;
            let writes: u64 = results.iter().map(|(n, _)| n).sum();
            self.summary.writes += writes;
            let unstable: Vec<Verifier> = results.into_iter().flat_map(|(_, v)| v).collect();
            if !unstable.is_empty() {
                let committed = self.client.commit(&file.fh, 0, 0).await?;
                self.summary.commits += 1;
                if unstable.iter().any(|v| *v != committed) {
                    self.summary.resent_segments += 1;
                    continue;
                }
            }
            self.offset += data.len() as u64;
            self.summary.bytes += data.len() as u64;
            return Ok(());
        }
        Err(Error::VerifierUnstable {
            attempts: VERIFIER_ATTEMPTS,
        })
    }

    /// CLOSE; returns what was done.
    pub async fn finish(mut self) -> Result<WriteSummary> {
        if let Some(f) = self.file.take() {
            self.client.close_file(&f.fh, &f.stateid).await?;
        }
        Ok(self.summary)
    }
}

async fn read_chunk(
    client: &Client,
    file: &OpenFile,
    off: u64,
    len: usize,
) -> Result<(usize, crate::ops::ReadResult)> {
    let r = client
        .read(&file.fh, &file.stateid, off, len as u32)
        .await?;
    Ok((len, r))
}

/// Writes all of `chunk` (repeating after short writes); returns the number of WRITEs and
/// the verifiers of those that were not FILE_SYNC.
async fn write_fully(
    client: &Client,
    file: &OpenFile,
    mut off: u64,
    mut chunk: &[u8],
    stable: StableHow,
) -> Result<(u64, Vec<Verifier>)> {
    let mut writes = 0;
    let mut unstable = Vec::new();
    loop {
        let r = client
            .write(&file.fh, &file.stateid, off, chunk, stable)
            .await?;
        writes += 1;
        if r.committed != StableHow::FileSync {
            unstable.push(r.verifier);
        }
        let n = r.count as usize;
        if n == 0 && !chunk.is_empty() {
            return Err(Error::Malformed("WRITE wrote nothing".into()));
        }
        chunk = &chunk[n.min(chunk.len())..];
        off += n as u64;
        if chunk.is_empty() {
            return Ok((writes, unstable));
        }
    }
}

impl Client {
    /// Opens `path` for reading.
    pub async fn open_reader(&self, path: &str) -> Result<FileReader> {
        let (dir, name) = self.lookup_parent(path).await?;
        let file = self.open(&dir, name, &OpenOptions::read()).await?;
        Ok(FileReader {
            client: self.clone(),
            file: Some(file),
            offset: 0,
            eof: false,
        })
    }

    /// Creates or truncates `path` (mode `mode` if created) and opens it for writing with
    /// UNSTABLE4 WRITEs.
    pub async fn create_writer(&self, path: &str, mode: u32) -> Result<FileWriter> {
        let (dir, name) = self.lookup_parent(path).await?;
        let opts = OpenOptions {
            access: OpenAccess::Write,
            create: Some(CreateMode::Unchecked(SetAttrs {
                mode: Some(mode),
                size: Some(0),
                ..SetAttrs::default()
            })),
            ..OpenOptions::default()
        };
        let file = self.open(&dir, name, &opts).await?;
        if file.attrs.is_dir() {
            return Err(Error::Nfs {
                op: Opcode::Open,
                status: NfsStatus::IsDir,
            });
        }
        Ok(FileWriter {
            client: self.clone(),
            file: Some(file),
            offset: 0,
            stable: StableHow::Unstable,
            summary: WriteSummary::default(),
        })
    }

    /// The whole content of `path`.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_file_with(path, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Streams the content of `path` to `sink` in order; returns the byte count. A sink error
    /// ends the read (the file is closed).
    pub async fn read_file_with(
        &self,
        path: &str,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64> {
        let mut reader = self.open_reader(path).await?;
        let result = async {
            loop {
                let seg = reader.read_segment(READ_SEGMENT).await?;
                if seg.is_empty() {
                    return Ok(reader.offset());
                }
                sink(&seg).map_err(|e| Error::InvalidArgument(format!("writing the data: {e}")))?;
            }
        }
        .await;
        let closed = reader.close().await;
        let n = result?;
        closed?;
        Ok(n)
    }

    /// Replaces the content of `path` with `data` (creating it with mode 0644): UNSTABLE
    /// WRITEs in wsize chunks, several in flight, one COMMIT, CLOSE. Everything is sent
    /// again if COMMIT's verifier differs from the WRITEs'.
    pub async fn write_file(&self, path: &str, data: &[u8]) -> Result<WriteSummary> {
        let mut w = self.create_writer(path, 0o644).await?;
        w.write_segment(data).await?;
        w.finish().await
    }
}
