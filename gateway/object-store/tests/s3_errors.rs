//! End-to-end error mapping of `S3ObjectStore`: real SDK requests against a scripted HTTP
//! server that answers with chosen S3 error responses, a port nobody listens on, and a server
//! that never answers. moto cannot be made to produce throttling, 5xx or hangs, and the
//! gateway's retry logic depends on exactly these classifications.

#![cfg(feature = "s3")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bucketfs_object_store::*;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn config(endpoint: String, timeout: Duration) -> S3Config {
    let mut c = S3Config::new("bkt", "us-east-1");
    c.endpoint_url = Some(endpoint);
    c.force_path_style = true;
    c.credentials = Some(S3Credentials {
        access_key_id: "k".into(),
        secret_access_key: "s".into(),
        session_token: None,
    });
    c.operation_timeout = timeout;
    c.connect_timeout = Duration::from_secs(2);
    c
}

/// Reads one HTTP request (headers and a Content-Length body) from `s`.
async fn read_request(s: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = buf.len() - header_end;
    while have < len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(head)
}

/// Serves every request with `status` and an S3 XML error body carrying `code` (no body for
/// `code == None`). Returns the endpoint and a request counter.
async fn scripted(status: u16, code: Option<&'static str>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                while read_request(&mut s).await.is_ok() {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let body = code
                        .map(|c| {
                            format!(
                                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{c}</Code>\
                                 <Message>scripted</Message><RequestId>r</RequestId></Error>"
                            )
                        })
                        .unwrap_or_default();
                    let resp = format!(
                        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/xml\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, count)
}

async fn store_for(status: u16, code: Option<&'static str>) -> (S3ObjectStore, Arc<AtomicUsize>) {
    let (endpoint, count) = scripted(status, code).await;
    let store = S3ObjectStore::connect(config(endpoint, Duration::from_secs(10))).await;
    (store, count)
}

#[tokio::test]
async fn service_errors_map_by_code_and_status() {
    type Check = fn(&ObjectStoreError) -> bool;
    let cases: [(u16, Option<&'static str>, Check); 10] = [
        (503, Some("SlowDown"), |e| {
            matches!(e, ObjectStoreError::Throttled(_))
        }),
        (500, Some("InternalError"), |e| {
            matches!(e, ObjectStoreError::Retryable(_))
        }),
        (412, Some("PreconditionFailed"), |e| {
            e.is_precondition_failed()
        }),
        (409, Some("ConditionalRequestConflict"), |e| {
            matches!(e, ObjectStoreError::Conflict(_))
        }),
        (404, Some("NoSuchKey"), |e| e.is_not_found()),
        (404, Some("NoSuchVersion"), |e| e.is_not_found()),
        (403, Some("AccessDenied"), |e| {
            matches!(e, ObjectStoreError::AccessDenied(_))
        }),
        (416, Some("InvalidRange"), |e| {
            matches!(e, ObjectStoreError::RangeNotSatisfiable(_))
        }),
        (400, Some("EntityTooSmall"), |e| {
            matches!(e, ObjectStoreError::InvalidRequest(_))
        }),
        (503, None, |e| matches!(e, ObjectStoreError::Throttled(_))),
    ];
    for (status, code, check) in cases {
        let (store, count) = store_for(status, code).await;
        let err = store
            .get_range("k", GetOptions::default())
            .await
            .unwrap_err();
        assert!(check(&err), "GET {status} {code:?} -> {err:?}");
        let err = store
            .put(
                "k",
                Bytes::from_static(b"body"),
                PutOptions {
                    precondition: Precondition::IfNoneMatch,
                    ..PutOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(check(&err), "PUT {status} {code:?} -> {err:?}");
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "max_attempts = 1: the SDK must not retry behind the caller's back"
        );
    }
}

#[tokio::test]
async fn head_errors_without_a_body_map_by_status() {
    for (status, check) in [
        (
            404u16,
            ObjectStoreError::is_not_found as fn(&ObjectStoreError) -> bool,
        ),
        (405, ObjectStoreError::is_not_found),
        (412, ObjectStoreError::is_precondition_failed),
        (403, |e: &ObjectStoreError| {
            matches!(e, ObjectStoreError::AccessDenied(_))
        }),
        (503, |e: &ObjectStoreError| {
            matches!(e, ObjectStoreError::Throttled(_))
        }),
    ] {
        let (store, _) = store_for(status, None).await;
        let err = store.head("k", None).await.unwrap_err();
        assert!(check(&err), "HEAD {status} -> {err:?}");
    }
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_transport_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = S3ObjectStore::connect(config(
        format!("http://127.0.0.1:{port}"),
        Duration::from_secs(10),
    ))
    .await;
    let err = store.head("k", None).await.unwrap_err();
    assert!(matches!(err, ObjectStoreError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let store = S3ObjectStore::connect(config(endpoint, Duration::from_millis(300))).await;
    let started = tokio::time::Instant::now();
    let err = store
        .put("k", Bytes::from_static(b"x"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectStoreError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the call must give up near its 300 ms deadline, took {:?}",
        started.elapsed()
    );
    let err = store.list(ListOptions::default()).await.unwrap_err();
    assert!(matches!(err, ObjectStoreError::Transport(_)), "{err:?}");
}
