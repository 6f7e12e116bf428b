//! Every metric name and label key bucketfs exports, in one place, so that dashboards and
//! alerts have one list to follow and a rename is one edit. Names follow Prometheus
//! conventions: a `bucketfs_<component>_` prefix, base units (`_seconds`), `_total` for
//! counters. Label values that form a closed set (outcomes) are constants too; open ones
//! (RPC and command names) come from the code that records them.

/// Counter: RPCs a metadata node answered. Labels: [`RPC`], [`OUTCOME`].
pub const META_REQUESTS_TOTAL: &str = "bucketfs_meta_requests_total";
/// Histogram: time a metadata node took to answer an RPC. Label: [`RPC`].
pub const META_REQUEST_SECONDS: &str = "bucketfs_meta_request_seconds";
/// Counter: writes committed through this node while it led, by command. Label: [`COMMAND`].
pub const META_WRITES_TOTAL: &str = "bucketfs_meta_writes_total";

/// Gauge: the node's current Raft term.
pub const META_RAFT_TERM: &str = "bucketfs_meta_raft_term";
/// Gauge: index of the last entry in the node's log (0 while empty).
pub const META_RAFT_LAST_LOG_INDEX: &str = "bucketfs_meta_raft_last_log_index";
/// Gauge: index of the last entry the node's state machine applied (0 before any).
pub const META_RAFT_APPLIED_INDEX: &str = "bucketfs_meta_raft_applied_index";
/// Gauge: 1 while the node is the leader, else 0.
pub const META_RAFT_IS_LEADER: &str = "bucketfs_meta_raft_is_leader";
/// Gauge: voters in the node's current membership configuration (both halves of a joint
/// configuration).
pub const META_RAFT_MEMBERSHIP_VOTERS: &str = "bucketfs_meta_raft_membership_voters";

/// Counter: NFS operations a gateway executed. Labels: [`OP`], [`STATUS`].
pub const GATEWAY_NFS_OPS_TOTAL: &str = "bucketfs_gateway_nfs_ops_total";
/// Histogram: time a gateway spent executing one NFS operation. Label: [`OP`].
pub const GATEWAY_NFS_OP_SECONDS: &str = "bucketfs_gateway_nfs_op_seconds";
/// Counter: COMPOUND requests a gateway answered (replays from the slot cache included).
pub const GATEWAY_NFS_COMPOUNDS_TOTAL: &str = "bucketfs_gateway_nfs_compounds_total";
/// Counter: file bytes clients wrote (WRITE payloads).
pub const GATEWAY_NFS_BYTES_WRITTEN_TOTAL: &str = "bucketfs_gateway_nfs_bytes_written_total";
/// Counter: file bytes clients read (READ payloads).
pub const GATEWAY_NFS_BYTES_READ_TOTAL: &str = "bucketfs_gateway_nfs_bytes_read_total";
/// Counter: S3 requests a gateway made. Labels: [`S3_OP`], [`OUTCOME`].
pub const GATEWAY_S3_REQUESTS_TOTAL: &str = "bucketfs_gateway_s3_requests_total";
/// Histogram: S3 request latency. Label: [`S3_OP`].
pub const GATEWAY_S3_REQUEST_SECONDS: &str = "bucketfs_gateway_s3_request_seconds";
/// Counter: bytes uploaded to S3 (PUT and UploadPart bodies).
pub const GATEWAY_S3_BYTES_OUT_TOTAL: &str = "bucketfs_gateway_s3_bytes_out_total";
/// Counter: bytes downloaded from S3.
pub const GATEWAY_S3_BYTES_IN_TOTAL: &str = "bucketfs_gateway_s3_bytes_in_total";
/// Counter: block reads served from the local cache.
pub const GATEWAY_CACHE_HITS_TOTAL: &str = "bucketfs_gateway_cache_hits_total";
/// Counter: block reads that had to go to S3.
pub const GATEWAY_CACHE_MISSES_TOTAL: &str = "bucketfs_gateway_cache_misses_total";
/// Gauge: bytes of uncommitted writes held in the local cache.
pub const GATEWAY_DIRTY_BYTES: &str = "bucketfs_gateway_dirty_bytes";
/// Histogram: time to make one file's writes durable (upload, then commit in meta).
pub const GATEWAY_FLUSH_SECONDS: &str = "bucketfs_gateway_flush_seconds";
/// Counter: S3 side effects of namespace changes that failed after retries (a directory
/// marker, a symlink object, a delete or a move); the namespace change itself stands.
/// Label: [`WHAT`].
pub const GATEWAY_EXPORT_FAILURES_TOTAL: &str = "bucketfs_gateway_export_failures_total";
/// Counter: batched lease renewals sent to meta, and clients they renewed.
pub const GATEWAY_LEASE_RENEWALS_TOTAL: &str = "bucketfs_gateway_lease_renewals_total";
pub const GATEWAY_LEASES_RENEWED_TOTAL: &str = "bucketfs_gateway_leases_renewed_total";

/// Label: the RPC's method name as in the .proto (`Write`, `AppendEntries`, ...).
pub const RPC: &str = "rpc";
/// Label: how a request ended; one of the [`outcome`] values.
pub const OUTCOME: &str = "outcome";
/// Label: the kind of a namespace command (`create`, `rename`, ...).
pub const COMMAND: &str = "command";

/// Label: an NFS operation (`GETATTR`, `WRITE`, ...).
pub const OP: &str = "op";
/// Label: an NFS status (`NFS4_OK`, `NFS4ERR_NOENT`, ...).
pub const STATUS: &str = "status";
/// Label: an S3 operation (`put`, `get_range`, ...).
pub const S3_OP: &str = "s3_op";
/// Label: which kind of S3 side effect (`marker`, `symlink`, `delete`, `move`, `path_too_long`).
pub const WHAT: &str = "what";

/// Values of the [`OUTCOME`] label.
pub mod outcome {
    /// Answered. A namespace refusal (no such file, ...) is an answer too.
    pub const OK: &str = "ok";
    /// This node does not lead; the caller was redirected.
    pub const NOT_LEADER: &str = "not_leader";
    /// No quorum, timed out, or shutting down: the caller may retry.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The request could not be decoded or was refused as malformed.
    pub const INVALID: &str = "invalid";
    /// Refused as asked in the current state (a membership change while one is pending).
    pub const REFUSED: &str = "refused";
    /// The node failed (storage error, Raft stopped for good).
    pub const FATAL: &str = "fatal";
    /// The client went away before the answer (the handler was cancelled).
    pub const CANCELLED: &str = "cancelled";
    /// Any other error.
    pub const ERROR: &str = "error";
}
