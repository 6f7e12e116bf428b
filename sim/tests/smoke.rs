//! A few seeds on every `cargo test`: they pass, they replay to the same digest, and each
//! deliberately injected bug is caught (so the checkers can fail).

use bucketfs_sim::run::{Bug, Report, RunConfig, run_seed};

/// Runs are deep async state machines in a debug build; the test harness's default 2 MiB
/// thread stack is not enough.
fn run(cfg: RunConfig) -> Report {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || run_seed(&cfg))
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn seeds_pass_and_replay_to_the_same_digest() {
    let mut digests = Vec::new();
    // Seeds 2, 3, 10 and 13 cover the crash, network, calm and chaos profiles.
    for seed in [2, 3, 10, 13] {
        let first = run(RunConfig::new(seed));
        assert!(
            first.passed(),
            "seed {seed} failed: {:#?}\n{}",
            first.failures,
            first.trace.join("\n")
        );
        let again = run(RunConfig::new(seed));
        assert_eq!(
            first.digest, again.digest,
            "seed {seed} is not deterministic"
        );
        assert_eq!(first.events, again.events);
        digests.push(first.digest);
    }
    digests.sort_unstable();
    digests.dedup();
    assert_eq!(digests.len(), 4, "different seeds must give different runs");
}

/// The failures of the first seed (among the first 30) with `bug` injected whose failures
/// include one that `wanted` accepts.
fn caught(bug: Bug, wanted: impl Fn(&str) -> bool) -> Result<Vec<String>, String> {
    let mut seen = Vec::new();
    for seed in 0..30 {
        let report = run(RunConfig {
            bug: Some(bug),
            ..RunConfig::new(seed)
        });
        if report.failures.iter().any(|f| wanted(f)) {
            return Ok(report.failures);
        }
        seen.extend(report.failures);
    }
    Err(format!(
        "{bug:?} not caught as expected; failures seen: {seen:#?}"
    ))
}

#[test]
fn retried_mutation_applied_twice_is_caught() {
    // Clients that retry under a fresh seq defeat deduplication; the history shows it.
    caught(Bug::RetryWithNewSeq, |f| {
        f.contains("not linearizable") || f.contains("exactly-once")
    })
    .unwrap();
}

#[test]
fn stale_reads_are_caught() {
    caught(Bug::StaleReads, |f| f.contains("not linearizable")).unwrap();
}

#[test]
fn a_disk_that_lies_about_fsync_is_caught() {
    // openraft's own assertions or the recovery check notice first.
    caught(Bug::LyingDisk, |_| true).unwrap();
}

#[test]
fn a_node_that_forgets_its_log_loses_committed_entries() {
    // Restarting on a blank disk lets a stale node win an election: the safety checkers
    // (not just liveness or a panic) must report it.
    caught(Bug::Amnesia, |f| {
        f.contains("state machine safety") || f.contains("committed entry lost")
    })
    .unwrap();
}

/// Seed 568 once elected two leaders in one term, under openraft's default leader ids that
/// allow a second vote per term; the cluster now uses standard Raft leader ids.
#[test]
fn seed_568_keeps_one_leader_per_term() {
    let report = run(RunConfig::new(568));
    assert!(
        report.passed(),
        "seed 568 failed: {:#?}\n{}",
        report.failures,
        report.trace.join("\n")
    );
}
