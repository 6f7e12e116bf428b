//! Real processes on loopback: three `bucketfs meta serve` nodes with RocksDB data dirs,
//! driven through `MetaClient` and the `bucketfs` CLI. These tests SIGKILL nodes and restart
//! them from their data dirs, so they check durability of what was acknowledged, catch-up by
//! log and by snapshot, refusals of foreign or corrupt data dirs, and membership changes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bucketfs_meta_client::{ReadConsistency, Role};
use bucketfs_meta_state::command::{CreateMode, NewInode};
use bucketfs_meta_state::types::{FsId, InodeId};
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use common::{Cluster, client_for};

async fn create_fs(client: &bucketfs_meta_client::MetaClient, name: &str) -> FsId {
    match client
        .write(Command::CreateFs {
            name: name.into(),
            bucket: "b".into(),
            prefix: String::new(),
        })
        .await
        .expect("create fs")
    {
        Reply::Fs(info) => info.id,
        other => panic!("unexpected {other:?}"),
    }
}

fn create_file(fs: FsId, name: String) -> Command {
    Command::Create {
        fs,
        parent: InodeId::ROOT,
        name,
        kind: NewInode::File,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        how: CreateMode::Guarded,
    }
}

async fn assert_present(
    client: &bucketfs_meta_client::MetaClient,
    fs: FsId,
    names: &[String],
    consistency: ReadConsistency,
) {
    for name in names {
        let r = client
            .read(
                Query::Lookup {
                    fs,
                    parent: InodeId::ROOT,
                    name: name.clone(),
                },
                consistency,
            )
            .await;
        assert!(
            matches!(r, Ok(QueryReply::Inode(_))),
            "acknowledged file {name} is missing ({consistency:?}): {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_then_restart_loses_nothing() {
    let mut cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let fs = create_fs(&client, "failover").await;

    // Four writers keep creating files while the leader is killed under them. Each keeps its
    // (client, seq) across the failover, so every write must end acknowledged exactly once.
    let acked = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let client = client.clone();
        let acked = Arc::clone(&acked);
        writers.spawn(async move {
            let mut names = Vec::new();
            for i in 0..40 {
                let name = format!("w{w}-{i}");
                client
                    .write(create_file(fs, name.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("create {name} across the failover: {e}"));
                acked.fetch_add(1, Ordering::Relaxed);
                names.push(name);
            }
            names
        });
    }
    while acked.load(Ordering::Relaxed) < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let leader = cluster.wait_for_leader().await;
    cluster.kill(leader);
    let mut names = Vec::new();
    while let Some(done) = writers.join_next().await {
        names.extend(done.expect("writer"));
    }
    assert_eq!(names.len(), 160);

    let new_leader = cluster.wait_for_leader().await;
    assert_ne!(new_leader, leader, "a killed node cannot still lead");
    assert_present(&client, fs, &names, ReadConsistency::Linearizable).await;

    cluster.restart(leader).await;
    cluster.wait_caught_up(leader).await;
    // The restarted node's own applied state has every acknowledged create.
    let local = client_for(&cluster.addr(leader)).await;
    assert_present(&local, fs, &names, ReadConsistency::AnyLocal).await;

    // Exactly 160 entries: nothing applied twice under another name, nothing lost.
    match client
        .read(
            Query::ReadDir {
                fs,
                dir: InodeId::ROOT,
                after_cookie: 0,
                limit: 1000,
            },
            ReadConsistency::Linearizable,
        )
        .await
    {
        Ok(QueryReply::Page(page)) => assert_eq!(page.entries.len(), 160),
        other => panic!("readdir: {other:?}"),
    }
    let again = client.write(create_file(fs, "w0-0".into())).await;
    assert!(
        matches!(
            again,
            Err(bucketfs_meta_client::ClientError::Ns(NsError::Exists))
        ),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cluster_restart_keeps_everything() {
    let mut cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let fs = create_fs(&client, "restart").await;
    let names: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
    for n in &names {
        client
            .write(create_file(fs, n.clone()))
            .await
            .expect("create");
    }
    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in cluster.ids() {
        cluster.restart(id).await;
    }
    cluster.wait_for_leader().await;
    let client = cluster.client();
    assert_present(&client, fs, &names, ReadConsistency::Linearizable).await;
    // And the cluster still takes writes.
    client
        .write(create_file(fs, "after-restart".into()))
        .await
        .expect("create");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_down_for_long_catches_up_by_snapshot() {
    // Snapshot and purge every 20 entries, so a node that misses 150 entries cannot be
    // served from the log any more.
    let mut cluster = Cluster::start(3, &["--snapshot-every", "20", "--keep-logs", "5"]).await;
    let client = cluster.client();
    let fs = create_fs(&client, "snapshot").await;
    let leader = cluster.wait_for_leader().await;
    let lagging = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.kill(lagging);

    let names: Vec<String> = (0..150).map(|i| format!("s{i}")).collect();
    for n in &names {
        client
            .write(create_file(fs, n.clone()))
            .await
            .expect("create");
    }
    // The leader purges in the background once no replication stream still needs the
    // entries; give it a moment.
    let leader_addr = cluster.addr(cluster.wait_for_leader().await);
    let mut leader_status = client.status_of(&leader_addr).await.expect("leader status");
    for _ in 0..100 {
        if leader_status.purged_index.unwrap_or(0) > 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        leader_status = client.status_of(&leader_addr).await.expect("leader status");
    }
    assert!(
        leader_status.purged_index.unwrap_or(0) > 20,
        "the leader should have purged its log: {leader_status:?}"
    );

    cluster.restart(lagging).await;
    cluster.wait_caught_up(lagging).await;
    let status = client
        .status_of(&cluster.addr(lagging))
        .await
        .expect("status");
    assert!(
        status.snapshot_index.unwrap_or(0) > 20,
        "the lagging node should hold a snapshot: {status:?}"
    );
    let local = client_for(&cluster.addr(lagging)).await;
    assert_present(&local, fs, &names, ReadConsistency::AnyLocal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_or_corrupt_data_dir_is_refused() {
    let mut cluster = Cluster::start(1, &[]).await;
    let client = cluster.client();
    create_fs(&client, "mine").await;
    cluster.kill(1);

    let out = cluster.run_serve_expect_exit(1, &["--cluster-id", "someone-else"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("someone-else") && err.contains("cluster"),
        "{err}"
    );

    let out = cluster.run_serve_expect_exit_with_id(1, 7, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node"), "{err}");

    cluster.corrupt_data_dir(1);
    let out = cluster.run_serve_expect_exit(1, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("corrupt") || err.contains("cannot open"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_add_then_remove_through_the_cli() {
    let mut cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    create_fs(&client, "members").await;
    let new_id = cluster.spawn_extra_node().await;

    let out = cluster.cli(&[
        "meta",
        "members",
        "add",
        "--cluster",
        &cluster.addr(1),
        "--id",
        &new_id.to_string(),
        "--addr",
        &cluster.addr(new_id),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The CLI returns once the leader committed the change; the new node sees it when it
    // applies that entry, a moment later.
    let status = settled_status(&client, &cluster.addr(new_id), |s| {
        s.membership.voter_ids().len() == 4 && !s.membership.joint
    })
    .await;
    assert!(
        status.membership.voter_ids().contains(&new_id),
        "{status:?}"
    );
    assert_eq!(status.membership.voter_ids().len(), 4, "{status:?}");

    let out = cluster.cli(&["meta", "status", "--cluster", &cluster.addr(1)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("leader"), "{text}");
    for id in 1..=4u64 {
        assert!(text.contains(&cluster.addr(id)), "{text}");
    }

    let out = cluster.cli(&[
        "meta",
        "members",
        "remove",
        "--cluster",
        &cluster.addr(1),
        "--id",
        &new_id.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leader = cluster.wait_for_leader().await;
    let status = settled_status(&client, &cluster.addr(leader), |s| {
        s.membership.voter_ids() == vec![1, 2, 3] && !s.membership.joint
    })
    .await;
    assert_eq!(status.membership.voter_ids(), vec![1, 2, 3], "{status:?}");
    assert_eq!(status.role, Role::Leader);

    // Still serving writes with three voters.
    let fs = create_fs(&client, "after-remove").await;
    client
        .write(create_file(fs, "x".into()))
        .await
        .expect("create");
}

/// The status of the node at `addr` once `settled` holds for it (or after 5 s, for the
/// caller's assertion to report).
async fn settled_status(
    client: &bucketfs_meta_client::MetaClient,
    addr: &str,
    settled: impl Fn(&bucketfs_meta_client::NodeStatus) -> bool,
) -> bucketfs_meta_client::NodeStatus {
    let mut status = client.status_of(addr).await.expect("status");
    for _ in 0..100 {
        if settled(&status) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = client.status_of(addr).await.expect("status");
    }
    status
}
