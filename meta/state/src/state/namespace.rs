//! Commands on single inodes and single names: SETATTR, CREATE, LINK, REMOVE and the
//! commit of a file's bytes to S3. RENAME, which touches two names, is in `rename`.
//!
//! Special files (FIFOs, sockets, devices) are non-directories like regular files for
//! CREATE, LINK and REMOVE, but hold no bytes: their size stays 0 and they never get an
//! object (SETATTR of a size and CommitObject are [`NsError::Invalid`]).
//!
//! Checks run in a fixed order, so a request that breaks several rules always gets the
//! same error on every replica: the name, then the file system, then the handles, then
//! what the name holds.
//!
//! LINK to a directory is refused with [`NsError::IsDir`]: NFSv4 LINK answers
//! `NFS4ERR_ISDIR` there (POSIX `link(2)` says `EPERM`; the gateway maps the NFS error).

use crate::command::{CreateMode, NewInode, RemoveKind, Reply, new_inode_type};
use crate::error::NsError;
use crate::keys;
use crate::kv::{KvRead, Table, Txn};
use crate::name;
use crate::types::{
    FileType, FsId, ImportState, Inode, InodeId, ObjectLink, SetAttrs, SetTime, SyncState,
    Timestamp,
};

use super::rows::{self, FIRST_INODE, LINK_MAX, Res, Stamp};

/// Longest symlink target accepted (Linux `PATH_MAX`).
const SYMLINK_MAX_BYTES: usize = 4096;

fn changed(before: u64, after: u64, inode: Option<Inode>) -> Reply {
    Reply::Changed {
        parent_before: before,
        parent_after: after,
        other_before: before,
        other_after: after,
        inode,
    }
}

/// A file whose exported contents or attributes changed needs a new export, unless one is
/// already pending (keep the older `since_index`: it is how long S3 has been behind).
fn mark_dirty(inode: &mut Inode, index: u64) {
    if inode.kind == FileType::File && inode.sync == SyncState::Clean {
        inode.sync = SyncState::Dirty { since_index: index };
    }
}

pub(super) fn set_attr<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    fs: FsId,
    ino: InodeId,
    attrs: &SetAttrs,
    guard_ctime: Option<Timestamp>,
) -> Res<Reply> {
    let mut inode = rows::handle(txn, fs, ino)?;
    if guard_ctime.is_some_and(|g| g != inode.ctime) {
        return Err(NsError::GuardMismatch.into());
    }
    if attrs.size.is_some() {
        match inode.kind {
            FileType::File => {}
            FileType::Dir => return Err(NsError::IsDir.into()),
            FileType::Symlink => {
                return Err(NsError::Invalid("cannot set the size of a symlink".into()).into());
            }
            FileType::Fifo | FileType::Socket | FileType::CharDev | FileType::BlockDev => {
                return Err(
                    NsError::Invalid("cannot set the size of a special file".into()).into(),
                );
            }
        }
    }
    let time = |t: SetTime| match t {
        SetTime::ServerTime => stamp.now,
        SetTime::At(t) => t,
    };
    // Attributes that are exported to S3 with the object (size, mode, owner, mtime).
    let before = (inode.size, inode.mode, inode.uid, inode.gid, inode.mtime);
    if let Some(mode) = attrs.mode {
        inode.mode = mode & 0o7777;
    }
    if let Some(uid) = attrs.uid {
        inode.uid = uid;
    }
    if let Some(gid) = attrs.gid {
        inode.gid = gid;
    }
    if let Some(size) = attrs.size
        && size != inode.size
    {
        inode.size = size;
        // truncate(2): a size change updates mtime, unless the request sets it itself.
        inode.mtime = stamp.now;
    }
    if let Some(t) = attrs.atime {
        inode.atime = time(t);
    }
    if let Some(t) = attrs.mtime {
        inode.mtime = time(t);
    }
    if before != (inode.size, inode.mode, inode.uid, inode.gid, inode.mtime) {
        mark_dirty(&mut inode, stamp.index);
    }
    stamp.touch(&mut inode);
    rows::put_inode(txn, fs, &inode);
    Ok(Reply::Inode(inode))
}

pub(super) struct CreateArgs<'a> {
    pub fs: FsId,
    pub parent: InodeId,
    pub name: &'a str,
    pub kind: &'a NewInode,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub how: &'a CreateMode,
}

pub(super) fn create<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    args: CreateArgs<'_>,
) -> Res<Reply> {
    let CreateArgs {
        fs,
        parent,
        name,
        kind,
        mode,
        uid,
        gid,
        how,
    } = args;
    name::validate(name)?;
    let mut dir = rows::dir_handle(txn, fs, parent)?;
    if let NewInode::Symlink { target } = kind {
        if target.is_empty() {
            return Err(NsError::Invalid("empty symlink target".into()).into());
        }
        if target.len() > SYMLINK_MAX_BYTES || target.contains('\0') {
            return Err(NsError::Invalid("symlink target too long or contains NUL".into()).into());
        }
    }
    if let NewInode::Special { kind, .. } = kind
        && !kind.is_special()
    {
        return Err(NsError::Invalid(format!("{kind:?} is not a special file kind")).into());
    }
    let new_type = new_inode_type(kind);
    if let Some(entry) = rows::lookup_entry(txn, fs, parent, name)? {
        let existing = rows::entry_inode(txn, fs, &entry)?;
        let reuse = match how {
            CreateMode::Unchecked => new_type == FileType::File && existing.kind == FileType::File,
            CreateMode::Guarded => false,
            CreateMode::Exclusive { verifier } => {
                existing.kind == new_type
                    && rows::get::<u64, _>(
                        txn,
                        Table::Meta,
                        &keys::create_verifier(fs, existing.id),
                    )? == Some(*verifier)
            }
        };
        if !reuse {
            return Err(NsError::Exists.into());
        }
        return Ok(changed(dir.change, dir.change, Some(existing)));
    }
    if new_type == FileType::Dir && dir.nlink >= LINK_MAX {
        return Err(NsError::TooManyLinks.into());
    }

    let id = InodeId(rows::take_counter(txn, keys::next_inode(fs), FIRST_INODE)?);
    let (size, symlink_target) = match kind {
        NewInode::Symlink { target } => (target.len() as u64, Some(target.clone())),
        NewInode::File | NewInode::Dir | NewInode::Special { .. } => (0, None),
    };
    // Only devices have a device number; mknod(2) ignores it for FIFOs and sockets.
    let rdev = match kind {
        NewInode::Special { major, minor, .. } if new_type.is_device() => (*major, *minor),
        _ => (0, 0),
    };
    let inode = Inode {
        id,
        generation: stamp.index,
        kind: new_type,
        mode: mode & 0o7777,
        uid,
        gid,
        size,
        nlink: if new_type == FileType::Dir { 2 } else { 1 },
        atime: stamp.now,
        mtime: stamp.now,
        ctime: stamp.now,
        change: stamp.index,
        parent: (new_type == FileType::Dir).then_some(parent),
        symlink_target,
        rdev,
        object: None,
        import: ImportState::Complete,
        sync: SyncState::Clean,
    };
    rows::put_inode(txn, fs, &inode);
    if let CreateMode::Exclusive { verifier } = how {
        rows::put(txn, Table::Meta, keys::create_verifier(fs, id), verifier);
    }
    rows::link_entry(txn, fs, parent, name, id, stamp.index)?;
    let before = dir.change;
    if new_type == FileType::Dir {
        dir.nlink += 1;
    }
    stamp.touch_contents(&mut dir);
    rows::put_inode(txn, fs, &dir);
    Ok(changed(before, stamp.index, Some(inode)))
}

pub(super) fn link<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    fs: FsId,
    ino: InodeId,
    new_parent: InodeId,
    new_name: &str,
) -> Res<Reply> {
    name::validate(new_name)?;
    let mut target = rows::handle(txn, fs, ino)?;
    let mut dir = rows::dir_handle(txn, fs, new_parent)?;
    if target.kind == FileType::Dir {
        return Err(NsError::IsDir.into());
    }
    if rows::lookup_entry(txn, fs, new_parent, new_name)?.is_some() {
        return Err(NsError::Exists.into());
    }
    if target.nlink >= LINK_MAX {
        return Err(NsError::TooManyLinks.into());
    }
    rows::link_entry(txn, fs, new_parent, new_name, ino, stamp.index)?;
    target.nlink += 1;
    stamp.touch(&mut target);
    rows::put_inode(txn, fs, &target);
    let before = dir.change;
    stamp.touch_contents(&mut dir);
    rows::put_inode(txn, fs, &dir);
    Ok(changed(before, stamp.index, Some(target)))
}

pub(super) fn remove<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    fs: FsId,
    parent: InodeId,
    name: &str,
    kind: &RemoveKind,
) -> Res<Reply> {
    name::validate(name)?;
    let mut dir = rows::dir_handle(txn, fs, parent)?;
    let entry = rows::lookup_entry(txn, fs, parent, name)?.ok_or(NsError::NotFound)?;
    let target = rows::entry_inode(txn, fs, &entry)?;
    let is_dir = target.kind == FileType::Dir;
    match (kind, is_dir) {
        (RemoveKind::NotDir, true) => return Err(NsError::IsDir.into()),
        (RemoveKind::Dir, false) => return Err(NsError::NotDir.into()),
        _ => {}
    }
    if is_dir && !rows::dir_is_empty(txn, fs, target.id)? {
        return Err(NsError::NotEmpty.into());
    }
    rows::unlink_entry(txn, fs, parent, name, &entry);
    let target = rows::drop_link(txn, stamp, fs, target)?;
    let before = dir.change;
    if is_dir {
        dir.nlink = dir.nlink.saturating_sub(1);
    }
    stamp.touch_contents(&mut dir);
    rows::put_inode(txn, fs, &dir);
    Ok(changed(before, stamp.index, Some(target)))
}

pub(super) struct CommitArgs<'a> {
    pub fs: FsId,
    pub ino: InodeId,
    pub size: u64,
    pub mtime: Timestamp,
    pub object: &'a ObjectLink,
    pub expect_change: Option<u64>,
    pub data_changed: bool,
}

/// Checks: the handle, then the kind, then the change guard. The guard comes last so that
/// a caller is only told to retry (`Changed`) when a retry could succeed.
pub(super) fn commit_object<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    args: CommitArgs<'_>,
) -> Res<Reply> {
    let mut inode = rows::handle(txn, args.fs, args.ino)?;
    match inode.kind {
        FileType::File => {}
        FileType::Dir => return Err(NsError::IsDir.into()),
        FileType::Symlink => {
            return Err(NsError::Invalid("a symlink has no object".into()).into());
        }
        FileType::Fifo | FileType::Socket | FileType::CharDev | FileType::BlockDev => {
            return Err(NsError::Invalid("a special file has no object".into()).into());
        }
    }
    if let Some(expected) = args.expect_change
        && expected != inode.change
    {
        return Err(NsError::Changed {
            current: inode.change,
        }
        .into());
    }
    if !args.data_changed && args.size != inode.size {
        return Err(NsError::Invalid(
            "an object version with the same bytes cannot change the size".into(),
        )
        .into());
    }
    inode.size = args.size;
    inode.mtime = args.mtime;
    inode.object = Some(args.object.clone());
    inode.sync = SyncState::Clean;
    if args.data_changed {
        stamp.touch(&mut inode);
    }
    rows::put_inode(txn, args.fs, &inode);
    Ok(Reply::Inode(inode))
}

#[cfg(test)]
mod tests {
    //! Link-count limits, which the public API cannot reach without 65000 commands: the
    //! tests raise a link count by writing the inode row directly.

    use super::*;
    use crate::command::{Command, Proposal};
    use crate::kv::MemKv;
    use crate::types::ClientId;

    fn step(kv: &mut MemKv, index: u64, command: Command) -> crate::command::ApplyResult {
        let proposal = Proposal {
            client: ClientId(1),
            seq: index,
            ack_below: 0,
            now: Timestamp::new(index as i64, 0),
            command,
        };
        let mut txn = Txn::new(&*kv);
        let result = crate::state::apply(&mut txn, index, &proposal).expect("MemKv cannot fail");
        let writes = txn.into_writes();
        kv.apply(writes);
        result
    }

    fn create_cmd(parent: u64, name: &str, kind: NewInode) -> Command {
        Command::Create {
            fs: FsId(1),
            parent: InodeId(parent),
            name: name.into(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            how: CreateMode::Guarded,
        }
    }

    fn set_nlink(kv: &mut MemKv, ino: u64, nlink: u32) {
        let mut inode = rows::load_inode(kv, FsId(1), InodeId(ino))
            .unwrap()
            .unwrap();
        inode.nlink = nlink;
        let mut txn = Txn::new(&*kv);
        rows::put_inode(&mut txn, FsId(1), &inode);
        let writes = txn.into_writes();
        kv.apply(writes);
    }

    #[test]
    fn link_counts_stop_at_link_max() {
        let mut kv = MemKv::default();
        let mkfs = Command::CreateFs {
            name: "fs".into(),
            bucket: "b".into(),
            prefix: String::new(),
        };
        assert!(step(&mut kv, 1, mkfs).is_ok());
        assert!(step(&mut kv, 2, create_cmd(1, "f", NewInode::File)).is_ok()); // ino 2
        assert!(step(&mut kv, 3, create_cmd(1, "full", NewInode::Dir)).is_ok()); // ino 3
        assert!(step(&mut kv, 4, create_cmd(1, "d", NewInode::Dir)).is_ok()); // ino 4
        assert!(step(&mut kv, 5, create_cmd(3, "empty", NewInode::Dir)).is_ok()); // ino 5
        assert!(step(&mut kv, 6, create_cmd(1, "e", NewInode::Dir)).is_ok()); // ino 6

        set_nlink(&mut kv, 2, LINK_MAX);
        let link = Command::Link {
            fs: FsId(1),
            ino: InodeId(2),
            new_parent: InodeId(1),
            new_name: "g".into(),
        };
        assert_eq!(step(&mut kv, 7, link), Err(NsError::TooManyLinks));

        set_nlink(&mut kv, 3, LINK_MAX);
        assert_eq!(
            step(&mut kv, 8, create_cmd(3, "sub", NewInode::Dir)),
            Err(NsError::TooManyLinks)
        );
        // Files do not count against a directory's links.
        assert!(step(&mut kv, 9, create_cmd(3, "file", NewInode::File)).is_ok());
        let rename = |src: &str, dst: &str| Command::Rename {
            src_fs: FsId(1),
            src_parent: InodeId(1),
            src_name: src.into(),
            dst_fs: FsId(1),
            dst_parent: InodeId(3),
            dst_name: dst.into(),
        };
        assert_eq!(
            step(&mut kv, 10, rename("d", "d")),
            Err(NsError::TooManyLinks)
        );
        // Replacing an empty directory does not add a link, so it is allowed.
        assert!(step(&mut kv, 11, rename("e", "empty")).is_ok());
        let full = rows::load_inode(&kv, FsId(1), InodeId(3)).unwrap().unwrap();
        assert_eq!(full.nlink, LINK_MAX);
    }
}
