//! The simulated cluster: real [`MetaNode`]s, each on its own [`MemDisk`] and [`SimClock`],
//! talking through the simulated network.
//!
//! A crash takes the host off the network (its in-flight server work is aborted), drops every
//! unsynced write of its disk and fences the dead process's storage handles
//! ([`MemDisk::crash`]), then shuts the old `MetaNode` down in the background: whatever it
//! still tries to do can neither reach the network nor the disk. A restart starts a new
//! `MetaNode` on the same disk and clock, with a network factory bound to the new
//! incarnation, exactly as a rebooted machine would.
//!
//! A watcher task per incarnation reports the node's Raft metrics to the [`Observer`] and the
//! trace (role, term and leader changes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bucketfs_meta_server::{MetaNode, NodeConfig, ReadError, WriteError};
use bucketfs_meta_state::command::ApplyResult;
use bucketfs_meta_state::types::ClientId;
use bucketfs_meta_state::{Command, NsError, Query, QueryReply};
use bucketfs_meta_store::{MemDisk, MetaRaft, SyncMode, TypeConfig};
use bucketfs_proto::ReadConsistency;
use bucketfs_runtime::{Clock, SimClock};
use openraft::async_runtime::WatchReceiver;
use openraft::{RaftMetrics, ServerState};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::net::Net;
use crate::observer::Observer;
use crate::raft_net::{RaftHost, SimNetworkFactory};
use crate::trace::Trace;
use crate::workload::{MetaService, ServiceError};

impl RaftHost for MetaNode {
    fn raft(&self) -> &MetaRaft {
        MetaNode::raft(self)
    }
}

impl MetaService for MetaNode {
    fn write(
        &self,
        client: ClientId,
        seq: u64,
        ack_below: u64,
        command: Command,
    ) -> impl Future<Output = Result<ApplyResult, ServiceError>> + Send {
        let node = self.clone();
        async move {
            node.write(client, seq, ack_below, command)
                .await
                .map_err(|e| match e {
                    WriteError::NotLeader { leader_id, .. } => ServiceError::NotLeader(leader_id),
                    WriteError::Unavailable(m) => ServiceError::Unavailable(m),
                    WriteError::Fatal(m) => ServiceError::Fatal(m),
                })
        }
    }

    fn read(
        &self,
        query: Query,
        linearizable: bool,
    ) -> impl Future<Output = Result<Result<QueryReply, NsError>, ServiceError>> + Send {
        let node = self.clone();
        let consistency = if linearizable {
            ReadConsistency::Linearizable
        } else {
            ReadConsistency::AnyLocal
        };
        async move {
            node.read(query, consistency).await.map_err(|e| match e {
                ReadError::NotLeader { leader_id, .. } => ServiceError::NotLeader(leader_id),
                ReadError::Unavailable(m) => ServiceError::Unavailable(m),
                ReadError::Fatal(m) => ServiceError::Fatal(m),
            })
        }
    }
}

/// Raft timing and storage settings of the simulated nodes: production's shape, scaled down
/// so that elections, snapshots and log purges all happen within a few virtual seconds.
pub fn node_config(id: u64) -> NodeConfig {
    NodeConfig {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(200),
        election_timeout_max: Duration::from_millis(400),
        install_snapshot_timeout: Duration::from_secs(2),
        snapshot_every_logs: Some(50),
        logs_kept_after_snapshot: 10,
        replication_lag_threshold: 50,
        commit_timeout: Duration::from_millis(1000),
        lease_sweep_interval: Some(Duration::from_secs(2)),
        ..NodeConfig::new(id, format!("n{id}"))
    }
}

struct Slot {
    disk: MemDisk,
    clock: SimClock,
    node: Option<MetaNode>,
    watcher: Option<JoinHandle<()>>,
}

pub struct Cluster {
    slots: BTreeMap<u64, Slot>,
    /// Restart crashed nodes on a blank disk (a deliberate bug).
    amnesia: bool,
    net: Net<MetaNode>,
    observer: Observer,
    trace: Trace,
}

impl Cluster {
    /// Starts `n` nodes and initializes the cluster on node 1. Two deliberate bugs for
    /// checker self-tests: `lying_disks` makes every disk acknowledge fsync without
    /// persisting; `amnesia` restarts crashed nodes on a blank disk.
    pub async fn start(
        n: u64,
        net: Net<MetaNode>,
        observer: Observer,
        trace: Trace,
        start: Instant,
        lying_disks: bool,
        amnesia: bool,
    ) -> Result<Cluster, String> {
        let mut cluster = Cluster {
            slots: BTreeMap::new(),
            amnesia,
            net,
            observer,
            trace,
        };
        for id in 1..=n {
            let disk = MemDisk::new();
            if lying_disks {
                disk.set_sync_mode(SyncMode::Manual);
            }
            // Every node's wall clock starts at the same (arbitrary, fixed) epoch.
            let clock = SimClock::new(start, 1_700_000_000_000_000_000);
            cluster.slots.insert(
                id,
                Slot {
                    disk,
                    clock,
                    node: None,
                    watcher: None,
                },
            );
            cluster.boot(id).await?;
        }
        let members: BTreeMap<u64, String> = (1..=n).map(|id| (id, format!("n{id}"))).collect();
        let first = cluster.node(1).ok_or("node 1 did not start")?;
        first
            .initialize(members)
            .await
            .map_err(|e| format!("initialize: {e}"))?;
        Ok(cluster)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    pub fn node(&self, id: u64) -> Option<MetaNode> {
        self.slots.get(&id).and_then(|s| s.node.clone())
    }

    pub fn disk(&self, id: u64) -> Option<MemDisk> {
        self.slots.get(&id).map(|s| s.disk.clone())
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.slots.get(&id).is_some_and(|s| s.node.is_some())
    }

    pub fn metrics(&self, id: u64) -> Option<RaftMetrics<TypeConfig>> {
        self.node(id)
            .map(|n| n.raft().metrics().borrow_watched().clone())
    }

    /// The running node that believes it leads, in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.ids()
            .into_iter()
            .filter_map(|id| self.metrics(id).map(|m| (id, m)))
            .filter(|(_, m)| m.state == ServerState::Leader)
            .max_by_key(|(_, m)| m.current_term)
            .map(|(id, _)| id)
    }

    async fn boot(&mut self, id: u64) -> Result<(), String> {
        let slot = self.slots.get(&id).ok_or(format!("no node {id}"))?;
        let (log, sm) = slot.disk.open();
        let factory = SimNetworkFactory {
            net: self.net.clone(),
            me: id,
            incarnation: self.net.incarnation(id),
            observer: self.observer.clone(),
        };
        let clock: Arc<dyn Clock> = Arc::new(slot.clock.clone());
        let node = MetaNode::start(node_config(id), log, sm, factory, clock)
            .await
            .map_err(|e| format!("n{id} failed to start: {e}"))?;
        self.net.up(id, node.clone());
        self.observer.restarted(id);
        let watcher = tokio::spawn(watch_metrics(
            id,
            node.raft().clone(),
            self.observer.clone(),
            self.trace.clone(),
        ));
        let slot = self.slots.get_mut(&id).ok_or(format!("no node {id}"))?;
        slot.node = Some(node);
        slot.watcher = Some(watcher);
        Ok(())
    }

    /// Power loss of node `id`.
    pub fn crash(&mut self, id: u64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let Some(node) = slot.node.take() else {
            return;
        };
        if let Some(w) = slot.watcher.take() {
            w.abort();
        }
        self.net.down(id);
        let lost = slot.disk.unsynced_writes();
        slot.disk.crash();
        self.trace.event(
            format!("n{id}"),
            format_args!("crashed ({lost} unsynced writes lost)"),
        );
        // The dead process's tasks unwind on their own; nothing waits for them.
        tokio::spawn(async move { node.shutdown().await });
    }

    pub async fn restart(&mut self, id: u64) -> Result<(), String> {
        if self.is_up(id) {
            return Ok(());
        }
        if self.amnesia
            && let Some(slot) = self.slots.get_mut(&id)
        {
            slot.disk = MemDisk::new();
            self.trace
                .event(format!("n{id}"), "restarting on a blank disk");
        } else {
            self.trace.event(format!("n{id}"), "restarting");
        }
        self.boot(id).await
    }

    /// Moves node `id`'s wall clock by `ms` (ahead if positive).
    pub fn skew(&self, id: u64, ms: i64) {
        if let Some(slot) = self.slots.get(&id) {
            slot.clock
                .set_offset(Duration::from_millis(ms.unsigned_abs()), ms >= 0);
        }
    }

    /// Stops every node (cleanly: this is the end of the run, not a fault).
    pub async fn shutdown_all(&mut self) {
        for slot in self.slots.values_mut() {
            if let Some(w) = slot.watcher.take() {
                w.abort();
            }
            if let Some(node) = slot.node.take() {
                node.shutdown().await;
            }
        }
    }
}

async fn watch_metrics(id: u64, raft: MetaRaft, observer: Observer, trace: Trace) {
    let mut rx = raft.metrics();
    let mut shown: Option<(u64, ServerState, Option<u64>)> = None;
    loop {
        let m = rx.borrow_watched().clone();
        if m.state == ServerState::Leader {
            observer.saw_leader(m.current_term, id, "metrics");
        }
        if let Some(applied) = &m.last_applied {
            observer.saw_applied(id, applied);
        }
        let now = (m.current_term, m.state, m.current_leader);
        if shown != Some(now) {
            shown = Some(now);
            trace.event(
                format!("n{id}"),
                format_args!(
                    "term {} {:?} leader {:?} applied {:?}",
                    m.current_term,
                    m.state,
                    m.current_leader,
                    m.last_applied.as_ref().map(|l| l.index())
                ),
            );
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
