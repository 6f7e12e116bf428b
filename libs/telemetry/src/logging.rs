//! [`init_tracing`]: the process-wide `tracing` subscriber.
//!
//! Events go to stderr through `tracing-subscriber`'s fmt layer, filtered by an `EnvFilter`
//! directive string. With an OTLP endpoint, spans are also exported over OTLP/gRPC (tonic,
//! the same stack as the cluster's RPCs) by a batch processor that runs on its own thread;
//! the returned [`TracingGuard`] flushes and stops it when dropped.
//!
//! The exporter's own transport (tonic, hyper, h2, tower) is kept out of the exported
//! spans: exporting them would create new spans at every export, for ever.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::TelemetryError;

/// Targets whose spans are never exported (see the module docs).
const TRANSPORT_TARGETS: &[&str] = &["tonic", "hyper", "h2", "tower", "opentelemetry"];

/// Keeps span export running; dropping it flushes the spans not yet exported (waiting up
/// to a few seconds for the collector) and stops the exporter. Drop it inside the tokio
/// runtime the exporter was built in, and not on a current-thread runtime's own thread:
/// the export needs that runtime to make progress.
#[must_use = "dropping the guard stops span export"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl TracingGuard {
    /// Whether spans are exported over OTLP.
    pub fn exports_spans(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans buffered so far, waiting for the collector.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            eprintln!("warning: flushing spans to the OTLP collector failed: {e}");
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            // The subscriber may be what failed, so say it on stderr directly.
            eprintln!("warning: exporting the last spans to the OTLP collector failed: {e}");
        }
    }
}

impl std::fmt::Debug for TracingGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingGuard")
            .field("exports_spans", &self.exports_spans())
            .finish()
    }
}

/// The OTLP span layer for `service_name`, exporting to `endpoint` (`http://host:4317`).
/// Must run inside a tokio runtime: the gRPC channel is created there (lazily: an
/// unreachable collector is not an error here, only a warning at export).
fn otlp_layer<S>(
    service_name: &str,
    endpoint: &str,
) -> Result<(impl Layer<S> + Send + Sync + 'static, SdkTracerProvider), TelemetryError>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::NoRuntime);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Otlp {
            endpoint: endpoint.to_owned(),
            reason: e.to_string(),
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service_name.to_owned());
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter_fn(|meta| {
            !TRANSPORT_TARGETS
                .iter()
                .any(|t| meta.target().starts_with(t))
        }));
    Ok((layer, provider))
}

/// Builds the subscriber [`init_tracing`] installs, without installing it (tests scope it
/// with `tracing::subscriber::with_default`). `filter` is an `EnvFilter` directive string
/// such as `info,openraft=warn`; it applies to stderr and to export alike. An empty
/// endpoint counts as none.
pub fn build_subscriber(
    service_name: &str,
    otlp_endpoint: Option<&str>,
    filter: &str,
) -> Result<(impl Subscriber + Send + Sync + 'static, TracingGuard), TelemetryError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| TelemetryError::Filter {
        filter: filter.to_owned(),
        reason: e.to_string(),
    })?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // An empty setting (`OTEL_EXPORTER_OTLP_ENDPOINT=`) means "no export".
    let (otlp, provider) = match otlp_endpoint.filter(|e| !e.trim().is_empty()) {
        Some(endpoint) => {
            let (layer, provider) = otlp_layer(service_name, endpoint)?;
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    let subscriber = Registry::default().with(filter).with(fmt).with(otlp);
    Ok((subscriber, TracingGuard { provider }))
}

/// Installs the process-wide subscriber: events to stderr filtered by `filter`, and spans
/// to `otlp_endpoint` over OTLP/gRPC when one is given (then call it inside a tokio
/// runtime). Keep the guard until the process ends.
pub fn init_tracing(
    service_name: &str,
    otlp_endpoint: Option<&str>,
    filter: &str,
) -> Result<TracingGuard, TelemetryError> {
    let (subscriber, guard) = build_subscriber(service_name, otlp_endpoint, filter)?;
    // `try_init` also routes the `log` crate's records into tracing.
    subscriber
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled("tracing subscriber"))?;
    Ok(guard)
}
