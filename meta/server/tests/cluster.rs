//! A 3-node cluster over real gRPC: initialization, namespace writes and reads through
//! `MetaClient`, redirects, leader failure, membership changes, exactly-once retries.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bucketfs_meta_client::{ClientError, ReadConsistency, Role};
use bucketfs_meta_state::command::{ApplyResult, CreateMode, NewInode};
use bucketfs_meta_state::nfs_state::{ClientOwner, LeaseConfig};
use bucketfs_meta_state::types::{FileType, FsId, InodeId};
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use bucketfs_proto::convert::{decode_payload, encode_payload};
use bucketfs_proto::pb;
use bucketfs_proto::pb::meta_service_client::MetaServiceClient;
use bucketfs_proto::{LeaderHint, WireError};
use common::{Cluster, TestNode, client_for, init_tracing, test_config};

fn create(fs: FsId, parent: InodeId, name: &str, kind: NewInode) -> Command {
    Command::Create {
        fs,
        parent,
        name: name.into(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        how: CreateMode::Guarded,
    }
}

fn lookup(fs: FsId, parent: InodeId, name: &str) -> Query {
    Query::Lookup {
        fs,
        parent,
        name: name.into(),
    }
}

async fn raw_client(addr: &str) -> MetaServiceClient<tonic::transport::Channel> {
    MetaServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_serve_the_namespace_through_failures_and_membership_changes() {
    init_tracing();
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let client = cluster.client().await;

    // Namespace writes through the leader.
    let fs = match client
        .write(Command::CreateFs {
            name: "photos".into(),
            bucket: "bucket".into(),
            prefix: "photos/".into(),
        })
        .await
        .expect("create fs")
    {
        Reply::Fs(info) => info,
        other => panic!("unexpected reply {other:?}"),
    };
    let root = fs.root;
    let dir = match client
        .write(create(fs.id, root, "2024", NewInode::Dir))
        .await
        .expect("mkdir")
    {
        Reply::Changed {
            inode: Some(inode), ..
        } => inode,
        other => panic!("unexpected reply {other:?}"),
    };
    assert_eq!(dir.kind, FileType::Dir);
    client
        .write(create(fs.id, dir.id, "a.jpg", NewInode::File))
        .await
        .expect("create file");
    client
        .write(Command::Rename {
            src_fs: fs.id,
            src_parent: dir.id,
            src_name: "a.jpg".into(),
            dst_fs: fs.id,
            dst_parent: root,
            dst_name: "b.jpg".into(),
        })
        .await
        .expect("rename");
    assert_eq!(
        client.leader_addr().as_deref(),
        Some(cluster.node(leader).addr.as_str())
    );

    // A namespace refusal is a result, not a transport failure.
    let again = client
        .write(create(fs.id, root, "b.jpg", NewInode::File))
        .await;
    assert_eq!(again, Err(ClientError::Ns(NsError::Exists)));

    // Linearizable reads see every acknowledged write.
    let moved = client
        .read(lookup(fs.id, root, "b.jpg"), ReadConsistency::Linearizable)
        .await
        .expect("lookup");
    assert!(matches!(moved, QueryReply::Inode(ref i) if i.kind == FileType::File));
    assert_eq!(
        client
            .read(
                lookup(fs.id, dir.id, "a.jpg"),
                ReadConsistency::Linearizable
            )
            .await,
        Err(ClientError::Ns(NsError::NotFound))
    );

    // A follower refuses leader-only calls with a usable hint...
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let follower_addr = cluster.node(follower).addr.clone();
    let leader_addr = cluster.node(leader).addr.clone();
    let mut raw = raw_client(&follower_addr).await;
    let refused = raw
        .read(pb::ReadRequest {
            query: encode_payload(&Query::ListFs),
            consistency: pb::Consistency::Linearizable as i32,
        })
        .await
        .expect_err("a follower cannot serve a linearizable read");
    assert_eq!(
        WireError::from_status(&refused),
        Some(WireError::NotLeader(LeaderHint {
            leader_id: Some(leader),
            leader_addr: Some(leader_addr.clone()),
        }))
    );
    // ...but serves local reads once it has applied the writes.
    let leader_applied = cluster.node(leader).node.status().applied_index.unwrap();
    cluster.wait_applied(follower, leader_applied).await;
    let follower_only = client_for(vec![follower_addr.clone()]).await;
    let local = follower_only
        .read(lookup(fs.id, root, "b.jpg"), ReadConsistency::AnyLocal)
        .await
        .expect("local read on a follower");
    assert_eq!(local, moved);

    // A client that only knows a follower is redirected to the leader.
    follower_only
        .write(create(fs.id, root, "via-follower", NewInode::File))
        .await
        .expect("write through a follower's redirect");
    assert_eq!(follower_only.leader_addr(), Some(leader_addr.clone()));
    assert!(follower_only.addrs().contains(&leader_addr));

    // Enough writes to build snapshots and purge the log (snapshot_every_logs = 20).
    for i in 0..45 {
        client
            .write(create(fs.id, dir.id, &format!("f{i}"), NewInode::File))
            .await
            .expect("bulk create");
    }
    let status = cluster.node(leader).node.status();
    assert!(
        status.snapshot_index.is_some(),
        "no snapshot built: {status:#?}"
    );
    assert!(status.purged_index.is_some(), "log not purged: {status:#?}");

    // Kill the leader; the client keeps writing through the new one.
    cluster.node(leader).stop().await;
    let live: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    client
        .write(create(fs.id, root, "after-failover", NewInode::File))
        .await
        .expect("write after the leader died");
    let new_leader = cluster.wait_leader(&live).await;
    assert_ne!(new_leader, leader);
    assert!(matches!(
        client
            .read(
                lookup(fs.id, root, "after-failover"),
                ReadConsistency::Linearizable
            )
            .await,
        Ok(QueryReply::Inode(_))
    ));

    // Add a learner. The log is purged, so it can only catch up from a streamed snapshot.
    let four = TestNode::start(4).await;
    let four_addr = four.addr.clone();
    let added = client
        .add_learner(4, four_addr.clone(), true)
        .await
        .expect("add learner");
    assert!(added.membership.learner_ids().contains(&4));
    assert_eq!(four.node.status().role, Role::Learner);
    // The leader counts the learner caught up when the install is acknowledged; the
    // learner's own metrics follow a moment later.
    four.node
        .raft()
        .wait(Some(Duration::from_secs(5)))
        .metrics(|m| m.snapshot.is_some(), "learner installed a snapshot")
        .await
        .expect("the learner could only catch up through a snapshot");

    // Promote it and drop the dead node in one joint change.
    let mut voters = live.clone();
    voters.push(4);
    let changed = client
        .change_membership(voters.clone(), false)
        .await
        .expect("change membership");
    assert_eq!(
        changed
            .membership
            .voter_ids()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        voters.iter().copied().collect::<BTreeSet<_>>()
    );
    assert!(!changed.membership.joint);
    assert!(changed.membership.addr_of(leader).is_none());
    cluster.nodes.push(four);

    // Every node now answers status about itself, the new voter included.
    let statuses = client.status_all().await;
    let mut seen_roles = Vec::new();
    for (addr, status) in &statuses {
        match status {
            Ok(s) => {
                assert_eq!(&s.addr, addr);
                seen_roles.push((s.node_id, s.role));
            }
            // The killed leader is in the client's list and must fail, not hang.
            Err(e) => assert_eq!(addr, &leader_addr, "{e}"),
        }
    }
    assert!(seen_roles.iter().any(|(id, _)| *id == 4), "{seen_roles:?}");
    // The leader answers once the joint change is committed; node 4 learns it is a voter when
    // it applies that entry a moment later, so wait for its own view rather than racing it.
    let mut four_role = Role::Learner;
    for _ in 0..100 {
        four_role = client
            .status_of(&four_addr)
            .await
            .expect("status of 4")
            .role;
        if matches!(four_role, Role::Follower | Role::Leader) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        matches!(four_role, Role::Follower | Role::Leader),
        "node 4 should be a voter, is {four_role:?}"
    );

    // Remove a voter that is not the leader, then keep writing with the two others.
    let leader_now = cluster.wait_leader(&voters).await;
    let removed = *voters.iter().find(|id| **id != leader_now).unwrap();
    let after = client.remove_node(removed).await.expect("remove node");
    assert!(!after.membership.voter_ids().contains(&removed));
    assert!(after.membership.addr_of(removed).is_none());
    cluster.node(removed).stop().await;
    let remaining: Vec<u64> = voters.iter().copied().filter(|id| *id != removed).collect();
    client
        .write(create(fs.id, root, "after-removal", NewInode::File))
        .await
        .expect("write after removal");
    let final_leader = cluster.wait_leader(&remaining).await;
    let final_status = cluster.node(final_leader).node.status();
    assert_eq!(final_status.membership.voter_ids().len(), 2);
    assert!(matches!(
        client.read(Query::ListFs, ReadConsistency::Linearizable).await,
        Ok(QueryReply::FsList(ref l)) if l.len() == 1
    ));

    // Removing the last voter is refused with a clear error.
    let other = *remaining.iter().find(|id| **id != final_leader).unwrap();
    client.remove_node(other).await.expect("down to one voter");
    assert!(matches!(
        client.remove_node(final_leader).await,
        Err(ClientError::Invalid { .. })
    ));

    cluster.stop_all().await;
}

/// A write retried with the same (client, seq) after a leader change is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_is_applied_once_across_a_leader_change() {
    init_tracing();
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_leader(&[1, 2, 3]).await;
    let writer = 0x5eed_0001;
    let write = |seq: u64, name: &str| pb::WriteRequest {
        client_id: writer,
        seq,
        ack_below: 1,
        command: encode_payload(&Command::CreateFs {
            name: name.into(),
            bucket: "b".into(),
            prefix: String::new(),
        }),
    };

    let mut to_leader = raw_client(&cluster.node(leader).addr).await;
    let first = to_leader
        .write(write(1, "once"))
        .await
        .expect("first write")
        .into_inner();
    let first_result: ApplyResult = decode_payload("result", &first.result).unwrap();
    assert!(matches!(first_result, Ok(Reply::Fs(_))));

    // The leader dies as if its answer had been lost; the writer retries on the new one.
    cluster.node(leader).stop().await;
    let live: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_leader(&live).await;
    let mut to_new = raw_client(&cluster.node(new_leader).addr).await;
    let retried = to_new
        .write(write(1, "once"))
        .await
        .expect("retry")
        .into_inner();
    let retried_result: ApplyResult = decode_payload("result", &retried.result).unwrap();
    assert_eq!(
        retried_result, first_result,
        "the retry gets the first result back"
    );
    assert!(
        retried.log_index > first.log_index,
        "the retry is a new entry"
    );

    // Had the retry been applied, it would have said FsExists, as a new seq does.
    let fresh = to_new
        .write(write(2, "once"))
        .await
        .expect("new seq")
        .into_inner();
    let fresh_result: ApplyResult = decode_payload("result", &fresh.result).unwrap();
    assert_eq!(fresh_result, Err(NsError::FsExists("once".into())));

    let client = client_for(
        live.iter()
            .map(|id| cluster.node(*id).addr.clone())
            .collect(),
    )
    .await;
    match client
        .read(Query::ListFs, ReadConsistency::Linearizable)
        .await
    {
        Ok(QueryReply::FsList(list)) => assert_eq!(list.len(), 1, "{list:?}"),
        other => panic!("unexpected {other:?}"),
    }
    cluster.stop_all().await;
}

/// Calls that cannot succeed fail within their deadline instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_dead_cluster_fail_within_the_deadline() {
    init_tracing();
    let mut node = TestNode::start(9).await;
    let addr = node.addr.clone();
    node.stop().await;
    let client = bucketfs_meta_client::MetaClient::connect(
        vec![addr.clone()],
        bucketfs_meta_client::ClientOptions {
            call_timeout: Duration::from_millis(600),
            rpc_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let started = tokio::time::Instant::now();
    let err = client.write(Command::Noop).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Unavailable { attempts, .. } if attempts >= 2),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(client.status_of(&addr).await.is_err());
}

/// The leader's sweeper expires NFS client records whose lease ran out, on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_sweeps_expired_client_leases() {
    init_tracing();
    let mut cluster = Cluster::start_with(3, |id, addr| bucketfs_meta_server::NodeConfig {
        lease_sweep_interval: Some(Duration::from_millis(100)),
        ..test_config(id, addr)
    })
    .await;
    cluster.wait_leader(&[1, 2, 3]).await;
    let client = cluster.client().await;
    let exchange = |owner: &str, duration_ms| Command::ExchangeClient {
        owner: ClientOwner {
            owner_id: owner.as_bytes().to_vec(),
            verifier: 1,
        },
        lease: LeaseConfig {
            duration_ms,
            skew_margin_ms: 0,
        },
    };
    let short = match client.write(exchange("short-lived", 200)).await {
        Ok(Reply::Exchanged { record, .. }) => record.client,
        other => panic!("unexpected {other:?}"),
    };
    let long = match client.write(exchange("long-lived", 600_000)).await {
        Ok(Reply::Exchanged { record, .. }) => record.client,
        other => panic!("unexpected {other:?}"),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = client
            .read(
                Query::GetClient { client: short },
                ReadConsistency::Linearizable,
            )
            .await;
        if got == Err(ClientError::Ns(NsError::NoSuchClient(short))) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lease never swept: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        client
            .read(
                Query::GetClient { client: long },
                ReadConsistency::Linearizable
            )
            .await,
        Ok(QueryReply::Client(_))
    ));
    cluster.stop_all().await;
}
