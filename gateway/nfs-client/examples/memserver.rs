//! `memserver`: the in-memory NFS v4.1 server (nfs-server over `MemFs`) on a TCP address, for
//! trying the client, `bucketfs bench nfs` and the `bucketfs ls/cat/...` commands by hand.
//!
//! ```text
//! cargo run -p bucketfs-nfs-client --example memserver -- 127.0.0.1:2049
//! ```
//!
//! Prints `memserver: listening on ADDR` once bound (port 0 picks a free one) and serves until
//! SIGINT/SIGTERM. The export is `/`, empty, mode 0755, owned by root; nothing persists.

use std::process::ExitCode;
use std::sync::Arc;

use bucketfs_nfs_server::{MemClientRegistry, MemFs, MemOpenStore, NfsServer, ServerConfig, serve};
use bucketfs_runtime::{Entropy, SystemClock};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2049".to_owned());
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("memserver: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bound = listener
        .local_addr()
        .map_or(addr.clone(), |a| a.to_string());
    let entropy = Entropy::os();
    let boot = entropy.next_u64() as u32;
    let server = Arc::new(NfsServer::new(
        MemFs::new(),
        Arc::new(MemClientRegistry::new(boot)),
        Arc::new(MemOpenStore::new(boot)),
        Arc::new(SystemClock),
        ServerConfig::default(),
        entropy.next_u64().to_be_bytes(),
        boot,
    ));
    println!("memserver: listening on {bound}");
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("memserver: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    serve(listener, server, async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
    .await;
    ExitCode::SUCCESS
}
