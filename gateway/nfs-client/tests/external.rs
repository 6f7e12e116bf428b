//! The client against an external NFS v4.1 server, when one is named:
//!
//! ```text
//! deploy/bench/ganesha.sh start 12049
//! BUCKETFS_NFS_TEST_TARGET=127.0.0.1:12049/export cargo test -p bucketfs-nfs-client --test external
//! ```
//!
//! Without the variable the test passes without doing anything. It works in a fresh directory
//! of the export and removes it at the end.

mod common;

use bucketfs_nfs_client::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_an_external_server() {
    let Ok(target) = std::env::var("BUCKETFS_NFS_TEST_TARGET") else {
        eprintln!("BUCKETFS_NFS_TEST_TARGET not set; skipping");
        return;
    };
    let (addr, export) = match target.find('/') {
        Some(i) => (target[..i].to_owned(), target[i..].to_owned()),
        None => (target.clone(), "/".to_owned()),
    };
    let opts = ClientOptions {
        export,
        ..common::options()
    };
    let c = Client::connect(addr, opts).await.unwrap();
    let dir_name = format!("nfs-client-test-{}", std::process::id());
    let (dir, _) = c.mkdir(c.root(), &dir_name, 0o755).await.unwrap();
    let base = format!("/{dir_name}");

    // Files: whole-file helpers, pipelined, with COMMIT.
    let data = common::pattern(5 * 1024 * 1024 + 3, 4);
    let s = c.write_file(&format!("{base}/big"), &data).await.unwrap();
    assert_eq!(s.bytes, data.len() as u64);
    assert_eq!(c.read_file(&format!("{base}/big")).await.unwrap(), data);

    // Namespace operations.
    let (sub, _) = c.mkdir(&dir, "sub", 0o700).await.unwrap();
    let (_, l) = c.symlink(&dir, "link", b"big").await.unwrap();
    assert_eq!(l.file_type, FileType::Symlink);
    let (lfh, _) = c.lookup(&format!("{base}/link")).await.unwrap();
    assert_eq!(c.readlink(&lfh).await.unwrap(), b"big");
    let (big, _) = c.lookup(&format!("{base}/big")).await.unwrap();
    c.link(&big, &sub, "hard").await.unwrap();
    assert_eq!(c.getattr(&big).await.unwrap().nlink, 2);
    c.rename(&sub, "hard", &dir, "hard2").await.unwrap();
    let err = c.mkdir(&dir, "sub", 0o755).await.unwrap_err();
    assert!(err.is(NfsStatus::Exist), "{err}");
    let err = c.remove(&dir, "sub").await;
    assert!(err.is_ok(), "{err:?}");
    let mut names: Vec<String> = c
        .readdir(&dir)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(names, ["big", "hard2", "link"]);

    // OPEN modes, SETATTR, locks.
    let f = c
        .open(&dir, "small", &OpenOptions::create(0o600))
        .await
        .unwrap();
    c.write(&f.fh, &f.stateid, 0, b"0123456789", StableHow::FileSync)
        .await
        .unwrap();
    let a = c
        .setattr(
            &f.fh,
            Some(&f.stateid),
            &SetAttrs {
                size: Some(4),
                mode: Some(0o640),
                ..SetAttrs::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((a.size, a.mode), (4, 0o640));
    let lock = c
        .lock(&f, b"lock-owner-1", LockKind::Write, 0, 10)
        .await
        .unwrap();
    let g = c.open_fh(&f.fh, &OpenOptions::write()).await.unwrap();
    match c.lock(&g, b"lock-owner-2", LockKind::Write, 5, 1).await {
        Err(Error::LockDenied { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        c.lockt(&f.fh, b"lock-owner-2", LockKind::Read, 0, 1)
            .await
            .unwrap()
            .is_some()
    );
    c.locku(&f.fh, &lock, LockKind::Write, 0, 10).await.unwrap();
    c.close_file(&g.fh, &g.stateid).await.unwrap();
    c.close_file(&f.fh, &f.stateid).await.unwrap();
    let guarded = OpenOptions {
        access: OpenAccess::Write,
        create: Some(CreateMode::Guarded(SetAttrs::default())),
        ..OpenOptions::default()
    };
    let err = c.open(&dir, "small", &guarded).await.unwrap_err();
    assert!(err.is(NfsStatus::Exist), "{err}");
    let err = c.remove(c.root(), &dir_name).await.unwrap_err();
    assert!(err.is(NfsStatus::NotEmpty), "{err}");

    for name in ["big", "hard2", "link", "small"] {
        c.remove(&dir, name).await.unwrap();
    }
    c.remove(c.root(), &dir_name).await.unwrap();
    c.close().await;
}
