//! Typed errors of the client, and the names and descriptions of NFS statuses.

use std::time::Duration;

use bucketfs_nfs_wire::nfs::ops::LockDenied;
use bucketfs_nfs_wire::nfs::{NfsStatus, Opcode};
use thiserror::Error;

/// What can go wrong with a call.
#[derive(Debug, Error)]
pub enum Error {
    /// An operation of the COMPOUND failed with this status.
    #[error("{op:?}: {} ({})", status_description(*status), status_name(*status))]
    Nfs { op: Opcode, status: NfsStatus },
    /// LOCK or LOCKT was denied; `conflict` is the lock in the way.
    #[error("{op:?}: lock denied by the lock at {}+{} ({})", conflict.offset, conflict.length, status_name(NfsStatus::Denied))]
    LockDenied { op: Opcode, conflict: LockDenied },
    /// The COMPOUND failed before any operation ran (no results: MINOR_VERS_MISMATCH and the
    /// like).
    #[error("COMPOUND: {} ({})", status_description(*status), status_name(*status))]
    Compound { status: NfsStatus },
    /// The server refused the RPC itself (RPC_MISMATCH, AUTH_ERROR, PROG_UNAVAIL, ...).
    #[error("RPC call rejected: {0}")]
    Rpc(String),
    /// The reply does not parse or does not answer what was asked. The connection stays up
    /// (the record framing is intact); the call is not retried.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection broke while the call was outstanding.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// A wait ran out.
    #[error("{what}: no answer within {after:?}")]
    Timeout { what: &'static str, after: Duration },
    /// Recovery (reconnect, new session) kept failing.
    #[error("giving up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<Error> },
    /// COMMIT kept answering a verifier different from the WRITEs' (the server restarted
    /// every time the data was re-sent).
    #[error("write verifier changed on every one of {attempts} attempts")]
    VerifierUnstable { attempts: u32 },
    /// The caller passed something that cannot be sent (a name too long, an empty path, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// [`crate::Client::close`] was called.
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// The NFS status, for errors that carry one.
    pub fn status(&self) -> Option<NfsStatus> {
        match self {
            Error::Nfs { status, .. } | Error::Compound { status } => Some(*status),
            Error::LockDenied { .. } => Some(NfsStatus::Denied),
            Error::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether this is an NFS failure with `status`.
    pub fn is(&self, status: NfsStatus) -> bool {
        self.status() == Some(status)
    }

    /// Errors after which a new connection and session may help.
    pub(crate) fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLost(_) | Error::Timeout { .. } | Error::Connect { .. }
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A strerror-like description of a status, lower case ("no such file or directory").
pub fn status_description(status: NfsStatus) -> &'static str {
    use NfsStatus as S;
    match status {
        S::Ok => "success",
        S::Perm => "operation not permitted",
        S::NoEnt => "no such file or directory",
        S::Io => "input/output error",
        S::NxIo => "no such device or address",
        S::Access => "permission denied",
        S::Exist => "file exists",
        S::XDev => "invalid cross-device link",
        S::NotDir => "not a directory",
        S::IsDir => "is a directory",
        S::Inval => "invalid argument",
        S::FBig => "file too large",
        S::NoSpc => "no space left on device",
        S::RoFs => "read-only file system",
        S::MLink => "too many links",
        S::NameTooLong => "file name too long",
        S::NotEmpty => "directory not empty",
        S::DQuot => "disk quota exceeded",
        S::Stale => "stale file handle",
        S::NotSupp => "operation not supported",
        S::Denied | S::Locked => "resource temporarily unavailable (lock held)",
        S::Delay => "server busy, try again",
        S::Grace => "server in grace period, try again",
        S::ShareDenied => "file is opened with a conflicting share reservation",
        S::BadStateId | S::StaleStateId | S::OldStateId | S::Expired | S::AdminRevoked => {
            "open or lock state is no longer valid"
        }
        S::BadSession | S::DeadSession => "session lost",
        S::StaleClientId => "client id no longer known to the server",
        S::Symlink => "too many levels of symbolic links",
        S::WrongType => "wrong file type",
        S::BadType => "file type not supported",
        S::BadHandle | S::FhExpired => "bad file handle",
        S::NoFileHandle => "no current file handle",
        S::AttrNotSupp => "attribute not supported",
        S::ServerFault => "server fault",
        S::BadXdr | S::BadChar | S::BadName => "invalid request encoding",
        S::TooSmall => "buffer too small",
        S::OpenMode => "file not opened for this access",
        S::FileOpen => "file is open",
        S::BadOwner => "owner or group not recognised",
        S::NotSame => "attributes not the same",
        S::Same => "attributes the same",
        S::Resource => "server out of resources",
        _ => "NFS error",
    }
}

/// The RFC 8881 name of a status ("NFS4ERR_NOENT", "NFS4_OK").
pub fn status_name(status: NfsStatus) -> &'static str {
    use NfsStatus as S;
    match status {
        S::Ok => "NFS4_OK",
        S::Perm => "NFS4ERR_PERM",
        S::NoEnt => "NFS4ERR_NOENT",
        S::Io => "NFS4ERR_IO",
        S::NxIo => "NFS4ERR_NXIO",
        S::Access => "NFS4ERR_ACCESS",
        S::Exist => "NFS4ERR_EXIST",
        S::XDev => "NFS4ERR_XDEV",
        S::NotDir => "NFS4ERR_NOTDIR",
        S::IsDir => "NFS4ERR_ISDIR",
        S::Inval => "NFS4ERR_INVAL",
        S::FBig => "NFS4ERR_FBIG",
        S::NoSpc => "NFS4ERR_NOSPC",
        S::RoFs => "NFS4ERR_ROFS",
        S::MLink => "NFS4ERR_MLINK",
        S::NameTooLong => "NFS4ERR_NAMETOOLONG",
        S::NotEmpty => "NFS4ERR_NOTEMPTY",
        S::DQuot => "NFS4ERR_DQUOT",
        S::Stale => "NFS4ERR_STALE",
        S::BadHandle => "NFS4ERR_BADHANDLE",
        S::BadCookie => "NFS4ERR_BAD_COOKIE",
        S::NotSupp => "NFS4ERR_NOTSUPP",
        S::TooSmall => "NFS4ERR_TOOSMALL",
        S::ServerFault => "NFS4ERR_SERVERFAULT",
        S::BadType => "NFS4ERR_BADTYPE",
        S::Delay => "NFS4ERR_DELAY",
        S::Same => "NFS4ERR_SAME",
        S::Denied => "NFS4ERR_DENIED",
        S::Expired => "NFS4ERR_EXPIRED",
        S::Locked => "NFS4ERR_LOCKED",
        S::Grace => "NFS4ERR_GRACE",
        S::FhExpired => "NFS4ERR_FHEXPIRED",
        S::ShareDenied => "NFS4ERR_SHARE_DENIED",
        S::WrongSec => "NFS4ERR_WRONGSEC",
        S::ClidInUse => "NFS4ERR_CLID_INUSE",
        S::Resource => "NFS4ERR_RESOURCE",
        S::Moved => "NFS4ERR_MOVED",
        S::NoFileHandle => "NFS4ERR_NOFILEHANDLE",
        S::MinorVersMismatch => "NFS4ERR_MINOR_VERS_MISMATCH",
        S::StaleClientId => "NFS4ERR_STALE_CLIENTID",
        S::StaleStateId => "NFS4ERR_STALE_STATEID",
        S::OldStateId => "NFS4ERR_OLD_STATEID",
        S::BadStateId => "NFS4ERR_BAD_STATEID",
        S::BadSeqId => "NFS4ERR_BAD_SEQID",
        S::NotSame => "NFS4ERR_NOT_SAME",
        S::LockRange => "NFS4ERR_LOCK_RANGE",
        S::Symlink => "NFS4ERR_SYMLINK",
        S::RestoreFh => "NFS4ERR_RESTOREFH",
        S::LeaseMoved => "NFS4ERR_LEASE_MOVED",
        S::AttrNotSupp => "NFS4ERR_ATTRNOTSUPP",
        S::NoGrace => "NFS4ERR_NO_GRACE",
        S::ReclaimBad => "NFS4ERR_RECLAIM_BAD",
        S::ReclaimConflict => "NFS4ERR_RECLAIM_CONFLICT",
        S::BadXdr => "NFS4ERR_BADXDR",
        S::LocksHeld => "NFS4ERR_LOCKS_HELD",
        S::OpenMode => "NFS4ERR_OPENMODE",
        S::BadOwner => "NFS4ERR_BADOWNER",
        S::BadChar => "NFS4ERR_BADCHAR",
        S::BadName => "NFS4ERR_BADNAME",
        S::BadRange => "NFS4ERR_BAD_RANGE",
        S::LockNotSupp => "NFS4ERR_LOCK_NOTSUPP",
        S::OpIllegal => "NFS4ERR_OP_ILLEGAL",
        S::Deadlock => "NFS4ERR_DEADLOCK",
        S::FileOpen => "NFS4ERR_FILE_OPEN",
        S::AdminRevoked => "NFS4ERR_ADMIN_REVOKED",
        S::CbPathDown => "NFS4ERR_CB_PATH_DOWN",
        S::BadIoMode => "NFS4ERR_BADIOMODE",
        S::BadLayout => "NFS4ERR_BADLAYOUT",
        S::BadSessionDigest => "NFS4ERR_BAD_SESSION_DIGEST",
        S::BadSession => "NFS4ERR_BADSESSION",
        S::BadSlot => "NFS4ERR_BADSLOT",
        S::CompleteAlready => "NFS4ERR_COMPLETE_ALREADY",
        S::ConnNotBoundToSession => "NFS4ERR_CONN_NOT_BOUND_TO_SESSION",
        S::DelegAlreadyWanted => "NFS4ERR_DELEG_ALREADY_WANTED",
        S::BackChanBusy => "NFS4ERR_BACK_CHAN_BUSY",
        S::LayoutTryLater => "NFS4ERR_LAYOUTTRYLATER",
        S::LayoutUnavailable => "NFS4ERR_LAYOUTUNAVAILABLE",
        S::NoMatchingLayout => "NFS4ERR_NOMATCHING_LAYOUT",
        S::RecallConflict => "NFS4ERR_RECALLCONFLICT",
        S::UnknownLayoutType => "NFS4ERR_UNKNOWN_LAYOUTTYPE",
        S::SeqMisordered => "NFS4ERR_SEQ_MISORDERED",
        S::SequencePos => "NFS4ERR_SEQUENCE_POS",
        S::ReqTooBig => "NFS4ERR_REQ_TOO_BIG",
        S::RepTooBig => "NFS4ERR_REP_TOO_BIG",
        S::RepTooBigToCache => "NFS4ERR_REP_TOO_BIG_TO_CACHE",
        S::RetryUncachedRep => "NFS4ERR_RETRY_UNCACHED_REP",
        S::UnsafeCompound => "NFS4ERR_UNSAFE_COMPOUND",
        S::TooManyOps => "NFS4ERR_TOO_MANY_OPS",
        S::OpNotInSession => "NFS4ERR_OP_NOT_IN_SESSION",
        S::HashAlgUnsupp => "NFS4ERR_HASH_ALG_UNSUPP",
        S::ClientIdBusy => "NFS4ERR_CLIENTID_BUSY",
        S::PnfsIoHole => "NFS4ERR_PNFS_IO_HOLE",
        S::SeqFalseRetry => "NFS4ERR_SEQ_FALSE_RETRY",
        S::BadHighSlot => "NFS4ERR_BAD_HIGH_SLOT",
        S::DeadSession => "NFS4ERR_DEADSESSION",
        S::EncrAlgUnsupp => "NFS4ERR_ENCR_ALG_UNSUPP",
        S::PnfsNoLayout => "NFS4ERR_PNFS_NO_LAYOUT",
        S::NotOnlyOp => "NFS4ERR_NOT_ONLY_OP",
        S::WrongCred => "NFS4ERR_WRONG_CRED",
        S::WrongType => "NFS4ERR_WRONG_TYPE",
        S::DirDelegUnavail => "NFS4ERR_DIRDELEG_UNAVAIL",
        S::RejectDeleg => "NFS4ERR_REJECT_DELEG",
        S::ReturnConflict => "NFS4ERR_RETURNCONFLICT",
        S::DelegRevoked => "NFS4ERR_DELEG_REVOKED",
        S::PartnerNotSupp => "NFS4ERR_PARTNER_NOTSUPP",
        S::PartnerNoAuth => "NFS4ERR_PARTNER_NO_AUTH",
        S::UnionNotSupp => "NFS4ERR_UNION_NOTSUPP",
        S::OffloadDenied => "NFS4ERR_OFFLOAD_DENIED",
        S::WrongLfs => "NFS4ERR_WRONG_LFS",
        S::BadLabel => "NFS4ERR_BADLABEL",
        S::OffloadNoReqs => "NFS4ERR_OFFLOAD_NO_REQS",
        S::NoXattr => "NFS4ERR_NOXATTR",
        S::Xattr2Big => "NFS4ERR_XATTR2BIG",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for s in NfsStatus::ALL {
            let name = status_name(*s);
            assert!(name.starts_with("NFS4"), "{name}");
            assert!(seen.insert(name), "duplicate {name}");
        }
    }

    #[test]
    fn display_names_op_and_status() {
        let e = Error::Nfs {
            op: Opcode::Lookup,
            status: NfsStatus::NoEnt,
        };
        assert_eq!(
            e.to_string(),
            "Lookup: no such file or directory (NFS4ERR_NOENT)"
        );
        assert!(e.is(NfsStatus::NoEnt));
    }
}
