//! [`GrpcNetwork`]: openraft's network over tonic, talking to peers' `RaftService`.
//!
//! * One cached `Channel` per peer, shared by every client openraft asks for (replication
//!   streams, heartbeats, votes, snapshots). Channels connect lazily and reconnect by
//!   themselves after an error; HTTP/2 keepalive detects a dead connection that no RPC is
//!   using. A peer whose address changes in the membership gets a fresh channel.
//! * Every RPC carries a deadline: openraft's `RPCOption::soft_ttl`, both as the gRPC
//!   timeout (so the receiver can give up too) and as a local timeout (so a response lost on
//!   an open connection cannot wedge replication).
//! * Payloads are openraft's own messages in `bucketfs_meta_state::codec` form (see
//!   `raft.proto` for why). A snapshot travels as a client stream: a header with the vote and
//!   the snapshot meta, then the snapshot bytes in 1 MiB chunks.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_meta_store::{Snapshot, SnapshotData, SnapshotMeta, TypeConfig, Vote};
use bucketfs_proto::convert::{decode_payload, encode_payload};
use bucketfs_proto::pb;
use bucketfs_proto::pb::raft_service_client::RaftServiceClient;
use futures::StreamExt as _;
use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// Size of one snapshot data message.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Largest gRPC message a node sends or accepts (AppendEntries batches can be large).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The first message of a snapshot stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    pub(crate) vote: Vote,
    pub(crate) meta: SnapshotMeta,
}

/// openraft's network factory for a node reaching its peers over gRPC. Cloning shares the
/// channel cache.
#[derive(Clone)]
pub struct GrpcNetwork {
    node_id: u64,
    connect_timeout: Duration,
    channels: Arc<Mutex<HashMap<u64, (String, Channel)>>>,
}

impl std::fmt::Debug for GrpcNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcNetwork")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl GrpcNetwork {
    /// The network of node `node_id` (named in timeouts it reports).
    pub fn new(node_id: u64) -> Self {
        GrpcNetwork {
            node_id,
            connect_timeout: Duration::from_secs(1),
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn channel(&self, target: u64, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, channel)) = channels.get(&target)
            && known == addr
        {
            return Ok(channel.clone());
        }
        let uri = format!("http://{addr}");
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| format!("invalid address {addr:?} of node {target}: {e}"))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(3))
            .keep_alive_while_idle(true)
            .connect_lazy();
        channels.insert(target, (addr.to_string(), channel.clone()));
        Ok(channel)
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcPeer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> GrpcPeer {
        let client = self.channel(target, &node.addr).map(|channel| {
            RaftServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        });
        GrpcPeer {
            node_id: self.node_id,
            target,
            client,
        }
    }
}

/// openraft's client for one peer. A peer with an unusable address still gets a client; its
/// every RPC then fails as unreachable, which openraft handles with backoff.
pub struct GrpcPeer {
    node_id: u64,
    target: u64,
    client: Result<RaftServiceClient<Channel>, String>,
}

/// The unary RPCs of `RaftService`.
#[derive(Debug, Clone, Copy)]
enum Unary {
    AppendEntries,
    Vote,
    PreVote,
    TransferLeader,
}

impl Unary {
    fn name(self) -> &'static str {
        match self {
            Unary::AppendEntries => "AppendEntries",
            Unary::Vote => "Vote",
            Unary::PreVote => "PreVote",
            Unary::TransferLeader => "TransferLeader",
        }
    }

    /// openraft's name for it, in timeouts.
    fn action(self) -> RPCTypes {
        match self {
            Unary::AppendEntries => RPCTypes::AppendEntries,
            Unary::Vote | Unary::PreVote => RPCTypes::Vote,
            Unary::TransferLeader => RPCTypes::TransferLeader,
        }
    }
}

type RpcFuture<'a> =
    Pin<Box<dyn Future<Output = Result<tonic::Response<pb::RaftPayload>, Status>> + Send + 'a>>;

impl GrpcPeer {
    fn client(&self) -> Result<RaftServiceClient<Channel>, RPCError<TypeConfig>> {
        self.client
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))
    }

    fn timeout_error(&self, action: RPCTypes, timeout: Duration) -> Timeout<TypeConfig> {
        Timeout {
            action,
            id: self.node_id,
            target: self.target,
            timeout,
        }
    }

    /// A failed call: refused connections are unreachable (openraft backs off longer),
    /// deadlines are timeouts, the rest network errors.
    fn status_error(
        &self,
        action: RPCTypes,
        timeout: Duration,
        status: &Status,
    ) -> RPCError<TypeConfig> {
        let from_transport = bucketfs_proto::WireError::from_status(status).is_none();
        match status.code() {
            Code::DeadlineExceeded | Code::Cancelled => {
                RPCError::Timeout(self.timeout_error(action, timeout))
            }
            Code::Unavailable if from_transport => RPCError::Unreachable(Unreachable::from_string(
                format!("node {}: {}", self.target, status.message()),
            )),
            _ => RPCError::Network(NetworkError::from_string(format!(
                "node {}: {action}: {status}",
                self.target
            ))),
        }
    }

    async fn unary<Req, Resp>(
        &self,
        rpc: Unary,
        option: &RPCOption,
        req: &Req,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let mut client = self.client()?;
        let timeout = option.soft_ttl();
        let mut request = Request::new(pb::RaftPayload {
            data: encode_payload(req),
        });
        request.set_timeout(timeout);
        let action = rpc.action();
        let call: RpcFuture<'_> = match rpc {
            Unary::AppendEntries => Box::pin(client.append_entries(request)),
            Unary::Vote => Box::pin(client.vote(request)),
            Unary::PreVote => Box::pin(client.pre_vote(request)),
            Unary::TransferLeader => Box::pin(client.transfer_leader(request)),
        };
        let resp = match tokio::time::timeout(timeout, call).await {
            Err(_) => return Err(RPCError::Timeout(self.timeout_error(action, timeout))),
            Ok(Err(status)) => return Err(self.status_error(action, timeout, &status)),
            Ok(Ok(resp)) => resp.into_inner(),
        };
        decode_payload(rpc.name(), &resp.data).map_err(|e| {
            RPCError::Network(NetworkError::from_string(format!(
                "node {}: {e}",
                self.target
            )))
        })
    }
}

impl RaftNetworkV2<TypeConfig> for GrpcPeer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Unary::AppendEntries, &option, &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Unary::Vote, &option, &rpc).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Unary::PreVote, &option, &rpc).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(Unary::TransferLeader, &option, &req).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client()?;
        let timeout = option.soft_ttl();
        let header = encode_payload(&SnapshotHeader {
            vote,
            meta: snapshot.meta,
        });
        let data = Arc::new(snapshot.snapshot);
        let chunks = data.len().div_ceil(SNAPSHOT_CHUNK_BYTES);
        tracing::info!(
            target_node = self.target,
            bytes = data.len(),
            chunks,
            "sending snapshot"
        );
        // Chunks are cut as the stream is polled, so the snapshot is not copied whole.
        let messages = futures::stream::iter(
            std::iter::once(pb::snapshot_chunk::Kind::Header(header)).chain((0..chunks).map(
                move |i| {
                    let end = ((i + 1) * SNAPSHOT_CHUNK_BYTES).min(data.len());
                    pb::snapshot_chunk::Kind::Data(data[i * SNAPSHOT_CHUNK_BYTES..end].to_vec())
                },
            )),
        )
        .map(|kind| pb::SnapshotChunk { kind: Some(kind) });
        let mut request = Request::new(messages);
        request.set_timeout(timeout);
        let send = tokio::time::timeout(timeout, client.snapshot(request));
        let resp = tokio::select! {
            biased; // deterministic under the simulator
            closed = cancel => return Err(StreamingError::Closed(closed)),
            sent = send => sent,
        };
        let resp = match resp {
            Err(_) => {
                return Err(StreamingError::Timeout(
                    self.timeout_error(RPCTypes::InstallSnapshot, timeout),
                ));
            }
            Ok(Err(status)) => {
                return Err(self
                    .status_error(RPCTypes::InstallSnapshot, timeout, &status)
                    .into());
            }
            Ok(Ok(resp)) => resp.into_inner(),
        };
        decode_payload("SnapshotResponse", &resp.data).map_err(|e| {
            StreamingError::Network(NetworkError::from_string(format!(
                "node {}: {e}",
                self.target
            )))
        })
    }
}
