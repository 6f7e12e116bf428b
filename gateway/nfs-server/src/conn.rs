//! TCP transport: accept loop and one task per connection.
//!
//! A connection task feeds stream bytes into a [`RecordReader`] and executes complete records
//! concurrently (the Linux client keeps many slots busy on one connection), writing each reply
//! as one record as soon as it is ready: RPC matches replies to calls by XID, and a slow call
//! (a COMMIT uploading a large file) must not hold back the replies of quick ones. A record larger than the server's limit
//! poisons the reader and the connection is closed once the records already complete have been
//! answered: the stream cannot be resynchronised without buffering the oversized record.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bucketfs_nfs_wire::{RecordReader, encode_record};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::fs::FileSystem;
use crate::server::NfsServer;

const READ_CHUNK: usize = 64 * 1024;
/// Calls executed concurrently per connection: a full slot table's worth, plus headroom for
/// sessionless calls. Reading pauses while this many are in flight.
const MAX_IN_FLIGHT: usize = 80;

/// Accepts connections on `listener` until `shutdown` completes; then every connection task
/// stops at its next read. Also expires idle clients every half lease.
pub async fn serve<F: FileSystem>(
    listener: TcpListener,
    server: Arc<NfsServer<F>>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut reaper =
        tokio::time::interval((server.config().lease / 2).max(Duration::from_millis(100)));
    reaper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = reaper.tick() => {
                let dropped = server.expire_clients().await;
                if dropped > 0 {
                    debug!(dropped, "expired idle clients");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "connection accepted");
                    let server = Arc::clone(&server);
                    let stop = stop_rx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_connection(stream, server, stop).await {
                            debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    // Receivers see the change even if they are not waiting right now.
    let _ = stop_tx.send(true);
}

async fn serve_connection<F: FileSystem>(
    stream: TcpStream,
    server: Arc<NfsServer<F>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut reader = RecordReader::new(server.config().max_record);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pending = FuturesUnordered::new();
    // Set at end of stream or on an unreadable stream: answer what is in flight, then close.
    let mut closing = false;
    loop {
        while pending.len() < MAX_IN_FLIGHT
            && let Some(record) = reader.next_record()
        {
            let server = Arc::clone(&server);
            // A task per call, so the calls of one busy connection use every core.
            pending.push(tokio::spawn(
                async move { server.handle_record(&record).await },
            ));
        }
        if closing && pending.is_empty() {
            return Ok(());
        }
        let can_read = !closing && pending.len() < MAX_IN_FLIGHT;
        tokio::select! {
            Some(done) = pending.next(), if !pending.is_empty() => match done {
                Ok(Some(reply)) => wr.write_all(&encode_record(&reply)).await?,
                Ok(None) => {}
                // A call that panicked gets no reply; the client retransmits or times out,
                // and the connection carries on.
                Err(e) => warn!(error = %e, "an NFS call failed without a reply"),
            },
            read = rd.read(&mut buf), if can_read => {
                let n = read?;
                if n == 0 {
                    closing = true;
                } else if let Err(e) = reader.feed(&buf[..n]) {
                    warn!(error = %e, "closing connection");
                    closing = true;
                }
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}
