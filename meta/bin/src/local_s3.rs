//! The local S3 server of `bucketfs up` when the user gives no S3 endpoint: moto's server mode
//! (from PyPI) in a virtual environment under the data directory.
//!
//! moto keeps objects in memory. So that a second `bucketfs up` on the same data directory
//! finds its files again, moto records every request it serves (its recorder feature) to
//! `<data-dir>/s3/recording.jsonl` and replays them at the next start. Replaying rebuilds the
//! same objects with the same bytes, hence the same ETags; version ids are random, so the
//! gateway pins reads by ETag on this server (`DataConfig::pin_versions` off). The recording
//! starts with a fixed seed and the gateway sends this server one request at a time
//! ([`Serial`]), which keeps even the ids the same unless S3 API users interleave requests.
//! Multipart upload ids come from the OS, so `bucketfs up` keeps every object a single PUT
//! on this server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use bucketfs_object_store::{
    BucketVersioning, CompletedPart, CopyOptions, CopySource, DeleteOutput, ETag, GetOptions,
    GetOutput, ListOptions, ListPage, ListVersionsOptions, ObjectMeta, ObjectStore, Precondition,
    PutOptions, PutOutput, Result, UploadId, UserMetadata, VersionId, VersionsPage,
};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The seed of moto's id generator, the first request of every recording.
const SEED: u64 = 20_261_203;

pub struct LocalS3 {
    child: Child,
    pub endpoint: String,
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server` from `BUCKETFS_MOTO_SERVER`, or installed (once) into `<dir>/venv`.
fn moto_server(dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("BUCKETFS_MOTO_SERVER") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("BUCKETFS_MOTO_SERVER={} does not exist", p.display());
        }
        return Ok(p);
    }
    let venv = dir.join("venv");
    let server = venv.join("bin/moto_server");
    if server.is_file() {
        return Ok(server);
    }
    eprintln!(
        "bucketfs up: installing moto, the local S3 server, into {} (first start only; needs \
         network access to PyPI)",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context(
            "running python3 -m venv (install python3 and python3-venv, or pass --s3-endpoint)",
        )?;
    if !status.success() {
        bail!(
            "python3 -m venv {} failed; install python3-venv (apt-get install python3-venv), or \
             pass --s3-endpoint to use an S3 service you already have",
            venv.display()
        );
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "moto[server]"])
        .status()
        .context("running pip")?;
    if !status.success() || !server.is_file() {
        bail!(
            "pip install moto[server] failed; check access to PyPI, or pass --s3-endpoint to use \
             an S3 service you already have"
        );
    }
    Ok(server)
}

/// One HTTP/1.0 request to the server; returns the status code.
async fn http(endpoint_port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", endpoint_port)).await?;
    // The Host header must name the port: moto's replay sends the recorded requests to the
    // host the replay request names.
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{endpoint_port}\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))
}

impl LocalS3 {
    /// Starts moto on 127.0.0.1:`port` with its state under `dir`, replaying what an earlier
    /// run recorded. Returns whether the state was new (nothing to replay).
    pub async fn start(dir: &Path, port: u16) -> anyhow::Result<(LocalS3, bool)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let server = moto_server(dir)?;
        let recording = dir.join("recording.jsonl");
        let fresh = std::fs::metadata(&recording).map_or(true, |m| m.len() == 0);
        let log = std::fs::File::create(dir.join("moto.log"))
            .with_context(|| format!("creating {}", dir.join("moto.log").display()))?;
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        let mut s3 = LocalS3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // The recorder's own endpoints are neither recorded nor draw ids: a safe probe.
        let mut ready = false;
        for _ in 0..300 {
            if let Ok(Some(status)) = s3.child.try_wait() {
                bail!(
                    "the local S3 server exited ({status}); see {}",
                    dir.join("moto.log").display()
                );
            }
            if http(port, "POST", "/moto-api/recorder/start-recording")
                .await
                .is_ok_and(|c| c == 200)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            bail!(
                "the local S3 server did not answer on port {port} within 30 s; see {}",
                dir.join("moto.log").display()
            );
        }
        let path = if fresh {
            format!("/moto-api/seed?a={SEED}")
        } else {
            eprintln!(
                "bucketfs up: restoring the local S3 server's objects from {}",
                recording.display()
            );
            "/moto-api/recorder/replay-recording".to_owned()
        };
        let code = http(port, "POST", &path)
            .await
            .context("talking to the local S3 server")?;
        if code != 200 {
            bail!("the local S3 server answered {code} to {path}");
        }
        let _ = &mut s3;
        Ok((s3, fresh))
    }
}

/// Sends calls to the store one at a time (see the module documentation).
pub struct Serial {
    inner: Arc<dyn ObjectStore>,
    turn: tokio::sync::Mutex<()>,
}

impl Serial {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait]
impl ObjectStore for Serial {
    async fn bucket_versioning(&self) -> Result<BucketVersioning> {
        let _t = self.turn.lock().await;
        self.inner.bucket_versioning().await
    }
    async fn head(&self, key: &str, version_id: Option<&VersionId>) -> Result<ObjectMeta> {
        let _t = self.turn.lock().await;
        self.inner.head(key, version_id).await
    }
    async fn get_range(&self, key: &str, opts: GetOptions) -> Result<GetOutput> {
        let _t = self.turn.lock().await;
        self.inner.get_range(key, opts).await
    }
    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<PutOutput> {
        let _t = self.turn.lock().await;
        self.inner.put(key, body, opts).await
    }
    async fn copy_object(
        &self,
        source: &CopySource,
        dst_key: &str,
        opts: CopyOptions,
    ) -> Result<PutOutput> {
        let _t = self.turn.lock().await;
        self.inner.copy_object(source, dst_key, opts).await
    }
    async fn delete(&self, key: &str, version_id: Option<&VersionId>) -> Result<DeleteOutput> {
        let _t = self.turn.lock().await;
        self.inner.delete(key, version_id).await
    }
    async fn list(&self, opts: ListOptions) -> Result<ListPage> {
        let _t = self.turn.lock().await;
        self.inner.list(opts).await
    }
    async fn list_versions(&self, opts: ListVersionsOptions) -> Result<VersionsPage> {
        let _t = self.turn.lock().await;
        self.inner.list_versions(opts).await
    }
    async fn create_multipart(&self, key: &str, metadata: UserMetadata) -> Result<UploadId> {
        let _t = self.turn.lock().await;
        self.inner.create_multipart(key, metadata).await
    }
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        body: Bytes,
    ) -> Result<ETag> {
        let _t = self.turn.lock().await;
        self.inner
            .upload_part(key, upload_id, part_number, body)
            .await
    }
    async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &UploadId,
        part_number: u32,
        source: &CopySource,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ETag> {
        let _t = self.turn.lock().await;
        self.inner
            .upload_part_copy(key, upload_id, part_number, source, range)
            .await
    }
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        precondition: Precondition,
    ) -> Result<PutOutput> {
        let _t = self.turn.lock().await;
        self.inner
            .complete_multipart(key, upload_id, parts, precondition)
            .await
    }
    async fn abort_multipart(&self, key: &str, upload_id: &UploadId) -> Result<()> {
        let _t = self.turn.lock().await;
        self.inner.abort_multipart(key, upload_id).await
    }
}
