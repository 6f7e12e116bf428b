//! Metrics of a node, recorded through the `metrics` facade under the names in
//! [`bucketfs_telemetry::metrics::names`]. Without an installed recorder (tests, the
//! simulator) every call here is a no-op.
//!
//! * Per-RPC count and latency ([`observed`]): the latency comes from the node's
//!   [`Clock`], so simulated runs never read real time. A handler dropped before it
//!   finished (the client went away) is counted with the outcome `cancelled`.
//! * Committed writes by command kind (`Command::kind`).
//! * Raft's state as gauges ([`record_raft_gauges`]), copied periodically by the node.

use std::future::Future;
use std::sync::Arc;

use bucketfs_meta_store::TypeConfig;
use bucketfs_proto::WireError;
use bucketfs_runtime::Clock;
use bucketfs_telemetry::metrics::names::{self, outcome};
use openraft::{RaftMetrics, ServerState};
use tokio::time::Instant;
use tonic::{Code, Status};

/// The [`names::OUTCOME`] label of a failed RPC.
pub(crate) fn outcome_of(status: &Status) -> &'static str {
    match WireError::from_status(status) {
        Some(WireError::NotLeader(_)) => outcome::NOT_LEADER,
        Some(WireError::Unavailable(_)) => outcome::UNAVAILABLE,
        Some(WireError::Invalid(_)) => outcome::INVALID,
        Some(WireError::Membership(_)) => outcome::REFUSED,
        Some(WireError::Fatal(_)) => outcome::FATAL,
        // Not one of ours: a broken stream, or the client's own cancel or deadline.
        None => match status.code() {
            Code::Cancelled => outcome::CANCELLED,
            Code::InvalidArgument => outcome::INVALID,
            Code::Unavailable | Code::DeadlineExceeded => outcome::UNAVAILABLE,
            _ => outcome::ERROR,
        },
    }
}

/// Counts and times one RPC; records on drop, so a cancelled handler is counted too.
struct RequestTimer<'a> {
    rpc: &'static str,
    clock: &'a dyn Clock,
    start: Instant,
    outcome: &'static str,
}

impl Drop for RequestTimer<'_> {
    fn drop(&mut self) {
        let elapsed = self.clock.now().saturating_duration_since(self.start);
        metrics::counter!(names::META_REQUESTS_TOTAL, names::RPC => self.rpc, names::OUTCOME => self.outcome)
            .increment(1);
        metrics::histogram!(names::META_REQUEST_SECONDS, names::RPC => self.rpc)
            .record(elapsed.as_secs_f64());
    }
}

/// Runs the handler `fut` of the RPC `rpc`, recording its count, outcome and latency.
pub(crate) async fn observed<T>(
    rpc: &'static str,
    clock: &Arc<dyn Clock>,
    fut: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let mut timer = RequestTimer {
        rpc,
        clock: clock.as_ref(),
        start: clock.now(),
        outcome: outcome::CANCELLED,
    };
    let result = fut.await;
    timer.outcome = match &result {
        Ok(_) => outcome::OK,
        Err(status) => outcome_of(status),
    };
    result
}

/// Counts one write committed through this node.
pub(crate) fn count_write(kind: &'static str) {
    metrics::counter!(names::META_WRITES_TOTAL, names::COMMAND => kind).increment(1);
}

/// Copies Raft's state into the gauges. Indexes are 0 while there is none (an empty log).
pub(crate) fn record_raft_gauges(m: &RaftMetrics<TypeConfig>) {
    // Gauges are f64: exact for indexes and terms below 2^53, i.e. for ever in practice.
    let index = |i: Option<u64>| i.unwrap_or(0) as f64;
    metrics::gauge!(names::META_RAFT_TERM).set(m.current_term as f64);
    metrics::gauge!(names::META_RAFT_LAST_LOG_INDEX).set(index(m.last_log_index));
    metrics::gauge!(names::META_RAFT_APPLIED_INDEX)
        .set(index(m.last_applied.as_ref().map(|l| l.index)));
    let leading = m.state == ServerState::Leader && m.running_state.is_ok();
    metrics::gauge!(names::META_RAFT_IS_LEADER).set(if leading { 1.0 } else { 0.0 });
    let voters = m.membership_config.membership().voter_ids().count();
    metrics::gauge!(names::META_RAFT_MEMBERSHIP_VOTERS).set(voters as f64);
}

/// What the gauges say about a node that stopped: it leads nothing.
pub(crate) fn record_stopped() {
    metrics::gauge!(names::META_RAFT_IS_LEADER).set(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bucketfs_proto::LeaderHint;

    #[test]
    fn statuses_map_to_outcomes() {
        let cases = [
            (
                WireError::NotLeader(LeaderHint::default()).into_status(),
                outcome::NOT_LEADER,
            ),
            (
                WireError::Unavailable("x".into()).into_status(),
                outcome::UNAVAILABLE,
            ),
            (
                WireError::Invalid("x".into()).into_status(),
                outcome::INVALID,
            ),
            (
                WireError::Membership("x".into()).into_status(),
                outcome::REFUSED,
            ),
            (WireError::Fatal("x".into()).into_status(), outcome::FATAL),
            (Status::cancelled("gone"), outcome::CANCELLED),
            (Status::deadline_exceeded("late"), outcome::UNAVAILABLE),
            (Status::internal("?"), outcome::ERROR),
        ];
        for (status, want) in cases {
            assert_eq!(outcome_of(&status), want, "{status:?}");
        }
    }
}
