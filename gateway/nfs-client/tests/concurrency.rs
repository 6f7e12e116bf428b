//! Many tasks on one client: one connection, many calls in flight, matched by XID.

mod common;

use std::sync::Arc;

use bucketfs_nfs_client::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_connection() {
    let srv = start().await;
    let proxy = Proxy::start(srv.addr).await;
    let c = connect(proxy.addr).await;
    let (dir, _) = c.mkdir(c.root(), "par", 0o755).await.unwrap();
    let dir = Arc::new(dir);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64u32 {
        let (c, dir) = (c.clone(), Arc::clone(&dir));
        tasks.spawn(async move {
            for i in 0..15u32 {
                let name = format!("t{t}-{i}");
                let body = pattern(4096 + (t * 31 + i) as usize, t as u8);
                c.write_file(&format!("/par/{name}"), &body).await.unwrap();
                let (fh, attrs) = c.lookup_in(&dir, &name).await.unwrap();
                assert_eq!(attrs.size, body.len() as u64);
                assert_eq!(c.getattr(&fh).await.unwrap().fileid, attrs.fileid);
                assert_eq!(c.read_file(&format!("/par/{name}")).await.unwrap(), body);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!(c.readdir(&dir).await.unwrap().len(), 64 * 15);
    assert_eq!(proxy.connections(), 1, "everything on one connection");
    assert!(
        proxy.max_outstanding() > 8,
        "calls were pipelined: at most {} in flight",
        proxy.max_outstanding()
    );
    assert!(
        proxy.max_outstanding() <= 64,
        "never more than the slots granted"
    );
    assert_eq!(c.stats().sessions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_tasks_than_slots_wait_for_slots() {
    let srv = start().await;
    let opts = ClientOptions {
        slots: 4,
        ..options()
    };
    let c = Client::connect(srv.addr.to_string(), opts).await.unwrap();
    assert_eq!(c.fs_info().slots, 4);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..100 {
        let c = c.clone();
        tasks.spawn(async move {
            let (fh, _) = c.mkdir(c.root(), &format!("d{t}"), 0o755).await.unwrap();
            c.getattr(&fh).await.unwrap()
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(r) = tasks.join_next().await {
        assert!(ids.insert(r.unwrap().fileid));
    }
    assert_eq!(ids.len(), 100);
}
