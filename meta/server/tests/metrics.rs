//! A node's metrics, scraped over real HTTP: per-RPC counts with their outcome labels,
//! latencies, committed writes by command, and the Raft gauges. This binary installs the
//! process-wide Prometheus recorder, so it holds this one test only.

mod common;

use std::time::Duration;

use bucketfs_meta_state::Command;
use bucketfs_proto::pb;
use bucketfs_proto::pb::meta_service_client::MetaServiceClient;
use bucketfs_telemetry::metrics::names;
use common::Cluster;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Sends `request` as is and returns the whole answer (the server closes after one).
async fn http(addr: &str, request: &[u8]) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        String::from_utf8(answer).expect("utf-8 answer")
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the metrics endpoint answers")
}

async fn scrape(addr: &str) -> String {
    let answer = http(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", body.len())),
        "{head}"
    );
    body.to_owned()
}

/// The value of the sample `series` (name with its labels, exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_exports_request_write_and_raft_metrics() {
    let handle = bucketfs_telemetry::install_prometheus().expect("first recorder");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap().to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let endpoint = tokio::spawn(bucketfs_telemetry::serve_metrics(listener, handle, async {
        let _ = stop_rx.await;
    }));

    let mut cluster = Cluster::start(1).await;
    let client = cluster.client().await;
    client
        .write(Command::CreateFs {
            name: "photos".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
        })
        .await
        .expect("create fs");
    for _ in 0..3 {
        client.write(Command::Noop).await.expect("noop");
    }
    // A command that does not decode: answered "invalid", and counted so.
    let mut raw = MetaServiceClient::connect(format!("http://{}", cluster.nodes[0].addr))
        .await
        .expect("connect");
    raw.write(pb::WriteRequest {
        client_id: 1,
        seq: 1,
        ack_below: 0,
        command: vec![0xff; 3],
    })
    .await
    .expect_err("garbage is refused");

    // A silent client holds a connection open; scrapes must still be answered meanwhile.
    let _silent = TcpStream::connect(&metrics_addr).await.expect("connect");

    // The gauges are copied once a second: wait for them to show the elected leader.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&metrics_addr).await;
        if sample(&text, names::META_RAFT_IS_LEADER) == Some(1.0)
            && sample(&text, names::META_RAFT_APPLIED_INDEX).is_some_and(|i| i >= 5.0)
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the raft gauges never showed a leader:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let write_ok = sample(
        &text,
        &format!(
            "{}{{{}=\"Write\",{}=\"ok\"}}",
            names::META_REQUESTS_TOTAL,
            names::RPC,
            names::OUTCOME
        ),
    );
    assert_eq!(write_ok, Some(4.0), "{text}");
    let write_invalid = sample(
        &text,
        "bucketfs_meta_requests_total{rpc=\"Write\",outcome=\"invalid\"}",
    );
    assert_eq!(write_invalid, Some(1.0), "{text}");
    assert!(
        sample(
            &text,
            "bucketfs_meta_requests_total{rpc=\"Init\",outcome=\"ok\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // Peer traffic of a one-node cluster: none, so no AppendEntries series.
    assert!(!text.contains("rpc=\"AppendEntries\""), "{text}");
    // At least the five above; more if the client was redirected while the node was
    // still being elected.
    assert!(
        sample(&text, "bucketfs_meta_request_seconds_count{rpc=\"Write\"}")
            .is_some_and(|n| n >= 5.0),
        "{text}"
    );
    assert!(
        sample(&text, "bucketfs_meta_request_seconds_sum{rpc=\"Write\"}").is_some_and(|s| s > 0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "bucketfs_meta_writes_total{command=\"create_fs\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "bucketfs_meta_writes_total{command=\"noop\"}").map(|n| n >= 3.0),
        Some(true),
        "{text}"
    );
    assert!(
        sample(&text, names::META_RAFT_TERM).is_some_and(|t| t >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, names::META_RAFT_MEMBERSHIP_VOTERS),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, names::META_RAFT_LAST_LOG_INDEX).is_some_and(|i| i >= 5.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE bucketfs_meta_request_seconds histogram"),
        "{text}"
    );

    // Wrong requests get an error answer, and the endpoint keeps serving.
    let answer = http(&metrics_addr, b"GET /nope HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    let answer = http(&metrics_addr, b"\x16\x03\x01 not http at all\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    scrape(&metrics_addr).await;

    cluster.stop_all().await;
    // A stopped node leads nothing.
    let text = scrape(&metrics_addr).await;
    assert_eq!(
        sample(&text, names::META_RAFT_IS_LEADER),
        Some(0.0),
        "{text}"
    );
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), endpoint)
        .await
        .expect("the endpoint stops")
        .unwrap()
        .unwrap();
}
