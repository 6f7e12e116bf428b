//! Key layouts of every table the namespace rules use.
//!
//! Integers are big-endian so that byte order equals numeric order: a prefix scan over
//! `(fs, parent)` walks one directory, `(fs, parent, cookie)` walks it in cookie order and
//! `(client, seq)` walks one writer's stored replies in sequence order. Tables that hold
//! more than one kind of row start each key with a one-byte tag; the tags below are part
//! of the persisted format and must never be renumbered.
//!
//! | table        | key                                  | value                      |
//! |--------------|--------------------------------------|----------------------------|
//! | `Meta`       | `[NEXT_FS]`                          | next fs id (`u64`)         |
//! | `Meta`       | `[NEXT_NFS_CLIENT]`                  | next NFS client id (`u64`) |
//! | `Meta`       | `[NEXT_STATE_ID]`                    | next open/lock state id    |
//! | `Meta`       | `[NEXT_INODE, fs]`                   | next inode id of `fs`      |
//! | `Meta`       | `[NEXT_COOKIE, fs, dir]`             | next cookie of `dir`       |
//! | `Meta`       | `[CREATE_VERIFIER, fs, ino]`         | exclusive-create verifier  |
//! | `Meta`       | `[LINK_OF, fs, ino, parent, name…]`  | age of the link (`u64`)    |
//! | `Meta`       | `[REQUEST_WINDOW, client]`           | window start (`u64`)       |
//! | `Meta`       | `[OPEN_BY_FILE, fs, ino, state_id]`  | client id (`u64`)          |
//! | `Meta`       | `[LOCK_BY_FILE, fs, ino, state_id]`  | client id (`u64`)          |
//! | `Fs`         | `[FS_BY_ID, fs]`                     | `FsInfo`                   |
//! | `Fs`         | `[FS_BY_NAME, name…]`                | `FsId`                     |
//! | `Inodes`     | `[fs, ino]`                          | `Inode`                    |
//! | `Dirents`    | `[fs, parent, name…]`                | `Dirent`                   |
//! | `DirCookies` | `[fs, parent, cookie]`               | name (`String`)            |
//! | `Requests`   | `[client, seq]`                      | `ApplyResult`              |
//! | `Clients`    | `[CLIENT_BY_ID, client]`             | `ClientRecord`             |
//! | `Clients`    | `[CLIENT_BY_OWNER, owner_id…]`       | client id (`u64`)          |
//! | `Opens`      | `[client, state_id]`                 | `OpenState`                |
//! | `Locks`      | `[client, state_id]`                 | `LockState`                |
//!
//! The by-file indexes of opens and locks live in `Meta` under their own tags rather than
//! in `Opens`/`Locks`: those tables are keyed by client first so that dropping a client is
//! one prefix, and an index key there could share a prefix with some client's rows.
//!
//! `LINK_OF` is the reverse of `Dirents`: one row per directory entry, keyed by the inode
//! the entry names, so an inode's names (and from them its path) are one prefix scan. The
//! value is the link's *age*, the log index of the entry that created the link (a rename
//! keeps the age of the link it moves); an inode's oldest link is its primary one, which
//! gives it a stable path while newer hard links come and go. It lives in `Meta` rather than
//! `Dirents` because a `Dirents` key with the same bytes could belong to some directory.

use crate::types::{ClientId, FsId, InodeId};

const NEXT_FS: u8 = 0x01;
const NEXT_NFS_CLIENT: u8 = 0x02;
const NEXT_STATE_ID: u8 = 0x03;
const NEXT_INODE: u8 = 0x10;
const NEXT_COOKIE: u8 = 0x11;
const CREATE_VERIFIER: u8 = 0x12;
const LINK_OF: u8 = 0x13;
const REQUEST_WINDOW: u8 = 0x20;
const OPEN_BY_FILE: u8 = 0x30;
const LOCK_BY_FILE: u8 = 0x31;

const FS_BY_ID: u8 = 0x01;
const FS_BY_NAME: u8 = 0x02;

const CLIENT_BY_ID: u8 = 0x01;
const CLIENT_BY_OWNER: u8 = 0x02;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn next_fs() -> Vec<u8> {
    vec![NEXT_FS]
}

pub fn next_nfs_client() -> Vec<u8> {
    vec![NEXT_NFS_CLIENT]
}

pub fn next_state_id() -> Vec<u8> {
    vec![NEXT_STATE_ID]
}

pub fn next_inode(fs: FsId) -> Vec<u8> {
    cat(&[&[NEXT_INODE], &fs.0.to_be_bytes()])
}

pub fn next_cookie(fs: FsId, dir: InodeId) -> Vec<u8> {
    cat(&[&[NEXT_COOKIE], &fs.0.to_be_bytes(), &dir.0.to_be_bytes()])
}

pub fn create_verifier(fs: FsId, ino: InodeId) -> Vec<u8> {
    cat(&[
        &[CREATE_VERIFIER],
        &fs.0.to_be_bytes(),
        &ino.0.to_be_bytes(),
    ])
}

/// Reverse-index row of the entry `parent/name` under the inode it names.
pub fn link_of(fs: FsId, ino: InodeId, parent: InodeId, name: &str) -> Vec<u8> {
    cat(&[
        &link_of_prefix(fs, ino),
        &parent.0.to_be_bytes(),
        name.as_bytes(),
    ])
}

/// Prefix of every reverse-index row of one inode, in (parent, name) order.
pub fn link_of_prefix(fs: FsId, ino: InodeId) -> Vec<u8> {
    cat(&[&[LINK_OF], &fs.0.to_be_bytes(), &ino.0.to_be_bytes()])
}

/// Splits a `link_of` key back into the parent and the name bytes (not checked as UTF-8).
pub fn parent_and_name_of_link(key: &[u8]) -> Option<(InodeId, &[u8])> {
    let parent: [u8; 8] = key.get(17..25)?.try_into().ok()?;
    Some((InodeId(u64::from_be_bytes(parent)), &key[25..]))
}

pub fn request_window(client: ClientId) -> Vec<u8> {
    cat(&[&[REQUEST_WINDOW], &client.0.to_be_bytes()])
}

pub fn fs_by_id(fs: FsId) -> Vec<u8> {
    cat(&[&[FS_BY_ID], &fs.0.to_be_bytes()])
}

/// The `[start, end)` range holding every `fs_by_id` row.
pub fn fs_by_id_range() -> (Vec<u8>, Vec<u8>) {
    (vec![FS_BY_ID], vec![FS_BY_ID + 1])
}

pub fn fs_by_name(name: &str) -> Vec<u8> {
    cat(&[&[FS_BY_NAME], name.as_bytes()])
}

pub fn inode(fs: FsId, ino: InodeId) -> Vec<u8> {
    cat(&[&fs.0.to_be_bytes(), &ino.0.to_be_bytes()])
}

pub fn dir_prefix(fs: FsId, dir: InodeId) -> Vec<u8> {
    inode(fs, dir)
}

pub fn dirent(fs: FsId, parent: InodeId, name: &str) -> Vec<u8> {
    cat(&[&dir_prefix(fs, parent), name.as_bytes()])
}

pub fn dir_cookie(fs: FsId, parent: InodeId, cookie: u64) -> Vec<u8> {
    cat(&[&dir_prefix(fs, parent), &cookie.to_be_bytes()])
}

/// Splits a `dir_cookie` key back into its cookie.
pub fn cookie_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(16..24)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

pub fn request(client: ClientId, seq: u64) -> Vec<u8> {
    cat(&[&client.0.to_be_bytes(), &seq.to_be_bytes()])
}

pub fn client_by_id(client: u64) -> Vec<u8> {
    cat(&[&[CLIENT_BY_ID], &client.to_be_bytes()])
}

pub fn client_by_id_range() -> (Vec<u8>, Vec<u8>) {
    (vec![CLIENT_BY_ID], vec![CLIENT_BY_ID + 1])
}

pub fn client_by_owner(owner_id: &[u8]) -> Vec<u8> {
    cat(&[&[CLIENT_BY_OWNER], owner_id])
}

/// Key of an open or a lock: both tables are keyed by the owning NFS client first, so a
/// client's state is one prefix.
pub fn client_state(client: u64, state_id: u64) -> Vec<u8> {
    cat(&[&client.to_be_bytes(), &state_id.to_be_bytes()])
}

pub fn client_state_prefix(client: u64) -> Vec<u8> {
    client.to_be_bytes().to_vec()
}

fn by_file(tag: u8, fs: FsId, ino: InodeId) -> Vec<u8> {
    cat(&[&[tag], &fs.0.to_be_bytes(), &ino.0.to_be_bytes()])
}

/// Index row of an open under its file.
pub fn open_by_file(fs: FsId, ino: InodeId, state_id: u64) -> Vec<u8> {
    cat(&[&by_file(OPEN_BY_FILE, fs, ino), &state_id.to_be_bytes()])
}

/// Prefix of every open of one file, in state id order.
pub fn open_by_file_prefix(fs: FsId, ino: InodeId) -> Vec<u8> {
    by_file(OPEN_BY_FILE, fs, ino)
}

/// Index row of a lock stateid under its file.
pub fn lock_by_file(fs: FsId, ino: InodeId, state_id: u64) -> Vec<u8> {
    cat(&[&by_file(LOCK_BY_FILE, fs, ino), &state_id.to_be_bytes()])
}

pub fn lock_by_file_prefix(fs: FsId, ino: InodeId) -> Vec<u8> {
    by_file(LOCK_BY_FILE, fs, ino)
}

/// The state id at the end of a by-file index key.
pub fn state_id_of_by_file(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(17..25)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when no
/// such key exists (the prefix is all `0xff`), meaning "scan to the end of the table".
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_sort_numerically() {
        let fs = FsId(1);
        let mut keys: Vec<Vec<u8>> = [1u64, 255, 256, 70_000, u64::MAX]
            .iter()
            .map(|c| dir_cookie(fs, InodeId(300), *c))
            .collect();
        let sorted = keys.clone();
        keys.sort();
        assert_eq!(keys, sorted);
        assert_eq!(cookie_of(&sorted[3]), Some(70_000));
        assert!(request(ClientId(2), 0) > request(ClientId(1), u64::MAX));
    }

    #[test]
    fn a_directory_is_one_prefix() {
        let fs = FsId(3);
        let a = dirent(fs, InodeId(7), "zzz");
        let b = dirent(fs, InodeId(8), "");
        let end = prefix_end(&dir_prefix(fs, InodeId(7))).unwrap();
        assert!(a.as_slice() < end.as_slice());
        assert!(b.as_slice() >= end.as_slice());
    }

    #[test]
    fn by_file_indexes_are_one_prefix_per_file() {
        let (fs, ino) = (FsId(1), InodeId(0xff));
        let prefix = open_by_file_prefix(fs, ino);
        let end = prefix_end(&prefix).unwrap();
        let mine = open_by_file(fs, ino, u64::MAX);
        let next = open_by_file(fs, InodeId(0x100), 0);
        assert!(mine.starts_with(&prefix) && mine.as_slice() < end.as_slice());
        assert!(next.as_slice() >= end.as_slice());
        assert_eq!(state_id_of_by_file(&mine), Some(u64::MAX));
        assert_eq!(state_id_of_by_file(&lock_by_file(fs, ino, 42)), Some(42));
        // Opens and locks of one file never share a prefix.
        assert!(!lock_by_file(fs, ino, 1).starts_with(&prefix));
    }

    #[test]
    fn links_of_an_inode_are_one_prefix() {
        let fs = FsId(2);
        let prefix = link_of_prefix(fs, InodeId(0xff));
        let end = prefix_end(&prefix).unwrap();
        let mine = link_of(fs, InodeId(0xff), InodeId(u64::MAX), "zz");
        let next = link_of(fs, InodeId(0x100), InodeId(0), "");
        assert!(mine.starts_with(&prefix) && mine.as_slice() < end.as_slice());
        assert!(next.as_slice() >= end.as_slice());
        assert_eq!(
            parent_and_name_of_link(&mine),
            Some((InodeId(u64::MAX), b"zz".as_slice()))
        );
        assert_eq!(
            parent_and_name_of_link(&link_of(fs, InodeId(1), InodeId(7), "")),
            Some((InodeId(7), b"".as_slice()))
        );
        assert_eq!(parent_and_name_of_link(&prefix), None);
        // Rows of one inode sort by parent, then name.
        assert!(
            link_of(fs, InodeId(5), InodeId(2), "b") < link_of(fs, InodeId(5), InodeId(256), "a")
        );
        // No other Meta row of the same file shares the prefix.
        assert!(!create_verifier(fs, InodeId(0xff)).starts_with(&prefix));
        assert!(!open_by_file_prefix(fs, InodeId(0xff)).starts_with(&prefix));
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[]), None);
        let max = client_state_prefix(u64::MAX);
        assert_eq!(prefix_end(&max), None);
    }
}
