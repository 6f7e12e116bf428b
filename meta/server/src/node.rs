//! [`MetaNode`]: one metadata node — openraft's `Raft` over the bucketfs storage adapters,
//! plus the node's clock — behind a transport-free API. The gRPC services and the simulator
//! both drive a node through this API only.
//!
//! * Writes stamp `now` from the node's [`Clock`] into the [`Proposal`], so the state machine
//!   never reads a clock, and go through `Raft::client_write`. A `(client, seq)` pair makes
//!   them exactly-once across retries (the state machine's dedupe table), which is why every
//!   failure that leaves the outcome unknown says "retry with the same seq".
//! * Linearizable reads use openraft's read index (`ensure_linearizable(ReadIndex)`): the
//!   leader confirms with a quorum that it still leads, waits until its state machine applied
//!   the commit index seen at that moment, then reads the committed state directly through a
//!   [`StateReader`], without queueing behind the apply task.
//! * Every wait has a bound (`commit_timeout`): a leader that lost its quorum keeps its role in
//!   openraft until a newer leader contacts it, so an unbounded write could hang forever.
//! * Membership changes first wait until the previous change is committed (openraft refuses a
//!   change while one is in flight), then use openraft's joint consensus.
//! * A leader-only sweeper proposes `Command::ExpireLeases` periodically. It writes as its own
//!   client: a fixed [`ClientId`] per node with sequence numbers from the wall clock, so a
//!   restarted node keeps numbering upward without storing anything.
//! * A reporter copies openraft's metrics into the `bucketfs_meta_raft_*` gauges every
//!   `metrics_interval` (see [`crate::observe`]); like the sweeper it sleeps on tokio's
//!   timer, which the simulator controls, and stops on shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bucketfs_meta_state::command::ApplyResult;
use bucketfs_meta_state::types::{ClientId, Timestamp};
use bucketfs_meta_state::{Command, NsError, Proposal, Query, QueryReply, Reply};
use bucketfs_meta_store::{
    LogPayload, MetaLogStore, MetaRaft, MetaStateMachine, SnapshotData, StateReader,
    StoredMembership, TypeConfig,
};
use bucketfs_proto::{
    Member, MembershipChange, MembershipStatus, NodeStatus, ReadConsistency, Role,
};
use bucketfs_runtime::Clock;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{
    ClientWriteError, ForwardToLeader, InitializeError, LinearizableReadError, RaftError,
};
use openraft::metrics::WaitError;
use openraft::network::NetSnapshot;
use openraft::raft::ClientWriteResponse;
use openraft::vote::RaftLeaderId;
use openraft::{
    BasicNode, ChangeMembers, RaftMetrics, RaftNetworkFactory, ReadPolicy, ServerState,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::error::{AdminError, NodeError, ReadError, WriteError};
use crate::observe;

/// The lease sweeper of node `n` writes as `ClientId(SWEEPER_CLIENT_BASE | n)`. Writers pick
/// their ids at random from 2^64, so a collision with this range is negligible.
const SWEEPER_CLIENT_BASE: u64 = 0xB0C4_E75F_0000_0000;

/// A task slot; a panic while holding it leaves nothing half-updated, so poison is ignored.
fn lock(slot: &Mutex<Option<JoinHandle<()>>>) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running metadata node. Cheap to clone; clones drive the same node.
#[derive(Clone)]
pub struct MetaNode {
    inner: Arc<Inner>,
}

struct Inner {
    config: NodeConfig,
    raft: MetaRaft,
    reader: StateReader,
    clock: Arc<dyn Clock>,
    stop: watch::Sender<bool>,
    sweeper: Mutex<Option<JoinHandle<()>>>,
    sweeper_seq: AtomicU64,
    reporter: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for MetaNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaNode")
            .field("node_id", &self.inner.config.node_id)
            .field("addr", &self.inner.config.advertised_addr)
            .finish_non_exhaustive()
    }
}

fn not_leader_write(f: &ForwardToLeader<TypeConfig>) -> WriteError {
    WriteError::NotLeader {
        leader_id: f.leader_id,
        leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()),
    }
}

fn not_leader_admin(f: &ForwardToLeader<TypeConfig>) -> AdminError {
    AdminError::NotLeader {
        leader_id: f.leader_id,
        leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()),
    }
}

fn members_of(
    m: &openraft::Membership<u64, BasicNode>,
    ids: impl Iterator<Item = u64>,
) -> Vec<Member> {
    ids.map(|id| Member {
        id,
        addr: m.get_node(&id).map(|n| n.addr.clone()).unwrap_or_default(),
    })
    .collect()
}

fn membership_status(stored: &StoredMembership, committed: &StoredMembership) -> MembershipStatus {
    let m = stored.membership();
    let voters: BTreeSet<u64> = m.voter_ids().collect();
    let learners: BTreeSet<u64> = m.learner_ids().collect();
    MembershipStatus {
        voters: members_of(m, voters.into_iter()),
        learners: members_of(m, learners.into_iter()),
        joint: m.get_joint_config().len() > 1,
        log_index: stored.log_id().as_ref().map(|l| l.index),
        committed: stored.log_id() == committed.log_id(),
    }
}

impl MetaNode {
    /// Starts the node on its storage. The node campaigns or follows on its own; a brand-new
    /// cluster also needs [`MetaNode::initialize`] on one member.
    pub async fn start<N>(
        config: NodeConfig,
        log: MetaLogStore,
        sm: MetaStateMachine,
        network: N,
        clock: Arc<dyn Clock>,
    ) -> Result<MetaNode, NodeError>
    where
        N: RaftNetworkFactory<TypeConfig>,
        N::Network: NetSnapshot<TypeConfig, SnapshotData = SnapshotData>,
    {
        config.validate()?;
        let raft_config = Arc::new(config.raft_config()?);
        let reader = sm.reader();
        let raft = MetaRaft::new(config.node_id, raft_config, network, log, sm)
            .await
            .map_err(|e| NodeError::Start(e.to_string()))?;
        let (stop, _) = watch::channel(false);
        let node = MetaNode {
            inner: Arc::new(Inner {
                config,
                raft,
                reader,
                clock,
                stop,
                sweeper: Mutex::new(None),
                sweeper_seq: AtomicU64::new(0),
                reporter: Mutex::new(None),
            }),
        };
        if let Some(interval) = node.inner.config.lease_sweep_interval {
            let handle = tokio::spawn(Self::sweep_leases(
                Arc::downgrade(&node.inner),
                node.inner.stop.subscribe(),
                interval,
            ));
            *node.lock_sweeper() = Some(handle);
        }
        if let Some(interval) = node.inner.config.metrics_interval {
            let handle = tokio::spawn(Self::report_metrics(
                Arc::downgrade(&node.inner),
                node.inner.stop.subscribe(),
                interval,
            ));
            *lock(&node.inner.reporter) = Some(handle);
        }
        tracing::info!(
            node = node.inner.config.node_id,
            addr = %node.inner.config.advertised_addr,
            "metadata node started"
        );
        Ok(node)
    }

    pub fn node_id(&self) -> u64 {
        self.inner.config.node_id
    }

    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The openraft handle, for callers that need more than this API (tests, the simulator's
    /// checkers). Prefer the methods here: they bound every wait.
    pub fn raft(&self) -> &MetaRaft {
        &self.inner.raft
    }

    /// The clock the node stamps writes and times requests with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    fn lock_sweeper(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        lock(&self.inner.sweeper)
    }

    fn metrics(&self) -> RaftMetrics<TypeConfig> {
        self.inner.raft.metrics().borrow_watched().clone()
    }

    /// Proposes `command` as `(client, seq)` and returns what applying it produced (the first
    /// result again if this `(client, seq)` was already applied).
    pub async fn write(
        &self,
        client: ClientId,
        seq: u64,
        ack_below: u64,
        command: Command,
    ) -> Result<ApplyResult, WriteError> {
        self.write_indexed(client, seq, ack_below, command)
            .await
            .map(|(result, _)| result)
    }

    /// [`MetaNode::write`], also returning the log index of the entry that carried it.
    pub async fn write_indexed(
        &self,
        client: ClientId,
        seq: u64,
        ack_below: u64,
        command: Command,
    ) -> Result<(ApplyResult, u64), WriteError> {
        let kind = command.kind();
        let proposal = Proposal {
            client,
            seq,
            ack_below,
            now: Timestamp::from_unix_nanos(self.inner.clock.wall_nanos()),
            command,
        };
        let timeout = self.inner.config.commit_timeout;
        let written = tokio::time::timeout(
            timeout,
            self.inner.raft.client_write(LogPayload(proposal)),
        )
        .await
        .map_err(|_| {
            WriteError::Unavailable(format!(
                "not committed within {timeout:?}; it may still commit: retry with the same seq"
            ))
        })?;
        match written {
            Ok(ClientWriteResponse { log_id, data, .. }) => {
                observe::count_write(kind);
                Ok((data, log_id.index))
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(not_leader_write(&f))
            }
            // Discarded by a leader change: it may or may not commit under the new leader; a
            // retry there with the same seq is answered either way.
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f))) => {
                Err(not_leader_write(&f))
            }
            Err(RaftError::APIError(e)) => Err(WriteError::Unavailable(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(WriteError::Fatal(f.to_string())),
        }
    }

    /// Answers `query` at the requested consistency. The outer error is about the node (not
    /// leader, no quorum); the inner one is the namespace's answer.
    pub async fn read(
        &self,
        query: Query,
        consistency: ReadConsistency,
    ) -> Result<Result<QueryReply, NsError>, ReadError> {
        match consistency {
            ReadConsistency::Linearizable => {
                let timeout = self.inner.config.commit_timeout;
                let confirmed = tokio::time::timeout(
                    timeout,
                    self.inner.raft.ensure_linearizable(ReadPolicy::ReadIndex),
                )
                .await
                .map_err(|_| {
                    ReadError::Unavailable(format!("leadership not confirmed within {timeout:?}"))
                })?;
                match confirmed {
                    Ok(_) => {}
                    Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                        return Err(ReadError::NotLeader {
                            leader_id: f.leader_id,
                            leader_addr: f.leader_node.map(|n| n.addr),
                        });
                    }
                    Err(RaftError::APIError(e)) => {
                        return Err(ReadError::Unavailable(e.to_string()));
                    }
                    Err(RaftError::Fatal(f)) => return Err(ReadError::Fatal(f.to_string())),
                }
            }
            ReadConsistency::LeaderLocal => {
                if let Err(f) = self.inner.raft.as_leader() {
                    return Err(ReadError::NotLeader {
                        leader_id: f.leader_id,
                        leader_addr: f.leader_node.map(|n| n.addr),
                    });
                }
            }
            ReadConsistency::AnyLocal => {}
        }
        self.inner
            .reader
            .query(query)
            .await
            .map_err(|e| ReadError::Fatal(format!("reading the state machine: {e}")))
    }

    /// Initializes a new cluster with `members` (id → address); this node must be one of
    /// them. Repeating it with the same voters once the cluster exists succeeds.
    pub async fn initialize(&self, members: BTreeMap<u64, String>) -> Result<(), AdminError> {
        if members.is_empty() {
            return Err(AdminError::Invalid("no members given".into()));
        }
        let nodes: BTreeMap<u64, BasicNode> = members
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
            .collect();
        match self.inner.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                let m = self.metrics();
                let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
                let wanted: BTreeSet<u64> = members.keys().copied().collect();
                if voters == wanted {
                    Ok(())
                } else {
                    Err(AdminError::Invalid(format!(
                        "already initialized with voters {voters:?}, not {wanted:?}"
                    )))
                }
            }
            Err(RaftError::APIError(InitializeError::NotInMembers(_))) => {
                Err(AdminError::Invalid(format!(
                    "node {} is not among the members {:?}",
                    self.inner.config.node_id,
                    members.keys().collect::<Vec<_>>()
                )))
            }
            Err(RaftError::Fatal(f)) => Err(AdminError::Fatal(f.to_string())),
        }
    }

    /// Adds a learner (or updates a learner's address); with `blocking`, returns once it has
    /// caught up with the leader's log.
    pub async fn add_learner(
        &self,
        id: u64,
        addr: String,
        blocking: bool,
    ) -> Result<MembershipChange, AdminError> {
        if addr.trim().is_empty() {
            return Err(AdminError::Invalid(format!("empty address for node {id}")));
        }
        self.membership_change(move |raft| {
            let node = BasicNode::new(addr.clone());
            async move { raft.add_learner(id, node, blocking).await }
        })
        .await
    }

    /// Makes `voters` the voter set, through a joint configuration. Every new voter must
    /// already be a learner; with `retain`, removed voters stay on as learners.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<u64>,
        retain: bool,
    ) -> Result<MembershipChange, AdminError> {
        if voters.is_empty() {
            return Err(AdminError::Invalid("the voter set cannot be empty".into()));
        }
        self.membership_change(move |raft| {
            let voters = voters.clone();
            async move { raft.change_membership(voters, retain).await }
        })
        .await
    }

    /// Removes node `id` from the cluster: a voter leaves the voter set (through a joint
    /// configuration) and the membership; a learner just leaves the membership.
    pub async fn remove_node(&self, id: u64) -> Result<MembershipChange, AdminError> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let change: ChangeMembers<u64, BasicNode> = if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(AdminError::Invalid(format!(
                    "node {id} is the only voter; it cannot be removed"
                )));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if membership.get_node(&id).is_some() {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            return Err(AdminError::Invalid(format!("node {id} is not a member")));
        };
        self.membership_change(move |raft| {
            let change = change.clone();
            async move { raft.change_membership(change, false).await }
        })
        .await
    }

    /// Runs one membership change on the leader: waits until the previous change committed,
    /// proposes, and retries if another change slipped in meanwhile, all within four commit
    /// timeouts.
    async fn membership_change<F, Fut>(&self, propose: F) -> Result<MembershipChange, AdminError>
    where
        F: Fn(MetaRaft) -> Fut,
        Fut: Future<
            Output = Result<
                ClientWriteResponse<TypeConfig>,
                RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
            >,
        >,
    {
        let raft = &self.inner.raft;
        let clock = &self.inner.clock;
        // Catching a learner up can take longer than a commit; the gRPC deadline of the
        // caller bounds it too.
        let budget = self.inner.config.commit_timeout * 4;
        let deadline = clock.now() + budget;
        loop {
            if let Err(f) = raft.as_leader() {
                return Err(not_leader_admin(&f));
            }
            let remaining = deadline.saturating_duration_since(clock.now());
            self.wait_membership_committed(remaining).await?;
            let remaining = deadline.saturating_duration_since(clock.now());
            let proposed = tokio::time::timeout(remaining, propose(raft.clone()))
                .await
                .map_err(|_| {
                    AdminError::Unavailable(format!(
                        "membership change not confirmed within {budget:?}; it may still \
                         complete (check the status)"
                    ))
                })?;
            match proposed {
                Ok(resp) => {
                    let m = self.metrics();
                    return Ok(MembershipChange {
                        membership: membership_status(
                            &m.membership_config,
                            &m.committed_membership_config,
                        ),
                        log_index: resp.log_id.index,
                    });
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))
                | Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f))) => {
                    return Err(not_leader_admin(&f));
                }
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    openraft::error::ChangeMembershipError::InProgress(e),
                ))) if clock.now() < deadline => {
                    tracing::debug!(error = %e, "membership change in progress; waiting");
                    tokio::time::sleep(self.inner.config.heartbeat_interval).await;
                }
                Err(RaftError::APIError(e)) => return Err(AdminError::Membership(e.to_string())),
                Err(RaftError::Fatal(f)) => return Err(AdminError::Fatal(f.to_string())),
            }
        }
    }

    async fn wait_membership_committed(&self, timeout: Duration) -> Result<(), AdminError> {
        self.inner
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.membership_config.log_id() == m.committed_membership_config.log_id(),
                "previous membership change committed",
            )
            .await
            .map(|_| ())
            .map_err(|e| match e {
                WaitError::Timeout(..) => AdminError::Membership(format!(
                    "the previous membership change is still not committed after {timeout:?}"
                )),
                WaitError::ShuttingDown => AdminError::Unavailable("node is shutting down".into()),
            })
    }

    /// This node's view of itself and the cluster, from openraft's metrics (no I/O).
    pub fn status(&self) -> NodeStatus {
        let m = self.metrics();
        let role = if m.running_state.is_err() {
            Role::Shutdown
        } else {
            match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Follower => Role::Follower,
                ServerState::Candidate => Role::Candidate,
                ServerState::Learner => Role::Learner,
                ServerState::Shutdown => Role::Shutdown,
            }
        };
        let leader_addr = m
            .current_leader
            .and_then(|id| m.membership_config.get_node(&id).map(|n| n.addr.clone()));
        // openraft's vote names the node voted for (itself when campaigning or leading);
        // term 0 is the initial, never-cast vote.
        let voted_for = Some(*m.vote.leader_id.node_id()).filter(|_| m.vote.leader_id.term() > 0);
        NodeStatus {
            node_id: m.id,
            addr: self.inner.config.advertised_addr.clone(),
            role,
            current_term: m.current_term,
            voted_for,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.as_ref().map(|l| l.index),
            committed_index: m.cluster_committed.as_ref().map(|l| l.index),
            snapshot_index: m.snapshot.as_ref().map(|l| l.index),
            purged_index: m.purged.as_ref().map(|l| l.index),
            leader_id: m.current_leader,
            leader_addr,
            membership: membership_status(&m.membership_config, &m.committed_membership_config),
        }
    }

    /// Stops the sweeper and the Raft node. Later calls answer "node failed"/"unavailable".
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let sweeper = self.lock_sweeper().take();
        if let Some(handle) = sweeper {
            // The sweeper exits at its next wake-up; waiting for it keeps the shutdown clean.
            let _ = handle.await;
        }
        let reporter = lock(&self.inner.reporter).take();
        if let Some(handle) = reporter {
            let _ = handle.await;
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(node = self.inner.config.node_id, error = %e, "raft task ended badly");
        }
        observe::record_stopped();
        tracing::info!(node = self.inner.config.node_id, "metadata node stopped");
    }

    /// The sweeper's next seq: the wall clock in microseconds, forced upward.
    fn next_sweeper_seq(&self) -> u64 {
        let wall_micros = u64::try_from(self.inner.clock.wall_nanos() / 1000).unwrap_or(0);
        let mut last = self.inner.sweeper_seq.load(Ordering::Relaxed);
        loop {
            let next = wall_micros.max(last + 1);
            match self.inner.sweeper_seq.compare_exchange(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }

    /// Holds the node weakly: dropping every handle without `shutdown` still ends it.
    async fn sweep_leases(node: Weak<Inner>, mut stop: watch::Receiver<bool>, interval: Duration) {
        loop {
            // `biased`: tokio's default random branch order would make simulated runs
            // depend on an RNG outside the seed.
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if *stop.borrow() {
                return;
            }
            let Some(inner) = node.upgrade() else { return };
            MetaNode { inner }.sweep_once().await;
        }
    }

    /// Copies Raft's state into the gauges every `interval` until stopped. Holds the node
    /// weakly, like the sweeper.
    async fn report_metrics(
        node: Weak<Inner>,
        mut stop: watch::Receiver<bool>,
        interval: Duration,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let Some(inner) = node.upgrade() else { return };
            observe::record_raft_gauges(&inner.raft.metrics().borrow_watched());
            drop(inner);
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn sweep_once(&self) {
        if self.inner.raft.as_leader().is_err() {
            return;
        }
        let client = ClientId(SWEEPER_CLIENT_BASE | self.inner.config.node_id);
        let seq = self.next_sweeper_seq();
        match self.write(client, seq, seq, Command::ExpireLeases).await {
            Ok(Ok(Reply::Expired { clients })) if !clients.is_empty() => {
                tracing::info!(count = clients.len(), ?clients, "expired NFS client leases");
            }
            Ok(Ok(_)) => {}
            Ok(Err(NsError::StaleRequest { window_start, .. })) => {
                // The wall clock went back since an earlier run of this node: continue
                // numbering after what the cluster has seen.
                self.inner
                    .sweeper_seq
                    .fetch_max(window_start, Ordering::Relaxed);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "lease sweep refused"),
            Err(e) => tracing::debug!(error = %e, "lease sweep not committed"),
        }
    }
}
