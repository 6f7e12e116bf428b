//! The real Linux NFS client against a whole deployment, and the bucket checked afterwards.
//!
//! One test: moto (S3, a fresh versioned bucket), a 3-node metadata cluster and one gateway,
//! all real processes; `jepsen/guest/run-suites.sh` boots a Debian kernel under qemu once per
//! suite and runs smoke (POSIX checks, leaves a tree and its manifest), fsx (2 seeds × 5,000
//! operations, final files kept) and pjdfstest (POSIX conformance) on the mount. Then, through
//! the S3 API only, every file system object the guest reported must be in the bucket as the
//! object S3 Files would have: same key, same bytes, the POSIX attributes in user metadata,
//! and nothing else left behind.
//!
//! Needs the guest's artifacts (`jepsen/guest/build-guest.sh`; `cargo xtask ci` runs it) and
//! fails with one sentence naming that command if they are missing. About 8 minutes on two
//! cores; logs stay in `$HARNESS_OUT/runs/kernel-client-*`.

mod common;
#[path = "common/guest.rs"]
mod guest;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bucketfs_object_store::ObjectMeta;
use bucketfs_telemetry::metrics::names;
use common::system::System;
use tokio::time::Instant;

/// The one allow-list of pjdfstest failures (name TAB reason), shared with run-suites.sh.
const ALLOWED_FAILURES: &str = include_str!("../../../jepsen/guest/pjdfstest-allowed.tsv");
const FSX_SEEDS: &str = "1,2";
const FSX_OPS: u64 = 5_000;
/// Bound of one guest boot (one suite). fsx is the longest: ~4 min on two idle cores.
const SUITE_TIMEOUT: Duration = Duration::from_secs(1800);
/// Bound of the three suites together; nextest's timeout for this test is longer.
const SUITES_TIMEOUT: Duration = Duration::from_secs(2700);

fn allowed_failures() -> Vec<(String, String)> {
    ALLOWED_FAILURES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, reason) = l.split_once('\t').unwrap_or((l, ""));
            (name.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kernel_client_suites_then_the_bucket_holds_every_object() {
    let started = Instant::now();
    let out = guest::require_artifacts();
    let tools = guest::guest_tools();
    let allowed = allowed_failures();
    assert!(!allowed.is_empty(), "pjdfstest-allowed.tsv has no entries");
    for (name, reason) in &allowed {
        assert!(
            !reason.is_empty(),
            "pjdfstest-allowed.tsv: {name} has no reason"
        );
        println!("allowed pjdfstest failure {name}: {reason}");
    }

    let mut sys = System::start(3).await;
    let gw = sys.start_gateway(&[]).await;
    let port: u16 = sys
        .gateway_addr(gw)
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let runs = guest::runs_dir("kernel-client");
    println!(
        "gateway on {}, meta {}, bucket {}; guest logs in {}",
        sys.gateway_addr(gw),
        sys.meta_addrs(),
        sys.bucket,
        runs.display()
    );

    let names_csv = allowed
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new(guest::guest_dir().join("run-suites.sh"));
    cmd.arg(port.to_string())
        .env(guest::HARNESS_OUT_ENV, &out)
        .env("RUNS_DIR", &runs)
        .env("NO_BUILD", "1")
        .env("GUEST_TOOLS", &tools)
        .env("SUITES", "smoke fsx pjdfstest")
        .env("SMOKE_MANY", "1000")
        .env("FSX_SEEDS", FSX_SEEDS)
        .env("FSX_OPS", FSX_OPS.to_string())
        .env("FSX_KEEP", "1")
        .env("PJD_ALLOWED_FAILURES", &names_csv)
        .env("HARNESS_TIMEOUT", SUITE_TIMEOUT.as_secs().to_string())
        .env_remove("PJD_PATTERNS");
    let suites_started = Instant::now();
    let mut suites = guest::Proc::spawn(cmd, &runs.join("run-suites.log"), "");
    let status = suites.wait(SUITES_TIMEOUT).await;
    let suites_secs = suites_started.elapsed().as_secs();
    let mut problems: Vec<String> = Vec::new();
    match status {
        Some(s) if s.success() => {}
        Some(s) => problems.push(format!("run-suites.sh exited with {s}")),
        None => {
            suites.kill();
            problems.push(format!(
                "run-suites.sh still running after {}s; killed",
                SUITES_TIMEOUT.as_secs()
            ));
        }
    }

    // ---------------------------------------------------------------- suite results
    let summary = std::fs::read_to_string(runs.join("summary.txt")).unwrap_or_default();
    let suite_line = |name: &str| {
        summary
            .lines()
            .find(|l| {
                l.starts_with(&format!("PASS {name} ")) || l.starts_with(&format!("FAIL {name}"))
            })
            .unwrap_or("")
            .to_owned()
    };
    let console = |name: &str| {
        String::from_utf8_lossy(
            &std::fs::read(runs.join(name).join("console.log")).unwrap_or_default(),
        )
        .into_owned()
    };
    for name in ["smoke", "fsx", "pjdfstest"] {
        let line = suite_line(name);
        if !line.starts_with("PASS") {
            let text = console(name);
            let fails: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("FAIL"))
                .take(20)
                .collect::<Vec<_>>();
            problems.push(format!(
                "suite {name}: {}\n      {}",
                if line.is_empty() {
                    "did not run"
                } else {
                    &line
                },
                fails.join("\n      ")
            ));
        }
    }
    let smoke_console = console("smoke");
    let smoke_counts = smoke_console
        .lines()
        .rfind(|l| l.starts_with("smoke: "))
        .unwrap_or("smoke: no summary")
        .to_owned();
    let fsx_console = console("fsx");
    let fsx_passed: Vec<&str> = fsx_console
        .lines()
        .filter(|l| l.starts_with("PASS fsx seed="))
        .collect();
    let fsx_ops: u64 = fsx_passed
        .iter()
        .filter_map(|l| {
            l.split("ops=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    if fsx_ops < 10_000 {
        problems.push(format!(
            "fsx completed {fsx_ops} operations A-OK, fewer than 10,000 ({} seeds passed)",
            fsx_passed.len()
        ));
    }
    let pjd = pjdfstest_counts(
        &runs.join("pjdfstest/results/pjdfstest-results.tsv"),
        &allowed,
    );
    problems.extend(pjd.problems.iter().cloned());

    println!(
        "\n==== kernel client suites against the gateway (3 meta nodes, moto), {suites_secs}s"
    );
    println!("  {:<10} {}", "smoke", suite_line("smoke"));
    println!("  {:<10}   {smoke_counts}", "");
    println!("  {:<10} {}", "fsx", suite_line("fsx"));
    println!(
        "  {:<10}   {} seeds passed, {fsx_ops} operations A-OK",
        "",
        fsx_passed.len()
    );
    println!("  {:<10} {}", "pjdfstest", suite_line("pjdfstest"));
    println!(
        "  {:<10}   {} passed, {} failed, {} allowed, {} skipped",
        "", pjd.total.pass, pjd.total.fail, pjd.total.allowed, pjd.total.skip
    );
    println!("  pjdfstest per group:          passed  failed allowed skipped");
    for (group, c) in &pjd.groups {
        println!(
            "    {group:<28} {:>6} {:>7} {:>7} {:>7}",
            c.pass, c.fail, c.allowed, c.skip
        );
    }

    // ---------------------------------------------------------------- the bucket
    let objects: BTreeMap<String, ObjectMeta> = sys
        .objects("")
        .await
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let manifest_path = runs.join("smoke/results/manifest.tsv");
    match std::fs::read_to_string(&manifest_path) {
        Ok(text) => {
            let checked = check_manifest(&sys, &text, &objects, &mut expected, &mut problems).await;
            println!("  bucket: {checked} smoke manifest entries checked against their objects");
        }
        Err(e) => problems.push(format!(
            "no smoke manifest at {}: {e}",
            manifest_path.display()
        )),
    }
    match std::fs::read_to_string(runs.join("fsx/results/fsx-final.tsv")) {
        Ok(text) => {
            let n = check_fsx_files(&sys, &text, &objects, &mut expected, &mut problems).await;
            if n == 0 {
                problems.push("fsx-final.tsv lists no final file".into());
            }
            println!("  bucket: {n} fsx final files checked against their objects");
        }
        Err(e) => problems.push(format!("no fsx-final.tsv from the fsx suite: {e}")),
    }
    // Everything else was removed in the guest (smoke's scratch files, pjdfstest's tree): no
    // object may be left of it.
    let stray: Vec<String> = objects
        .keys()
        .filter(|k| !expected.contains(*k))
        .cloned()
        .collect();
    if !stray.is_empty() {
        problems.push(format!(
            "{} objects in the bucket that no file in the guest accounts for (deleted or moved \
             files whose objects stayed): {}",
            stray.len(),
            stray
                .iter()
                .take(30)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    println!(
        "  bucket: {} objects, {} accounted for",
        objects.len(),
        objects.len() - stray.len()
    );

    // The gateway may give up on exporting an object only where S3 cannot hold it: pjdfstest
    // builds paths up to PATH_MAX (4,096 bytes), S3 keys end at 1,024 (S3FILES_SPEC.md §2.2).
    let metrics = sys.gateway_metrics(gw).await;
    let export_failures = metric_sum(&metrics, names::GATEWAY_EXPORT_FAILURES_TOTAL);
    let log = std::fs::read_to_string(sys.gateway_log_path(gw)).unwrap_or_default();
    let export_warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("bucketfs_gateway::export"))
        .collect();
    let too_long = export_warnings
        .iter()
        .filter(|l| l.contains("path too long for an S3 key"))
        .count();
    let other_warnings: Vec<String> = export_warnings
        .iter()
        .filter(|l| !l.contains("path too long for an S3 key"))
        .map(|l| guest::clip(l, 400))
        .collect();
    if !other_warnings.is_empty() || export_failures > too_long as f64 {
        problems.push(format!(
            "the gateway gave up on {export_failures} S3 exports ({}), {too_long} of them for \
             paths too long to be S3 keys; the others:\n      {}",
            metrics
                .lines()
                .filter(|l| l.starts_with(names::GATEWAY_EXPORT_FAILURES_TOTAL))
                .collect::<Vec<_>>()
                .join("; "),
            other_warnings.join("\n      ")
        ));
    }
    println!(
        "  gateway: {export_failures} exports given up ({}); {too_long} \"path too long for an \
         S3 key\" warnings (pjdfstest's PATH_MAX cases); {} other export warnings",
        names::GATEWAY_EXPORT_FAILURES_TOTAL,
        other_warnings.len()
    );
    // Every operation the gateway did not answer OK, by operation and status: most are the
    // suites' deliberate errors (ENOENT, EEXIST, EACCES, ...).
    let mut not_ok: Vec<(String, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(names::GATEWAY_NFS_OPS_TOTAL) && !l.contains("status=\"Ok\""))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            let labels = labels.split_once('{')?.1.trim_end_matches('}');
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect();
    not_ok.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("  gateway: operations not answered OK (the suites' expected errors among them):");
    for (labels, n) in &not_ok {
        println!("    {n:>7} {labels}");
    }
    println!(
        "  gateway: {} NFS compounds; whole test {}s; logs in {}",
        metric_sum(&metrics, names::GATEWAY_NFS_COMPOUNDS_TOTAL),
        started.elapsed().as_secs(),
        runs.display()
    );

    assert!(
        problems.is_empty(),
        "{} problems:\n  - {}\ngateway log (tail):\n{}\nguest logs: {}",
        problems.len(),
        problems.join("\n  - "),
        sys.gateway_log(gw)
            .lines()
            .map(|l| guest::clip(l, 400))
            .collect::<Vec<_>>()
            .join("\n"),
        runs.display()
    );
}

// -------------------------------------------------------------------- pjdfstest

#[derive(Default, Clone, Copy)]
struct Counts {
    pass: u32,
    fail: u32,
    allowed: u32,
    skip: u32,
}

struct PjdResults {
    total: Counts,
    groups: BTreeMap<String, Counts>,
    problems: Vec<String>,
}

/// Counts from pjdfstest.sh's `name status message` table, with the allow-list applied here
/// again (so a failure the list does not name fails this test whatever the guest decided).
fn pjdfstest_counts(tsv: &Path, allowed: &[(String, String)]) -> PjdResults {
    let mut r = PjdResults {
        total: Counts::default(),
        groups: BTreeMap::new(),
        problems: Vec::new(),
    };
    let text = match std::fs::read_to_string(tsv) {
        Ok(t) => t,
        Err(e) => {
            r.problems
                .push(format!("no pjdfstest results at {}: {e}", tsv.display()));
            return r;
        }
    };
    let mut seen_allowed = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.splitn(3, '\t');
        let (Some(name), Some(status)) = (f.next(), f.next()) else {
            continue;
        };
        let msg = f.next().unwrap_or("");
        let group = name.split("::").next().unwrap_or(name).to_owned();
        let c = r.groups.entry(group).or_default();
        let is_allowed = allowed.iter().find(|(n, _)| n == name);
        match status {
            "ok" | "failed as expected" => {
                c.pass += 1;
                r.total.pass += 1;
                if is_allowed.is_some() {
                    seen_allowed.insert(name.to_owned(), "passed");
                }
            }
            "skipped" => {
                c.skip += 1;
                r.total.skip += 1;
            }
            _ => match is_allowed {
                Some((_, reason)) => {
                    c.allowed += 1;
                    r.total.allowed += 1;
                    seen_allowed.insert(name.to_owned(), "failed");
                    println!("XFAIL {name} (allowed: {reason}): {msg}");
                }
                None => {
                    c.fail += 1;
                    r.total.fail += 1;
                    r.problems.push(format!("pjdfstest {name} {status}: {msg}"));
                }
            },
        }
    }
    if r.total.pass + r.total.fail + r.total.allowed + r.total.skip == 0 {
        r.problems.push(format!(
            "pjdfstest reported no results in {}",
            tsv.display()
        ));
    }
    for (name, _) in allowed {
        if seen_allowed.get(name) == Some(&"passed") {
            r.problems.push(format!(
                "pjdfstest {name} is on the allow-list (jepsen/guest/pjdfstest-allowed.tsv) but \
                 passed: take it off the list"
            ));
        }
    }
    r
}

// -------------------------------------------------------------------- the bucket

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// One line of smoke's manifest (see write_manifest in jepsen/guest/tests/smoke.sh).
struct Entry<'a> {
    kind: &'a str,
    path: &'a str,
    size: &'a str,
    sha256: &'a str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    nlink: u32,
    target: &'a str,
    first: &'a str,
    times_set: bool,
}

fn parse_entry(line: &str) -> Result<Entry<'_>, String> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 13 {
        return Err(format!("{} fields, expected 13: {line:?}", f.len()));
    }
    let num = |i: usize, what: &str| -> Result<i64, String> {
        f[i].parse::<i64>()
            .map_err(|_| format!("{what} {:?} is not a number: {line:?}", f[i]))
    };
    Ok(Entry {
        kind: f[0],
        path: f[1],
        size: f[2],
        sha256: f[3],
        mode: u32::from_str_radix(f[4], 8).map_err(|_| format!("mode {:?}: {line:?}", f[4]))?,
        uid: num(5, "uid")? as u32,
        gid: num(6, "gid")? as u32,
        mtime: num(7, "mtime")?,
        nlink: num(8, "nlink")? as u32,
        target: f[9],
        first: f[11],
        times_set: f[12] == "set",
    })
}

/// The POSIX user metadata of `o` against what the entry says; problems are pushed.
fn check_posix(o: &ObjectMeta, e: &Entry<'_>, type_bits: u32, problems: &mut Vec<String>) {
    let key = &o.key;
    let m = &o.metadata;
    let want_mode = type_bits | e.mode;
    if m.mode != Some(want_mode) {
        problems.push(format!(
            "{key}: file-permissions {}, expected {want_mode:07o}",
            m.mode.map_or("missing".into(), |x| format!("{x:07o}"))
        ));
    }
    if m.owner != Some(e.uid) {
        problems.push(format!(
            "{key}: file-owner {:?}, expected {}",
            m.owner, e.uid
        ));
    }
    if m.group != Some(e.gid) {
        problems.push(format!(
            "{key}: file-group {:?}, expected {}",
            m.group, e.gid
        ));
    }
    let secs = m.mtime_ns.map(|ns| ns.div_euclid(1_000_000_000));
    let mtime_ok = match (type_bits, secs) {
        (_, None) => false,
        // Implicit directory mtime changes (entries added or removed) are not exported
        // (S3FILES_SPEC.md §13 Q8): a marker holds the mtime of its last export, unless a
        // check set the directory's times explicitly.
        (S_IFDIR, Some(s)) if !e.times_set => s <= e.mtime,
        (_, Some(s)) => s == e.mtime,
    };
    if !mtime_ok {
        problems.push(format!(
            "{key}: file-mtime {:?} ({secs:?} s), the guest saw mtime {} s{}",
            m.other
                .get("file-mtime")
                .cloned()
                .or(m.mtime_ns.map(|n| format!("{n}ns"))),
            e.mtime,
            if type_bits == S_IFDIR && !e.times_set {
                " (a directory marker may be older, never newer)"
            } else {
                ""
            }
        ));
    }
}

/// Checks every manifest entry against the bucket; returns the number of entries checked and
/// adds the keys it accounts for to `expected`.
async fn check_manifest(
    sys: &System,
    text: &str,
    objects: &BTreeMap<String, ObjectMeta>,
    expected: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> usize {
    let mut n = 0;
    let mut kinds: BTreeMap<String, u32> = BTreeMap::new();
    let mut ancestors: BTreeSet<String> = BTreeSet::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let e = match parse_entry(line) {
            Ok(e) => e,
            Err(msg) => {
                problems.push(format!("smoke manifest: {msg}"));
                continue;
            }
        };
        n += 1;
        *kinds.entry(e.kind.to_owned()).or_default() += 1;
        // Every ancestor directory has its marker ("smoke/" above the tree).
        let mut parent = e.path;
        while let Some((p, _)) = parent.rsplit_once('/') {
            expected.insert(format!("{p}/"));
            ancestors.insert(format!("{p}/"));
            parent = p;
        }
        match e.kind {
            "f" => {
                if e.nlink > 1 {
                    if e.first == "-" {
                        problems.push(format!(
                            "smoke manifest: {} has {} links but no recorded first name",
                            e.path, e.nlink
                        ));
                        continue;
                    }
                    if e.first != e.path {
                        // One object per file, at its first name.
                        if objects.contains_key(e.path) {
                            problems.push(format!(
                                "{}: an object at a second hard link of {} (a file has one \
                                 object, at its first name)",
                                e.path, e.first
                            ));
                        }
                        continue;
                    }
                }
                expected.insert(e.path.to_owned());
                let Some(o) = objects.get(e.path) else {
                    problems.push(format!("{}: regular file has no object", e.path));
                    continue;
                };
                if o.size.to_string() != e.size {
                    problems.push(format!(
                        "{}: object is {} bytes, the file {}",
                        e.path, o.size, e.size
                    ));
                }
                match sys.object_bytes(e.path).await {
                    Some(bytes) => {
                        let sum = guest::sha256_hex(&bytes);
                        if sum != e.sha256 {
                            problems.push(format!(
                                "{}: object bytes sha256 {sum}, the file's {}",
                                e.path, e.sha256
                            ));
                        }
                    }
                    None => problems.push(format!("{}: object vanished while read", e.path)),
                }
                check_posix(o, &e, S_IFREG, problems);
            }
            "d" => {
                let key = format!("{}/", e.path);
                expected.insert(key.clone());
                dirs.insert(key.clone());
                let Some(o) = objects.get(&key) else {
                    problems.push(format!("{}: directory has no marker object {key}", e.path));
                    continue;
                };
                if o.size != 0 {
                    problems.push(format!("{key}: directory marker is {} bytes", o.size));
                }
                check_posix(o, &e, S_IFDIR, problems);
            }
            "l" => {
                expected.insert(e.path.to_owned());
                let Some(o) = objects.get(e.path) else {
                    problems.push(format!("{}: symlink has no object", e.path));
                    continue;
                };
                match sys.object_bytes(e.path).await {
                    Some(body) if body == e.target.as_bytes() => {}
                    Some(body) => problems.push(format!(
                        "{}: symlink object body {:?}, target {:?}",
                        e.path,
                        String::from_utf8_lossy(&body),
                        e.target
                    )),
                    None => problems.push(format!("{}: object vanished while read", e.path)),
                }
                check_posix(o, &e, S_IFLNK, problems);
            }
            "p" | "c" | "b" | "s" => {
                // FIFOs, devices and sockets exist only in the file system.
                if objects.contains_key(e.path) || objects.contains_key(&format!("{}/", e.path)) {
                    problems.push(format!(
                        "{}: a special file ({}) has an object",
                        e.path, e.kind
                    ));
                }
            }
            other => problems.push(format!(
                "smoke manifest: unknown type {other:?} of {}",
                e.path
            )),
        }
    }
    for (kind, want) in [("f", 1), ("d", 1), ("l", 1), ("p", 1), ("c", 1)] {
        if kinds.get(kind).copied().unwrap_or(0) < want {
            problems.push(format!(
                "smoke manifest has no entry of type {kind}: smoke did not build its whole tree"
            ));
        }
    }
    for key in ancestors.difference(&dirs) {
        if !objects.contains_key(key) {
            problems.push(format!("{key}: directory has no marker object"));
        }
    }
    n
}

/// fsx's final files (`path size sha256 kept`) against their objects.
async fn check_fsx_files(
    sys: &System,
    text: &str,
    objects: &BTreeMap<String, ObjectMeta>,
    expected: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> usize {
    let mut n = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 4 {
            problems.push(format!("fsx-final.tsv: {line:?}"));
            continue;
        }
        let (path, size, sum, kept) = (f[0], f[1], f[2], f[3]);
        if kept != "1" {
            continue;
        }
        n += 1;
        expected.insert(path.to_owned());
        if let Some((dir, _)) = path.rsplit_once('/') {
            expected.insert(format!("{dir}/"));
        }
        let Some(o) = objects.get(path) else {
            problems.push(format!("{path}: fsx's final file has no object"));
            continue;
        };
        if o.size.to_string() != size {
            problems.push(format!(
                "{path}: object is {} bytes, fsx's final file {size}",
                o.size
            ));
        }
        if o.metadata.mode.map(|m| m & 0o170000) != Some(S_IFREG) {
            problems.push(format!(
                "{path}: file-permissions {:?} lacks S_IFREG",
                o.metadata.mode.map(|m| format!("{m:07o}"))
            ));
        }
        match sys.object_bytes(path).await {
            Some(bytes) => {
                let got = guest::sha256_hex(&bytes);
                if got != sum {
                    problems.push(format!(
                        "{path}: object bytes sha256 {got}, fsx's final file {sum}"
                    ));
                }
            }
            None => problems.push(format!("{path}: object vanished while read")),
        }
    }
    n
}
