//! Every operation of the client against the in-memory server over 127.0.0.1.

mod common;

use bucketfs_nfs_client::*;
use common::*;

#[tokio::test]
async fn mount_sequence_and_fs_info() {
    let srv = start().await;
    let proxy = Proxy::start(srv.addr).await;
    let c = connect(proxy.addr).await;
    let calls = proxy.calls();
    // NULL is not a COMPOUND; then EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE,
    // PUTROOTFH+GETFH+GETATTR, and the fs-info GETATTR.
    assert_eq!(calls[0], vec![Opcode::ExchangeId]);
    assert_eq!(calls[1], vec![Opcode::CreateSession]);
    assert_eq!(calls[2], vec![Opcode::Sequence, Opcode::ReclaimComplete]);
    assert_eq!(
        calls[3],
        vec![
            Opcode::Sequence,
            Opcode::PutRootFh,
            Opcode::GetFh,
            Opcode::GetAttr
        ]
    );
    let info = c.fs_info();
    assert_eq!(info.rsize, 1024 * 1024);
    assert_eq!(info.wsize, 1024 * 1024);
    assert_eq!(info.lease, std::time::Duration::from_secs(90));
    assert_eq!(info.slots, 64);
    let root = c.getattr(c.root()).await.unwrap();
    assert!(root.is_dir());
    assert_eq!(root.mode, 0o755);
    assert_eq!(root.uid(), Some(0));
    assert!(
        root.returned
            .contains(bucketfs_nfs_wire::nfs::attr::FATTR4_MOUNTED_ON_FILEID)
    );
    let s = c.stats();
    assert_eq!((s.exchanges, s.sessions), (1, 1));
    c.close().await;
    assert!(matches!(c.getattr(c.root()).await, Err(Error::Closed)));
    assert!(proxy.count(Opcode::DestroySession) == 1 && proxy.count(Opcode::DestroyClientId) == 1);
}

#[tokio::test]
async fn directories_symlinks_and_lookup() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let root = c.root().clone();
    let (a, a_attrs) = c.mkdir(&root, "a", 0o750).await.unwrap();
    assert!(a_attrs.is_dir());
    assert_eq!(a_attrs.mode, 0o750);
    let (b, _) = c.mkdir(&a, "b", 0o755).await.unwrap();
    let (link, link_attrs) = c.symlink(&b, "l", b"../target\xff").await.unwrap();
    assert_eq!(link_attrs.file_type, FileType::Symlink);
    assert_eq!(c.readlink(&link).await.unwrap(), b"../target\xff");
    // Path lookups, component by component, with "." and "..".
    let (fh, attrs) = c.lookup("/a/b/l").await.unwrap();
    assert_eq!(fh, link);
    assert_eq!(attrs.fileid, link_attrs.fileid);
    assert_eq!(c.lookup("a/./b/../b").await.unwrap().0, b);
    assert_eq!(c.lookup_in(&a, "b").await.unwrap().0, b);
    assert_eq!(c.lookup("/").await.unwrap().0, root);
    // A path deeper than one COMPOUND holds.
    let mut dir = b.clone();
    let mut path = String::from("/a/b");
    for i in 0..30 {
        dir = c.mkdir(&dir, &format!("d{i}"), 0o755).await.unwrap().0;
        path.push_str(&format!("/d{i}"));
    }
    assert_eq!(c.lookup(&path).await.unwrap().0, dir);
    let (_, fifo) = c.mknod(&root, "fifo", NodeKind::Fifo, 0o644).await.unwrap();
    assert_eq!((fifo.file_type, fifo.mode), (FileType::Fifo, 0o644));
    let (_, chr) = c
        .mknod(&root, "null", NodeKind::Char { major: 1, minor: 3 }, 0o666)
        .await
        .unwrap();
    assert_eq!((chr.file_type, chr.rawdev), (FileType::Char, (1, 3)));
    let (_, sock) = c
        .mknod(&root, "sock", NodeKind::Socket, 0o600)
        .await
        .unwrap();
    assert_eq!(sock.file_type, FileType::Socket);
    let err = c.mkdir(&root, "fifo", 0o755).await.unwrap_err();
    assert!(err.is(NfsStatus::Exist), "{err}");
    // ACCESS as root on a 0750 directory.
    let acc = c
        .access(&a, ACCESS4_READ | ACCESS4_LOOKUP | ACCESS4_MODIFY)
        .await
        .unwrap();
    assert_eq!(acc.access, ACCESS4_READ | ACCESS4_LOOKUP | ACCESS4_MODIFY);
}

#[tokio::test]
async fn readdir_pages_through_large_directories() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let (dir, _) = c.mkdir(c.root(), "big", 0o755).await.unwrap();
    let names: Vec<String> = (0..450)
        .map(|i| format!("entry-with-a-longish-name-{i:04}"))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in names.chunks(50) {
        let (c, dir, chunk) = (c.clone(), dir.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for n in chunk {
                c.mkdir(&dir, &n, 0o700).await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let calls_before = c.stats().calls;
    let entries = c.readdir(&dir).await.unwrap();
    assert!(
        c.stats().calls - calls_before > 2,
        "expected several READDIR pages"
    );
    let mut got: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    got.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(got, want);
    for e in &entries {
        assert!(e.attrs.is_dir());
        assert_eq!(e.attrs.mode, 0o700);
        let fh = e.fh.clone().expect("READDIR returns handles");
        assert_eq!(c.getattr(&fh).await.unwrap().fileid, e.attrs.fileid);
    }
    assert!(
        c.readdir(&c.lookup("/big").await.unwrap().0)
            .await
            .unwrap()
            .len()
            == 450
    );
    let (empty, _) = c.mkdir(c.root(), "empty", 0o755).await.unwrap();
    assert!(c.readdir(&empty).await.unwrap().is_empty());
}

#[tokio::test]
async fn open_modes_read_write_commit() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let root = c.root().clone();
    let create = |mode| OpenOptions {
        access: OpenAccess::Both,
        create: Some(CreateMode::Guarded(SetAttrs {
            mode: Some(mode),
            ..SetAttrs::default()
        })),
        ..OpenOptions::default()
    };
    let f = c.open(&root, "f", &create(0o640)).await.unwrap();
    assert_eq!(f.attrs.file_type, FileType::Regular);
    assert_eq!(f.attrs.mode, 0o640);
    // GUARDED on an existing file.
    let err = c.open(&root, "f", &create(0o640)).await.unwrap_err();
    assert!(err.is(NfsStatus::Exist), "{err}");
    // WRITE UNSTABLE and FILE_SYNC, COMMIT, READ.
    let w = c
        .write(&f.fh, &f.stateid, 0, b"hello ", StableHow::Unstable)
        .await
        .unwrap();
    assert_eq!(w.count, 6);
    assert_eq!(w.verifier, WRITE_VERIFIER);
    let w2 = c
        .write(&f.fh, &f.stateid, 6, b"world", StableHow::FileSync)
        .await
        .unwrap();
    assert_eq!(w2.committed, StableHow::FileSync);
    assert_eq!(c.commit(&f.fh, 0, 0).await.unwrap(), WRITE_VERIFIER);
    let r = c.read(&f.fh, &f.stateid, 0, 100).await.unwrap();
    assert_eq!(r.data, b"hello world");
    assert!(r.eof);
    let r = c.read(&f.fh, &f.stateid, 6, 3).await.unwrap();
    assert_eq!((r.data.as_slice(), r.eof), (&b"wor"[..], false));
    c.close_file(&f.fh, &f.stateid).await.unwrap();
    // The stateid is gone after CLOSE.
    let err = c.read(&f.fh, &f.stateid, 0, 1).await.unwrap_err();
    assert!(err.status().is_some(), "{err}");

    // CLAIM_FH and UNCHECKED (truncating) opens.
    let g = c.open_fh(&f.fh, &OpenOptions::read()).await.unwrap();
    assert_eq!(g.attrs.size, 11);
    c.close_file(&g.fh, &g.stateid).await.unwrap();
    let t = c
        .open(
            &root,
            "f",
            &OpenOptions {
                access: OpenAccess::Write,
                create: Some(CreateMode::Unchecked(SetAttrs {
                    size: Some(0),
                    ..SetAttrs::default()
                })),
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(t.fh, f.fh);
    assert_eq!(c.getattr(&f.fh).await.unwrap().size, 0);
    c.close_file(&t.fh, &t.stateid).await.unwrap();

    // EXCLUSIVE4_1: a retransmission with the same verifier succeeds, another verifier not.
    let excl = |v: [u8; 8]| OpenOptions {
        access: OpenAccess::Write,
        create: Some(CreateMode::Exclusive {
            verifier: v,
            attrs: SetAttrs {
                mode: Some(0o600),
                ..SetAttrs::default()
            },
        }),
        ..OpenOptions::default()
    };
    let e1 = c.open(&root, "x", &excl(*b"verifier")).await.unwrap();
    let e2 = c.open(&root, "x", &excl(*b"verifier")).await.unwrap();
    assert_eq!(e1.fh, e2.fh);
    let err = c.open(&root, "x", &excl(*b"other-vf")).await.unwrap_err();
    assert!(err.is(NfsStatus::Exist), "{err}");
    let err = c.open_fh(&root, &OpenOptions::read()).await.unwrap_err();
    assert!(err.is(NfsStatus::IsDir), "{err}");
    assert!(matches!(
        c.open_fh(&f.fh, &create(0o600)).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn setattr_remove_rename_link() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let root = c.root().clone();
    let f = c
        .open(&root, "f", &OpenOptions::create(0o644))
        .await
        .unwrap();
    c.write(&f.fh, &f.stateid, 0, &[7; 100], StableHow::FileSync)
        .await
        .unwrap();
    let a = c
        .setattr(
            &f.fh,
            Some(&f.stateid),
            &SetAttrs {
                mode: Some(0o600),
                owner: Some("1000".into()),
                owner_group: Some("100".into()),
                size: Some(10),
                time_modify: Some(SetTime::ClientTime(NfsTime {
                    seconds: 1_000_000,
                    nseconds: 5,
                })),
                time_access: Some(SetTime::ServerTime),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (a.mode, a.uid(), a.gid(), a.size),
        (0o600, Some(1000), Some(100), 10)
    );
    assert_eq!(
        a.mtime,
        NfsTime {
            seconds: 1_000_000,
            nseconds: 5
        }
    );
    let before = a.change;
    c.close_file(&f.fh, &f.stateid).await.unwrap();

    let (d, _) = c.mkdir(&root, "d", 0o755).await.unwrap();
    c.link(&f.fh, &d, "hard").await.unwrap();
    assert_eq!(c.getattr(&f.fh).await.unwrap().nlink, 2);
    assert!(c.getattr(&f.fh).await.unwrap().change != before);
    c.rename(&root, "f", &d, "moved").await.unwrap();
    assert_eq!(c.lookup("/d/moved").await.unwrap().0, f.fh);
    assert!(c.lookup("/f").await.unwrap_err().is(NfsStatus::NoEnt));
    c.remove(&d, "hard").await.unwrap();
    c.remove(&d, "moved").await.unwrap();
    c.remove(&root, "d").await.unwrap();
    assert!(c.readdir(&root).await.unwrap().is_empty());
}

#[tokio::test]
async fn byte_range_locks() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let root = c.root().clone();
    let f1 = c
        .open(&root, "l", &OpenOptions::create(0o644))
        .await
        .unwrap();
    let f2 = c
        .open(&root, "l", &OpenOptions::create(0o644))
        .await
        .unwrap();
    let l1 = c
        .lock(&f1, b"owner-1", LockKind::Write, 0, 100)
        .await
        .unwrap();
    // Another lock-owner conflicts.
    match c.lock(&f2, b"owner-2", LockKind::Read, 50, 10).await {
        Err(Error::LockDenied { conflict, .. }) => {
            assert_eq!((conflict.offset, conflict.length), (0, 100));
        }
        other => panic!("{other:?}"),
    }
    let conflict = c
        .lockt(&f1.fh, b"owner-2", LockKind::Read, 0, 1)
        .await
        .unwrap()
        .expect("a conflict");
    assert_eq!(conflict.owner.owner.0, b"owner-1");
    assert!(
        c.lockt(&f1.fh, b"owner-2", LockKind::Read, 100, 1)
            .await
            .unwrap()
            .is_none()
    );
    // More locks for the same owner with its lock stateid; then unlock everything.
    let l1 = c
        .lock_again(&f1.fh, &l1, LockKind::Write, 200, 10)
        .await
        .unwrap();
    let l1 = c
        .locku(&f1.fh, &l1, LockKind::Write, 0, u64::MAX)
        .await
        .unwrap();
    let _ = l1;
    let l2 = c
        .lock(&f2, b"owner-2", LockKind::Read, 50, 10)
        .await
        .unwrap();
    c.locku(&f2.fh, &l2, LockKind::Read, 50, 10).await.unwrap();
    c.close_file(&f1.fh, &f1.stateid).await.unwrap();
    c.close_file(&f2.fh, &f2.stateid).await.unwrap();
}

#[tokio::test]
async fn whole_file_helpers() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let proxy_free = c.clone();
    let data = pattern(3 * 1024 * 1024 + 12345, 1);
    let s = c.write_file("/big.bin", &data).await.unwrap();
    assert_eq!(s.bytes, data.len() as u64);
    assert_eq!(s.writes, 4);
    // One COMMIT at most (none if the server answered FILE_SYNC4).
    assert!(s.commits <= 1, "{s:?}");
    assert_eq!(proxy_free.read_file("/big.bin").await.unwrap(), data);
    // Overwriting with less truncates.
    c.write_file("/big.bin", b"short").await.unwrap();
    assert_eq!(c.read_file("/big.bin").await.unwrap(), b"short");
    c.write_file("/empty", b"").await.unwrap();
    assert!(c.read_file("/empty").await.unwrap().is_empty());
    // Streaming reader.
    let mut n = 0;
    let total = c
        .read_file_with("/big.bin", |chunk| {
            n += chunk.len();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((total, n), (5, 5));
    let err = c.read_file("/missing").await.unwrap_err();
    assert!(err.is(NfsStatus::NoEnt), "{err}");
    let err = c.write_file("/nodir/x", b"1").await.unwrap_err();
    assert!(err.is(NfsStatus::NoEnt), "{err}");
    let err = c.read_file("/").await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    // The segment writer in pieces.
    let mut w = c.create_writer("/pieces", 0o600).await.unwrap();
    for i in 0..5u8 {
        w.write_segment(&pattern(300_000, i)).await.unwrap();
    }
    assert_eq!(w.offset(), 1_500_000);
    w.finish().await.unwrap();
    let back = c.read_file("/pieces").await.unwrap();
    let want: Vec<u8> = (0..5u8).flat_map(|i| pattern(300_000, i)).collect();
    assert_eq!(back, want);
    // The segment reader: offsets advance, a short last segment, then EOF.
    let mut r = c.open_reader("/pieces").await.unwrap();
    let mut got = Vec::new();
    let mut segments = 0;
    loop {
        let seg = r.read_segment(400_000).await.unwrap();
        if seg.is_empty() {
            break;
        }
        assert!(seg.len() <= 400_000);
        got.extend_from_slice(&seg);
        segments += 1;
        assert_eq!(r.offset(), got.len() as u64);
    }
    assert_eq!(segments, 4);
    assert_eq!(got, want);
    assert!(r.read_segment(10).await.unwrap().is_empty());
    r.close().await.unwrap();
}

#[tokio::test]
async fn export_option_roots_paths() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let (sub, _) = c.mkdir(c.root(), "exp", 0o755).await.unwrap();
    c.write_file("/exp/inside", b"x").await.unwrap();
    let opts = ClientOptions {
        export: "/exp".into(),
        ..options()
    };
    let e = Client::connect(srv.addr.to_string(), opts).await.unwrap();
    assert_eq!(e.root(), &sub);
    assert_eq!(e.read_file("/inside").await.unwrap(), b"x");
    let bad = ClientOptions {
        export: "/exp/inside".into(),
        ..options()
    };
    let err = Client::connect(srv.addr.to_string(), bad)
        .await
        .unwrap_err();
    assert!(err.is(NfsStatus::NotDir), "{err}");
    let missing = ClientOptions {
        export: "/nope".into(),
        ..options()
    };
    let err = Client::connect(srv.addr.to_string(), missing)
        .await
        .unwrap_err();
    assert!(err.is(NfsStatus::NoEnt), "{err}");
}

#[tokio::test]
async fn non_root_credentials_are_checked() {
    let srv = start().await;
    let root = connect(srv.addr).await;
    root.mkdir(root.root(), "private", 0o700).await.unwrap();
    let (public, _) = root.mkdir(root.root(), "pub", 0o777).await.unwrap();
    let user = Client::connect(
        srv.addr.to_string(),
        ClientOptions {
            uid: 1000,
            gid: 1000,
            ..options()
        },
    )
    .await
    .unwrap();
    let err = user.write_file("/private/x", b"1").await.unwrap_err();
    assert!(err.is(NfsStatus::Access), "{err}");
    let err = user.mkdir(user.root(), "mine", 0o755).await.unwrap_err();
    assert!(err.is(NfsStatus::Access), "{err}");
    let (fh, _) = user.mkdir(&public, "mine", 0o755).await.unwrap();
    assert_eq!(user.getattr(&fh).await.unwrap().uid(), Some(1000));
}
