//! `bucketfs meta serve --metrics-listen --otlp-endpoint`: a real node process exports its
//! request metrics over HTTP and its spans to an in-test OTLP collector, and flushes the
//! last spans when stopped with SIGTERM.

use std::net::TcpListener as StdListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_meta_client::{ClientOptions, MetaClient, Role};
use bucketfs_meta_state::Command as MetaCommand;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

const BIN: &str = env!("CARGO_BIN_EXE_bucketfs");
/// Generous: CI machines have two cores shared by everything in the test.
const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Default)]
struct Collector {
    /// (service.name, span name) of every span received.
    spans: Arc<Mutex<Vec<(String, String)>>>,
    /// The same spans with their ids.
    traced: Arc<Mutex<Vec<TracedSpan>>>,
}

/// (service, name, trace id, span id, parent span id).
type TracedSpan = (String, String, Vec<u8>, Vec<u8>, Vec<u8>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        let mut traced = self.traced.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                traced.push((
                    service.clone(),
                    span.name.clone(),
                    span.trace_id.clone(),
                    span.span_id.clone(),
                    span.parent_span_id.clone(),
                ));
                spans.push((service.clone(), span.name));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn free_addr() -> String {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .to_string()
}

async fn scrape(addr: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .ok()?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .ok()?
        .ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200 ").then(|| body.to_owned())
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_metrics_and_exports_spans() {
    let otlp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_url = format!("http://{}", otlp.local_addr().unwrap());
    let collector = Collector::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let collector_task = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        TraceServiceServer::new(collector.clone()),
        TcpIncoming::from(otlp),
        async {
            let _ = stop_rx.await;
        },
    ));

    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let metrics_addr = free_addr();
    let log_path = dir.path().join("node.log");
    let mut child = Command::new(BIN)
        .args(["meta", "serve", "--id", "1", "--listen", &addr])
        .args(["--data-dir", &dir.path().join("data").display().to_string()])
        .args(["--init", &format!("1={addr}")])
        .args(["--heartbeat-ms", "100", "--election-timeout-ms", "600"])
        .args(["--metrics-listen", &metrics_addr])
        // Through the environment, as a deployment would.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp_url)
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        // meta_rpc spans are at debug level.
        .env(
            "BUCKETFS_LOG",
            "debug,openraft=warn,h2=warn,tower=warn,hyper=warn",
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("spawn bucketfs meta serve");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let client = MetaClient::connect(
        vec![addr.clone()],
        ClientOptions {
            call_timeout: Duration::from_secs(30),
            rpc_timeout: Duration::from_secs(3),
            ..ClientOptions::default()
        },
    )
    .await
    .expect("client");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !client
        .status_of(&addr)
        .await
        .is_ok_and(|s| s.role == Role::Leader)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leader; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.write(MetaCommand::Noop).await.expect("write");

    let text = loop {
        if let Some(text) = scrape(&metrics_addr).await
            && value(
                &text,
                "bucketfs_meta_requests_total{rpc=\"Write\",outcome=\"ok\"}",
            )
            .is_some_and(|n| n >= 1.0)
            && value(&text, "bucketfs_meta_raft_is_leader") == Some(1.0)
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never showed the write; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        value(&text, "bucketfs_meta_writes_total{command=\"noop\"}").is_some_and(|n| n >= 1.0),
        "{text}"
    );

    // SIGTERM: the node shuts down cleanly, flushing the spans still buffered.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait for the node");
    assert!(exit.success(), "{exit:?}; log:\n{}", log());

    let spans = collector.spans.lock().unwrap().clone();
    assert!(
        spans
            .iter()
            .any(|(service, name)| service == "bucketfs-meta" && name == "meta_rpc"),
        "no meta_rpc span exported: {spans:?}; log:\n{}",
        log()
    );
    // The exporter's own transport is not traced back into the export.
    assert!(
        !spans
            .iter()
            .any(|(_, name)| name.contains("h2") || name.contains("hyper")),
        "{spans:?}"
    );
    let _ = stop_tx.send(());
    collector_task.await.unwrap().unwrap();
}

/// One NFS request is one trace: the gateway's span for the COMPOUND, its meta client call,
/// and the metadata node's span for that RPC share a trace id, the node's span a child of
/// the gateway's call (W3C trace context in the gRPC metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nfs_request_is_one_trace_across_gateway_and_meta() {
    use bucketfs_object_store::moto::MotoServer;

    let otlp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_url = format!("http://{}", otlp.local_addr().unwrap());
    let collector = Collector::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let collector_task = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        TraceServiceServer::new(collector.clone()),
        TcpIncoming::from(otlp),
        async {
            let _ = stop_rx.await;
        },
    ));
    let moto = MotoServer::shared().await.expect("moto_server");
    let bucket = MotoServer::unique_bucket_name("traced");
    moto.bucket(&bucket, true).await.expect("bucket");

    let dir = tempfile::tempdir().unwrap();
    let meta_addr = free_addr();
    let filter = "info,bucketfs_meta_server=debug,bucketfs_meta_client=debug,openraft=warn";
    let mut meta = Command::new(BIN)
        .args(["meta", "serve", "--id", "1", "--listen", &meta_addr])
        .args(["--data-dir", &dir.path().join("data").display().to_string()])
        .args(["--init", &format!("1={meta_addr}")])
        .args(["--heartbeat-ms", "100", "--election-timeout-ms", "600"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp_url)
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("BUCKETFS_LOG", filter)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("meta.log")).unwrap())
        .spawn()
        .expect("spawn meta");
    let nfs_addr = free_addr();
    let mut gateway = Command::new(BIN)
        .args([
            "gateway", "serve", "--listen", &nfs_addr, "--meta", &meta_addr,
        ])
        .args(["--bucket", &bucket, "--s3-endpoint", moto.endpoint()])
        .args([
            "--cache-dir",
            &dir.path().join("cache").display().to_string(),
        ])
        .args(["--otlp-endpoint", &otlp_url])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("BUCKETFS_LOG", filter)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("gateway.log")).unwrap())
        .spawn()
        .expect("spawn gateway");
    let log = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();

    let deadline = tokio::time::Instant::now() + WAIT;
    let nfs = loop {
        if let Ok(c) = bucketfs_nfs_client::Client::connect(
            nfs_addr.clone(),
            bucketfs_nfs_client::ClientOptions::default(),
        )
        .await
        {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no gateway; its log:\n{}",
            log("gateway.log")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    nfs.mkdir(nfs.root(), "traced", 0o755).await.expect("mkdir");

    for child in [&mut gateway, &mut meta] {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    let spans = collector.traced.lock().unwrap().clone();
    let compound = spans
        .iter()
        .find(|(svc, name, ..)| svc == "bucketfs-gateway" && name == "compound")
        .unwrap_or_else(|| panic!("no compound span: {spans:?}\n{}", log("gateway.log")));
    let trace = &compound.2;
    let gateway_calls: Vec<&Vec<u8>> = spans
        .iter()
        .filter(|(svc, name, t, ..)| {
            svc == "bucketfs-gateway" && name.starts_with("meta_") && t == trace
        })
        .map(|(.., id, _)| id)
        .collect();
    assert!(
        !gateway_calls.is_empty(),
        "no meta call in the trace: {spans:?}"
    );
    let node_spans: Vec<_> = spans
        .iter()
        .filter(|(svc, name, t, ..)| svc == "bucketfs-meta" && name == "meta_rpc" && t == trace)
        .collect();
    assert!(
        node_spans
            .iter()
            .any(|(.., parent)| gateway_calls.contains(&parent)),
        "no meta_rpc span is a child of the gateway's call: {spans:?}\n{}",
        log("meta.log")
    );
    let _ = stop_tx.send(());
    collector_task.await.unwrap().unwrap();
}
