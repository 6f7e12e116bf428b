//! `bucketfs bench nfs`: file workloads against NFS v4.1 servers, through the user-space
//! client (`bucketfs-nfs-client`, one TCP connection per target, shared by all tasks).
//!
//! Per target, in order: 4 KiB files created (OPEN create GUARDED, WRITE FILE_SYNC, CLOSE) by
//! `--concurrency` tasks in a fresh directory; GETATTR of those files; one large file written
//! sequentially in 1 MiB UNSTABLE WRITEs, `--depth` in flight, then COMMIT and CLOSE; that
//! file read back twice with `--depth` READs in flight (every byte checked). The directory is
//! removed afterwards. With several targets the same workload runs against each in turn and
//! a table of throughput ratios against the first follows.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bucketfs_nfs_client::{
    Client, ClientOptions, CreateMode, FileHandle, OpenAccess, OpenOptions, SetAttrs, StableHow,
};
use bucketfs_runtime::{Clock, Entropy, SystemClock};
use clap::Args;
use tokio::time::Instant;

#[derive(Args)]
pub struct BenchNfsArgs {
    /// Server to measure: HOST:PORT, or HOST:PORT/EXPORT to name its export path
    /// (127.0.0.1:2049/export). Give it more than once to run the same workload against each;
    /// ratios are against the first.
    #[arg(long, required = true)]
    target: Vec<String>,
    /// A server to compare with the first --target (the same as another --target).
    #[arg(long, value_name = "HOST:PORT[/EXPORT]")]
    compare: Vec<String>,
    /// Export path for targets that do not name one.
    #[arg(long, default_value = "/")]
    export: String,
    /// Files in the create benchmark.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// GETATTRs in the stat benchmark (cycling over the created files).
    #[arg(long, default_value_t = 10000)]
    stat_ops: u64,
    /// Also end the create and stat benchmarks after this many seconds each.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Tasks issuing the small-file operations at once.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Size of the large file, MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// WRITEs / READs in flight in the sequential benchmarks.
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// AUTH_SYS uid and gid of the calls.
    #[arg(long, default_value_t = 0)]
    uid: u32,
    #[arg(long, default_value_t = 0)]
    gid: u32,
    /// One JSON object per benchmark (and per ratio) on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Leave the benchmark directory in place.
    #[arg(long)]
    keep: bool,
    /// Another gateway of the first target's deployment: the large file is also read through
    /// it ("cold read"), where nothing of it is cached, so its blocks come from S3.
    #[arg(long, value_name = "HOST:PORT")]
    cold_read_via: Option<String>,
}

const SMALL: usize = 4096;
const BLOCK: usize = 1024 * 1024;

/// One row of results.
pub(crate) struct Row {
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) elapsed: Duration,
    /// Bytes moved, for the throughput benchmarks.
    pub(crate) bytes: Option<u64>,
    pub(crate) latencies: Vec<Duration>,
}

impl Row {
    pub(crate) fn new(key: &'static str, label: &'static str) -> Self {
        Self {
            key,
            label,
            ops: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            bytes: None,
            latencies: Vec::new(),
        }
    }

    pub(crate) fn fail(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }

    pub(crate) fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        match self.bytes {
            Some(b) => b as f64 / secs / 1e6,
            None => self.ops as f64 / secs,
        }
    }

    pub(crate) fn unit(&self) -> &'static str {
        if self.bytes.is_some() {
            "MB/s"
        } else {
            "ops/s"
        }
    }

    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }

    pub(crate) fn finish(&mut self, started: Instant, clock: &SystemClock) {
        self.elapsed = clock.now().duration_since(started);
        self.ops = self.latencies.len() as u64;
        self.latencies.sort_unstable();
    }
}

struct Target {
    addr: String,
    export: String,
}

impl Target {
    fn parse(s: &str, default_export: &str) -> anyhow::Result<Self> {
        let (addr, export) = match s.find('/') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, default_export),
        };
        if addr.is_empty() || !addr.contains(':') {
            bail!("target {s:?}: expected HOST:PORT or HOST:PORT/EXPORT");
        }
        Ok(Self {
            addr: addr.to_owned(),
            export: export.to_owned(),
        })
    }

    fn name(&self) -> String {
        if self.export == "/" {
            self.addr.clone()
        } else {
            format!("{}{}", self.addr, self.export)
        }
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The content of block `i` of the large file: a fixed random block stamped with its index.
fn block(base: &[u8], i: u64) -> Vec<u8> {
    let mut b = base.to_vec();
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

fn block_ok(base: &[u8], i: u64, data: &[u8]) -> bool {
    data.len() == base.len() && data[..8] == i.to_le_bytes() && data[8..] == base[8..]
}

pub async fn run(args: BenchNfsArgs) -> anyhow::Result<ExitCode> {
    if args.count == 0
        || args.stat_ops == 0
        || args.concurrency == 0
        || args.depth == 0
        || args.size_mib == 0
    {
        bail!("--count, --stat-ops, --concurrency, --depth and --size-mib must be at least 1");
    }
    let targets = args
        .target
        .iter()
        .chain(&args.compare)
        .map(|t| Target::parse(t, &args.export))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut all = Vec::new();
    let mut failed = false;
    for (i, t) in targets.iter().enumerate() {
        let cold = if i == 0 {
            args.cold_read_via.as_deref()
        } else {
            None
        };
        let rows = run_target(&args, t, cold).await?;
        failed |= rows.iter().any(|r| r.errors > 0);
        if args.json {
            for r in &rows {
                println!("{}", json_row(t, r));
            }
        } else {
            print_table(&rows);
        }
        all.push(rows);
    }
    if targets.len() > 1 {
        print_ratios(&args, &targets, &all);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn run_target(
    args: &BenchNfsArgs,
    t: &Target,
    cold: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let opts = ClientOptions {
        uid: args.uid,
        gid: args.gid,
        export: t.export.clone(),
        io_depth: args.depth,
        slots: 64.max(args.concurrency.min(1024) as u32),
        ..ClientOptions::default()
    };
    let client = Client::connect(t.addr.clone(), opts.clone())
        .await
        .with_context(|| format!("connecting to {}", t.name()))?;
    let info = client.fs_info().clone();
    let block_size = BLOCK.min(info.wsize as usize).min(info.rsize as usize);
    let blocks = (args.size_mib * 1024 * 1024).div_ceil(block_size as u64);
    let dir_name = format!("bucketfs-bench-{:016x}", Entropy::os().next_u64());
    let (dir, _) = client
        .mkdir(client.root(), &dir_name, 0o755)
        .await
        .with_context(|| format!("creating /{dir_name} on {}", t.name()))?;
    if !args.json {
        println!(
            "bucketfs bench nfs: {} ({}), {} files, {} GETATTRs, concurrency {}, {} MiB file in {} KiB blocks, {} in flight",
            t.name(),
            dir_name,
            args.count,
            args.stat_ops,
            args.concurrency,
            args.size_mib,
            block_size / 1024,
            args.depth
        );
        println!(
            "  server grants: rsize {} wsize {} slots {} max ops {} lease {} s",
            info.rsize,
            info.wsize,
            info.slots,
            info.max_ops,
            info.lease.as_secs()
        );
    }
    let limit = args
        .duration
        .map(|secs| Duration::from_secs_f64(secs.clamp(0.0, 1e9)));
    let files: Arc<Vec<std::sync::Mutex<Option<FileHandle>>>> = Arc::new(
        (0..args.count)
            .map(|_| std::sync::Mutex::new(None))
            .collect(),
    );
    let mut rows = Vec::new();
    rows.push(create_small(&client, &dir, args, limit, &files).await);
    rows.push(stat(&client, args, limit, &files).await);
    let base: Vec<u8> = {
        let e = Entropy::seeded(42);
        (0..block_size / 8)
            .flat_map(|_| e.next_u64().to_le_bytes())
            .collect()
    };
    let (write_row, large) = seq_write(&client, &dir, &base, blocks, args.depth).await;
    rows.push(write_row);
    for (key, label) in [("first_read", "first read"), ("second_read", "second read")] {
        rows.push(
            seq_read(
                &client,
                &dir,
                &base,
                blocks,
                args.depth,
                key,
                label,
                large.as_ref(),
            )
            .await,
        );
    }
    if let Some(addr) = cold {
        // File handles are the same on every gateway of a deployment.
        let other = Client::connect(addr.to_owned(), opts.clone())
            .await
            .with_context(|| format!("connecting to {addr} (--cold-read-via)"))?;
        rows.push(
            seq_read(
                &other,
                &dir,
                &base,
                blocks,
                args.depth,
                "cold_read",
                "cold read",
                large.as_ref(),
            )
            .await,
        );
        other.close().await;
    }
    if !args.keep {
        cleanup(&client, &dir, &dir_name, &files, args.concurrency).await;
    }
    client.close().await;
    Ok(rows)
}

async fn create_small(
    client: &Client,
    dir: &FileHandle,
    args: &BenchNfsArgs,
    limit: Option<Duration>,
    files: &Arc<Vec<std::sync::Mutex<Option<FileHandle>>>>,
) -> Row {
    let clock = SystemClock;
    let next = Arc::new(AtomicU64::new(0));
    let started = clock.now();
    let deadline = limit.map(|l| started + l);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.min(args.count) {
        let (client, dir, files, next) = (
            client.clone(),
            dir.clone(),
            Arc::clone(files),
            Arc::clone(&next),
        );
        let count = args.count;
        workers.spawn(async move {
            let mut row = Row::new("create_4k", "create 4k");
            let payload = vec![0x5a; SMALL];
            let opts = OpenOptions {
                access: OpenAccess::Write,
                create: Some(CreateMode::Guarded(SetAttrs {
                    mode: Some(0o644),
                    ..SetAttrs::default()
                })),
                ..OpenOptions::default()
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || deadline.is_some_and(|d| clock.now() >= d) {
                    break;
                }
                let t0 = clock.now();
                let r = async {
                    let f = client.open(&dir, &format!("f{i:08}"), &opts).await?;
                    client
                        .write(&f.fh, &f.stateid, 0, &payload, StableHow::FileSync)
                        .await?;
                    client.close_file(&f.fh, &f.stateid).await?;
                    Ok::<_, bucketfs_nfs_client::Error>(f.fh)
                }
                .await;
                match r {
                    Ok(fh) => {
                        row.latencies.push(clock.now().duration_since(t0));
                        if let Some(slot) = files.get(i as usize) {
                            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(fh);
                        }
                    }
                    Err(e) => row.fail(e),
                }
            }
            row
        });
    }
    merge(workers, Row::new("create_4k", "create 4k"), started, &clock).await
}

async fn stat(
    client: &Client,
    args: &BenchNfsArgs,
    limit: Option<Duration>,
    files: &Arc<Vec<std::sync::Mutex<Option<FileHandle>>>>,
) -> Row {
    let existing: Arc<Vec<FileHandle>> = Arc::new(
        files
            .iter()
            .filter_map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect(),
    );
    let mut empty = Row::new("stat", "stat");
    if existing.is_empty() {
        empty.fail("no files were created");
        return empty;
    }
    let clock = SystemClock;
    let next = Arc::new(AtomicU64::new(0));
    let started = clock.now();
    let deadline = limit.map(|l| started + l);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.min(args.stat_ops) {
        let (client, existing, next) = (client.clone(), Arc::clone(&existing), Arc::clone(&next));
        let count = args.stat_ops;
        workers.spawn(async move {
            let mut row = Row::new("stat", "stat");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || deadline.is_some_and(|d| clock.now() >= d) {
                    break;
                }
                let fh = &existing[(i as usize) % existing.len()];
                let t0 = clock.now();
                match client.getattr(fh).await {
                    Ok(a) if a.size == SMALL as u64 => {
                        row.latencies.push(clock.now().duration_since(t0))
                    }
                    Ok(a) => row.fail(format!("size {} instead of {SMALL}", a.size)),
                    Err(e) => row.fail(e),
                }
            }
            row
        });
    }
    merge(workers, empty, started, &clock).await
}

async fn merge(
    mut workers: tokio::task::JoinSet<Row>,
    mut total: Row,
    started: Instant,
    clock: &SystemClock,
) -> Row {
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(r) => {
                total.latencies.extend(r.latencies);
                total.errors += r.errors;
                if total.first_error.is_none() {
                    total.first_error = r.first_error;
                }
            }
            Err(e) => total.fail(format!("worker failed: {e}")),
        }
    }
    total.finish(started, clock);
    total
}

/// The large file: written in blocks with `depth` UNSTABLE WRITEs in flight, COMMIT, CLOSE.
async fn seq_write(
    client: &Client,
    dir: &FileHandle,
    base: &[u8],
    blocks: u64,
    depth: usize,
) -> (Row, Option<FileHandle>) {
    let clock = SystemClock;
    let mut row = Row::new("seq_write", "seq write");
    let started = clock.now();
    let opts = OpenOptions {
        access: OpenAccess::Write,
        create: Some(CreateMode::Guarded(SetAttrs {
            mode: Some(0o644),
            ..SetAttrs::default()
        })),
        ..OpenOptions::default()
    };
    let f = match client.open(dir, "large", &opts).await {
        Ok(f) => f,
        Err(e) => {
            row.fail(e);
            return (row, None);
        }
    };
    let mut inflight = tokio::task::JoinSet::new();
    let mut verifiers = Vec::new();
    let mut next = 0u64;
    loop {
        while next < blocks && inflight.len() < depth {
            let data = block(base, next);
            let off = next * base.len() as u64;
            let (client, f) = (client.clone(), f.clone());
            inflight.spawn(async move {
                let t0 = clock.now();
                let r = client
                    .write(&f.fh, &f.stateid, off, &data, StableHow::Unstable)
                    .await;
                (clock.now().duration_since(t0), data.len(), r)
            });
            next += 1;
        }
        let Some(done) = inflight.join_next().await else {
            break;
        };
        let (lat, len, r) = match done {
            Ok(v) => v,
            Err(e) => {
                row.fail(format!("WRITE task failed: {e}"));
                continue;
            }
        };
        match r {
            Ok(w) if w.count as usize == len => {
                row.latencies.push(lat);
                if w.committed != StableHow::FileSync {
                    verifiers.push(w.verifier);
                }
            }
            Ok(w) => row.fail(format!("short WRITE: {} of {len} bytes", w.count)),
            Err(e) => row.fail(e),
        }
    }
    if !verifiers.is_empty() {
        match client.commit(&f.fh, 0, 0).await {
            Ok(v) if verifiers.iter().all(|w| *w == v) => {}
            Ok(_) => row.fail("COMMIT verifier differs from the WRITEs' (server restarted?)"),
            Err(e) => row.fail(e),
        }
    }
    if let Err(e) = client.close_file(&f.fh, &f.stateid).await {
        row.fail(e);
    }
    row.finish(started, &clock);
    row.bytes = Some(row.ops * base.len() as u64);
    (row, Some(f.fh))
}

#[allow(clippy::too_many_arguments)]
async fn seq_read(
    client: &Client,
    dir: &FileHandle,
    base: &[u8],
    blocks: u64,
    depth: usize,
    key: &'static str,
    label: &'static str,
    large: Option<&FileHandle>,
) -> Row {
    let clock = SystemClock;
    let mut row = Row::new(key, label);
    if large.is_none() {
        row.fail("the large file was not written");
        return row;
    }
    let started = clock.now();
    let f = match client.open(dir, "large", &OpenOptions::read()).await {
        Ok(f) => f,
        Err(e) => {
            row.fail(e);
            return row;
        }
    };
    let mut inflight = tokio::task::JoinSet::new();
    let mut next = 0u64;
    let mut bytes = 0u64;
    loop {
        while next < blocks && inflight.len() < depth {
            let i = next;
            let off = i * base.len() as u64;
            let (client, f) = (client.clone(), f.clone());
            let len = base.len() as u32;
            inflight.spawn(async move {
                let t0 = clock.now();
                let r = client.read(&f.fh, &f.stateid, off, len).await;
                (i, clock.now().duration_since(t0), r)
            });
            next += 1;
        }
        let Some(done) = inflight.join_next().await else {
            break;
        };
        let (i, lat, r) = match done {
            Ok(v) => v,
            Err(e) => {
                row.fail(format!("READ task failed: {e}"));
                continue;
            }
        };
        match r {
            Ok(r) if block_ok(base, i, &r.data) => {
                row.latencies.push(lat);
                bytes += r.data.len() as u64;
            }
            Ok(r) => row.fail(format!(
                "block {i}: {} bytes that are not what was written",
                r.data.len()
            )),
            Err(e) => row.fail(e),
        }
    }
    if let Err(e) = client.close_file(&f.fh, &f.stateid).await {
        row.fail(e);
    }
    row.finish(started, &clock);
    row.bytes = Some(bytes);
    row
}

async fn cleanup(
    client: &Client,
    dir: &FileHandle,
    dir_name: &str,
    files: &Arc<Vec<std::sync::Mutex<Option<FileHandle>>>>,
    concurrency: u64,
) {
    let names: Vec<String> = (0..files.len())
        .filter(|&i| files[i].lock().unwrap_or_else(|e| e.into_inner()).is_some())
        .map(|i| format!("f{i:08}"))
        .chain(std::iter::once("large".to_owned()))
        .collect();
    let names = Arc::new(names);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, dir, names, next) = (
            client.clone(),
            dir.clone(),
            Arc::clone(&names),
            Arc::clone(&next),
        );
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(name) = names.get(i) else { break };
                if let Err(e) = client.remove(&dir, name).await
                    && !e.is(bucketfs_nfs_client::NfsStatus::NoEnt)
                {
                    eprintln!("bucketfs bench nfs: removing {name}: {e}");
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    // Anything left over (a create that failed half-way).
    if let Ok(entries) = client.readdir(dir).await {
        for e in entries {
            let _ = client.remove(dir, &e.name).await;
        }
    }
    if let Err(e) = client.remove(client.root(), dir_name).await {
        eprintln!("bucketfs bench nfs: removing /{dir_name}: {e}");
    }
}

fn print_table(rows: &[Row]) {
    print_rows(rows);
    println!(
        "  create 4k: OPEN(create)+WRITE(FILE_SYNC, 4 KiB)+CLOSE per op; stat: GETATTR of those files;\n  \
         seq write: UNSTABLE WRITEs then COMMIT+CLOSE (latency per WRITE); reads: READ latency per block.\n  \
         \"first read\" directly follows the write: whether the server serves it from memory is not \
         under the client's control; \"second read\" repeats it; \"cold read\" (--cold-read-via) reads \
         it through another gateway that has none of it cached.\n"
    );
}

/// The results table: throughput and latency percentiles per benchmark.
pub(crate) fn print_rows(rows: &[Row]) {
    println!(
        "{:<12} {:>8} {:>7} {:>14} {:>9} {:>9} {:>9}",
        "benchmark", "ops", "errors", "throughput", "p50 ms", "p99 ms", "max ms"
    );
    for r in rows {
        println!(
            "{:<12} {:>8} {:>7} {:>8.1} {:<5} {:>9.3} {:>9.3} {:>9.3}",
            r.label,
            r.ops,
            r.errors,
            r.throughput(),
            r.unit(),
            ms(r.percentile(0.50)),
            ms(r.percentile(0.99)),
            ms(r.percentile(1.0)),
        );
        if let Some(e) = &r.first_error {
            eprintln!("  first {} error: {e}", r.label);
        }
    }
}

fn print_ratios(args: &BenchNfsArgs, targets: &[Target], all: &[Vec<Row>]) {
    let base = &all[0];
    if args.json {
        for (t, rows) in targets.iter().zip(all).skip(1) {
            for b in base {
                // Rows only the first target has (cold read) have no ratio.
                let Some(r) = rows.iter().find(|r| r.key == b.key) else {
                    continue;
                };
                println!(
                    "{{\"kind\":\"ratio\",\"benchmark\":\"{}\",\"base\":\"{}\",\"target\":\"{}\",\"ratio\":{}}}",
                    r.key,
                    json_escape(&targets[0].name()),
                    json_escape(&t.name()),
                    json_num(r.throughput() / b.throughput().max(1e-12))
                );
            }
        }
        return;
    }
    println!(
        "throughput, and ratio to the first target ({}):",
        targets[0].name()
    );
    let mut header = format!("{:<12}", "benchmark");
    for t in targets {
        header.push_str(&format!(" {:>24}", t.name()));
    }
    for i in 2..=targets.len() {
        header.push_str(&format!(" {:>10}", format!("#{i}/#1")));
    }
    println!("{header}");
    for b in base {
        let same: Vec<Option<&Row>> = all
            .iter()
            .map(|rows| rows.iter().find(|r| r.key == b.key))
            .collect();
        let mut line = format!("{:<12}", b.label);
        for r in &same {
            match r {
                Some(r) => line.push_str(&format!(" {:>18.1} {:<5}", r.throughput(), r.unit())),
                None => line.push_str(&format!(" {:>24}", "-")),
            }
        }
        for r in &same[1..] {
            match r {
                Some(r) => {
                    let ratio = r.throughput() / b.throughput().max(1e-12);
                    line.push_str(&format!(" {:>10.2}", ratio));
                }
                None => line.push_str(&format!(" {:>10}", "-")),
            }
        }
        println!("{line}");
    }
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        "null".into()
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn json_row(t: &Target, r: &Row) -> String {
    format!(
        "{{\"kind\":\"result\",\"target\":\"{}\",\"export\":\"{}\",\"benchmark\":\"{}\",\"label\":\"{}\",\
         \"unit\":\"{}\",\"throughput\":{},\"ops\":{},\"errors\":{},\"seconds\":{},\"bytes\":{},\
         \"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"first_error\":{}}}",
        json_escape(&t.addr),
        json_escape(&t.export),
        r.key,
        r.label,
        r.unit(),
        json_num(r.throughput()),
        r.ops,
        r.errors,
        json_num(r.elapsed.as_secs_f64()),
        r.bytes.map_or("null".to_owned(), |b| b.to_string()),
        json_num(ms(r.percentile(0.50))),
        json_num(ms(r.percentile(0.99))),
        json_num(ms(r.percentile(1.0))),
        r.first_error
            .as_deref()
            .map_or("null".to_owned(), |e| format!("\"{}\"", json_escape(e))),
    )
}
