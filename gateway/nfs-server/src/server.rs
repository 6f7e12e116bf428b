//! COMPOUND execution (RFC 8881 §16.2.3, §2.10.6).
//!
//! One record in, at most one reply message out ([`NfsServer::handle_record`]). A COMPOUND
//! runs its operations in order against a current and a saved filehandle and stops at the first
//! failure; the reply's status is the last result's. Session rules come first: SEQUENCE opens
//! every COMPOUND except a lone EXCHANGE_ID, CREATE_SESSION, DESTROY_SESSION, DESTROY_CLIENTID
//! or BIND_CONN_TO_SESSION. Replies executed under a slot with `cachethis` are cached as
//! COMPOUND4res bytes, so a retransmission replays exactly what was sent without touching the
//! file system again.

use std::sync::Arc;
use std::time::Duration;

use bucketfs_nfs_wire::nfs::attr::*;
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::{LinkText, Opaque, SpecData, Utf8String, Verifier};
use bucketfs_nfs_wire::nfs::{
    Attr, AttrEncoder, Bitmap, ChangeInfo, Component, CompoundArgs, CompoundBody, CompoundRes,
    Fattr, FileHandle, Fsid, NfsArgOp, NfsFileType, NfsResOp, NfsStatus, NfsTime, Opcode,
    ReaddirBuilder, SetAttrs, StateId,
};
use bucketfs_nfs_wire::rpc::{AUTH_NONE, AUTH_SYS, Credential, ReplyBody};
use bucketfs_nfs_wire::xdr::Encoder;
use bucketfs_nfs_wire::{Classified, classify_call, null_reply};
use bucketfs_runtime::Clock;
use tracing::{Instrument, debug, field};

use crate::fs::{
    AttrUpdate, CreateHow as FsHow, FileAttrs, FileSystem, FsStats, NewAttrs, NewNode, Stability,
    TimeUpdate,
};
use crate::open::OpenStore;
use crate::state::{
    ClientRegistry, PreviousRecord, RequestShape, SequenceOutcome, SessionLimits, SessionTable,
};

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest RPC record accepted; a larger one closes the connection.
    pub max_record: usize,
    pub lease: Duration,
    pub limits: SessionLimits,
    /// eir_server_owner.so_major_id: the same for every gateway that shares client state.
    pub server_owner: Vec<u8>,
    pub server_scope: Vec<u8>,
    /// Map AUTH_SYS uid 0 to nobody (NFS "root squash"). Off by default: the Linux client
    /// runs as root for most tools, and POSIX tests need root to be root.
    pub root_squash: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = SessionLimits::default();
        Self {
            max_record: limits.max_request as usize,
            lease: Duration::from_secs(90),
            limits,
            server_owner: b"bucketfs".to_vec(),
            server_scope: b"bucketfs".to_vec(),
            root_squash: false,
        }
    }
}

/// The attributes statfs(2) asks for; fetched from the file system only when requested.
const STATFS_ATTRS: [u32; 6] = [
    FATTR4_FILES_AVAIL,
    FATTR4_FILES_FREE,
    FATTR4_FILES_TOTAL,
    FATTR4_SPACE_AVAIL,
    FATTR4_SPACE_FREE,
    FATTR4_SPACE_TOTAL,
];

/// The uid/gid AUTH_NONE callers act as.
const NOBODY: u32 = 65534;
/// READDIR fetches entries from the file system in pages of this many.
const READDIR_PAGE: usize = 128;
/// Cookie verifier: cookies are stable for the life of a directory, so one constant suffices.
const COOKIEVERF: [u8; 8] = [0; 8];
const MAX_IO: u64 = 1024 * 1024;

/// An NFS v4.1 server over one [`FileSystem`].
pub struct NfsServer<F> {
    fs: F,
    sessions: SessionTable,
    registry: Arc<dyn ClientRegistry>,
    opens: Arc<dyn OpenStore>,
    clock: Arc<dyn Clock>,
    config: ServerConfig,
    /// WRITE/COMMIT verifier: must differ between server instances so a client notices a
    /// restart and resends uncommitted data.
    write_verifier: Verifier,
}

/// Per-COMPOUND state.
struct Ctx<'a> {
    current: Option<Vec<u8>>,
    saved: Option<Vec<u8>>,
    credential: &'a Credential,
    /// The session's client, set by SEQUENCE.
    clientid: Option<u64>,
    /// The current stateid (RFC 8881 §8.2.3), set by OPEN and OPEN_DOWNGRADE.
    stateid: Option<StateId>,
    /// Attributes fetched during this COMPOUND, so that `PUTFH, ACCESS, GETATTR` or an OPEN's
    /// permission checks ask the file system once per object. Emptied around every operation
    /// that may change anything, so no reply shows attributes from before a change.
    memo: std::sync::Mutex<Vec<(Vec<u8>, FileAttrs)>>,
}

impl<'a> Ctx<'a> {
    fn remembered(&self, fh: &[u8]) -> Option<FileAttrs> {
        let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.iter().find(|(h, _)| h == fh).map(|(_, a)| a.clone())
    }

    fn remember(&self, fh: &[u8], attrs: &FileAttrs) {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.retain(|(h, _)| h != fh);
        memo.push((fh.to_vec(), attrs.clone()));
    }

    fn forget_attrs(&self) {
        self.memo.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn current(&self) -> Result<&[u8], NfsStatus> {
        self.current.as_deref().ok_or(NfsStatus::NoFileHandle)
    }

    /// Resolves the special "current stateid".
    fn resolve(&self, s: &StateId) -> Result<StateId, NfsStatus> {
        if *s == StateId::CURRENT {
            self.stateid.clone().ok_or(NfsStatus::BadStateId)
        } else {
            Ok(s.clone())
        }
    }

    fn clientid(&self) -> Result<u64, NfsStatus> {
        self.clientid.ok_or(NfsStatus::OpNotInSession)
    }
}

/// Whether an operation may change what GETATTR reports (see `Ctx::memo`). Only the
/// operations known to read alone are trusted not to.
fn changes_state(op: Opcode) -> bool {
    !matches!(
        op,
        Opcode::PutFh
            | Opcode::PutRootFh
            | Opcode::PutPubFh
            | Opcode::GetFh
            | Opcode::SaveFh
            | Opcode::RestoreFh
            | Opcode::Lookup
            | Opcode::LookupP
            | Opcode::GetAttr
            | Opcode::Access
            | Opcode::Verify
            | Opcode::NVerify
            | Opcode::Readdir
            | Opcode::ReadLink
            | Opcode::Secinfo
            | Opcode::SecinfoNoName
            | Opcode::LockT
            | Opcode::TestStateId
    )
}

/// Operations that may only appear alone, outside a session.
fn sessionless(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::ExchangeId
            | Opcode::CreateSession
            | Opcode::DestroySession
            | Opcode::DestroyClientId
            | Opcode::BindConnToSession
    )
}

fn opcode_name(op: Opcode) -> String {
    format!("{op:?}")
}

/// A complete MSG_ACCEPTED/SUCCESS reply around already-encoded COMPOUND4res bytes.
fn reply_message(xid: u32, body: &[u8]) -> Vec<u8> {
    let mut e = Encoder::with_capacity(24 + body.len());
    ReplyBody::Success.encode(xid, &mut e);
    let mut out = e.into_vec();
    out.extend_from_slice(body);
    out
}

/// The attributes GETATTR and READDIR can return.
pub fn supported_attrs() -> Bitmap {
    Bitmap::from_bits(&[
        FATTR4_SUPPORTED_ATTRS,
        FATTR4_TYPE,
        FATTR4_FH_EXPIRE_TYPE,
        FATTR4_CHANGE,
        FATTR4_SIZE,
        FATTR4_LINK_SUPPORT,
        FATTR4_SYMLINK_SUPPORT,
        FATTR4_NAMED_ATTR,
        FATTR4_FSID,
        FATTR4_UNIQUE_HANDLES,
        FATTR4_LEASE_TIME,
        FATTR4_RDATTR_ERROR,
        FATTR4_ACLSUPPORT,
        FATTR4_CANSETTIME,
        FATTR4_CASE_INSENSITIVE,
        FATTR4_CASE_PRESERVING,
        FATTR4_CHOWN_RESTRICTED,
        FATTR4_FILEHANDLE,
        FATTR4_FILEID,
        FATTR4_FILES_AVAIL,
        FATTR4_FILES_FREE,
        FATTR4_FILES_TOTAL,
        FATTR4_HOMOGENEOUS,
        FATTR4_MAXFILESIZE,
        FATTR4_MAXLINK,
        FATTR4_MAXNAME,
        FATTR4_MAXREAD,
        FATTR4_MAXWRITE,
        FATTR4_MODE,
        FATTR4_NO_TRUNC,
        FATTR4_NUMLINKS,
        FATTR4_OWNER,
        FATTR4_OWNER_GROUP,
        FATTR4_RAWDEV,
        FATTR4_SPACE_AVAIL,
        FATTR4_SPACE_FREE,
        FATTR4_SPACE_TOTAL,
        FATTR4_SPACE_USED,
        FATTR4_TIME_ACCESS,
        // Write-only, but the client only sends what it sees listed here: without them
        // utimes(2) silently sets nothing.
        FATTR4_TIME_ACCESS_SET,
        FATTR4_TIME_DELTA,
        FATTR4_TIME_METADATA,
        FATTR4_TIME_MODIFY,
        FATTR4_TIME_MODIFY_SET,
        FATTR4_MOUNTED_ON_FILEID,
        FATTR4_FS_LAYOUT_TYPES,
        FATTR4_SUPPATTR_EXCLCREAT,
    ])
}

impl<F: FileSystem> NfsServer<F> {
    /// `write_verifier` must be fresh for every server instance (from an Entropy source), and
    /// so should `boot`, which goes into every session id.
    pub fn new(
        fs: F,
        registry: Arc<dyn ClientRegistry>,
        opens: Arc<dyn OpenStore>,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
        write_verifier: Verifier,
        boot: u32,
    ) -> Self {
        Self {
            fs,
            sessions: SessionTable::new(boot),
            registry,
            opens,
            clock,
            config,
            write_verifier,
        }
    }

    /// This server's sessions (for the lease renewal loop of whoever runs it).
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// Forgets clients the registry no longer knows (their leases expired): their sessions
    /// end here, so their next SEQUENCE gets BADSESSION and they start over.
    pub async fn forget_clients(&self, clientids: &[u64]) {
        for &id in clientids {
            self.sessions.drop_client(id);
            self.opens.drop_client(id).await;
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// Drops clients (and their sessions and opens) that have not renewed their lease for
    /// twice its length. The margin spares slow clients a BADSESSION recovery; the price is
    /// that an abandoned share reservation blocks other clients that much longer. Returns how
    /// many clients were dropped.
    pub async fn expire_clients(&self) -> usize {
        let dropped = self
            .sessions
            .expire(self.clock.now(), self.config.lease * 2);
        for clientid in &dropped {
            self.opens.drop_client(*clientid).await;
        }
        dropped.len()
    }

    /// Handles one RPC record; returns the reply message to frame and send, if any.
    pub async fn handle_record(&self, record: &[u8]) -> Option<Vec<u8>> {
        match classify_call(record) {
            Classified::Null { xid, .. } => Some(null_reply(xid)),
            Classified::Reply { message, .. } => Some(message),
            Classified::Drop(e) => {
                debug!(error = %e, "dropping unanswerable record");
                None
            }
            Classified::Compound {
                xid,
                credential,
                args,
            } => Some(self.compound(xid, &credential, args, record.len()).await),
        }
    }

    async fn compound(
        &self,
        xid: u32,
        credential: &Credential,
        args: CompoundArgs,
        record_len: usize,
    ) -> Vec<u8> {
        let CompoundArgs { tag, body, .. } = args;
        let CompoundBody::Ops { ops, stop } = body else {
            // classify_call answers the other bodies itself.
            let res = CompoundRes::empty(tag, NfsStatus::ServerFault);
            return bucketfs_nfs_wire::success_reply(xid, &res);
        };
        let names: Vec<String> = ops
            .iter()
            .map(|op| opcode_name(op.opcode()))
            .chain(stop.iter().map(|s| opcode_name(s.opcode)))
            .collect();
        let span = tracing::info_span!(
            "compound",
            xid,
            ops = %names.join(","),
            clientid = field::Empty,
            session = field::Empty,
            slot = field::Empty,
        );
        let body = self
            .run(credential, tag, ops, stop, record_len, &span)
            .instrument(span.clone())
            .await;
        reply_message(xid, &body)
    }

    /// Executes the operations; returns the encoded COMPOUND4res (fresh or replayed).
    async fn run(
        &self,
        credential: &Credential,
        tag: Vec<u8>,
        ops: Vec<NfsArgOp>,
        stop: Option<bucketfs_nfs_wire::nfs::OpFailure>,
        record_len: usize,
        span: &tracing::Span,
    ) -> Vec<u8> {
        let mut results = Vec::with_capacity(ops.len() + 1);
        let mut slot = None;
        let mut completed = true;
        let total = ops.len() + usize::from(stop.is_some());
        let squashed;
        let credential = match credential {
            Credential::Sys(sys) if self.config.root_squash && sys.uid == 0 => {
                squashed = Credential::Sys(bucketfs_nfs_wire::rpc::AuthSys {
                    uid: NOBODY,
                    gid: NOBODY,
                    gids: Vec::new(),
                    ..sys.clone()
                });
                &squashed
            }
            other => other,
        };
        let mut ctx = Ctx {
            current: None,
            saved: None,
            credential,
            clientid: None,
            stateid: None,
            memo: std::sync::Mutex::new(Vec::new()),
        };
        for (i, op) in ops.iter().enumerate() {
            let opcode = op.opcode();
            let started = self.clock.now();
            let result = match op {
                NfsArgOp::Sequence(a) if i == 0 => match self.sessions.sequence(
                    a,
                    RequestShape {
                        ops: total,
                        bytes: record_len,
                    },
                    self.clock.now(),
                ) {
                    Ok(SequenceOutcome::Replay(body)) => {
                        debug!("replaying cached reply");
                        crate::observe::compound_done();
                        return body;
                    }
                    Ok(SequenceOutcome::Execute { res, clientid }) => {
                        span.record("clientid", format!("{clientid:016x}"));
                        span.record("session", hex(&a.sessionid));
                        span.record("slot", a.slotid);
                        slot = Some((a.sessionid, a.slotid, a.cachethis));
                        ctx.clientid = Some(clientid);
                        NfsResOp::Sequence(Ok(res))
                    }
                    Err(s) => NfsResOp::Sequence(Err(s)),
                },
                NfsArgOp::Sequence(_) => NfsResOp::error(opcode, NfsStatus::SequencePos),
                _ if i == 0 && sessionless(opcode) && total > 1 => {
                    NfsResOp::error(opcode, NfsStatus::NotOnlyOp)
                }
                _ if i == 0 && !sessionless(opcode) => {
                    NfsResOp::error(opcode, NfsStatus::OpNotInSession)
                }
                _ if changes_state(opcode) => {
                    ctx.forget_attrs();
                    let result = self.execute(op, &mut ctx).await;
                    ctx.forget_attrs();
                    result
                }
                _ => self.execute(op, &mut ctx).await,
            };
            let ok = result.status().is_ok();
            crate::observe::op_done(opcode, result.status(), self.clock.now() - started);
            results.push(result);
            if !ok {
                completed = false;
                break;
            }
        }
        if completed && let Some(stop) = stop {
            results.push(stop.result());
        }
        let res = CompoundRes::new(tag, results);
        let mut e = Encoder::with_capacity(256);
        res.encode(&mut e);
        let body = e.into_vec();
        if let Some((session, slot, cachethis)) = slot {
            self.sessions
                .complete(&session, slot, cachethis.then(|| body.clone()));
        }
        debug!(status = ?res.status, "compound done");
        crate::observe::compound_done();
        body
    }

    async fn execute(&self, op: &NfsArgOp, ctx: &mut Ctx<'_>) -> NfsResOp {
        let opcode = op.opcode();
        let status_of = |r: Result<(), NfsStatus>| match r {
            Ok(()) => NfsStatus::Ok,
            Err(s) => s,
        };
        match op {
            NfsArgOp::PutRootFh => {
                ctx.current = Some(self.fs.root());
                NfsResOp::PutRootFh(NfsStatus::Ok)
            }
            NfsArgOp::PutFh(a) => {
                ctx.current = Some(a.object.as_bytes().to_vec());
                NfsResOp::PutFh(NfsStatus::Ok)
            }
            NfsArgOp::GetFh => NfsResOp::GetFh(
                ctx.current()
                    .and_then(|fh| FileHandle::new(fh.to_vec()).ok_or(NfsStatus::ServerFault)),
            ),
            NfsArgOp::SaveFh => NfsResOp::SaveFh(match &ctx.current {
                Some(fh) => {
                    ctx.saved = Some(fh.clone());
                    NfsStatus::Ok
                }
                None => NfsStatus::NoFileHandle,
            }),
            NfsArgOp::RestoreFh => NfsResOp::RestoreFh(match &ctx.saved {
                Some(fh) => {
                    ctx.current = Some(fh.clone());
                    NfsStatus::Ok
                }
                None => NfsStatus::NoFileHandle,
            }),
            NfsArgOp::Lookup(a) => NfsResOp::Lookup(status_of(self.lookup(ctx, &a.objname).await)),
            NfsArgOp::LookupP => NfsResOp::LookupP(status_of(self.lookupp(ctx).await)),
            NfsArgOp::GetAttr(a) => NfsResOp::GetAttr(self.getattr(ctx, &a.attr_request).await),
            NfsArgOp::Access(a) => NfsResOp::Access(self.access(ctx, a.access).await),
            NfsArgOp::Verify(a) => NfsResOp::Verify(status_of(
                self.verify(ctx, &a.obj_attributes, NfsStatus::NotSame)
                    .await,
            )),
            NfsArgOp::NVerify(a) => NfsResOp::NVerify(status_of(
                self.verify(ctx, &a.obj_attributes, NfsStatus::Same).await,
            )),
            NfsArgOp::Readdir(a) => NfsResOp::Readdir(self.readdir(ctx, a).await),
            NfsArgOp::ReadLink => NfsResOp::ReadLink(match ctx.current() {
                Ok(fh) => self.fs.readlink(fh).await.map(LinkText),
                Err(s) => Err(s),
            }),
            NfsArgOp::SecinfoNoName(style) => {
                NfsResOp::SecinfoNoName(self.secinfo_no_name(ctx, *style).await)
            }
            NfsArgOp::Secinfo(a) => NfsResOp::Secinfo(self.secinfo(ctx, &a.name).await),
            NfsArgOp::ExchangeId(a) => NfsResOp::ExchangeId(self.exchange_id(a).await),
            NfsArgOp::CreateSession(a) => NfsResOp::CreateSession(self.create_session(a).await),
            NfsArgOp::DestroySession(a) => {
                NfsResOp::DestroySession(status_of(self.sessions.destroy_session(&a.sessionid)))
            }
            NfsArgOp::DestroyClientId(a) => {
                NfsResOp::DestroyClientId(status_of(self.destroy_clientid(a.clientid).await))
            }
            NfsArgOp::BindConnToSession(a) => NfsResOp::BindConnToSession(self.bind_conn(a)),
            NfsArgOp::Create(a) => NfsResOp::Create(self.create(ctx, a).await),
            NfsArgOp::Remove(a) => NfsResOp::Remove(self.remove(ctx, &a.target).await),
            NfsArgOp::Rename(a) => NfsResOp::Rename(self.rename(ctx, a).await),
            NfsArgOp::Link(a) => NfsResOp::Link(self.link(ctx, &a.newname).await),
            NfsArgOp::SetAttr(a) => match self.setattr(ctx, a).await {
                Ok(attrsset) => NfsResOp::SetAttr {
                    status: NfsStatus::Ok,
                    attrsset,
                },
                Err(status) => NfsResOp::SetAttr {
                    status,
                    attrsset: Bitmap::new(),
                },
            },
            // There is no grace period: nothing is reclaimable, so reclaim is complete at once.
            NfsArgOp::ReclaimComplete(_) => NfsResOp::ReclaimComplete(NfsStatus::Ok),
            NfsArgOp::Open(a) => NfsResOp::Open(self.open(ctx, a).await),
            NfsArgOp::Close(a) => NfsResOp::Close(self.close(ctx, &a.open_stateid).await),
            NfsArgOp::OpenDowngrade(a) => {
                NfsResOp::OpenDowngrade(self.open_downgrade(ctx, a).await)
            }
            NfsArgOp::Read(a) => NfsResOp::Read(self.read(ctx, a).await),
            NfsArgOp::Write(a) => NfsResOp::Write(self.write(ctx, a).await),
            NfsArgOp::Commit(_) => NfsResOp::Commit(self.commit(ctx).await),
            NfsArgOp::TestStateId(a) => NfsResOp::TestStateId(match ctx.clientid() {
                Ok(c) => {
                    let mut out = Vec::with_capacity(a.stateids.len());
                    for s in &a.stateids {
                        out.push(self.opens.test(c, s).await);
                    }
                    Ok(out)
                }
                Err(s) => Err(s),
            }),
            NfsArgOp::FreeStateId(a) => NfsResOp::FreeStateId(match ctx.clientid() {
                Ok(c) => self.opens.free(c, &a.stateid).await,
                Err(s) => s,
            }),
            NfsArgOp::Lock(a) => NfsResOp::Lock(self.lock(ctx, a).await),
            NfsArgOp::LockT(a) => NfsResOp::LockT(self.lockt(ctx, a).await),
            NfsArgOp::LockU(a) => NfsResOp::LockU(self.locku(ctx, a).await),
            // No delegations are ever granted, so no stateid names one.
            NfsArgOp::DelegReturn(_) => NfsResOp::DelegReturn(NfsStatus::BadStateId),
            _ => NfsResOp::error(opcode, NfsStatus::NotSupp),
        }
    }

    /// The attributes of `fh`, from this COMPOUND's memo or the file system.
    async fn attrs(&self, ctx: &Ctx<'_>, fh: &[u8]) -> Result<FileAttrs, NfsStatus> {
        if let Some(attrs) = ctx.remembered(fh) {
            return Ok(attrs);
        }
        let attrs = self.fs.getattr(fh).await?;
        ctx.remember(fh, &attrs);
        Ok(attrs)
    }

    /// LOOKUP in the file system, remembering the attributes it returns.
    async fn lookup_fh(&self, ctx: &Ctx<'_>, dir: &[u8], name: &str) -> Result<Vec<u8>, NfsStatus> {
        let (fh, attrs) = self.fs.lookup(dir, name).await?;
        ctx.remember(&fh, &attrs);
        Ok(fh)
    }

    async fn lookup(&self, ctx: &mut Ctx<'_>, name: &Component) -> Result<(), NfsStatus> {
        let dir = ctx.current()?;
        check_name(name)?;
        self.require_search(ctx, dir).await?;
        let fh = self.lookup_fh(ctx, dir, name.as_str()).await?;
        ctx.current = Some(fh);
        Ok(())
    }

    /// Looking a name up needs search (execute) permission on the directory.
    async fn require_search(&self, ctx: &Ctx<'_>, dir: &[u8]) -> Result<FileAttrs, NfsStatus> {
        let attrs = self.attrs(ctx, dir).await?;
        if attrs.ftype != NfsFileType::Directory {
            return Err(NfsStatus::NotDir);
        }
        if allowed(ctx.credential, &attrs) & ACCESS4_LOOKUP == 0 {
            return Err(NfsStatus::Access);
        }
        Ok(attrs)
    }

    async fn lookupp(&self, ctx: &mut Ctx<'_>) -> Result<(), NfsStatus> {
        let fh = self.fs.lookupp(ctx.current()?).await?;
        ctx.current = Some(fh);
        Ok(())
    }

    async fn getattr(&self, ctx: &Ctx<'_>, requested: &Bitmap) -> Result<Fattr, NfsStatus> {
        let fh = ctx.current()?;
        let attrs = self.attrs(ctx, fh).await?;
        let mut fattr = self.encode_attrs(requested, fh, &attrs);
        if STATFS_ATTRS.iter().any(|&a| requested.contains(a)) {
            let stats = self.fs.statfs().await?;
            fattr = self.encode_with_stats(requested, fh, &attrs, Some(stats));
        }
        Ok(fattr)
    }

    fn encode_attrs(&self, requested: &Bitmap, fh: &[u8], a: &FileAttrs) -> Fattr {
        self.encode_with_stats(requested, fh, a, None)
    }

    fn encode_with_stats(
        &self,
        requested: &Bitmap,
        fh: &[u8],
        a: &FileAttrs,
        stats: Option<FsStats>,
    ) -> Fattr {
        let mut enc = AttrEncoder::new(requested);
        if let Some(st) = stats {
            enc.push(Attr::FilesAvail(st.files_avail));
            enc.push(Attr::FilesFree(st.files_free));
            enc.push(Attr::FilesTotal(st.files_total));
            enc.push(Attr::SpaceAvail(st.space_avail));
            enc.push(Attr::SpaceFree(st.space_free));
            enc.push(Attr::SpaceTotal(st.space_total));
        }
        let (major, minor) = self.fs.fsid();
        let lease = u32::try_from(self.config.lease.as_secs()).unwrap_or(u32::MAX);
        enc.push(Attr::SupportedAttrs(supported_attrs()));
        enc.push(Attr::Type(a.ftype));
        enc.push(Attr::FhExpireType(FH4_PERSISTENT));
        enc.push(Attr::Change(a.change));
        enc.push(Attr::Size(a.size));
        enc.push(Attr::LinkSupport(true));
        enc.push(Attr::SymlinkSupport(true));
        enc.push(Attr::NamedAttr(false));
        enc.push(Attr::Fsid(Fsid { major, minor }));
        enc.push(Attr::UniqueHandles(true));
        enc.push(Attr::LeaseTime(lease));
        enc.push(Attr::RdattrError(NfsStatus::Ok));
        enc.push(Attr::AclSupport(0));
        enc.push(Attr::CanSetTime(true));
        enc.push(Attr::CaseInsensitive(false));
        enc.push(Attr::CasePreserving(true));
        enc.push(Attr::ChownRestricted(true));
        if enc.wants(FATTR4_FILEHANDLE)
            && let Some(fh) = FileHandle::new(fh.to_vec())
        {
            enc.push(Attr::FileHandle(fh));
        }
        enc.push(Attr::FileId(a.fileid));
        enc.push(Attr::Homogeneous(true));
        enc.push(Attr::MaxFileSize(i64::MAX as u64));
        enc.push(Attr::MaxLink(u32::MAX));
        enc.push(Attr::MaxName(255));
        enc.push(Attr::MaxRead(MAX_IO));
        enc.push(Attr::MaxWrite(MAX_IO));
        enc.push(Attr::Mode(a.mode & 0o7777));
        enc.push(Attr::NoTrunc(true));
        enc.push(Attr::NumLinks(a.nlink));
        enc.push(Attr::Owner(a.uid.to_string()));
        enc.push(Attr::OwnerGroup(a.gid.to_string()));
        enc.push(Attr::RawDev(SpecData {
            major: a.rawdev.0,
            minor: a.rawdev.1,
        }));
        enc.push(Attr::SpaceUsed(a.space_used));
        enc.push(Attr::TimeAccess(a.atime.clone()));
        enc.push(Attr::TimeDelta(NfsTime {
            seconds: 0,
            nseconds: 1,
        }));
        enc.push(Attr::TimeMetadata(a.ctime.clone()));
        enc.push(Attr::TimeModify(a.mtime.clone()));
        // One export, no submounts: what the object is mounted on is itself.
        enc.push(Attr::MountedOnFileId(a.fileid));
        enc.push(Attr::FsLayoutTypes(Vec::new()));
        // EXCLUSIVE4_1 keeps its verifier out of band, so these can be set with it.
        enc.push(Attr::SuppattrExclcreat(Bitmap::from_bits(&[
            FATTR4_MODE,
            FATTR4_OWNER,
            FATTR4_OWNER_GROUP,
        ])));
        enc.finish()
    }

    /// VERIFY (`outcome` NOT_SAME: fails when the values differ) and NVERIFY (`outcome` SAME:
    /// fails when they are equal). The client's values are compared byte for byte with this
    /// server's encoding of the same mask (RFC 8881 §18.31), which is exact because every value
    /// has one canonical XDR form.
    async fn verify(
        &self,
        ctx: &Ctx<'_>,
        given: &Fattr,
        outcome: NfsStatus,
    ) -> Result<(), NfsStatus> {
        let fh = ctx.current()?;
        // rdattr_error and the write-only *_set attributes have no value to compare.
        if given.mask.contains(FATTR4_RDATTR_ERROR)
            || given.mask.contains(FATTR4_TIME_ACCESS_SET)
            || given.mask.contains(FATTR4_TIME_MODIFY_SET)
        {
            return Err(NfsStatus::Inval);
        }
        if !given.mask.difference(&supported_attrs()).is_empty() {
            return Err(NfsStatus::AttrNotSupp);
        }
        let attrs = self.attrs(ctx, fh).await?;
        let ours = self.encode_attrs(&given.mask, fh, &attrs);
        let equal = ours.vals == given.vals;
        match (outcome, equal) {
            (NfsStatus::NotSame, false) => Err(NfsStatus::NotSame),
            (NfsStatus::Same, true) => Err(NfsStatus::Same),
            _ => Ok(()),
        }
    }

    /// Modifying a directory needs write and search permission on it. Returns its
    /// attributes.
    async fn require_dir_write(&self, ctx: &Ctx<'_>, dir: &[u8]) -> Result<FileAttrs, NfsStatus> {
        let attrs = self.attrs(ctx, dir).await?;
        if attrs.ftype != NfsFileType::Directory {
            return Err(NfsStatus::NotDir);
        }
        if allowed(ctx.credential, &attrs) & ACCESS4_MODIFY == 0 {
            return Err(NfsStatus::Access);
        }
        Ok(attrs)
    }

    async fn create(&self, ctx: &mut Ctx<'_>, a: &CreateArgs) -> Result<CreateResOk, NfsStatus> {
        let dir = ctx.current()?.to_vec();
        check_name(&a.objname)?;
        let node = match &a.objtype {
            CreateType::Directory => NewNode::Directory,
            CreateType::Link(target) => NewNode::Symlink(target.0.clone()),
            // Regular files are created by OPEN (RFC 8881 §18.4.3).
            CreateType::Other(_) => return Err(NfsStatus::BadType),
            CreateType::Block(d) | CreateType::Char(d) => {
                // mknod(2) of a device needs privilege (CAP_MKNOD).
                if ids(ctx.credential).0 != 0 {
                    return Err(NfsStatus::Perm);
                }
                let ftype = if matches!(a.objtype, CreateType::Block(_)) {
                    NfsFileType::Block
                } else {
                    NfsFileType::Char
                };
                NewNode::Special {
                    ftype,
                    rawdev: (d.major, d.minor),
                }
            }
            CreateType::Socket => NewNode::Special {
                ftype: NfsFileType::Socket,
                rawdev: (0, 0),
            },
            CreateType::Fifo => NewNode::Special {
                ftype: NfsFileType::Fifo,
                rawdev: (0, 0),
            },
        };
        let set = a.createattrs.settable().map_err(|e| e.status())?;
        if set.size.is_some() {
            return Err(NfsStatus::Inval);
        }
        self.require_dir_write(ctx, &dir).await?;
        let (uid, gid) = ids(ctx.credential);
        let owner = set.owner.as_deref().map(parse_id).transpose()?;
        let group = set.owner_group.as_deref().map(parse_id).transpose()?;
        if uid != 0
            && (owner.is_some_and(|o| o != uid)
                || group.is_some_and(|g| !in_group(ctx.credential, g)))
        {
            return Err(NfsStatus::Perm);
        }
        let attrs = NewAttrs {
            mode: set.mode.unwrap_or(0o777) & 0o7777,
            uid: owner.unwrap_or(uid),
            gid: group.unwrap_or(gid),
        };
        let created = self
            .fs
            .create(&dir, a.objname.as_str(), node, attrs, FsHow::Guarded)
            .await?;
        let (fh, cinfo) = (created.fh, created.cinfo);
        if set.time_access.is_some() || set.time_modify.is_some() {
            let times = AttrUpdate {
                atime: set.time_access.clone().map(time_update),
                mtime: set.time_modify.clone().map(time_update),
                ..AttrUpdate::default()
            };
            self.fs.setattr(&fh, times).await?;
        }
        ctx.current = Some(fh);
        Ok(CreateResOk {
            cinfo,
            attrset: set.mask(),
        })
    }

    /// Owner, group and mode of a new object from the caller's credential and requested
    /// attributes; only root gives a new object away.
    fn creation_attrs(&self, ctx: &Ctx<'_>, set: &SetAttrs) -> Result<NewAttrs, NfsStatus> {
        let (uid, gid) = ids(ctx.credential);
        let owner = set.owner.as_deref().map(parse_id).transpose()?;
        let group = set.owner_group.as_deref().map(parse_id).transpose()?;
        if uid != 0
            && (owner.is_some_and(|o| o != uid)
                || group.is_some_and(|g| !in_group(ctx.credential, g)))
        {
            return Err(NfsStatus::Perm);
        }
        Ok(NewAttrs {
            mode: set.mode.unwrap_or(0o644) & 0o7777,
            uid: owner.unwrap_or(uid),
            gid: group.unwrap_or(gid),
        })
    }

    /// OPEN (RFC 8881 §18.16): CLAIM_NULL by name in the current directory (with or without
    /// create) and CLAIM_FH; the current filehandle becomes the opened file. No delegations.
    async fn open(&self, ctx: &mut Ctx<'_>, a: &OpenArgs) -> Result<OpenResOk, NfsStatus> {
        // In 4.1 the owner's clientid field is ignored: the session names the client.
        let clientid = ctx.clientid()?;
        let access = a.share_access & !OPEN4_SHARE_ACCESS_WANT_DELEG_MASK;
        if access == 0 || access > OPEN4_SHARE_ACCESS_BOTH || a.share_deny > OPEN4_SHARE_DENY_BOTH {
            return Err(NfsStatus::Inval);
        }
        let current = ctx.current()?.to_vec();
        let (fh, cinfo, attrset, created) = match &a.claim {
            OpenClaim::Null(name) => {
                check_name(name)?;
                let dir_attrs = self.require_search(ctx, &current).await?;
                match &a.openhow {
                    OpenFlag::NoCreate => {
                        let fh = self.lookup_fh(ctx, &current, name.as_str()).await?;
                        (fh, unchanged(dir_attrs.change), Bitmap::new(), false)
                    }
                    OpenFlag::Create(how) => {
                        self.open_create(ctx, &current, dir_attrs.change, name, how)
                            .await?
                    }
                }
            }
            OpenClaim::Fh => {
                if a.openhow != OpenFlag::NoCreate {
                    return Err(NfsStatus::Inval);
                }
                // The parent is unknown here; a zero, non-atomic change_info says so.
                let cinfo = ChangeInfo {
                    atomic: false,
                    before: 0,
                    after: 0,
                };
                (current, cinfo, Bitmap::new(), false)
            }
            // No grace period is ever in force: client state lives in the registry and
            // survives any one server, so there is nothing to reclaim (RFC 8881 §8.4.2.1).
            // A client answered NO_GRACE opens its files anew, which is what it needs after
            // its lease was dropped; NOTSUPP would make it give up on them.
            OpenClaim::Previous(_) | OpenClaim::DelegatePrev(_) | OpenClaim::DelegPrevFh => {
                return Err(NfsStatus::NoGrace);
            }
            // No delegations are ever granted, so none can be claimed.
            OpenClaim::DelegateCur { .. } | OpenClaim::DelegCurFh(_) => {
                return Err(NfsStatus::BadStateId);
            }
        };
        let attrs = self.attrs(ctx, &fh).await?;
        match attrs.ftype {
            NfsFileType::Regular => {}
            NfsFileType::Directory => return Err(NfsStatus::IsDir),
            NfsFileType::Link => return Err(NfsStatus::Symlink),
            _ => return Err(NfsStatus::WrongType),
        }
        // The creator may open what it just made whatever mode it asked for (POSIX open).
        if !created {
            let granted = allowed(ctx.credential, &attrs);
            if (access & OPEN4_SHARE_ACCESS_READ != 0 && granted & ACCESS4_READ == 0)
                || (access & OPEN4_SHARE_ACCESS_WRITE != 0 && granted & ACCESS4_MODIFY == 0)
            {
                return Err(NfsStatus::Access);
            }
        }
        let stateid = self
            .opens
            .open(clientid, &a.owner.owner.0, &fh, access, a.share_deny)
            .await?;
        ctx.current = Some(fh);
        ctx.stateid = Some(stateid.clone());
        Ok(OpenResOk {
            stateid,
            cinfo,
            rflags: OPEN4_RESULT_LOCKTYPE_POSIX,
            attrset,
            delegation: OpenDelegation::None,
        })
    }

    /// The create modes of OPEN; returns (file, parent change_info, attrset, created).
    async fn open_create(
        &self,
        ctx: &Ctx<'_>,
        dir: &[u8],
        dir_change: u64,
        name: &Component,
        how: &CreateHow,
    ) -> Result<(Vec<u8>, ChangeInfo, Bitmap, bool), NfsStatus> {
        let (set, fs_how) = match how {
            CreateHow::Unchecked(f) => (f.settable().map_err(|e| e.status())?, FsHow::Unchecked),
            CreateHow::Guarded(f) => (f.settable().map_err(|e| e.status())?, FsHow::Guarded),
            CreateHow::Exclusive(v) => (SetAttrs::default(), FsHow::Exclusive(*v)),
            CreateHow::Exclusive41 { verifier, attrs } => {
                let set = attrs.settable().map_err(|e| e.status())?;
                if set.size.is_some() || set.time_access.is_some() || set.time_modify.is_some() {
                    return Err(NfsStatus::Inval);
                }
                (set, FsHow::Exclusive(*verifier))
            }
        };
        // An UNCHECKED open of an existing file needs no write permission on the directory,
        // so look first; the create below still decides atomically.
        let existing = match self.lookup_fh(ctx, dir, name.as_str()).await {
            Ok(fh) => Some(fh),
            Err(NfsStatus::NoEnt) => None,
            Err(s) => return Err(s),
        };
        if existing.is_none() || !matches!(fs_how, FsHow::Unchecked) {
            self.require_dir_write(ctx, dir).await?;
        }
        let attrs = self.creation_attrs(ctx, &set)?;
        let created = self
            .fs
            .create(dir, name.as_str(), NewNode::File, attrs, fs_how)
            .await?;
        let fh = created.fh;
        if created.existed {
            if !matches!(fs_how, FsHow::Unchecked) {
                // A retransmitted exclusive create: the file is the one it made.
                return Ok((fh, unchanged(dir_change), Bitmap::new(), true));
            }
            // UNCHECKED on an existing file: only a size (truncation) is applied.
            let mut attrset = Bitmap::new();
            if let Some(size) = set.size {
                let attrs = self.attrs(ctx, &fh).await?;
                if attrs.ftype == NfsFileType::Regular {
                    if allowed(ctx.credential, &attrs) & ACCESS4_MODIFY == 0 {
                        return Err(NfsStatus::Access);
                    }
                    if attrs.size != size {
                        self.fs
                            .setattr(
                                &fh,
                                AttrUpdate {
                                    size: Some(size),
                                    ..AttrUpdate::default()
                                },
                            )
                            .await?;
                    }
                    attrset = Bitmap::from_bits(&[FATTR4_SIZE]);
                }
            }
            return Ok((fh, unchanged(dir_change), attrset, false));
        }
        let extra = AttrUpdate {
            size: set.size.filter(|&s| s != 0),
            atime: set.time_access.clone().map(time_update),
            mtime: set.time_modify.clone().map(time_update),
            ..AttrUpdate::default()
        };
        if extra.size.is_some() || extra.atime.is_some() || extra.mtime.is_some() {
            self.fs.setattr(&fh, extra).await?;
        }
        Ok((fh, created.cinfo, set.mask(), true))
    }

    async fn close(&self, ctx: &mut Ctx<'_>, stateid: &StateId) -> Result<StateId, NfsStatus> {
        let stateid = ctx.resolve(stateid)?;
        let fh = ctx.current()?.to_vec();
        let clientid = ctx.clientid()?;
        // Validate before exporting, so a stale or foreign stateid cannot trigger S3 work.
        self.opens.check_close(clientid, &stateid, &fh).await?;
        // Export first, release after: if the file system cannot finish the close yet
        // (DELAY), the client's retry must find its open still there.
        self.fs.close(&fh).await?;
        self.opens.close(clientid, &stateid, &fh).await?;
        ctx.stateid = None;
        // RFC 8881 §18.2.4: CLOSE answers with the invalid special stateid.
        Ok(StateId::INVALID)
    }

    async fn open_downgrade(
        &self,
        ctx: &mut Ctx<'_>,
        a: &OpenDowngradeArgs,
    ) -> Result<StateId, NfsStatus> {
        let stateid = ctx.resolve(&a.open_stateid)?;
        let access = a.share_access & !OPEN4_SHARE_ACCESS_WANT_DELEG_MASK;
        let new = self
            .opens
            .downgrade(
                ctx.clientid()?,
                &stateid,
                ctx.current()?,
                access,
                a.share_deny,
            )
            .await?;
        ctx.stateid = Some(new.clone());
        Ok(new)
    }

    /// The regular file in the current filehandle and its attributes, for I/O.
    async fn io_target(&self, ctx: &Ctx<'_>) -> Result<(Vec<u8>, FileAttrs), NfsStatus> {
        let fh = ctx.current()?.to_vec();
        let attrs = self.attrs(ctx, &fh).await?;
        match attrs.ftype {
            NfsFileType::Regular => Ok((fh, attrs)),
            NfsFileType::Directory => Err(NfsStatus::IsDir),
            _ => Err(NfsStatus::Inval),
        }
    }

    /// Checks the stateid of a READ (`access` READ) or WRITE; I/O without open state (the
    /// anonymous and bypass stateids) is checked against the mode bits instead.
    async fn check_io(
        &self,
        ctx: &Ctx<'_>,
        stateid: &StateId,
        fh: &[u8],
        attrs: &FileAttrs,
        access: u32,
    ) -> Result<(), NfsStatus> {
        let stateid = ctx.resolve(stateid)?;
        self.opens
            .check_io(ctx.clientid()?, &stateid, fh, access)
            .await?;
        if stateid == StateId::ANONYMOUS || stateid == StateId::BYPASS {
            let need = if access == OPEN4_SHARE_ACCESS_READ {
                ACCESS4_READ
            } else {
                ACCESS4_MODIFY
            };
            if allowed(ctx.credential, attrs) & need == 0 {
                return Err(NfsStatus::Access);
            }
        }
        Ok(())
    }

    async fn read(&self, ctx: &Ctx<'_>, a: &ReadArgs) -> Result<ReadResOk, NfsStatus> {
        let (fh, attrs) = self.io_target(ctx).await?;
        self.check_io(ctx, &a.stateid, &fh, &attrs, OPEN4_SHARE_ACCESS_READ)
            .await?;
        let count = a.count.min(MAX_IO as u32);
        let (data, eof) = self.fs.read(&fh, a.offset, count).await?;
        Ok(ReadResOk {
            eof,
            data: Data(data),
        })
    }

    /// UNSTABLE4 writes may be held by the file system until COMMIT; DATA_SYNC4 and
    /// FILE_SYNC4 are durable before the reply (there is no separate metadata to sync, so
    /// both answer FILE_SYNC4).
    async fn write(&self, ctx: &Ctx<'_>, a: &WriteArgs) -> Result<WriteResOk, NfsStatus> {
        let (fh, attrs) = self.io_target(ctx).await?;
        self.check_io(ctx, &a.stateid, &fh, &attrs, OPEN4_SHARE_ACCESS_WRITE)
            .await?;
        let count = u32::try_from(a.data.0.len()).map_err(|_| NfsStatus::Inval)?;
        if u64::from(count) > MAX_IO {
            return Err(NfsStatus::Inval);
        }
        a.offset
            .checked_add(u64::from(count))
            .filter(|&end| end <= i64::MAX as u64)
            .ok_or(NfsStatus::FBig)?;
        let stable = a.stable != StableHow::Unstable;
        let committed = match self.fs.write(&fh, a.offset, &a.data.0, stable).await? {
            Stability::FileSync => StableHow::FileSync,
            Stability::Unstable => StableHow::Unstable,
        };
        Ok(WriteResOk {
            count,
            committed,
            writeverf: self.write_verifier,
        })
    }

    async fn lock(&self, ctx: &mut Ctx<'_>, a: &LockArgs) -> Result<StateId, LockError> {
        let clientid = ctx.clientid().map_err(LockError::Status)?;
        let (fh, _) = self.io_target(ctx).await.map_err(LockError::Status)?;
        // There is no grace period, so there is nothing to reclaim.
        if a.reclaim {
            return Err(LockError::Status(NfsStatus::NoGrace));
        }
        let locker = match &a.locker {
            Locker::New(n) => Locker::New(OpenToLockOwner {
                open_stateid: ctx.resolve(&n.open_stateid).map_err(LockError::Status)?,
                ..n.clone()
            }),
            Locker::Existing(e) => Locker::Existing(ExistLockOwner {
                lock_stateid: ctx.resolve(&e.lock_stateid).map_err(LockError::Status)?,
                lock_seqid: e.lock_seqid,
            }),
        };
        let stateid = self
            .opens
            .lock(
                clientid,
                &fh,
                &locker,
                is_write(a.locktype),
                a.offset,
                a.length,
            )
            .await?;
        ctx.stateid = Some(stateid.clone());
        Ok(stateid)
    }

    async fn lockt(&self, ctx: &Ctx<'_>, a: &LockTArgs) -> Result<(), LockError> {
        let clientid = ctx.clientid().map_err(LockError::Status)?;
        let (fh, _) = self.io_target(ctx).await.map_err(LockError::Status)?;
        self.opens
            .lockt(
                clientid,
                &fh,
                &a.owner.owner.0,
                is_write(a.locktype),
                a.offset,
                a.length,
            )
            .await
    }

    async fn locku(&self, ctx: &mut Ctx<'_>, a: &LockUArgs) -> Result<StateId, NfsStatus> {
        let clientid = ctx.clientid()?;
        let (fh, _) = self.io_target(ctx).await?;
        let stateid = ctx.resolve(&a.lock_stateid)?;
        let new = self
            .opens
            .locku(clientid, &fh, &stateid, a.offset, a.length)
            .await?;
        ctx.stateid = Some(new.clone());
        Ok(new)
    }

    async fn commit(&self, ctx: &Ctx<'_>) -> Result<Verifier, NfsStatus> {
        let (fh, _) = self.io_target(ctx).await?;
        self.fs.commit(&fh).await?;
        Ok(self.write_verifier)
    }

    async fn remove(&self, ctx: &Ctx<'_>, name: &Component) -> Result<ChangeInfo, NfsStatus> {
        let dir = ctx.current()?;
        check_name(name)?;
        let dir_attrs = self.require_dir_write(ctx, dir).await?;
        self.check_sticky(ctx, dir, &dir_attrs, name.as_str())
            .await?;
        self.fs.remove(dir, name.as_str()).await
    }

    /// In a sticky directory (mode 01000) only the owner of an entry, the owner of the
    /// directory or root may remove or rename it away.
    async fn check_sticky(
        &self,
        ctx: &Ctx<'_>,
        dir: &[u8],
        dir_attrs: &FileAttrs,
        name: &str,
    ) -> Result<(), NfsStatus> {
        let (uid, _) = ids(ctx.credential);
        if dir_attrs.mode & 0o1000 == 0 || uid == 0 || uid == dir_attrs.uid {
            return Ok(());
        }
        let target = self.lookup_fh(ctx, dir, name).await?;
        if self.attrs(ctx, &target).await?.uid != uid {
            return Err(NfsStatus::Access);
        }
        Ok(())
    }

    /// RENAME: from the saved filehandle's directory to the current one.
    async fn rename(&self, ctx: &Ctx<'_>, a: &RenameArgs) -> Result<RenameResOk, NfsStatus> {
        let dst = ctx.current()?;
        let src = ctx.saved.as_deref().ok_or(NfsStatus::NoFileHandle)?;
        check_name(&a.oldname)?;
        check_name(&a.newname)?;
        let src_attrs = self.require_dir_write(ctx, src).await?;
        let dst_attrs = self.require_dir_write(ctx, dst).await?;
        self.check_sticky(ctx, src, &src_attrs, a.oldname.as_str())
            .await?;
        match self
            .check_sticky(ctx, dst, &dst_attrs, a.newname.as_str())
            .await
        {
            Ok(()) | Err(NfsStatus::NoEnt) => {}
            Err(e) => return Err(e),
        }
        if ids(ctx.credential).0 != 0 && src_attrs.fileid != dst_attrs.fileid {
            // Moving a directory to a new parent rewrites its "..": that needs write
            // permission on the directory itself (as in Linux).
            let moved = self.lookup_fh(ctx, src, a.oldname.as_str()).await?;
            let moved_attrs = self.attrs(ctx, &moved).await?;
            if moved_attrs.ftype == NfsFileType::Directory
                && allowed(ctx.credential, &moved_attrs) & ACCESS4_MODIFY == 0
            {
                return Err(NfsStatus::Access);
            }
        }
        let (source_cinfo, target_cinfo) = self
            .fs
            .rename(src, a.oldname.as_str(), dst, a.newname.as_str())
            .await?;
        Ok(RenameResOk {
            source_cinfo,
            target_cinfo,
        })
    }

    /// LINK: the saved filehandle gets a new name in the current directory.
    async fn link(&self, ctx: &Ctx<'_>, name: &Component) -> Result<ChangeInfo, NfsStatus> {
        let dir = ctx.current()?;
        let file = ctx.saved.as_deref().ok_or(NfsStatus::NoFileHandle)?;
        check_name(name)?;
        self.require_dir_write(ctx, dir).await?;
        self.fs.link(file, dir, name.as_str()).await
    }

    /// SETATTR with POSIX permission rules: only root gives files away; the owner may change
    /// mode, group (to one of its groups) and times; a size change needs write permission.
    /// A size change presented with an open stateid needs that open to allow writing.
    async fn setattr(&self, ctx: &Ctx<'_>, a: &SetAttrArgs) -> Result<Bitmap, NfsStatus> {
        let fh = ctx.current()?;
        let set = a.obj_attributes.settable().map_err(|e| e.status())?;
        if set.size.is_some() {
            let stateid = ctx.resolve(&a.stateid)?;
            if stateid == StateId::BYPASS {
                return Err(NfsStatus::BadStateId);
            }
            self.opens
                .check_io(ctx.clientid()?, &stateid, fh, OPEN4_SHARE_ACCESS_WRITE)
                .await?;
        }
        let attrs = self.attrs(ctx, fh).await?;
        let (uid, _) = ids(ctx.credential);
        let owner = set.owner.as_deref().map(parse_id).transpose()?;
        let group = set.owner_group.as_deref().map(parse_id).transpose()?;
        if uid != 0 {
            let is_owner = uid == attrs.uid;
            let explicit_time = matches!(set.time_access, Some(SetTime::ClientTime(_)))
                || matches!(set.time_modify, Some(SetTime::ClientTime(_)));
            let chown = owner.is_some_and(|o| o != attrs.uid);
            let chgrp =
                group.is_some_and(|g| g != attrs.gid && !(is_owner && in_group(ctx.credential, g)));
            if chown || chgrp || (set.mode.is_some() && !is_owner) || (explicit_time && !is_owner) {
                return Err(NfsStatus::Perm);
            }
            let writable = allowed(ctx.credential, &attrs) & ACCESS4_MODIFY != 0;
            let touch = set.time_access.is_some() || set.time_modify.is_some();
            if (set.size.is_some() || (touch && !is_owner)) && !writable {
                return Err(NfsStatus::Access);
            }
        }
        let update = AttrUpdate {
            size: set.size,
            mode: set.mode.map(|m| m & 0o7777),
            uid: owner,
            gid: group,
            atime: set.time_access.clone().map(time_update),
            mtime: set.time_modify.clone().map(time_update),
        };
        self.fs.setattr(fh, update).await?;
        Ok(set.mask())
    }

    async fn access(&self, ctx: &Ctx<'_>, requested: u32) -> Result<AccessResOk, NfsStatus> {
        let attrs = self.attrs(ctx, ctx.current()?).await?;
        let known = ACCESS4_READ
            | ACCESS4_LOOKUP
            | ACCESS4_MODIFY
            | ACCESS4_EXTEND
            | ACCESS4_DELETE
            | ACCESS4_EXECUTE;
        let supported = requested & known;
        Ok(AccessResOk {
            supported,
            access: supported & allowed(ctx.credential, &attrs),
        })
    }

    async fn readdir(&self, ctx: &Ctx<'_>, a: &ReaddirArgs) -> Result<ReaddirResOk, NfsStatus> {
        let dir = ctx.current()?;
        if a.cookie == 1 || a.cookie == 2 {
            return Err(NfsStatus::BadCookie);
        }
        if a.cookie != 0 && a.cookieverf != COOKIEVERF {
            return Err(NfsStatus::NotSame);
        }
        let dir_attrs = self.attrs(ctx, dir).await?;
        if dir_attrs.ftype != NfsFileType::Directory {
            return Err(NfsStatus::NotDir);
        }
        let mut builder = ReaddirBuilder::new(COOKIEVERF, a.dircount, a.maxcount);
        let mut cookie = a.cookie;
        loop {
            let page = self.fs.readdir(dir, cookie, READDIR_PAGE).await?;
            for entry in page.entries {
                let attrs = match &entry.attrs {
                    Ok(attrs) => self.encode_attrs(&a.attr_request, &entry.fh, attrs),
                    Err(s) if a.attr_request.contains(FATTR4_RDATTR_ERROR) => {
                        Fattr::encode_attrs(&a.attr_request, [Attr::RdattrError(*s)])
                    }
                    Err(s) => return Err(*s),
                };
                // Names the file system holds are valid components; skip any that are not
                // rather than failing the whole listing.
                let Some(name) = Component::new(entry.name) else {
                    cookie = entry.cookie;
                    continue;
                };
                if builder.push(entry.cookie, name, attrs).is_err() {
                    return builder.finish(false);
                }
                cookie = entry.cookie;
            }
            if page.eof {
                return builder.finish(true);
            }
        }
    }

    async fn secinfo_no_name(
        &self,
        ctx: &mut Ctx<'_>,
        style: SecinfoStyle,
    ) -> Result<Vec<SecInfo>, NfsStatus> {
        let fh = ctx.current()?;
        if style == SecinfoStyle::Parent {
            self.fs.lookupp(fh).await?;
        }
        // RFC 8881 §2.6.3.1.1.8: SECINFO consumes the current filehandle.
        ctx.current = None;
        Ok(flavors())
    }

    async fn secinfo(
        &self,
        ctx: &mut Ctx<'_>,
        name: &Component,
    ) -> Result<Vec<SecInfo>, NfsStatus> {
        self.lookup_fh(ctx, ctx.current()?, name.as_str()).await?;
        ctx.current = None;
        Ok(flavors())
    }

    async fn exchange_id(&self, a: &ExchangeIdArgs) -> Result<ExchangeIdResOk, NfsStatus> {
        // Flags a client may send (RFC 8881 §18.35.3); anything else is INVAL, as in Linux nfsd.
        let client_flags = EXCHGID4_FLAG_SUPP_MOVED_REFER
            | EXCHGID4_FLAG_SUPP_MOVED_MIGR
            | EXCHGID4_FLAG_BIND_PRINC_STATEID
            | EXCHGID4_FLAG_MASK_PNFS
            | EXCHGID4_FLAG_UPD_CONFIRMED_REC_A;
        if a.flags & !client_flags != 0 {
            return Err(NfsStatus::Inval);
        }
        match a.state_protect {
            StateProtectArgs::None => {}
            StateProtectArgs::MachCred(_) => return Err(NfsStatus::Inval),
            StateProtectArgs::Ssv => return Err(NfsStatus::EncrAlgUnsupp),
        }
        let verifier = a.clientowner.verifier;
        let registered = self
            .registry
            .exchange(&a.clientowner.ownerid.0, verifier)
            .await?;
        if registered.previous == PreviousRecord::Rebooted {
            // The registry dropped the old incarnation's opens and locks; so must we.
            self.opens.drop_client(registered.clientid).await;
        }
        let out = self
            .sessions
            .exchanged(registered, verifier, self.clock.now());
        let mut flags = EXCHGID4_FLAG_USE_NON_PNFS;
        if out.confirmed {
            flags |= EXCHGID4_FLAG_CONFIRMED_R;
        }
        Ok(ExchangeIdResOk {
            clientid: out.clientid,
            sequenceid: out.sequenceid,
            flags,
            state_protect: StateProtectReply::None,
            server_owner: ServerOwner {
                minor_id: 0,
                major_id: Opaque(self.config.server_owner.clone()),
            },
            server_scope: Opaque(self.config.server_scope.clone()),
            server_impl_id: Some(NfsImplId {
                domain: Utf8String("bucketfs.io".to_owned()),
                name: Utf8String(format!("bucketfs {}", env!("CARGO_PKG_VERSION"))),
                date: NfsTime {
                    seconds: 0,
                    nseconds: 0,
                },
            }),
        })
    }

    /// CREATE_SESSION; a client this gateway has not seen (its earlier sessions were on
    /// another gateway) is looked up in the registry first.
    async fn create_session(&self, a: &CreateSessionArgs) -> Result<CreateSessionResOk, NfsStatus> {
        let now = self.clock.now();
        if !self.sessions.knows(a.clientid) {
            let Some((_, verifier)) = self.registry.lookup(a.clientid).await? else {
                return Err(NfsStatus::StaleClientId);
            };
            self.sessions.adopt(a.clientid, verifier, now);
        }
        self.sessions
            .create_session(a, &self.config.limits, self.clock.now())
    }

    /// DESTROY_CLIENTID (RFC 8881 §18.50.3): busy while the client has sessions here or
    /// holds opens.
    async fn destroy_clientid(&self, clientid: u64) -> Result<(), NfsStatus> {
        self.sessions.check_destroy_client(clientid)?;
        if self.opens.holds_state(clientid).await {
            return Err(NfsStatus::ClientIdBusy);
        }
        self.registry.destroy(clientid).await?;
        self.sessions.drop_client(clientid);
        self.opens.drop_client(clientid).await;
        Ok(())
    }

    fn bind_conn(&self, a: &BindConnToSessionArgs) -> Result<BindConnToSessionResOk, NfsStatus> {
        if !self.sessions.session_exists(&a.sessid) {
            return Err(NfsStatus::BadSession);
        }
        // Callbacks are never sent, so binding a connection to the back channel costs
        // nothing and a client that asks for it (Linux after a reconnect) gets what it asked.
        let dir = match a.dir {
            ChannelDirFromClient::Fore | ChannelDirFromClient::ForeOrBoth => {
                ChannelDirFromServer::Fore
            }
            ChannelDirFromClient::Back => ChannelDirFromServer::Back,
            ChannelDirFromClient::BackOrBoth => ChannelDirFromServer::Both,
        };
        Ok(BindConnToSessionResOk {
            sessid: a.sessid,
            dir,
            use_conn_in_rdma_mode: false,
        })
    }
}

fn ids(cred: &Credential) -> (u32, u32) {
    match cred {
        Credential::Sys(sys) => (sys.uid, sys.gid),
        Credential::None => (NOBODY, NOBODY),
    }
}

fn in_group(cred: &Credential, gid: u32) -> bool {
    match cred {
        Credential::Sys(sys) => sys.gid == gid || sys.gids.contains(&gid),
        Credential::None => gid == NOBODY,
    }
}

/// Owners travel as numeric strings (the Linux client's default for AUTH_SYS).
fn parse_id(s: &str) -> Result<u32, NfsStatus> {
    s.parse().map_err(|_| NfsStatus::BadOwner)
}

fn time_update(t: SetTime) -> TimeUpdate {
    match t {
        SetTime::ServerTime => TimeUpdate::Now,
        SetTime::ClientTime(t) => TimeUpdate::Set(t),
    }
}

/// Longest name a directory entry may have (POSIX NAME_MAX, S3 Files' limit too).
const NAME_MAX: usize = 255;

/// "." and ".." are not names in NFSv4 (RFC 8881 §18.4.3); an empty name is invalid, a
/// name longer than [`NAME_MAX`] bytes is NAMETOOLONG, and "/" or NUL cannot be in a name.
fn check_name(name: &Component) -> Result<(), NfsStatus> {
    let s = name.as_str();
    match s {
        "" => Err(NfsStatus::Inval),
        "." | ".." => Err(NfsStatus::BadName),
        _ if s.len() > NAME_MAX => Err(NfsStatus::NameTooLong),
        _ if s.contains(['/', '\0']) => Err(NfsStatus::BadChar),
        _ => Ok(()),
    }
}

fn is_write(t: LockType) -> bool {
    matches!(t, LockType::Write | LockType::WriteW)
}

/// change_info of a directory an operation did not modify.
fn unchanged(change: u64) -> ChangeInfo {
    ChangeInfo {
        atomic: true,
        before: change,
        after: change,
    }
}

fn flavors() -> Vec<SecInfo> {
    vec![SecInfo::Flavor(AUTH_SYS), SecInfo::Flavor(AUTH_NONE)]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// ACCESS4 bits the POSIX mode grants `cred`, following Linux nfsd's mapping: on directories
/// MODIFY/EXTEND/DELETE need write and search permission.
fn allowed(cred: &Credential, a: &FileAttrs) -> u32 {
    let (uid, gid, gids): (u32, u32, &[u32]) = match cred {
        Credential::Sys(sys) => (sys.uid, sys.gid, &sys.gids),
        Credential::None => (NOBODY, NOBODY, &[]),
    };
    let is_dir = a.ftype == NfsFileType::Directory;
    let any_x = a.mode & 0o111 != 0;
    let (r, w, x) = if uid == 0 {
        // root bypasses permission bits except that executing needs some x bit.
        (true, true, is_dir || any_x)
    } else {
        let class = if uid == a.uid {
            (a.mode >> 6) & 7
        } else if gid == a.gid || gids.contains(&a.gid) {
            (a.mode >> 3) & 7
        } else {
            a.mode & 7
        };
        (class & 4 != 0, class & 2 != 0, class & 1 != 0)
    };
    let mut bits = 0;
    if r {
        bits |= ACCESS4_READ;
    }
    if is_dir {
        if x {
            bits |= ACCESS4_LOOKUP | ACCESS4_EXECUTE;
        }
        if w && x {
            bits |= ACCESS4_MODIFY | ACCESS4_EXTEND | ACCESS4_DELETE;
        }
    } else {
        if w {
            bits |= ACCESS4_MODIFY | ACCESS4_EXTEND;
        }
        if x {
            bits |= ACCESS4_EXECUTE;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use bucketfs_nfs_wire::rpc::AuthSys;

    const T0: NfsTime = NfsTime {
        seconds: 0,
        nseconds: 0,
    };

    fn attrs(ftype: NfsFileType, mode: u32) -> FileAttrs {
        FileAttrs {
            fileid: 2,
            ftype,
            mode,
            nlink: 1,
            uid: 10,
            gid: 20,
            size: 0,
            space_used: 0,
            change: 1,
            atime: T0,
            mtime: T0,
            ctime: T0,
            rawdev: (0, 0),
        }
    }

    fn sys(uid: u32, gid: u32, gids: Vec<u32>) -> Credential {
        Credential::Sys(AuthSys {
            stamp: 0,
            machine_name: Vec::new(),
            uid,
            gid,
            gids,
        })
    }

    #[test]
    fn access_follows_mode_classes() {
        let file = attrs(NfsFileType::Regular, 0o640);
        assert_eq!(
            allowed(&sys(10, 1, vec![]), &file),
            ACCESS4_READ | ACCESS4_MODIFY | ACCESS4_EXTEND
        );
        assert_eq!(allowed(&sys(11, 1, vec![20]), &file), ACCESS4_READ);
        assert_eq!(allowed(&sys(11, 1, vec![]), &file), 0);
        assert_eq!(allowed(&Credential::None, &file), 0);
        assert_eq!(
            allowed(&sys(0, 0, vec![]), &file),
            ACCESS4_READ | ACCESS4_MODIFY | ACCESS4_EXTEND
        );
        let dir = attrs(NfsFileType::Directory, 0o755);
        assert_eq!(
            allowed(&sys(10, 20, vec![]), &dir),
            ACCESS4_READ
                | ACCESS4_LOOKUP
                | ACCESS4_EXECUTE
                | ACCESS4_MODIFY
                | ACCESS4_EXTEND
                | ACCESS4_DELETE
        );
        assert_eq!(
            allowed(&sys(99, 99, vec![]), &dir),
            ACCESS4_READ | ACCESS4_LOOKUP | ACCESS4_EXECUTE
        );
    }
}
