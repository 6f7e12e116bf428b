//! `memserve`: the NFS v4.1 server core over an in-memory [`MemFs`], for testing the server
//! against real clients (the kernel client in `jepsen/guest`).
//!
//! ```text
//! cargo run -p bucketfs-nfs-server --example memserve -- --listen 127.0.0.1:2049
//! ```
//!
//! Serves until killed (SIGTERM, SIGINT). The export is `/`, empty, mode 0755, owned by root.
//! There is no grace period, owners are numeric and root is not squashed (`ServerConfig::root_squash` stays off), which is what the
//! harness expects. Prints `memserve: listening on ADDR` once the socket is bound (with
//! `--listen 127.0.0.1:0` that line names the port the kernel picked).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bucketfs_nfs_server::{MemClientRegistry, MemFs, MemOpenStore, NfsServer, ServerConfig, serve};
use bucketfs_runtime::{Clock, Entropy, SystemClock};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: memserve --listen ADDR:PORT [--lease SECONDS]";

struct Args {
    listen: SocketAddr,
    lease: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut lease = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match key.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                listen = Some(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "--lease" => {
                let v = value("--lease")?;
                let secs: u64 = v.parse().map_err(|e| format!("--lease {v}: {e}"))?;
                lease = Some(Duration::from_secs(secs));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or_else(|| USAGE.to_owned())?,
        lease,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("memserve: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);

    let clock = Arc::new(SystemClock);
    // The boot number is the high half of every clientid, and the write verifier tells a
    // client that uncommitted data died with a previous instance: both must differ between
    // runs.
    let entropy = Entropy::os();
    let boot = u32::try_from(clock.wall_nanos() / 1_000_000_000 % i128::from(u32::MAX))
        .unwrap_or(1)
        .max(1);
    let write_verifier = entropy.next_u64().to_be_bytes();
    let mut config = ServerConfig::default();
    if let Some(lease) = args.lease {
        config.lease = lease;
    }
    let server = Arc::new(NfsServer::new(
        MemFs::new(),
        Arc::new(MemClientRegistry::new(boot)),
        Arc::new(MemOpenStore::new(boot)),
        clock,
        config,
        write_verifier,
        boot,
    ));

    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("memserve: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    println!("memserve: listening on {addr}");
    serve(listener, server, async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
    .await;
    eprintln!("memserve: stopped");
    ExitCode::SUCCESS
}
