//! Test support: a real moto S3 server as a child process.
//!
//! Tests that exercise the S3 code path need an S3 implementation that speaks the real wire
//! protocol, including versioning, conditional writes and multipart. moto's server mode does
//! (PyPI `moto[server]`). [`MotoServer::start`] finds the binary, starts it on a free
//! 127.0.0.1 port, waits until it answers HTTP, and kills it when dropped. A missing binary is
//! an error with install instructions, never a silent skip: CI installs moto in the same place.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Result;
use crate::s3::{S3Config, S3Credentials, S3ObjectStore};

/// Environment variable naming the `moto_server` binary.
pub const MOTO_ENV: &str = "BUCKETFS_MOTO_SERVER";
/// Where the project's machines and CI install moto.
pub const MOTO_DEFAULT_PATH: &str = "/var/cache/bucketfs/venv/bin/moto_server";
pub const INSTALL_HINT: &str = "install it with: python3 -m venv /var/cache/bucketfs/venv && \
     /var/cache/bucketfs/venv/bin/pip install 'moto[server]' (or set BUCKETFS_MOTO_SERVER to a moto_server binary)";

/// Region moto is addressed with; any region works, this one needs no location constraint.
pub const MOTO_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server not found ({0}); {INSTALL_HINT}")]
    NotFound(String),
    #[error("could not start moto_server {binary}: {reason}")]
    Start { binary: String, reason: String },
}

/// A running moto server; killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

/// `$BUCKETFS_MOTO_SERVER`, else the project venv, else `moto_server` on `PATH`.
pub fn find_moto_server() -> std::result::Result<PathBuf, MotoError> {
    if let Some(p) = std::env::var_os(MOTO_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(MotoError::NotFound(format!(
                "{MOTO_ENV}={} is not a file",
                p.display()
            )))
        };
    }
    if Path::new(MOTO_DEFAULT_PATH).is_file() {
        return Ok(PathBuf::from(MOTO_DEFAULT_PATH));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    });
    on_path.ok_or_else(|| {
        MotoError::NotFound(format!(
            "{MOTO_ENV} unset, {MOTO_DEFAULT_PATH} missing, no moto_server on PATH"
        ))
    })
}

impl MotoServer {
    /// Starts moto and waits (up to 30 s) until it serves requests.
    pub async fn start() -> std::result::Result<MotoServer, MotoError> {
        let binary = find_moto_server()?;
        let fail = |reason: String| MotoError::Start {
            binary: binary.display().to_string(),
            reason,
        };
        // Another process can grab the port between our probe and moto's bind; then moto
        // exits and we try a new port.
        let mut last_reason = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
            let log = std::env::temp_dir().join(format!("bucketfs-moto-{port}.log"));
            let log_file =
                std::fs::File::create(&log).map_err(|e| fail(format!("log file: {e}")))?;
            let err_file = log_file
                .try_clone()
                .map_err(|e| fail(format!("log file: {e}")))?;
            let child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(err_file)
                .spawn()
                .map_err(|e| fail(e.to_string()))?;
            let mut server = MotoServer {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
            };
            match server.wait_ready(port).await {
                Ok(()) => return Ok(server),
                Err(reason) => last_reason = reason,
            }
        }
        Err(fail(last_reason))
    }

    async fn wait_ready(&mut self, port: u16) -> std::result::Result<(), String> {
        let probe = async {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!(
                        "exited with {status}; log: {}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    ));
                }
                if http_answers(port).await {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), probe).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "did not answer within 30 s; log: {}",
                self.log.display()
            )),
        }
    }

    /// A server shared by every caller that holds the returned `Arc` at the same time, so a
    /// test binary's parallel tests start one moto instead of one each. It is killed when the
    /// last holder drops it; the next caller then starts a fresh one.
    pub async fn shared() -> std::result::Result<Arc<MotoServer>, MotoError> {
        static SHARED: tokio::sync::Mutex<Weak<MotoServer>> =
            tokio::sync::Mutex::const_new(Weak::new());
        let mut slot = SHARED.lock().await;
        if let Some(server) = slot.upgrade() {
            return Ok(server);
        }
        let server = Arc::new(MotoServer::start().await?);
        *slot = Arc::downgrade(&server);
        Ok(server)
    }

    /// A bucket name not used before in this process: `<prefix>-<n>`, lower-cased and cut to
    /// S3's 63-character limit.
    pub fn unique_bucket_name(prefix: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(50)
            .collect();
        format!("{}-{n}", clean.trim_matches('-'))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Client configuration for a bucket on this server.
    pub fn config(&self, bucket: &str) -> S3Config {
        let mut c = S3Config::new(bucket, MOTO_REGION);
        c.endpoint_url = Some(self.endpoint.clone());
        c.force_path_style = true;
        c.credentials = Some(S3Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        });
        c.operation_timeout = Duration::from_secs(30);
        c
    }

    /// Creates `bucket`, with versioning enabled if `versioned`, and returns a store for it.
    pub async fn bucket(&self, bucket: &str, versioned: bool) -> Result<S3ObjectStore> {
        let store = S3ObjectStore::connect(self.config(bucket)).await;
        store.create_bucket().await?;
        if versioned {
            store.set_versioning(true).await?;
        }
        Ok(store)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Best effort: the child may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// True once something on the port answers an HTTP request.
async fn http_answers(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await?;
        std::io::Result::Ok(&buf == b"HTTP/")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}
