//! The gRPC services of a node, as thin adapters: decode, call [`MetaNode`] (or openraft for
//! peer traffic), encode, map errors onto [`WireError`]. One span per request carries the
//! RPC name and, for writes, the client id and seq; every request is counted and timed
//! ([`crate::observe`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use bucketfs_meta_state::types::ClientId;
use bucketfs_meta_state::{Command, Query};
use bucketfs_meta_store::{MetaRaft, Snapshot, TypeConfig};
use bucketfs_proto::convert::{decode_payload, encode_payload, read_consistency};
use bucketfs_proto::pb;
use bucketfs_proto::pb::meta_service_server::MetaService;
use bucketfs_proto::pb::raft_service_server::RaftService;
use bucketfs_proto::{DecodeError, WireError};
use bucketfs_runtime::Clock;
use futures::StreamExt as _;
use openraft::error::{Fatal, RaftError};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument as _;

use crate::network::SnapshotHeader;
use crate::node::MetaNode;
use crate::observe::observed;

fn invalid(e: DecodeError) -> Status {
    WireError::Invalid(e.to_string()).into_status()
}

fn fatal(f: &Fatal<TypeConfig>) -> Status {
    match f {
        // A node that is shutting down: the caller should go elsewhere or come back.
        Fatal::Stopped => WireError::Unavailable("raft stopped".into()).into_status(),
        other => WireError::Fatal(other.to_string()).into_status(),
    }
}

fn raft_error(e: RaftError<TypeConfig>) -> Status {
    match e {
        RaftError::Fatal(f) => fatal(&f),
        RaftError::APIError(never) => match never {},
    }
}

fn payload(data: Vec<u8>) -> Response<pb::RaftPayload> {
    Response::new(pb::RaftPayload { data })
}

/// Peer traffic: hands openraft's messages to the local `Raft`.
pub struct RaftServiceImpl {
    raft: MetaRaft,
    /// Times requests for the metrics.
    clock: Arc<dyn Clock>,
}

impl RaftServiceImpl {
    pub fn new(raft: MetaRaft, clock: Arc<dyn Clock>) -> Self {
        RaftServiceImpl { raft, clock }
    }
}

#[tonic::async_trait]
impl RaftService for RaftServiceImpl {
    #[tracing::instrument(
        level = "trace",
        name = "raft_rpc",
        skip_all,
        fields(rpc = "AppendEntries")
    )]
    async fn append_entries(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        observed("AppendEntries", &self.clock, async {
            let req: AppendEntriesRequest<TypeConfig> =
                decode_payload("AppendEntries", &request.get_ref().data).map_err(invalid)?;
            let resp = self.raft.append_entries(req).await.map_err(raft_error)?;
            Ok(payload(encode_payload(&resp)))
        })
        .await
    }

    #[tracing::instrument(level = "trace", name = "raft_rpc", skip_all, fields(rpc = "Vote"))]
    async fn vote(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        observed("Vote", &self.clock, async {
            let req: VoteRequest<TypeConfig> =
                decode_payload("Vote", &request.get_ref().data).map_err(invalid)?;
            let resp = self.raft.vote(req).await.map_err(raft_error)?;
            Ok(payload(encode_payload(&resp)))
        })
        .await
    }

    #[tracing::instrument(level = "trace", name = "raft_rpc", skip_all, fields(rpc = "PreVote"))]
    async fn pre_vote(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        observed("PreVote", &self.clock, async {
            let req: VoteRequest<TypeConfig> =
                decode_payload("PreVote", &request.get_ref().data).map_err(invalid)?;
            let resp = self.raft.pre_vote(req).await.map_err(raft_error)?;
            Ok(payload(encode_payload(&resp)))
        })
        .await
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        observed("Snapshot", &self.clock, async {
            let mut stream = request.into_inner();
            let header: SnapshotHeader = match stream.next().await {
                Some(Ok(pb::SnapshotChunk {
                    kind: Some(pb::snapshot_chunk::Kind::Header(h)),
                })) => decode_payload("SnapshotHeader", &h).map_err(invalid)?,
                Some(Err(status)) => return Err(status),
                _ => {
                    return Err(WireError::Invalid(
                        "a snapshot stream must start with its header".into(),
                    )
                    .into_status());
                }
            };
            let span =
                tracing::info_span!("snapshot_install", rpc = "Snapshot", meta = %header.meta);
            async move {
                let mut data = Vec::new();
                while let Some(chunk) = stream.next().await {
                    match chunk?.kind {
                        Some(pb::snapshot_chunk::Kind::Data(bytes)) => {
                            data.extend_from_slice(&bytes)
                        }
                        _ => {
                            return Err(WireError::Invalid(
                                "only data may follow a snapshot header".into(),
                            )
                            .into_status());
                        }
                    }
                }
                tracing::info!(bytes = data.len(), "snapshot received; installing");
                let snapshot = Snapshot {
                    meta: header.meta,
                    snapshot: data,
                };
                let resp = self
                    .raft
                    .install_full_snapshot(header.vote, snapshot)
                    .await
                    .map_err(|f| fatal(&f))?;
                Ok(payload(encode_payload(&resp)))
            }
            .instrument(span)
            .await
        })
        .await
    }

    #[tracing::instrument(
        level = "trace",
        name = "raft_rpc",
        skip_all,
        fields(rpc = "TransferLeader")
    )]
    async fn transfer_leader(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        observed("TransferLeader", &self.clock, async {
            let req: TransferLeaderRequest<TypeConfig> =
                decode_payload("TransferLeader", &request.get_ref().data).map_err(invalid)?;
            let resp = self
                .raft
                .handle_transfer_leader(req)
                .await
                .map_err(|f| fatal(&f))?;
            Ok(payload(encode_payload(&resp)))
        })
        .await
    }
}

/// Gateways and the CLI: the namespace and admin API of one node.
pub struct MetaServiceImpl {
    node: MetaNode,
}

impl MetaServiceImpl {
    pub fn new(node: MetaNode) -> Self {
        MetaServiceImpl { node }
    }
}

#[tonic::async_trait]
impl MetaService for MetaServiceImpl {
    async fn write(
        &self,
        request: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let span = tracing::debug_span!(
            "meta_rpc",
            rpc = "Write",
            client = req.client_id,
            seq = req.seq
        );
        bucketfs_telemetry::propagation::adopt_parent(&span, &metadata);
        observed("Write", self.node.clock(), async {
            async move {
                let command: Command = decode_payload("command", &req.command).map_err(invalid)?;
                let (result, log_index) = self
                    .node
                    .write_indexed(ClientId(req.client_id), req.seq, req.ack_below, command)
                    .await
                    .map_err(|e| WireError::from(e).into_status())?;
                Ok(Response::new(pb::WriteResponse {
                    result: encode_payload(&result),
                    log_index,
                }))
            }
            .instrument(span)
            .await
        })
        .await
    }

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let span = tracing::debug_span!("meta_rpc", rpc = "Read");
        bucketfs_telemetry::propagation::adopt_parent(&span, &metadata);
        observed("Read", self.node.clock(), async {
            async move {
                let query: Query = decode_payload("query", &req.query).map_err(invalid)?;
                let consistency = read_consistency(req.consistency).map_err(invalid)?;
                let reply = self
                    .node
                    .read(query, consistency)
                    .await
                    .map_err(|e| WireError::from(e).into_status())?;
                Ok(Response::new(pb::ReadResponse {
                    reply: encode_payload(&reply),
                }))
            }
            .instrument(span)
            .await
        })
        .await
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        observed("Status", self.node.clock(), async {
            Ok(Response::new(self.node.status().into()))
        })
        .await
    }

    async fn init(
        &self,
        request: Request<pb::InitRequest>,
    ) -> Result<Response<pb::InitResponse>, Status> {
        let members = request.into_inner().members;
        let span = tracing::info_span!("meta_rpc", rpc = "Init", members = ?members);
        observed("Init", self.node.clock(), async {
            async move {
                self.node
                    .initialize(members)
                    .await
                    .map_err(|e| WireError::from(e).into_status())?;
                tracing::info!("cluster initialized");
                Ok(Response::new(pb::InitResponse {}))
            }
            .instrument(span)
            .await
        })
        .await
    }

    async fn add_learner(
        &self,
        request: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        let span =
            tracing::info_span!("meta_rpc", rpc = "AddLearner", node = req.id, addr = %req.addr);
        observed("AddLearner", self.node.clock(), async {
            async move {
                let change = self
                    .node
                    .add_learner(req.id, req.addr, req.blocking)
                    .await
                    .map_err(|e| WireError::from(e).into_status())?;
                tracing::info!(log_index = change.log_index, "learner added");
                Ok(Response::new(change.into()))
            }
            .instrument(span)
            .await
        })
        .await
    }

    async fn change_membership(
        &self,
        request: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let req = request.into_inner();
        let voters: BTreeSet<u64> = req.voters.into_iter().collect();
        let span = tracing::info_span!("meta_rpc", rpc = "ChangeMembership", voters = ?voters, retain = req.retain);
        observed("ChangeMembership", self.node.clock(), async {
            async move {
                let change = self
                    .node
                    .change_membership(voters, req.retain)
                    .await
                    .map_err(|e| WireError::from(e).into_status())?;
                tracing::info!(log_index = change.log_index, "membership changed");
                Ok(Response::new(change.into()))
            }
            .instrument(span)
            .await
        })
        .await
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let id = request.into_inner().id;
        let span = tracing::info_span!("meta_rpc", rpc = "RemoveNode", node = id);
        observed("RemoveNode", self.node.clock(), async {
            async move {
                let change = self
                    .node
                    .remove_node(id)
                    .await
                    .map_err(|e| WireError::from(e).into_status())?;
                tracing::info!(log_index = change.log_index, "node removed");
                Ok(Response::new(change.into()))
            }
            .instrument(span)
            .await
        })
        .await
    }
}
