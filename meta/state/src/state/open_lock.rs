//! NFSv4.1 opens (share reservations) and byte-range locks, kept in the replicated state so
//! that any gateway can serve any client: a client whose gateway died reconnects elsewhere
//! and carries on with the same stateids.
//!
//! # Rows
//!
//! An open is one row per (client, open-owner, file) in `Opens`, keyed `(client, state_id)`;
//! a lock stateid is one row per (client, lock-owner, file) in `Locks`, keyed the same way
//! and holding every range that lock-owner has on the file. State ids come from one counter
//! (first id 1) shared by opens and locks, so an id names at most one of them. Both have a
//! by-file index in `Meta` (`crate::keys`), so a conflict check reads the states of one
//! file, never every open in the system. Every path that deletes a row deletes its index row
//! in the same entry, including client expiry, DESTROY_CLIENTID and reboot (`clients`).
//!
//! # Share reservations (RFC 8881 §9.7)
//!
//! `access` is a non-empty subset of READ|WRITE, `deny` a subset of READ|WRITE. An OPEN is
//! refused with [`NsError::ShareDenied`] when its access intersects the deny of an open of the
//! same file by another open-owner, or its deny intersects such an open's access. Open-owners
//! are per client: two owners of one client conflict like two clients do. An OPEN by an
//! open-owner that already has the file open upgrades that open: the union of the bits, the
//! same state id, `seqid + 1`. OPEN_DOWNGRADE must name a subset of the current bits
//! (else [`NsError::Invalid`]) and also bumps `seqid`.
//!
//! # Byte-range locks (RFC 8881 §9.1–9.5, POSIX semantics)
//!
//! Ranges are `offset..offset+length`; `length == u64::MAX` runs to end of file. A zero
//! length, or any other length with `offset + length > u64::MAX`, is [`NsError::Invalid`]
//! (RFC 8881 §18.10.3), so only a lock to EOF covers byte `u64::MAX`. A range conflicts with another
//! lock-owner's overlapping range when either is a write lock; the first conflict in
//! (state id, offset) order is reported in [`NsError::LockDenied`]. Within one lock-owner
//! there are no conflicts: a new lock replaces whatever kind the owner held on those bytes
//! (upgrade or downgrade), splitting its ranges at the edges, and adjacent ranges of the same
//! kind merge, as `fcntl(F_SETLK)` does. LOCKU removes bytes, splitting as needed; unlocking
//! bytes that are not locked succeeds. Each LOCK/LOCKU bumps the lock stateid's `seqid`.
//! The open a lock-owner was tied to must allow the kind: write locks need WRITE access,
//! read locks READ access ([`NsError::OpenMode`], as the Linux server does).
//! A lock stateid whose ranges are all released stays valid until FREE_STATEID or until its
//! open is closed; CLOSE of an open whose lock-owners still hold ranges is refused with
//! [`NsError::LocksHeld`].
//!
//! # Clients
//!
//! Every command names the client; an unknown client, or one whose lease ran out (even if the
//! sweeper has not removed it yet), gets [`NsError::NoSuchClient`]. A state id of another
//! client is [`NsError::BadStateId`], as an unknown one is. A command that succeeds is proof
//! of life and renews the client's lease, as any NFS operation carrying the client id does.

use crate::command::{Locker, Reply};
use crate::error::{MetaError, NsError};
use crate::keys;
use crate::kv::{KvRead, Table, Txn};
use crate::nfs_state::{
    ClientRecord, LockKind, LockRange, LockState, OpenState, SHARE_ACCESS_READ, SHARE_ACCESS_WRITE,
    SHARE_DENY_READ, SHARE_DENY_WRITE, ShareMode,
};
use crate::types::{FileType, FsId, InodeId};

use super::rows::{self, Res, Stamp};

/// RFC 8881 `NFS4_OPAQUE_LIMIT`, for open-owners and lock-owners.
const OWNER_MAX_BYTES: usize = 1024;

const ACCESS_BITS: u32 = SHARE_ACCESS_READ | SHARE_ACCESS_WRITE;
const DENY_BITS: u32 = SHARE_DENY_READ | SHARE_DENY_WRITE;

fn validate_owner(owner: &[u8]) -> Res<()> {
    if owner.len() > OWNER_MAX_BYTES {
        return Err(NsError::Invalid("owner longer than 1024 bytes".into()).into());
    }
    Ok(())
}

fn validate_share(access: u32, deny: u32) -> Res<()> {
    if access == 0 || access & !ACCESS_BITS != 0 {
        return Err(NsError::Invalid(format!("share access {access:#x}")).into());
    }
    if deny & !DENY_BITS != 0 {
        return Err(NsError::Invalid(format!("share deny {deny:#x}")).into());
    }
    Ok(())
}

/// `offset`/`length` as an inclusive byte range.
fn byte_range(offset: u64, length: u64) -> Res<(u64, u64)> {
    if length == 0 {
        return Err(NsError::Invalid("lock length 0".into()).into());
    }
    if length == u64::MAX {
        return Ok((offset, u64::MAX));
    }
    // RFC 8881 §18.10.3: unless the length is all ones, `offset + length` must fit in 64
    // bits, so only a lock to EOF covers the last byte.
    let end = offset
        .checked_add(length)
        .ok_or_else(|| NsError::Invalid("lock offset + length exceeds 2^64 - 1".into()))?;
    Ok((offset, end - 1))
}

/// The client's record if it exists and its lease has not run out at `now`.
fn live_client<K: KvRead + ?Sized>(kv: &K, stamp: Stamp, client: u64) -> Res<ClientRecord> {
    let record: ClientRecord = rows::get(kv, Table::Clients, &keys::client_by_id(client))?
        .ok_or(NsError::NoSuchClient(client))?;
    if record.lease_expired(stamp.now) {
        return Err(NsError::NoSuchClient(client).into());
    }
    Ok(record)
}

fn renew<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, stamp: Stamp, mut record: ClientRecord) {
    record.last_renewed = stamp.now;
    rows::put(
        txn,
        Table::Clients,
        keys::client_by_id(record.client),
        &record,
    );
}

fn index_corrupt(table: Table, what: &str) -> MetaError {
    MetaError::Corrupt {
        table: table.name(),
        reason: what.to_string(),
    }
}

/// Every open of one file, in state id order.
fn opens_of_file<K: KvRead + ?Sized>(kv: &K, fs: FsId, ino: InodeId) -> Res<Vec<OpenState>> {
    rows_of_file(kv, &keys::open_by_file_prefix(fs, ino), Table::Opens)
}

/// Every lock stateid of one file, in state id order.
fn locks_of_file<K: KvRead + ?Sized>(kv: &K, fs: FsId, ino: InodeId) -> Res<Vec<LockState>> {
    rows_of_file(kv, &keys::lock_by_file_prefix(fs, ino), Table::Locks)
}

/// Follows a by-file index (`prefix` in the Meta table, values = client ids) to the rows of
/// `table` it names, keyed by `(client, state id)`.
fn rows_of_file<K: KvRead + ?Sized, T: serde::de::DeserializeOwned>(
    kv: &K,
    prefix: &[u8],
    table: Table,
) -> Res<Vec<T>> {
    let end = keys::prefix_end(prefix);
    let index: Vec<(Vec<u8>, u64)> = rows::scan_all(kv, Table::Meta, prefix, end.as_deref())?;
    let mut out = Vec::with_capacity(index.len());
    for (key, client) in index {
        let id = keys::state_id_of_by_file(&key)
            .ok_or_else(|| index_corrupt(Table::Meta, "short by-file index key"))?;
        let row = rows::get(kv, table, &keys::client_state(client, id))?
            .ok_or_else(|| index_corrupt(table, "by-file index names a missing row"))?;
        out.push(row);
    }
    Ok(out)
}

fn load_open<K: KvRead + ?Sized>(kv: &K, client: u64, state_id: u64) -> Res<OpenState> {
    rows::get(kv, Table::Opens, &keys::client_state(client, state_id))?
        .ok_or_else(|| NsError::BadStateId(state_id).into())
}

fn load_lock<K: KvRead + ?Sized>(kv: &K, client: u64, state_id: u64) -> Res<LockState> {
    rows::get(kv, Table::Locks, &keys::client_state(client, state_id))?
        .ok_or_else(|| NsError::BadStateId(state_id).into())
}

pub(super) fn put_open<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, open: &OpenState) {
    rows::put(
        txn,
        Table::Opens,
        keys::client_state(open.client, open.state_id),
        open,
    );
    rows::put(
        txn,
        Table::Meta,
        keys::open_by_file(open.fs, open.ino, open.state_id),
        &open.client,
    );
}

pub(super) fn put_lock<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, lock: &LockState) {
    rows::put(
        txn,
        Table::Locks,
        keys::client_state(lock.client, lock.state_id),
        lock,
    );
    rows::put(
        txn,
        Table::Meta,
        keys::lock_by_file(lock.fs, lock.ino, lock.state_id),
        &lock.client,
    );
}

fn delete_open<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, open: &OpenState) {
    txn.delete(Table::Opens, keys::client_state(open.client, open.state_id));
    txn.delete(
        Table::Meta,
        keys::open_by_file(open.fs, open.ino, open.state_id),
    );
}

fn delete_lock<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, lock: &LockState) {
    txn.delete(Table::Locks, keys::client_state(lock.client, lock.state_id));
    txn.delete(
        Table::Meta,
        keys::lock_by_file(lock.fs, lock.ino, lock.state_id),
    );
}

/// Drops every open and lock of `client` with their index rows (expiry, destroy, reboot).
pub(super) fn drop_client_state<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, client: u64) -> Res<()> {
    let prefix = keys::client_state_prefix(client);
    let end = keys::prefix_end(&prefix);
    let opens: Vec<(Vec<u8>, OpenState)> =
        rows::scan_all(txn, Table::Opens, &prefix, end.as_deref())?;
    for (_, open) in opens {
        delete_open(txn, &open);
    }
    let locks: Vec<(Vec<u8>, LockState)> =
        rows::scan_all(txn, Table::Locks, &prefix, end.as_deref())?;
    for (_, lock) in locks {
        delete_lock(txn, &lock);
    }
    Ok(())
}

fn next_seqid(seqid: u32) -> u32 {
    // RFC 8881 §8.2.2: seqid 0 is reserved for "current", so the counter wraps to 1.
    seqid.checked_add(1).unwrap_or(1)
}

fn share_conflict(a: ShareMode, b: ShareMode) -> bool {
    a.access & b.deny != 0 || a.deny & b.access != 0
}

pub(super) struct OpenArgs<'a> {
    pub fs: FsId,
    pub ino: InodeId,
    pub client: u64,
    pub owner: &'a [u8],
    pub access: u32,
    pub deny: u32,
}

pub(super) fn open<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    args: OpenArgs<'_>,
) -> Res<Reply> {
    validate_owner(args.owner)?;
    validate_share(args.access, args.deny)?;
    let record = live_client(txn, stamp, args.client)?;
    let inode = rows::handle(txn, args.fs, args.ino)?;
    match inode.kind {
        FileType::File => {}
        FileType::Dir => return Err(NsError::IsDir.into()),
        FileType::Symlink => {
            return Err(NsError::Invalid("cannot open a symbolic link".into()).into());
        }
        // A FIFO or device is opened on the client, never through the server's data path.
        FileType::Fifo | FileType::Socket | FileType::CharDev | FileType::BlockDev => {
            return Err(NsError::Invalid("cannot open a special file".into()).into());
        }
    }
    let wanted = ShareMode {
        access: args.access,
        deny: args.deny,
    };
    let mut mine = None;
    for other in opens_of_file(txn, args.fs, args.ino)? {
        if other.client == args.client && other.owner == args.owner {
            mine = Some(other);
        } else if share_conflict(wanted, other.share) {
            return Err(NsError::ShareDenied.into());
        }
    }
    let open = match mine {
        Some(mut open) => {
            open.share.access |= wanted.access;
            open.share.deny |= wanted.deny;
            open.seqid = next_seqid(open.seqid);
            open
        }
        None => OpenState {
            client: args.client,
            owner: args.owner.to_vec(),
            fs: args.fs,
            ino: args.ino,
            share: wanted,
            state_id: rows::take_counter(txn, keys::next_state_id(), 1)?,
            seqid: 1,
        },
    };
    put_open(txn, &open);
    renew(txn, stamp, record);
    Ok(Reply::Open(open))
}

/// The stateid's seqid as sent against the state's current one; 0 means "current".
fn check_seqid(state_id: u64, current: u32, sent: u32) -> Res<()> {
    if sent == 0 || sent == current {
        Ok(())
    } else if sent < current {
        Err(NsError::OldStateId(state_id).into())
    } else {
        Err(NsError::BadStateId(state_id).into())
    }
}

pub(super) fn open_downgrade<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    client: u64,
    state_id: u64,
    seqid: u32,
    share: ShareMode,
) -> Res<Reply> {
    validate_share(share.access, share.deny)?;
    let record = live_client(txn, stamp, client)?;
    let mut open = load_open(txn, client, state_id)?;
    check_seqid(state_id, open.seqid, seqid)?;
    if share.access & !open.share.access != 0 || share.deny & !open.share.deny != 0 {
        return Err(NsError::Invalid("downgrade must not add share bits".into()).into());
    }
    open.share = share;
    open.seqid = next_seqid(open.seqid);
    put_open(txn, &open);
    renew(txn, stamp, record);
    Ok(Reply::Open(open))
}

pub(super) fn close<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    client: u64,
    state_id: u64,
) -> Res<Reply> {
    let record = live_client(txn, stamp, client)?;
    let open = load_open(txn, client, state_id)?;
    let tied: Vec<LockState> = locks_of_file(txn, open.fs, open.ino)?
        .into_iter()
        .filter(|l| l.client == client && l.open_state_id == state_id)
        .collect();
    if tied.iter().any(|l| !l.ranges.is_empty()) {
        return Err(NsError::LocksHeld.into());
    }
    // Lock stateids without ranges die with the open they were created through.
    for lock in &tied {
        delete_lock(txn, lock);
    }
    delete_open(txn, &open);
    renew(txn, stamp, record);
    Ok(Reply::Done)
}

/// The first range of another lock-owner that conflicts with `kind` on `first..=last`.
fn first_conflict(
    locks: &[LockState],
    client: u64,
    owner: &[u8],
    kind: LockKind,
    first: u64,
    last: u64,
) -> Option<NsError> {
    locks
        .iter()
        .filter(|l| !(l.client == client && l.owner == owner))
        .flat_map(|l| l.ranges.iter().map(move |r| (l, r)))
        .find(|(_, r)| {
            r.overlaps(first, last) && (kind == LockKind::Write || r.kind == LockKind::Write)
        })
        .map(|(l, r)| NsError::LockDenied {
            client: l.client,
            owner: l.owner.clone(),
            kind: r.kind,
            offset: r.offset(),
            length: r.length(),
        })
}

/// Removes `first..=last` from `ranges`, splitting a range that straddles either edge.
fn cut(ranges: &[LockRange], first: u64, last: u64) -> Vec<LockRange> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for r in ranges {
        if !r.overlaps(first, last) {
            out.push(*r);
            continue;
        }
        if r.first < first {
            out.push(LockRange {
                last: first - 1,
                ..*r
            });
        }
        if r.last > last {
            out.push(LockRange {
                first: last + 1,
                ..*r
            });
        }
    }
    out
}

/// Sorts and merges touching ranges of the same kind (the invariant of [`LockState`]).
fn normalize(mut ranges: Vec<LockRange>) -> Vec<LockRange> {
    ranges.sort_by_key(|r| r.first);
    let mut out: Vec<LockRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(prev) if prev.kind == r.kind && prev.last.checked_add(1) == Some(r.first) => {
                prev.last = r.last;
            }
            _ => out.push(r),
        }
    }
    out
}

fn check_open_mode(open: &OpenState, kind: LockKind) -> Res<()> {
    let needed = match kind {
        LockKind::Read => SHARE_ACCESS_READ,
        LockKind::Write => SHARE_ACCESS_WRITE,
    };
    if open.share.access & needed == 0 {
        return Err(NsError::OpenMode.into());
    }
    Ok(())
}

pub(super) struct LockArgs<'a> {
    pub client: u64,
    pub locker: &'a Locker,
    pub kind: LockKind,
    pub offset: u64,
    pub length: u64,
}

pub(super) fn lock<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    args: LockArgs<'_>,
) -> Res<Reply> {
    let (first, last) = byte_range(args.offset, args.length)?;
    if let Locker::New { lock_owner, .. } = args.locker {
        validate_owner(lock_owner)?;
    }
    let record = live_client(txn, stamp, args.client)?;
    let (mut state, locks) = match args.locker {
        Locker::Existing { lock_state_id } => {
            let state = load_lock(txn, args.client, *lock_state_id)?;
            // CLOSE removes the open's lock stateids, so a missing open is corruption.
            let open_key = keys::client_state(args.client, state.open_state_id);
            let open: OpenState = rows::get(txn, Table::Opens, &open_key)?
                .ok_or_else(|| index_corrupt(Table::Locks, "a lock stateid outlived its open"))?;
            check_open_mode(&open, args.kind)?;
            let locks = locks_of_file(txn, state.fs, state.ino)?;
            (state, locks)
        }
        Locker::New {
            open_state_id,
            lock_owner,
        } => {
            let open = load_open(txn, args.client, *open_state_id)?;
            check_open_mode(&open, args.kind)?;
            let locks = locks_of_file(txn, open.fs, open.ino)?;
            let known = locks
                .iter()
                .find(|l| l.client == args.client && &l.owner == lock_owner)
                .cloned();
            let state = match known {
                Some(state) => state,
                None => LockState {
                    client: args.client,
                    owner: lock_owner.clone(),
                    fs: open.fs,
                    ino: open.ino,
                    open_state_id: *open_state_id,
                    state_id: rows::take_counter(txn, keys::next_state_id(), 1)?,
                    seqid: 0,
                    ranges: Vec::new(),
                },
            };
            (state, locks)
        }
    };
    if let Some(denied) = first_conflict(&locks, args.client, &state.owner, args.kind, first, last)
    {
        return Err(denied.into());
    }
    let mut ranges = cut(&state.ranges, first, last);
    ranges.push(LockRange {
        kind: args.kind,
        first,
        last,
    });
    state.ranges = normalize(ranges);
    state.seqid = next_seqid(state.seqid);
    put_lock(txn, &state);
    renew(txn, stamp, record);
    Ok(Reply::Lock(state))
}

pub(super) fn unlock<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    client: u64,
    lock_state_id: u64,
    offset: u64,
    length: u64,
) -> Res<Reply> {
    let (first, last) = byte_range(offset, length)?;
    let record = live_client(txn, stamp, client)?;
    let mut state = load_lock(txn, client, lock_state_id)?;
    state.ranges = cut(&state.ranges, first, last);
    state.seqid = next_seqid(state.seqid);
    put_lock(txn, &state);
    renew(txn, stamp, record);
    Ok(Reply::Lock(state))
}

pub(super) fn free_state_id<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    client: u64,
    state_id: u64,
) -> Res<Reply> {
    let record = live_client(txn, stamp, client)?;
    if rows::get::<OpenState, _>(txn, Table::Opens, &keys::client_state(client, state_id))?
        .is_some()
    {
        // RFC 8881 §18.38.3: an open stateid is freed by CLOSE, not FREE_STATEID.
        return Err(NsError::LocksHeld.into());
    }
    let lock = load_lock(txn, client, state_id)?;
    if !lock.ranges.is_empty() {
        return Err(NsError::LocksHeld.into());
    }
    delete_lock(txn, &lock);
    renew(txn, stamp, record);
    Ok(Reply::Done)
}

pub(super) struct LockTestArgs<'a> {
    pub fs: FsId,
    pub ino: InodeId,
    pub client: u64,
    pub lock_owner: &'a [u8],
    pub kind: LockKind,
    pub offset: u64,
    pub length: u64,
}

/// LOCKT. Reads have no stamp, so the client only has to exist: its lease is judged by
/// the sweeper, and a test changes nothing that an expired client could keep.
pub(super) fn lock_test<K: KvRead + ?Sized>(kv: &K, args: LockTestArgs<'_>) -> Res<()> {
    let (first, last) = byte_range(args.offset, args.length)?;
    validate_owner(args.lock_owner)?;
    rows::get::<ClientRecord, _>(kv, Table::Clients, &keys::client_by_id(args.client))?
        .ok_or(NsError::NoSuchClient(args.client))?;
    rows::handle(kv, args.fs, args.ino)?;
    let locks = locks_of_file(kv, args.fs, args.ino)?;
    match first_conflict(&locks, args.client, args.lock_owner, args.kind, first, last) {
        Some(denied) => Err(denied.into()),
        None => Ok(()),
    }
}

/// TEST_STATEID: whether each id names an open or a lock of `client`.
pub(super) fn test_state_ids<K: KvRead + ?Sized>(
    kv: &K,
    client: u64,
    state_ids: &[u64],
) -> Res<Vec<bool>> {
    let mut out = Vec::with_capacity(state_ids.len());
    for &id in state_ids {
        let key = keys::client_state(client, id);
        let known = kv.get(Table::Opens, &key)?.is_some() || kv.get(Table::Locks, &key)?.is_some();
        out.push(known);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: LockKind, first: u64, last: u64) -> LockRange {
        LockRange { kind, first, last }
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range(0, u64::MAX).ok(), Some((0, u64::MAX)));
        assert_eq!(byte_range(10, u64::MAX).ok(), Some((10, u64::MAX)));
        assert_eq!(byte_range(5, 10).ok(), Some((5, 14)));
        // `offset + length == u64::MAX` is the largest bounded range.
        assert_eq!(byte_range(1, u64::MAX - 1).ok(), Some((1, u64::MAX - 1)));
        assert_eq!(
            byte_range(u64::MAX - 1, 1).ok(),
            Some((u64::MAX - 1, u64::MAX - 1))
        );
        assert!(byte_range(u64::MAX, 1).is_err());
        assert!(byte_range(2, u64::MAX - 1).is_err());
        assert!(byte_range(0, 0).is_err());
    }

    #[test]
    fn cut_splits_and_normalize_merges() {
        use LockKind::{Read, Write};
        let held = vec![r(Read, 0, 99)];
        assert_eq!(cut(&held, 10, 19), vec![r(Read, 0, 9), r(Read, 20, 99)]);
        assert_eq!(cut(&held, 0, 99), vec![]);
        assert_eq!(cut(&held, 50, u64::MAX), vec![r(Read, 0, 49)]);
        assert_eq!(
            cut(&[r(Write, 0, u64::MAX)], 0, 0),
            vec![r(Write, 1, u64::MAX)]
        );
        assert_eq!(
            normalize(vec![r(Read, 10, 19), r(Read, 0, 9), r(Write, 20, 29)]),
            vec![r(Read, 0, 19), r(Write, 20, 29)]
        );
        assert_eq!(
            normalize(vec![r(Read, 0, 9), r(Read, 11, 19)]),
            vec![r(Read, 0, 9), r(Read, 11, 19)]
        );
    }

    #[test]
    fn share_conflicts_go_both_ways() {
        let m = |access, deny| ShareMode { access, deny };
        assert!(share_conflict(m(1, 0), m(3, 1)));
        assert!(share_conflict(m(3, 1), m(1, 0)));
        assert!(!share_conflict(m(1, 2), m(1, 2)));
        assert!(share_conflict(m(2, 0), m(1, 2)));
        assert!(!share_conflict(m(3, 0), m(3, 0)));
    }
}
