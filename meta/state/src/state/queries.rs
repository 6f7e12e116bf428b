//! Reads. They use the same lookups as the commands (`rows`), so a read and a write that
//! name the same missing thing report the same error.

use crate::command::{Query, QueryReply};
use crate::error::{MetaError, NsError};
use crate::keys;
use crate::kv::{KvRead, Table};
use crate::name;
use crate::nfs_state::ClientRecord;
use crate::types::{DirEntry, FileType, FsId, FsInfo, InodeId, ReadDirPage};

use super::open_lock;
use super::rows::{self, Res};

pub(super) fn query<K: KvRead + ?Sized>(
    kv: &K,
    query: &Query,
) -> Result<Result<QueryReply, NsError>, MetaError> {
    rows::split(answer(kv, query))
}

fn answer<K: KvRead + ?Sized>(kv: &K, query: &Query) -> Res<QueryReply> {
    match query {
        Query::GetFs { name } => {
            let id: FsId = rows::get(kv, Table::Fs, &keys::fs_by_name(name))?
                .ok_or_else(|| NsError::NoSuchFs(name.clone()))?;
            Ok(QueryReply::Fs(rows::require_fs(kv, id)?))
        }
        Query::ListFs => {
            let (start, end) = keys::fs_by_id_range();
            let all: Vec<(Vec<u8>, FsInfo)> = rows::scan_all(kv, Table::Fs, &start, Some(&end))?;
            Ok(QueryReply::FsList(
                all.into_iter().map(|(_, f)| f).collect(),
            ))
        }
        Query::Lookup { fs, parent, name } => {
            name::validate(name)?;
            rows::dir_handle(kv, *fs, *parent)?;
            let entry = rows::lookup_entry(kv, *fs, *parent, name)?.ok_or(NsError::NotFound)?;
            Ok(QueryReply::Inode(rows::entry_inode(kv, *fs, &entry)?))
        }
        Query::LookupParent { fs, dir } => {
            let dir = rows::dir_handle(kv, *fs, *dir)?;
            let parent = dir.parent.unwrap_or(InodeId::ROOT);
            let inode = rows::load_inode(kv, *fs, parent)?.ok_or_else(|| MetaError::Corrupt {
                table: Table::Inodes.name(),
                reason: format!("directory {} has a missing parent", dir.id.0),
            })?;
            Ok(QueryReply::Inode(inode))
        }
        Query::GetAttr { fs, ino } => Ok(QueryReply::Inode(rows::handle(kv, *fs, *ino)?)),
        Query::ReadLink { fs, ino } => {
            let inode = rows::handle(kv, *fs, *ino)?;
            match (inode.kind, inode.symlink_target) {
                (FileType::Symlink, Some(target)) => Ok(QueryReply::Target(target)),
                _ => Err(NsError::NotSymlink.into()),
            }
        }
        Query::ReadDir {
            fs,
            dir,
            after_cookie,
            limit,
        } => Ok(QueryReply::Page(read_dir(
            kv,
            *fs,
            *dir,
            *after_cookie,
            *limit,
        )?)),
        Query::GetClient { client } => {
            let record: ClientRecord = rows::get(kv, Table::Clients, &keys::client_by_id(*client))?
                .ok_or(NsError::NoSuchClient(*client))?;
            Ok(QueryReply::Client(record))
        }
        Query::LockTest {
            fs,
            ino,
            client,
            lock_owner,
            kind,
            offset,
            length,
        } => {
            open_lock::lock_test(
                kv,
                open_lock::LockTestArgs {
                    fs: *fs,
                    ino: *ino,
                    client: *client,
                    lock_owner,
                    kind: *kind,
                    offset: *offset,
                    length: *length,
                },
            )?;
            Ok(QueryReply::LockFree)
        }
        Query::TestStateIds { client, state_ids } => Ok(QueryReply::StateIds(
            open_lock::test_state_ids(kv, *client, state_ids)?,
        )),
    }
}

fn read_dir<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    dir: InodeId,
    after_cookie: u64,
    limit: u32,
) -> Res<ReadDirPage> {
    let dir_inode = rows::dir_handle(kv, fs, dir)?;
    let Some(first) = after_cookie.checked_add(1) else {
        return Ok(ReadDirPage {
            entries: Vec::new(),
            eof: true,
            dir_change: dir_inode.change,
        });
    };
    let start = keys::dir_cookie(fs, dir, first);
    let end = keys::prefix_end(&keys::dir_prefix(fs, dir));
    // One row more than asked tells whether the page ends the directory.
    let want = limit as usize;
    let rows = kv.scan(Table::DirCookies, &start, end.as_deref(), want + 1)?;
    let eof = rows.len() <= want;
    let mut entries = Vec::with_capacity(rows.len().min(want));
    for (key, value) in rows.into_iter().take(want) {
        let corrupt = |reason: String| MetaError::Corrupt {
            table: Table::DirCookies.name(),
            reason,
        };
        let cookie = keys::cookie_of(&key).ok_or_else(|| corrupt("short key".into()))?;
        let name: String = crate::codec::decode(Table::DirCookies.name(), &value)?;
        let entry = rows::lookup_entry(kv, fs, dir, &name)?
            .filter(|e| e.cookie == cookie)
            .ok_or_else(|| corrupt(format!("cookie {cookie} names a missing entry")))?;
        entries.push(DirEntry {
            name,
            cookie,
            inode: rows::entry_inode(kv, fs, &entry)?,
        });
    }
    Ok(ReadDirPage {
        entries,
        eof,
        dir_change: dir_inode.change,
    })
}
