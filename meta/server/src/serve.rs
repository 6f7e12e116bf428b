//! [`serve`]: both services of a node on one listener (peers and clients use the same
//! address, the one recorded in the Raft membership).
//!
//! tonic's own multi-service router needs its `router` feature (axum); two services are
//! routed here by path prefix instead, which is all that router would do for us.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use bucketfs_proto::pb::meta_service_server::MetaServiceServer;
use bucketfs_proto::pb::raft_service_server::RaftServiceServer;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::network::MAX_MESSAGE_BYTES;
use crate::node::MetaNode;
use crate::service::{MetaServiceImpl, RaftServiceImpl};

#[derive(Debug, thiserror::Error)]
#[error("gRPC server failed: {0}")]
pub struct ServeError(#[from] tonic::transport::Error);

type RaftServer = RaftServiceServer<RaftServiceImpl>;
type MetaServer = MetaServiceServer<MetaServiceImpl>;

/// Dispatches a request to the service its path names (`/<package.Service>/<Method>`).
#[derive(Clone)]
struct Routes {
    raft: RaftServer,
    meta: MetaServer,
}

fn is_for<S: NamedService>(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(S::NAME))
        .is_some_and(|rest| rest.starts_with('/'))
}

impl Service<http::Request<Body>> for Routes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both generated servers are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path();
        if is_for::<RaftServer>(path) {
            self.raft.call(req)
        } else if is_for::<MetaServer>(path) {
            self.meta.call(req)
        } else {
            let status = tonic::Status::unimplemented(format!("no service at {path}"));
            Box::pin(async move { Ok(status.into_http()) })
        }
    }
}

/// Serves `node` on `listener` until `shutdown` completes (then drains in-flight requests).
/// Bind the listener yourself (port 0 in tests) and advertise its address in the node's
/// config. Does not stop the node: call [`MetaNode::shutdown`] after this returns.
pub async fn serve(
    node: MetaNode,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let routes = Routes {
        raft: RaftServiceServer::new(RaftServiceImpl::new(
            node.raft().clone(),
            node.clock().clone(),
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES),
        meta: MetaServiceServer::new(MetaServiceImpl::new(node))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    };
    Server::builder()
        .serve_with_incoming_shutdown(routes, incoming, shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_by_service_name() {
        assert!(is_for::<RaftServer>("/bucketfs.v1.RaftService/Vote"));
        assert!(is_for::<MetaServer>("/bucketfs.v1.MetaService/Write"));
        assert!(!is_for::<MetaServer>("/bucketfs.v1.RaftService/Vote"));
        assert!(!is_for::<RaftServer>("/bucketfs.v1.RaftServiceX/Vote"));
        assert!(!is_for::<RaftServer>("bucketfs.v1.RaftService/Vote"));
    }
}
