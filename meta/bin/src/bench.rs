//! `bucketfs bench meta`: load against a running metadata cluster.
//!
//! Four phases run one after the other, each with `--concurrency` workers sharing one
//! [`MetaClient`] (so the exactly-once window is exercised as in a gateway): create `--ops`
//! files in a fresh file system, look each up, read each one's attributes, rename each. Reads
//! are linearizable (read-index on the leader), as a gateway's cache misses are. Each phase
//! reports throughput and latency percentiles measured on the client.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bucketfs_meta_client::{ClientOptions, MetaClient, ReadConsistency};
use bucketfs_meta_state::command::{CreateMode, NewInode};
use bucketfs_meta_state::types::{FsId, InodeId};
use bucketfs_meta_state::{Command, Query, Reply};
use bucketfs_runtime::{Clock, Entropy, SystemClock};
use clap::Args;

use crate::cluster_arg::parse_addrs;

#[derive(Args)]
pub struct BenchMetaArgs {
    /// Addresses of the cluster's nodes, HOST:PORT[,HOST:PORT...].
    #[arg(long, env = "BUCKETFS_META")]
    cluster: String,
    /// Operations per phase.
    #[arg(long, default_value_t = 5000)]
    ops: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Also measure the reference: the same number of fsynced RocksDB write batches (one
    /// inode row and one entry row each, as a create writes) straight into a store in this
    /// empty or absent directory, with the same concurrency. It is the durability floor of one
    /// disk, without Raft, gRPC or replication; the ratio shows what those cost.
    #[arg(long)]
    reference_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Create,
    Lookup,
    GetAttr,
    Rename,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Lookup => "lookup",
            Phase::GetAttr => "getattr",
            Phase::Rename => "rename",
        }
    }
}

struct Target {
    client: MetaClient,
    fs: FsId,
    /// Inode ids of the created files, by index.
    inodes: Vec<AtomicU64>,
}

pub async fn run(args: BenchMetaArgs) -> anyhow::Result<ExitCode> {
    if args.ops == 0 || args.concurrency == 0 {
        bail!("--ops and --concurrency must be at least 1");
    }
    let addrs = parse_addrs(&args.cluster)?;
    let client = MetaClient::connect(addrs.clone(), ClientOptions::default())
        .await
        .context("connecting to the cluster")?;
    let nodes = client.status_all().await;
    let voters = nodes
        .iter()
        .find_map(|(_, r)| r.as_ref().ok())
        .map(|s| s.membership.voters.len())
        .unwrap_or(0);

    let fs_name = format!("bench-{:016x}", Entropy::os().next_u64());
    let fs = match client
        .write(Command::CreateFs {
            name: fs_name.clone(),
            bucket: "bench".into(),
            prefix: String::new(),
        })
        .await
        .context("creating the benchmark file system")?
    {
        Reply::Fs(info) => info.id,
        other => bail!("unexpected reply to CreateFs: {other:?}"),
    };
    let target = Arc::new(Target {
        client,
        fs,
        inodes: (0..args.ops).map(|_| AtomicU64::new(0)).collect(),
    });

    println!(
        "bucketfs bench meta: {} voters, {} ops per phase, concurrency {}, file system {fs_name}",
        voters, args.ops, args.concurrency
    );
    println!(
        "{:<8} {:>8} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "op", "ops", "ops/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let mut create_rate = 0.0;
    for phase in [Phase::Create, Phase::Lookup, Phase::GetAttr, Phase::Rename] {
        let report = run_phase(&target, phase, args.ops, args.concurrency).await;
        if matches!(phase, Phase::Create) {
            create_rate = report.rate();
        }
        print_row(phase.name(), &report);
    }
    if let Some(dir) = &args.reference_dir {
        let report = reference::run(dir, args.ops, args.concurrency).await?;
        print_row("rocksdb", &report);
        println!(
            "create / reference (fsynced RocksDB batches, same concurrency): {:.2}",
            create_rate / report.rate()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_row(name: &str, report: &PhaseReport) {
    println!(
        "{:<8} {:>8} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
        name,
        report.ok,
        report.rate(),
        ms(report.percentile(0.50)),
        ms(report.percentile(0.99)),
        ms(report.percentile(1.0)),
        report.errors
    );
    if let Some(e) = &report.first_error {
        eprintln!("  first {name} error: {e}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) struct PhaseReport {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl PhaseReport {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

async fn run_phase(target: &Arc<Target>, phase: Phase, ops: u64, concurrency: u64) -> PhaseReport {
    let clock = SystemClock;
    let next = Arc::new(AtomicU64::new(0));
    let started = clock.now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(ops) {
        let target = Arc::clone(target);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            let clock = SystemClock;
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    break;
                }
                let t0 = clock.now();
                match one_op(&target, phase, i).await {
                    Ok(()) => latencies.push(clock.now().duration_since(t0)),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(format!("{e:#}"));
                    }
                }
            }
            (latencies, errors, first_error)
        });
    }
    let mut report = PhaseReport {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(ops as usize),
    };
    while let Some(done) = workers.join_next().await {
        match done {
            Ok((lat, errors, first)) => {
                report.latencies.extend(lat);
                report.errors += errors;
                if report.first_error.is_none() {
                    report.first_error = first;
                }
            }
            Err(e) => {
                report.errors += 1;
                report
                    .first_error
                    .get_or_insert(format!("worker failed: {e}"));
            }
        }
    }
    report.elapsed = clock.now().duration_since(started);
    report.ok = report.latencies.len() as u64;
    report.latencies.sort_unstable();
    report
}

async fn one_op(target: &Target, phase: Phase, i: u64) -> anyhow::Result<()> {
    let c = &target.client;
    let fs = target.fs;
    let root = InodeId::ROOT;
    match phase {
        Phase::Create => {
            let reply = c
                .write(Command::Create {
                    fs,
                    parent: root,
                    name: format!("f{i:08}"),
                    kind: NewInode::File,
                    mode: 0o644,
                    uid: 1000,
                    gid: 1000,
                    how: CreateMode::Guarded,
                })
                .await?;
            match reply {
                Reply::Changed {
                    inode: Some(inode), ..
                } => target.inodes[i as usize].store(inode.id.0, Ordering::Relaxed),
                other => bail!("unexpected reply to Create: {other:?}"),
            }
        }
        Phase::Lookup => {
            c.read(
                Query::Lookup {
                    fs,
                    parent: root,
                    name: format!("f{i:08}"),
                },
                ReadConsistency::Linearizable,
            )
            .await?;
        }
        Phase::GetAttr => {
            let ino = target.inodes[i as usize].load(Ordering::Relaxed);
            if ino == 0 {
                bail!("file {i} was not created");
            }
            c.read(
                Query::GetAttr {
                    fs,
                    ino: InodeId(ino),
                },
                ReadConsistency::Linearizable,
            )
            .await?;
        }
        Phase::Rename => {
            c.write(Command::Rename {
                src_fs: fs,
                src_parent: root,
                src_name: format!("f{i:08}"),
                dst_fs: fs,
                dst_parent: root,
                dst_name: format!("r{i:08}"),
            })
            .await?;
        }
    }
    Ok(())
}

mod reference {
    //! The durability floor: fsynced RocksDB write batches with no Raft in front.

    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use anyhow::Context;
    use bucketfs_meta_rocks::{NodeIdentity, RocksBackend};
    use bucketfs_meta_state::kv::{Table, WriteSet};
    use bucketfs_meta_store::StateBackend;
    use bucketfs_runtime::{Clock, SystemClock};

    use super::PhaseReport;

    pub async fn run(dir: &Path, ops: u64, concurrency: u64) -> anyhow::Result<PhaseReport> {
        let identity = NodeIdentity {
            cluster_id: "bench-reference".into(),
            node_id: 1,
        };
        let backend = Arc::new(
            RocksBackend::open(dir, &identity, true)
                .with_context(|| format!("--reference-dir {}", dir.display()))?,
        );
        let next = Arc::new(AtomicU64::new(0));
        let clock = SystemClock;
        let started = clock.now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.min(ops) {
            let backend = Arc::clone(&backend);
            let next = Arc::clone(&next);
            // RocksDB's write path blocks on fsync; real threads let its group commit merge
            // concurrent batches, as the metadata node's blocking pool does.
            workers.spawn_blocking(move || {
                let clock = SystemClock;
                let mut latencies = Vec::new();
                let mut first_error = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops {
                        break;
                    }
                    let mut writes = WriteSet::default();
                    writes.put(Table::Inodes, i.to_be_bytes().to_vec(), vec![0x5a; 160]);
                    writes.put(
                        Table::Dirents,
                        format!("f{i:08}").into_bytes(),
                        vec![0xa5; 24],
                    );
                    let t0 = clock.now();
                    match backend.write(writes) {
                        Ok(()) => latencies.push(clock.now().duration_since(t0)),
                        Err(e) => {
                            first_error.get_or_insert(e.to_string());
                        }
                    }
                }
                (latencies, first_error)
            });
        }
        let mut report = PhaseReport {
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
        };
        while let Some(done) = workers.join_next().await {
            let (latencies, first_error) = done.context("reference worker")?;
            report.latencies.extend(latencies);
            if report.first_error.is_none() {
                report.first_error = first_error;
            }
        }
        report.elapsed = clock.now().duration_since(started);
        report.ok = report.latencies.len() as u64;
        report.errors = ops - report.ok;
        report.latencies.sort_unstable();
        Ok(report)
    }
}
