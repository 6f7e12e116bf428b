//! File attributes: numbers (RFC 8881 §5.8, RFC 7862, RFC 8275, RFC 8276), the typed [`Attr`]
//! values this server can produce or accept, and `fattr4` encoding/decoding.
//!
//! An `fattr4` is a bitmap plus an opaque holding the values of the set bits in ascending
//! order. [`Fattr::encode_attrs`] takes values in any order, keeps those that were requested,
//! sorts them, and produces the mask of what was actually written — so `supported_attrs` and the
//! reply mask cannot drift from the values. [`Fattr::decode_attrs`] is the inverse; an attribute
//! it does not model fails with ATTRNOTSUPP because its length is unknown and the rest of the
//! opaque cannot be parsed. [`Fattr::settable`] applies SETATTR's rules on top.

use crate::nfs::NfsStatus;
use crate::nfs::types::{
    Bitmap, DecodeError, FileHandle, Fsid, MAX_OWNER_BYTES, NfsFileType, NfsTime, SpecData, Xdr,
    decode_array, encode_array,
};
use crate::xdr::{Decoder, Encoder, XdrError, opaque_xdr_len};

pub const FATTR4_SUPPORTED_ATTRS: u32 = 0;
pub const FATTR4_TYPE: u32 = 1;
pub const FATTR4_FH_EXPIRE_TYPE: u32 = 2;
pub const FATTR4_CHANGE: u32 = 3;
pub const FATTR4_SIZE: u32 = 4;
pub const FATTR4_LINK_SUPPORT: u32 = 5;
pub const FATTR4_SYMLINK_SUPPORT: u32 = 6;
pub const FATTR4_NAMED_ATTR: u32 = 7;
pub const FATTR4_FSID: u32 = 8;
pub const FATTR4_UNIQUE_HANDLES: u32 = 9;
pub const FATTR4_LEASE_TIME: u32 = 10;
pub const FATTR4_RDATTR_ERROR: u32 = 11;
pub const FATTR4_ACL: u32 = 12;
pub const FATTR4_ACLSUPPORT: u32 = 13;
pub const FATTR4_ARCHIVE: u32 = 14;
pub const FATTR4_CANSETTIME: u32 = 15;
pub const FATTR4_CASE_INSENSITIVE: u32 = 16;
pub const FATTR4_CASE_PRESERVING: u32 = 17;
pub const FATTR4_CHOWN_RESTRICTED: u32 = 18;
pub const FATTR4_FILEHANDLE: u32 = 19;
pub const FATTR4_FILEID: u32 = 20;
pub const FATTR4_FILES_AVAIL: u32 = 21;
pub const FATTR4_FILES_FREE: u32 = 22;
pub const FATTR4_FILES_TOTAL: u32 = 23;
pub const FATTR4_FS_LOCATIONS: u32 = 24;
pub const FATTR4_HIDDEN: u32 = 25;
pub const FATTR4_HOMOGENEOUS: u32 = 26;
pub const FATTR4_MAXFILESIZE: u32 = 27;
pub const FATTR4_MAXLINK: u32 = 28;
pub const FATTR4_MAXNAME: u32 = 29;
pub const FATTR4_MAXREAD: u32 = 30;
pub const FATTR4_MAXWRITE: u32 = 31;
pub const FATTR4_MIMETYPE: u32 = 32;
pub const FATTR4_MODE: u32 = 33;
pub const FATTR4_NO_TRUNC: u32 = 34;
pub const FATTR4_NUMLINKS: u32 = 35;
pub const FATTR4_OWNER: u32 = 36;
pub const FATTR4_OWNER_GROUP: u32 = 37;
pub const FATTR4_QUOTA_AVAIL_HARD: u32 = 38;
pub const FATTR4_QUOTA_AVAIL_SOFT: u32 = 39;
pub const FATTR4_QUOTA_USED: u32 = 40;
pub const FATTR4_RAWDEV: u32 = 41;
pub const FATTR4_SPACE_AVAIL: u32 = 42;
pub const FATTR4_SPACE_FREE: u32 = 43;
pub const FATTR4_SPACE_TOTAL: u32 = 44;
pub const FATTR4_SPACE_USED: u32 = 45;
pub const FATTR4_SYSTEM: u32 = 46;
pub const FATTR4_TIME_ACCESS: u32 = 47;
pub const FATTR4_TIME_ACCESS_SET: u32 = 48;
pub const FATTR4_TIME_BACKUP: u32 = 49;
pub const FATTR4_TIME_CREATE: u32 = 50;
pub const FATTR4_TIME_DELTA: u32 = 51;
pub const FATTR4_TIME_METADATA: u32 = 52;
pub const FATTR4_TIME_MODIFY: u32 = 53;
pub const FATTR4_TIME_MODIFY_SET: u32 = 54;
pub const FATTR4_MOUNTED_ON_FILEID: u32 = 55;
pub const FATTR4_DIR_NOTIF_DELAY: u32 = 56;
pub const FATTR4_DIRENT_NOTIF_DELAY: u32 = 57;
pub const FATTR4_DACL: u32 = 58;
pub const FATTR4_SACL: u32 = 59;
pub const FATTR4_CHANGE_POLICY: u32 = 60;
pub const FATTR4_FS_STATUS: u32 = 61;
pub const FATTR4_FS_LAYOUT_TYPES: u32 = 62;
pub const FATTR4_LAYOUT_HINT: u32 = 63;
pub const FATTR4_LAYOUT_TYPES: u32 = 64;
pub const FATTR4_LAYOUT_BLKSIZE: u32 = 65;
pub const FATTR4_LAYOUT_ALIGNMENT: u32 = 66;
pub const FATTR4_FS_LOCATIONS_INFO: u32 = 67;
pub const FATTR4_MDSTHRESHOLD: u32 = 68;
pub const FATTR4_RETENTION_GET: u32 = 69;
pub const FATTR4_RETENTION_SET: u32 = 70;
pub const FATTR4_RETENTEVT_GET: u32 = 71;
pub const FATTR4_RETENTEVT_SET: u32 = 72;
pub const FATTR4_RETENTION_HOLD: u32 = 73;
pub const FATTR4_MODE_SET_MASKED: u32 = 74;
pub const FATTR4_SUPPATTR_EXCLCREAT: u32 = 75;
pub const FATTR4_FS_CHARSET_CAP: u32 = 76;
pub const FATTR4_CLONE_BLKSIZE: u32 = 77;
pub const FATTR4_SPACE_FREED: u32 = 78;
pub const FATTR4_CHANGE_ATTR_TYPE: u32 = 79;
pub const FATTR4_SEC_LABEL: u32 = 80;
pub const FATTR4_MODE_UMASK: u32 = 81;
pub const FATTR4_XATTR_SUPPORT: u32 = 82;

/// fh_expire_type values.
pub const FH4_PERSISTENT: u32 = 0;
pub const FH4_NOEXPIRE_WITH_OPEN: u32 = 1;
pub const FH4_VOLATILE_ANY: u32 = 2;
pub const FH4_VOL_MIGRATION: u32 = 4;
pub const FH4_VOL_RENAME: u32 = 8;

/// layouttype4 entries a server may list in fs_layout_type; never more than the 5 defined.
const MAX_LAYOUT_TYPES: usize = 8;

/// settime4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetTime {
    /// SET_TO_SERVER_TIME4.
    ServerTime,
    /// SET_TO_CLIENT_TIME4.
    ClientTime(NfsTime),
}

impl Xdr for SetTime {
    fn encode(&self, e: &mut Encoder) {
        match self {
            SetTime::ServerTime => e.put_u32(0),
            SetTime::ClientTime(t) => {
                e.put_u32(1);
                t.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match d.u32()? {
            0 => Ok(SetTime::ServerTime),
            1 => Ok(SetTime::ClientTime(NfsTime::decode(d)?)),
            value => Err(XdrError::BadDiscriminant {
                what: "time_how4",
                value,
            }
            .into()),
        }
    }
}

/// One attribute value, tagged with its attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    SupportedAttrs(Bitmap),
    Type(NfsFileType),
    FhExpireType(u32),
    Change(u64),
    Size(u64),
    LinkSupport(bool),
    SymlinkSupport(bool),
    NamedAttr(bool),
    Fsid(Fsid),
    UniqueHandles(bool),
    LeaseTime(u32),
    RdattrError(NfsStatus),
    AclSupport(u32),
    CanSetTime(bool),
    CaseInsensitive(bool),
    CasePreserving(bool),
    ChownRestricted(bool),
    FileHandle(FileHandle),
    FileId(u64),
    FilesAvail(u64),
    FilesFree(u64),
    FilesTotal(u64),
    Homogeneous(bool),
    MaxFileSize(u64),
    MaxLink(u32),
    MaxName(u32),
    MaxRead(u64),
    MaxWrite(u64),
    Mode(u32),
    NoTrunc(bool),
    NumLinks(u32),
    /// utf8str_mixed; this server sends numeric ids ("0", "1001").
    Owner(String),
    OwnerGroup(String),
    RawDev(SpecData),
    SpaceAvail(u64),
    SpaceFree(u64),
    SpaceTotal(u64),
    SpaceUsed(u64),
    TimeAccess(NfsTime),
    TimeAccessSet(SetTime),
    TimeDelta(NfsTime),
    TimeMetadata(NfsTime),
    TimeModify(NfsTime),
    TimeModifySet(SetTime),
    MountedOnFileId(u64),
    /// fs_layout_type: layouttype4<>; empty means no pNFS.
    FsLayoutTypes(Vec<u32>),
    LayoutBlksize(u32),
    SuppattrExclcreat(Bitmap),
}

impl Attr {
    /// The attribute number.
    pub fn id(&self) -> u32 {
        match self {
            Attr::SupportedAttrs(_) => FATTR4_SUPPORTED_ATTRS,
            Attr::Type(_) => FATTR4_TYPE,
            Attr::FhExpireType(_) => FATTR4_FH_EXPIRE_TYPE,
            Attr::Change(_) => FATTR4_CHANGE,
            Attr::Size(_) => FATTR4_SIZE,
            Attr::LinkSupport(_) => FATTR4_LINK_SUPPORT,
            Attr::SymlinkSupport(_) => FATTR4_SYMLINK_SUPPORT,
            Attr::NamedAttr(_) => FATTR4_NAMED_ATTR,
            Attr::Fsid(_) => FATTR4_FSID,
            Attr::UniqueHandles(_) => FATTR4_UNIQUE_HANDLES,
            Attr::LeaseTime(_) => FATTR4_LEASE_TIME,
            Attr::RdattrError(_) => FATTR4_RDATTR_ERROR,
            Attr::AclSupport(_) => FATTR4_ACLSUPPORT,
            Attr::CanSetTime(_) => FATTR4_CANSETTIME,
            Attr::CaseInsensitive(_) => FATTR4_CASE_INSENSITIVE,
            Attr::CasePreserving(_) => FATTR4_CASE_PRESERVING,
            Attr::ChownRestricted(_) => FATTR4_CHOWN_RESTRICTED,
            Attr::FileHandle(_) => FATTR4_FILEHANDLE,
            Attr::FileId(_) => FATTR4_FILEID,
            Attr::FilesAvail(_) => FATTR4_FILES_AVAIL,
            Attr::FilesFree(_) => FATTR4_FILES_FREE,
            Attr::FilesTotal(_) => FATTR4_FILES_TOTAL,
            Attr::Homogeneous(_) => FATTR4_HOMOGENEOUS,
            Attr::MaxFileSize(_) => FATTR4_MAXFILESIZE,
            Attr::MaxLink(_) => FATTR4_MAXLINK,
            Attr::MaxName(_) => FATTR4_MAXNAME,
            Attr::MaxRead(_) => FATTR4_MAXREAD,
            Attr::MaxWrite(_) => FATTR4_MAXWRITE,
            Attr::Mode(_) => FATTR4_MODE,
            Attr::NoTrunc(_) => FATTR4_NO_TRUNC,
            Attr::NumLinks(_) => FATTR4_NUMLINKS,
            Attr::Owner(_) => FATTR4_OWNER,
            Attr::OwnerGroup(_) => FATTR4_OWNER_GROUP,
            Attr::RawDev(_) => FATTR4_RAWDEV,
            Attr::SpaceAvail(_) => FATTR4_SPACE_AVAIL,
            Attr::SpaceFree(_) => FATTR4_SPACE_FREE,
            Attr::SpaceTotal(_) => FATTR4_SPACE_TOTAL,
            Attr::SpaceUsed(_) => FATTR4_SPACE_USED,
            Attr::TimeAccess(_) => FATTR4_TIME_ACCESS,
            Attr::TimeAccessSet(_) => FATTR4_TIME_ACCESS_SET,
            Attr::TimeDelta(_) => FATTR4_TIME_DELTA,
            Attr::TimeMetadata(_) => FATTR4_TIME_METADATA,
            Attr::TimeModify(_) => FATTR4_TIME_MODIFY,
            Attr::TimeModifySet(_) => FATTR4_TIME_MODIFY_SET,
            Attr::MountedOnFileId(_) => FATTR4_MOUNTED_ON_FILEID,
            Attr::FsLayoutTypes(_) => FATTR4_FS_LAYOUT_TYPES,
            Attr::LayoutBlksize(_) => FATTR4_LAYOUT_BLKSIZE,
            Attr::SuppattrExclcreat(_) => FATTR4_SUPPATTR_EXCLCREAT,
        }
    }

    /// Writes the value (not the attribute number).
    pub fn encode_value(&self, e: &mut Encoder) {
        match self {
            Attr::SupportedAttrs(b) | Attr::SuppattrExclcreat(b) => b.encode(e),
            Attr::Type(t) => t.encode(e),
            Attr::FhExpireType(v)
            | Attr::LeaseTime(v)
            | Attr::AclSupport(v)
            | Attr::MaxLink(v)
            | Attr::MaxName(v)
            | Attr::Mode(v)
            | Attr::NumLinks(v)
            | Attr::LayoutBlksize(v) => e.put_u32(*v),
            Attr::Change(v)
            | Attr::Size(v)
            | Attr::FileId(v)
            | Attr::FilesAvail(v)
            | Attr::FilesFree(v)
            | Attr::FilesTotal(v)
            | Attr::MaxFileSize(v)
            | Attr::MaxRead(v)
            | Attr::MaxWrite(v)
            | Attr::SpaceAvail(v)
            | Attr::SpaceFree(v)
            | Attr::SpaceTotal(v)
            | Attr::SpaceUsed(v)
            | Attr::MountedOnFileId(v) => e.put_u64(*v),
            Attr::LinkSupport(v)
            | Attr::SymlinkSupport(v)
            | Attr::NamedAttr(v)
            | Attr::UniqueHandles(v)
            | Attr::CanSetTime(v)
            | Attr::CaseInsensitive(v)
            | Attr::CasePreserving(v)
            | Attr::ChownRestricted(v)
            | Attr::Homogeneous(v)
            | Attr::NoTrunc(v) => e.put_bool(*v),
            Attr::Fsid(f) => f.encode(e),
            Attr::RdattrError(s) => s.encode(e),
            Attr::FileHandle(fh) => fh.encode(e),
            Attr::Owner(s) | Attr::OwnerGroup(s) => e.put_str(s),
            Attr::RawDev(s) => s.encode(e),
            Attr::TimeAccess(t)
            | Attr::TimeDelta(t)
            | Attr::TimeMetadata(t)
            | Attr::TimeModify(t) => t.encode(e),
            Attr::TimeAccessSet(s) | Attr::TimeModifySet(s) => s.encode(e),
            Attr::FsLayoutTypes(v) => encode_array(v, e),
        }
    }

    /// Decodes the value of attribute `id`. `Ok(None)` means the attribute is not modelled.
    pub fn decode_value(id: u32, d: &mut Decoder<'_>) -> Result<Option<Attr>, DecodeError> {
        let u32_ = |d: &mut Decoder<'_>| -> Result<u32, DecodeError> { Ok(d.u32()?) };
        let u64_ = |d: &mut Decoder<'_>| -> Result<u64, DecodeError> { Ok(d.u64()?) };
        let bool_ = |d: &mut Decoder<'_>| -> Result<bool, DecodeError> { Ok(d.bool()?) };
        let owner = |d: &mut Decoder<'_>| -> Result<String, DecodeError> {
            Ok(d.utf8(MAX_OWNER_BYTES, "owner")?)
        };
        Ok(Some(match id {
            FATTR4_SUPPORTED_ATTRS => Attr::SupportedAttrs(Bitmap::decode(d)?),
            FATTR4_TYPE => Attr::Type(NfsFileType::decode(d)?),
            FATTR4_FH_EXPIRE_TYPE => Attr::FhExpireType(u32_(d)?),
            FATTR4_CHANGE => Attr::Change(u64_(d)?),
            FATTR4_SIZE => Attr::Size(u64_(d)?),
            FATTR4_LINK_SUPPORT => Attr::LinkSupport(bool_(d)?),
            FATTR4_SYMLINK_SUPPORT => Attr::SymlinkSupport(bool_(d)?),
            FATTR4_NAMED_ATTR => Attr::NamedAttr(bool_(d)?),
            FATTR4_FSID => Attr::Fsid(Fsid::decode(d)?),
            FATTR4_UNIQUE_HANDLES => Attr::UniqueHandles(bool_(d)?),
            FATTR4_LEASE_TIME => Attr::LeaseTime(u32_(d)?),
            FATTR4_RDATTR_ERROR => Attr::RdattrError(NfsStatus::decode(d)?),
            FATTR4_ACLSUPPORT => Attr::AclSupport(u32_(d)?),
            FATTR4_CANSETTIME => Attr::CanSetTime(bool_(d)?),
            FATTR4_CASE_INSENSITIVE => Attr::CaseInsensitive(bool_(d)?),
            FATTR4_CASE_PRESERVING => Attr::CasePreserving(bool_(d)?),
            FATTR4_CHOWN_RESTRICTED => Attr::ChownRestricted(bool_(d)?),
            FATTR4_FILEHANDLE => Attr::FileHandle(FileHandle::decode(d)?),
            FATTR4_FILEID => Attr::FileId(u64_(d)?),
            FATTR4_FILES_AVAIL => Attr::FilesAvail(u64_(d)?),
            FATTR4_FILES_FREE => Attr::FilesFree(u64_(d)?),
            FATTR4_FILES_TOTAL => Attr::FilesTotal(u64_(d)?),
            FATTR4_HOMOGENEOUS => Attr::Homogeneous(bool_(d)?),
            FATTR4_MAXFILESIZE => Attr::MaxFileSize(u64_(d)?),
            FATTR4_MAXLINK => Attr::MaxLink(u32_(d)?),
            FATTR4_MAXNAME => Attr::MaxName(u32_(d)?),
            FATTR4_MAXREAD => Attr::MaxRead(u64_(d)?),
            FATTR4_MAXWRITE => Attr::MaxWrite(u64_(d)?),
            FATTR4_MODE => Attr::Mode(u32_(d)?),
            FATTR4_NO_TRUNC => Attr::NoTrunc(bool_(d)?),
            FATTR4_NUMLINKS => Attr::NumLinks(u32_(d)?),
            FATTR4_OWNER => Attr::Owner(owner(d)?),
            FATTR4_OWNER_GROUP => Attr::OwnerGroup(owner(d)?),
            FATTR4_RAWDEV => Attr::RawDev(SpecData::decode(d)?),
            FATTR4_SPACE_AVAIL => Attr::SpaceAvail(u64_(d)?),
            FATTR4_SPACE_FREE => Attr::SpaceFree(u64_(d)?),
            FATTR4_SPACE_TOTAL => Attr::SpaceTotal(u64_(d)?),
            FATTR4_SPACE_USED => Attr::SpaceUsed(u64_(d)?),
            FATTR4_TIME_ACCESS => Attr::TimeAccess(NfsTime::decode(d)?),
            FATTR4_TIME_ACCESS_SET => Attr::TimeAccessSet(SetTime::decode(d)?),
            FATTR4_TIME_DELTA => Attr::TimeDelta(NfsTime::decode(d)?),
            FATTR4_TIME_METADATA => Attr::TimeMetadata(NfsTime::decode(d)?),
            FATTR4_TIME_MODIFY => Attr::TimeModify(NfsTime::decode(d)?),
            FATTR4_TIME_MODIFY_SET => Attr::TimeModifySet(SetTime::decode(d)?),
            FATTR4_MOUNTED_ON_FILEID => Attr::MountedOnFileId(u64_(d)?),
            FATTR4_FS_LAYOUT_TYPES => {
                Attr::FsLayoutTypes(decode_array(d, MAX_LAYOUT_TYPES, 4, "fs_layout_type")?)
            }
            FATTR4_LAYOUT_BLKSIZE => Attr::LayoutBlksize(u32_(d)?),
            FATTR4_SUPPATTR_EXCLCREAT => Attr::SuppattrExclcreat(Bitmap::decode(d)?),
            _ => return Ok(None),
        }))
    }

    /// Whether SETATTR may carry this attribute at all (RFC 8881 §5.6/5.7 "write" column).
    fn is_writable(id: u32) -> bool {
        matches!(
            id,
            FATTR4_SIZE
                | FATTR4_ACL
                | FATTR4_ARCHIVE
                | FATTR4_HIDDEN
                | FATTR4_MIMETYPE
                | FATTR4_MODE
                | FATTR4_OWNER
                | FATTR4_OWNER_GROUP
                | FATTR4_SYSTEM
                | FATTR4_TIME_ACCESS_SET
                | FATTR4_TIME_BACKUP
                | FATTR4_TIME_CREATE
                | FATTR4_TIME_MODIFY_SET
                | FATTR4_DACL
                | FATTR4_SACL
                | FATTR4_LAYOUT_HINT
                | FATTR4_RETENTION_SET
                | FATTR4_RETENTEVT_SET
                | FATTR4_RETENTION_HOLD
                | FATTR4_MODE_SET_MASKED
                | FATTR4_SEC_LABEL
                | FATTR4_MODE_UMASK
        )
    }
}

/// Why an fattr4 could not be turned into attribute values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("attribute {0} is not supported")]
    NotSupported(u32),
    #[error("attribute {0} cannot be set")]
    ReadOnly(u32),
    #[error("invalid attribute value: {0}")]
    Invalid(&'static str),
    #[error("malformed attribute values: {0}")]
    Decode(#[from] DecodeError),
}

impl AttrError {
    /// The NFS status an operation fails with for this error.
    pub fn status(&self) -> NfsStatus {
        match self {
            AttrError::NotSupported(_) => NfsStatus::AttrNotSupp,
            AttrError::ReadOnly(_) | AttrError::Invalid(_) => NfsStatus::Inval,
            AttrError::Decode(e) => e.status(),
        }
    }
}

/// fattr4: the attribute mask and the XDR-encoded values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fattr {
    pub mask: Bitmap,
    pub vals: Vec<u8>,
}

impl Xdr for Fattr {
    fn encode(&self, e: &mut Encoder) {
        self.mask.encode(e);
        e.put_opaque(&self.vals);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mask = Bitmap::decode(d)?;
        // attrlist4 has no declared bound; the record bounds it.
        let vals = d.opaque_vec(usize::MAX, "attrlist4")?;
        Ok(Self { mask, vals })
    }
}

impl Fattr {
    /// Builds an fattr4 from the values in `attrs` whose attribute is in `requested`. Values may
    /// come in any order; if one attribute appears twice the first value wins.
    pub fn encode_attrs(requested: &Bitmap, attrs: impl IntoIterator<Item = Attr>) -> Fattr {
        let mut enc = AttrEncoder::new(requested);
        for a in attrs {
            enc.push(a);
        }
        enc.finish()
    }

    /// Size of this fattr4 on the wire.
    pub fn xdr_len(&self) -> usize {
        4 + 4 * self.mask.words().len() + opaque_xdr_len(self.vals.len())
    }

    /// Decodes every value; fails on an attribute that is not modelled or on leftover bytes.
    pub fn decode_attrs(&self) -> Result<Vec<Attr>, AttrError> {
        let mut d = Decoder::new(&self.vals);
        let mut out = Vec::new();
        for id in self.mask.iter() {
            match Attr::decode_value(id, &mut d)? {
                Some(a) => out.push(a),
                None => return Err(AttrError::NotSupported(id)),
            }
        }
        d.finish().map_err(DecodeError::from)?;
        Ok(out)
    }

    /// Interprets this fattr4 as the attributes to set (SETATTR, CREATE, OPEN createattrs).
    /// Read-only attributes → INVAL; writable attributes this server does not implement (ACLs,
    /// archive, hidden, …) and unknown bits → ATTRNOTSUPP.
    pub fn settable(&self) -> Result<SetAttrs, AttrError> {
        // Reject by mask first: an unmodelled attribute would stop value decoding anyway, and
        // the status must not depend on where in the mask it sits.
        for id in self.mask.iter() {
            let supported = matches!(
                id,
                FATTR4_SIZE
                    | FATTR4_MODE
                    | FATTR4_OWNER
                    | FATTR4_OWNER_GROUP
                    | FATTR4_TIME_ACCESS_SET
                    | FATTR4_TIME_MODIFY_SET
            );
            if !supported {
                let known_read_only = !Attr::is_writable(id) && id <= FATTR4_XATTR_SUPPORT;
                return Err(if known_read_only {
                    AttrError::ReadOnly(id)
                } else {
                    AttrError::NotSupported(id)
                });
            }
        }
        let mut out = SetAttrs::default();
        for a in self.decode_attrs()? {
            match a {
                Attr::Size(v) => out.size = Some(v),
                // mode4 defines only the permission bits; like Linux nfsd/VFS, ignore the rest
                // (a client may echo file-type bits).
                Attr::Mode(v) => out.mode = Some(v & 0o7777),
                Attr::Owner(s) => out.owner = Some(s),
                Attr::OwnerGroup(s) => out.owner_group = Some(s),
                Attr::TimeAccessSet(t) => out.time_access = Some(check_set_time(t)?),
                Attr::TimeModifySet(t) => out.time_modify = Some(check_set_time(t)?),
                other => return Err(AttrError::NotSupported(other.id())),
            }
        }
        Ok(out)
    }
}

/// Collects attribute values for one fattr4 reply. Values that were not requested are dropped,
/// so a server can push everything it has; [`AttrEncoder::wants`] lets it skip computing
/// expensive values nobody asked for. [`AttrEncoder::finish`] writes them in ascending order
/// and reports exactly what it wrote in the mask.
#[derive(Debug, Clone)]
pub struct AttrEncoder<'a> {
    requested: &'a Bitmap,
    attrs: Vec<Attr>,
}

impl<'a> AttrEncoder<'a> {
    pub fn new(requested: &'a Bitmap) -> Self {
        Self {
            requested,
            attrs: Vec::new(),
        }
    }

    /// Whether the client asked for attribute `id`.
    pub fn wants(&self, id: u32) -> bool {
        self.requested.contains(id)
    }

    /// Adds a value; ignored if not requested or if this attribute already has a value.
    pub fn push(&mut self, attr: Attr) {
        let id = attr.id();
        if self.wants(id) && !self.attrs.iter().any(|a| a.id() == id) {
            self.attrs.push(attr);
        }
    }

    pub fn finish(mut self) -> Fattr {
        self.attrs.sort_by_key(Attr::id);
        let mut mask = Bitmap::new();
        let mut e = Encoder::new();
        for a in &self.attrs {
            mask.insert(a.id());
            a.encode_value(&mut e);
        }
        Fattr {
            mask,
            vals: e.into_vec(),
        }
    }
}

fn check_set_time(t: SetTime) -> Result<SetTime, AttrError> {
    match &t {
        SetTime::ClientTime(nt) if nt.nseconds >= 1_000_000_000 => {
            Err(AttrError::Invalid("nseconds ≥ 10^9"))
        }
        _ => Ok(t),
    }
}

/// The attributes a client may set through this server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetAttrs {
    pub size: Option<u64>,
    pub mode: Option<u32>,
    /// Owner and group exactly as sent; mapping names to ids is the server's business.
    pub owner: Option<String>,
    pub owner_group: Option<String>,
    pub time_access: Option<SetTime>,
    pub time_modify: Option<SetTime>,
}

impl SetAttrs {
    /// The attrsset bitmap for a reply that applied all of these.
    pub fn mask(&self) -> Bitmap {
        let mut b = Bitmap::new();
        let pairs = [
            (self.size.is_some(), FATTR4_SIZE),
            (self.mode.is_some(), FATTR4_MODE),
            (self.owner.is_some(), FATTR4_OWNER),
            (self.owner_group.is_some(), FATTR4_OWNER_GROUP),
            (self.time_access.is_some(), FATTR4_TIME_ACCESS_SET),
            (self.time_modify.is_some(), FATTR4_TIME_MODIFY_SET),
        ];
        for (set, id) in pairs {
            if set {
                b.insert(id);
            }
        }
        b
    }

    /// Encodes these as an fattr4 (client side and tests).
    pub fn to_fattr(&self) -> Fattr {
        let mut attrs = Vec::new();
        if let Some(v) = self.size {
            attrs.push(Attr::Size(v));
        }
        if let Some(v) = self.mode {
            attrs.push(Attr::Mode(v));
        }
        if let Some(v) = &self.owner {
            attrs.push(Attr::Owner(v.clone()));
        }
        if let Some(v) = &self.owner_group {
            attrs.push(Attr::OwnerGroup(v.clone()));
        }
        if let Some(v) = &self.time_access {
            attrs.push(Attr::TimeAccessSet(v.clone()));
        }
        if let Some(v) = &self.time_modify {
            attrs.push(Attr::TimeModifySet(v.clone()));
        }
        Fattr::encode_attrs(&self.mask(), attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_sorts_filters_and_masks() {
        let requested = Bitmap::from_bits(&[FATTR4_SIZE, FATTR4_TYPE, FATTR4_MODE, FATTR4_OWNER]);
        let f = Fattr::encode_attrs(
            &requested,
            vec![
                Attr::Mode(0o755),
                Attr::Change(9), // not requested
                Attr::Type(NfsFileType::Directory),
                Attr::Size(4096),
                Attr::Size(1), // duplicate: ignored
            ],
        );
        assert_eq!(f.mask, Bitmap::from_bits(&[1, 4, 33]));
        let mut expect = Vec::new();
        expect.extend_from_slice(&2u32.to_be_bytes());
        expect.extend_from_slice(&4096u64.to_be_bytes());
        expect.extend_from_slice(&0o755u32.to_be_bytes());
        assert_eq!(f.vals, expect);
        assert_eq!(
            f.decode_attrs().unwrap(),
            vec![
                Attr::Type(NfsFileType::Directory),
                Attr::Size(4096),
                Attr::Mode(0o755)
            ]
        );
    }

    #[test]
    fn attr_encoder_reports_what_it_wrote() {
        let requested = Bitmap::from_bits(&[FATTR4_SIZE, FATTR4_RDATTR_ERROR, FATTR4_FILEID]);
        let mut enc = AttrEncoder::new(&requested);
        assert!(enc.wants(FATTR4_SIZE) && !enc.wants(FATTR4_MODE));
        enc.push(Attr::FileId(7));
        enc.push(Attr::Mode(0o600));
        enc.push(Attr::Size(1));
        enc.push(Attr::FileId(8));
        let f = enc.finish();
        // rdattr_error was requested but not supplied, so it is not in the reply mask.
        assert_eq!(f.mask, Bitmap::from_bits(&[FATTR4_SIZE, FATTR4_FILEID]));
        assert_eq!(
            f.decode_attrs().unwrap(),
            vec![Attr::Size(1), Attr::FileId(7)]
        );
    }

    #[test]
    fn settable_rules() {
        let s = SetAttrs {
            size: Some(0),
            mode: Some(0o644),
            owner: Some("1001".into()),
            owner_group: Some("100".into()),
            time_access: Some(SetTime::ServerTime),
            time_modify: Some(SetTime::ClientTime(NfsTime {
                seconds: -1,
                nseconds: 5,
            })),
        };
        assert_eq!(s.to_fattr().settable().unwrap(), s);

        let ro = Fattr::encode_attrs(&Bitmap::from_bits(&[FATTR4_CHANGE]), [Attr::Change(1)]);
        assert_eq!(ro.settable().unwrap_err().status(), NfsStatus::Inval);

        let acl = Fattr {
            mask: Bitmap::from_bits(&[FATTR4_ACL]),
            vals: vec![0, 0, 0, 0],
        };
        assert_eq!(acl.settable().unwrap_err().status(), NfsStatus::AttrNotSupp);
        let unknown = Fattr {
            mask: Bitmap::from_bits(&[200]),
            vals: vec![],
        };
        assert_eq!(
            unknown.settable().unwrap_err().status(),
            NfsStatus::AttrNotSupp
        );

        let bad_time = SetAttrs {
            time_modify: Some(SetTime::ClientTime(NfsTime {
                seconds: 0,
                nseconds: 1_000_000_000,
            })),
            ..SetAttrs::default()
        };
        assert_eq!(
            bad_time.to_fattr().settable().unwrap_err().status(),
            NfsStatus::Inval
        );

        let mut trailing = SetAttrs {
            mode: Some(1),
            ..SetAttrs::default()
        }
        .to_fattr();
        trailing.vals.extend_from_slice(&[0; 4]);
        assert_eq!(trailing.settable().unwrap_err().status(), NfsStatus::BadXdr);
        let mut short = SetAttrs {
            size: Some(1),
            ..SetAttrs::default()
        }
        .to_fattr();
        short.vals.truncate(4);
        assert_eq!(short.settable().unwrap_err().status(), NfsStatus::BadXdr);
    }
}
