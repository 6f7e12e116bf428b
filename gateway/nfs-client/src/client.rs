//! The client: mount sequence, sessions, the slot table, recovery and lease renewal.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bucketfs_nfs_wire::nfs::attr::{
    FATTR4_LEASE_TIME, FATTR4_MAXFILESIZE, FATTR4_MAXREAD, FATTR4_MAXWRITE,
};
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::{Opaque, SessionId, Utf8String, Verifier};
use bucketfs_nfs_wire::nfs::{
    Attr, Bitmap, FileHandle, NfsArgOp, NfsResOp, NfsStatus, NfsTime, Opcode,
};
use bucketfs_nfs_wire::rpc::{AuthSys, Credential};
use bucketfs_runtime::{Clock, Entropy, SystemClock};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::attrs::getattr_bitmap;
use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::rpc::{compound_record, decode_compound, null_record, reply_body};
use crate::slots::SlotTable;

/// `OPEN4_SHARE_ACCESS_WANT_NO_DELEG`: this client cannot answer recalls, so it never wants
/// a delegation.
pub(crate) const WANT_NO_DELEG: u32 = 0x0400;
/// Bytes of a READ reply around its data (RPC reply header, COMPOUND header, SEQUENCE, PUTFH
/// and READ results: about 100), subtracted from the session's response limit to size READs.
const READ_OVERHEAD: u32 = 512;
/// Bytes of a WRITE call around its data (RPC header with an AUTH_SYS credential of at most
/// about 350 bytes, SEQUENCE, PUTFH with a 128-byte handle, WRITE's fields: at most about
/// 600). Linux's 1049620/1049480 byte limits leave room for 1 MiB of data with these.
const WRITE_OVERHEAD: u32 = 768;

/// How to reach and talk to the server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// AUTH_SYS identity of every call.
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (at most 16 are sent).
    pub gids: Vec<u32>,
    /// AUTH_SYS machine name.
    pub machine_name: String,
    /// EXCHANGE_ID co_ownerid; `None` makes a unique one per [`Client::connect`], so two
    /// clients in one process never share state.
    pub owner_id: Option<Vec<u8>>,
    /// Path of the export below the server's root ("/" for the root itself); every path the
    /// client takes is relative to it, as with `mount server:/export`.
    pub export: String,
    /// Slots to ask for (requests in flight on the connection).
    pub slots: u32,
    /// ca_maxoperations to ask for; at least 8.
    pub max_ops: u32,
    /// TCP connect, and each call of the mount and recovery sequences.
    pub connect_timeout: Duration,
    /// Longest wait for one reply (and for a free slot).
    pub call_timeout: Duration,
    /// Attempts after the first when the connection or session is lost, or the server
    /// answers NFS4ERR_DELAY.
    pub max_retries: u32,
    /// First back-off between attempts; doubles up to 2 s.
    pub retry_delay: Duration,
    /// Upper bound for rsize/wsize (the server's maxread/maxwrite and session limits apply
    /// too).
    pub max_io: u32,
    /// READs/WRITEs in flight in the whole-file helpers.
    pub io_depth: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            uid: 0,
            gid: 0,
            gids: Vec::new(),
            machine_name: "bucketfs-client".into(),
            owner_id: None,
            export: "/".into(),
            slots: 64,
            max_ops: 16,
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
            max_retries: 5,
            retry_delay: Duration::from_millis(100),
            max_io: 1024 * 1024,
            io_depth: 8,
        }
    }
}

/// What the server told us about the export at mount time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    pub lease: Duration,
    /// READ size used by the helpers.
    pub rsize: u32,
    /// WRITE size used by the helpers.
    pub wsize: u32,
    pub max_file_size: Option<u64>,
    /// Slots granted by the server.
    pub slots: u32,
    /// Operations per COMPOUND granted.
    pub max_ops: u32,
}

/// Counters, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// COMPOUNDs answered.
    pub calls: u64,
    /// EXCHANGE_IDs that succeeded (1 after mount; more after a server restart).
    pub exchanges: u64,
    /// CREATE_SESSIONs that succeeded (1 after mount; one more per recovery).
    pub sessions: u64,
    /// Attempts repeated after a lost session or connection, or DELAY.
    pub retries: u64,
}

#[derive(Debug)]
struct ClientRecord {
    clientid: u64,
    /// csa_sequence for the next CREATE_SESSION.
    cs_sequence: u32,
    /// No EXCHANGE_ID has succeeded yet, or the server forgot us.
    need_exchange: bool,
    /// RECLAIM_COMPLETE is due on the next session.
    need_reclaim_complete: bool,
}

/// A connection with its session.
pub(crate) struct Link {
    pub(crate) generation: u64,
    conn: Connection,
    session: SessionId,
    slots: SlotTable,
    max_ops: u32,
    max_request: u32,
    max_response: u32,
}

pub(crate) struct Inner {
    addr: String,
    pub(crate) opts: ClientOptions,
    cred: Credential,
    clock: SystemClock,
    started: Instant,
    verifier: Verifier,
    owner_id: Vec<u8>,
    next_xid: AtomicU32,
    next_owner: AtomicU64,
    generation: AtomicU64,
    record: Mutex<ClientRecord>,
    link: Mutex<Option<Arc<Link>>>,
    recovery: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    last_activity_ms: AtomicU64,
    calls: AtomicU64,
    exchanges: AtomicU64,
    sessions: AtomicU64,
    retries: AtomicU64,
    /// Lease in milliseconds, for the renewer (set at mount).
    lease_ms: AtomicU64,
}

/// An NFS v4.1 client over one TCP connection. Cloning is cheap and shares the connection,
/// the session and its slots, so many tasks can drive one client.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    mounted: Arc<Mounted>,
}

struct Mounted {
    root: FileHandle,
    info: FsInfo,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.inner.addr)
            .field("export", &self.inner.opts.export)
            .finish_non_exhaustive()
    }
}

/// What one attempt of a COMPOUND on a link came to.
enum Attempt {
    Done(Vec<NfsResOp>),
    /// SEQUENCE said the session is gone (or unusable).
    SessionLost(NfsStatus),
    /// DELAY or GRACE: try again later.
    Later(Opcode, NfsStatus),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// Connects to `addr` ("host:port") and mounts like Linux: NULL, EXCHANGE_ID,
    /// CREATE_SESSION, RECLAIM_COMPLETE, PUTROOTFH+GETFH+GETATTR, then the export path and
    /// the file system limits. A lease renewer runs in the background until the last clone of
    /// the client is dropped or [`Client::close`] is called.
    pub async fn connect(addr: impl Into<String>, options: ClientOptions) -> Result<Client> {
        if options.max_ops < 8 {
            return Err(Error::InvalidArgument("max_ops must be at least 8".into()));
        }
        let entropy = Entropy::os();
        let owner_id = options.owner_id.clone().unwrap_or_else(|| {
            format!(
                "bucketfs-nfs-client/{}/{:016x}",
                options.machine_name,
                entropy.next_u64()
            )
            .into_bytes()
        });
        let mut gids = options.gids.clone();
        gids.truncate(bucketfs_nfs_wire::rpc::MAX_AUTH_SYS_GIDS);
        let mut machine_name = options.machine_name.clone().into_bytes();
        machine_name.truncate(bucketfs_nfs_wire::rpc::MAX_MACHINE_NAME);
        let cred = Credential::Sys(AuthSys {
            stamp: entropy.next_u64() as u32,
            machine_name,
            uid: options.uid,
            gid: options.gid,
            gids,
        });
        let clock = SystemClock;
        let inner = Arc::new(Inner {
            addr: addr.into(),
            cred,
            started: clock.now(),
            clock,
            verifier: entropy.next_u64().to_be_bytes(),
            owner_id,
            next_xid: AtomicU32::new(entropy.next_u64() as u32),
            next_owner: AtomicU64::new(1),
            generation: AtomicU64::new(0),
            record: Mutex::new(ClientRecord {
                clientid: 0,
                cs_sequence: 0,
                need_exchange: true,
                need_reclaim_complete: true,
            }),
            link: Mutex::new(None),
            recovery: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
            last_activity_ms: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            exchanges: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            lease_ms: AtomicU64::new(90_000),
            opts: options,
        });
        let link = inner.establish(true).await?;
        *lock(&inner.link) = Some(Arc::new(link));
        let bootstrap = Client {
            inner,
            mounted: Arc::new(Mounted {
                root: FileHandle::new(Vec::new()).unwrap_or_else(|| unreachable!()),
                info: FsInfo {
                    lease: Duration::from_secs(90),
                    rsize: 4096,
                    wsize: 4096,
                    max_file_size: None,
                    slots: 1,
                    max_ops: 8,
                },
            }),
        };
        let mounted = bootstrap.mount().await?;
        let client = Client {
            inner: bootstrap.inner,
            mounted: Arc::new(mounted),
        };
        spawn_renewer(Arc::downgrade(&client.inner));
        Ok(client)
    }

    async fn mount(&self) -> Result<Mounted> {
        let results = self
            .compound(&[
                NfsArgOp::PutRootFh,
                NfsArgOp::GetFh,
                NfsArgOp::GetAttr(GetAttrArgs {
                    attr_request: getattr_bitmap(),
                }),
            ])
            .await?;
        let mut r = crate::ops::Results::new(results)?;
        r.skip()?;
        let mut fh = r.fh()?;
        let mut attrs = r.attrs()?;
        let export = self.inner.opts.export.clone();
        let components = crate::ops::components(&export)?;
        if !components.is_empty() {
            (fh, attrs) = self.lookup_components(&fh, &components).await?;
        }
        if !attrs.is_dir() {
            return Err(Error::Nfs {
                op: Opcode::Lookup,
                status: NfsStatus::NotDir,
            });
        }
        let wanted = Bitmap::from_bits(&[
            FATTR4_LEASE_TIME,
            FATTR4_MAXREAD,
            FATTR4_MAXWRITE,
            FATTR4_MAXFILESIZE,
        ]);
        let results = self
            .compound(&[
                NfsArgOp::PutFh(PutFhArgs { object: fh.clone() }),
                NfsArgOp::GetAttr(GetAttrArgs {
                    attr_request: wanted,
                }),
            ])
            .await?;
        let mut r = crate::ops::Results::new(results)?;
        r.skip()?;
        let fattr = r.fattr()?;
        let values = fattr
            .decode_attrs()
            .map_err(|e| Error::Malformed(format!("fs info attributes: {e}")))?;
        let (mut lease, mut maxread, mut maxwrite, mut maxfile) = (90u32, u64::MAX, u64::MAX, None);
        for v in values {
            match v {
                Attr::LeaseTime(s) => lease = s,
                Attr::MaxRead(n) => maxread = n,
                Attr::MaxWrite(n) => maxwrite = n,
                Attr::MaxFileSize(n) => maxfile = Some(n),
                _ => {}
            }
        }
        let link = self
            .inner
            .current_link()
            .ok_or_else(|| Error::ConnectionLost("connection lost during mount".into()))?;
        let io = |server_max: u64, session_max: u32, overhead: u32| -> u32 {
            let n = u64::from(self.inner.opts.max_io)
                .min(server_max)
                .min(u64::from(session_max.saturating_sub(overhead)));
            // Whole pages, at least one.
            ((n as u32) & !4095).max(4096)
        };
        let info = FsInfo {
            lease: Duration::from_secs(u64::from(lease.max(1))),
            rsize: io(maxread, link.max_response, READ_OVERHEAD),
            wsize: io(maxwrite, link.max_request, WRITE_OVERHEAD),
            max_file_size: maxfile,
            slots: link.slots.size() as u32,
            max_ops: link.max_ops,
        };
        debug!(?info, "mounted");
        self.inner
            .lease_ms
            .store(info.lease.as_millis() as u64, Ordering::Relaxed);
        Ok(Mounted { root: fh, info })
    }

    /// The export's root directory.
    pub fn root(&self) -> &FileHandle {
        &self.mounted.root
    }

    /// Lease, I/O sizes and session limits learned at mount.
    pub fn fs_info(&self) -> &FsInfo {
        &self.mounted.info
    }

    /// The server address this client talks to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The current clientid (it changes if the server restarts and forgets us).
    pub fn clientid(&self) -> u64 {
        lock(&self.inner.record).clientid
    }

    pub fn stats(&self) -> ClientStats {
        let i = &self.inner;
        ClientStats {
            calls: i.calls.load(Ordering::Relaxed),
            exchanges: i.exchanges.load(Ordering::Relaxed),
            sessions: i.sessions.load(Ordering::Relaxed),
            retries: i.retries.load(Ordering::Relaxed),
        }
    }

    /// A fresh open-owner name: every open of this client is its own open-owner, like a
    /// separate file descriptor, so concurrent opens of one file never share state.
    pub(crate) fn new_open_owner(&self) -> Vec<u8> {
        let n = self.inner.next_owner.fetch_add(1, Ordering::Relaxed);
        format!("open-{n}").into_bytes()
    }

    /// Runs `ops` after a SEQUENCE, with recovery and retries; returns the results after
    /// SEQUENCE's, all of them successful. The first failure is the error.
    pub(crate) async fn compound(&self, ops: &[NfsArgOp]) -> Result<Vec<NfsResOp>> {
        let results = self.compound_raw(ops).await?;
        if let Some(failed) = results.iter().find(|r| !r.status().is_ok()) {
            return Err(crate::ops::error_of(failed));
        }
        Ok(results)
    }

    /// Like [`Client::compound`] but failures stay in the results (they end the list).
    pub(crate) async fn compound_raw(&self, ops: &[NfsArgOp]) -> Result<Vec<NfsResOp>> {
        self.inner.compound(ops).await
    }

    /// Ends the session and the client id on the server (best effort, bounded by the
    /// connect timeout), and stops the lease renewer. Later calls fail with
    /// [`Error::Closed`]; opens not closed before are dropped by the server.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(link) = lock(&self.inner.link).take() else {
            return;
        };
        let t = self.inner.opts.connect_timeout;
        let _ = self
            .inner
            .sessionless(
                &link.conn,
                NfsArgOp::DestroySession(DestroySessionArgs {
                    sessionid: link.session,
                }),
                t,
            )
            .await;
        let clientid = self.clientid();
        let _ = self
            .inner
            .sessionless(
                &link.conn,
                NfsArgOp::DestroyClientId(DestroyClientIdArgs { clientid }),
                t,
            )
            .await;
        link.conn.kill("client closed");
    }

    /// Test hook: breaks the connection as if the network dropped it.
    #[doc(hidden)]
    pub fn break_connection(&self) {
        if let Some(link) = self.inner.current_link() {
            link.conn.kill("broken on purpose");
        }
    }
}

impl Inner {
    fn xid(&self) -> u32 {
        self.next_xid.fetch_add(1, Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        self.clock
            .now()
            .saturating_duration_since(self.started)
            .as_millis() as u64
    }

    fn idle(&self) -> Duration {
        let last = self.last_activity_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    pub(crate) fn current_link_max_ops(&self) -> Option<u32> {
        self.current_link().map(|l| l.max_ops)
    }

    pub(crate) fn current_link(&self) -> Option<Arc<Link>> {
        lock(&self.link).clone()
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.opts.retry_delay.max(Duration::from_millis(1));
        base.saturating_mul(1u32 << attempt.min(16))
            .min(Duration::from_secs(2))
    }

    /// A lone sessionless operation (EXCHANGE_ID, CREATE_SESSION, DESTROY_*).
    async fn sessionless(
        &self,
        conn: &Connection,
        op: NfsArgOp,
        timeout: Duration,
    ) -> Result<NfsResOp> {
        let xid = self.xid();
        let record = compound_record(xid, &self.cred, b"", None, std::slice::from_ref(&op), 0);
        let reply = conn.call(xid, record, timeout).await?;
        let res = decode_compound(&reply)?;
        let mut results = res.results.into_iter();
        match (results.next(), results.next()) {
            (Some(r), None) if r.opcode() == op.opcode() => {
                if r.status().is_ok() {
                    Ok(r)
                } else {
                    Err(crate::ops::error_of(&r))
                }
            }
            (None, None) => Err(Error::Compound { status: res.status }),
            _ => Err(Error::Malformed(format!(
                "reply to a lone {:?} has other results",
                op.opcode()
            ))),
        }
    }

    /// Opens a connection and a session on it (EXCHANGE_ID first if the server does not
    /// know us), then RECLAIM_COMPLETE if it is due. `mount` adds the NULL ping Linux sends.
    async fn establish(&self, mount: bool) -> Result<Link> {
        let t = self.opts.connect_timeout;
        let max_record = (self.opts.max_io as usize + 64 * 1024).max(2 << 20);
        let conn =
            Connection::connect(&self.addr, t, t.max(self.opts.call_timeout), max_record).await?;
        if mount {
            let xid = self.xid();
            let reply = conn.call(xid, null_record(xid, &self.cred), t).await?;
            reply_body(&reply)?;
        }
        let mut exchanged = false;
        let session = loop {
            let (need_exchange, clientid, sequence) = {
                let r = lock(&self.record);
                (r.need_exchange, r.clientid, r.cs_sequence)
            };
            let (clientid, sequence) = if need_exchange {
                let (c, s) = self.exchange_id(&conn, t).await?;
                exchanged = true;
                (c, s)
            } else {
                (clientid, sequence)
            };
            match self.create_session(&conn, clientid, sequence, t).await {
                Ok(cs) => {
                    let mut r = lock(&self.record);
                    r.clientid = clientid;
                    r.cs_sequence = sequence.wrapping_add(1);
                    r.need_exchange = false;
                    break cs;
                }
                Err(e)
                    if !exchanged
                        && (e.is(NfsStatus::StaleClientId) || e.is(NfsStatus::SeqMisordered)) =>
                {
                    debug!(error = %e, "server forgot the client id; EXCHANGE_ID again");
                    let mut r = lock(&self.record);
                    r.need_exchange = true;
                    r.need_reclaim_complete = true;
                }
                Err(e) => return Err(e),
            }
        };
        self.sessions.fetch_add(1, Ordering::Relaxed);
        let fore = &session.fore_chan_attrs;
        let slots = fore.maxrequests.clamp(1, self.opts.slots.max(1));
        let link = Link {
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            conn,
            session: session.sessionid,
            slots: SlotTable::new(slots),
            max_ops: fore.maxoperations.max(2),
            max_request: fore.maxrequestsize,
            max_response: fore.maxresponsesize,
        };
        if lock(&self.record).need_reclaim_complete {
            let op = NfsArgOp::ReclaimComplete(ReclaimCompleteArgs { one_fs: false });
            match self.attempt(&link, std::slice::from_ref(&op), t).await? {
                Attempt::Done(results) => match results.first() {
                    Some(r) if r.status().is_ok() || r.status() == NfsStatus::CompleteAlready => {}
                    Some(r) => return Err(crate::ops::error_of(r)),
                    None => return Err(Error::Malformed("RECLAIM_COMPLETE: no result".into())),
                },
                Attempt::SessionLost(s) | Attempt::Later(_, s) => {
                    return Err(Error::Nfs {
                        op: Opcode::ReclaimComplete,
                        status: s,
                    });
                }
            }
            lock(&self.record).need_reclaim_complete = false;
        }
        self.touch();
        Ok(link)
    }

    async fn exchange_id(&self, conn: &Connection, t: Duration) -> Result<(u64, u32)> {
        let op = NfsArgOp::ExchangeId(ExchangeIdArgs {
            clientowner: ClientOwner {
                verifier: self.verifier,
                ownerid: Opaque(self.owner_id.clone()),
            },
            flags: EXCHGID4_FLAG_SUPP_MOVED_REFER | EXCHGID4_FLAG_BIND_PRINC_STATEID,
            state_protect: StateProtectArgs::None,
            client_impl_id: Some(NfsImplId {
                domain: Utf8String("bucketfs.dev".into()),
                name: Utf8String(format!("bucketfs-nfs-client {}", env!("CARGO_PKG_VERSION"))),
                date: NfsTime {
                    seconds: 0,
                    nseconds: 0,
                },
            }),
        });
        match self.sessionless(conn, op, t).await? {
            NfsResOp::ExchangeId(Ok(ok)) => {
                self.exchanges.fetch_add(1, Ordering::Relaxed);
                Ok((ok.clientid, ok.sequenceid))
            }
            other => Err(Error::Malformed(format!("EXCHANGE_ID reply: {other:?}"))),
        }
    }

    async fn create_session(
        &self,
        conn: &Connection,
        clientid: u64,
        sequence: u32,
        t: Duration,
    ) -> Result<CreateSessionResOk> {
        let op = NfsArgOp::CreateSession(CreateSessionArgs {
            clientid,
            sequence,
            flags: CREATE_SESSION4_FLAG_PERSIST,
            fore_chan_attrs: ChannelAttrs {
                headerpadsize: 0,
                maxrequestsize: 1_049_620,
                maxresponsesize: 1_049_480,
                maxresponsesize_cached: 7584,
                maxoperations: self.opts.max_ops,
                maxrequests: self.opts.slots.max(1),
                rdma_ird: None,
            },
            // No back channel is bound (the flag is not set); these are Linux's values.
            back_chan_attrs: ChannelAttrs {
                headerpadsize: 0,
                maxrequestsize: 4096,
                maxresponsesize: 4096,
                maxresponsesize_cached: 0,
                maxoperations: 2,
                maxrequests: 1,
                rdma_ird: None,
            },
            cb_program: 0x4000_0000,
            sec_parms: vec![CallbackSecParms::None],
        });
        match self.sessionless(conn, op, t).await? {
            NfsResOp::CreateSession(Ok(ok)) => Ok(ok),
            other => Err(Error::Malformed(format!("CREATE_SESSION reply: {other:?}"))),
        }
    }

    fn touch(&self) {
        self.last_activity_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// One attempt of SEQUENCE + `ops` on `link`.
    async fn attempt(&self, link: &Link, ops: &[NfsArgOp], timeout: Duration) -> Result<Attempt> {
        if ops.len() + 1 > link.max_ops as usize {
            return Err(Error::InvalidArgument(format!(
                "{} operations exceed the session's {}",
                ops.len() + 1,
                link.max_ops
            )));
        }
        let data: usize = ops
            .iter()
            .map(|op| match op {
                NfsArgOp::Write(w) => w.data.0.len(),
                _ => 0,
            })
            .sum();
        let slot = link.slots.acquire(timeout).await?;
        let seq = NfsArgOp::Sequence(SequenceArgs {
            sessionid: link.session,
            sequenceid: slot.seqid,
            slotid: slot.id,
            highest_slotid: slot.highest,
            // Only small, non-idempotent replies are worth the server's reply cache.
            cachethis: ops.iter().any(|op| {
                matches!(
                    op,
                    NfsArgOp::Create(_)
                        | NfsArgOp::Remove(_)
                        | NfsArgOp::Rename(_)
                        | NfsArgOp::Link(_)
                        | NfsArgOp::Open(_)
                        | NfsArgOp::Close(_)
                        | NfsArgOp::Lock(_)
                        | NfsArgOp::LockU(_)
                        | NfsArgOp::SetAttr(_)
                )
            }),
        });
        let xid = self.xid();
        let record = compound_record(xid, &self.cred, b"", Some(&seq), ops, data);
        if record.len() - 4 > link.max_request as usize {
            slot.complete(false);
            return Err(Error::InvalidArgument(format!(
                "request of {} bytes exceeds the session's {}",
                record.len() - 4,
                link.max_request
            )));
        }
        // On a transport error the slot is dropped, i.e. retired; the link is replaced anyway.
        let reply = link.conn.call(xid, record, timeout).await?;
        let res = decode_compound(&reply)?;
        let mut results = res.results.into_iter();
        match results.next() {
            None => {
                slot.complete(false);
                return Err(Error::Compound { status: res.status });
            }
            Some(NfsResOp::Sequence(Ok(sr))) => {
                if sr.sessionid != link.session
                    || sr.slotid != slot.id
                    || sr.sequenceid != slot.seqid
                {
                    return Err(Error::Malformed(format!(
                        "SEQUENCE reply for slot {} seqid {}, sent slot {} seqid {}",
                        sr.slotid, sr.sequenceid, slot.id, slot.seqid
                    )));
                }
                if sr.status_flags
                    & (SEQ4_STATUS_EXPIRED_ALL_STATE_REVOKED
                        | SEQ4_STATUS_EXPIRED_SOME_STATE_REVOKED
                        | SEQ4_STATUS_ADMIN_STATE_REVOKED)
                    != 0
                {
                    warn!(
                        flags = sr.status_flags,
                        "the server revoked some of our state"
                    );
                }
                slot.complete(true);
            }
            Some(NfsResOp::Sequence(Err(status))) => {
                slot.complete(false);
                return Ok(match status {
                    NfsStatus::BadSession
                    | NfsStatus::DeadSession
                    | NfsStatus::BadSlot
                    | NfsStatus::SeqMisordered
                    | NfsStatus::ConnNotBoundToSession
                    | NfsStatus::StaleClientId
                    | NfsStatus::Expired => Attempt::SessionLost(status),
                    NfsStatus::Delay => Attempt::Later(Opcode::Sequence, status),
                    other => {
                        return Err(Error::Nfs {
                            op: Opcode::Sequence,
                            status: other,
                        });
                    }
                });
            }
            Some(other) => {
                return Err(Error::Malformed(format!(
                    "first result is {:?}, not SEQUENCE",
                    other.opcode()
                )));
            }
        }
        let rest: Vec<NfsResOp> = results.collect();
        if rest.len() > ops.len() {
            return Err(Error::Malformed(format!(
                "{} results for {} operations",
                rest.len(),
                ops.len()
            )));
        }
        for (r, op) in rest.iter().zip(ops) {
            if r.opcode() != op.opcode() {
                return Err(Error::Malformed(format!(
                    "result {:?} answers {:?}",
                    r.opcode(),
                    op.opcode()
                )));
            }
        }
        let complete = rest.len() == ops.len();
        match rest.last() {
            Some(last) if !last.status().is_ok() => {
                if matches!(last.status(), NfsStatus::Delay | NfsStatus::Grace) {
                    return Ok(Attempt::Later(last.opcode(), last.status()));
                }
            }
            _ if !complete => {
                return Err(Error::Malformed(
                    "COMPOUND stopped early without a failure".into(),
                ));
            }
            _ => {}
        }
        if res.status != rest.last().map_or(NfsStatus::Ok, NfsResOp::status) {
            debug!(status = ?res.status, "COMPOUND status differs from its last result");
        }
        Ok(Attempt::Done(rest))
    }

    /// The current link, or a new one after recovery.
    async fn link(&self) -> Result<Arc<Link>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if let Some(l) = self.current_link()
            && !l.conn.is_dead()
        {
            return Ok(l);
        }
        let wait = self.opts.connect_timeout.saturating_mul(8);
        let _guard = tokio::time::timeout(wait, self.recovery.lock())
            .await
            .map_err(|_| Error::Timeout {
                what: "waiting for another task's reconnect",
                after: wait,
            })?;
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let old = {
            let mut cur = lock(&self.link);
            match cur.as_ref() {
                Some(l) if !l.conn.is_dead() => return Ok(Arc::clone(l)),
                _ => cur.take(),
            }
        };
        debug!(addr = %self.addr, "reconnecting");
        let link = Arc::new(self.establish(false).await?);
        *lock(&self.link) = Some(Arc::clone(&link));
        if let Some(old) = old {
            // The old session may still exist on the server; free it.
            let _ = self
                .sessionless(
                    &link.conn,
                    NfsArgOp::DestroySession(DestroySessionArgs {
                        sessionid: old.session,
                    }),
                    self.opts.connect_timeout.min(Duration::from_secs(2)),
                )
                .await;
        }
        Ok(link)
    }

    /// Drops `link` if it is still the current one, so the next call reconnects.
    /// `session_gone`: the server already forgot the session, so recovery need not destroy it.
    fn invalidate(&self, link: &Link, session_gone: bool) {
        let mut cur = lock(&self.link);
        if cur
            .as_ref()
            .is_some_and(|l| l.generation == link.generation)
        {
            debug!(
                session_gone,
                generation = link.generation,
                "dropping the connection"
            );
            link.conn.kill(if session_gone {
                "session lost"
            } else {
                "transport failed"
            });
            if session_gone {
                *cur = None;
            }
        }
    }

    async fn compound(&self, ops: &[NfsArgOp]) -> Result<Vec<NfsResOp>> {
        let mut last: Option<Error> = None;
        let attempts = self.opts.max_retries + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            let link = match self.link().await {
                Ok(l) => l,
                Err(e) if e.is_transport() => {
                    debug!(error = %e, attempt, "reconnect failed");
                    last = Some(e);
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match self.attempt(&link, ops, self.opts.call_timeout).await {
                Ok(Attempt::Done(results)) => {
                    self.calls.fetch_add(1, Ordering::Relaxed);
                    self.touch();
                    return Ok(results);
                }
                Ok(Attempt::SessionLost(status)) => {
                    debug!(?status, "session lost");
                    self.invalidate(&link, true);
                    last = Some(Error::Nfs {
                        op: Opcode::Sequence,
                        status,
                    });
                    if attempt > 0 {
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                }
                Ok(Attempt::Later(op, status)) => {
                    self.touch();
                    last = Some(Error::Nfs { op, status });
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) if e.is_transport() => {
                    debug!(error = %e, attempt, "call failed; reconnecting");
                    self.invalidate(&link, false);
                    last = Some(e);
                    if attempt > 0 {
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::RetriesExhausted {
            attempts,
            last: Box::new(last.unwrap_or(Error::Closed)),
        })
    }
}

/// Sends a lone SEQUENCE whenever the client has been idle for a third of the lease.
fn spawn_renewer(inner: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            let wait = {
                let Some(i) = inner.upgrade() else { return };
                if i.closed.load(Ordering::SeqCst) {
                    return;
                }
                let lease = Duration::from_millis(i.lease_ms.load(Ordering::Relaxed));
                let period = (lease / 3).max(Duration::from_millis(100));
                let idle = i.idle();
                if idle >= period {
                    if let Err(e) = i.compound(&[]).await {
                        debug!(error = %e, "lease renewal failed");
                    }
                    period
                } else {
                    period - idle
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}
