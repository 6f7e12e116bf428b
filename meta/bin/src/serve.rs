//! `bucketfs meta serve`: one metadata node in the foreground.
//!
//! Start-up order matters for the error a user sees first: the data dir is opened (and its
//! identity checked) before anything listens, the listener is bound before the node joins
//! the cluster, and `--init` is applied only once the node serves, because the other members
//! must be able to answer its first election.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bucketfs_meta_rocks::{NodeIdentity, RocksBackend};
use bucketfs_meta_server::{GrpcNetwork, MetaNode, NodeConfig};
use bucketfs_runtime::SystemClock;
use clap::Args;

use crate::cluster_arg::{check_addr, parse_members};

#[derive(Args)]
pub struct ServeArgs {
    /// This node's Raft id (1, 2, ...). Never reuse the id of a node that was removed.
    #[arg(long)]
    id: u64,
    /// Address to listen on for peers and clients.
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: String,
    /// Address other nodes and clients use to reach this node (defaults to --listen).
    #[arg(long)]
    advertise: Option<String>,
    /// Directory of this node's RocksDB store (created on first start).
    #[arg(long)]
    data_dir: PathBuf,
    /// Name of the cluster; recorded in the data dir, which then refuses any other.
    #[arg(long, default_value = "bucketfs")]
    cluster_id: String,
    /// Bootstrap a new cluster with these voters, ID=HOST:PORT[,ID=HOST:PORT...]. Give it to
    /// one node; it is ignored when the data dir already holds a log.
    #[arg(long)]
    init: Option<String>,
    /// Leader heartbeat interval.
    #[arg(long, default_value_t = 150)]
    heartbeat_ms: u64,
    /// Minimum election timeout; the maximum is twice this.
    #[arg(long, default_value_t = 1000)]
    election_timeout_ms: u64,
    /// Build a snapshot after this many applied entries.
    #[arg(long, default_value_t = 20_000)]
    snapshot_every: u64,
    /// Entries kept in the log after a snapshot, so briefly lagging followers catch up from
    /// the log.
    #[arg(long, default_value_t = 5_000)]
    keep_logs: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (host:port). Off unless given.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Export tracing spans over OTLP/gRPC to this collector, e.g. http://127.0.0.1:4317.
    /// Off unless given. BUCKETFS_LOG filters what is exported as well as what is logged.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

impl ServeArgs {
    /// The OTLP collector to export spans to, if any (an empty setting means none).
    pub fn otlp_endpoint(&self) -> Option<String> {
        self.otlp_endpoint.clone().filter(|e| !e.trim().is_empty())
    }

    fn node_config(&self, advertise: &str) -> NodeConfig {
        let mut c = NodeConfig::new(self.id, advertise);
        c.cluster_name = self.cluster_id.clone();
        c.heartbeat_interval = Duration::from_millis(self.heartbeat_ms);
        c.election_timeout_min = Duration::from_millis(self.election_timeout_ms);
        c.election_timeout_max = Duration::from_millis(self.election_timeout_ms * 2);
        c.snapshot_every_logs = Some(self.snapshot_every);
        c.logs_kept_after_snapshot = self.keep_logs;
        c.replication_lag_threshold = c.replication_lag_threshold.max(self.snapshot_every);
        c
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.id == 0 {
        bail!("--id 0 is reserved; number nodes from 1");
    }
    check_addr(&args.listen).context("--listen")?;
    let advertise = args
        .advertise
        .clone()
        .unwrap_or_else(|| args.listen.clone());
    check_addr(&advertise).context("--advertise")?;
    if let Some(addr) = &args.metrics_listen {
        check_addr(addr).context("--metrics-listen")?;
    }
    let init = args.init.as_deref().map(parse_members).transpose()?;
    if let Some(members) = &init
        && members.get(&args.id) != Some(&advertise)
    {
        bail!(
            "--init must list this node as {}={advertise} (its --id and advertised address)",
            args.id
        );
    }
    let config = args.node_config(&advertise);
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid setting {}: {}", e.field, e.reason))?;

    let identity = NodeIdentity {
        cluster_id: args.cluster_id.clone(),
        node_id: args.id,
    };
    let backend = RocksBackend::open(&args.data_dir, &identity, true)
        .with_context(|| format!("opening the data dir {}", args.data_dir.display()))?;
    let (log, sm) = backend.into_stores();

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another node running there? choose another --listen",
                args.listen
            )
        })?;

    // Bound (and the recorder installed) before the node starts, so that no metric of its
    // start-up is lost and a port conflict is reported before anything else happens.
    let metrics = start_metrics(args.metrics_listen.as_deref()).await?;

    let node = MetaNode::start(
        config,
        log,
        sm,
        GrpcNetwork::new(args.id),
        Arc::new(SystemClock),
    )
    .await
    .context("starting the Raft node")?;
    tracing::info!(id = args.id, listen = %args.listen, advertise = %advertise,
        data_dir = %args.data_dir.display(), "serving");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bucketfs_meta_server::serve(node.clone(), listener, async {
        let _ = stop_rx.await;
    }));

    if let Some(members) = init {
        if node.status().last_log_index.is_none() {
            node.initialize(members)
                .await
                .context("initializing the cluster (--init)")?;
            tracing::info!("cluster initialized");
        } else {
            tracing::info!("data dir already holds a log; --init ignored");
        }
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    let served = server.await;
    node.shutdown().await;
    stop_metrics(metrics).await;
    match served {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Err(e).context("serving"),
        Err(e) => Err(e).context("the server task failed"),
    }
}

/// A running `/metrics` endpoint.
pub struct MetricsEndpoint {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Installs the Prometheus recorder and serves `/metrics` on `addr`, if one is given.
pub async fn start_metrics(addr: Option<&str>) -> anyhow::Result<Option<MetricsEndpoint>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
    let handle =
        bucketfs_telemetry::install_prometheus().context("installing the metrics recorder")?;
    tracing::info!(addr = %addr, "serving metrics at /metrics");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bucketfs_telemetry::serve_metrics(listener, handle, async {
        let _ = stop_rx.await;
    }));
    Ok(Some(MetricsEndpoint { stop, task }))
}

pub async fn stop_metrics(metrics: Option<MetricsEndpoint>) {
    if let Some(MetricsEndpoint { stop, task }) = metrics {
        let _ = stop.send(());
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the metrics endpoint failed"),
            Err(e) => tracing::warn!(error = %e, "the metrics endpoint task failed"),
        }
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
