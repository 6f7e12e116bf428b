//! Operation arguments and results (RFC 5662 `nfs_argop4` / `nfs_resop4`).
//!
//! [`NfsArgOp`] models every operation the gateway implements; any other *known* NFSv4.1 opcode
//! decodes to [`NfsArgOp::NotSupported`] without reading its arguments — COMPOUND processing
//! stops at the first failing operation (RFC 8881 §16.2.3), so its arguments never matter.
//! [`NfsResOp`] carries each result as `Result<ok, status>`; an `Err(NfsStatus::Ok)` would be
//! malformed and is encoded as SERVERFAULT rather than producing a reply the client can't parse.

use crate::nfs::NfsStatus;
use crate::nfs::attr::Fattr;
use crate::nfs::types::{
    Bitmap, ChangeInfo, Component, DecodeError, FileHandle, LinkText, NfsFileType, NfsTime, Opaque,
    SessionId, SpecData, StateId, StateOwner, Utf8String, Verifier, Xdr, decode_array,
    encode_array, xdr_enum, xdr_struct,
};
use crate::rpc::{AUTH_NONE, AUTH_SYS, AuthSys, RPCSEC_GSS};
use crate::xdr::{Decoder, Encoder, XdrError};

xdr_enum! {
    /// nfs_opnum4, including the NFSv4.0-only, NFSv4.2 (RFC 7862) and xattr (RFC 8276) opcodes.
    pub enum Opcode {
        Access = 3,
        Close = 4,
        Commit = 5,
        Create = 6,
        DelegPurge = 7,
        DelegReturn = 8,
        GetAttr = 9,
        GetFh = 10,
        Link = 11,
        Lock = 12,
        LockT = 13,
        LockU = 14,
        Lookup = 15,
        LookupP = 16,
        NVerify = 17,
        Open = 18,
        OpenAttr = 19,
        OpenConfirm = 20,
        OpenDowngrade = 21,
        PutFh = 22,
        PutPubFh = 23,
        PutRootFh = 24,
        Read = 25,
        Readdir = 26,
        ReadLink = 27,
        Remove = 28,
        Rename = 29,
        Renew = 30,
        RestoreFh = 31,
        SaveFh = 32,
        Secinfo = 33,
        SetAttr = 34,
        SetClientId = 35,
        SetClientIdConfirm = 36,
        Verify = 37,
        Write = 38,
        ReleaseLockOwner = 39,
        BackchannelCtl = 40,
        BindConnToSession = 41,
        ExchangeId = 42,
        CreateSession = 43,
        DestroySession = 44,
        FreeStateId = 45,
        GetDirDelegation = 46,
        GetDeviceInfo = 47,
        GetDeviceList = 48,
        LayoutCommit = 49,
        LayoutGet = 50,
        LayoutReturn = 51,
        SecinfoNoName = 52,
        Sequence = 53,
        SetSsv = 54,
        TestStateId = 55,
        WantDelegation = 56,
        DestroyClientId = 57,
        ReclaimComplete = 58,
        Allocate = 59,
        Copy = 60,
        CopyNotify = 61,
        Deallocate = 62,
        IoAdvise = 63,
        LayoutError = 64,
        LayoutStats = 65,
        OffloadCancel = 66,
        OffloadStatus = 67,
        ReadPlus = 68,
        Seek = 69,
        WriteSame = 70,
        Clone = 71,
        GetXattr = 72,
        SetXattr = 73,
        ListXattrs = 74,
        RemoveXattr = 75,
        Illegal = 10044,
    }
}

impl Opcode {
    /// Whether the opcode exists in NFSv4.1 (RFC 8881 §16.2.1 lists 3..=58). Opcodes of later
    /// minor versions are illegal in a minor-version-1 COMPOUND, as Linux nfsd treats them.
    pub fn in_minor_version_1(self) -> bool {
        (self as u32) <= Opcode::ReclaimComplete as u32
    }
}

/// ACCESS4 bits.
pub const ACCESS4_READ: u32 = 0x01;
pub const ACCESS4_LOOKUP: u32 = 0x02;
pub const ACCESS4_MODIFY: u32 = 0x04;
pub const ACCESS4_EXTEND: u32 = 0x08;
pub const ACCESS4_DELETE: u32 = 0x10;
pub const ACCESS4_EXECUTE: u32 = 0x20;

/// OPEN4 share access/deny.
pub const OPEN4_SHARE_ACCESS_READ: u32 = 1;
pub const OPEN4_SHARE_ACCESS_WRITE: u32 = 2;
pub const OPEN4_SHARE_ACCESS_BOTH: u32 = 3;
pub const OPEN4_SHARE_ACCESS_WANT_DELEG_MASK: u32 = 0xff00;
pub const OPEN4_SHARE_DENY_NONE: u32 = 0;
pub const OPEN4_SHARE_DENY_READ: u32 = 1;
pub const OPEN4_SHARE_DENY_WRITE: u32 = 2;
pub const OPEN4_SHARE_DENY_BOTH: u32 = 3;

/// OPEN4 rflags.
pub const OPEN4_RESULT_CONFIRM: u32 = 0x2;
pub const OPEN4_RESULT_LOCKTYPE_POSIX: u32 = 0x4;
pub const OPEN4_RESULT_PRESERVE_UNLINKED: u32 = 0x8;
pub const OPEN4_RESULT_MAY_NOTIFY_LOCK: u32 = 0x20;

/// EXCHANGE_ID flags.
pub const EXCHGID4_FLAG_SUPP_MOVED_REFER: u32 = 0x0000_0001;
pub const EXCHGID4_FLAG_SUPP_MOVED_MIGR: u32 = 0x0000_0002;
pub const EXCHGID4_FLAG_SUPP_FENCE_OPS: u32 = 0x0000_0004;
pub const EXCHGID4_FLAG_BIND_PRINC_STATEID: u32 = 0x0000_0100;
pub const EXCHGID4_FLAG_USE_NON_PNFS: u32 = 0x0001_0000;
pub const EXCHGID4_FLAG_USE_PNFS_MDS: u32 = 0x0002_0000;
pub const EXCHGID4_FLAG_USE_PNFS_DS: u32 = 0x0004_0000;
pub const EXCHGID4_FLAG_MASK_PNFS: u32 = 0x0007_0000;
pub const EXCHGID4_FLAG_UPD_CONFIRMED_REC_A: u32 = 0x4000_0000;
pub const EXCHGID4_FLAG_CONFIRMED_R: u32 = 0x8000_0000;

/// CREATE_SESSION flags.
pub const CREATE_SESSION4_FLAG_PERSIST: u32 = 0x1;
pub const CREATE_SESSION4_FLAG_CONN_BACK_CHAN: u32 = 0x2;
pub const CREATE_SESSION4_FLAG_CONN_RDMA: u32 = 0x4;

/// SEQUENCE status flags.
pub const SEQ4_STATUS_CB_PATH_DOWN: u32 = 0x0000_0001;
pub const SEQ4_STATUS_CB_GSS_CONTEXTS_EXPIRING: u32 = 0x0000_0002;
pub const SEQ4_STATUS_CB_GSS_CONTEXTS_EXPIRED: u32 = 0x0000_0004;
pub const SEQ4_STATUS_EXPIRED_ALL_STATE_REVOKED: u32 = 0x0000_0008;
pub const SEQ4_STATUS_EXPIRED_SOME_STATE_REVOKED: u32 = 0x0000_0010;
pub const SEQ4_STATUS_ADMIN_STATE_REVOKED: u32 = 0x0000_0020;
pub const SEQ4_STATUS_RECALLABLE_STATE_REVOKED: u32 = 0x0000_0040;
pub const SEQ4_STATUS_LEASE_MOVED: u32 = 0x0000_0080;
pub const SEQ4_STATUS_RESTART_RECLAIM_NEEDED: u32 = 0x0000_0100;
pub const SEQ4_STATUS_CB_PATH_DOWN_SESSION: u32 = 0x0000_0200;
pub const SEQ4_STATUS_BACKCHANNEL_FAULT: u32 = 0x0000_0400;
pub const SEQ4_STATUS_DEVID_CHANGED: u32 = 0x0000_0800;
pub const SEQ4_STATUS_DEVID_DELETED: u32 = 0x0000_1000;

/// Element bound for arrays with no RFC bound (TEST_STATEID stateids, security tuples, …);
/// the remaining-bytes check bounds them too, this only caps work per operation.
pub const MAX_ARRAY: usize = 1024;

impl<T: Xdr> Xdr for Vec<T> {
    fn encode(&self, e: &mut Encoder) {
        encode_array(self, e);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        decode_array(d, MAX_ARRAY, 4, "array")
    }
}

/// `T *` optional data and `T<1>` arrays share one encoding: a 0/1 word, then the value.
impl<T: Xdr> Xdr for Option<T> {
    fn encode(&self, e: &mut Encoder) {
        e.put_bool(self.is_some());
        if let Some(v) = self {
            v.encode(e);
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match d.bool()? {
            true => Ok(Some(T::decode(d)?)),
            false => Ok(None),
        }
    }
}

/// Bulk data (READ results, WRITE arguments): bounded only by the record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data(pub Vec<u8>);

impl Xdr for Data {
    fn encode(&self, e: &mut Encoder) {
        e.put_opaque(&self.0);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self(d.opaque_vec(usize::MAX, "data")?))
    }
}

fn bad(what: &'static str, value: u32) -> DecodeError {
    DecodeError::Xdr(XdrError::BadDiscriminant { what, value })
}

xdr_enum! {
    /// nfs_lock_type4.
    pub enum LockType {
        Read = 1,
        Write = 2,
        ReadW = 3,
        WriteW = 4,
    }
}

xdr_enum! {
    /// stable_how4.
    pub enum StableHow {
        Unstable = 0,
        DataSync = 1,
        FileSync = 2,
    }
}

xdr_enum! {
    /// secinfo_style4.
    pub enum SecinfoStyle {
        CurrentFh = 0,
        Parent = 1,
    }
}

xdr_enum! {
    /// channel_dir_from_client4.
    pub enum ChannelDirFromClient {
        Fore = 1,
        Back = 2,
        ForeOrBoth = 3,
        BackOrBoth = 7,
    }
}

xdr_enum! {
    /// channel_dir_from_server4.
    pub enum ChannelDirFromServer {
        Fore = 1,
        Back = 2,
        Both = 3,
    }
}

xdr_enum! {
    /// open_delegation_type4 (as used by CLAIM_PREVIOUS).
    pub enum OpenDelegationType {
        None = 0,
        Read = 1,
        Write = 2,
        NoneExt = 3,
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

xdr_struct! { pub struct AccessArgs { pub access: u32 } }
xdr_struct! { pub struct CloseArgs { pub seqid: u32, pub open_stateid: StateId } }
xdr_struct! { pub struct CommitArgs { pub offset: u64, pub count: u32 } }
xdr_struct! { pub struct DelegReturnArgs { pub deleg_stateid: StateId } }
xdr_struct! { pub struct GetAttrArgs { pub attr_request: Bitmap } }
xdr_struct! { pub struct LinkArgs { pub newname: Component } }
xdr_struct! { pub struct LookupArgs { pub objname: Component } }
xdr_struct! {
    /// VERIFY4args and NVERIFY4args. The server compares `obj_attributes` with its own encoding
    /// of the same mask, so the values stay raw.
    pub struct VerifyArgs { pub obj_attributes: Fattr }
}
xdr_struct! { pub struct PutFhArgs { pub object: FileHandle } }
xdr_struct! { pub struct ReadArgs { pub stateid: StateId, pub offset: u64, pub count: u32 } }
xdr_struct! {
    pub struct ReaddirArgs {
        pub cookie: u64,
        pub cookieverf: Verifier,
        pub dircount: u32,
        pub maxcount: u32,
        pub attr_request: Bitmap,
    }
}
xdr_struct! { pub struct RemoveArgs { pub target: Component } }
xdr_struct! { pub struct RenameArgs { pub oldname: Component, pub newname: Component } }
xdr_struct! { pub struct SecinfoArgs { pub name: Component } }
xdr_struct! { pub struct SetAttrArgs { pub stateid: StateId, pub obj_attributes: Fattr } }
xdr_struct! {
    pub struct WriteArgs {
        pub stateid: StateId,
        pub offset: u64,
        pub stable: StableHow,
        pub data: Data,
    }
}
xdr_struct! {
    pub struct OpenDowngradeArgs {
        pub open_stateid: StateId,
        pub seqid: u32,
        pub share_access: u32,
        pub share_deny: u32,
    }
}
xdr_struct! {
    pub struct LockArgs {
        pub locktype: LockType,
        pub reclaim: bool,
        pub offset: u64,
        pub length: u64,
        pub locker: Locker,
    }
}
xdr_struct! {
    pub struct LockTArgs {
        pub locktype: LockType,
        pub offset: u64,
        pub length: u64,
        pub owner: StateOwner,
    }
}
xdr_struct! {
    pub struct LockUArgs {
        pub locktype: LockType,
        pub seqid: u32,
        pub lock_stateid: StateId,
        pub offset: u64,
        pub length: u64,
    }
}
xdr_struct! {
    pub struct OpenToLockOwner {
        pub open_seqid: u32,
        pub open_stateid: StateId,
        pub lock_seqid: u32,
        pub lock_owner: StateOwner,
    }
}
xdr_struct! { pub struct ExistLockOwner { pub lock_stateid: StateId, pub lock_seqid: u32 } }

/// locker4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locker {
    /// new_lock_owner = TRUE.
    New(OpenToLockOwner),
    /// new_lock_owner = FALSE.
    Existing(ExistLockOwner),
}

impl Xdr for Locker {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Locker::New(v) => {
                e.put_bool(true);
                v.encode(e);
            }
            Locker::Existing(v) => {
                e.put_bool(false);
                v.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.bool()? {
            true => Locker::New(Xdr::decode(d)?),
            false => Locker::Existing(Xdr::decode(d)?),
        })
    }
}

/// createtype4: what CREATE makes. Regular files and named-attribute types decode (the union's
/// default arm is void) so the server can answer BADTYPE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateType {
    Link(LinkText),
    Block(SpecData),
    Char(SpecData),
    Socket,
    Fifo,
    Directory,
    Other(NfsFileType),
}

impl Xdr for CreateType {
    fn encode(&self, e: &mut Encoder) {
        match self {
            CreateType::Link(t) => {
                NfsFileType::Link.encode(e);
                t.encode(e);
            }
            CreateType::Block(s) => {
                NfsFileType::Block.encode(e);
                s.encode(e);
            }
            CreateType::Char(s) => {
                NfsFileType::Char.encode(e);
                s.encode(e);
            }
            CreateType::Socket => NfsFileType::Socket.encode(e),
            CreateType::Fifo => NfsFileType::Fifo.encode(e),
            CreateType::Directory => NfsFileType::Directory.encode(e),
            CreateType::Other(t) => t.encode(e),
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match NfsFileType::decode(d)? {
            NfsFileType::Link => CreateType::Link(LinkText::decode(d)?),
            NfsFileType::Block => CreateType::Block(SpecData::decode(d)?),
            NfsFileType::Char => CreateType::Char(SpecData::decode(d)?),
            NfsFileType::Socket => CreateType::Socket,
            NfsFileType::Fifo => CreateType::Fifo,
            NfsFileType::Directory => CreateType::Directory,
            other => CreateType::Other(other),
        })
    }
}

xdr_struct! {
    pub struct CreateArgs {
        pub objtype: CreateType,
        pub objname: Component,
        pub createattrs: Fattr,
    }
}

/// createhow4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateHow {
    Unchecked(Fattr),
    Guarded(Fattr),
    Exclusive(Verifier),
    /// EXCLUSIVE4_1: verifier and attributes.
    Exclusive41 {
        verifier: Verifier,
        attrs: Fattr,
    },
}

impl Xdr for CreateHow {
    fn encode(&self, e: &mut Encoder) {
        match self {
            CreateHow::Unchecked(a) => {
                e.put_u32(0);
                a.encode(e);
            }
            CreateHow::Guarded(a) => {
                e.put_u32(1);
                a.encode(e);
            }
            CreateHow::Exclusive(v) => {
                e.put_u32(2);
                v.encode(e);
            }
            CreateHow::Exclusive41 { verifier, attrs } => {
                e.put_u32(3);
                verifier.encode(e);
                attrs.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            0 => CreateHow::Unchecked(Fattr::decode(d)?),
            1 => CreateHow::Guarded(Fattr::decode(d)?),
            2 => CreateHow::Exclusive(Verifier::decode(d)?),
            3 => CreateHow::Exclusive41 {
                verifier: Verifier::decode(d)?,
                attrs: Fattr::decode(d)?,
            },
            v => return Err(bad("createmode4", v)),
        })
    }
}

/// openflag4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFlag {
    NoCreate,
    Create(CreateHow),
}

impl Xdr for OpenFlag {
    fn encode(&self, e: &mut Encoder) {
        match self {
            OpenFlag::NoCreate => e.put_u32(0),
            OpenFlag::Create(how) => {
                e.put_u32(1);
                how.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            0 => OpenFlag::NoCreate,
            1 => OpenFlag::Create(CreateHow::decode(d)?),
            v => return Err(bad("opentype4", v)),
        })
    }
}

/// open_claim4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenClaim {
    /// CLAIM_NULL: open `file` in the current (directory) filehandle.
    Null(Component),
    Previous(OpenDelegationType),
    DelegateCur {
        delegate_stateid: StateId,
        file: Component,
    },
    DelegatePrev(Component),
    /// CLAIM_FH: open the current filehandle.
    Fh,
    /// CLAIM_DELEG_CUR_FH (5).
    DelegCurFh(StateId),
    /// CLAIM_DELEG_PREV_FH (6).
    DelegPrevFh,
}

impl Xdr for OpenClaim {
    fn encode(&self, e: &mut Encoder) {
        match self {
            OpenClaim::Null(c) => {
                e.put_u32(0);
                c.encode(e);
            }
            OpenClaim::Previous(t) => {
                e.put_u32(1);
                t.encode(e);
            }
            OpenClaim::DelegateCur {
                delegate_stateid,
                file,
            } => {
                e.put_u32(2);
                delegate_stateid.encode(e);
                file.encode(e);
            }
            OpenClaim::DelegatePrev(c) => {
                e.put_u32(3);
                c.encode(e);
            }
            OpenClaim::Fh => e.put_u32(4),
            OpenClaim::DelegCurFh(s) => {
                e.put_u32(5);
                s.encode(e);
            }
            OpenClaim::DelegPrevFh => e.put_u32(6),
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            0 => OpenClaim::Null(Component::decode(d)?),
            1 => OpenClaim::Previous(OpenDelegationType::decode(d)?),
            2 => OpenClaim::DelegateCur {
                delegate_stateid: StateId::decode(d)?,
                file: Component::decode(d)?,
            },
            3 => OpenClaim::DelegatePrev(Component::decode(d)?),
            4 => OpenClaim::Fh,
            5 => OpenClaim::DelegCurFh(StateId::decode(d)?),
            6 => OpenClaim::DelegPrevFh,
            v => return Err(bad("open_claim_type4", v)),
        })
    }
}

xdr_struct! {
    pub struct OpenArgs {
        pub seqid: u32,
        pub share_access: u32,
        pub share_deny: u32,
        pub owner: StateOwner,
        pub openhow: OpenFlag,
        pub claim: OpenClaim,
    }
}

xdr_struct! {
    pub struct BindConnToSessionArgs {
        pub sessid: SessionId,
        pub dir: ChannelDirFromClient,
        pub use_conn_in_rdma_mode: bool,
    }
}

xdr_struct! {
    /// client_owner4.
    pub struct ClientOwner { pub verifier: Verifier, pub ownerid: Opaque }
}

xdr_struct! {
    /// nfs_impl_id4.
    pub struct NfsImplId { pub domain: Utf8String, pub name: Utf8String, pub date: NfsTime }
}

xdr_struct! {
    /// state_protect_ops4.
    pub struct StateProtectOps { pub must_enforce: Bitmap, pub must_allow: Bitmap }
}

/// state_protect4_a. SP4_SSV is parsed for well-formedness only: the server rejects it
/// (Linux nfsd answers ENCR_ALG_UNSUPP), so its algorithms are not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateProtectArgs {
    None,
    MachCred(StateProtectOps),
    Ssv,
}

impl Xdr for StateProtectArgs {
    fn encode(&self, e: &mut Encoder) {
        match self {
            StateProtectArgs::None => e.put_u32(0),
            StateProtectArgs::MachCred(ops) => {
                e.put_u32(1);
                ops.encode(e);
            }
            StateProtectArgs::Ssv => {
                // An empty ssv_sp_parms4: no ops, no algorithms, window 0, 0 handles.
                e.put_u32(2);
                StateProtectOps {
                    must_enforce: Bitmap::new(),
                    must_allow: Bitmap::new(),
                }
                .encode(e);
                for _ in 0..4 {
                    e.put_u32(0);
                }
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            0 => StateProtectArgs::None,
            1 => StateProtectArgs::MachCred(StateProtectOps::decode(d)?),
            2 => {
                StateProtectOps::decode(d)?;
                for what in ["ssp_hash_algs", "ssp_encr_algs"] {
                    let n = d.array_len(MAX_ARRAY, 4, what)?;
                    for _ in 0..n {
                        d.opaque(usize::MAX, "sec_oid4")?;
                    }
                }
                d.u32()?; // ssp_window
                d.u32()?; // ssp_num_gss_handles
                StateProtectArgs::Ssv
            }
            v => return Err(bad("state_protect_how4", v)),
        })
    }
}

xdr_struct! {
    pub struct ExchangeIdArgs {
        pub clientowner: ClientOwner,
        pub flags: u32,
        pub state_protect: StateProtectArgs,
        /// nfs_impl_id4 eia_client_impl_id<1>.
        pub client_impl_id: Option<NfsImplId>,
    }
}

xdr_struct! {
    /// channel_attrs4.
    pub struct ChannelAttrs {
        pub headerpadsize: u32,
        pub maxrequestsize: u32,
        pub maxresponsesize: u32,
        pub maxresponsesize_cached: u32,
        pub maxoperations: u32,
        pub maxrequests: u32,
        /// ca_rdma_ird<1>.
        pub rdma_ird: Option<u32>,
    }
}

xdr_struct! {
    /// gss_cb_handles4.
    pub struct GssCbHandles {
        pub service: u32,
        pub handle_from_server: Opaque,
        pub handle_from_client: Opaque,
    }
}

/// callback_sec_parms4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackSecParms {
    None,
    Sys(AuthSys),
    Gss(GssCbHandles),
}

impl Xdr for CallbackSecParms {
    fn encode(&self, e: &mut Encoder) {
        match self {
            CallbackSecParms::None => e.put_u32(AUTH_NONE),
            CallbackSecParms::Sys(s) => {
                e.put_u32(AUTH_SYS);
                s.encode(e);
            }
            CallbackSecParms::Gss(g) => {
                e.put_u32(RPCSEC_GSS);
                g.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            AUTH_NONE => CallbackSecParms::None,
            AUTH_SYS => CallbackSecParms::Sys(AuthSys::decode(d)?),
            RPCSEC_GSS => CallbackSecParms::Gss(GssCbHandles::decode(d)?),
            v => return Err(bad("callback_sec_parms4", v)),
        })
    }
}

xdr_struct! {
    pub struct CreateSessionArgs {
        pub clientid: u64,
        pub sequence: u32,
        pub flags: u32,
        pub fore_chan_attrs: ChannelAttrs,
        pub back_chan_attrs: ChannelAttrs,
        pub cb_program: u32,
        pub sec_parms: Vec<CallbackSecParms>,
    }
}

xdr_struct! { pub struct DestroySessionArgs { pub sessionid: SessionId } }
xdr_struct! { pub struct FreeStateIdArgs { pub stateid: StateId } }
xdr_struct! {
    pub struct SequenceArgs {
        pub sessionid: SessionId,
        pub sequenceid: u32,
        pub slotid: u32,
        pub highest_slotid: u32,
        pub cachethis: bool,
    }
}
xdr_struct! { pub struct TestStateIdArgs { pub stateids: Vec<StateId> } }
xdr_struct! { pub struct DestroyClientIdArgs { pub clientid: u64 } }
xdr_struct! { pub struct ReclaimCompleteArgs { pub one_fs: bool } }

/// One decoded operation of a COMPOUND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfsArgOp {
    Access(AccessArgs),
    Close(CloseArgs),
    Commit(CommitArgs),
    Create(CreateArgs),
    DelegReturn(DelegReturnArgs),
    GetAttr(GetAttrArgs),
    GetFh,
    Link(LinkArgs),
    Lock(LockArgs),
    LockT(LockTArgs),
    LockU(LockUArgs),
    Lookup(LookupArgs),
    LookupP,
    NVerify(VerifyArgs),
    Open(OpenArgs),
    OpenDowngrade(OpenDowngradeArgs),
    PutFh(PutFhArgs),
    PutPubFh,
    PutRootFh,
    Read(ReadArgs),
    Readdir(ReaddirArgs),
    ReadLink,
    Remove(RemoveArgs),
    Rename(RenameArgs),
    RestoreFh,
    SaveFh,
    Secinfo(SecinfoArgs),
    SetAttr(SetAttrArgs),
    Verify(VerifyArgs),
    Write(WriteArgs),
    BindConnToSession(BindConnToSessionArgs),
    ExchangeId(ExchangeIdArgs),
    CreateSession(CreateSessionArgs),
    DestroySession(DestroySessionArgs),
    FreeStateId(FreeStateIdArgs),
    SecinfoNoName(SecinfoStyle),
    Sequence(SequenceArgs),
    TestStateId(TestStateIdArgs),
    DestroyClientId(DestroyClientIdArgs),
    ReclaimComplete(ReclaimCompleteArgs),
    /// A valid NFSv4.1 operation this server answers with NFS4ERR_NOTSUPP. Its arguments are
    /// not decoded: processing stops here.
    NotSupported(Opcode),
}

impl NfsArgOp {
    pub fn opcode(&self) -> Opcode {
        match self {
            NfsArgOp::Access(_) => Opcode::Access,
            NfsArgOp::Close(_) => Opcode::Close,
            NfsArgOp::Commit(_) => Opcode::Commit,
            NfsArgOp::Create(_) => Opcode::Create,
            NfsArgOp::DelegReturn(_) => Opcode::DelegReturn,
            NfsArgOp::GetAttr(_) => Opcode::GetAttr,
            NfsArgOp::GetFh => Opcode::GetFh,
            NfsArgOp::Link(_) => Opcode::Link,
            NfsArgOp::Lock(_) => Opcode::Lock,
            NfsArgOp::LockT(_) => Opcode::LockT,
            NfsArgOp::LockU(_) => Opcode::LockU,
            NfsArgOp::Lookup(_) => Opcode::Lookup,
            NfsArgOp::LookupP => Opcode::LookupP,
            NfsArgOp::NVerify(_) => Opcode::NVerify,
            NfsArgOp::Open(_) => Opcode::Open,
            NfsArgOp::OpenDowngrade(_) => Opcode::OpenDowngrade,
            NfsArgOp::PutFh(_) => Opcode::PutFh,
            NfsArgOp::PutPubFh => Opcode::PutPubFh,
            NfsArgOp::PutRootFh => Opcode::PutRootFh,
            NfsArgOp::Read(_) => Opcode::Read,
            NfsArgOp::Readdir(_) => Opcode::Readdir,
            NfsArgOp::ReadLink => Opcode::ReadLink,
            NfsArgOp::Remove(_) => Opcode::Remove,
            NfsArgOp::Rename(_) => Opcode::Rename,
            NfsArgOp::RestoreFh => Opcode::RestoreFh,
            NfsArgOp::SaveFh => Opcode::SaveFh,
            NfsArgOp::Secinfo(_) => Opcode::Secinfo,
            NfsArgOp::SetAttr(_) => Opcode::SetAttr,
            NfsArgOp::Verify(_) => Opcode::Verify,
            NfsArgOp::Write(_) => Opcode::Write,
            NfsArgOp::BindConnToSession(_) => Opcode::BindConnToSession,
            NfsArgOp::ExchangeId(_) => Opcode::ExchangeId,
            NfsArgOp::CreateSession(_) => Opcode::CreateSession,
            NfsArgOp::DestroySession(_) => Opcode::DestroySession,
            NfsArgOp::FreeStateId(_) => Opcode::FreeStateId,
            NfsArgOp::SecinfoNoName(_) => Opcode::SecinfoNoName,
            NfsArgOp::Sequence(_) => Opcode::Sequence,
            NfsArgOp::TestStateId(_) => Opcode::TestStateId,
            NfsArgOp::DestroyClientId(_) => Opcode::DestroyClientId,
            NfsArgOp::ReclaimComplete(_) => Opcode::ReclaimComplete,
            NfsArgOp::NotSupported(op) => *op,
        }
    }

    /// Decodes the arguments of `opcode` (already read). Only called for opcodes legal in
    /// minor version 1.
    pub fn decode_args(opcode: Opcode, d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match opcode {
            Opcode::Access => NfsArgOp::Access(Xdr::decode(d)?),
            Opcode::Close => NfsArgOp::Close(Xdr::decode(d)?),
            Opcode::Commit => NfsArgOp::Commit(Xdr::decode(d)?),
            Opcode::Create => NfsArgOp::Create(Xdr::decode(d)?),
            Opcode::DelegReturn => NfsArgOp::DelegReturn(Xdr::decode(d)?),
            Opcode::GetAttr => NfsArgOp::GetAttr(Xdr::decode(d)?),
            Opcode::GetFh => NfsArgOp::GetFh,
            Opcode::Link => NfsArgOp::Link(Xdr::decode(d)?),
            Opcode::Lock => NfsArgOp::Lock(Xdr::decode(d)?),
            Opcode::LockT => NfsArgOp::LockT(Xdr::decode(d)?),
            Opcode::LockU => NfsArgOp::LockU(Xdr::decode(d)?),
            Opcode::Lookup => NfsArgOp::Lookup(Xdr::decode(d)?),
            Opcode::LookupP => NfsArgOp::LookupP,
            Opcode::NVerify => NfsArgOp::NVerify(Xdr::decode(d)?),
            Opcode::Open => NfsArgOp::Open(Xdr::decode(d)?),
            Opcode::OpenDowngrade => NfsArgOp::OpenDowngrade(Xdr::decode(d)?),
            Opcode::PutFh => NfsArgOp::PutFh(Xdr::decode(d)?),
            Opcode::PutPubFh => NfsArgOp::PutPubFh,
            Opcode::PutRootFh => NfsArgOp::PutRootFh,
            Opcode::Read => NfsArgOp::Read(Xdr::decode(d)?),
            Opcode::Readdir => NfsArgOp::Readdir(Xdr::decode(d)?),
            Opcode::ReadLink => NfsArgOp::ReadLink,
            Opcode::Remove => NfsArgOp::Remove(Xdr::decode(d)?),
            Opcode::Rename => NfsArgOp::Rename(Xdr::decode(d)?),
            Opcode::RestoreFh => NfsArgOp::RestoreFh,
            Opcode::SaveFh => NfsArgOp::SaveFh,
            Opcode::Secinfo => NfsArgOp::Secinfo(Xdr::decode(d)?),
            Opcode::SetAttr => NfsArgOp::SetAttr(Xdr::decode(d)?),
            Opcode::Verify => NfsArgOp::Verify(Xdr::decode(d)?),
            Opcode::Write => NfsArgOp::Write(Xdr::decode(d)?),
            Opcode::BindConnToSession => NfsArgOp::BindConnToSession(Xdr::decode(d)?),
            Opcode::ExchangeId => NfsArgOp::ExchangeId(Xdr::decode(d)?),
            Opcode::CreateSession => NfsArgOp::CreateSession(Xdr::decode(d)?),
            Opcode::DestroySession => NfsArgOp::DestroySession(Xdr::decode(d)?),
            Opcode::FreeStateId => NfsArgOp::FreeStateId(Xdr::decode(d)?),
            Opcode::SecinfoNoName => NfsArgOp::SecinfoNoName(Xdr::decode(d)?),
            Opcode::Sequence => NfsArgOp::Sequence(Xdr::decode(d)?),
            Opcode::TestStateId => NfsArgOp::TestStateId(Xdr::decode(d)?),
            Opcode::DestroyClientId => NfsArgOp::DestroyClientId(Xdr::decode(d)?),
            Opcode::ReclaimComplete => NfsArgOp::ReclaimComplete(Xdr::decode(d)?),
            other => NfsArgOp::NotSupported(other),
        })
    }

    /// Writes opcode and arguments. `NotSupported` writes the opcode alone, which is only a
    /// complete encoding for argument-less operations; it exists for tests and tooling.
    pub fn encode(&self, e: &mut Encoder) {
        self.opcode().encode(e);
        match self {
            NfsArgOp::Access(a) => a.encode(e),
            NfsArgOp::Close(a) => a.encode(e),
            NfsArgOp::Commit(a) => a.encode(e),
            NfsArgOp::Create(a) => a.encode(e),
            NfsArgOp::DelegReturn(a) => a.encode(e),
            NfsArgOp::GetAttr(a) => a.encode(e),
            NfsArgOp::Link(a) => a.encode(e),
            NfsArgOp::Lock(a) => a.encode(e),
            NfsArgOp::LockT(a) => a.encode(e),
            NfsArgOp::LockU(a) => a.encode(e),
            NfsArgOp::Lookup(a) => a.encode(e),
            NfsArgOp::NVerify(a) | NfsArgOp::Verify(a) => a.encode(e),
            NfsArgOp::Open(a) => a.encode(e),
            NfsArgOp::OpenDowngrade(a) => a.encode(e),
            NfsArgOp::PutFh(a) => a.encode(e),
            NfsArgOp::Read(a) => a.encode(e),
            NfsArgOp::Readdir(a) => a.encode(e),
            NfsArgOp::Remove(a) => a.encode(e),
            NfsArgOp::Rename(a) => a.encode(e),
            NfsArgOp::Secinfo(a) => a.encode(e),
            NfsArgOp::SetAttr(a) => a.encode(e),
            NfsArgOp::Write(a) => a.encode(e),
            NfsArgOp::BindConnToSession(a) => a.encode(e),
            NfsArgOp::ExchangeId(a) => a.encode(e),
            NfsArgOp::CreateSession(a) => a.encode(e),
            NfsArgOp::DestroySession(a) => a.encode(e),
            NfsArgOp::FreeStateId(a) => a.encode(e),
            NfsArgOp::SecinfoNoName(a) => a.encode(e),
            NfsArgOp::Sequence(a) => a.encode(e),
            NfsArgOp::TestStateId(a) => a.encode(e),
            NfsArgOp::DestroyClientId(a) => a.encode(e),
            NfsArgOp::ReclaimComplete(a) => a.encode(e),
            NfsArgOp::GetFh
            | NfsArgOp::LookupP
            | NfsArgOp::PutPubFh
            | NfsArgOp::PutRootFh
            | NfsArgOp::ReadLink
            | NfsArgOp::RestoreFh
            | NfsArgOp::SaveFh
            | NfsArgOp::NotSupported(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

xdr_struct! { pub struct AccessResOk { pub supported: u32, pub access: u32 } }
xdr_struct! { pub struct CreateResOk { pub cinfo: ChangeInfo, pub attrset: Bitmap } }
xdr_struct! {
    /// LOCK4denied.
    pub struct LockDenied {
        pub offset: u64,
        pub length: u64,
        pub locktype: LockType,
        pub owner: StateOwner,
    }
}
xdr_struct! { pub struct ReadResOk { pub eof: bool, pub data: Data } }
xdr_struct! { pub struct RenameResOk { pub source_cinfo: ChangeInfo, pub target_cinfo: ChangeInfo } }
xdr_struct! {
    pub struct WriteResOk { pub count: u32, pub committed: StableHow, pub writeverf: Verifier }
}
xdr_struct! {
    pub struct BindConnToSessionResOk {
        pub sessid: SessionId,
        pub dir: ChannelDirFromServer,
        pub use_conn_in_rdma_mode: bool,
    }
}
xdr_struct! {
    /// server_owner4.
    pub struct ServerOwner { pub minor_id: u64, pub major_id: Opaque }
}
xdr_struct! {
    pub struct CreateSessionResOk {
        pub sessionid: SessionId,
        pub sequence: u32,
        pub flags: u32,
        pub fore_chan_attrs: ChannelAttrs,
        pub back_chan_attrs: ChannelAttrs,
    }
}
xdr_struct! {
    pub struct SequenceResOk {
        pub sessionid: SessionId,
        pub sequenceid: u32,
        pub slotid: u32,
        pub highest_slotid: u32,
        pub target_highest_slotid: u32,
        pub status_flags: u32,
    }
}

/// state_protect4_r as this server sends it: SP4_NONE, or SP4_MACH_CRED echoing the ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateProtectReply {
    None,
    MachCred(StateProtectOps),
}

impl Xdr for StateProtectReply {
    fn encode(&self, e: &mut Encoder) {
        match self {
            StateProtectReply::None => e.put_u32(0),
            StateProtectReply::MachCred(ops) => {
                e.put_u32(1);
                ops.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            0 => StateProtectReply::None,
            1 => StateProtectReply::MachCred(StateProtectOps::decode(d)?),
            v => return Err(bad("state_protect4_r", v)),
        })
    }
}

xdr_struct! {
    pub struct ExchangeIdResOk {
        pub clientid: u64,
        pub sequenceid: u32,
        pub flags: u32,
        pub state_protect: StateProtectReply,
        pub server_owner: ServerOwner,
        pub server_scope: Opaque,
        /// eir_server_impl_id<1>.
        pub server_impl_id: Option<NfsImplId>,
    }
}

/// why_no_delegation4 with its union arms (open_none_delegation4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhyNoDelegation {
    NotWanted,
    Contention { server_will_push_deleg: bool },
    Resource { server_will_signal_avail: bool },
    NotSuppFtype,
    WriteDelegNotSuppFtype,
    NotSuppUpgrade,
    NotSuppDowngrade,
    Cancelled,
    IsDir,
}

impl Xdr for WhyNoDelegation {
    fn encode(&self, e: &mut Encoder) {
        match self {
            WhyNoDelegation::NotWanted => e.put_u32(0),
            WhyNoDelegation::Contention {
                server_will_push_deleg,
            } => {
                e.put_u32(1);
                e.put_bool(*server_will_push_deleg);
            }
            WhyNoDelegation::Resource {
                server_will_signal_avail,
            } => {
                e.put_u32(2);
                e.put_bool(*server_will_signal_avail);
            }
            WhyNoDelegation::NotSuppFtype => e.put_u32(3),
            WhyNoDelegation::WriteDelegNotSuppFtype => e.put_u32(4),
            WhyNoDelegation::NotSuppUpgrade => e.put_u32(5),
            WhyNoDelegation::NotSuppDowngrade => e.put_u32(6),
            WhyNoDelegation::Cancelled => e.put_u32(7),
            WhyNoDelegation::IsDir => e.put_u32(8),
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            0 => WhyNoDelegation::NotWanted,
            1 => WhyNoDelegation::Contention {
                server_will_push_deleg: d.bool()?,
            },
            2 => WhyNoDelegation::Resource {
                server_will_signal_avail: d.bool()?,
            },
            3 => WhyNoDelegation::NotSuppFtype,
            4 => WhyNoDelegation::WriteDelegNotSuppFtype,
            5 => WhyNoDelegation::NotSuppUpgrade,
            6 => WhyNoDelegation::NotSuppDowngrade,
            7 => WhyNoDelegation::Cancelled,
            8 => WhyNoDelegation::IsDir,
            v => return Err(bad("why_no_delegation4", v)),
        })
    }
}

/// open_delegation4 as this server answers: it never grants delegations, so only
/// OPEN_DELEGATE_NONE and OPEN_DELEGATE_NONE_EXT exist here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenDelegation {
    None,
    NoneExt(WhyNoDelegation),
}

impl Xdr for OpenDelegation {
    fn encode(&self, e: &mut Encoder) {
        match self {
            OpenDelegation::None => OpenDelegationType::None.encode(e),
            OpenDelegation::NoneExt(why) => {
                OpenDelegationType::NoneExt.encode(e);
                why.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match OpenDelegationType::decode(d)? {
            OpenDelegationType::None => OpenDelegation::None,
            OpenDelegationType::NoneExt => OpenDelegation::NoneExt(WhyNoDelegation::decode(d)?),
            other => return Err(bad("open_delegation4 (granted)", other as u32)),
        })
    }
}

xdr_struct! {
    pub struct OpenResOk {
        pub stateid: StateId,
        pub cinfo: ChangeInfo,
        pub rflags: u32,
        pub attrset: Bitmap,
        pub delegation: OpenDelegation,
    }
}

/// secinfo4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecInfo {
    /// A flavor without parameters (AUTH_NONE, AUTH_SYS).
    Flavor(u32),
    Gss {
        oid: Opaque,
        qop: u32,
        service: u32,
    },
}

impl Xdr for SecInfo {
    fn encode(&self, e: &mut Encoder) {
        match self {
            SecInfo::Flavor(f) => e.put_u32(*f),
            SecInfo::Gss { oid, qop, service } => {
                e.put_u32(RPCSEC_GSS);
                oid.encode(e);
                e.put_u32(*qop);
                e.put_u32(*service);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(match d.u32()? {
            RPCSEC_GSS => SecInfo::Gss {
                oid: Opaque::decode(d)?,
                qop: d.u32()?,
                service: d.u32()?,
            },
            f => SecInfo::Flavor(f),
        })
    }
}

/// One READDIR entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub cookie: u64,
    pub name: Component,
    pub attrs: Fattr,
}

impl DirEntry {
    /// Bytes this entry adds to a READDIR4resok, including its "value follows" word.
    pub fn xdr_len(&self) -> usize {
        4 + 8 + crate::xdr::opaque_xdr_len(self.name.as_str().len()) + self.attrs.xdr_len()
    }

    /// Bytes counted against READDIR's dircount: the cookie and the name (as Linux nfsd counts).
    pub fn dircount_len(&self) -> usize {
        8 + crate::xdr::opaque_xdr_len(self.name.as_str().len())
    }
}

/// READDIR4resok. Build it with [`crate::nfs::ReaddirBuilder`] to respect the client's budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaddirResOk {
    pub cookieverf: Verifier,
    pub entries: Vec<DirEntry>,
    pub eof: bool,
}

/// Smallest encoded entry: value-follows word, cookie, empty name, empty fattr.
const MIN_ENTRY_LEN: usize = 4 + 8 + 4 + 4 + 4;

impl Xdr for ReaddirResOk {
    fn encode(&self, e: &mut Encoder) {
        self.cookieverf.encode(e);
        for entry in &self.entries {
            e.put_bool(true);
            e.put_u64(entry.cookie);
            entry.name.encode(e);
            entry.attrs.encode(e);
        }
        e.put_bool(false);
        e.put_bool(self.eof);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let cookieverf = Verifier::decode(d)?;
        let mut entries = Vec::new();
        while d.bool()? {
            // Each entry consumes input, so the list cannot grow beyond the record.
            if d.remaining() < MIN_ENTRY_LEN - 4 {
                return Err(XdrError::Truncated {
                    offset: d.position(),
                    needed: MIN_ENTRY_LEN - 4,
                    remaining: d.remaining(),
                }
                .into());
            }
            entries.push(DirEntry {
                cookie: d.u64()?,
                name: Component::decode(d)?,
                attrs: Fattr::decode(d)?,
            });
        }
        Ok(Self {
            cookieverf,
            entries,
            eof: d.bool()?,
        })
    }
}

/// LOCK/LOCKT failure: DENIED carries the conflicting lock, anything else is status-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    Denied(LockDenied),
    Status(NfsStatus),
}

/// One operation result of a COMPOUND reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfsResOp {
    Access(Result<AccessResOk, NfsStatus>),
    Close(Result<StateId, NfsStatus>),
    Commit(Result<Verifier, NfsStatus>),
    Create(Result<CreateResOk, NfsStatus>),
    DelegReturn(NfsStatus),
    GetAttr(Result<Fattr, NfsStatus>),
    GetFh(Result<FileHandle, NfsStatus>),
    Link(Result<ChangeInfo, NfsStatus>),
    Lock(Result<StateId, LockError>),
    LockT(Result<(), LockError>),
    LockU(Result<StateId, NfsStatus>),
    Lookup(NfsStatus),
    LookupP(NfsStatus),
    NVerify(NfsStatus),
    Open(Result<OpenResOk, NfsStatus>),
    OpenDowngrade(Result<StateId, NfsStatus>),
    PutFh(NfsStatus),
    PutPubFh(NfsStatus),
    PutRootFh(NfsStatus),
    Read(Result<ReadResOk, NfsStatus>),
    Readdir(Result<ReaddirResOk, NfsStatus>),
    ReadLink(Result<LinkText, NfsStatus>),
    Remove(Result<ChangeInfo, NfsStatus>),
    Rename(Result<RenameResOk, NfsStatus>),
    RestoreFh(NfsStatus),
    SaveFh(NfsStatus),
    Secinfo(Result<Vec<SecInfo>, NfsStatus>),
    /// SETATTR4res always carries attrsset, even on error.
    SetAttr {
        status: NfsStatus,
        attrsset: Bitmap,
    },
    Verify(NfsStatus),
    Write(Result<WriteResOk, NfsStatus>),
    BindConnToSession(Result<BindConnToSessionResOk, NfsStatus>),
    ExchangeId(Result<ExchangeIdResOk, NfsStatus>),
    CreateSession(Result<CreateSessionResOk, NfsStatus>),
    DestroySession(NfsStatus),
    FreeStateId(NfsStatus),
    SecinfoNoName(Result<Vec<SecInfo>, NfsStatus>),
    Sequence(Result<SequenceResOk, NfsStatus>),
    TestStateId(Result<Vec<NfsStatus>, NfsStatus>),
    DestroyClientId(NfsStatus),
    ReclaimComplete(NfsStatus),
    /// A status-only failure of an operation with no richer error result: NOTSUPP, or BADXDR
    /// for undecodable arguments. For SETATTR it is encoded with an empty attrsset.
    Failed {
        opcode: Opcode,
        status: NfsStatus,
    },
    /// Result of an unknown opcode: OP_ILLEGAL / NFS4ERR_OP_ILLEGAL.
    Illegal,
}

fn err_code(s: NfsStatus) -> u32 {
    // An Err must never encode as NFS4_OK: the client would expect a result body.
    if s.is_ok() {
        NfsStatus::ServerFault.code()
    } else {
        s.code()
    }
}

/// The status a status-only failure result may carry. OK and the statuses whose result arm
/// carries data (LOCK/LOCKT DENIED, SETCLIENTID CLID_INUSE, LAYOUTGET LAYOUTTRYLATER) cannot be
/// encoded without a body, so they become SERVERFAULT.
fn failed_status(opcode: Opcode, status: NfsStatus) -> NfsStatus {
    let has_body = matches!(
        (opcode, status),
        (Opcode::Lock | Opcode::LockT, NfsStatus::Denied)
            | (Opcode::SetClientId, NfsStatus::ClidInUse)
            | (Opcode::LayoutGet, NfsStatus::LayoutTryLater)
    );
    if status.is_ok() || has_body {
        NfsStatus::ServerFault
    } else {
        status
    }
}

fn put_result<T: Xdr>(r: &Result<T, NfsStatus>, e: &mut Encoder) {
    match r {
        Ok(v) => {
            e.put_u32(0);
            v.encode(e);
        }
        Err(s) => e.put_u32(err_code(*s)),
    }
}

fn get_result<T: Xdr>(d: &mut Decoder<'_>) -> Result<Result<T, NfsStatus>, DecodeError> {
    let status = NfsStatus::decode(d)?;
    Ok(if status.is_ok() {
        Ok(T::decode(d)?)
    } else {
        Err(status)
    })
}

impl Xdr for () {
    fn encode(&self, _e: &mut Encoder) {}
    fn decode(_d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(())
    }
}

fn put_lock_result<T: Xdr>(r: &Result<T, LockError>, e: &mut Encoder) {
    match r {
        Ok(v) => {
            e.put_u32(0);
            v.encode(e);
        }
        Err(LockError::Denied(d)) => {
            NfsStatus::Denied.encode(e);
            d.encode(e);
        }
        Err(LockError::Status(s)) => {
            // DENIED without its body would be malformed; the variant carries it.
            let code = if *s == NfsStatus::Denied {
                NfsStatus::ServerFault.code()
            } else {
                err_code(*s)
            };
            e.put_u32(code);
        }
    }
}

fn get_lock_result<T: Xdr>(d: &mut Decoder<'_>) -> Result<Result<T, LockError>, DecodeError> {
    Ok(match NfsStatus::decode(d)? {
        NfsStatus::Ok => Ok(T::decode(d)?),
        NfsStatus::Denied => Err(LockError::Denied(LockDenied::decode(d)?)),
        s => Err(LockError::Status(s)),
    })
}

impl NfsResOp {
    /// A failure result for `opcode` with the right shape for that operation.
    pub fn error(opcode: Opcode, status: NfsStatus) -> NfsResOp {
        match opcode {
            Opcode::Illegal => NfsResOp::Illegal,
            Opcode::SetAttr => NfsResOp::SetAttr {
                status,
                attrsset: Bitmap::new(),
            },
            _ => NfsResOp::Failed { opcode, status },
        }
    }

    pub fn opcode(&self) -> Opcode {
        match self {
            NfsResOp::Access(_) => Opcode::Access,
            NfsResOp::Close(_) => Opcode::Close,
            NfsResOp::Commit(_) => Opcode::Commit,
            NfsResOp::Create(_) => Opcode::Create,
            NfsResOp::DelegReturn(_) => Opcode::DelegReturn,
            NfsResOp::GetAttr(_) => Opcode::GetAttr,
            NfsResOp::GetFh(_) => Opcode::GetFh,
            NfsResOp::Link(_) => Opcode::Link,
            NfsResOp::Lock(_) => Opcode::Lock,
            NfsResOp::LockT(_) => Opcode::LockT,
            NfsResOp::LockU(_) => Opcode::LockU,
            NfsResOp::Lookup(_) => Opcode::Lookup,
            NfsResOp::LookupP(_) => Opcode::LookupP,
            NfsResOp::NVerify(_) => Opcode::NVerify,
            NfsResOp::Open(_) => Opcode::Open,
            NfsResOp::OpenDowngrade(_) => Opcode::OpenDowngrade,
            NfsResOp::PutFh(_) => Opcode::PutFh,
            NfsResOp::PutPubFh(_) => Opcode::PutPubFh,
            NfsResOp::PutRootFh(_) => Opcode::PutRootFh,
            NfsResOp::Read(_) => Opcode::Read,
            NfsResOp::Readdir(_) => Opcode::Readdir,
            NfsResOp::ReadLink(_) => Opcode::ReadLink,
            NfsResOp::Remove(_) => Opcode::Remove,
            NfsResOp::Rename(_) => Opcode::Rename,
            NfsResOp::RestoreFh(_) => Opcode::RestoreFh,
            NfsResOp::SaveFh(_) => Opcode::SaveFh,
            NfsResOp::Secinfo(_) => Opcode::Secinfo,
            NfsResOp::SetAttr { .. } => Opcode::SetAttr,
            NfsResOp::Verify(_) => Opcode::Verify,
            NfsResOp::Write(_) => Opcode::Write,
            NfsResOp::BindConnToSession(_) => Opcode::BindConnToSession,
            NfsResOp::ExchangeId(_) => Opcode::ExchangeId,
            NfsResOp::CreateSession(_) => Opcode::CreateSession,
            NfsResOp::DestroySession(_) => Opcode::DestroySession,
            NfsResOp::FreeStateId(_) => Opcode::FreeStateId,
            NfsResOp::SecinfoNoName(_) => Opcode::SecinfoNoName,
            NfsResOp::Sequence(_) => Opcode::Sequence,
            NfsResOp::TestStateId(_) => Opcode::TestStateId,
            NfsResOp::DestroyClientId(_) => Opcode::DestroyClientId,
            NfsResOp::ReclaimComplete(_) => Opcode::ReclaimComplete,
            NfsResOp::Failed { opcode, .. } => *opcode,
            NfsResOp::Illegal => Opcode::Illegal,
        }
    }

    /// The operation's status (what COMPOUND4res.status reports for the last result).
    pub fn status(&self) -> NfsStatus {
        fn of<T>(r: &Result<T, NfsStatus>) -> NfsStatus {
            match r {
                Ok(_) => NfsStatus::Ok,
                Err(s) if s.is_ok() => NfsStatus::ServerFault,
                Err(s) => *s,
            }
        }
        fn of_lock<T>(r: &Result<T, LockError>) -> NfsStatus {
            match r {
                Ok(_) => NfsStatus::Ok,
                Err(LockError::Denied(_)) => NfsStatus::Denied,
                Err(LockError::Status(s)) if s.is_ok() || *s == NfsStatus::Denied => {
                    NfsStatus::ServerFault
                }
                Err(LockError::Status(s)) => *s,
            }
        }
        match self {
            NfsResOp::Access(r) => of(r),
            NfsResOp::Close(r) | NfsResOp::LockU(r) | NfsResOp::OpenDowngrade(r) => of(r),
            NfsResOp::Commit(r) => of(r),
            NfsResOp::Create(r) => of(r),
            NfsResOp::GetAttr(r) => of(r),
            NfsResOp::GetFh(r) => of(r),
            NfsResOp::Link(r) | NfsResOp::Remove(r) => of(r),
            NfsResOp::Lock(r) => of_lock(r),
            NfsResOp::LockT(r) => of_lock(r),
            NfsResOp::Open(r) => of(r),
            NfsResOp::Read(r) => of(r),
            NfsResOp::Readdir(r) => of(r),
            NfsResOp::ReadLink(r) => of(r),
            NfsResOp::Rename(r) => of(r),
            NfsResOp::Secinfo(r) | NfsResOp::SecinfoNoName(r) => of(r),
            NfsResOp::Write(r) => of(r),
            NfsResOp::BindConnToSession(r) => of(r),
            NfsResOp::ExchangeId(r) => of(r),
            NfsResOp::CreateSession(r) => of(r),
            NfsResOp::Sequence(r) => of(r),
            NfsResOp::TestStateId(r) => of(r),
            NfsResOp::DelegReturn(s)
            | NfsResOp::Lookup(s)
            | NfsResOp::LookupP(s)
            | NfsResOp::NVerify(s)
            | NfsResOp::PutFh(s)
            | NfsResOp::PutPubFh(s)
            | NfsResOp::PutRootFh(s)
            | NfsResOp::RestoreFh(s)
            | NfsResOp::SaveFh(s)
            | NfsResOp::Verify(s)
            | NfsResOp::DestroySession(s)
            | NfsResOp::FreeStateId(s)
            | NfsResOp::DestroyClientId(s)
            | NfsResOp::ReclaimComplete(s) => *s,
            NfsResOp::SetAttr { status, .. } => *status,
            NfsResOp::Failed { opcode, status } => failed_status(*opcode, *status),
            NfsResOp::Illegal => NfsStatus::OpIllegal,
        }
    }

    pub fn encode(&self, e: &mut Encoder) {
        self.opcode().encode(e);
        match self {
            NfsResOp::Access(r) => put_result(r, e),
            NfsResOp::Close(r) | NfsResOp::LockU(r) | NfsResOp::OpenDowngrade(r) => {
                put_result(r, e)
            }
            NfsResOp::Commit(r) => put_result(r, e),
            NfsResOp::Create(r) => put_result(r, e),
            NfsResOp::GetAttr(r) => put_result(r, e),
            NfsResOp::GetFh(r) => put_result(r, e),
            NfsResOp::Link(r) | NfsResOp::Remove(r) => put_result(r, e),
            NfsResOp::Lock(r) => put_lock_result(r, e),
            NfsResOp::LockT(r) => put_lock_result(r, e),
            NfsResOp::Open(r) => put_result(r, e),
            NfsResOp::Read(r) => put_result(r, e),
            NfsResOp::Readdir(r) => put_result(r, e),
            NfsResOp::ReadLink(r) => put_result(r, e),
            NfsResOp::Rename(r) => put_result(r, e),
            NfsResOp::Secinfo(r) | NfsResOp::SecinfoNoName(r) => put_result(r, e),
            NfsResOp::Write(r) => put_result(r, e),
            NfsResOp::BindConnToSession(r) => put_result(r, e),
            NfsResOp::ExchangeId(r) => put_result(r, e),
            NfsResOp::CreateSession(r) => put_result(r, e),
            NfsResOp::Sequence(r) => put_result(r, e),
            NfsResOp::TestStateId(r) => put_result(r, e),
            NfsResOp::SetAttr { status, attrsset } => {
                status.encode(e);
                attrsset.encode(e);
            }
            NfsResOp::Failed {
                opcode: Opcode::SetAttr,
                status,
            } => {
                e.put_u32(err_code(*status));
                Bitmap::new().encode(e);
            }
            other => other.status().encode(e),
        }
    }

    /// Decodes one result (client side and tests). Failure results of operations this crate
    /// does not model decode as [`NfsResOp::Failed`]; their success bodies are not decodable.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let opcode = Opcode::decode(d)?;
        let status = |d: &mut Decoder<'_>| NfsStatus::decode(d);
        Ok(match opcode {
            Opcode::Access => NfsResOp::Access(get_result(d)?),
            Opcode::Close => NfsResOp::Close(get_result(d)?),
            Opcode::Commit => NfsResOp::Commit(get_result(d)?),
            Opcode::Create => NfsResOp::Create(get_result(d)?),
            Opcode::DelegReturn => NfsResOp::DelegReturn(status(d)?),
            Opcode::GetAttr => NfsResOp::GetAttr(get_result(d)?),
            Opcode::GetFh => NfsResOp::GetFh(get_result(d)?),
            Opcode::Link => NfsResOp::Link(get_result(d)?),
            Opcode::Lock => NfsResOp::Lock(get_lock_result(d)?),
            Opcode::LockT => NfsResOp::LockT(get_lock_result(d)?),
            Opcode::LockU => NfsResOp::LockU(get_result(d)?),
            Opcode::Lookup => NfsResOp::Lookup(status(d)?),
            Opcode::LookupP => NfsResOp::LookupP(status(d)?),
            Opcode::NVerify => NfsResOp::NVerify(status(d)?),
            Opcode::Open => NfsResOp::Open(get_result(d)?),
            Opcode::OpenDowngrade => NfsResOp::OpenDowngrade(get_result(d)?),
            Opcode::PutFh => NfsResOp::PutFh(status(d)?),
            Opcode::PutPubFh => NfsResOp::PutPubFh(status(d)?),
            Opcode::PutRootFh => NfsResOp::PutRootFh(status(d)?),
            Opcode::Read => NfsResOp::Read(get_result(d)?),
            Opcode::Readdir => NfsResOp::Readdir(get_result(d)?),
            Opcode::ReadLink => NfsResOp::ReadLink(get_result(d)?),
            Opcode::Remove => NfsResOp::Remove(get_result(d)?),
            Opcode::Rename => NfsResOp::Rename(get_result(d)?),
            Opcode::RestoreFh => NfsResOp::RestoreFh(status(d)?),
            Opcode::SaveFh => NfsResOp::SaveFh(status(d)?),
            Opcode::Secinfo => NfsResOp::Secinfo(get_result(d)?),
            Opcode::SetAttr => NfsResOp::SetAttr {
                status: status(d)?,
                attrsset: Bitmap::decode(d)?,
            },
            Opcode::Verify => NfsResOp::Verify(status(d)?),
            Opcode::Write => NfsResOp::Write(get_result(d)?),
            Opcode::BindConnToSession => NfsResOp::BindConnToSession(get_result(d)?),
            Opcode::ExchangeId => NfsResOp::ExchangeId(get_result(d)?),
            Opcode::CreateSession => NfsResOp::CreateSession(get_result(d)?),
            Opcode::DestroySession => NfsResOp::DestroySession(status(d)?),
            Opcode::FreeStateId => NfsResOp::FreeStateId(status(d)?),
            Opcode::SecinfoNoName => NfsResOp::SecinfoNoName(get_result(d)?),
            Opcode::Sequence => NfsResOp::Sequence(get_result(d)?),
            Opcode::TestStateId => NfsResOp::TestStateId(get_result(d)?),
            Opcode::DestroyClientId => NfsResOp::DestroyClientId(status(d)?),
            Opcode::ReclaimComplete => NfsResOp::ReclaimComplete(status(d)?),
            Opcode::Illegal => {
                let s = status(d)?;
                if s != NfsStatus::OpIllegal {
                    return Err(bad("OP_ILLEGAL status", s.code()));
                }
                NfsResOp::Illegal
            }
            other => match status(d)? {
                NfsStatus::Ok => return Err(bad("unmodelled successful result", other as u32)),
                s => NfsResOp::Failed {
                    opcode: other,
                    status: s,
                },
            },
        })
    }
}
