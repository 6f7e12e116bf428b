//! One seed, one run: build the world from the seed, run the workload under the fault
//! schedule, heal, check recovery, then run every checker.
//!
//! Phases (virtual time):
//! 1. start the nodes, initialize the cluster, create the file system (no faults);
//! 2. the active phase: clients run random operations while the nemesis injects faults;
//! 3. the all-clear: everything healed and restarted; clients finish what they had in flight;
//! 4. recovery: one final linearizable READDIR must succeed (it joins the history, so the
//!    linearizability check also verifies the final state) and all replicas must converge;
//! 5. the nodes are stopped and the checkers read the history, the observer's ledgers and
//!    every node's disk.
//!
//! Each run gets a fresh current-thread tokio runtime with paused time and a seeded
//! scheduler, and openraft's thread-local RNG is re-seeded: see README.md for the full list
//! of sources of nondeterminism and how each is closed.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bucketfs_meta_server::MetaNode;
use bucketfs_meta_store::{LogId, MemDisk, MemStateBackend, StateBackend};
use bucketfs_runtime::Entropy;
use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use tokio::time::Instant;

use crate::checkers::exactly_once::NodeState;
use crate::checkers::linearizable::Verdict;
use crate::checkers::{committed_durable, election_safety, exactly_once, linearizable};
use crate::cluster::Cluster;
use crate::history::{History, Outcome};
use crate::model::{NsOp, NsState};
use crate::nemesis::{self, Fault, Profile, Victim};
use crate::net::Net;
use crate::observer::{Lid, Observer, lid};
use crate::trace::{Keep, Trace};
use crate::workload::{Client, ClientConfig};

/// Deliberate bugs, to show that the checkers catch what they claim to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Clients retry mutations under a fresh sequence number (defeats deduplication).
    RetryWithNewSeq,
    /// Clients read from whatever node they reach, without a read-index round.
    StaleReads,
    /// Disks acknowledge fsync without persisting; a crash loses acknowledged data.
    LyingDisk,
    /// A crashed node comes back with an empty disk under its old id (the node-id reuse
    /// mistake): it forgets its vote and its log.
    Amnesia,
}

impl Bug {
    pub const ALL: [Bug; 4] = [
        Bug::RetryWithNewSeq,
        Bug::StaleReads,
        Bug::LyingDisk,
        Bug::Amnesia,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::RetryWithNewSeq => "retry-with-new-seq",
            Bug::StaleReads => "stale-reads",
            Bug::LyingDisk => "lying-disk",
            Bug::Amnesia => "amnesia",
        }
    }

    pub fn parse(s: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == s)
    }
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    pub bug: Option<Bug>,
    pub keep: Keep,
    /// Print trace lines as they happen.
    pub echo: bool,
    /// Virtual length of the active (faulty) phase.
    pub active: Duration,
}

impl RunConfig {
    pub fn new(seed: u64) -> Self {
        RunConfig {
            seed,
            bug: None,
            keep: Keep::Tail(60),
            echo: false,
            active: Duration::from_secs(6),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub digest: u64,
    pub events: u64,
    pub virtual_time: Duration,
    pub summary: String,
    pub failures: Vec<String>,
    /// The kept trace lines (all of them, or the tail).
    pub trace: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Virtual time after which a run is declared hung.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs one seed on the calling thread and reports; never panics (a panic of the code under
/// test is reported as a failure).
pub fn run_seed(cfg: &RunConfig) -> Report {
    // openraft draws election timeouts from a thread-local generator (meta/store's runtime):
    // reset it so the draws depend on the seed only, not on earlier runs on this thread.
    bucketfs_meta_store::seed_thread_rng(cfg.seed ^ 0x5eed_0f0a_110e_1e00);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(&cfg.seed.to_le_bytes()))
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            return Report {
                seed: cfg.seed,
                failures: vec![format!("cannot build the runtime: {e}")],
                ..Report::default()
            };
        }
    };
    let trace = Trace::new(
        runtime.block_on(async { Instant::now() }),
        cfg.keep,
        cfg.echo,
    );
    panics::start_recording();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            // Every phase is bounded; this only catches a run that waits forever on something
            // unbounded (a hung shutdown, say). Virtual time makes the bound free.
            tokio::time::timeout(RUN_LIMIT, run(cfg, trace.clone()))
                .await
                .unwrap_or_else(|_| {
                    (
                        String::new(),
                        vec![format!(
                            "the run did not finish within {RUN_LIMIT:?} of virtual time"
                        )],
                    )
                })
        })
    }));
    // Dropping the runtime drops every task still parked (nodes, leftover handlers).
    drop(runtime);
    let panicked = panics::stop_recording();
    let (summary, mut failures) = match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            (String::new(), vec![format!("panic: {msg}")])
        }
    };
    // Panics inside spawned tasks (a node's Raft core, say) do not reach `block_on`: tokio
    // catches them and the node just stops. Each one is a bug of the code under test.
    failures.extend(
        panicked
            .into_iter()
            .map(|p| format!("a task panicked: {p}")),
    );
    Report {
        seed: cfg.seed,
        digest: trace.digest(),
        events: trace.events(),
        virtual_time: trace.last_event_at(),
        summary,
        failures,
        trace: trace.lines(),
    }
}

/// Records the panics of the current thread's run instead of printing them.
mod panics {
    use std::cell::RefCell;
    use std::sync::Once;

    thread_local! {
        static RECORDED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    static HOOK: Once = Once::new();

    pub fn start_recording() {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let recorded = RECORDED.with(|r| match r.try_borrow_mut() {
                    Ok(mut r) => match r.as_mut() {
                        Some(list) => {
                            list.push(info.to_string().replace('\n', " "));
                            true
                        }
                        None => false,
                    },
                    Err(_) => false,
                });
                if !recorded {
                    previous(info);
                }
            }));
        });
        RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    }

    pub fn stop_recording() -> Vec<String> {
        RECORDED.with(|r| r.borrow_mut().take().unwrap_or_default())
    }
}

async fn run(cfg: &RunConfig, trace: Trace) -> (String, Vec<String>) {
    let start = Instant::now();
    let root = Entropy::seeded(cfg.seed);
    let nodes: u64 = if root.chance(0.5) { 3 } else { 5 };
    let clients = 2 + root.below(3) as usize;
    let profile = Profile::draw(&root);
    let mut summary = format!("{nodes} nodes, {clients} clients, {profile:?}");
    trace.event(
        "sim",
        format_args!("seed {} bug {:?}: {summary}", cfg.seed, cfg.bug),
    );
    let mut failures = Vec::new();

    let net: Net<MetaNode> = Net::new(root.fork(), trace.clone());
    let observer = Observer::new(trace.clone());
    let mut cluster = match Cluster::start(
        nodes,
        net.clone(),
        observer.clone(),
        trace.clone(),
        start,
        cfg.bug == Some(Bug::LyingDisk),
        cfg.bug == Some(Bug::Amnesia),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return (summary, vec![format!("cluster did not start: {e}")]),
    };

    let history = History::new();
    let client_cfg = ClientConfig {
        nodes,
        rpc_timeout: Duration::from_secs(2),
        op_budget: Duration::from_secs(5),
        backoff: Duration::from_millis(100),
        think_max: Duration::from_millis(60),
        retry_with_new_seq: cfg.bug == Some(Bug::RetryWithNewSeq),
        stale_reads: cfg.bug == Some(Bug::StaleReads),
    };
    let mut workers: Vec<Client<MetaNode>> = (0..clients)
        .map(|i| {
            Client::new(
                i,
                client_cfg.clone(),
                net.clone(),
                root.fork(),
                history.clone(),
                trace.clone(),
                start,
            )
        })
        .collect();

    // Phase 1: the file system, before any fault.
    let fs = match workers[0].create_fs("simfs", Duration::from_secs(20)).await {
        Ok(fs) => fs,
        Err(e) => return (summary, vec![format!("setup: {e}")]),
    };
    let active_from = start.elapsed() + Duration::from_millis(200);
    let active_until = active_from + cfg.active;
    let plan = nemesis::plan(
        &root.fork(),
        profile,
        nodes,
        clients,
        active_from,
        active_until,
    );

    // Phase 2: clients and nemesis.
    let handles: Vec<_> = workers
        .drain(..)
        .map(|mut c| {
            tokio::spawn(async move {
                c.run(fs, start + active_until).await;
                c
            })
        })
        .collect();
    let aim = root.fork();
    let mut down: std::collections::VecDeque<u64> = Default::default();
    for step in plan {
        tokio::time::sleep_until(start + step.at).await;
        let leader = cluster.leader();
        match step.fault {
            Fault::Partition(ref groups) => {
                trace.event("nemesis", &step.fault);
                net.partition(groups);
            }
            Fault::IsolateLeader(ref with) => {
                let Some(l) = leader else {
                    trace.event("nemesis", "isolate the leader: no leader to isolate");
                    continue;
                };
                let mut alone = vec![l];
                alone.extend(with.iter().copied());
                let rest: Vec<u64> = cluster
                    .ids()
                    .into_iter()
                    .filter(|n| *n != l)
                    .chain((0..clients as u64).map(|c| crate::net::CLIENT_BASE + c))
                    .filter(|a| !alone.contains(a))
                    .collect();
                let groups = vec![alone, rest];
                trace.event("nemesis", Fault::Partition(groups.clone()));
                net.partition(&groups);
            }
            Fault::Heal => {
                trace.event("nemesis", &step.fault);
                net.heal();
            }
            Fault::Crash(victim) => {
                let up: Vec<u64> = cluster
                    .ids()
                    .into_iter()
                    .filter(|n| cluster.is_up(*n))
                    .collect();
                let wanted = match victim {
                    Victim::Leader => leader,
                    Victim::Node(n) => Some(n),
                };
                let target = match wanted {
                    Some(n) if up.contains(&n) => Some(n),
                    _ if up.is_empty() => None,
                    _ => Some(up[aim.below(up.len() as u64) as usize]),
                };
                trace.event(
                    "nemesis",
                    format_args!("{} -> n{}", step.fault, target.unwrap_or(0)),
                );
                if let Some(n) = target {
                    cluster.crash(n);
                    down.push_back(n);
                }
            }
            Fault::Restart | Fault::RestartAll => {
                trace.event("nemesis", &step.fault);
                let count = if step.fault == Fault::Restart {
                    1
                } else {
                    down.len()
                };
                for _ in 0..count {
                    let Some(n) = down.pop_front() else { break };
                    if let Err(e) = cluster.restart(n).await {
                        failures.push(e);
                    }
                }
            }
            Fault::Weather(c) => {
                trace.event("nemesis", &step.fault);
                net.set_conditions(c);
            }
            Fault::Skew(n, ms) => {
                trace.event("nemesis", &step.fault);
                cluster.skew(n, ms);
            }
        }
    }
    // Phase 3: clients finish what they have in flight.
    for h in handles {
        match h.await {
            Ok(c) => workers.push(c),
            Err(e) => failures.push(format!("client task failed: {e}")),
        }
    }
    if workers.is_empty() {
        return (summary, failures);
    }

    // Phase 4: recovery.
    let final_read = workers[0]
        .perform_within(fs, NsOp::ReadDir, Duration::from_secs(20))
        .await;
    if !matches!(final_read, Outcome::Ok(_)) {
        failures.push(format!(
            "no progress after the faults healed: the final read ended {final_read:?}"
        ));
    }
    if let Err(e) = converge(&cluster, Duration::from_secs(10)).await {
        failures.push(e);
    }

    // Phase 5: stop everything, then check.
    cluster.shutdown_all().await;
    let ops = history.ops();
    let (ok, unknown, failed) = ops.iter().fold((0, 0, 0), |(a, b, c), o| match o.outcome {
        Outcome::Ok(_) => (a + 1, b, c),
        Outcome::Failed(_) => (a, b, c + 1),
        _ => (a, b + 1, c),
    });
    let (sent, lost) = net.stats();
    summary.push_str(&format!(
        "; ops {ok} ok {unknown} unknown {failed} failed; {sent} messages, {lost} lost"
    ));

    failures.extend(election_safety::check(&observer));
    failures.extend(observer.violations());

    let disks: BTreeMap<u64, MemDisk> = cluster
        .ids()
        .into_iter()
        .filter_map(|id| cluster.disk(id).map(|d| (id, d)))
        .collect();
    let mut states = BTreeMap::new();
    let mut logs = BTreeMap::new();
    for (id, disk) in &disks {
        match read_disk(disk).await {
            Ok((applied, rows, log)) => {
                logs.insert(*id, (applied.map(|l| l.2), log));
                states.insert(*id, (applied, rows));
            }
            Err(e) => failures.push(format!("n{id}: reading its disk: {e}")),
        }
    }
    let tip = states.values().filter_map(|(a, _)| *a).max_by_key(|l| l.2);
    match tip.map(|t| observer.chain(t)) {
        None => failures.push("no node applied anything".into()),
        Some(Err(e)) => failures.push(e),
        Some(Ok(chain)) => {
            summary.push_str(&format!("; log {}", chain.len()));
            failures.extend(committed_durable::check(&chain, &observer.applied(), &logs));
            let nodes: BTreeMap<u64, NodeState> = states
                .into_iter()
                .map(|(id, (applied, rows))| {
                    (
                        id,
                        NodeState {
                            applied: applied.map(|l| l.2),
                            rows,
                        },
                    )
                })
                .collect();
            failures.extend(exactly_once::check(&chain, &nodes, &ops));
        }
    }
    match linearizable::check(&ops, NsState::default(), 2_000_000) {
        Verdict::Linearizable { explored, .. } => {
            summary.push_str(&format!("; linearizable ({explored} steps)"));
        }
        Verdict::Violation(report) => failures.push(report),
        Verdict::Inconclusive { explored } => failures.push(format!(
            "linearizability check inconclusive after {explored} steps (shrink the workload)"
        )),
    }
    for f in &failures {
        trace.event(
            "checker",
            format_args!("FAIL {}", f.lines().next().unwrap_or("")),
        );
    }
    trace.event("sim", format_args!("done: {summary}"));
    (summary, failures)
}

/// Waits until every node is up, one leader is known, and all nodes applied the same entry.
async fn converge(cluster: &Cluster, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let views: Vec<(u64, Option<Lid>, Option<u64>)> = cluster
            .ids()
            .into_iter()
            .map(|id| match cluster.metrics(id) {
                Some(m) => (id, m.last_applied.as_ref().map(lid), m.current_leader),
                None => (id, None, None),
            })
            .collect();
        let applied_same = views.windows(2).all(|w| w[0].1 == w[1].1) && views[0].1.is_some();
        let leader_same = views.windows(2).all(|w| w[0].2 == w[1].2) && views[0].2.is_some();
        if applied_same && leader_same {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "replicas did not converge within {within:?} after healing: (node, applied, leader) = {views:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type DiskView = (Option<Lid>, Vec<bucketfs_meta_store::Row>, Vec<Lid>);

/// What a stopped node left on its disk: applied log id, state rows, and log ids.
async fn read_disk(disk: &MemDisk) -> Result<DiskView, String> {
    let (mut log, sm) = disk.open();
    let (applied, _) = sm
        .reader()
        .applied_state()
        .await
        .map_err(|e| e.to_string())?;
    let rows = MemStateBackend::new(disk)
        .export()
        .map_err(|e| e.to_string())?;
    let state = log.get_log_state().await.map_err(|e| e.to_string())?;
    let first = state
        .last_purged_log_id
        .as_ref()
        .map_or(0, |l| l.index() + 1);
    let last = state.last_log_id.as_ref().map_or(0, LogId::index);
    let entries = if state.last_log_id.is_some() && first <= last {
        log.try_get_log_entries(first..=last)
            .await
            .map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    Ok((
        applied.as_ref().map(lid),
        rows,
        entries.iter().map(|e| lid(&e.log_id)).collect(),
    ))
}
