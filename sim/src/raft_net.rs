//! openraft's network, implemented over the simulated network: each Raft RPC is a
//! [`Net::call`] from the sending node to the target node, whose handler hands the request to
//! the target's `Raft` handle, exactly where a real transport's server would.
//!
//! The deadline of every call is the RPC's `soft_ttl` (openraft's advice: a partition must
//! surface as a timeout, never as a call that hangs and wedges replication). A timeout is
//! reported as `RPCError::Timeout`, a down host as `Unreachable` (openraft then backs off),
//! and an error returned by the target's Raft (it is shutting down) as a network error.
//!
//! AppendEntries requests are shown to the [`Observer`] on the way out.

use std::fmt;
use std::future::Future;

use bucketfs_meta_store::{MetaRaft, Node, NodeId, Snapshot, SnapshotData, TypeConfig, Vote};
use openraft::RPCTypes;
use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};

use crate::net::{Net, NetError};
use crate::observer::{Observer, lid};

/// A host that runs a Raft node.
pub trait RaftHost: Clone + Send + Sync + 'static {
    fn raft(&self) -> &MetaRaft;
}

/// The network factory handed to one node.
pub struct SimNetworkFactory<S> {
    pub net: Net<S>,
    pub me: NodeId,
    /// The incarnation of `me` this factory belongs to.
    pub incarnation: u64,
    pub observer: Observer,
}

impl<S: RaftHost> RaftNetworkFactory<TypeConfig> for SimNetworkFactory<S> {
    type Network = SimPeer<S>;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> SimPeer<S> {
        SimPeer {
            net: self.net.clone(),
            from: self.me,
            incarnation: self.incarnation,
            to: target,
            observer: self.observer.clone(),
        }
    }
}

/// One node's client for one peer.
pub struct SimPeer<S> {
    net: Net<S>,
    from: NodeId,
    incarnation: u64,
    to: NodeId,
    observer: Observer,
}

#[derive(Debug)]
struct RemoteFailed(String);

impl fmt::Display for RemoteFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote raft failed: {}", self.0)
    }
}

impl std::error::Error for RemoteFailed {}

impl<S: RaftHost> SimPeer<S> {
    fn timeout(&self, action: RPCTypes, option: &RPCOption) -> Timeout<TypeConfig> {
        Timeout {
            action,
            id: self.from,
            target: self.to,
            timeout: option.soft_ttl(),
        }
    }

    async fn rpc<R, E, F, Fut>(
        &self,
        action: RPCTypes,
        what: String,
        option: &RPCOption,
        handler: F,
    ) -> Result<R, RPCError<TypeConfig>>
    where
        R: Send + 'static,
        E: fmt::Display + Send + 'static,
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        match self
            .net
            .call_as(
                self.from,
                self.incarnation,
                self.to,
                what,
                option.soft_ttl(),
                handler,
            )
            .await
        {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(RPCError::Network(NetworkError::new(&RemoteFailed(
                e.to_string(),
            )))),
            Err(NetError::Timeout) => Err(RPCError::Timeout(self.timeout(action, option))),
            Err(e @ NetError::Unreachable) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }
}

impl<S: RaftHost> RaftNetworkV2<TypeConfig> for SimPeer<S> {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        if rpc.vote.committed {
            self.observer.saw_leader(
                rpc.vote.leader_id.term,
                rpc.vote.leader_id.voted_for,
                "sent AppendEntries",
            );
        }
        self.observer
            .saw_entries(rpc.prev_log_id.as_ref(), &rpc.entries);
        let what = format!(
            "append(term {}, prev {:?}, {} entries, commit {:?})",
            rpc.vote.leader_id.term,
            rpc.prev_log_id.as_ref().map(|l| lid(l).2),
            rpc.entries.len(),
            rpc.leader_commit.as_ref().map(|l| lid(l).2),
        );
        self.rpc(
            RPCTypes::AppendEntries,
            what,
            &option,
            move |h: S| async move { h.raft().append_entries(rpc).await },
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let what = format!("vote(term {})", rpc.vote.leader_id.term);
        self.rpc(RPCTypes::Vote, what, &option, move |h: S| async move {
            h.raft().vote(rpc).await
        })
        .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let what = format!("pre-vote(term {})", rpc.vote.leader_id.term);
        self.rpc(RPCTypes::Vote, what, &option, move |h: S| async move {
            h.raft().pre_vote(rpc).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let what = format!(
            "snapshot(upto {:?}, {} bytes)",
            snapshot.meta.last_log_id.as_ref().map(|l| lid(l).2),
            snapshot.snapshot.len()
        );
        let call = self.rpc(
            RPCTypes::InstallSnapshot,
            what,
            &option,
            move |h: S| async move { h.raft().install_full_snapshot(vote, snapshot).await },
        );
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = call => r.map_err(|e| match e {
                RPCError::Timeout(t) => StreamingError::Timeout(t),
                RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                RPCError::Network(n) => StreamingError::Network(n),
                RPCError::RemoteError(r) => StreamingError::Network(NetworkError::new(&r)),
            }),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(
            RPCTypes::TransferLeader,
            "transfer-leader".to_string(),
            &option,
            move |h: S| async move { h.raft().handle_transfer_leader(req).await },
        )
        .await
    }
}
