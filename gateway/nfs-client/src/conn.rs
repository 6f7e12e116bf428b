//! One TCP connection: record marking, XID matching, many calls in flight.
//!
//! A writer task sends whole records from a queue (so a caller that gives up mid-call can
//! never leave half a record on the stream), a reader task reassembles reply records and hands
//! each to the caller waiting on its XID. When either side of the stream fails, every waiting
//! call gets [`Error::ConnectionLost`] and later calls fail at once; the connection is never
//! reused after that. Records the server sends as CALLs (a back channel we did not ask for)
//! are answered: NULL with success, anything else with PROC_UNAVAIL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_nfs_wire::rpc::{MSG_CALL, MSG_REPLY, PROC_NULL, ReplyBody};
use bucketfs_nfs_wire::xdr::Decoder;
use bucketfs_nfs_wire::{RecordReader, null_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::error::{Error, Result};

const READ_CHUNK: usize = 256 * 1024;
/// Records queued for the writer; callers wait (bounded by their timeout) when it is full.
const SEND_QUEUE: usize = 128;

type Waiter = oneshot::Sender<Result<Vec<u8>>>;

#[derive(Default)]
struct Pending {
    waiters: HashMap<u32, Waiter>,
    /// Set once the connection is dead, with the reason.
    dead: Option<String>,
}

struct Shared {
    pending: Mutex<Pending>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection dead and fails every waiting call.
    fn kill(&self, reason: String) {
        let waiters = {
            let mut p = self.lock();
            if p.dead.is_none() {
                p.dead = Some(reason.clone());
            }
            std::mem::take(&mut p.waiters)
        };
        for (_, w) in waiters {
            let _ = w.send(Err(Error::ConnectionLost(reason.clone())));
        }
    }
}

/// A live connection to one server.
pub(crate) struct Connection {
    out: mpsc::Sender<Vec<u8>>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    write_timeout: Duration,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.kill("connection closed by the client".into());
        self.reader.abort();
        self.writer.abort();
    }
}

impl Connection {
    /// Connects with a timeout. `max_record` bounds one reply record.
    pub(crate) async fn connect(
        addr: &str,
        connect_timeout: Duration,
        write_timeout: Duration,
        max_record: usize,
    ) -> Result<Self> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout {
                what: "TCP connect",
                after: connect_timeout,
            })?
            .map_err(|source| Error::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
        });
        let (out, rx) = mpsc::channel(SEND_QUEUE);
        let writer = tokio::spawn(write_loop(wr, rx, Arc::clone(&shared), write_timeout));
        let reader = tokio::spawn(read_loop(rd, out.clone(), Arc::clone(&shared), max_record));
        Ok(Self {
            out,
            shared,
            reader,
            writer,
            write_timeout,
        })
    }

    /// Whether the connection has failed.
    pub(crate) fn is_dead(&self) -> bool {
        self.shared.lock().dead.is_some()
    }

    /// Closes the connection: waiting calls fail, the socket closes.
    pub(crate) fn kill(&self, reason: &str) {
        self.shared.kill(reason.to_owned());
        self.reader.abort();
        self.writer.abort();
    }

    /// Sends one record-framed call (`record` starts with its 4-byte record mark, then the
    /// XID) and waits up to `timeout` for the reply message with the same XID.
    pub(crate) async fn call(
        &self,
        xid: u32,
        record: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.shared.lock();
            if let Some(reason) = &p.dead {
                return Err(Error::ConnectionLost(reason.clone()));
            }
            p.waiters.insert(xid, tx);
        }
        let unregister = |shared: &Shared| {
            shared.lock().waiters.remove(&xid);
        };
        match tokio::time::timeout(self.write_timeout, self.out.send(record)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                unregister(&self.shared);
                return Err(Error::ConnectionLost("writer stopped".into()));
            }
            Err(_) => {
                unregister(&self.shared);
                return Err(Error::Timeout {
                    what: "queueing a call",
                    after: self.write_timeout,
                });
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(Error::ConnectionLost("reply channel dropped".into())),
            Err(_) => {
                unregister(&self.shared);
                Err(Error::Timeout {
                    what: "RPC reply",
                    after: timeout,
                })
            }
        }
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    write_timeout: Duration,
) {
    while let Some(record) = rx.recv().await {
        match tokio::time::timeout(write_timeout, wr.write_all(&record)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shared.kill(format!("write failed: {e}"));
                return;
            }
            Err(_) => {
                shared.kill(format!("write stalled for {write_timeout:?}"));
                return;
            }
        }
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    out: mpsc::Sender<Vec<u8>>,
    shared: Arc<Shared>,
    max_record: usize,
) {
    let mut reader = RecordReader::new(max_record);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => {
                shared.kill("server closed the connection".into());
                return;
            }
            Ok(n) => n,
            Err(e) => {
                shared.kill(format!("read failed: {e}"));
                return;
            }
        };
        if let Err(e) = reader.feed(&buf[..n]) {
            shared.kill(format!("unreadable reply stream: {e}"));
            return;
        }
        while let Some(record) = reader.next_record() {
            dispatch(record, &out, &shared);
        }
    }
}

fn dispatch(record: Vec<u8>, out: &mpsc::Sender<Vec<u8>>, shared: &Shared) {
    let mut d = Decoder::new(&record);
    let (Ok(xid), Ok(msg_type)) = (d.u32(), d.u32()) else {
        debug!(
            len = record.len(),
            "dropping a record too short for an RPC header"
        );
        return;
    };
    match msg_type {
        MSG_REPLY => {
            let waiter = shared.lock().waiters.remove(&xid);
            match waiter {
                Some(w) => {
                    let _ = w.send(Ok(record));
                }
                None => debug!(xid, "reply for no outstanding call (timed out?)"),
            }
        }
        MSG_CALL => {
            // rpcvers, prog, vers, proc.
            let proc_ = (d.u32(), d.u32(), d.u32(), d.u32());
            let reply = match proc_ {
                (Ok(_), Ok(_), Ok(_), Ok(PROC_NULL)) => null_reply(xid),
                _ => ReplyBody::ProcUnavail.to_message(xid),
            };
            let _ = out.try_send(frame(reply));
        }
        other => debug!(
            xid,
            other, "dropping a record that is neither CALL nor REPLY"
        ),
    }
}

/// Prepends the record mark to a message.
pub(crate) fn frame(mut message: Vec<u8>) -> Vec<u8> {
    let header = bucketfs_nfs_wire::record::record_header(message.len());
    message.splice(0..0, header);
    message
}
