//! Metrics: names, the Prometheus recorder, and the `/metrics` endpoint.
//!
//! Code records through the `metrics` facade (`metrics::counter!(names::X, ...)`); the
//! process installs one global recorder ([`install_prometheus`]) and serves its rendering
//! ([`serve_metrics`]). Latency histograms (names ending in `_seconds`) get fixed buckets,
//! so they render as Prometheus histograms that aggregate across nodes, not as summaries.

mod http;
pub mod names;

pub use http::serve_metrics;
pub use metrics_exporter_prometheus::PrometheusHandle as MetricsHandle;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::TelemetryError;

/// Bucket bounds of every `_seconds` histogram: 100 µs to 10 s. A metadata write is an
/// fsync plus a network round trip (about a millisecond on a LAN); reads are far below.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A recorder with the bucketfs histogram layout, not installed anywhere: tests use it
/// with `metrics::with_local_recorder`, [`install_prometheus`] installs one globally.
pub fn prometheus_recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .expect("LATENCY_BUCKETS is a non-empty constant")
        .build_recorder()
}

/// Installs the process-wide Prometheus recorder and describes every metric. Call once,
/// early, from a binary; recording before it is lost.
pub fn install_prometheus() -> Result<MetricsHandle, TelemetryError> {
    let recorder = prometheus_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| TelemetryError::AlreadyInstalled("metrics recorder"))?;
    describe();
    Ok(handle)
}

/// Registers help text and units with the current recorder (the `# HELP` lines).
pub fn describe() {
    use names::*;
    metrics::describe_counter!(
        META_REQUESTS_TOTAL,
        Unit::Count,
        "RPCs a metadata node answered, by RPC and outcome"
    );
    metrics::describe_histogram!(
        META_REQUEST_SECONDS,
        Unit::Seconds,
        "Time a metadata node took to answer an RPC"
    );
    metrics::describe_counter!(
        META_WRITES_TOTAL,
        Unit::Count,
        "Namespace writes committed through this node, by command"
    );
    metrics::describe_gauge!(META_RAFT_TERM, "Current Raft term of the node");
    metrics::describe_gauge!(
        META_RAFT_LAST_LOG_INDEX,
        "Index of the last entry in the node's Raft log"
    );
    metrics::describe_gauge!(
        META_RAFT_APPLIED_INDEX,
        "Index of the last entry applied to the node's state machine"
    );
    metrics::describe_gauge!(META_RAFT_IS_LEADER, "1 while the node is the Raft leader");
    metrics::describe_gauge!(
        META_RAFT_MEMBERSHIP_VOTERS,
        "Voters in the node's current membership configuration"
    );
}

#[cfg(test)]
mod tests {
    use super::names::*;
    use super::*;

    #[test]
    fn names_render_with_their_labels() {
        let recorder = prometheus_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            metrics::counter!(META_REQUESTS_TOTAL, RPC => "Write", OUTCOME => outcome::OK)
                .increment(3);
            metrics::counter!(META_REQUESTS_TOTAL, RPC => "Read", OUTCOME => outcome::NOT_LEADER)
                .increment(1);
            metrics::histogram!(META_REQUEST_SECONDS, RPC => "Write").record(0.002);
            metrics::counter!(META_WRITES_TOTAL, COMMAND => "create").increment(2);
            metrics::gauge!(META_RAFT_TERM).set(7.0);
            metrics::gauge!(META_RAFT_IS_LEADER).set(1.0);
        });
        let text = handle.render();
        for line in [
            "# TYPE bucketfs_meta_requests_total counter",
            "bucketfs_meta_requests_total{rpc=\"Write\",outcome=\"ok\"} 3",
            "bucketfs_meta_requests_total{rpc=\"Read\",outcome=\"not_leader\"} 1",
            "# TYPE bucketfs_meta_request_seconds histogram",
            "bucketfs_meta_request_seconds_bucket{rpc=\"Write\",le=\"0.001\"} 0",
            "bucketfs_meta_request_seconds_bucket{rpc=\"Write\",le=\"0.0025\"} 1",
            "bucketfs_meta_request_seconds_count{rpc=\"Write\"} 1",
            "bucketfs_meta_writes_total{command=\"create\"} 2",
            "bucketfs_meta_raft_term 7",
            "bucketfs_meta_raft_is_leader 1",
            "# HELP bucketfs_meta_raft_term Current Raft term of the node",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn names_are_prometheus_identifiers_with_the_bucketfs_prefix() {
        for name in [
            META_REQUESTS_TOTAL,
            META_REQUEST_SECONDS,
            META_WRITES_TOTAL,
            META_RAFT_TERM,
            META_RAFT_LAST_LOG_INDEX,
            META_RAFT_APPLIED_INDEX,
            META_RAFT_IS_LEADER,
            META_RAFT_MEMBERSHIP_VOTERS,
        ] {
            assert!(name.starts_with("bucketfs_"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }
}
