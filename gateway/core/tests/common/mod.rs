//! A gateway file system in one process: a 1-node metadata cluster on in-memory storage
//! (real gRPC on 127.0.0.1), an in-memory S3 behind the fault-injecting decorator, and a
//! block cache in a temporary directory. Tests call the `FileSystem` methods directly.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bucketfs_block_cache::{BlockCache, CacheConfig, FsDisk};
use bucketfs_gateway::{DataConfig, FsParts, GatewayFs};
use bucketfs_meta_client::{ClientOptions, MetaClient, ReadConsistency};
use bucketfs_meta_server::{GrpcNetwork, MetaNode, NodeConfig, serve};
use bucketfs_meta_state::{Command, Query, QueryReply, Reply};
use bucketfs_meta_store::MemDisk;
use bucketfs_object_store::{
    FaultConfig, FaultyObjectStore, MemConfig, MemObjectStore, ObjectStore, tokio_sleep,
};
use bucketfs_runtime::{Entropy, SystemClock};
use tokio::net::TcpListener;

pub struct Setup {
    pub fs: GatewayFs<FsDisk>,
    pub store: Arc<FaultyObjectStore<Arc<MemObjectStore>>>,
    pub meta: MetaClient,
    info: bucketfs_meta_state::types::FsInfo,
    _node: MetaNode,
    _dir: tempfile::TempDir,
}

fn cache_in(dir: &std::path::Path) -> BlockCache<FsDisk> {
    BlockCache::open(
        FsDisk::new(dir).expect("disk"),
        CacheConfig {
            block_size: 64 << 10,
            capacity_bytes: 16 << 20,
            dirty_limit_bytes: 4 << 20,
        },
    )
    .expect("cache")
}

impl Setup {
    /// Another gateway on the same metadata cluster and bucket, with its own empty cache.
    pub async fn second_gateway(&self, cache_dir: &std::path::Path) -> GatewayFs<FsDisk> {
        self.second_gateway_with(cache_dir, DataConfig::default())
            .await
    }

    pub async fn second_gateway_with(
        &self,
        cache_dir: &std::path::Path,
        config: DataConfig,
    ) -> GatewayFs<FsDisk> {
        GatewayFs::open(
            FsParts {
                meta: self.meta.clone(),
                store: Arc::clone(&self.store) as Arc<dyn ObjectStore>,
                cache: Arc::new(cache_in(cache_dir)),
                clock: Arc::new(SystemClock),
                config,
            },
            &self.info,
        )
        .await
        .expect("second gateway")
    }
}

pub async fn start() -> Setup {
    start_with(DataConfig::default()).await
}

/// With parts as small as `data.min_part_size` accepted by the in-memory S3, so multipart
/// uploads happen for small files.
pub async fn start_small_parts(data: DataConfig) -> Setup {
    let mem = MemConfig {
        min_part_size: data.min_part_size,
        ..MemConfig::default()
    };
    start_on(data, mem).await
}

pub async fn start_with(data: DataConfig) -> Setup {
    start_on(data, MemConfig::default()).await
}

async fn start_on(data: DataConfig, mem_config: MemConfig) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (log, sm) = MemDisk::new().open();
    let config = NodeConfig {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        ..NodeConfig::new(1, &addr)
    };
    let node = MetaNode::start(config, log, sm, GrpcNetwork::new(1), Arc::new(SystemClock))
        .await
        .expect("meta node");
    tokio::spawn(serve(node.clone(), listener, std::future::pending::<()>()));
    node.initialize(BTreeMap::from([(1, addr.clone())]))
        .await
        .expect("init");
    let meta = MetaClient::connect(vec![addr], ClientOptions::default())
        .await
        .expect("meta client");
    let info = match meta
        .write(Command::CreateFs {
            name: "t".into(),
            bucket: "b".into(),
            prefix: String::new(),
        })
        .await
        .expect("create fs")
    {
        Reply::Fs(info) => info,
        other => panic!("{other:?}"),
    };
    let mem = Arc::new(MemObjectStore::new(mem_config));
    let store = Arc::new(FaultyObjectStore::new(
        mem,
        FaultConfig::none(),
        Entropy::seeded(7),
        tokio_sleep(),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = cache_in(dir.path());
    let fs = GatewayFs::open(
        FsParts {
            meta: meta.clone(),
            store: Arc::clone(&store) as Arc<dyn ObjectStore>,
            cache: Arc::new(cache),
            clock: Arc::new(SystemClock),
            config: data,
        },
        &info,
    )
    .await
    .expect("gateway fs");
    let _ = meta
        .read(
            Query::GetFs { name: "t".into() },
            ReadConsistency::Linearizable,
        )
        .await
        .map(|r| matches!(r, QueryReply::Fs(_)));
    Setup {
        fs,
        store,
        meta,
        info,
        _node: node,
        _dir: dir,
    }
}
