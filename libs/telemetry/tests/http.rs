//! The `/metrics` endpoint over real TCP: answers, error answers, slow and oversized
//! requests, and shutdown. Uses a recorder that is not installed globally.

use std::time::Duration;

use bucketfs_telemetry::metrics::{names, prometheus_recorder};
use bucketfs_telemetry::serve_metrics;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Endpoint {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start() -> Endpoint {
    let recorder = prometheus_recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!(names::META_REQUESTS_TOTAL, names::RPC => "Read", names::OUTCOME => "ok")
            .increment(2);
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_metrics(listener, recorder.handle(), async {
        let _ = rx.await;
    }));
    Endpoint {
        addr,
        stop: Some(tx),
        task,
    }
}

impl Endpoint {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the endpoint stops")
            .unwrap()
            .unwrap();
    }
}

async fn exchange(addr: &str, request: &[u8]) -> String {
    let run = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8(answer).unwrap()
    };
    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("answered")
}

#[tokio::test]
async fn scrapes_and_error_answers() {
    let ep = start().await;
    let answer = exchange(&ep.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("Content-Type: text/plain; version=0.0.4"),
        "{answer}"
    );
    assert!(
        answer.contains("\nbucketfs_meta_requests_total{rpc=\"Read\",outcome=\"ok\"} 2\n"),
        "{answer}"
    );

    let answer = exchange(&ep.addr, b"HEAD /metrics HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "HEAD has no body: {answer}");

    let answer = exchange(&ep.addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    let answer = exchange(&ep.addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    assert!(answer.contains("Allow: GET, HEAD\r\n"), "{answer}");
    let answer = exchange(&ep.addr, b"hello\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    // A head that never ends within the size cap.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    let answer = exchange(&ep.addr, &huge).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    // Closed before the head ended: nobody to answer.
    let mut gone = TcpStream::connect(&ep.addr).await.unwrap();
    gone.write_all(b"GET /metr").await.unwrap();
    gone.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), gone.read_to_end(&mut answer))
        .await
        .expect("closed at once")
        .unwrap();
    assert!(answer.is_empty(), "{answer:?}");
    // Still serving.
    let answer = exchange(&ep.addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");

    ep.stop().await;
}

#[tokio::test]
async fn a_slow_client_times_out_without_blocking_others() {
    let ep = start().await;
    let mut slow = TcpStream::connect(&ep.addr).await.unwrap();
    slow.write_all(b"GET /metr").await.unwrap();
    // Others are served meanwhile.
    for _ in 0..3 {
        let answer = exchange(&ep.addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut answer))
        .await
        .expect("the slow client is cut off")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    ep.stop().await;
}
