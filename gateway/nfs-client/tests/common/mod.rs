//! Test harness: the in-memory NFS server on 127.0.0.1 and a record-aware TCP proxy that can
//! cut connections, switch to another server, and rewrite or drop replies.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bucketfs_nfs_client::{Client, ClientOptions};
use bucketfs_nfs_server::{MemClientRegistry, MemFs, MemOpenStore, NfsServer, ServerConfig, serve};
use bucketfs_nfs_wire::nfs::{CompoundRes, NfsResOp, Opcode};
use bucketfs_nfs_wire::rpc::ReplyBody;
use bucketfs_nfs_wire::xdr::{Decoder, Encoder};
use bucketfs_nfs_wire::{Classified, RecordReader, classify_call, encode_record};
use bucketfs_runtime::SystemClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// The write verifier of test servers.
pub const WRITE_VERIFIER: [u8; 8] = *b"bootverf";

pub struct TestServer {
    pub addr: SocketAddr,
    pub server: Arc<NfsServer<MemFs>>,
    _stop: oneshot::Sender<()>,
}

pub async fn start() -> TestServer {
    start_with(ServerConfig::default(), 0x1234).await
}

/// A server with its own `boot` number (client ids and stateids of different boots differ,
/// as after a restart).
pub async fn start_with(config: ServerConfig, boot: u32) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(NfsServer::new(
        MemFs::new(),
        Arc::new(MemClientRegistry::new(boot)),
        Arc::new(MemOpenStore::new(boot)),
        Arc::new(SystemClock),
        config,
        WRITE_VERIFIER,
        boot,
    ));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::clone(&server), async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        server,
        _stop: tx,
    }
}

/// Short timeouts so a broken test fails fast.
pub fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(10),
        retry_delay: Duration::from_millis(20),
        ..ClientOptions::default()
    }
}

pub async fn connect(addr: SocketAddr) -> Client {
    Client::connect(addr.to_string(), options()).await.unwrap()
}

/// What the proxy does with one reply record.
pub enum Verdict {
    Forward,
    Replace(Vec<u8>),
    Drop,
}

type Hook = Box<dyn FnMut(&[u8]) -> Verdict + Send>;

struct ProxyState {
    upstream: Mutex<SocketAddr>,
    hook: Mutex<Option<Hook>>,
    kill: watch::Sender<u64>,
    connections: AtomicUsize,
    calls: Mutex<Vec<Vec<Opcode>>>,
    outstanding: AtomicUsize,
    max_outstanding: AtomicUsize,
}

/// A proxy in front of a server.
#[derive(Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (kill, _) = watch::channel(0);
        let state = Arc::new(ProxyState {
            upstream: Mutex::new(upstream),
            hook: Mutex::new(None),
            kill,
            connections: AtomicUsize::new(0),
            calls: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
            max_outstanding: AtomicUsize::new(0),
        });
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                st.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(relay(sock, Arc::clone(&st)));
            }
        });
        Proxy { addr, state }
    }

    /// Closes every connection now open.
    pub fn cut(&self) {
        self.state.kill.send_modify(|g| *g += 1);
    }

    /// New connections go to `upstream`.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.state.upstream.lock().unwrap() = upstream;
    }

    /// Every reply record (an RPC message) passes through `hook` until cleared.
    pub fn set_hook(&self, hook: impl FnMut(&[u8]) -> Verdict + Send + 'static) {
        *self.state.hook.lock().unwrap() = Some(Box::new(hook));
    }

    pub fn clear_hook(&self) {
        *self.state.hook.lock().unwrap() = None;
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The opcodes of every COMPOUND seen so far, in arrival order.
    pub fn calls(&self) -> Vec<Vec<Opcode>> {
        self.state.calls.lock().unwrap().clone()
    }

    /// How many COMPOUNDs contained `op`.
    pub fn count(&self, op: Opcode) -> usize {
        self.calls().iter().filter(|c| c.contains(&op)).count()
    }

    /// Most calls outstanding at once (sent by the client, not yet answered).
    pub fn max_outstanding(&self) -> usize {
        self.state.max_outstanding.load(Ordering::SeqCst)
    }
}

async fn relay(client: TcpStream, st: Arc<ProxyState>) {
    let upstream = *st.upstream.lock().unwrap();
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let mut kill = st.kill.subscribe();
    kill.mark_unchanged();
    let (mut crd, mut cwr) = client.into_split();
    let (mut srd, mut swr) = server.into_split();
    let st2 = Arc::clone(&st);
    let up = async move {
        let mut reader = RecordReader::new(16 << 20);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match crd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if reader.feed(&buf[..n]).is_err() {
                return;
            }
            while let Some(rec) = reader.next_record() {
                if let Classified::Compound { args, .. } = classify_call(&rec)
                    && let bucketfs_nfs_wire::nfs::CompoundBody::Ops { ops, .. } = args.body
                {
                    st2.calls
                        .lock()
                        .unwrap()
                        .push(ops.iter().map(|o| o.opcode()).collect());
                }
                let now = st2.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
                st2.max_outstanding.fetch_max(now, Ordering::SeqCst);
                if swr.write_all(&encode_record(&rec)).await.is_err() {
                    return;
                }
            }
        }
    };
    let st3 = Arc::clone(&st);
    let down = async move {
        let mut reader = RecordReader::new(16 << 20);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match srd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if reader.feed(&buf[..n]).is_err() {
                return;
            }
            while let Some(rec) = reader.next_record() {
                let _ = st3
                    .outstanding
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
                let verdict = match st3.hook.lock().unwrap().as_mut() {
                    Some(h) => h(&rec),
                    None => Verdict::Forward,
                };
                let out = match verdict {
                    Verdict::Forward => rec,
                    Verdict::Replace(m) => m,
                    Verdict::Drop => continue,
                };
                if cwr.write_all(&encode_record(&out)).await.is_err() {
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        _ = kill.changed() => {}
    }
}

/// Decodes a COMPOUND reply message; `None` for anything else (NULL replies, errors).
pub fn decode_reply(msg: &[u8]) -> Option<(u32, CompoundRes)> {
    let mut d = Decoder::new(msg);
    let xid = d.u32().ok()?;
    let _ = (d.u32().ok()?, d.u32().ok()?, d.u32().ok()?);
    d.opaque(400, "verf").ok()?;
    if d.u32().ok()? != 0 || d.is_empty() {
        return None;
    }
    let res = CompoundRes::decode(&mut d).ok()?;
    Some((xid, res))
}

/// A SUCCESS reply message carrying `res`.
pub fn encode_reply(xid: u32, res: &CompoundRes) -> Vec<u8> {
    let mut e = Encoder::new();
    ReplyBody::Success.encode(xid, &mut e);
    res.encode(&mut e);
    e.into_vec()
}

/// Whether a reply's results include `op`.
pub fn has(res: &CompoundRes, op: Opcode) -> bool {
    res.results.iter().any(|r| r.opcode() == op)
}

/// The results with `f` applied to each.
pub fn map_results(res: &CompoundRes, mut f: impl FnMut(&NfsResOp) -> NfsResOp) -> CompoundRes {
    CompoundRes::new(res.tag.clone(), res.results.iter().map(&mut f).collect())
}

/// A data pattern that differs at every offset (catches misplaced chunks).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}
