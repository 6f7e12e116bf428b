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
        Query::Path { fs, ino } => Ok(QueryReply::Path(path(kv, *fs, *ino)?)),
        Query::Links { fs, ino } => {
            rows::handle(kv, *fs, *ino)?;
            let links = rows::links_of(kv, *fs, *ino)?;
            Ok(QueryReply::Links(
                links.into_iter().map(|l| (l.parent, l.name)).collect(),
            ))
        }
    }
}

/// The primary path of `ino` (see [`Query::Path`]): its oldest link, then the link of each
/// directory above it, up to the root. Directories have exactly one link, so above the
/// first step the walk has no choice to make. The walk is bounded like the one in `rename`,
/// so a corrupt cycle fails instead of hanging.
fn path<K: KvRead + ?Sized>(kv: &K, fs: FsId, ino: InodeId) -> Res<Option<String>> {
    const MAX_DEPTH: usize = 1 << 20;
    rows::handle(kv, fs, ino)?;
    let mut names: Vec<String> = Vec::new();
    let mut at = ino;
    for _ in 0..MAX_DEPTH {
        if at == InodeId::ROOT {
            names.reverse();
            return Ok(Some(names.join("/")));
        }
        let Some(primary) = rows::links_of(kv, fs, at)?.into_iter().next() else {
            if at == ino {
                // Total even for an inode no live state has: one without a name.
                return Ok(None);
            }
            return Err(MetaError::Corrupt {
                table: Table::Meta.name(),
                reason: format!(
                    "directory {} of fs {} holds entries but has no link",
                    at.0, fs.0
                ),
            }
            .into());
        };
        names.push(primary.name);
        at = primary.parent;
    }
    Err(MetaError::Corrupt {
        table: Table::Meta.name(),
        reason: format!(
            "link chain of inode {} of fs {} does not reach the root",
            ino.0, fs.0
        ),
    }
    .into())
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

#[cfg(test)]
mod tests {
    //! Path over states no command produces (an inode without a name, a directory whose
    //! link row is missing): the tests write rows directly.

    use super::*;
    use crate::command::{Command, CreateMode, NewInode, Proposal};
    use crate::kv::{MemKv, Txn};
    use crate::types::{ClientId, Timestamp};

    const FS: FsId = FsId(1);

    fn step(kv: &mut MemKv, index: u64, command: Command) {
        let proposal = Proposal {
            client: ClientId(1),
            seq: index,
            ack_below: 0,
            now: Timestamp::new(index as i64, 0),
            command,
        };
        let mut txn = Txn::new(&*kv);
        let result = crate::state::apply(&mut txn, index, &proposal).expect("MemKv cannot fail");
        assert!(result.is_ok(), "{result:?}");
        let writes = txn.into_writes();
        kv.apply(writes);
    }

    fn mk(kv: &mut MemKv, index: u64, parent: u64, name: &str, kind: NewInode) {
        step(
            kv,
            index,
            Command::Create {
                fs: FS,
                parent: InodeId(parent),
                name: name.into(),
                kind,
                mode: 0o755,
                uid: 0,
                gid: 0,
                how: CreateMode::Guarded,
            },
        );
    }

    fn path_of(kv: &MemKv, ino: u64) -> Result<Result<QueryReply, NsError>, MetaError> {
        query(
            kv,
            &Query::Path {
                fs: FS,
                ino: InodeId(ino),
            },
        )
    }

    #[test]
    fn path_is_total_and_reports_a_broken_chain() {
        let mut kv = MemKv::default();
        step(
            &mut kv,
            1,
            Command::CreateFs {
                name: "fs".into(),
                bucket: "b".into(),
                prefix: String::new(),
            },
        );
        mk(&mut kv, 2, 1, "d", NewInode::Dir); // ino 2
        mk(&mut kv, 3, 2, "f", NewInode::File); // ino 3
        assert_eq!(
            path_of(&kv, 3).unwrap(),
            Ok(QueryReply::Path(Some("d/f".into())))
        );
        assert_eq!(path_of(&kv, 9).unwrap(), Err(NsError::Stale));

        // The directory loses its link row: the file's path cannot be built.
        let mut gone = kv.clone();
        gone.rows.remove(&(
            Table::Meta,
            keys::link_of(FS, InodeId(2), InodeId::ROOT, "d"),
        ));
        assert!(matches!(path_of(&gone, 3), Err(MetaError::Corrupt { .. })));
        // The inode itself without a link row: no path, but an answer.
        assert_eq!(path_of(&gone, 2).unwrap(), Ok(QueryReply::Path(None)));
        assert_eq!(
            query(
                &gone,
                &Query::Links {
                    fs: FS,
                    ino: InodeId(2)
                }
            )
            .unwrap(),
            Ok(QueryReply::Links(Vec::new()))
        );

        // A cycle of links (d's link names itself as parent) fails instead of hanging.
        let mut cycle = kv.clone();
        cycle.rows.remove(&(
            Table::Meta,
            keys::link_of(FS, InodeId(2), InodeId::ROOT, "d"),
        ));
        cycle.rows.insert(
            (Table::Meta, keys::link_of(FS, InodeId(2), InodeId(2), "d")),
            crate::codec::encode(&2u64),
        );
        assert!(matches!(path_of(&cycle, 3), Err(MetaError::Corrupt { .. })));
    }

    #[test]
    fn equal_ages_fall_back_to_key_order() {
        let mut kv = MemKv::default();
        step(
            &mut kv,
            1,
            Command::CreateFs {
                name: "fs".into(),
                bucket: "b".into(),
                prefix: String::new(),
            },
        );
        mk(&mut kv, 2, 1, "b", NewInode::File); // ino 2, age 2
        // A second name with the same age, which no command creates; "a" sorts first.
        kv.rows.insert(
            (
                Table::Meta,
                keys::link_of(FS, InodeId(2), InodeId::ROOT, "a"),
            ),
            crate::codec::encode(&2u64),
        );
        assert_eq!(
            path_of(&kv, 2).unwrap(),
            Ok(QueryReply::Path(Some("a".into())))
        );
    }
}
