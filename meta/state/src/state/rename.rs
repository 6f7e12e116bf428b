//! RENAME with the POSIX `rename(2)` rules, in one log entry.
//!
//! Checks, in order (the first that applies decides the reply):
//!
//! 1. both names valid; same file system (`CrossFs`); the file system exists;
//! 2. both parents are live directories (`Stale`, `NotDir`);
//! 3. the source name exists (`NotFound`);
//! 4. same parent and name, or the target is another name of the source inode: success
//!    that changes nothing (POSIX: "shall return successfully and perform no other action");
//! 5. a directory may not move below itself: walking `parent` pointers from the target
//!    parent up to the root must not meet the source (`Invalid`, POSIX `EINVAL`);
//! 6. an existing target must be replaceable: a directory only by a directory and only if
//!    empty (`NotDir` / `NotEmpty`), a non-directory only by a non-directory (`IsDir`);
//! 7. a directory moving to a new parent must fit under `LINK_MAX` there (`TooManyLinks`).
//!
//! Effects: the replaced target loses a link (and is deleted at zero); the source entry is
//! removed and re-added under the new name with a fresh cookie of the target directory, so
//! READDIR cookies handed out before stay valid; a moved directory's `parent` pointer and
//! both parents' link counts follow; the moved inode gets a new ctime, both parents a new
//! mtime and ctime, and every touched inode `change = index`. The moved link keeps its age
//! in the reverse index (`keys::link_of`), so renaming an inode's primary link keeps it
//! primary and its path follows the new name; a replaced target's link is dropped.
//!
//! The reply is [`Reply::Renamed`]: both parents' counters, the moved inode, and the
//! replaced target after it lost the name (`nlink == 0`: deleted).

use crate::command::Reply;
use crate::error::{MetaError, NsError};
use crate::kv::{KvRead, Table, Txn};
use crate::name;
use crate::types::{FileType, FsId, InodeId};

use super::rows::{self, LINK_MAX, Res, Stamp};

pub(super) struct RenameArgs<'a> {
    pub src_fs: FsId,
    pub src_parent: InodeId,
    pub src_name: &'a str,
    pub dst_fs: FsId,
    pub dst_parent: InodeId,
    pub dst_name: &'a str,
}

pub(super) fn rename<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    args: RenameArgs<'_>,
) -> Res<Reply> {
    let RenameArgs {
        src_fs,
        src_parent,
        src_name,
        dst_fs,
        dst_parent,
        dst_name,
    } = args;
    name::validate(src_name)?;
    name::validate(dst_name)?;
    if src_fs != dst_fs {
        return Err(NsError::CrossFs.into());
    }
    let fs = src_fs;
    let src_dir = rows::dir_handle(txn, fs, src_parent)?;
    let dst_dir = rows::dir_handle(txn, fs, dst_parent)?;
    let src_entry = rows::lookup_entry(txn, fs, src_parent, src_name)?.ok_or(NsError::NotFound)?;
    let source = rows::entry_inode(txn, fs, &src_entry)?;
    let dst_entry = rows::lookup_entry(txn, fs, dst_parent, dst_name)?;

    if (src_parent == dst_parent && src_name == dst_name)
        || dst_entry.is_some_and(|e| e.ino == src_entry.ino)
    {
        return Ok(Reply::Renamed {
            src_before: src_dir.change,
            src_after: src_dir.change,
            dst_before: dst_dir.change,
            dst_after: dst_dir.change,
            moved: source,
            replaced: None,
        });
    }

    let moving_dir = source.kind == FileType::Dir;
    if moving_dir && is_self_or_below(txn, fs, dst_parent, source.id)? {
        return Err(NsError::Invalid("cannot move a directory below itself".into()).into());
    }
    let replaced = match dst_entry {
        Some(entry) => {
            let target = rows::entry_inode(txn, fs, &entry)?;
            match (moving_dir, target.kind == FileType::Dir) {
                (true, false) => return Err(NsError::NotDir.into()),
                (false, true) => return Err(NsError::IsDir.into()),
                (true, true) if !rows::dir_is_empty(txn, fs, target.id)? => {
                    return Err(NsError::NotEmpty.into());
                }
                _ => {}
            }
            Some((entry, target))
        }
        None => None,
    };
    let replaces_dir = replaced
        .as_ref()
        .is_some_and(|(_, t)| t.kind == FileType::Dir);
    if moving_dir && src_parent != dst_parent && !replaces_dir && dst_dir.nlink >= LINK_MAX {
        return Err(NsError::TooManyLinks.into());
    }

    // Read before anything is written: the moved link keeps its age.
    let age = rows::link_age(txn, fs, source.id, src_parent, src_name)?;

    // Validation is over; from here on every step only writes. Each parent is re-read
    // before it is changed, so the steps compose when both parents are the same inode.
    let replaced = match replaced {
        Some((entry, target)) => {
            rows::unlink_entry(txn, fs, dst_parent, dst_name, &entry);
            let target = rows::drop_link(txn, stamp, fs, target)?;
            if replaces_dir {
                adjust_dir(txn, stamp, fs, dst_parent, -1)?;
            }
            Some(target)
        }
        None => None,
    };
    rows::unlink_entry(txn, fs, src_parent, src_name, &src_entry);
    rows::link_entry(txn, fs, dst_parent, dst_name, source.id, age)?;
    let dir_moves = moving_dir && src_parent != dst_parent;
    adjust_dir(txn, stamp, fs, src_parent, if dir_moves { -1 } else { 0 })?;
    adjust_dir(txn, stamp, fs, dst_parent, if dir_moves { 1 } else { 0 })?;

    let mut moved = source;
    if moving_dir {
        moved.parent = Some(dst_parent);
    }
    stamp.touch(&mut moved);
    rows::put_inode(txn, fs, &moved);
    Ok(Reply::Renamed {
        src_before: src_dir.change,
        src_after: stamp.index,
        dst_before: dst_dir.change,
        dst_after: stamp.index,
        moved,
        replaced,
    })
}

/// Whether `dir` is `ancestor` or lies below it. The walk is bounded by the number of
/// steps a tree can have, so a corrupt cycle of parent pointers fails instead of hanging.
fn is_self_or_below<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    mut dir: InodeId,
    ancestor: InodeId,
) -> Res<bool> {
    const MAX_DEPTH: usize = 1 << 20;
    for _ in 0..MAX_DEPTH {
        if dir == ancestor {
            return Ok(true);
        }
        if dir == InodeId::ROOT {
            return Ok(false);
        }
        let inode = rows::load_inode(kv, fs, dir)?.ok_or_else(|| corrupt(fs, dir))?;
        dir = inode.parent.ok_or_else(|| corrupt(fs, dir))?;
    }
    Err(corrupt(fs, dir).into())
}

fn corrupt(fs: FsId, dir: InodeId) -> MetaError {
    MetaError::Corrupt {
        table: Table::Inodes.name(),
        reason: format!("broken parent chain at inode {} of fs {}", dir.0, fs.0),
    }
}

/// Marks a directory's entries as changed and moves its link count by `delta`.
fn adjust_dir<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    fs: FsId,
    dir: InodeId,
    delta: i32,
) -> Res<()> {
    let mut inode = rows::load_inode(txn, fs, dir)?.ok_or_else(|| corrupt(fs, dir))?;
    inode.nlink = inode.nlink.saturating_add_signed(delta);
    stamp.touch_contents(&mut inode);
    rows::put_inode(txn, fs, &inode);
    Ok(())
}
