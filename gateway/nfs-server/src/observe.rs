//! Per-operation metrics under the names of `bucketfs_telemetry::metrics::names` (no-ops
//! until a binary installs a recorder).

use std::time::Duration;

use bucketfs_nfs_wire::nfs::{NfsStatus, Opcode};
use bucketfs_telemetry::metrics::names;

pub(crate) fn op_done(op: Opcode, status: NfsStatus, took: Duration) {
    let op = format!("{op:?}");
    metrics::counter!(
        names::GATEWAY_NFS_OPS_TOTAL,
        names::OP => op.clone(),
        names::STATUS => format!("{status:?}")
    )
    .increment(1);
    metrics::histogram!(names::GATEWAY_NFS_OP_SECONDS, names::OP => op).record(took.as_secs_f64());
}

pub(crate) fn compound_done() {
    metrics::counter!(names::GATEWAY_NFS_COMPOUNDS_TOTAL).increment(1);
}
