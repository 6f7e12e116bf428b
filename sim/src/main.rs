//! `bucketfs-sim`: runs seeds of the deterministic simulation.
//!
//! * `--seeds N [--first S]`: seeds S..S+N, quietly; one line per failing seed with the
//!   command that replays it, and a summary. Every `--determinism-every`-th seed (and every
//!   failing seed) runs twice and must give the same trace digest.
//! * `--reproduce SEED`: one seed with the full trace printed, run twice to check the digest.
//!
//! Exit status 1 when any seed fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_runtime::{Clock, SystemClock};
use bucketfs_sim::run::{Bug, Report, RunConfig, run_seed};
use bucketfs_sim::trace::Keep;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "bucketfs-sim",
    about = "Deterministic simulation of the bucketfs metadata cluster"
)]
struct Args {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// First seed of the sweep.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Run this one seed with its full trace, twice, and compare digests.
    #[arg(long)]
    reproduce: Option<u64>,
    /// In a sweep, run every K-th seed twice and compare trace digests (1 = every seed,
    /// 0 = never). Failing seeds are always re-run.
    #[arg(long, default_value_t = 5)]
    determinism_every: u64,
    /// Inject a deliberate bug to check that the checkers catch it: retry-with-new-seq,
    /// stale-reads or lying-disk.
    #[arg(long)]
    bug: Option<String>,
    /// Virtual seconds of the faulty phase of each run.
    #[arg(long, default_value_t = 6)]
    active_secs: u64,
    /// Worker threads for a sweep (each runs whole seeds; results do not depend on it).
    #[arg(long)]
    jobs: Option<usize>,
    /// One line per seed, passing or not.
    #[arg(long, short)]
    verbose: bool,
}

// Runs are deep async state machines (openraft's core in a debug build); give their threads
// room.
const STACK: usize = 64 << 20;

fn main() {
    let args = Args::parse();
    let bug = match args.bug.as_deref().map(|b| (b, Bug::parse(b))) {
        None => None,
        Some((_, Some(b))) => Some(b),
        Some((name, None)) => {
            let known: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            eprintln!("unknown --bug {name:?}; known: {}", known.join(", "));
            std::process::exit(2);
        }
    };
    let code = match args.reproduce {
        Some(seed) => reproduce(seed, bug, &args),
        None => sweep(bug, &args),
    };
    std::process::exit(code);
}

fn config(seed: u64, bug: Option<Bug>, args: &Args) -> RunConfig {
    RunConfig {
        bug,
        active: Duration::from_secs(args.active_secs),
        ..RunConfig::new(seed)
    }
}

fn replay_command(seed: u64, bug: Option<Bug>, args: &Args) -> String {
    let mut cmd = format!("cargo run -p bucketfs-sim -- --reproduce {seed}");
    if let Some(b) = bug {
        cmd.push_str(&format!(" --bug {}", b.name()));
    }
    if args.active_secs != 6 {
        cmd.push_str(&format!(" --active-secs {}", args.active_secs));
    }
    cmd
}

fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("spawning a simulation thread")
        .join()
        .expect("the simulation thread does not panic: run_seed catches panics")
}

fn reproduce(seed: u64, bug: Option<Bug>, args: &Args) -> i32 {
    let cfg = RunConfig {
        keep: Keep::All,
        ..config(seed, bug, args)
    };
    let first = {
        let cfg = cfg.clone();
        on_big_stack(move || run_seed(&cfg))
    };
    for line in &first.trace {
        println!("{line}");
    }
    let second = {
        let cfg = cfg.clone();
        on_big_stack(move || run_seed(&cfg))
    };
    println!();
    println!("seed {seed}: {}", first.summary);
    println!(
        "digest {:016x} ({} events, {:.1}s virtual)",
        first.digest,
        first.events,
        first.virtual_time.as_secs_f64()
    );
    let mut failed = !first.passed();
    for f in &first.failures {
        println!("FAILURE: {f}");
    }
    if second.digest != first.digest {
        println!(
            "FAILURE: nondeterministic: a second run gave digest {:016x}",
            second.digest
        );
        failed = true;
    } else {
        println!("deterministic: the second run gave the same digest");
    }
    if failed {
        println!("REPRODUCE WITH: {}", replay_command(seed, bug, args));
        1
    } else {
        0
    }
}

struct Outcome {
    report: Report,
    /// Digest of the second run, when the seed was run twice.
    rerun: Option<u64>,
    seconds: f64,
}

/// Real time taken by `f` (outside any run, the system clock is the right one).
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let clock = SystemClock;
    let t = clock.now();
    let r = f();
    (r, clock.now().duration_since(t).as_secs_f64())
}

fn sweep(bug: Option<Bug>, args: &Args) -> i32 {
    let seeds: Vec<u64> = (args.first..args.first.saturating_add(args.seeds)).collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, seeds.len().max(1));
    let next = Arc::new(AtomicU64::new(0));
    let results: Arc<Mutex<Vec<(u64, Outcome)>>> = Arc::new(Mutex::new(Vec::new()));
    let (outcomes, wall) = timed(|| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                let next = next.clone();
                let results = results.clone();
                let seeds = seeds.clone();
                let every = args.determinism_every;
                let cfgs: Vec<RunConfig> = seeds.iter().map(|s| config(*s, bug, args)).collect();
                let verbose = args.verbose;
                std::thread::Builder::new()
                    .stack_size(STACK)
                    .spawn(move || {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                            let Some(cfg) = cfgs.get(i) else { break };
                            let (report, seconds) = timed(|| run_seed(cfg));
                            let twice = !report.passed() || (every > 0 && cfg.seed % every == 0);
                            let rerun = twice.then(|| run_seed(cfg).digest);
                            if verbose {
                                println!(
                                    "seed {:>5} {} {:016x} {:5.1}s real  {}",
                                    cfg.seed,
                                    if report.passed() { "ok  " } else { "FAIL" },
                                    report.digest,
                                    seconds,
                                    report.summary
                                );
                            }
                            let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                            r.push((
                                cfg.seed,
                                Outcome {
                                    report,
                                    rerun,
                                    seconds,
                                },
                            ));
                        }
                    })
                    .expect("spawning a simulation thread")
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        let mut r = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
        r.sort_by_key(|(s, _)| *s);
        r
    });

    let mut failed = 0;
    let mut checked = 0;
    let mut slowest = (0, 0.0);
    for (seed, o) in &outcomes {
        if o.seconds > slowest.1 {
            slowest = (*seed, o.seconds);
        }
        let mut problems = o.report.failures.clone();
        if let Some(d) = o.rerun {
            checked += 1;
            if d != o.report.digest {
                problems.push(format!(
                    "nondeterministic: digests {:016x} and {d:016x}",
                    o.report.digest
                ));
            }
        }
        if problems.is_empty() {
            continue;
        }
        failed += 1;
        println!("seed {seed} FAILED ({})", o.report.summary);
        for p in &problems {
            for line in p.lines() {
                println!("    {line}");
            }
        }
        if !o.report.trace.is_empty() {
            println!("  last trace lines:");
            for line in &o.report.trace {
                println!("    {line}");
            }
        }
        println!("REPRODUCE WITH: {}", replay_command(*seed, bug, args));
    }
    println!(
        "{} passed, {failed} failed ({checked} checked for determinism; {wall:.1}s on {jobs} threads, slowest seed {} {:.1}s)",
        outcomes.len() - failed,
        slowest.0,
        slowest.1
    );
    i32::from(failed > 0)
}
