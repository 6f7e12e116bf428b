//! Span export over OTLP/gRPC against an in-test collector (the generated TraceService
//! server on 127.0.0.1), and that no exporter exists without an endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_telemetry::logging::build_subscriber;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.received.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// (service.name, span name, attribute keys) of every exported span.
fn exported(collector: &Collector) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for req in collector.received.lock().unwrap().iter() {
        for rs in &req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    let keys = span.attributes.iter().map(|kv| kv.key.clone()).collect();
                    out.push((service.clone(), span.name.clone(), keys));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let collector = Collector::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        TraceServiceServer::new(collector.clone()),
        TcpIncoming::from(listener),
        async {
            let _ = stop_rx.await;
        },
    ));

    let (subscriber, guard) =
        build_subscriber("bucketfs-test", Some(&endpoint), "info").expect("subscriber");
    assert!(guard.exports_spans());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("meta_rpc", rpc = "Write", client = 7u64);
        span.in_scope(|| tracing::info!("inside"));
        // Below the filter: must not be exported.
        let _ = tracing::debug_span!("hidden").entered();
    });
    // Dropping the guard flushes; it blocks, so not on a runtime worker.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = exported(&collector);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let (service, name, keys) = &spans[0];
    assert_eq!(service, "bucketfs-test");
    assert_eq!(name, "meta_rpc");
    assert!(keys.iter().any(|k| k == "rpc"), "{keys:?}");
    assert!(keys.iter().any(|k| k == "client"), "{keys:?}");

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("collector stops")
        .unwrap()
        .unwrap();
}

#[test]
fn no_endpoint_means_no_exporter_and_needs_no_runtime() {
    let (_subscriber, guard) = build_subscriber("bucketfs-test", None, "info").expect("subscriber");
    assert!(!guard.exports_spans());
    let (_subscriber, guard) =
        build_subscriber("bucketfs-test", Some(" "), "info").expect("subscriber");
    assert!(!guard.exports_spans());
}

#[test]
fn an_endpoint_outside_a_runtime_is_refused() {
    let err = build_subscriber("bucketfs-test", Some("http://127.0.0.1:4317"), "info")
        .err()
        .expect("no runtime");
    assert!(matches!(err, bucketfs_telemetry::TelemetryError::NoRuntime));
}

#[test]
fn a_bad_filter_is_reported() {
    let err = build_subscriber("bucketfs-test", None, "info,=[")
        .err()
        .expect("bad filter");
    assert!(matches!(
        err,
        bucketfs_telemetry::TelemetryError::Filter { .. }
    ));
}
