//! The client against fake nodes (no Raft): redirects, retries with the same seq,
//! `ack_below`, deadlines, and errors that must not be retried.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_meta_client::{ClientError, ClientOptions, MetaClient, ReadConsistency};
use bucketfs_meta_state::command::ApplyResult;
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use bucketfs_proto::convert::{decode_payload, encode_payload};
use bucketfs_proto::pb;
use bucketfs_proto::pb::meta_service_server::{MetaService, MetaServiceServer};
use bucketfs_proto::{LeaderHint, WireError};
use bucketfs_runtime::Entropy;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// What a fake node does with a write or read.
#[derive(Clone)]
enum Behaviour {
    /// Answer not-leader, pointing at this address.
    Redirect(String),
    /// Fail the first `n` calls as unavailable, then serve.
    FlakyThenServe(usize),
    /// Refuse as invalid.
    Invalid,
}

#[derive(Clone)]
struct Fake {
    behaviour: Behaviour,
    /// (client_id, seq, ack_below) of every write received.
    writes: Arc<Mutex<Vec<(u64, u64, u64)>>>,
    calls: Arc<Mutex<usize>>,
}

impl Fake {
    fn new(behaviour: Behaviour) -> Self {
        Fake {
            behaviour,
            writes: Arc::new(Mutex::new(Vec::new())),
            calls: Arc::new(Mutex::new(0)),
        }
    }

    fn gate(&self) -> Result<(), Status> {
        let mut calls = self.calls.lock().unwrap();
        *calls += 1;
        match &self.behaviour {
            Behaviour::Redirect(addr) => Err(WireError::NotLeader(LeaderHint {
                leader_id: Some(2),
                leader_addr: Some(addr.clone()),
            })
            .into_status()),
            Behaviour::FlakyThenServe(n) if *calls <= *n => {
                Err(WireError::Unavailable("electing".into()).into_status())
            }
            Behaviour::FlakyThenServe(_) => Ok(()),
            Behaviour::Invalid => Err(WireError::Invalid("bad".into()).into_status()),
        }
    }
}

#[tonic::async_trait]
impl MetaService for Fake {
    async fn write(
        &self,
        request: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let req = request.into_inner();
        self.writes
            .lock()
            .unwrap()
            .push((req.client_id, req.seq, req.ack_below));
        self.gate()?;
        let command: Command = decode_payload("command", &req.command).unwrap();
        let result: ApplyResult = match command {
            Command::Noop => Ok(Reply::Done),
            _ => Err(NsError::Exists),
        };
        Ok(Response::new(pb::WriteResponse {
            result: encode_payload(&result),
            log_index: 1,
        }))
    }

    async fn read(
        &self,
        _request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        self.gate()?;
        let reply: Result<QueryReply, NsError> = Ok(QueryReply::FsList(Vec::new()));
        Ok(Response::new(pb::ReadResponse {
            reply: encode_payload(&reply),
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn init(
        &self,
        _request: Request<pb::InitRequest>,
    ) -> Result<Response<pb::InitResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn add_learner(
        &self,
        _request: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn change_membership(
        &self,
        _request: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn remove_node(
        &self,
        _request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

fn spawn(listener: TcpListener, fake: Fake) {
    tokio::spawn(
        Server::builder()
            .serve_with_incoming(MetaServiceServer::new(fake), TcpIncoming::from(listener)),
    );
}

fn options() -> ClientOptions {
    ClientOptions {
        call_timeout: Duration::from_secs(5),
        rpc_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        entropy: Entropy::seeded(1),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn follows_the_hint_and_keeps_the_seq_across_retries() {
    let (leader_listener, leader_addr) = bind().await;
    let (follower_listener, follower_addr) = bind().await;
    let leader = Fake::new(Behaviour::FlakyThenServe(2));
    let follower = Fake::new(Behaviour::Redirect(leader_addr.clone()));
    spawn(leader_listener, leader.clone());
    spawn(follower_listener, follower.clone());

    let client = MetaClient::connect(vec![follower_addr.clone()], options())
        .await
        .unwrap();
    assert_eq!(client.write(Command::Noop).await, Ok(Reply::Done));
    assert_eq!(client.leader_addr(), Some(leader_addr.clone()));
    assert_eq!(client.addrs(), vec![follower_addr, leader_addr]);

    // The leader saw the write three times (two failures, one success), always as seq 1.
    let id = client.client_id().0;
    let seen = leader.writes.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|w| *w == (id, 1, 1)), "{seen:?}");

    // After each failure the client tried elsewhere (the follower) and was sent back.
    let follower_calls = follower.writes.lock().unwrap().len();
    assert_eq!(follower_calls, 3);

    // The next write goes straight to the cached leader with the next seq, and acks seq 1.
    assert_eq!(client.write(Command::Noop).await, Ok(Reply::Done));
    assert_eq!(leader.writes.lock().unwrap().last(), Some(&(id, 2, 2)));
    assert_eq!(follower.writes.lock().unwrap().len(), follower_calls);

    // Namespace refusals come back as such, not as failures.
    assert_eq!(
        client.write(Command::DestroyClient { client: 7 }).await,
        Err(ClientError::Ns(NsError::Exists))
    );
    assert_eq!(
        client
            .read(Query::ListFs, ReadConsistency::Linearizable)
            .await,
        Ok(QueryReply::FsList(Vec::new()))
    );
}

#[tokio::test]
async fn concurrent_writes_ack_only_what_is_finished() {
    let (listener, addr) = bind().await;
    let node = Fake::new(Behaviour::FlakyThenServe(0));
    spawn(listener, node.clone());
    let client = MetaClient::connect(vec![addr], options()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move { c.write(Command::Noop).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(Reply::Done));
    }
    let writes = node.writes.lock().unwrap().clone();
    let mut seqs: Vec<u64> = writes.iter().map(|w| w.1).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
    // A write never acknowledges itself or anything still in flight after it.
    assert!(writes.iter().all(|(_, seq, ack)| ack <= seq));
}

#[tokio::test]
async fn refusals_are_not_retried_and_dead_nodes_fail_in_time() {
    let (listener, addr) = bind().await;
    let node = Fake::new(Behaviour::Invalid);
    spawn(listener, node.clone());
    let client = MetaClient::connect(vec![addr], options()).await.unwrap();
    assert!(matches!(
        client.write(Command::Noop).await,
        Err(ClientError::Invalid { op: "write", .. })
    ));
    assert_eq!(*node.calls.lock().unwrap(), 1);

    // A port nobody listens on: the call ends with Unavailable within its deadline.
    let (dead, dead_addr) = bind().await;
    drop(dead);
    let client = MetaClient::connect(
        vec![dead_addr],
        ClientOptions {
            call_timeout: Duration::from_millis(300),
            ..options()
        },
    )
    .await
    .unwrap();
    let started = tokio::time::Instant::now();
    assert!(matches!(
        client.write(Command::Noop).await,
        Err(ClientError::Unavailable { op: "write", .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn no_address_is_a_configuration_error() {
    assert!(matches!(
        MetaClient::connect(Vec::new(), options()).await,
        Err(ClientError::Config(_))
    ));
    assert!(matches!(
        MetaClient::connect(vec!["not a uri at all\n".into()], options()).await,
        Err(ClientError::Config(_))
    ));
}
