//! A whole deployment of real processes on 127.0.0.1 for tests: moto as S3 (one versioned
//! bucket per test), a metadata cluster of `bucketfs meta serve` processes, and any number of
//! `bucketfs gateway serve` processes on it.

use std::fs::OpenOptions;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bucketfs_object_store::moto::MotoServer;
use bucketfs_object_store::{
    ListOptions, ListVersionsOptions, ObjectMeta, ObjectStore, S3ObjectStore, VersionEntry,
};

use super::{Cluster, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_bucketfs");
const WAIT: Duration = Duration::from_secs(60);

pub struct GatewayProc {
    pub addr: String,
    pub metrics: String,
    child: Option<Child>,
    log: std::path::PathBuf,
}

pub struct System {
    pub moto: Arc<MotoServer>,
    pub bucket: String,
    /// The bucket as an S3 API user sees it.
    pub store: S3ObjectStore,
    pub meta: Cluster,
    pub gateways: Vec<GatewayProc>,
    dir: tempfile::TempDir,
    lease_secs: u64,
}

impl System {
    /// moto with a fresh versioned bucket and a metadata cluster of `meta_nodes` nodes.
    pub async fn start(meta_nodes: u64) -> System {
        let moto = MotoServer::shared().await.expect(
            "moto_server (pip install 'moto[server]'; cargo xtask ci installs it, or set \
             BUCKETFS_MOTO_SERVER)",
        );
        let bucket = MotoServer::unique_bucket_name("bfs");
        let store = moto.bucket(&bucket, true).await.expect("versioned bucket");
        let meta = Cluster::start(meta_nodes, &[]).await;
        System {
            moto,
            bucket,
            store,
            meta,
            gateways: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
            lease_secs: 10,
        }
    }

    pub fn meta_addrs(&self) -> String {
        self.meta
            .ids()
            .iter()
            .map(|id| self.meta.addr(*id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The command line of a gateway on this system, without spawning it.
    pub fn gateway_command(&self, listen: &str, cache_dir: &std::path::Path) -> Command {
        self.gateway_command_for(&self.bucket, listen, cache_dir)
    }

    /// The same for another bucket of the same S3 server.
    pub fn gateway_command_for(
        &self,
        bucket: &str,
        listen: &str,
        cache_dir: &std::path::Path,
    ) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "gateway",
            "serve",
            "--listen",
            listen,
            "--meta",
            &self.meta_addrs(),
            "--bucket",
            bucket,
            "--s3-endpoint",
            self.moto.endpoint(),
            "--cache-dir",
            &cache_dir.display().to_string(),
            "--lease-secs",
            &self.lease_secs.to_string(),
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("BUCKETFS_LOG", "info");
        cmd
    }

    /// Starts one more gateway; returns its index. Waits until it accepts NFS connections.
    pub async fn start_gateway(&mut self, extra: &[&str]) -> usize {
        let i = self.gateways.len();
        let addr = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let log = self.dir.path().join(format!("gateway-{i}.log"));
        let cache = self.dir.path().join(format!("gateway-{i}-cache"));
        let mut gw = GatewayProc {
            addr,
            metrics,
            child: None,
            log,
        };
        self.spawn_gateway(&mut gw, &cache, extra);
        self.gateways.push(gw);
        self.wait_gateway(i).await;
        i
    }

    fn spawn_gateway(&self, gw: &mut GatewayProc, cache: &std::path::Path, extra: &[&str]) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&gw.log)
            .expect("gateway log");
        let child = self
            .gateway_command(&gw.addr, cache)
            .args(["--metrics-listen", &gw.metrics])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn bucketfs gateway serve");
        gw.child = Some(child);
    }

    async fn wait_gateway(&mut self, i: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if tokio::net::TcpStream::connect(&self.gateways[i].addr)
                .await
                .is_ok()
            {
                return;
            }
            if let Some(child) = self.gateways[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("gateway {i} exited with {status}:\n{}", self.gateway_log(i));
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway {i} does not listen; its log:\n{}",
                self.gateway_log(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn gateway_addr(&self, i: usize) -> String {
        self.gateways[i].addr.clone()
    }

    /// SIGKILL: whatever the gateway held and had not made durable is gone with it.
    pub fn kill_gateway(&mut self, i: usize) {
        if let Some(mut child) = self.gateways[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: the gateway flushes what it holds and exits.
    pub fn stop_gateway(&mut self, i: usize) -> std::process::ExitStatus {
        let child = self.gateways[i].child.take().expect("a running gateway");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut child = child;
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!(
            "gateway {i} did not stop on SIGTERM:\n{}",
            self.gateway_log(i)
        );
    }

    /// The file gateway `i` logs to (all of it; `gateway_log` is its tail).
    pub fn gateway_log_path(&self, i: usize) -> std::path::PathBuf {
        self.gateways[i].log.clone()
    }

    pub fn gateway_log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.gateways[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The Prometheus text of gateway `i`.
    pub async fn gateway_metrics(&self, i: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&self.gateways[i].metrics)
            .await
            .expect("metrics endpoint");
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("response");
        out
    }

    /// Every current object under `prefix`, with its metadata.
    pub async fn objects(&self, prefix: &str) -> Vec<ObjectMeta> {
        let mut out = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .store
                .list(ListOptions {
                    prefix: prefix.to_owned(),
                    delimiter: None,
                    continuation: continuation.clone(),
                    max_keys: None,
                })
                .await
                .expect("list");
            for o in &page.objects {
                out.push(self.store.head(&o.key, None).await.expect("head"));
            }
            match page.next_continuation {
                Some(c) => continuation = Some(c),
                None => return out,
            }
        }
    }

    /// Every version and delete marker of `key`, newest first.
    pub async fn versions(&self, key: &str) -> Vec<VersionEntry> {
        let page = self
            .store
            .list_versions(ListVersionsOptions {
                prefix: key.to_owned(),
                ..ListVersionsOptions::default()
            })
            .await
            .expect("list versions");
        page.versions.into_iter().filter(|v| v.key == key).collect()
    }

    /// The current bytes of `key`, or `None` if it has no current object.
    pub async fn object_bytes(&self, key: &str) -> Option<Vec<u8>> {
        match self.store.get_range(key, Default::default()).await {
            Ok(out) => Some(out.body.to_vec()),
            Err(bucketfs_object_store::ObjectStoreError::NotFound(_)) => None,
            Err(e) => panic!("get {key}: {e}"),
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for gw in &mut self.gateways {
            if let Some(mut child) = gw.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
