//! [`NodeConfig`]: what an operator chooses for one metadata node, validated up front with
//! errors that name the offending field, and turned into openraft's `Config`.
//!
//! Timing rules (checked): `heartbeat_interval < election_timeout_min < election_timeout_max`.
//! openraft also uses `heartbeat_interval` as the deadline of each AppendEntries RPC, so it
//! must cover a follower's fsync of a full batch; `election_timeout_min` should be several
//! heartbeats so that one lost heartbeat does not start an election.

use std::time::Duration;

use openraft::SnapshotPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's Raft id. Never reuse an id for a node with a different (or empty) log.
    pub node_id: u64,
    /// The `host:port` other nodes and clients reach this node at (its one gRPC address).
    pub advertised_addr: String,
    /// Name of the Raft cluster, for logs.
    pub cluster_name: String,
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Deadline for sending and installing a whole snapshot on a follower.
    pub install_snapshot_timeout: Duration,
    /// Build a snapshot once this many entries were applied since the last one; `None`
    /// builds none (the log then grows until an operator triggers one).
    pub snapshot_every_logs: Option<u64>,
    /// Entries already in a snapshot that are kept anyway (so a briefly lagging follower
    /// catches up from the log instead of a snapshot); older ones are purged.
    pub logs_kept_after_snapshot: u64,
    /// A follower further behind than this many entries is sent a snapshot instead of logs.
    pub replication_lag_threshold: u64,
    /// How long a write may wait for its entry to commit and apply, and a linearizable read
    /// for its read-index round, before the node answers "unavailable".
    pub commit_timeout: Duration,
    /// Interval of the leader's lease sweeper (`Command::ExpireLeases`); `None` disables it.
    pub lease_sweep_interval: Option<Duration>,
    /// How often Raft's state (term, log and applied index, role, voters) is copied into
    /// the `bucketfs_meta_raft_*` gauges; `None` disables it. Without an installed metrics
    /// recorder the copies go nowhere and cost a watch-channel read.
    pub metrics_interval: Option<Duration>,
    /// Run a pre-vote round before a real election, so a node that was cut off cannot
    /// depose a healthy leader when it returns.
    pub pre_vote: bool,
}

impl NodeConfig {
    /// Production defaults for the node `node_id` reachable at `advertised_addr`.
    pub fn new(node_id: u64, advertised_addr: impl Into<String>) -> Self {
        NodeConfig {
            node_id,
            advertised_addr: advertised_addr.into(),
            cluster_name: "bucketfs-meta".into(),
            heartbeat_interval: Duration::from_millis(150),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            install_snapshot_timeout: Duration::from_secs(60),
            snapshot_every_logs: Some(20_000),
            logs_kept_after_snapshot: 5_000,
            replication_lag_threshold: 30_000,
            commit_timeout: Duration::from_secs(5),
            lease_sweep_interval: Some(Duration::from_secs(5)),
            metrics_interval: Some(Duration::from_secs(1)),
            pre_vote: true,
        }
    }

    /// Checks the settings; the error names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: String| Err(ConfigError { field, reason });
        if self.advertised_addr.trim().is_empty() {
            return bad("advertised_addr", "must not be empty".into());
        }
        if self.advertised_addr.contains("://") {
            return bad(
                "advertised_addr",
                format!(
                    "{:?}: give host:port without a scheme",
                    self.advertised_addr
                ),
            );
        }
        if self.heartbeat_interval < Duration::from_millis(1) {
            return bad("heartbeat_interval", "must be at least 1 ms".into());
        }
        if self.election_timeout_min <= self.heartbeat_interval {
            return bad(
                "election_timeout_min",
                format!(
                    "{:?} must exceed heartbeat_interval {:?}",
                    self.election_timeout_min, self.heartbeat_interval
                ),
            );
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return bad(
                "election_timeout_max",
                format!(
                    "{:?} must exceed election_timeout_min {:?}",
                    self.election_timeout_max, self.election_timeout_min
                ),
            );
        }
        if self.install_snapshot_timeout.is_zero() {
            return bad("install_snapshot_timeout", "must not be zero".into());
        }
        if self.snapshot_every_logs == Some(0) {
            return bad(
                "snapshot_every_logs",
                "must be positive (use None to disable snapshots)".into(),
            );
        }
        if let Some(every) = self.snapshot_every_logs
            && self.replication_lag_threshold < every
        {
            return bad(
                "replication_lag_threshold",
                format!(
                    "{} must be at least snapshot_every_logs ({every}), or a lagging follower \
                     could be sent snapshot after snapshot",
                    self.replication_lag_threshold
                ),
            );
        }
        if self.commit_timeout.is_zero() {
            return bad("commit_timeout", "must not be zero".into());
        }
        if self.lease_sweep_interval.is_some_and(|d| d.is_zero()) {
            return bad(
                "lease_sweep_interval",
                "must be positive (use None to disable the sweeper)".into(),
            );
        }
        if self.metrics_interval.is_some_and(|d| d.is_zero()) {
            return bad(
                "metrics_interval",
                "must be positive (use None to disable the Raft gauges)".into(),
            );
        }
        Ok(())
    }

    /// openraft's config for these settings (validated by openraft as well).
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, ConfigError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            install_snapshot_timeout: ms(self.install_snapshot_timeout),
            snapshot_policy: match self.snapshot_every_logs {
                Some(n) => SnapshotPolicy::LogsSinceLast(n),
                None => SnapshotPolicy::Never,
            },
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            replication_lag_threshold: self.replication_lag_threshold,
            enable_pre_vote: Some(self.pre_vote),
            ..Default::default()
        };
        config.validate().map_err(|e| ConfigError {
            field: "raft",
            reason: e.to_string(),
        })
    }
}

/// A setting that cannot work; `field` is the [`NodeConfig`] field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node config: {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_accepted_by_openraft() {
        let c = NodeConfig::new(1, "10.0.0.1:7400");
        c.validate().unwrap();
        c.raft_config().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let base = NodeConfig::new(1, "10.0.0.1:7400");
        let cases: Vec<(&str, NodeConfig)> = vec![
            (
                "advertised_addr",
                NodeConfig {
                    advertised_addr: " ".into(),
                    ..base.clone()
                },
            ),
            (
                "advertised_addr",
                NodeConfig {
                    advertised_addr: "http://a:1".into(),
                    ..base.clone()
                },
            ),
            (
                "election_timeout_min",
                NodeConfig {
                    election_timeout_min: base.heartbeat_interval,
                    ..base.clone()
                },
            ),
            (
                "election_timeout_max",
                NodeConfig {
                    election_timeout_max: base.election_timeout_min,
                    ..base.clone()
                },
            ),
            (
                "snapshot_every_logs",
                NodeConfig {
                    snapshot_every_logs: Some(0),
                    ..base.clone()
                },
            ),
            (
                "replication_lag_threshold",
                NodeConfig {
                    replication_lag_threshold: 10,
                    ..base.clone()
                },
            ),
            (
                "lease_sweep_interval",
                NodeConfig {
                    lease_sweep_interval: Some(Duration::ZERO),
                    ..base.clone()
                },
            ),
            (
                "commit_timeout",
                NodeConfig {
                    commit_timeout: Duration::ZERO,
                    ..base.clone()
                },
            ),
            (
                "metrics_interval",
                NodeConfig {
                    metrics_interval: Some(Duration::ZERO),
                    ..base.clone()
                },
            ),
        ];
        for (field, c) in cases {
            assert_eq!(c.validate().unwrap_err().field, field, "{c:?}");
        }
    }
}
