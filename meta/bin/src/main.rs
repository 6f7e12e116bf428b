//! `bucketfs`: the one binary. Each subcommand lives in its own module; this file only parses
//! the command line, sets up logging and hands over.

mod admin;
mod bench;
mod cluster_arg;
mod serve;

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
    /// The metadata cluster: run a node, inspect it, change its membership.
    #[command(subcommand)]
    Meta(MetaCommand),
    /// Benchmarks against a running deployment.
    #[command(subcommand)]
    Bench(BenchCommand),
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Meta(MetaCommand::Serve(args)) => serve::run(args).await,
            Command::Meta(MetaCommand::Status(args)) => admin::status(args).await,
            Command::Meta(MetaCommand::Members(cmd)) => admin::members(cmd).await,
            Command::Bench(BenchCommand::Meta(args)) => bench::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("BUCKETFS_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn,h2=warn,tower=warn,hyper=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
