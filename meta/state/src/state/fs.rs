//! File systems: creation with an empty root directory.

use crate::command::Reply;
use crate::error::NsError;
use crate::keys;
use crate::kv::{KvRead, Table, Txn};
use crate::types::{FileType, FsId, FsInfo, ImportState, Inode, InodeId, SyncState};

use super::rows::{self, FIRST_INODE, Res, Stamp};

pub(super) fn create_fs<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    name: &str,
    bucket: &str,
    prefix: &str,
) -> Res<Reply> {
    if name.is_empty() {
        return Err(NsError::Invalid("empty file system name".into()).into());
    }
    if bucket.is_empty() {
        return Err(NsError::Invalid("empty bucket name".into()).into());
    }
    if txn.get(Table::Fs, &keys::fs_by_name(name))?.is_some() {
        return Err(NsError::FsExists(name.to_string()).into());
    }
    let id = FsId(rows::take_counter(txn, keys::next_fs(), 1)?);
    let info = FsInfo {
        id,
        name: name.to_string(),
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        root: InodeId::ROOT,
        created_index: stamp.index,
    };
    let root = Inode {
        id: InodeId::ROOT,
        generation: stamp.index,
        kind: FileType::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 0,
        nlink: 2,
        atime: stamp.now,
        mtime: stamp.now,
        ctime: stamp.now,
        change: stamp.index,
        parent: Some(InodeId::ROOT),
        symlink_target: None,
        rdev: (0, 0),
        object: None,
        // Importing an existing bucket prefix is a later command's job; a new file
        // system starts as the empty directory CreateFs promises.
        import: ImportState::Complete,
        sync: SyncState::Clean,
    };
    rows::put(txn, Table::Fs, keys::fs_by_id(id), &info);
    rows::put(txn, Table::Fs, keys::fs_by_name(name), &id);
    rows::put(txn, Table::Meta, keys::next_inode(id), &FIRST_INODE);
    rows::put_inode(txn, id, &root);
    Ok(Reply::Fs(info))
}
