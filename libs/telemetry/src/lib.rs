//! Observability shared by the bucketfs services.
//!
//! * [`metrics`]: every metric name ([`metrics::names`]), the Prometheus recorder, and
//!   [`metrics::serve_metrics`], a minimal HTTP/1.1 `/metrics` endpoint. Libraries record
//!   through the `metrics` facade only; without an installed recorder (tests, the simulator)
//!   recording is a no-op, so only binaries call [`metrics::install_prometheus`].
//! * [`logging`]: [`logging::init_tracing`] — human-readable events on stderr, plus span
//!   export over OTLP/gRPC when an endpoint is configured. Returns a guard that flushes
//!   pending spans when dropped.
//! * [`propagation`]: trace context across gRPC calls (gateway → meta), so one NFS request
//!   is one trace.

pub mod logging;
pub mod metrics;
pub mod propagation;

pub use logging::{TracingGuard, init_tracing};
pub use metrics::{MetricsHandle, install_prometheus, serve_metrics};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Otlp { endpoint: String, reason: String },
    #[error("a global {0} is already installed")]
    AlreadyInstalled(&'static str),
    #[error("the OTLP exporter must be built inside a tokio runtime")]
    NoRuntime,
}
