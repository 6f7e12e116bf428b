//! `bucketfs up`: a whole single-machine deployment in one process tree, for trying bucketfs
//! and for development — a one-node metadata cluster and one gateway in this process, an S3
//! endpoint (the user's, or a local moto server), all state under one data directory.
//!
//! Every flag can also come from a TOML file (`--config`, keys as the flags without `--`);
//! a flag on the command line wins over the file, the file over the default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bucketfs_block_cache::CacheConfig;
use bucketfs_gateway::{DataConfig, Gateway, GatewayConfig};
use bucketfs_meta_client::{ClientOptions, MetaClient};
use bucketfs_meta_rocks::{NodeIdentity, RocksBackend};
use bucketfs_meta_server::{GrpcNetwork, MetaNode, NodeConfig};
use bucketfs_object_store::{
    BucketVersioning, ObjectStore, ObjectStoreError, S3Config, S3Credentials, S3ObjectStore,
};
use bucketfs_runtime::{Entropy, SystemClock};
use clap::Args;
use serde::Deserialize;

use crate::gateway::parse_size;
use crate::local_s3::{LocalS3, Serial};

/// The cluster id recorded in the data directory's metadata store.
const CLUSTER_ID: &str = "bucketfs-up";
/// The bucket served when none is named.
const DEFAULT_BUCKET: &str = "bucketfs";

#[derive(Args, Debug, Default)]
pub struct UpArgs {
    /// TOML file with any of these settings (`data-dir = "..."`, `nfs-port = 2049`, ...).
    #[arg(long, env = "BUCKETFS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where everything is kept: the metadata store, the cache, the local S3 server.
    /// [default: ./bucketfs-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// An S3 (or S3-compatible) endpoint to serve a bucket of. Without it, a local S3 server
    /// is started for you. Credentials come from the usual AWS sources
    /// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The bucket to serve; created (with versioning) if it does not exist.
    /// [default: bucketfs]
    #[arg(long)]
    pub bucket: Option<String>,
    /// Serve only the keys under this prefix. [default: the whole bucket]
    #[arg(long)]
    pub prefix: Option<String>,
    /// [default: us-east-1]
    #[arg(long)]
    pub s3_region: Option<String>,
    /// NFS port. [default: 2049]
    #[arg(long)]
    pub nfs_port: Option<u16>,
    /// Address NFS listens on; 0.0.0.0 to let other machines mount. [default: 127.0.0.1]
    #[arg(long)]
    pub nfs_host: Option<String>,
    /// Port of the metadata node (127.0.0.1 only). [default: 7400]
    #[arg(long)]
    pub meta_port: Option<u16>,
    /// Port of the Prometheus /metrics endpoint (127.0.0.1). [default: 9400]
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// Port of the local S3 server, when no --s3-endpoint is given. [default: 9000]
    #[arg(long)]
    pub s3_port: Option<u16>,
    /// Bytes of file data the local cache keeps (K, M, G, T). [default: 1G]
    #[arg(long)]
    pub cache_size: Option<String>,
    /// NFS lease time in seconds. [default: 90]
    #[arg(long)]
    pub lease_secs: Option<u64>,
    /// Serve a bucket without versioning (history is then lost on overwrite and delete).
    #[arg(long)]
    pub allow_unversioned: bool,
}

/// The config file: the same settings, kebab-case keys.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    s3_endpoint: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
    s3_region: Option<String>,
    nfs_port: Option<u16>,
    nfs_host: Option<String>,
    meta_port: Option<u16>,
    metrics_port: Option<u16>,
    s3_port: Option<u16>,
    cache_size: Option<String>,
    lease_secs: Option<u64>,
    allow_unversioned: Option<bool>,
}

/// Everything resolved: flags over file over defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub s3_endpoint: Option<String>,
    pub bucket: String,
    pub prefix: String,
    pub s3_region: String,
    pub nfs_port: u16,
    pub nfs_host: String,
    pub meta_port: u16,
    pub metrics_port: u16,
    pub s3_port: u16,
    pub cache_size: u64,
    pub lease_secs: u64,
    pub allow_unversioned: bool,
}

impl UpArgs {
    /// Merges the flags with the config file and the defaults; errors name the setting.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--config: cannot read {}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .map_err(|e| anyhow::anyhow!("--config {}: {}", path.display(), e.message()))?
            }
            None => FileSettings::default(),
        };
        let cache_size = self
            .cache_size
            .clone()
            .or(file.cache_size)
            .unwrap_or_else(|| "1G".into());
        let settings = Settings {
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./bucketfs-data")),
            s3_endpoint: self.s3_endpoint.clone().or(file.s3_endpoint),
            bucket: self
                .bucket
                .clone()
                .or(file.bucket)
                .unwrap_or_else(|| DEFAULT_BUCKET.into()),
            prefix: self.prefix.clone().or(file.prefix).unwrap_or_default(),
            s3_region: self
                .s3_region
                .clone()
                .or(file.s3_region)
                .unwrap_or_else(|| "us-east-1".into()),
            nfs_port: self.nfs_port.or(file.nfs_port).unwrap_or(2049),
            nfs_host: self
                .nfs_host
                .clone()
                .or(file.nfs_host)
                .unwrap_or_else(|| "127.0.0.1".into()),
            meta_port: self.meta_port.or(file.meta_port).unwrap_or(7400),
            metrics_port: self.metrics_port.or(file.metrics_port).unwrap_or(9400),
            s3_port: self.s3_port.or(file.s3_port).unwrap_or(9000),
            cache_size: parse_size(&cache_size).map_err(|e| anyhow::anyhow!("cache-size: {e}"))?,
            lease_secs: self.lease_secs.or(file.lease_secs).unwrap_or(90),
            allow_unversioned: self.allow_unversioned || file.allow_unversioned.unwrap_or(false),
        };
        if settings.bucket.trim().is_empty() {
            bail!("bucket: must not be empty");
        }
        if settings.lease_secs < 2 {
            bail!("lease-secs: must be at least 2");
        }
        if settings.cache_size < 1 << 20 {
            bail!("cache-size: must be at least 1M");
        }
        if let Some(url) = &settings.s3_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("s3-endpoint: {url:?} is not an http:// or https:// URL");
        }
        Ok(settings)
    }
}

/// Binds `addr` once to tell a busy port from a free one, with one sentence on what to do.
fn check_port(addr: &str, setting: &str) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "{addr} is already in use (another bucketfs up, an NFS server?): stop it, or choose \
             another port with --{setting}"
        ),
        Err(e) => bail!("cannot listen on {addr}: {e}; choose another address with --{setting}"),
    }
}

/// The bucket at the user's endpoint, created with versioning if missing.
async fn remote_bucket(s: &Settings, endpoint: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let mut config = S3Config::new(&s.bucket, &s.s3_region);
    config.endpoint_url = Some(endpoint.to_owned());
    config.force_path_style = true;
    config.max_attempts = 3;
    config.connect_timeout = Duration::from_secs(3);
    config.operation_timeout = Duration::from_secs(30);
    if let (Ok(id), Ok(secret)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        config.credentials = Some(S3Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
        });
    }
    let store = S3ObjectStore::connect(config).await;
    let explain = |e: &ObjectStoreError| match e {
        ObjectStoreError::Transport(t) if t.contains("loading credentials") => format!(
            "no S3 credentials for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or configure an AWS profile"
        ),
        ObjectStoreError::Transport(_) => format!(
            "cannot reach the S3 endpoint {endpoint}: is it running and is the URL right? ({e})"
        ),
        ObjectStoreError::AccessDenied(_) => format!(
            "{endpoint} refused the credentials: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (or an AWS profile) for bucket {} ({e})",
            s.bucket
        ),
        other => format!("S3 at {endpoint}: {other}"),
    };
    match store.bucket_versioning().await {
        Ok(BucketVersioning::Enabled) => {}
        Ok(state) if s.allow_unversioned => {
            tracing::warn!(?state, "serving a bucket without versioning");
        }
        Ok(state) => bail!(
            "bucket {} exists without versioning ({state:?}): bucketfs keeps every version of \
             every file; enable versioning on it, use another --bucket, or pass \
             --allow-unversioned to accept losing history",
            s.bucket
        ),
        Err(ObjectStoreError::NotFound(_)) => {
            store
                .create_bucket()
                .await
                .map_err(|e| anyhow::anyhow!(explain(&e)))?;
            store
                .set_versioning(true)
                .await
                .map_err(|e| anyhow::anyhow!(explain(&e)))?;
            eprintln!("bucketfs up: created bucket {} with versioning", s.bucket);
        }
        Err(e) => bail!(explain(&e)),
    }
    Ok(Arc::new(store))
}

/// The one metadata node, in this process, on RocksDB in `dir`.
async fn meta_node(
    dir: &Path,
    addr: &str,
) -> anyhow::Result<(MetaNode, tokio::task::JoinHandle<()>)> {
    let identity = NodeIdentity {
        cluster_id: CLUSTER_ID.to_owned(),
        node_id: 1,
    };
    let backend = RocksBackend::open(dir, &identity, true).with_context(|| {
        format!(
            "the data directory's metadata store ({}) cannot be used",
            dir.display()
        )
    })?;
    let (log, sm) = backend.into_stores();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; choose another --meta-port"))?;
    let config = NodeConfig {
        cluster_name: CLUSTER_ID.to_owned(),
        // One node: it elects itself; short timeouts only shorten start-up.
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(100),
        ..NodeConfig::new(1, addr)
    };
    let node = MetaNode::start(config, log, sm, GrpcNetwork::new(1), Arc::new(SystemClock))
        .await
        .context("starting the metadata node")?;
    let server = {
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) =
                bucketfs_meta_server::serve(node, listener, std::future::pending::<()>()).await
            {
                tracing::error!(error = %e, "the metadata node's server stopped");
            }
        })
    };
    if node.status().last_log_index.is_none() {
        node.initialize(BTreeMap::from([(1, addr.to_owned())]))
            .await
            .context("initializing the metadata node")?;
    }
    Ok((node, server))
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let s = args.settings()?;
    let nfs_addr = format!("{}:{}", s.nfs_host, s.nfs_port);
    let meta_addr = format!("127.0.0.1:{}", s.meta_port);
    let metrics_addr = format!("127.0.0.1:{}", s.metrics_port);
    check_port(&nfs_addr, "nfs-port")?;
    check_port(&meta_addr, "meta-port")?;
    check_port(&metrics_addr, "metrics-port")?;
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("data-dir: cannot create {}", s.data_dir.display()))?;

    // S3 first: without a bucket there is nothing to serve.
    let (store, local, endpoint): (Arc<dyn ObjectStore>, Option<LocalS3>, String) =
        match &s.s3_endpoint {
            Some(url) => (remote_bucket(&s, url).await?, None, url.clone()),
            None => {
                let s3_addr = format!("127.0.0.1:{}", s.s3_port);
                check_port(&s3_addr, "s3-port")?;
                let (local, fresh) = LocalS3::start(&s.data_dir.join("s3"), s.s3_port).await?;
                let mut config = S3Config::new(&s.bucket, "us-east-1");
                config.endpoint_url = Some(local.endpoint.clone());
                config.force_path_style = true;
                config.credentials = Some(S3Credentials {
                    access_key_id: "local".into(),
                    secret_access_key: "local".into(),
                    session_token: None,
                });
                let raw = S3ObjectStore::connect(config).await;
                if fresh {
                    raw.create_bucket()
                        .await
                        .context("creating the local bucket")?;
                    raw.set_versioning(true)
                        .await
                        .context("turning on versioning of the local bucket")?;
                }
                let endpoint = local.endpoint.clone();
                (Arc::new(Serial::new(Arc::new(raw))), Some(local), endpoint)
            }
        };
    let bucket = s.bucket.clone();

    let metrics = crate::serve::start_metrics(Some(&metrics_addr)).await?;
    let (node, node_server) = meta_node(&s.data_dir.join("meta"), &meta_addr).await?;
    let meta = MetaClient::connect(vec![meta_addr.clone()], ClientOptions::default())
        .await
        .context("connecting to the metadata node")?;
    let lease = Duration::from_secs(s.lease_secs);
    let mut data = DataConfig::default();
    if local.is_some() {
        // See local_s3: the local server's restore rebuilds objects with the same bytes (so
        // the same ETags) but not necessarily the same version ids, and without multipart
        // uploads in progress.
        data.single_put_max = bucketfs_object_store::MAX_PART_SIZE;
        data.pin_versions = false;
    }
    let gateway = Gateway::start(GatewayConfig {
        listen: nfs_addr.clone(),
        fs_name: bucket.clone(),
        bucket: bucket.clone(),
        prefix: s.prefix.clone(),
        store,
        allow_unversioned: s.allow_unversioned,
        meta,
        cache_dir: s.data_dir.join("cache"),
        cache: CacheConfig {
            block_size: 1 << 20,
            capacity_bytes: s.cache_size,
            dirty_limit_bytes: (s.cache_size / 4).max(1 << 20),
        },
        data,
        lease,
        lease_skew_margin: (lease / 4).max(Duration::from_secs(2)),
        renew_interval: (lease / 6).clamp(Duration::from_millis(500), Duration::from_secs(10)),
        server_owner: "bucketfs-up".into(),
        root_squash: false,
        clock: Arc::new(SystemClock),
        entropy: Entropy::os(),
    })
    .await?;

    println!("bucketfs is up. Mount it (as root):");
    println!();
    println!(
        "  sudo mkdir -p /mnt/bucketfs && sudo mount -t nfs4 -o vers=4.1,port={} {}:/ /mnt/bucketfs",
        s.nfs_port,
        if s.nfs_host == "0.0.0.0" {
            "127.0.0.1"
        } else {
            &s.nfs_host
        }
    );
    println!();
    println!("  or, without a kernel NFS client:  bucketfs ls --target {nfs_addr} /");
    println!();
    match &local {
        Some(_) => {
            println!(
                "S3: bucket {bucket} at {endpoint} (a local moto server: its objects live in memory,"
            );
            println!(
                "    and are restored at the next start from {})",
                s.data_dir.join("s3/recording.jsonl").display()
            );
            println!(
                "    aws --endpoint-url {endpoint} s3 ls s3://{bucket}/   (any key id and secret)"
            );
        }
        None => println!("S3: bucket {bucket} at {endpoint}"),
    }
    println!("Metrics: http://{metrics_addr}/metrics");
    println!("Data: {}", s.data_dir.display());
    println!("Stop with Ctrl-C (uncommitted writes are flushed first).");

    crate::serve::shutdown_signal().await;
    eprintln!("bucketfs up: stopping");
    let flushed = gateway.shutdown().await;
    node.shutdown().await;
    node_server.abort();
    crate::serve::stop_metrics(metrics).await;
    drop(local);
    flushed?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bucketfs.toml");
        std::fs::write(
            &file,
            "nfs-port = 3049\nbucket = \"from-file\"\ncache-size = \"2G\"\n",
        )
        .unwrap();
        let args = UpArgs {
            config: Some(file.clone()),
            bucket: Some("from-flag".into()),
            ..UpArgs::default()
        };
        let s = args.settings().unwrap();
        assert_eq!(s.bucket, "from-flag");
        assert_eq!(s.nfs_port, 3049);
        assert_eq!(s.cache_size, 2 << 30);
        assert_eq!(s.meta_port, 7400);
        assert_eq!(s.data_dir, PathBuf::from("./bucketfs-data"));
    }

    #[test]
    fn config_errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bucketfs.toml");
        std::fs::write(&file, "nfs-prot = 1\n").unwrap();
        let err = UpArgs {
            config: Some(file.clone()),
            ..UpArgs::default()
        }
        .settings()
        .unwrap_err()
        .to_string();
        assert!(err.contains("nfs-prot"), "{err}");
        std::fs::write(&file, "cache-size = \"lots\"\n").unwrap();
        let err = UpArgs {
            config: Some(file),
            ..UpArgs::default()
        }
        .settings()
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("cache-size:"), "{err}");
        let err = UpArgs {
            s3_endpoint: Some("localhost:9000".into()),
            ..UpArgs::default()
        }
        .settings()
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("s3-endpoint:"), "{err}");
    }
}
