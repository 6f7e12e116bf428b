//! `bucketfs gateway serve`: one NFS v4.1 gateway in the foreground, on a metadata cluster
//! and an S3 bucket.
//!
//! Start-up checks run in the order a user would fix them: the flags, the bucket (reachable,
//! versioned), the metadata cluster (reachable, the file system's bucket matches), the cache
//! directory, then the NFS port.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bucketfs_block_cache::CacheConfig;
use bucketfs_gateway::{DataConfig, Gateway, GatewayConfig};
use bucketfs_meta_client::{ClientOptions, MetaClient};
use bucketfs_object_store::{ObjectStore, S3Config, S3Credentials, S3ObjectStore};
use bucketfs_runtime::{Entropy, SystemClock};
use clap::Args;

use crate::cluster_arg::{check_addr, parse_addrs};
use crate::serve::shutdown_signal;

#[derive(Args, Clone)]
pub struct GatewayArgs {
    /// Address NFS clients connect to.
    #[arg(long, default_value = "0.0.0.0:2049", env = "BUCKETFS_NFS_LISTEN")]
    pub listen: String,
    /// Metadata nodes, HOST:PORT[,HOST:PORT...] (any subset of the cluster).
    #[arg(long, env = "BUCKETFS_META")]
    pub meta: String,
    /// The S3 bucket to serve. It must have versioning enabled.
    #[arg(long, env = "BUCKETFS_BUCKET")]
    pub bucket: String,
    /// Serve only the keys under this prefix of the bucket (the file system root).
    #[arg(long, default_value = "", env = "BUCKETFS_PREFIX")]
    pub prefix: String,
    /// Name of the file system in the metadata cluster; created on first start. Defaults to
    /// the bucket name.
    #[arg(long, env = "BUCKETFS_FS_NAME")]
    pub fs_name: Option<String>,
    /// S3 endpoint for S3-compatible stores (MinIO, moto, ...); AWS when not given.
    #[arg(long, env = "BUCKETFS_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    pub s3_region: String,
    /// Use virtual-hosted-style URLs (bucket.host) instead of path-style (host/bucket).
    /// Path style is the default with --s3-endpoint, virtual-hosted without.
    #[arg(long)]
    pub s3_virtual_hosted: bool,
    /// Serve a bucket without versioning. Overwritten and deleted file versions are then
    /// lost for good, and reads are pinned by ETag only.
    #[arg(long)]
    pub allow_unversioned: bool,
    /// Directory of the local block cache (created if missing). A cache only: deleting it
    /// loses nothing.
    #[arg(
        long,
        default_value = "./bucketfs-data/gateway-cache",
        env = "BUCKETFS_CACHE_DIR"
    )]
    pub cache_dir: PathBuf,
    /// Bytes of clean blocks the cache keeps (suffixes K, M, G, T; powers of 1024).
    #[arg(long, default_value = "4G", value_parser = parse_size)]
    pub cache_size: u64,
    /// Bytes of written-but-uncommitted data the gateway holds before it flushes.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    pub dirty_limit: u64,
    /// NFS lease time in seconds. Clients renew within it; a client silent for longer loses
    /// its opens and locks.
    #[arg(long, default_value_t = 90)]
    pub lease_secs: u64,
    /// Server identity sent to clients; the same on every gateway of one deployment, so
    /// clients move between them with their state.
    #[arg(long, default_value = "bucketfs")]
    pub server_owner: String,
    /// Map requests from uid 0 to nobody (65534).
    #[arg(long)]
    pub root_squash: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (host:port). Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Export tracing spans over OTLP/gRPC to this collector. Off unless given.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl GatewayArgs {
    pub fn otlp_endpoint(&self) -> Option<String> {
        self.otlp_endpoint.clone().filter(|e| !e.trim().is_empty())
    }
}

/// `4G`, `256M`, `1024` (bytes); powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 512M or 4G"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?}; use K, M, G or T"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// The S3 store the flags describe. Credentials come from the AWS default chain
/// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles).
pub async fn s3_store(args: &GatewayArgs) -> anyhow::Result<S3ObjectStore> {
    let mut config = S3Config::new(&args.bucket, &args.s3_region);
    config.endpoint_url = args.s3_endpoint.clone();
    config.force_path_style = args.s3_endpoint.is_some() && !args.s3_virtual_hosted;
    // The gateway retries itself, but a few quick SDK retries absorb connection resets.
    config.max_attempts = 3;
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
    Ok(S3ObjectStore::connect(config).await)
}

pub async fn gateway_config(args: &GatewayArgs) -> anyhow::Result<GatewayConfig> {
    check_addr(&args.listen).context("--listen")?;
    let meta_addrs = parse_addrs(&args.meta).context("--meta")?;
    if args.bucket.trim().is_empty() {
        bail!("--bucket is empty; name the S3 bucket to serve");
    }
    if args.lease_secs < 2 {
        bail!("--lease-secs must be at least 2 (clients renew within the lease)");
    }
    let cache = CacheConfig {
        block_size: 1 << 20,
        capacity_bytes: args.cache_size,
        dirty_limit_bytes: args.dirty_limit,
    };
    if cache.capacity_bytes < u64::from(cache.block_size) {
        bail!("--cache-size must be at least 1M (one block)");
    }
    if cache.dirty_limit_bytes < u64::from(cache.block_size) {
        bail!("--dirty-limit must be at least 1M (one block)");
    }
    let store: Arc<dyn ObjectStore> = Arc::new(s3_store(args).await?);
    let meta = MetaClient::connect(meta_addrs, ClientOptions::default())
        .await
        .context("--meta")?;
    let lease = Duration::from_secs(args.lease_secs);
    Ok(GatewayConfig {
        listen: args.listen.clone(),
        fs_name: args.fs_name.clone().unwrap_or_else(|| args.bucket.clone()),
        bucket: args.bucket.clone(),
        prefix: args.prefix.clone(),
        store,
        allow_unversioned: args.allow_unversioned,
        meta,
        cache_dir: args.cache_dir.clone(),
        cache,
        data: DataConfig::default(),
        lease,
        // Node clocks may differ; meta waits this much longer before dropping a client.
        lease_skew_margin: (lease / 4).max(Duration::from_secs(2)),
        renew_interval: (lease / 6).clamp(Duration::from_millis(500), Duration::from_secs(10)),
        server_owner: args.server_owner.clone(),
        root_squash: args.root_squash,
        clock: Arc::new(SystemClock),
        entropy: Entropy::os(),
    })
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    if let Some(addr) = &args.metrics_listen {
        check_addr(addr).context("--metrics-listen")?;
    }
    let config = gateway_config(&args).await?;
    let metrics = crate::serve::start_metrics(args.metrics_listen.as_deref()).await?;
    let gateway = Gateway::start(config).await?;
    println!("bucketfs gateway: NFS v4.1 on {}", gateway.addr());
    shutdown_signal().await;
    tracing::info!("shutting down: flushing uncommitted writes");
    gateway.shutdown().await?;
    crate::serve::stop_metrics(metrics).await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("3k"), Ok(3 << 10));
        assert!(parse_size("4X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
