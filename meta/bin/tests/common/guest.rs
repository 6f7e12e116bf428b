//! The real Linux NFS client in a qemu guest (jepsen/guest), driven from tests.
//!
//! The guest's artifacts (kernel, initramfs, qemu, fsx, pjdfstest) live outside the clone in
//! `$HARNESS_OUT` (default `/var/cache/bucketfs/guest`), the directory the guest scripts and
//! `cargo xtask ci` use too; `jepsen/guest/build-guest.sh` makes them. A test that needs them
//! and does not find them fails with one sentence naming that command: it never skips.
//!
//! Included by the test binaries that boot guests with `#[path = "common/guest.rs"] mod guest;`.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_bucketfs");

/// The variable naming the artifact directory, shared with the guest scripts and xtask.
pub const HARNESS_OUT_ENV: &str = "HARNESS_OUT";
pub const DEFAULT_HARNESS_OUT: &str = "/var/cache/bucketfs/guest";

pub fn harness_out() -> PathBuf {
    std::env::var_os(HARNESS_OUT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HARNESS_OUT))
}

/// `jepsen/guest` of this checkout.
pub fn guest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../jepsen/guest")
        .canonicalize()
        .expect("jepsen/guest next to meta/bin")
}

/// The artifact directory, or a panic with one sentence saying how to build it.
pub fn require_artifacts() -> PathBuf {
    let out = harness_out();
    let need = [
        "vmlinuz",
        "initrd.cpio.gz",
        "bin/qemu",
        "bin/busybox",
        "cargo/bin/fsx",
        "cargo/bin/pjdfstest",
    ];
    let missing: Vec<&str> = need
        .iter()
        .copied()
        .filter(|p| !out.join(p).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "the kernel-client guest is not built ({} missing in {}): run jepsen/guest/build-guest.sh \
         (cargo xtask ci runs it; {HARNESS_OUT_ENV} chooses another directory)",
        missing.join(", "),
        out.display()
    );
    out
}

/// A fresh, kept directory for one test's guest logs: `$HARNESS_OUT/runs/<name>-<time>-<pid>`.
/// Kept after the test so a CI failure can be read afterwards.
pub fn runs_dir(name: &str) -> PathBuf {
    use bucketfs_runtime::Clock;
    let secs = bucketfs_runtime::SystemClock.wall_nanos() / 1_000_000_000;
    let dir = harness_out()
        .join("runs")
        .join(format!("{name}-{secs}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("runs dir");
    dir
}

/// Builds guest-tools (jepsen/guest-tools) into the target directory of this test binary with
/// its profile, and returns its path. Up to date in CI (the workspace build made it) and fast
/// otherwise: it depends only on `nix`.
pub fn guest_tools() -> PathBuf {
    let profile_dir = Path::new(BIN).parent().expect("bin dir");
    let target_dir = profile_dir.parent().expect("target dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "bucketfs-guest-tools"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .expect("run cargo build -p bucketfs-guest-tools");
    assert!(
        status.success(),
        "cargo build -p bucketfs-guest-tools failed"
    );
    let bin = profile_dir.join("guest-tools");
    assert!(bin.is_file(), "no {} after the build", bin.display());
    bin
}

/// A child process whose stdout and stderr go to `log` and, line by line, to this test's
/// output with `prefix`. Dropping it kills it and every process below it.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
    started: Instant,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command, log: &Path, prefix: &str) -> Proc {
        let (read, write) = std::io::pipe().expect("pipe");
        let write2 = write.try_clone().expect("pipe");
        cmd.stdin(Stdio::null()).stdout(write).stderr(write2);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        drop(cmd); // our copies of the pipe's write end, so EOF comes when the child exits
        let mut file = std::fs::File::create(log).expect("log file");
        let prefix = prefix.to_owned();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(read).lines() {
                let Ok(line) = line else { break };
                println!("{prefix}{line}");
                let _ = writeln!(file, "{line}");
            }
        });
        Proc {
            child: Some(child),
            log: log.to_owned(),
            started: Instant::now(),
            reader: Some(reader),
        }
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still running then.
    pub async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut().expect("a running child");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// SIGKILL to the child and everything below it (run-guest.sh runs qemu under
    /// `timeout`; qemu runs one fwd.py per connection), each by its own pid. Never a process
    /// group: procps-ng 4.0.2's `kill -KILL -PGID` signals every process of the machine.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let below = descendants(child.id());
            let _ = child.kill();
            for pid in below {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = child.wait();
        }
    }
}

/// Every process below `root` (children first found, grandchildren after), from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parens.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out: Vec<u32> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parent_of {
            if ppid == p && pid != root && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One guest boot running `script` (a file of jepsen/guest/tests) against 127.0.0.1:`port`:
/// console in `dir/console.log`, the script's $RESULTS in `dir/results/`.
pub struct Guest {
    pub proc: Proc,
    pub dir: PathBuf,
}

pub struct GuestOptions<'a> {
    /// `K=V` pairs exported to the script in the guest (values without spaces).
    pub env: Vec<String>,
    /// Host binaries copied into the guest's PATH.
    pub extra: Vec<PathBuf>,
    /// Extra mount options (`lookupcache=positive`, ...).
    pub mount_opts: &'a str,
    /// Bound of the whole VM run (HARNESS_TIMEOUT).
    pub timeout: Duration,
}

impl Guest {
    pub fn start(port: u16, script: &str, dir: &Path, opts: GuestOptions<'_>) -> Guest {
        std::fs::create_dir_all(dir).expect("guest dir");
        let gdir = guest_dir();
        let mut cmd = Command::new(gdir.join("run-guest.sh"));
        cmd.arg(port.to_string())
            .arg(gdir.join("tests").join(script))
            .env(HARNESS_OUT_ENV, harness_out())
            .env("RESULTS_DIR", dir)
            .env("HARNESS_QUIET", "1")
            .env("HARNESS_TIMEOUT", opts.timeout.as_secs().to_string())
            .env("HARNESS_ENV", opts.env.join(" "))
            .env(
                "HARNESS_EXTRA",
                opts.extra
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .env("MOUNT_OPTS", opts.mount_opts);
        let proc = Proc::spawn(cmd, &dir.join("run-guest.log"), &format!("[{script}] "));
        Guest {
            proc,
            dir: dir.to_owned(),
        }
    }

    pub fn console(&self) -> String {
        let bytes = std::fs::read(self.dir.join("console.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The console's lines that start with `prefix`.
    pub fn lines_with(&self, prefix: &str) -> Vec<String> {
        self.console()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the console has a line starting with `prefix` and returns the first; `None`
    /// after `limit` or when the guest exited without printing one.
    pub async fn wait_line(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self.lines_with(prefix).into_iter().next() {
                return Some(l);
            }
            if Instant::now() >= deadline || self.proc.wait(Duration::ZERO).await.is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the guest to power off; its exit status is the script's (run-guest.sh).
    pub async fn finish(&mut self, limit: Duration) -> Option<i32> {
        self.proc.wait(limit).await.map(|s| s.code().unwrap_or(-1))
    }

    pub fn results(&self) -> PathBuf {
        self.dir.join("results")
    }

    /// The last `n` lines of the console, for failure messages.
    pub fn console_tail(&self, n: usize) -> String {
        tail(&self.console(), n)
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// sha256 of `data` in hex, by the host's `sha256sum` (the guest uses busybox's).
pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("sha256sum output");
    writer
        .join()
        .expect("writer thread")
        .expect("write to sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `line`, cut to `max` bytes (pjdfstest's paths make log lines of kilobytes).
pub fn clip(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}
