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

/// Label: the RPC's method name as in the .proto (`Write`, `AppendEntries`, ...).
pub const RPC: &str = "rpc";
/// Label: how a request ended; one of the [`outcome`] values.
pub const OUTCOME: &str = "outcome";
/// Label: the kind of a namespace command (`create`, `rename`, ...).
pub const COMMAND: &str = "command";

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
