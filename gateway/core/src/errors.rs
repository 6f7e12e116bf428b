//! From the errors of the metadata cluster and of S3 to the NFS statuses a client sees.
//!
//! The rule for failures that are not the client's fault: if waiting can fix it (no meta
//! leader yet, S3 throttling or a transient 5xx), the client gets NFS4ERR_DELAY and retries the
//! request itself, as a hard mount does; if it cannot (access denied, a bug), NFS4ERR_IO or
//! NFS4ERR_SERVERFAULT, and the cause goes to the log.

use bucketfs_meta_client::ClientError;
use bucketfs_meta_state::NsError;
use bucketfs_nfs_wire::nfs::NfsStatus;
use bucketfs_object_store::ObjectStoreError;

/// The NFS status of a namespace refusal.
pub fn ns_status(e: &NsError) -> NfsStatus {
    match e {
        NsError::NoSuchFs(_) | NsError::Stale => NfsStatus::Stale,
        NsError::FsExists(_) | NsError::Exists => NfsStatus::Exist,
        NsError::NotFound => NfsStatus::NoEnt,
        NsError::NotDir => NfsStatus::NotDir,
        NsError::IsDir => NfsStatus::IsDir,
        NsError::NotEmpty => NfsStatus::NotEmpty,
        NsError::InvalidName(_) => NfsStatus::BadName,
        NsError::NameTooLong => NfsStatus::NameTooLong,
        NsError::Invalid(_) | NsError::NotSymlink => NfsStatus::Inval,
        NsError::CrossFs => NfsStatus::XDev,
        NsError::TooManyLinks => NfsStatus::MLink,
        NsError::GuardMismatch => NfsStatus::NotSame,
        NsError::NoSuchClient(_) => NfsStatus::StaleClientId,
        NsError::ShareDenied => NfsStatus::ShareDenied,
        NsError::LocksHeld => NfsStatus::LocksHeld,
        NsError::LockDenied { .. } => NfsStatus::Denied,
        NsError::OpenMode => NfsStatus::OpenMode,
        NsError::BadStateId(_) => NfsStatus::BadStateId,
        NsError::OldStateId(_) => NfsStatus::OldStateId,
        // Another writer changed the inode under a guarded commit; the caller retries, and
        // if it gives up the client may retry too.
        NsError::Changed { .. } => NfsStatus::Delay,
        // A request older than this gateway's own window: a bug, not the client's doing.
        NsError::StaleRequest { .. } => NfsStatus::ServerFault,
    }
}

/// The NFS status of a failed metadata call.
pub fn meta_status(e: &ClientError) -> NfsStatus {
    match e {
        ClientError::Ns(ns) => ns_status(ns),
        ClientError::Unavailable { .. } | ClientError::Membership { .. } => {
            tracing::warn!(error = %e, "metadata cluster unavailable; asking the client to retry");
            NfsStatus::Delay
        }
        ClientError::Invalid { .. } | ClientError::Protocol { .. } | ClientError::Config(_) => {
            tracing::error!(error = %e, "metadata call failed");
            NfsStatus::ServerFault
        }
    }
}

/// The NFS status of a failed S3 call.
pub fn s3_status(e: &ObjectStoreError) -> NfsStatus {
    if e.is_retryable() {
        tracing::warn!(error = %e, "S3 call failed; asking the client to retry");
        return NfsStatus::Delay;
    }
    tracing::error!(error = %e, "S3 call failed");
    NfsStatus::Io
}
