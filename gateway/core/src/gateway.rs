//! [`Gateway`]: one running gateway — the NFS v4.1 listener, its file system on meta and S3,
//! and the background work (batched lease renewals).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bucketfs_block_cache::{BlockCache, CacheConfig, FsDisk};
use bucketfs_meta_client::{ClientError, MetaClient, ReadConsistency};
use bucketfs_meta_state::types::FsInfo;
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use bucketfs_nfs_server::{NfsServer, ServerConfig, SessionLimits, serve};
use bucketfs_object_store::{BucketVersioning, ObjectStore};
use bucketfs_runtime::{Clock, Entropy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::DataConfig;
use crate::fs::{FsParts, GatewayFs};
use crate::metered::MeteredStore;
use crate::nfs_state::{LeaseTerms, MetaOpens, MetaRegistry};

/// Everything a gateway needs to start.
pub struct GatewayConfig {
    /// Where NFS clients connect (port 2049 by default in deployments).
    pub listen: String,
    /// The file system to serve: created in meta on first start with `bucket` and `prefix`.
    pub fs_name: String,
    pub bucket: String,
    pub prefix: String,
    /// The bucket, already configured (endpoint, credentials).
    pub store: Arc<dyn ObjectStore>,
    /// Serve a bucket without versioning: reads are then pinned by ETag only, and earlier
    /// versions of files are gone for good when they are overwritten or deleted.
    pub allow_unversioned: bool,
    pub meta: MetaClient,
    pub cache_dir: PathBuf,
    pub cache: CacheConfig,
    pub data: DataConfig,
    /// NFS lease time; clients renew within it, meta expires them a margin after it.
    pub lease: Duration,
    pub lease_skew_margin: Duration,
    /// How often renewals are batched into one meta write.
    pub renew_interval: Duration,
    /// The same for every gateway of one deployment: clients then treat the gateways as
    /// one server and carry their state from one to another.
    pub server_owner: String,
    pub root_squash: bool,
    pub clock: Arc<dyn Clock>,
    pub entropy: Entropy,
}

/// Why a gateway did not start. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "bucket {bucket} does not have versioning enabled ({state:?}); bucketfs pins reads to \
         object versions and keeps every overwritten or deleted version. Enable it \
         (aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration \
         Status=Enabled), or pass --allow-unversioned to accept losing history"
    )]
    Unversioned {
        bucket: String,
        state: BucketVersioning,
    },
    #[error("cannot reach bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error(
        "file system {name} is stored in bucket {have_bucket} prefix {have_prefix:?}, not \
         bucket {want_bucket} prefix {want_prefix:?}; use another --fs-name or the bucket it \
         was created with"
    )]
    FsMismatch {
        name: String,
        have_bucket: String,
        have_prefix: String,
        want_bucket: String,
        want_prefix: String,
    },
    #[error("metadata cluster: {0}")]
    Meta(String),
    #[error("block cache in {dir}: {reason}")]
    Cache { dir: PathBuf, reason: String },
    #[error("cannot listen for NFS on {addr}: {reason}; choose another port")]
    Listen { addr: String, reason: String },
}

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    fs: GatewayFs<FsDisk>,
    server: Arc<NfsServer<GatewayFs<FsDisk>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    pub async fn start(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let versioning = config.store.bucket_versioning().await.map_err(|e| {
            let mut reason = e.to_string();
            // The SDK's own message buries this under the IMDS probe it tried last.
            if reason.contains("credentials") {
                reason = format!(
                    "no S3 credentials found: set AWS_ACCESS_KEY_ID and \
                             AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for the gateway ({reason})"
                );
            }
            GatewayError::Bucket {
                bucket: config.bucket.clone(),
                reason,
            }
        })?;
        if versioning != BucketVersioning::Enabled {
            if !config.allow_unversioned {
                return Err(GatewayError::Unversioned {
                    bucket: config.bucket.clone(),
                    state: versioning,
                });
            }
            tracing::warn!(bucket = %config.bucket, ?versioning,
                "serving a bucket without versioning: overwritten and deleted data is not kept");
        }
        let info = file_system(&config).await?;
        let disk = FsDisk::new(&config.cache_dir).map_err(|e| GatewayError::Cache {
            dir: config.cache_dir.clone(),
            reason: e.to_string(),
        })?;
        let cache = BlockCache::open(disk, config.cache).map_err(|e| GatewayError::Cache {
            dir: config.cache_dir.clone(),
            reason: e.to_string(),
        })?;
        let store: Arc<dyn ObjectStore> = Arc::new(MeteredStore::new(Arc::clone(&config.store)));
        let fs = GatewayFs::open(
            FsParts {
                meta: config.meta.clone(),
                store,
                cache: Arc::new(cache),
                clock: Arc::clone(&config.clock),
                config: config.data.clone(),
            },
            &info,
        )
        .await
        .map_err(|s| GatewayError::Meta(format!("reading the root of {}: {s:?}", info.name)))?;

        let terms = LeaseTerms {
            lease: config.lease,
            skew_margin: config.lease_skew_margin,
        };
        let registry = Arc::new(MetaRegistry::new(config.meta.clone(), terms));
        let opens = Arc::new(MetaOpens::new(config.meta.clone(), info.id));
        let limits = SessionLimits::default();
        let server_config = ServerConfig {
            max_record: limits.max_request as usize,
            lease: config.lease,
            limits,
            server_owner: config.server_owner.clone().into_bytes(),
            server_scope: config.server_owner.clone().into_bytes(),
            root_squash: config.root_squash,
        };
        let server = Arc::new(NfsServer::new(
            fs.clone(),
            Arc::clone(&registry) as Arc<dyn bucketfs_nfs_server::ClientRegistry>,
            opens,
            Arc::clone(&config.clock),
            server_config,
            config.entropy.next_u64().to_be_bytes(),
            config.entropy.next_u64() as u32,
        ));
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|e| GatewayError::Listen {
                    addr: config.listen.clone(),
                    reason: e.to_string(),
                })?;
        let addr = listener.local_addr().map_err(|e| GatewayError::Listen {
            addr: config.listen.clone(),
            reason: e.to_string(),
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        {
            let server = Arc::clone(&server);
            let mut stop_rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                serve(listener, server, async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await;
            }));
        }
        tasks.push(tokio::spawn(renew_leases(
            Arc::clone(&server),
            registry,
            config.renew_interval,
            stop_rx,
        )));
        tracing::info!(%addr, fs = %info.name, bucket = %info.bucket, prefix = %info.prefix,
            "gateway serving NFS v4.1");
        Ok(Gateway {
            addr,
            fs,
            server,
            stop,
            tasks,
        })
    }

    /// The address NFS clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn server(&self) -> &Arc<NfsServer<GatewayFs<FsDisk>>> {
        &self.server
    }

    /// Stops accepting, then makes every write still held here durable. Clients that have
    /// writes in flight see the connection close and resend them through another gateway.
    pub async fn shutdown(self) -> Result<(), GatewayError> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.fs
            .flush_all()
            .await
            .map_err(|s| GatewayError::Meta(format!("flushing at shutdown: {s:?}")))
    }
}

/// The file system to serve, created on first use.
async fn file_system(config: &GatewayConfig) -> Result<FsInfo, GatewayError> {
    let prefix = crate::keys::normalize_prefix(&config.prefix);
    let existing = match config
        .meta
        .read(
            Query::GetFs {
                name: config.fs_name.clone(),
            },
            ReadConsistency::Linearizable,
        )
        .await
    {
        Ok(QueryReply::Fs(info)) => Some(info),
        Ok(other) => return Err(GatewayError::Meta(format!("unexpected answer {other:?}"))),
        Err(ClientError::Ns(NsError::NoSuchFs(_))) => None,
        Err(e) => return Err(GatewayError::Meta(e.to_string())),
    };
    let info = match existing {
        Some(info) => info,
        None => {
            let created = config
                .meta
                .write(Command::CreateFs {
                    name: config.fs_name.clone(),
                    bucket: config.bucket.clone(),
                    prefix: prefix.clone(),
                })
                .await;
            match created {
                Ok(Reply::Fs(info)) => info,
                // Another gateway created it first.
                Err(ClientError::Ns(NsError::FsExists(_))) => {
                    return Box::pin(file_system(config)).await;
                }
                Ok(other) => {
                    return Err(GatewayError::Meta(format!("unexpected answer {other:?}")));
                }
                Err(e) => return Err(GatewayError::Meta(e.to_string())),
            }
        }
    };
    if info.bucket != config.bucket || crate::keys::normalize_prefix(&info.prefix) != prefix {
        return Err(GatewayError::FsMismatch {
            name: info.name,
            have_bucket: info.bucket,
            have_prefix: info.prefix,
            want_bucket: config.bucket.clone(),
            want_prefix: prefix,
        });
    }
    Ok(info)
}

/// Sends the leases clients renewed with SEQUENCE to meta in one write per interval, and
/// ends the sessions of clients meta has expired.
async fn renew_leases(
    server: Arc<NfsServer<GatewayFs<FsDisk>>>,
    registry: Arc<MetaRegistry>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let clients = server.sessions().take_renewals();
        match registry.renew(clients.clone()).await {
            Ok(unknown) if !unknown.is_empty() => {
                tracing::info!(?unknown, "clients expired in meta; ending their sessions");
                server.forget_clients(&unknown).await;
            }
            Ok(_) => {}
            Err(status) => {
                tracing::warn!(
                    ?status,
                    clients = clients.len(),
                    "lease renewal failed; will retry"
                );
                // Renew them with the next batch.
                for id in clients {
                    server.sessions().note_renewal(id);
                }
            }
        }
    }
}
