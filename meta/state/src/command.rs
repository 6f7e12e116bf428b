//! What can be proposed to the log ([`Proposal`] carrying a [`Command`]) and what can be
//! read from the state ([`Query`]).

use serde::{Deserialize, Serialize};

use crate::error::NsError;
use crate::nfs_state::{
    ClientOwner, ClientRecord, ExchangePrevious, LeaseConfig, LockKind, LockState, OpenState,
};
use crate::types::{
    ClientId, FileType, FsId, FsInfo, Inode, InodeId, ObjectLink, ReadDirPage, SetAttrs, Timestamp,
};

/// One log entry's payload: a command plus what makes it deterministic and exactly-once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Who sent it and its sequence number; a proposal with a `(client, seq)` that was
    /// already applied returns the first reply and changes nothing.
    pub client: ClientId,
    pub seq: u64,
    /// The client has received replies for every sequence number below this one, so their
    /// saved replies can be forgotten. A later proposal with a smaller `seq` is refused
    /// with [`NsError::StaleRequest`] rather than applied a second time.
    pub ack_below: u64,
    /// Wall-clock time stamped by the node that proposed the entry; the state machine
    /// never reads a clock.
    pub now: Timestamp,
    pub command: Command,
}

/// How CREATE treats an existing name (NFS `createmode4`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    /// Reuse an existing regular file (after an optional truncation by a later SETATTR).
    Unchecked,
    /// Fail with [`NsError::Exists`] if the name exists.
    Guarded,
    /// Fail with [`NsError::Exists`] unless the name holds a file created with the same
    /// verifier (a retried exclusive create then succeeds, as `EXCLUSIVE4_1` requires).
    Exclusive { verifier: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NewInode {
    File,
    Dir,
    Symlink {
        target: String,
    },
    // Appended: commands are stored in the log by variant position.
    /// A FIFO, socket or device node (NFS CREATE of `NF4FIFO`, `NF4SOCK`, `NF4CHR`,
    /// `NF4BLK`). `kind` must be one of those four ([`FileType::is_special`]), anything
    /// else is [`NsError::Invalid`]. `major`/`minor` are kept for devices only and, as
    /// `mknod(2)` does, ignored for FIFOs and sockets.
    Special {
        kind: FileType,
        major: u32,
        minor: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoveKind {
    /// Whatever the name holds (NFS REMOVE); a directory must be empty.
    Any,
    /// Only a non-directory (`unlink(2)`).
    NotDir,
    /// Only an empty directory (`rmdir(2)`).
    Dir,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a file system with an empty root directory (mode 0755, owner 0:0).
    CreateFs {
        name: String,
        bucket: String,
        prefix: String,
    },
    SetAttr {
        fs: FsId,
        ino: InodeId,
        attrs: SetAttrs,
        /// Apply only if the inode's ctime still equals this (NFS `sattrguard4`).
        guard_ctime: Option<Timestamp>,
    },
    Create {
        fs: FsId,
        parent: InodeId,
        name: String,
        kind: NewInode,
        mode: u32,
        uid: u32,
        gid: u32,
        how: CreateMode,
    },
    /// A hard link to an existing non-directory.
    Link {
        fs: FsId,
        ino: InodeId,
        new_parent: InodeId,
        new_name: String,
    },
    Remove {
        fs: FsId,
        parent: InodeId,
        name: String,
        kind: RemoveKind,
    },
    /// RENAME; replies [`Reply::Renamed`].
    Rename {
        src_fs: FsId,
        src_parent: InodeId,
        src_name: String,
        dst_fs: FsId,
        dst_parent: InodeId,
        dst_name: String,
    },
    /// Record that a file's bytes are durable in S3 (S3 first, meta second): sets size,
    /// mtime and the object link, marks the file clean, and bumps the change counter.
    CommitObject {
        fs: FsId,
        ino: InodeId,
        size: u64,
        mtime: Timestamp,
        object: ObjectLink,
        /// Apply only if the inode's `change` still equals this, else refuse with
        /// [`NsError::Changed`]. A gateway that rewrote a whole object from the contents it
        /// read at change `c` sends `Some(c)`, so a concurrent change through another
        /// gateway is not silently overwritten.
        expect_change: Option<u64>,
        /// The bytes changed (a flush, a truncation). `false` for a new version with the same
        /// bytes (new POSIX metadata in S3, a move to another key): then `size` must be the
        /// current one and neither `change` nor `ctime` moves, because to a file system user
        /// nothing changed.
        data_changed: bool,
    },
    /// EXCHANGE_ID: create or confirm an NFSv4 client record. Replies
    /// [`Reply::Exchanged`].
    ExchangeClient {
        owner: ClientOwner,
        lease: LeaseConfig,
    },
    /// Lease renewals from a gateway, batched: one entry renews many clients.
    RenewLeases { clients: Vec<u64> },
    /// Proposed by the leader's lease sweeper: drop client records (and their opens and
    /// locks) whose lease ran out before `now` minus the configured clock-skew margin.
    ExpireLeases,
    /// DESTROY_CLIENTID.
    DestroyClient { client: u64 },
    /// A proposal that changes nothing; used to commit an entry of the current term and to
    /// measure the write path.
    Noop,
    // New variants go last: postcard encodes the variant's position, and entries already in
    // logs and snapshots must keep decoding to the same command.
    /// OPEN of an existing regular file by an open-owner: takes or upgrades a share
    /// reservation (see `state::open_lock`). Creating the file is a separate `Create`.
    Open {
        fs: FsId,
        ino: InodeId,
        client: u64,
        owner: Vec<u8>,
        access: u32,
        deny: u32,
    },
    /// OPEN_DOWNGRADE: the new bits must be a subset of the open's current ones. `seqid` is
    /// the stateid's seqid as sent (0: whatever is current, as NFSv4.1 allows).
    OpenDowngrade {
        client: u64,
        state_id: u64,
        seqid: u32,
        access: u32,
        deny: u32,
    },
    /// CLOSE; refused with [`NsError::LocksHeld`] while the open's lock-owners hold ranges.
    Close { client: u64, state_id: u64 },
    /// LOCK: takes, upgrades or downgrades a byte range for a lock-owner.
    /// `length == u64::MAX` means to end of file.
    Lock {
        client: u64,
        locker: Locker,
        kind: LockKind,
        offset: u64,
        length: u64,
    },
    /// LOCKU: releases a byte range (splitting held ranges as needed). Releasing bytes that
    /// are not locked is not an error.
    Unlock {
        client: u64,
        lock_state_id: u64,
        offset: u64,
        length: u64,
    },
    /// FREE_STATEID of a lock stateid that holds no ranges. Opens are freed by `Close`.
    FreeStateId { client: u64, state_id: u64 },
}

impl Command {
    /// A short stable name of the command's kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CreateFs { .. } => "create_fs",
            Command::SetAttr { .. } => "set_attr",
            Command::Create { .. } => "create",
            Command::Link { .. } => "link",
            Command::Remove { .. } => "remove",
            Command::Rename { .. } => "rename",
            Command::CommitObject { .. } => "commit_object",
            Command::ExchangeClient { .. } => "exchange_client",
            Command::RenewLeases { .. } => "renew_leases",
            Command::ExpireLeases => "expire_leases",
            Command::DestroyClient { .. } => "destroy_client",
            Command::Noop => "noop",
            Command::Open { .. } => "open",
            Command::OpenDowngrade { .. } => "open_downgrade",
            Command::Close { .. } => "close",
            Command::Lock { .. } => "lock",
            Command::Unlock { .. } => "unlock",
            Command::FreeStateId { .. } => "free_state_id",
        }
    }
}

/// Who asks for a byte-range lock (NFS `locker4`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Locker {
    /// `open_to_lock_owner4`: the lock-owner's first LOCK on this file, through one of the
    /// client's opens. If the lock-owner already has a stateid for the file, it is reused.
    New {
        open_state_id: u64,
        lock_owner: Vec<u8>,
    },
    /// `exist_lock_owner4`: a lock stateid returned by an earlier LOCK.
    Existing { lock_state_id: u64 },
}

/// The reply to an applied [`Command`].
#[expect(
    clippy::large_enum_variant,
    reason = "`Renamed` holds two inodes; a reply is built once per applied entry and moved \
              into its stored result, which is not worth a `Box` in the shape callers match on"
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Fs(FsInfo),
    Inode(Inode),
    /// CREATE/LINK/REMOVE: the parent's change counter before and after (NFS
    /// `change_info4`, atomic because one log entry did it) and the inode concerned.
    Changed {
        parent_before: u64,
        parent_after: u64,
        /// Equal to the parent's (RENAME, which has two parents, replies `Renamed`).
        other_before: u64,
        other_after: u64,
        inode: Option<Inode>,
    },
    /// No longer produced (EXCHANGE_ID replies `Exchanged`); kept so that the variants
    /// after it keep their positions.
    Client(ClientRecord),
    Renewed {
        renewed: u32,
        unknown: Vec<u64>,
    },
    Expired {
        clients: Vec<u64>,
    },
    Done,
    // Appended: stored replies (exactly-once rows) must keep decoding.
    Open(OpenState),
    Lock(LockState),
    /// EXCHANGE_ID: the record as it is now, and what was there before.
    Exchanged {
        record: ClientRecord,
        previous: ExchangePrevious,
    },
    /// RENAME: both parents' change counters before and after (`change_info4` of source
    /// and target; equal pairs when the parents are one directory), the moved inode as it
    /// is now, and the inode that lost the target name, after losing that link (`nlink ==
    /// 0` means it was deleted; the gateway can drop its object then). A rename that
    /// changes nothing (same name, or two names of one inode) has `before == after` and
    /// `replaced == None`.
    Renamed {
        src_before: u64,
        src_after: u64,
        dst_before: u64,
        dst_after: u64,
        moved: Inode,
        replaced: Option<Inode>,
    },
}

/// Reads. Served by the leader after a read-index round (linearizable) unless the caller
/// asks for a possibly-stale local read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    GetFs {
        name: String,
    },
    ListFs,
    Lookup {
        fs: FsId,
        parent: InodeId,
        name: String,
    },
    /// `..` of a directory (NFS LOOKUPP).
    LookupParent {
        fs: FsId,
        dir: InodeId,
    },
    GetAttr {
        fs: FsId,
        ino: InodeId,
    },
    ReadLink {
        fs: FsId,
        ino: InodeId,
    },
    /// Entries whose cookie is greater than `after_cookie` (0 starts at the beginning),
    /// at most `limit` of them.
    ReadDir {
        fs: FsId,
        dir: InodeId,
        after_cookie: u64,
        limit: u32,
    },
    GetClient {
        client: u64,
    },
    /// LOCKT: whether `lock_owner` of `client` could lock the range. A conflict comes back
    /// as [`NsError::LockDenied`], no conflict as [`QueryReply::LockFree`].
    LockTest {
        fs: FsId,
        ino: InodeId,
        client: u64,
        lock_owner: Vec<u8>,
        kind: LockKind,
        offset: u64,
        length: u64,
    },
    /// TEST_STATEID: for each id, whether it names an open or lock of `client`.
    TestStateIds {
        client: u64,
        state_ids: Vec<u64>,
    },
    // Appended, as for the other enums.
    /// The inode's primary path below the file system root, for deriving its S3 key:
    /// components joined by `/`, no leading slash (`"a/b/c"`; the root itself is `""`).
    /// The primary link of an inode is its oldest surviving link (smallest age, the log
    /// index that created the link; ties in key order), so adding a hard link never changes
    /// it; removing or renaming that link, or renaming a directory above it, does. Answered
    /// with [`QueryReply::Path`]: `None` for an inode with no link (no live inode is one),
    /// [`NsError::Stale`] for an unknown inode.
    Path {
        fs: FsId,
        ino: InodeId,
    },
    /// Every link (parent directory, name) of the inode, oldest first; the root has none.
    /// Answered with [`QueryReply::Links`].
    Links {
        fs: FsId,
        ino: InodeId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryReply {
    Fs(FsInfo),
    FsList(Vec<FsInfo>),
    Inode(Inode),
    Target(String),
    Page(ReadDirPage),
    Client(ClientRecord),
    LockFree,
    /// One entry per asked id, in order.
    StateIds(Vec<bool>),
    Path(Option<String>),
    Links(Vec<(InodeId, String)>),
}

/// What a proposal produced, as stored for exactly-once replies.
pub type ApplyResult = Result<Reply, NsError>;

/// The kind to expect for a freshly created inode. For `Special` this is the `kind` as
/// given; CREATE refuses it unless it is a special kind.
pub fn new_inode_type(kind: &NewInode) -> FileType {
    match kind {
        NewInode::File => FileType::File,
        NewInode::Dir => FileType::Dir,
        NewInode::Symlink { .. } => FileType::Symlink,
        NewInode::Special { kind, .. } => *kind,
    }
}
