//! `cargo xtask ci` is the one test command of the project: the README names it and `.ci/run`
//! calls it. It runs, in order, the formatting check, the kernel-client guest build, the
//! build, clippy with warnings denied, the simulator's 200-seed sweep, and every test of the
//! workspace through nextest (unit, storage conformance, in-process and multi-process
//! clusters, simulator smoke tests, the real Linux NFS client in a qemu guest). It stops at
//! the first failing step.
//!
//! The S3 tests need moto's server mode (PyPI). Unless `BUCKETFS_MOTO_SERVER` already names a
//! `moto_server`, the first step makes sure one exists in a virtual environment outside the
//! clone (`BUCKETFS_VENV`, default `~/.cache/bucketfs/venv`) and points the tests at it.
//!
//! The kernel-client tests (meta/bin/tests/kernel_client.rs, failover.rs) boot a guest from
//! artifacts that `jepsen/guest/build-guest.sh` makes (a Debian kernel, qemu, an initramfs,
//! fsx and pjdfstest; idempotent, ~1 s when nothing changed, ~3 min cold). They live outside
//! the clone in `HARNESS_OUT` (default `/var/cache/bucketfs/guest`), which the guest scripts
//! and the tests read too; xtask sets it for every step so all of them agree.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Where the guest's artifacts live: the variable and default of jepsen/guest/*.sh.
const HARNESS_OUT_ENV: &str = "HARNESS_OUT";
const DEFAULT_HARNESS_OUT: &str = "/var/cache/bucketfs/guest";

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
    let guest_out = std::env::var_os(HARNESS_OUT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HARNESS_OUT));
    eprintln!(
        "xtask: kernel-client guest artifacts in {}",
        guest_out.display()
    );
    set_env(HARNESS_OUT_ENV, &guest_out);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root");
    let build_guest = root.join("jepsen/guest/build-guest.sh");
    let steps: [(&str, Step); 6] = [
        ("format", Step::Cargo(&["fmt", "--all", "--check"])),
        // Before the long build, so a machine that cannot fetch the guest fails early.
        ("guest", Step::Program(&build_guest)),
        (
            "build",
            Step::Cargo(&["build", "--workspace", "--all-targets"]),
        ),
        ("clippy", Step::Cargo(&CLIPPY)),
        // 200 seeds of the deterministic simulator; every fifth one runs twice to check that
        // it replays to the same trace digest.
        ("simulator", Step::Cargo(&SIMULATOR)),
        // Last, so that its summary is the closing line of the run.
        ("tests", Step::Cargo(&TESTS)),
    ];
    #[allow(clippy::disallowed_methods)] // wall time of the CI run, reported to a human
    let run_started = Instant::now();
    for (name, step) in steps {
        #[allow(clippy::disallowed_methods)] // wall time of a CI step, reported to a human
        let started = Instant::now();
        let (mut cmd, shown) = match step {
            Step::Cargo(args) => {
                let mut cmd = Command::new(env!("CARGO"));
                cmd.args(args);
                (cmd, format!("cargo {}", args.join(" ")))
            }
            Step::Program(path) => (Command::new(path), path.display().to_string()),
        };
        eprintln!("xtask: {name}: {shown}");
        let status = cmd.status();
        let secs = started.elapsed().as_secs();
        match status {
            Ok(s) if s.success() => eprintln!("xtask: {name} ok ({secs}s)"),
            Ok(s) => {
                eprintln!("xtask: {name} FAILED ({secs}s, {s})");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("xtask: {name} could not start {shown}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("xtask: ci ok ({}s)", run_started.elapsed().as_secs());
    ExitCode::SUCCESS
}

/// One CI step: a cargo command, or a program of the repository.
enum Step<'a> {
    Cargo(&'a [&'a str]),
    Program(&'a Path),
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

fn set_env(key: &str, value: &Path) {
    // SAFETY: called from `ci()` before any thread is spawned; the only readers are the
    // child processes, which get a copy of the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(key, value);
    }
}
