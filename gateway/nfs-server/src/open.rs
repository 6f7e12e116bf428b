//! Open state (RFC 8881 §9): share reservations and their stateids.
//!
//! Behind [`OpenStore`] so it can later move to the metadata cluster, which already has Open
//! and Close commands with the same rules. One open stateid exists per (client, open-owner,
//! file); a repeated OPEN by the same owner ORs its access/deny bits into it and bumps the
//! seqid. Share checks follow §9.7: an OPEN fails with SHARE_DENIED when its access meets
//! another owner's deny, or its deny meets another owner's access. The `other` field is a
//! per-boot prefix plus a counter, so stateids from an earlier server instance are unknown.
//!
//! Byte-range locks (§12) are advisory POSIX locks: one lock stateid per (client, lock-owner,
//! file), derived from an open; a new range replaces the owner's overlapping ranges, and
//! another owner's overlapping range conflicts when either is a write lock. A lock stateid
//! is also good for I/O with its open's access. CLOSE with ranges still held is LOCKS_HELD.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use bucketfs_nfs_wire::nfs::ops::{
    LockDenied, LockError, LockType, Locker, OPEN4_SHARE_ACCESS_READ, OPEN4_SHARE_ACCESS_WRITE,
};
use bucketfs_nfs_wire::nfs::types::Opaque;
use bucketfs_nfs_wire::nfs::{NfsStatus, StateId, StateOwner};

/// Open state for the whole server.
#[async_trait]
pub trait OpenStore: Send + Sync + 'static {
    /// Opens `fh` for (`clientid`, `owner`) or upgrades that owner's existing open.
    async fn open(
        &self,
        clientid: u64,
        owner: &[u8],
        fh: &[u8],
        access: u32,
        deny: u32,
    ) -> Result<StateId, NfsStatus>;
    /// Whether a CLOSE of `stateid` on `fh` by `clientid` can go ahead, checked from what this
    /// store holds without a round trip; `close` remains the authority.
    async fn check_close(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
    ) -> Result<(), NfsStatus>;
    /// Releases the open; the stateid becomes unknown.
    async fn close(&self, clientid: u64, stateid: &StateId, fh: &[u8]) -> Result<(), NfsStatus>;
    /// Narrows access/deny to a subset of what the open holds.
    async fn downgrade(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
        access: u32,
        deny: u32,
    ) -> Result<StateId, NfsStatus>;
    /// Whether `clientid` holds any open (DESTROY_CLIENTID then answers CLIENTID_BUSY).
    async fn holds_state(&self, clientid: u64) -> bool;
    /// Forgets every open of an expired client.
    async fn drop_client(&self, clientid: u64);
    /// Checks a stateid presented for I/O on `fh` by `clientid`: the special anonymous stateid always
    /// passes, the READ bypass only for reads; an open stateid must be current and grant
    /// `access`.
    async fn check_io(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
        access: u32,
    ) -> Result<(), NfsStatus>;
    /// TEST_STATEID's per-stateid answer.
    async fn test(&self, clientid: u64, stateid: &StateId) -> NfsStatus;
    /// FREE_STATEID (RFC 8881 §18.38): only a lock stateid without ranges can be freed; an
    /// open stateid still has its open, so it is LOCKS_HELD until CLOSE.
    async fn free(&self, clientid: u64, stateid: &StateId) -> NfsStatus;
    /// LOCK: `write` selects a write lock; `length` u64::MAX means "to the end".
    async fn lock(
        &self,
        clientid: u64,
        fh: &[u8],
        locker: &Locker,
        write: bool,
        offset: u64,
        length: u64,
    ) -> Result<StateId, LockError>;
    /// LOCKT: would `owner` get this lock?
    async fn lockt(
        &self,
        clientid: u64,
        fh: &[u8],
        owner: &[u8],
        write: bool,
        offset: u64,
        length: u64,
    ) -> Result<(), LockError>;
    /// LOCKU: releases a range; the lock stateid stays until FREE_STATEID or CLOSE.
    async fn locku(
        &self,
        clientid: u64,
        fh: &[u8],
        stateid: &StateId,
        offset: u64,
        length: u64,
    ) -> Result<StateId, NfsStatus>;
}

#[derive(Debug, Clone)]
struct Open {
    clientid: u64,
    owner: Vec<u8>,
    fh: Vec<u8>,
    seqid: u32,
    access: u32,
    deny: u32,
}

/// A locked range `[start, end)`; `end` u64::MAX reaches the end of any file.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
    write: bool,
}

#[derive(Debug, Clone)]
struct LockState {
    clientid: u64,
    owner: Vec<u8>,
    fh: Vec<u8>,
    /// The open this lock-owner's state derives from.
    open: [u8; 12],
    seqid: u32,
    ranges: Vec<Range>,
}

#[derive(Debug, Default)]
struct Inner {
    opens: HashMap<[u8; 12], Open>,
    locks: HashMap<[u8; 12], LockState>,
    next: u64,
}

/// In-memory [`OpenStore`].
#[derive(Debug)]
pub struct MemOpenStore {
    boot: u32,
    inner: Mutex<Inner>,
}

impl MemOpenStore {
    /// `boot` distinguishes this instance's stateids from an earlier one's; it must not be 0
    /// or `u32::MAX`, whose `other` prefixes belong to the special stateids.
    pub fn new(boot: u32) -> Self {
        Self {
            boot: boot.clamp(1, u32::MAX - 1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("open state lock poisoned")
    }

    fn alloc(&self, inner: &mut Inner) -> [u8; 12] {
        inner.next += 1;
        let mut other = [0u8; 12];
        other[..4].copy_from_slice(&self.boot.to_be_bytes());
        other[4..].copy_from_slice(&inner.next.to_be_bytes());
        other
    }
}

/// OLD_STATEID for an earlier seqid, BAD_STATEID for a later one; 0 means "current".
fn check_seqid(current: u32, presented: u32) -> Result<(), NfsStatus> {
    if presented == 0 || presented == current {
        Ok(())
    } else if presented < current {
        Err(NfsStatus::OldStateId)
    } else {
        Err(NfsStatus::BadStateId)
    }
}

fn bump(seqid: u32) -> u32 {
    seqid.wrapping_add(1).max(1)
}

fn range(offset: u64, length: u64) -> Result<(u64, u64), NfsStatus> {
    match length {
        0 => Err(NfsStatus::Inval),
        u64::MAX => Ok((offset, u64::MAX)),
        _ => Ok((offset, offset.checked_add(length).ok_or(NfsStatus::Inval)?)),
    }
}

/// The first lock of another owner on `fh` that conflicts with `[start, end)`.
fn conflict(
    inner: &Inner,
    clientid: u64,
    owner: &[u8],
    fh: &[u8],
    (start, end): (u64, u64),
    write: bool,
) -> Option<LockDenied> {
    inner
        .locks
        .values()
        .filter(|l| l.fh == fh && !(l.clientid == clientid && l.owner == owner))
        .find_map(|l| {
            let r = l
                .ranges
                .iter()
                .find(|r| r.start < end && start < r.end && (write || r.write))?;
            Some(LockDenied {
                offset: r.start,
                length: if r.end == u64::MAX {
                    u64::MAX
                } else {
                    r.end - r.start
                },
                locktype: if r.write {
                    LockType::Write
                } else {
                    LockType::Read
                },
                owner: StateOwner {
                    clientid: l.clientid,
                    owner: Opaque(l.owner.clone()),
                },
            })
        })
}

/// `ranges` without `[start, end)`.
fn subtract(ranges: &[Range], start: u64, end: u64) -> Vec<Range> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for r in ranges {
        if r.end <= start || end <= r.start {
            out.push(*r);
            continue;
        }
        if r.start < start {
            out.push(Range { end: start, ..*r });
        }
        if end < r.end {
            out.push(Range { start: end, ..*r });
        }
    }
    out
}

fn special(s: &StateId) -> bool {
    s.other == [0; 12] || s.other == [0xff; 12]
}

/// The open named by `stateid`; OLD_STATEID for an earlier seqid, BAD_STATEID for a later
/// one or an unknown `other`. Seqid 0 means "the current one" (RFC 8881 §8.2.2).
fn lookup<'a>(inner: &'a mut Inner, stateid: &StateId) -> Result<&'a mut Open, NfsStatus> {
    let open = inner
        .opens
        .get_mut(&stateid.other)
        .ok_or(NfsStatus::BadStateId)?;
    if stateid.seqid != 0 && stateid.seqid != open.seqid {
        return Err(if stateid.seqid < open.seqid {
            NfsStatus::OldStateId
        } else {
            NfsStatus::BadStateId
        });
    }
    Ok(open)
}

#[async_trait]
impl OpenStore for MemOpenStore {
    async fn open(
        &self,
        clientid: u64,
        owner: &[u8],
        fh: &[u8],
        access: u32,
        deny: u32,
    ) -> Result<StateId, NfsStatus> {
        let mut inner = self.lock();
        let conflict = inner.opens.values().any(|o| {
            o.fh == fh
                && !(o.clientid == clientid && o.owner == owner)
                && (access & o.deny != 0 || deny & o.access != 0)
        });
        if conflict {
            return Err(NfsStatus::ShareDenied);
        }
        let existing = inner
            .opens
            .iter_mut()
            .find(|(_, o)| o.clientid == clientid && o.owner == owner && o.fh == fh);
        if let Some((other, o)) = existing {
            o.access |= access;
            o.deny |= deny;
            o.seqid = o.seqid.wrapping_add(1).max(1);
            return Ok(StateId {
                seqid: o.seqid,
                other: *other,
            });
        }
        let other = self.alloc(&mut inner);
        inner.opens.insert(
            other,
            Open {
                clientid,
                owner: owner.to_vec(),
                fh: fh.to_vec(),
                seqid: 1,
                access,
                deny,
            },
        );
        Ok(StateId { seqid: 1, other })
    }

    async fn check_close(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
    ) -> Result<(), NfsStatus> {
        let mut inner = self.lock();
        let open = lookup(&mut inner, stateid)?;
        if open.fh != fh || open.clientid != clientid {
            return Err(NfsStatus::BadStateId);
        }
        Ok(())
    }

    async fn close(&self, clientid: u64, stateid: &StateId, fh: &[u8]) -> Result<(), NfsStatus> {
        let mut inner = self.lock();
        let open = lookup(&mut inner, stateid)?;
        if open.fh != fh || open.clientid != clientid {
            return Err(NfsStatus::BadStateId);
        }
        let other = stateid.other;
        if inner
            .locks
            .values()
            .any(|l| l.open == other && !l.ranges.is_empty())
        {
            return Err(NfsStatus::LocksHeld);
        }
        inner.locks.retain(|_, l| l.open != other);
        inner.opens.remove(&other);
        Ok(())
    }

    async fn downgrade(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
        access: u32,
        deny: u32,
    ) -> Result<StateId, NfsStatus> {
        let mut inner = self.lock();
        let open = lookup(&mut inner, stateid)?;
        if open.fh != fh || open.clientid != clientid {
            return Err(NfsStatus::BadStateId);
        }
        if access == 0 || access & !open.access != 0 || deny & !open.deny != 0 {
            return Err(NfsStatus::Inval);
        }
        open.access = access;
        open.deny = deny;
        open.seqid = open.seqid.wrapping_add(1).max(1);
        Ok(StateId {
            seqid: open.seqid,
            other: stateid.other,
        })
    }

    async fn holds_state(&self, clientid: u64) -> bool {
        let inner = self.lock();
        inner.opens.values().any(|o| o.clientid == clientid)
            || inner.locks.values().any(|l| l.clientid == clientid)
    }

    async fn drop_client(&self, clientid: u64) {
        let mut inner = self.lock();
        inner.opens.retain(|_, o| o.clientid != clientid);
        inner.locks.retain(|_, l| l.clientid != clientid);
    }

    async fn check_io(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
        access: u32,
    ) -> Result<(), NfsStatus> {
        if *stateid == StateId::ANONYMOUS
            || (*stateid == StateId::BYPASS && access == OPEN4_SHARE_ACCESS_READ)
        {
            // I/O without an open still honours other opens' deny modes (RFC 8881 §9.7).
            let denied = self
                .lock()
                .opens
                .values()
                .any(|o| o.fh == fh && o.deny & access != 0);
            return if denied {
                Err(NfsStatus::Locked)
            } else {
                Ok(())
            };
        }
        if *stateid == StateId::BYPASS {
            return Err(NfsStatus::BadStateId);
        }
        if special(stateid) {
            return Err(NfsStatus::BadStateId);
        }
        let mut inner = self.lock();
        let lock = inner
            .locks
            .get(&stateid.other)
            .map(|l| (l.seqid, l.clientid, l.fh == fh, l.open));
        let open = match lock {
            Some((seqid, owner_client, same_fh, open)) => {
                check_seqid(seqid, stateid.seqid)?;
                if owner_client != clientid || !same_fh {
                    return Err(NfsStatus::BadStateId);
                }
                inner.opens.get(&open).ok_or(NfsStatus::BadStateId)?
            }
            None => lookup(&mut inner, stateid)?,
        };
        // Another client's stateid is as good as unknown to this one.
        if open.fh != fh || open.clientid != clientid {
            return Err(NfsStatus::BadStateId);
        }
        if open.access & access == 0 {
            return Err(NfsStatus::OpenMode);
        }
        Ok(())
    }

    async fn test(&self, clientid: u64, stateid: &StateId) -> NfsStatus {
        if special(stateid) {
            return NfsStatus::BadStateId;
        }
        let mut inner = self.lock();
        if let Some(l) = inner.locks.get(&stateid.other) {
            return match check_seqid(l.seqid, stateid.seqid) {
                Ok(()) if l.clientid == clientid => NfsStatus::Ok,
                Ok(()) => NfsStatus::BadStateId,
                Err(s) => s,
            };
        }
        match lookup(&mut inner, stateid) {
            Ok(open) if open.clientid == clientid => NfsStatus::Ok,
            Ok(_) => NfsStatus::BadStateId,
            Err(s) => s,
        }
    }

    async fn free(&self, clientid: u64, stateid: &StateId) -> NfsStatus {
        match self.test(clientid, stateid).await {
            NfsStatus::Ok => {
                let mut inner = self.lock();
                match inner.locks.get(&stateid.other) {
                    Some(l) if l.ranges.is_empty() => {
                        inner.locks.remove(&stateid.other);
                        NfsStatus::Ok
                    }
                    // Held ranges, or an open (freed only by CLOSE).
                    _ => NfsStatus::LocksHeld,
                }
            }
            s => s,
        }
    }

    async fn lock(
        &self,
        clientid: u64,
        fh: &[u8],
        locker: &Locker,
        write: bool,
        offset: u64,
        length: u64,
    ) -> Result<StateId, LockError> {
        let span = range(offset, length).map_err(LockError::Status)?;
        let mut inner = self.lock();
        let (owner, existing, open_other) = match locker {
            Locker::New(n) => {
                let open = lookup(&mut inner, &n.open_stateid).map_err(LockError::Status)?;
                if open.clientid != clientid || open.fh != fh {
                    return Err(LockError::Status(NfsStatus::BadStateId));
                }
                let need = if write {
                    OPEN4_SHARE_ACCESS_WRITE
                } else {
                    OPEN4_SHARE_ACCESS_READ
                };
                if open.access & need == 0 {
                    return Err(LockError::Status(NfsStatus::OpenMode));
                }
                let owner = n.lock_owner.owner.0.clone();
                let existing = inner
                    .locks
                    .iter()
                    .find(|(_, l)| l.clientid == clientid && l.owner == owner && l.fh == fh)
                    .map(|(other, _)| *other);
                (owner, existing, n.open_stateid.other)
            }
            Locker::Existing(e) => {
                let l = inner
                    .locks
                    .get(&e.lock_stateid.other)
                    .ok_or(LockError::Status(NfsStatus::BadStateId))?;
                check_seqid(l.seqid, e.lock_stateid.seqid).map_err(LockError::Status)?;
                if l.clientid != clientid || l.fh != fh {
                    return Err(LockError::Status(NfsStatus::BadStateId));
                }
                (l.owner.clone(), Some(e.lock_stateid.other), l.open)
            }
        };
        if let Some(denied) = conflict(&inner, clientid, &owner, fh, span, write) {
            return Err(LockError::Denied(denied));
        }
        let other = match existing {
            Some(other) => other,
            None => {
                let other = self.alloc(&mut inner);
                inner.locks.insert(
                    other,
                    LockState {
                        clientid,
                        owner,
                        fh: fh.to_vec(),
                        open: open_other,
                        seqid: 0,
                        ranges: Vec::new(),
                    },
                );
                other
            }
        };
        let l = inner
            .locks
            .get_mut(&other)
            .expect("lock state found or inserted above");
        l.ranges = subtract(&l.ranges, span.0, span.1);
        l.ranges.push(Range {
            start: span.0,
            end: span.1,
            write,
        });
        l.seqid = bump(l.seqid);
        Ok(StateId {
            seqid: l.seqid,
            other,
        })
    }

    async fn lockt(
        &self,
        clientid: u64,
        fh: &[u8],
        owner: &[u8],
        write: bool,
        offset: u64,
        length: u64,
    ) -> Result<(), LockError> {
        let span = range(offset, length).map_err(LockError::Status)?;
        match conflict(&self.lock(), clientid, owner, fh, span, write) {
            Some(denied) => Err(LockError::Denied(denied)),
            None => Ok(()),
        }
    }

    async fn locku(
        &self,
        clientid: u64,
        fh: &[u8],
        stateid: &StateId,
        offset: u64,
        length: u64,
    ) -> Result<StateId, NfsStatus> {
        let (start, end) = range(offset, length)?;
        let mut inner = self.lock();
        let l = inner
            .locks
            .get_mut(&stateid.other)
            .ok_or(NfsStatus::BadStateId)?;
        check_seqid(l.seqid, stateid.seqid)?;
        if l.clientid != clientid || l.fh != fh {
            return Err(NfsStatus::BadStateId);
        }
        l.ranges = subtract(&l.ranges, start, end);
        l.seqid = bump(l.seqid);
        Ok(StateId {
            seqid: l.seqid,
            other: stateid.other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bucketfs_nfs_wire::nfs::ops::*;

    #[test]
    fn subtract_splits_and_range_rules() {
        let r = |start, end| Range {
            start,
            end,
            write: true,
        };
        let out = subtract(&[r(0, 100), r(200, u64::MAX)], 10, 250);
        let spans: Vec<(u64, u64)> = out.iter().map(|x| (x.start, x.end)).collect();
        assert_eq!(spans, vec![(0, 10), (250, u64::MAX)]);
        assert_eq!(range(5, 0), Err(NfsStatus::Inval));
        assert_eq!(range(5, u64::MAX), Ok((5, u64::MAX)));
        assert_eq!(range(u64::MAX - 1, 5), Err(NfsStatus::Inval));
    }

    #[tokio::test]
    async fn share_conflicts_upgrade_and_close() {
        let s = MemOpenStore::new(7);
        let a = s
            .open(
                1,
                b"a",
                b"f",
                OPEN4_SHARE_ACCESS_READ,
                OPEN4_SHARE_DENY_WRITE,
            )
            .await
            .unwrap();
        assert_eq!(
            s.open(1, b"b", b"f", OPEN4_SHARE_ACCESS_WRITE, 0).await,
            Err(NfsStatus::ShareDenied)
        );
        let b = s
            .open(1, b"b", b"f", OPEN4_SHARE_ACCESS_READ, 0)
            .await
            .unwrap();
        assert_ne!(a.other, b.other);
        let a2 = s
            .open(1, b"a", b"f", OPEN4_SHARE_ACCESS_WRITE, 0)
            .await
            .unwrap();
        assert_eq!((a2.seqid, a2.other), (2, a.other));
        assert_eq!(
            s.check_io(1, &a, b"f", OPEN4_SHARE_ACCESS_READ).await,
            Err(NfsStatus::OldStateId)
        );
        assert_eq!(
            s.check_io(1, &a2, b"f", OPEN4_SHARE_ACCESS_WRITE).await,
            Ok(())
        );
        assert_eq!(
            s.check_io(1, &b, b"f", OPEN4_SHARE_ACCESS_WRITE).await,
            Err(NfsStatus::OpenMode)
        );
        let d = s
            .downgrade(1, &a2, b"f", OPEN4_SHARE_ACCESS_READ, 0)
            .await
            .unwrap();
        assert_eq!(d.seqid, 3);
        assert_eq!(
            s.downgrade(1, &d, b"f", OPEN4_SHARE_ACCESS_BOTH, 0).await,
            Err(NfsStatus::Inval)
        );
        assert_eq!(
            s.check_io(2, &d, b"f", OPEN4_SHARE_ACCESS_READ).await,
            Err(NfsStatus::BadStateId)
        );
        assert_eq!(s.free(1, &d).await, NfsStatus::LocksHeld);
        assert!(s.holds_state(1).await && !s.holds_state(2).await);
        s.close(1, &d, b"f").await.unwrap();
        assert_eq!(s.test(1, &d).await, NfsStatus::BadStateId);
        s.drop_client(1).await;
        assert!(!s.holds_state(1).await);
        assert_eq!(s.test(1, &b).await, NfsStatus::BadStateId);
        assert_eq!(
            s.check_io(1, &d, b"f", OPEN4_SHARE_ACCESS_READ).await,
            Err(NfsStatus::BadStateId)
        );
        assert_eq!(
            s.check_io(1, &StateId::BYPASS, b"f", OPEN4_SHARE_ACCESS_READ)
                .await,
            Ok(())
        );
        assert_eq!(
            s.check_io(1, &StateId::BYPASS, b"f", OPEN4_SHARE_ACCESS_WRITE)
                .await,
            Err(NfsStatus::BadStateId)
        );
        s.open(
            3,
            b"c",
            b"g",
            OPEN4_SHARE_ACCESS_READ,
            OPEN4_SHARE_DENY_WRITE,
        )
        .await
        .unwrap();
        assert_eq!(
            s.check_io(1, &StateId::ANONYMOUS, b"g", OPEN4_SHARE_ACCESS_WRITE)
                .await,
            Err(NfsStatus::Locked)
        );
        assert_eq!(
            s.check_io(1, &StateId::ANONYMOUS, b"g", OPEN4_SHARE_ACCESS_READ)
                .await,
            Ok(())
        );
    }
}
