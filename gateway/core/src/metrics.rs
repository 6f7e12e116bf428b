//! The gateway's metrics, recorded through the `metrics` facade under the names in
//! `bucketfs_telemetry::metrics::names` (a no-op until a binary installs the Prometheus
//! recorder).

use bucketfs_telemetry::metrics::names;

pub fn cache_hit() {
    metrics::counter!(names::GATEWAY_CACHE_HITS_TOTAL).increment(1);
}

pub fn cache_miss() {
    metrics::counter!(names::GATEWAY_CACHE_MISSES_TOTAL).increment(1);
}

pub fn dirty_bytes(bytes: u64) {
    metrics::gauge!(names::GATEWAY_DIRTY_BYTES).set(bytes as f64);
}

pub fn s3_bytes_in(bytes: u64) {
    metrics::counter!(names::GATEWAY_S3_BYTES_IN_TOTAL).increment(bytes);
}

pub fn s3_bytes_out(bytes: u64) {
    metrics::counter!(names::GATEWAY_S3_BYTES_OUT_TOTAL).increment(bytes);
}

pub fn nfs_bytes_read(bytes: u64) {
    metrics::counter!(names::GATEWAY_NFS_BYTES_READ_TOTAL).increment(bytes);
}

pub fn nfs_bytes_written(bytes: u64) {
    metrics::counter!(names::GATEWAY_NFS_BYTES_WRITTEN_TOTAL).increment(bytes);
}

/// An S3 side effect of a namespace change gave up (see the metric's documentation).
pub fn export_failure(what: &'static str) {
    metrics::counter!(names::GATEWAY_EXPORT_FAILURES_TOTAL, names::WHAT => what).increment(1);
}

pub fn lease_renewal(clients: usize) {
    metrics::counter!(names::GATEWAY_LEASE_RENEWALS_TOTAL).increment(1);
    metrics::counter!(names::GATEWAY_LEASES_RENEWED_TOTAL).increment(clients as u64);
}

/// Records the time until it is dropped into a histogram.
pub struct Timer {
    name: &'static str,
    start: tokio::time::Instant,
}

impl Timer {
    pub fn flush() -> Self {
        Timer {
            name: names::GATEWAY_FLUSH_SECONDS,
            // Tokio's clock, which the simulator controls: no std clock here.
            start: tokio::time::Instant::now(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        metrics::histogram!(self.name).record(self.start.elapsed().as_secs_f64());
    }
}
