//! `bucketfs`: the one binary. Each subcommand lives in its own module; this file only parses
//! the command line, sets up logging (and span export, see `bucketfs_telemetry`) and hands
//! over.

mod admin;
mod bench;
mod bench_nfs;
mod bench_s3;
mod cluster_arg;
mod gateway;
mod local_s3;
mod nfs_cli;
mod serve;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bucketfs",
    version,
    about = "An S3 bucket as a shared NFS v4.1 file system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole bucketfs on this machine: a metadata node, a gateway and (unless you give
    /// --s3-endpoint) a local S3 server, with all state in --data-dir.
    Up(up::UpArgs),
    /// The metadata cluster: run a node, inspect it, change its membership.
    #[command(subcommand)]
    Meta(MetaCommand),
    /// NFS gateways: serve a bucket over NFS v4.1.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Benchmarks against a running deployment.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// List a directory over NFS (no kernel client needed).
    Ls(nfs_cli::LsArgs),
    /// Print files over NFS to standard output.
    Cat(nfs_cli::CatArgs),
    /// Copy files: remote to remote, or local:PATH to/from remote.
    Cp(nfs_cli::CpArgs),
    /// Upload a local file over NFS.
    Put(nfs_cli::PutArgs),
    /// Remove files (directories with -r) over NFS.
    Rm(nfs_cli::RmArgs),
    /// Make directories over NFS.
    Mkdir(nfs_cli::MkdirArgs),
    /// Show attributes over NFS: type, mode, owner, size, times, change.
    Stat(nfs_cli::StatArgs),
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// Run one NFS v4.1 gateway in the foreground.
    Serve(gateway::GatewayArgs),
}

#[derive(Subcommand)]
enum MetaCommand {
    /// Run one metadata node (one Raft member) in the foreground.
    Serve(serve::ServeArgs),
    /// Print every node's id, role, term, log and applied index, and the membership.
    Status(admin::StatusArgs),
    /// Add or remove cluster members.
    #[command(subcommand)]
    Members(admin::MembersCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Drive creates, lookups, getattrs and renames against a metadata cluster.
    Meta(bench::BenchMetaArgs),
    /// Small-file, stat and sequential I/O workloads against NFS v4.1 servers.
    Nfs(bench_nfs::BenchNfsArgs),
    /// The S3 server alone, with the requests the gateway makes for `bench nfs`.
    S3(bench_s3::BenchS3Args),
}

/// Log filter when `BUCKETFS_LOG` is not set (an `EnvFilter` directive string).
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn,h2=warn,tower=warn,hyper=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Only a node exports spans; the short-lived admin commands just log.
    let (service, otlp_endpoint) = match &cli.command {
        Command::Meta(MetaCommand::Serve(args)) => ("bucketfs-meta", args.otlp_endpoint()),
        Command::Gateway(GatewayCommand::Serve(args)) => ("bucketfs-gateway", args.otlp_endpoint()),
        Command::Up(_) => ("bucketfs-up", None),
        _ => ("bucketfs", None),
    };
    let filter = std::env::var("BUCKETFS_LOG").unwrap_or_else(|_| DEFAULT_LOG_FILTER.to_owned());
    // The OTLP exporter's gRPC channel is created on this runtime.
    let tracing_guard = {
        let _entered = runtime.enter();
        bucketfs_telemetry::init_tracing(service, otlp_endpoint.as_deref(), &filter)
    };
    let tracing_guard = match tracing_guard {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: setting up logging (BUCKETFS_LOG, --otlp-endpoint): {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Meta(MetaCommand::Serve(args)) => serve::run(args).await,
            Command::Gateway(GatewayCommand::Serve(args)) => gateway::run(args).await,
            Command::Up(args) => up::run(args).await,
            Command::Meta(MetaCommand::Status(args)) => admin::status(args).await,
            Command::Meta(MetaCommand::Members(cmd)) => admin::members(cmd).await,
            Command::Bench(BenchCommand::Meta(args)) => bench::run(args).await,
            Command::Bench(BenchCommand::Nfs(args)) => bench_nfs::run(args).await,
            Command::Bench(BenchCommand::S3(args)) => bench_s3::run(args).await,
            Command::Ls(args) => nfs_cli::ls(args).await,
            Command::Cat(args) => nfs_cli::cat(args).await,
            Command::Cp(args) => nfs_cli::cp(args).await,
            Command::Put(args) => nfs_cli::put(args).await,
            Command::Rm(args) => nfs_cli::rm(args).await,
            Command::Mkdir(args) => nfs_cli::mkdir(args).await,
            Command::Stat(args) => nfs_cli::stat(args).await,
        }
    });
    // Flushes the last spans; the export runs on the runtime, so before it is dropped.
    drop(tracing_guard);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
