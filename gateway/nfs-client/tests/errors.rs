//! NFS error statuses come back typed, with the operation that failed.

mod common;

use bucketfs_nfs_client::*;
use common::*;

#[tokio::test]
async fn statuses_name_the_operation() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let root = c.root().clone();

    let err = c.lookup("/nope/deeper").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Nfs {
                op: Opcode::Lookup,
                status: NfsStatus::NoEnt
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Lookup: no such file or directory (NFS4ERR_NOENT)"
    );

    let (d, _) = c.mkdir(&root, "d", 0o755).await.unwrap();
    let err = c.mkdir(&root, "d", 0o755).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Nfs {
                op: Opcode::Create,
                status: NfsStatus::Exist
            }
        ),
        "{err:?}"
    );

    c.write_file("/d/f", b"data").await.unwrap();
    let err = c.remove(&root, "d").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Nfs {
                op: Opcode::Remove,
                status: NfsStatus::NotEmpty
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("NFS4ERR_NOTEMPTY"));

    let err = c.lookup("/d/f/x").await.unwrap_err();
    assert!(err.is(NfsStatus::NotDir), "{err:?}");
    let err = c.open(&root, "d", &OpenOptions::read()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Nfs {
                op: Opcode::Open,
                status: NfsStatus::IsDir
            }
        ),
        "{err:?}"
    );
    let (f, _) = c.lookup("/d/f").await.unwrap();
    let err = c.readdir(&f).await.unwrap_err();
    assert!(err.is(NfsStatus::NotDir), "{err:?}");
    let err = c.readlink(&f).await.unwrap_err();
    assert!(err.status().is_some(), "{err:?}");
    let err = c.remove(&d, "missing").await.unwrap_err();
    assert!(err.is(NfsStatus::NoEnt));
    let err = c.rename(&d, "missing", &root, "x").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Nfs {
                op: Opcode::Rename,
                status: NfsStatus::NoEnt
            }
        ),
        "{err:?}"
    );
    let err = c.link(&d, &root, "dirlink").await.unwrap_err();
    assert!(err.status().is_some(), "hard link to a directory: {err:?}");
    // A handle the server never issued.
    let bogus = FileHandle::new(vec![0xee; 8]).unwrap();
    let err = c.getattr(&bogus).await.unwrap_err();
    assert!(
        err.is(NfsStatus::Stale) || err.is(NfsStatus::BadHandle),
        "{err:?}"
    );
    // READ with a stateid the server never issued.
    let err = c
        .read(
            &f,
            &StateId {
                seqid: 1,
                other: [9; 12],
            },
            0,
            10,
        )
        .await
        .unwrap_err();
    assert!(err.status().is_some(), "{err:?}");
}

#[tokio::test]
async fn bad_arguments_are_refused_locally() {
    let srv = start().await;
    let c = connect(srv.addr).await;
    let root = c.root().clone();
    let calls = c.stats().calls;
    for name in ["", "a/b", ".", "..", "nul\0"] {
        let err = c.mkdir(&root, name, 0o755).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(_)),
            "{name:?}: {err:?}"
        );
    }
    let long = "x".repeat(1100);
    assert!(matches!(
        c.mkdir(&root, &long, 0o755).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.write_file("/", b"").await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(c.stats().calls, calls, "nothing was sent");
    // 256 bytes is over the server's NAME_MAX but a valid component: the server decides.
    let err = c.mkdir(&root, &"y".repeat(256), 0o755).await.unwrap_err();
    assert!(err.is(NfsStatus::NameTooLong), "{err:?}");
}

#[tokio::test]
async fn connect_errors_are_bounded_and_typed() {
    // Nobody listens.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Client::connect(format!("127.0.0.1:{port}"), options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    // Accepts but never answers: the NULL call times out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            socks.push(s);
        }
    });
    let opts = ClientOptions {
        connect_timeout: std::time::Duration::from_millis(300),
        ..options()
    };
    let t0 = tokio::time::Instant::now();
    let err = Client::connect(addr.to_string(), opts).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    hold.abort();
    // An HTTP server, say: garbage instead of RPC replies.
    let junk = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = junk.local_addr().unwrap();
    let junk_task = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = junk.accept().await {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let err = Client::connect(addr.to_string(), options())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ConnectionLost(_) | Error::Malformed(_)),
        "{err:?}"
    );
    junk_task.abort();
}
