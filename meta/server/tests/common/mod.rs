//! A metadata cluster in one process: in-memory storage (`MemDisk`), real gRPC on
//! 127.0.0.1 with ports chosen by the OS, short Raft timeouts.

#![allow(dead_code)] // each test binary uses a different part of this harness

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bucketfs_meta_client::{ClientOptions, MetaClient, NodeStatus, Role};
use bucketfs_meta_server::{GrpcNetwork, MetaNode, NodeConfig, ServeError, serve};
use bucketfs_meta_store::MemDisk;
use bucketfs_runtime::SystemClock;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestNode {
    pub id: u64,
    pub addr: String,
    pub node: MetaNode,
    pub disk: MemDisk,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ServeError>>>,
}

pub fn test_config(id: u64, addr: &str) -> NodeConfig {
    NodeConfig {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(400),
        election_timeout_max: Duration::from_millis(800),
        install_snapshot_timeout: Duration::from_secs(10),
        // Small enough that a few dozen writes build snapshots and purge the log, so a new
        // learner can only catch up through a streamed snapshot.
        snapshot_every_logs: Some(20),
        logs_kept_after_snapshot: 0,
        replication_lag_threshold: 20,
        commit_timeout: Duration::from_secs(3),
        lease_sweep_interval: None,
        ..NodeConfig::new(id, addr)
    }
}

impl TestNode {
    pub async fn start(id: u64) -> TestNode {
        Self::start_with(id, test_config).await
    }

    pub async fn start_with(id: u64, config: impl Fn(u64, &str) -> NodeConfig) -> TestNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr").to_string();
        let disk = MemDisk::new();
        let (log, sm) = disk.open();
        let node = MetaNode::start(
            config(id, &addr),
            log,
            sm,
            GrpcNetwork::new(id),
            Arc::new(SystemClock),
        )
        .await
        .expect("start node");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(node.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestNode {
            id,
            addr,
            node,
            disk,
            stop_server: Some(tx),
            server: Some(server),
        }
    }

    /// Kills the node: Raft first (so in-flight calls fail fast), then its server.
    pub async fn stop(&mut self) {
        self.node.shutdown().await;
        if let Some(tx) = self.stop_server.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let ended = tokio::time::timeout(Duration::from_secs(10), server).await;
            ended
                .expect("server stops")
                .expect("server task")
                .expect("server ends cleanly");
        }
    }
}

pub struct Cluster {
    pub nodes: Vec<TestNode>,
}

impl Cluster {
    /// Starts `n` nodes with ids 1..=n and initializes them as one cluster.
    pub async fn start(n: u64) -> Cluster {
        Self::start_with(n, test_config).await
    }

    pub async fn start_with(n: u64, config: impl Fn(u64, &str) -> NodeConfig + Copy) -> Cluster {
        let mut nodes = Vec::new();
        for id in 1..=n {
            nodes.push(TestNode::start_with(id, config).await);
        }
        let cluster = Cluster { nodes };
        let client = cluster.client().await;
        client.init(cluster.members()).await.expect("init");
        cluster
    }

    pub fn members(&self) -> BTreeMap<u64, String> {
        self.nodes.iter().map(|n| (n.id, n.addr.clone())).collect()
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    pub fn node(&mut self, id: u64) -> &mut TestNode {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("node in cluster")
    }

    pub async fn client(&self) -> MetaClient {
        client_for(self.addrs()).await
    }

    /// Waits until the running nodes agree on one leader among them; returns its id.
    pub async fn wait_leader(&self, live: &[u64]) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let statuses: Vec<NodeStatus> = self
                .nodes
                .iter()
                .filter(|n| live.contains(&n.id))
                .map(|n| n.node.status())
                .collect();
            let leaders: Vec<u64> = statuses
                .iter()
                .filter(|s| s.role == Role::Leader)
                .map(|s| s.node_id)
                .collect();
            if let [leader] = leaders[..]
                && statuses.iter().all(|s| s.leader_id == Some(leader))
            {
                return leader;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no single leader among {live:?}: {statuses:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) {
        let node = &self.nodes.iter().find(|n| n.id == id).expect("node").node;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while node.status().applied_index.unwrap_or(0) < index {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {id} did not apply {index}: {:#?}",
                node.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if n.server.is_some() {
                n.stop().await;
            }
        }
    }
}

pub async fn client_for(addrs: Vec<String>) -> MetaClient {
    MetaClient::connect(
        addrs,
        ClientOptions {
            call_timeout: Duration::from_secs(15),
            rpc_timeout: Duration::from_secs(4),
            admin_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_millis(500),
            ..ClientOptions::default()
        },
    )
    .await
    .expect("client")
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
