//! `cargo xtask ci` is the one test command of the project: the README names it and `.ci/run`
//! calls it. It runs, in order, the formatting check, the build, clippy with warnings denied,
//! the simulator's 200-seed sweep, and every test of the workspace through nextest (unit,
//! storage conformance, in-process and multi-process clusters, simulator smoke tests). It
//! stops at the first failing step.
//!
//! The S3 tests need moto's server mode (PyPI). Unless `BUCKETFS_MOTO_SERVER` already names a
//! `moto_server`, the first step makes sure one exists in a virtual environment outside the
//! clone (`BUCKETFS_VENV`, default `~/.cache/bucketfs/venv`) and points the tests at it.

use std::path::PathBuf;
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
    match ensure_moto() {
        Ok(path) => {
            eprintln!("xtask: S3 tests use {}", path.display());
            // Single-threaded at this point, so changing the environment is sound.
            set_env("BUCKETFS_MOTO_SERVER", &path);
        }
        Err(e) => {
            eprintln!("xtask: moto: {e}");
            return ExitCode::FAILURE;
        }
    }
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

/// A `moto_server` to test against: the one named by `BUCKETFS_MOTO_SERVER`, or one installed
/// (once) into the virtual environment at `BUCKETFS_VENV`.
fn ensure_moto() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("BUCKETFS_MOTO_SERVER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "BUCKETFS_MOTO_SERVER={} does not exist; unset it to let xtask install moto",
                path.display()
            ))
        };
    }
    let venv = match std::env::var_os("BUCKETFS_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            let home = std::env::var_os("HOME").ok_or("HOME is not set; set BUCKETFS_VENV")?;
            PathBuf::from(home).join(".cache/bucketfs/venv")
        }
    };
    let server = venv.join("bin/moto_server");
    if server.is_file() {
        return Ok(server);
    }
    eprintln!("xtask: installing moto[server] into {}", venv.display());
    let run = |program: &str, args: &[&str]| -> Result<(), String> {
        let status = Command::new(program)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{program} {} failed ({status})", args.join(" ")))
        }
    };
    let venv_str = venv.to_string_lossy().into_owned();
    run("python3", &["-m", "venv", &venv_str])
        .map_err(|e| format!("{e}; install python3 and python3-venv"))?;
    let pip = venv.join("bin/pip").to_string_lossy().into_owned();
    run(&pip, &["install", "--quiet", "moto[server]"])?;
    if server.is_file() {
        Ok(server)
    } else {
        Err(format!(
            "pip installed moto but {} is missing",
            server.display()
        ))
    }
}

fn set_env(key: &str, value: &std::path::Path) {
    // SAFETY: called from `ci()` before any thread is spawned; the only readers are the
    // child processes, which get a copy of the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(key, value);
    }
}
