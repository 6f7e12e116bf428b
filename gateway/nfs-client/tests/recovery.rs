//! Session and connection loss, server restarts, lease renewal, malformed and missing replies.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bucketfs_nfs_client::*;
use bucketfs_nfs_server::ServerConfig;
use bucketfs_nfs_wire::nfs::NfsResOp;
use bucketfs_nfs_wire::nfs::ops::WriteResOk;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_connection_drops() {
    let srv = start().await;
    let proxy = Proxy::start(srv.addr).await;
    let c = connect(proxy.addr).await;
    c.write_file("/f", &pattern(100_000, 3)).await.unwrap();
    let (fh, _) = c.lookup("/f").await.unwrap();
    // An open taken before the drop stays valid after it: state belongs to the client id.
    let open = c.open_fh(&fh, &OpenOptions::read()).await.unwrap();

    // Tasks keep calling until the cuts are over, so every cut hits calls in flight.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (c, fh, stop) = (c.clone(), fh.clone(), Arc::clone(&stop));
        tasks.spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) || n < 5 {
                assert_eq!(c.getattr(&fh).await.unwrap().size, 100_000);
                n += 1;
            }
            n
        });
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.cut();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::SeqCst);
    while let Some(r) = tasks.join_next().await {
        assert!(r.unwrap() >= 5);
    }
    let r = c.read(&open.fh, &open.stateid, 0, 10).await.unwrap();
    assert_eq!(r.data, pattern(100_000, 3)[..10]);
    c.close_file(&open.fh, &open.stateid).await.unwrap();
    let s = c.stats();
    assert!(proxy.connections() >= 4, "reconnected after each cut");
    assert!(s.sessions >= 2, "{s:?}");
    assert_eq!(s.exchanges, 1, "the server still knew the client id: {s:?}");
    assert_eq!(proxy.count(bucketfs_nfs_wire::nfs::Opcode::ExchangeId), 1);
}

#[tokio::test]
async fn badsession_makes_a_new_session_for_the_same_client() {
    let srv = start().await;
    let proxy = Proxy::start(srv.addr).await;
    let c = connect(proxy.addr).await;
    let clientid = c.clientid();
    // The next GETATTR reply says the session is gone.
    let fired = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&fired);
    proxy.set_hook(move |msg| {
        if let Some((xid, res)) = decode_reply(msg)
            && has(&res, Opcode::GetAttr)
            && f.fetch_add(1, Ordering::SeqCst) == 0
        {
            let lost = bucketfs_nfs_wire::nfs::CompoundRes::new(
                res.tag.clone(),
                vec![NfsResOp::Sequence(Err(NfsStatus::BadSession))],
            );
            return Verdict::Replace(encode_reply(xid, &lost));
        }
        Verdict::Forward
    });
    let attrs = c.getattr(c.root()).await.unwrap();
    assert!(attrs.is_dir());
    assert_eq!(
        fired.load(Ordering::SeqCst),
        2,
        "the retry went through the proxy"
    );
    let s = c.stats();
    assert_eq!((s.sessions, s.exchanges), (2, 1), "{s:?}");
    assert_eq!(c.clientid(), clientid);
    assert_eq!(proxy.count(Opcode::CreateSession), 2);
}

#[tokio::test]
async fn server_restart_means_exchange_id_again() {
    let first = start().await;
    let proxy = Proxy::start(first.addr).await;
    let c = connect(proxy.addr).await;
    c.write_file("/gone-after-restart", b"x").await.unwrap();
    let old_clientid = c.clientid();
    // "Restart": a new server (new boot, empty state and file system) at the same address.
    let second = start_with(ServerConfig::default(), 0x9999).await;
    proxy.set_upstream(second.addr);
    proxy.cut();
    let attrs = c.getattr(c.root()).await.unwrap();
    assert!(attrs.is_dir());
    let s = c.stats();
    assert_eq!(s.exchanges, 2, "CREATE_SESSION said STALE_CLIENTID: {s:?}");
    assert_ne!(c.clientid(), old_clientid);
    let err = c.lookup("/gone-after-restart").await.unwrap_err();
    assert!(err.is(NfsStatus::NoEnt), "{err}");
    // RECLAIM_COMPLETE is sent again for the new client id.
    assert_eq!(proxy.count(Opcode::ReclaimComplete), 2);
    c.write_file("/new", b"y").await.unwrap();
}

#[tokio::test]
async fn idle_client_keeps_its_lease() {
    let config = ServerConfig {
        lease: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let srv = start_with(config, 0x4242).await;
    let proxy = Proxy::start(srv.addr).await;
    let c = connect(proxy.addr).await;
    assert_eq!(c.fs_info().lease, Duration::from_secs(1));
    c.write_file("/kept", b"still open").await.unwrap();
    let f = c
        .open(c.root(), "kept", &OpenOptions::read())
        .await
        .unwrap();
    let before = proxy.calls().len();
    // The server drops clients idle for twice the lease; stay idle for four.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let renewals = proxy.calls()[before..]
        .iter()
        .filter(|c| c.as_slice() == [Opcode::Sequence])
        .count();
    assert!(renewals >= 6, "lone SEQUENCEs while idle: {renewals}");
    // The open survived: no new client id, the stateid still reads.
    let r = c.read(&f.fh, &f.stateid, 0, 100).await.unwrap();
    assert_eq!(r.data, b"still open");
    assert_eq!(c.stats().exchanges, 1);
    c.close_file(&f.fh, &f.stateid).await.unwrap();
}

type Corruption = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

#[tokio::test]
async fn malformed_replies_are_errors_not_panics() {
    let srv = start().await;
    let proxy = Proxy::start(srv.addr).await;
    let c = connect(proxy.addr).await;
    let (fh, _) = c.mkdir(c.root(), "d", 0o755).await.unwrap();
    let corruptions: Vec<Corruption> = vec![
        // Truncated after the RPC header.
        Arc::new(|m: &[u8]| m[..28.min(m.len())].to_vec()),
        // Garbage results.
        Arc::new(|m: &[u8]| {
            let mut v = m[..24].to_vec();
            v.extend_from_slice(&[0xff; 40]);
            v
        }),
        // Every byte after the header flipped.
        Arc::new(|m: &[u8]| {
            let mut v = m.to_vec();
            for b in &mut v[24..] {
                *b = !*b;
            }
            v
        }),
        // A trailing byte.
        Arc::new(|m: &[u8]| {
            let mut v = m.to_vec();
            v.extend_from_slice(&[0, 0, 0, 0]);
            v
        }),
    ];
    for corrupt in corruptions {
        let armed = Arc::new(AtomicUsize::new(1));
        let a = Arc::clone(&armed);
        proxy.set_hook(move |msg| {
            if let Some((_, res)) = decode_reply(msg)
                && has(&res, Opcode::GetAttr)
                && a.fetch_sub(1, Ordering::SeqCst) == 1
            {
                return Verdict::Replace(corrupt(msg));
            }
            Verdict::Forward
        });
        let err = c.getattr(&fh).await.unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{err:?}");
        // The client carries on.
        assert!(c.getattr(&fh).await.unwrap().is_dir());
    }
    // A reply with the wrong SEQUENCE slot is malformed too.
    proxy.set_hook(|msg| {
        if let Some((xid, res)) = decode_reply(msg)
            && has(&res, Opcode::Access)
        {
            let bent = map_results(&res, |r| match r {
                NfsResOp::Sequence(Ok(s)) => {
                    let mut s = s.clone();
                    s.slotid += 1000;
                    NfsResOp::Sequence(Ok(s))
                }
                other => other.clone(),
            });
            return Verdict::Replace(encode_reply(xid, &bent));
        }
        Verdict::Forward
    });
    let err = c.access(&fh, ACCESS4_READ).await.unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err:?}");
    proxy.clear_hook();
    assert!(c.getattr(&fh).await.is_ok());
}

#[tokio::test]
async fn lost_replies_time_out_and_retries_are_bounded() {
    let srv = start().await;
    let proxy = Proxy::start(srv.addr).await;
    let opts = ClientOptions {
        call_timeout: Duration::from_millis(300),
        max_retries: 2,
        ..options()
    };
    let c = Client::connect(proxy.addr.to_string(), opts).await.unwrap();
    proxy.set_hook(|msg| match decode_reply(msg) {
        Some((_, res)) if has(&res, Opcode::GetAttr) => Verdict::Drop,
        _ => Verdict::Forward,
    });
    let t0 = tokio::time::Instant::now();
    let err = c.getattr(c.root()).await.unwrap_err();
    match &err {
        Error::RetriesExhausted { attempts: 3, last } => {
            assert!(matches!(**last, Error::Timeout { .. }), "{last:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Each timeout replaced the connection; once replies flow again all is well.
    proxy.clear_hook();
    assert!(c.getattr(c.root()).await.unwrap().is_dir());
    assert!(c.stats().sessions >= 3);
}

#[tokio::test]
async fn write_file_resends_when_the_commit_verifier_changes() {
    let srv = start().await;
    let proxy = Proxy::start(srv.addr).await;
    let c = connect(proxy.addr).await;
    // WRITEs come back UNSTABLE with the server's verifier; the first COMMIT answers another
    // verifier, as if the server had restarted between them and lost the data.
    let commits = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&commits);
    proxy.set_hook(move |msg| {
        let Some((xid, res)) = decode_reply(msg) else {
            return Verdict::Forward;
        };
        if !has(&res, Opcode::Write) && !has(&res, Opcode::Commit) {
            return Verdict::Forward;
        }
        let first_commit = has(&res, Opcode::Commit) && n.fetch_add(1, Ordering::SeqCst) == 0;
        let bent = map_results(&res, |r| match r {
            NfsResOp::Write(Ok(w)) => NfsResOp::Write(Ok(WriteResOk {
                committed: StableHow::Unstable,
                ..w.clone()
            })),
            NfsResOp::Commit(Ok(_)) if first_commit => NfsResOp::Commit(Ok(*b"rebooted")),
            other => other.clone(),
        });
        Verdict::Replace(encode_reply(xid, &bent))
    });
    let data = pattern(2 * 1024 * 1024 + 7, 9);
    let s = c.write_file("/v", &data).await.unwrap();
    assert_eq!(s.resent_segments, 1, "{s:?}");
    assert_eq!(s.commits, 2, "{s:?}");
    assert_eq!(s.writes, 6, "three chunks, sent twice: {s:?}");
    assert_eq!(proxy.count(Opcode::Write), 6);
    proxy.clear_hook();
    assert_eq!(c.read_file("/v").await.unwrap(), data);

    // A verifier that changes every time: the writer gives up, bounded.
    let k = Arc::new(AtomicUsize::new(0));
    let k2 = Arc::clone(&k);
    proxy.set_hook(move |msg| {
        let Some((xid, res)) = decode_reply(msg) else {
            return Verdict::Forward;
        };
        let bent = map_results(&res, |r| match r {
            NfsResOp::Write(Ok(w)) => NfsResOp::Write(Ok(WriteResOk {
                committed: StableHow::Unstable,
                ..w.clone()
            })),
            NfsResOp::Commit(Ok(_)) => {
                NfsResOp::Commit(Ok((k2.fetch_add(1, Ordering::SeqCst) as u64).to_be_bytes()))
            }
            other => other.clone(),
        });
        Verdict::Replace(encode_reply(xid, &bent))
    });
    let err = c.write_file("/w", b"abc").await.unwrap_err();
    assert!(
        matches!(err, Error::VerifierUnstable { attempts: 3 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn break_connection_hook_and_close_are_safe() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    c.break_connection();
    assert!(c.getattr(c.root()).await.unwrap().is_dir());
    assert_eq!(c.stats().sessions, 2);
    c.close().await;
    c.close().await;
    assert!(matches!(c.lookup("/x").await, Err(Error::Closed)));
}
