//! [`MetaClient`]: routing, retry and the typed calls. See the crate docs for the rules.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_meta_state::command::ApplyResult;
use bucketfs_meta_state::types::ClientId;
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use bucketfs_proto::convert::{decode_payload, encode_payload};
use bucketfs_proto::pb;
use bucketfs_proto::pb::meta_service_client::MetaServiceClient;
use bucketfs_proto::{LeaderHint, MembershipChange, NodeStatus, ReadConsistency, WireError};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use tracing::Instrument;

use crate::error::ClientError;
use crate::options::ClientOptions;
use crate::seq::Seqs;

/// Hints may add addresses the client was not given; this caps how many, so a confused or
/// hostile node cannot make the list grow without bound.
const MAX_PEERS: usize = 64;

/// Redirects followed at once, without backoff, before the client starts backing off (two
/// nodes with stale views could otherwise bounce a request between them).
const MAX_FREE_REDIRECTS: u32 = 3;

/// A handle to the metadata cluster. Cheap to clone; clones share the leader cache, the
/// connections and the sequence numbers (they are one writer).
#[derive(Clone)]
pub struct MetaClient {
    inner: Arc<Inner>,
}

struct Inner {
    opts: ClientOptions,
    client_id: ClientId,
    seqs: Seqs,
    peers: Mutex<Peers>,
}

struct Peer {
    addr: String,
    channel: Channel,
}

struct Peers {
    list: Vec<Peer>,
    /// Index into `list` of the node believed to be the leader.
    leader: Option<usize>,
}

/// Which nodes can serve a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Only the leader; others redirect.
    Leader,
    /// Any node (local reads); the cached leader first, as it is the freshest.
    Any,
}

/// How long an attempt may take and the whole call.
#[derive(Debug, Clone, Copy)]
struct Budget {
    call: Duration,
    attempt: Duration,
}

impl std::fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaClient")
            .field("client_id", &self.inner.client_id)
            .field("addrs", &self.addrs())
            .finish()
    }
}

/// `host:port` or a full `http://host:port` URI.
fn endpoint_uri(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

impl MetaClient {
    /// A client for the cluster reachable at `addrs` (any subset of its nodes, `host:port`).
    /// Connections are opened lazily, on first use, and re-opened after errors; so this
    /// succeeds even if no node is up yet. Must be called inside a tokio runtime.
    pub async fn connect(addrs: Vec<String>, options: ClientOptions) -> Result<Self, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::Config("no metadata node address given".into()));
        }
        let client_id = options
            .client_id
            .unwrap_or_else(|| ClientId(options.entropy.next_u64()));
        let mut list = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if list.iter().any(|p: &Peer| p.addr == addr) {
                continue;
            }
            let channel = Self::channel(&options, &addr)?;
            list.push(Peer { addr, channel });
        }
        Ok(MetaClient {
            inner: Arc::new(Inner {
                opts: options,
                client_id,
                seqs: Seqs::default(),
                peers: Mutex::new(Peers { list, leader: None }),
            }),
        })
    }

    fn channel(opts: &ClientOptions, addr: &str) -> Result<Channel, ClientError> {
        let endpoint = Endpoint::from_shared(endpoint_uri(addr))
            .map_err(|e| ClientError::Config(format!("invalid address {addr:?}: {e}")))?
            .connect_timeout(opts.connect_timeout)
            .tcp_nodelay(true);
        Ok(endpoint.connect_lazy())
    }

    /// This client's writer identity.
    pub fn client_id(&self) -> ClientId {
        self.inner.client_id
    }

    /// The addresses this client knows (given, plus those learned from leader hints).
    pub fn addrs(&self) -> Vec<String> {
        self.peers().list.iter().map(|p| p.addr.clone()).collect()
    }

    /// The address of the node this client currently takes for the leader.
    pub fn leader_addr(&self) -> Option<String> {
        let peers = self.peers();
        peers.leader.map(|i| peers.list[i].addr.clone())
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, Peers> {
        // Peers is a list and an index updated together; a panic cannot tear them.
        self.inner.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Proposes `command`; exactly-once across retries and leader changes.
    pub async fn write(&self, command: Command) -> Result<Reply, ClientError> {
        let guard = self.inner.seqs.begin();
        let seq = guard.seq;
        let span = tracing::debug_span!(
            "meta_write",
            client = self.inner.client_id.0,
            seq,
            rpc = "Write"
        );
        let bytes = encode_payload(&command);
        let seqs = self.inner.seqs.clone();
        let client_id = self.inner.client_id.0;
        let budget = self.data_budget();
        let resp = self
            .call("write", Route::Leader, budget, move |mut c, timeout| {
                // Recomputed per attempt: it only grows, and never past this write's seq,
                // which stays in flight until the guard drops.
                let mut req = Request::new(pb::WriteRequest {
                    client_id,
                    seq,
                    ack_below: seqs.ack_below(),
                    command: bytes.clone(),
                });
                req.set_timeout(timeout);
                bucketfs_telemetry::propagation::inject_current(req.metadata_mut());
                async move { c.write(req).await.map(tonic::Response::into_inner) }
            })
            .instrument(span)
            .await;
        drop(guard);
        let resp = resp?;
        let result: ApplyResult =
            decode_payload("write result", &resp.result).map_err(|e| ClientError::Protocol {
                op: "write",
                message: e.to_string(),
            })?;
        result.map_err(ClientError::Ns)
    }

    /// Answers `query` with the given freshness.
    pub async fn read(
        &self,
        query: Query,
        consistency: ReadConsistency,
    ) -> Result<QueryReply, ClientError> {
        let span = tracing::debug_span!(
            "meta_read",
            client = self.inner.client_id.0,
            rpc = "Read",
            ?consistency
        );
        let route = match consistency {
            ReadConsistency::AnyLocal => Route::Any,
            ReadConsistency::Linearizable | ReadConsistency::LeaderLocal => Route::Leader,
        };
        let bytes = encode_payload(&query);
        let wire_consistency = pb::Consistency::from(consistency) as i32;
        let resp = self
            .call("read", route, self.data_budget(), move |mut c, timeout| {
                let mut req = Request::new(pb::ReadRequest {
                    query: bytes.clone(),
                    consistency: wire_consistency,
                });
                req.set_timeout(timeout);
                bucketfs_telemetry::propagation::inject_current(req.metadata_mut());
                async move { c.read(req).await.map(tonic::Response::into_inner) }
            })
            .instrument(span)
            .await?;
        let reply: Result<QueryReply, NsError> = decode_payload("read reply", &resp.reply)
            .map_err(|e| ClientError::Protocol {
                op: "read",
                message: e.to_string(),
            })?;
        reply.map_err(ClientError::Ns)
    }

    /// The status of the node at `addr` (which need not be in this client's list), in one
    /// attempt bounded by `rpc_timeout`: a status report must not hang on a dead node.
    pub async fn status_of(&self, addr: &str) -> Result<NodeStatus, ClientError> {
        let op = "status";
        let channel = self.channel_for(addr)?;
        let mut client = MetaServiceClient::new(channel);
        let mut req = Request::new(pb::StatusRequest {});
        let timeout = self.inner.opts.rpc_timeout;
        req.set_timeout(timeout);
        let resp = match tokio::time::timeout(timeout, client.status(req)).await {
            Ok(Ok(resp)) => resp.into_inner(),
            Ok(Err(status)) => return Err(terminal_error(op, &status, 1)),
            Err(_) => {
                return Err(ClientError::Unavailable {
                    op,
                    attempts: 1,
                    last_error: format!("{addr}: no answer within {timeout:?}"),
                });
            }
        };
        NodeStatus::try_from(resp).map_err(|e| ClientError::Protocol {
            op,
            message: e.to_string(),
        })
    }

    /// The status of every node this client knows, then of every other member those nodes
    /// report (so `--cluster` may name any one node), each asked concurrently in one
    /// attempt. Results come in that order: the client's addresses first.
    pub async fn status_all(&self) -> Vec<(String, Result<NodeStatus, ClientError>)> {
        let mut out = self.status_of_each(self.addrs()).await;
        let mut discovered: Vec<String> = Vec::new();
        for (_, status) in &out {
            if let Ok(s) = status {
                for m in s.membership.voters.iter().chain(&s.membership.learners) {
                    let known =
                        out.iter().any(|(a, _)| *a == m.addr) || discovered.contains(&m.addr);
                    if !known && !m.addr.is_empty() {
                        discovered.push(m.addr.clone());
                    }
                }
            }
        }
        out.extend(self.status_of_each(discovered).await);
        out
    }

    async fn status_of_each(
        &self,
        addrs: Vec<String>,
    ) -> Vec<(String, Result<NodeStatus, ClientError>)> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, addr) in addrs.iter().enumerate() {
            let this = self.clone();
            let addr = addr.clone();
            tasks.spawn(async move { (i, this.status_of(&addr).await) });
        }
        let mut out: Vec<Option<Result<NodeStatus, ClientError>>> = vec![None; addrs.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, r)) = joined {
                out[i] = Some(r);
            }
        }
        addrs
            .into_iter()
            .zip(out)
            .map(|(addr, r)| {
                let r = r.unwrap_or_else(|| {
                    Err(ClientError::Unavailable {
                        op: "status",
                        attempts: 1,
                        last_error: "status task failed".into(),
                    })
                });
                (addr, r)
            })
            .collect()
    }

    /// Initializes a new cluster with `members` (node id → address). Sent to the members
    /// themselves, in id order, until one answers: every member must be up and empty, and
    /// one initialized member is enough (it replicates the membership to the others).
    /// Initializing an already initialized cluster with the same voters succeeds; with
    /// other voters it is refused.
    pub async fn init(&self, members: BTreeMap<u64, String>) -> Result<(), ClientError> {
        let op = "init";
        let span = tracing::info_span!("meta_admin", rpc = "Init");
        async {
            if members.is_empty() {
                return Err(ClientError::Config("init needs at least one member".into()));
            }
            let timeout = self.inner.opts.admin_timeout;
            let mut last_error = String::new();
            let mut attempts = 0;
            for addr in members.values() {
                attempts += 1;
                let mut client = MetaServiceClient::new(self.channel_for(addr)?);
                let mut req = Request::new(pb::InitRequest {
                    members: members.clone(),
                });
                req.set_timeout(timeout);
                match tokio::time::timeout(timeout, client.init(req)).await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(status)) => match WireError::from_status(&status) {
                        Some(WireError::Invalid(message)) => {
                            return Err(ClientError::Invalid { op, message });
                        }
                        Some(WireError::Membership(message)) => {
                            return Err(ClientError::Membership { op, message });
                        }
                        _ => last_error = format!("{addr}: {}", status.message()),
                    },
                    Err(_) => last_error = format!("{addr}: no answer within {timeout:?}"),
                }
            }
            Err(ClientError::Unavailable {
                op,
                attempts,
                last_error,
            })
        }
        .instrument(span)
        .await
    }

    /// Adds a learner (or updates its address); with `blocking`, waits until it caught up.
    pub async fn add_learner(
        &self,
        id: u64,
        addr: String,
        blocking: bool,
    ) -> Result<MembershipChange, ClientError> {
        let span = tracing::info_span!("meta_admin", rpc = "AddLearner", node = id);
        let req = pb::AddLearnerRequest { id, addr, blocking };
        self.membership_call("add_learner", move |mut c, timeout| {
            let mut r = Request::new(req.clone());
            r.set_timeout(timeout);
            async move { c.add_learner(r).await.map(tonic::Response::into_inner) }
        })
        .instrument(span)
        .await
    }

    /// Makes `voters` the voter set (each must already be a member); `retain` keeps removed
    /// voters as learners.
    pub async fn change_membership(
        &self,
        voters: Vec<u64>,
        retain: bool,
    ) -> Result<MembershipChange, ClientError> {
        let span = tracing::info_span!("meta_admin", rpc = "ChangeMembership", ?voters);
        let req = pb::ChangeMembershipRequest { voters, retain };
        self.membership_call("change_membership", move |mut c, timeout| {
            let mut r = Request::new(req.clone());
            r.set_timeout(timeout);
            async move {
                c.change_membership(r)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .instrument(span)
        .await
    }

    /// Removes node `id` from the cluster, voter or learner.
    pub async fn remove_node(&self, id: u64) -> Result<MembershipChange, ClientError> {
        let span = tracing::info_span!("meta_admin", rpc = "RemoveNode", node = id);
        let req = pb::RemoveNodeRequest { id };
        self.membership_call("remove_node", move |mut c, timeout| {
            let mut r = Request::new(req);
            r.set_timeout(timeout);
            async move { c.remove_node(r).await.map(tonic::Response::into_inner) }
        })
        .instrument(span)
        .await
    }

    async fn membership_call<F, Fut>(
        &self,
        op: &'static str,
        attempt: F,
    ) -> Result<MembershipChange, ClientError>
    where
        F: FnMut(MetaServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<pb::MembershipResponse, Status>>,
    {
        let resp = self
            .call(op, Route::Leader, self.admin_budget(), attempt)
            .await?;
        MembershipChange::try_from(resp).map_err(|e| ClientError::Protocol {
            op,
            message: e.to_string(),
        })
    }

    fn data_budget(&self) -> Budget {
        Budget {
            call: self.inner.opts.call_timeout,
            attempt: self.inner.opts.rpc_timeout,
        }
    }

    fn admin_budget(&self) -> Budget {
        Budget {
            call: self.inner.opts.admin_timeout,
            attempt: self.inner.opts.admin_timeout,
        }
    }

    /// The channel of a known peer, or a new one (not added to the list) for `addr`.
    fn channel_for(&self, addr: &str) -> Result<Channel, ClientError> {
        if let Some(p) = self.peers().list.iter().find(|p| p.addr == addr) {
            return Ok(p.channel.clone());
        }
        Self::channel(&self.inner.opts, addr)
    }

    /// The peer to try first: the cached leader, else the first address.
    fn first_target(&self) -> usize {
        self.peers().leader.unwrap_or(0)
    }

    fn target(&self, i: usize) -> (String, Channel) {
        let peers = self.peers();
        let p = &peers.list[i % peers.list.len()];
        (p.addr.clone(), p.channel.clone())
    }

    fn next_target(&self, i: usize) -> usize {
        (i + 1) % self.peers().list.len()
    }

    fn set_leader(&self, i: usize) {
        self.peers().leader = Some(i);
    }

    fn forget_leader(&self, i: usize) {
        let mut peers = self.peers();
        if peers.leader == Some(i) {
            peers.leader = None;
        }
    }

    /// The peer a not-leader hint points at, adding its address if it is new.
    fn peer_for_hint(&self, hint: &LeaderHint) -> Option<usize> {
        let addr = hint.leader_addr.as_deref().filter(|a| !a.is_empty())?;
        let mut peers = self.peers();
        if let Some(i) = peers.list.iter().position(|p| p.addr == addr) {
            return Some(i);
        }
        if peers.list.len() >= MAX_PEERS {
            return None;
        }
        let channel = Self::channel(&self.inner.opts, addr).ok()?;
        peers.list.push(Peer {
            addr: addr.to_string(),
            channel,
        });
        Some(peers.list.len() - 1)
    }

    /// Bounded exponential backoff with jitter: the upper half of each step is random, so
    /// clients that failed together do not retry together.
    fn backoff(&self, failures: u32) -> Duration {
        let opts = &self.inner.opts;
        let step = opts
            .backoff_initial
            .saturating_mul(1u32 << failures.min(16))
            .min(opts.backoff_max);
        let half = step / 2;
        let jitter_nanos = opts.entropy.below(
            u64::try_from(half.as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        );
        half + Duration::from_nanos(jitter_nanos)
    }

    /// Runs `attempt` against the right node until it gives a definitive answer or the
    /// budget runs out. See the crate docs for the routing rules.
    async fn call<T, F, Fut>(
        &self,
        op: &'static str,
        route: Route,
        budget: Budget,
        mut attempt: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(MetaServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let clock = self.inner.opts.clock.clone();
        let deadline: Instant = clock.now() + budget.call;
        let mut target = self.first_target();
        let mut attempts = 0u32;
        let mut failures = 0u32;
        let mut free_redirects = 0u32;
        let mut last_error = String::from("no attempt made");
        loop {
            let remaining = deadline.saturating_duration_since(clock.now());
            if remaining.is_zero() {
                return Err(ClientError::Unavailable {
                    op,
                    attempts,
                    last_error,
                });
            }
            let per_attempt = budget.attempt.min(remaining);
            let (addr, channel) = self.target(target);
            attempts += 1;
            let outcome = tokio::time::timeout(
                per_attempt,
                attempt(MetaServiceClient::new(channel), per_attempt),
            )
            .await;
            let status = match outcome {
                Ok(Ok(v)) => {
                    if route == Route::Leader {
                        self.set_leader(target);
                    }
                    return Ok(v);
                }
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded(format!("no answer within {per_attempt:?}")),
            };
            last_error = format!("{addr}: {}", status.message());
            match WireError::from_status(&status) {
                Some(WireError::NotLeader(hint)) => {
                    self.forget_leader(target);
                    match self.peer_for_hint(&hint) {
                        Some(next) if next != target => {
                            tracing::debug!(%addr, leader = ?hint.leader_addr, "redirected to leader");
                            self.set_leader(next);
                            target = next;
                            if free_redirects < MAX_FREE_REDIRECTS {
                                free_redirects += 1;
                                continue;
                            }
                        }
                        _ => target = self.next_target(target),
                    }
                }
                Some(WireError::Invalid(message)) => {
                    return Err(ClientError::Invalid { op, message });
                }
                Some(WireError::Membership(message)) => {
                    return Err(ClientError::Membership { op, message });
                }
                Some(WireError::Unavailable(_) | WireError::Fatal(_)) | None => {
                    tracing::debug!(%addr, error = %status, "attempt failed; trying another node");
                    self.forget_leader(target);
                    target = self.next_target(target);
                }
            }
            let pause = self
                .backoff(failures)
                .min(deadline.saturating_duration_since(clock.now()));
            failures += 1;
            tokio::time::sleep(pause).await;
        }
    }
}

/// The error for a status that ends a single-attempt call.
fn terminal_error(op: &'static str, status: &Status, attempts: u32) -> ClientError {
    match WireError::from_status(status) {
        Some(WireError::Invalid(message)) => ClientError::Invalid { op, message },
        Some(WireError::Membership(message)) => ClientError::Membership { op, message },
        _ => ClientError::Unavailable {
            op,
            attempts,
            last_error: status.message().to_string(),
        },
    }
}
