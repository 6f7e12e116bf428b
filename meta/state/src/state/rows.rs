//! Typed access to the tables: what a row means, not how its key is laid out (that is
//! `crate::keys`), plus the lookups every command shares so that each reports the same
//! error for the same situation.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::codec;
use crate::error::{MetaError, NsError};
use crate::keys;
use crate::kv::{KvRead, Table, Txn};
use crate::types::{FileType, FsId, FsInfo, Inode, InodeId, Timestamp};

/// The most names one inode may have, and the most subdirectories a directory may hold
/// (Linux ext4 stops at 65000 as well).
pub(super) const LINK_MAX: u32 = 65_000;

/// Cookies 0, 1 and 2 are reserved by NFSv4 (0 starts a READDIR; Linux clients use 1 and
/// 2 for `.` and `..`), so a directory's first entry gets 3.
pub(super) const FIRST_COOKIE: u64 = 3;

/// Inode ids of a new file system: the root is 1, the first created inode 2.
pub(super) const FIRST_INODE: u64 = 2;

/// A command's outcome inside the rules: a refusal that is committed as the reply, or a
/// storage failure that stops the node. Lets `?` carry both.
#[derive(Debug)]
pub(super) enum Fail {
    Ns(NsError),
    Meta(MetaError),
}

impl From<NsError> for Fail {
    fn from(e: NsError) -> Self {
        Fail::Ns(e)
    }
}

impl From<MetaError> for Fail {
    fn from(e: MetaError) -> Self {
        Fail::Meta(e)
    }
}

pub(super) type Res<T> = Result<T, Fail>;

/// Splits a rule outcome into the committed result and the node-stopping failure.
pub(super) fn split<T>(r: Res<T>) -> Result<Result<T, NsError>, MetaError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Fail::Ns(e)) => Ok(Err(e)),
        Err(Fail::Meta(e)) => Err(e),
    }
}

/// The time and log index of the entry being applied.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    pub index: u64,
    pub now: Timestamp,
}

impl Stamp {
    /// Attributes or link count changed.
    pub fn touch(&self, inode: &mut Inode) {
        inode.ctime = self.now;
        inode.change = self.index;
    }

    /// Contents changed (for a directory: its entries).
    pub fn touch_contents(&self, inode: &mut Inode) {
        inode.mtime = self.now;
        self.touch(inode);
    }
}

/// A directory entry's value; the name is in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Dirent {
    pub ino: InodeId,
    pub cookie: u64,
}

pub(super) fn get<T: DeserializeOwned, K: KvRead + ?Sized>(
    kv: &K,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, MetaError> {
    kv.get(table, key)?
        .map(|bytes| codec::decode(table.name(), &bytes))
        .transpose()
}

pub(super) fn put<T: Serialize, R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    table: Table,
    key: Vec<u8>,
    value: &T,
) {
    txn.put(table, key, codec::encode(value));
}

/// Every row of `table` with `start <= key < end` (`end == None`: to the end), decoded.
pub(super) fn scan_all<T: DeserializeOwned, K: KvRead + ?Sized>(
    kv: &K,
    table: Table,
    start: &[u8],
    end: Option<&[u8]>,
) -> Result<Vec<(Vec<u8>, T)>, MetaError> {
    // Paged so that no engine is asked for an unbounded batch at once.
    const PAGE: usize = 1024;
    let mut out = Vec::new();
    let mut cursor = start.to_vec();
    loop {
        let rows = kv.scan(table, &cursor, end, PAGE)?;
        let full = rows.len() == PAGE;
        for (k, v) in rows {
            let value = codec::decode(table.name(), &v)?;
            cursor.clone_from(&k);
            out.push((k, value));
        }
        if !full {
            return Ok(out);
        }
        cursor.push(0);
    }
}

/// Returns the counter's value and stores the next one; a missing counter starts at `first`.
pub(super) fn take_counter<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    key: Vec<u8>,
    first: u64,
) -> Result<u64, MetaError> {
    let value: u64 = get(txn, Table::Meta, &key)?.unwrap_or(first);
    let next = value.checked_add(1).ok_or_else(|| MetaError::Corrupt {
        table: Table::Meta.name(),
        reason: "counter overflow".into(),
    })?;
    put(txn, Table::Meta, key, &next);
    Ok(value)
}

pub(super) fn require_fs<K: KvRead + ?Sized>(kv: &K, fs: FsId) -> Res<FsInfo> {
    get(kv, Table::Fs, &keys::fs_by_id(fs))?
        .ok_or_else(|| NsError::NoSuchFs(format!("id {}", fs.0)).into())
}

pub(super) fn load_inode<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    ino: InodeId,
) -> Result<Option<Inode>, MetaError> {
    get(kv, Table::Inodes, &keys::inode(fs, ino))
}

/// The inode a file handle names; a handle to a removed inode is stale.
pub(super) fn handle<K: KvRead + ?Sized>(kv: &K, fs: FsId, ino: InodeId) -> Res<Inode> {
    require_fs(kv, fs)?;
    load_inode(kv, fs, ino)?.ok_or(Fail::Ns(NsError::Stale))
}

/// Like [`handle`], and the inode must be a directory.
pub(super) fn dir_handle<K: KvRead + ?Sized>(kv: &K, fs: FsId, dir: InodeId) -> Res<Inode> {
    let inode = handle(kv, fs, dir)?;
    if inode.kind != FileType::Dir {
        return Err(NsError::NotDir.into());
    }
    Ok(inode)
}

pub(super) fn put_inode<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, fs: FsId, inode: &Inode) {
    put(txn, Table::Inodes, keys::inode(fs, inode.id), inode);
}

/// Removes an inode and the rows that only exist for it.
pub(super) fn delete_inode<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    fs: FsId,
    ino: InodeId,
) -> Result<(), MetaError> {
    txn.delete(Table::Inodes, keys::inode(fs, ino));
    txn.delete(Table::Meta, keys::create_verifier(fs, ino));
    txn.delete(Table::Meta, keys::next_cookie(fs, ino));
    // An inode is deleted when its last name goes, and `unlink_entry` already dropped the
    // reverse row of every name, so this normally finds nothing. Sweeping the prefix
    // anyway keeps "an inode's rows go with it" true here, whatever path deleted it.
    for link in links_of(txn, fs, ino)? {
        txn.delete(Table::Meta, keys::link_of(fs, ino, link.parent, &link.name));
    }
    Ok(())
}

/// One name of an inode, from the reverse index (`keys::link_of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Link {
    pub parent: InodeId,
    pub name: String,
    /// Log index of the entry that created the link; a rename keeps it.
    pub age: u64,
}

/// Every name of `ino`, oldest first; links of equal age (which one entry cannot create,
/// but the order must be total) stay in key order, i.e. by parent, then name.
pub(super) fn links_of<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    ino: InodeId,
) -> Result<Vec<Link>, MetaError> {
    let prefix = keys::link_of_prefix(fs, ino);
    let end = keys::prefix_end(&prefix);
    let rows: Vec<(Vec<u8>, u64)> = scan_all(kv, Table::Meta, &prefix, end.as_deref())?;
    let mut links = Vec::with_capacity(rows.len());
    for (key, age) in rows {
        let corrupt = |reason: &str| MetaError::Corrupt {
            table: Table::Meta.name(),
            reason: format!("link index of inode {} of fs {}: {reason}", ino.0, fs.0),
        };
        let (parent, name) = keys::parent_and_name_of_link(&key).ok_or(corrupt("short key"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| corrupt("name is not UTF-8"))?;
        links.push(Link { parent, name, age });
    }
    // A stable sort: equal ages keep the scan's key order.
    links.sort_by_key(|l| l.age);
    Ok(links)
}

/// The age of the link `dir/name → ino`. Every entry has its reverse row, so a missing
/// one is corruption.
pub(super) fn link_age<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    ino: InodeId,
    dir: InodeId,
    name: &str,
) -> Result<u64, MetaError> {
    get(kv, Table::Meta, &keys::link_of(fs, ino, dir, name))?.ok_or_else(|| MetaError::Corrupt {
        table: Table::Meta.name(),
        reason: format!(
            "entry {name:?} of directory {} (fs {}) has no link index row",
            dir.0, fs.0
        ),
    })
}

pub(super) fn lookup_entry<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    dir: InodeId,
    name: &str,
) -> Result<Option<Dirent>, MetaError> {
    get(kv, Table::Dirents, &keys::dirent(fs, dir, name))
}

/// The inode an entry points at. An entry without its inode means the tables disagree,
/// which no command can produce: that is corruption, not a refusal.
pub(super) fn entry_inode<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    entry: &Dirent,
) -> Result<Inode, MetaError> {
    load_inode(kv, fs, entry.ino)?.ok_or_else(|| MetaError::Corrupt {
        table: Table::Dirents.name(),
        reason: format!(
            "entry points at missing inode {} of fs {}",
            entry.ino.0, fs.0
        ),
    })
}

pub(super) fn dir_is_empty<K: KvRead + ?Sized>(
    kv: &K,
    fs: FsId,
    dir: InodeId,
) -> Result<bool, MetaError> {
    let prefix = keys::dir_prefix(fs, dir);
    let end = keys::prefix_end(&prefix);
    Ok(kv
        .scan(Table::Dirents, &prefix, end.as_deref(), 1)?
        .is_empty())
}

/// Adds `name → ino` to `dir` with a fresh cookie, and its reverse row with `age` (the
/// current index for a new link, the moved link's age for a rename).
pub(super) fn link_entry<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    fs: FsId,
    dir: InodeId,
    name: &str,
    ino: InodeId,
    age: u64,
) -> Result<(), MetaError> {
    let cookie = take_counter(txn, keys::next_cookie(fs, dir), FIRST_COOKIE)?;
    put(
        txn,
        Table::Dirents,
        keys::dirent(fs, dir, name),
        &Dirent { ino, cookie },
    );
    put(
        txn,
        Table::DirCookies,
        keys::dir_cookie(fs, dir, cookie),
        &name.to_string(),
    );
    put(txn, Table::Meta, keys::link_of(fs, ino, dir, name), &age);
    Ok(())
}

/// Removes the entry `dir/name` with its cookie and reverse rows. Every path that drops a
/// name comes through here, which is what keeps the reverse index exact.
pub(super) fn unlink_entry<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    fs: FsId,
    dir: InodeId,
    name: &str,
    entry: &Dirent,
) {
    txn.delete(Table::Dirents, keys::dirent(fs, dir, name));
    txn.delete(Table::DirCookies, keys::dir_cookie(fs, dir, entry.cookie));
    txn.delete(Table::Meta, keys::link_of(fs, entry.ino, dir, name));
}

/// One name of `inode` went away: lower its link count and delete it when none is left.
/// A directory has exactly one name, so losing it removes the directory. Returns the
/// inode as it is afterwards (`nlink == 0` when it was deleted).
pub(super) fn drop_link<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    fs: FsId,
    mut inode: Inode,
) -> Result<Inode, MetaError> {
    inode.nlink = if inode.kind == FileType::Dir {
        0
    } else {
        inode.nlink.saturating_sub(1)
    };
    stamp.touch(&mut inode);
    if inode.nlink == 0 {
        delete_inode(txn, fs, inode.id)?;
    } else {
        put_inode(txn, fs, &inode);
    }
    Ok(inode)
}
