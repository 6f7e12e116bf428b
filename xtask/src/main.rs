//! `cargo xtask ci` is the one test command of the project: the README names it and `.ci/run`
//! calls it. It runs, in order, the formatting check, the build, clippy with warnings denied,
//! the simulator's 200-seed sweep, and every test of the workspace through nextest (unit,
//! storage conformance, in-process and multi-process clusters, simulator smoke tests). It
//! stops at the first failing step.

use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        _ => {
            eprintln!("usage: cargo xtask ci");
            ExitCode::from(2)
        }
    }
}

const CLIPPY: [&str; 6] = [
    "clippy",
    "--workspace",
    "--all-targets",
    "--",
    "-D",
    "warnings",
];
const SIMULATOR: [&str; 7] = [
    "run",
    "--quiet",
    "-p",
    "bucketfs-sim",
    "--",
    "--seeds",
    "200",
];
const TESTS: [&str; 6] = [
    "nextest",
    "run",
    "--workspace",
    "--profile",
    "ci",
    "--no-tests=fail",
];

fn ci() -> ExitCode {
    let steps: [(&str, &[&str]); 5] = [
        ("format", &["fmt", "--all", "--check"]),
        ("build", &["build", "--workspace", "--all-targets"]),
        ("clippy", &CLIPPY),
        // 200 seeds of the deterministic simulator; every fifth one runs twice to check that
        // it replays to the same trace digest.
        ("simulator", &SIMULATOR),
        // Last, so that its summary is the closing line of the run.
        ("tests", &TESTS),
    ];
    for (name, args) in steps {
        #[allow(clippy::disallowed_methods)] // wall time of a CI step, reported to a human
        let started = Instant::now();
        eprintln!("xtask: {name}: cargo {}", args.join(" "));
        let status = Command::new(env!("CARGO")).args(args).status();
        let secs = started.elapsed().as_secs();
        match status {
            Ok(s) if s.success() => eprintln!("xtask: {name} ok ({secs}s)"),
            Ok(s) => {
                eprintln!("xtask: {name} FAILED ({secs}s, {s})");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("xtask: {name} could not start cargo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
