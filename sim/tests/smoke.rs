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

/// The first failure among the first seeds with `bug` injected.
fn first_failure(bug: Bug) -> Option<(u64, Vec<String>)> {
    (0..12).find_map(|seed| {
        let report = run(RunConfig {
            bug: Some(bug),
            ..RunConfig::new(seed)
        });
        (!report.passed()).then_some((seed, report.failures))
    })
}

#[test]
fn retried_mutation_applied_twice_is_caught() {
    let (seed, failures) =
        first_failure(Bug::RetryWithNewSeq).expect("defeating deduplication must be detected");
    assert!(
        failures
            .iter()
            .any(|f| f.contains("not linearizable") || f.contains("exactly-once")),
        "seed {seed}: {failures:#?}"
    );
}

#[test]
fn stale_reads_are_caught() {
    let (seed, failures) = first_failure(Bug::StaleReads).expect("stale reads must be detected");
    assert!(
        failures.iter().any(|f| f.contains("not linearizable")),
        "seed {seed}: {failures:#?}"
    );
}

#[test]
fn a_disk_that_lies_about_fsync_is_caught() {
    let (_, failures) = first_failure(Bug::LyingDisk).expect("lost fsynced data must be detected");
    assert!(!failures.is_empty());
}
