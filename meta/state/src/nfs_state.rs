//! NFSv4.1 state that must outlive any one gateway: client records with their leases, open
//! state and byte-range locks. Sessions and slot reply caches are *not* here; they are
//! gateway memory (DESIGN.md "Where state lives").
//!
//! # Lease clock rules
//!
//! The state machine has no clock. Every proposal carries `now`, stamped by the node that
//! proposed it, and lease arithmetic only ever compares such stamps:
//!
//! * A client's lease runs until `last_renewed + lease.duration`. `ExchangeClient` and
//!   `RenewLeases` set `last_renewed = now` of their proposal.
//! * Only the leader's sweeper proposes `ExpireLeases`; it removes a record only when
//!   `now > last_renewed + lease.duration + lease.skew_margin`. The margin covers the
//!   difference between the clock of the node that stamped the renewal and the clock of
//!   the (possibly newer) leader that stamps the expiry; operators must keep node clocks
//!   within it (NTP). A renewal stamped by a clock that was behind only makes the lease
//!   look shorter than it was by at most that skew, which the margin absorbs.
//! * Gateways renew on the client's behalf in batches (one `RenewLeases` entry per batch
//!   interval, well inside the lease), never one Raft write per SEQUENCE.

use serde::{Deserialize, Serialize};

use crate::types::{FsId, InodeId, Timestamp};

/// The client's `client_owner4`: its chosen identity and the boot verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientOwner {
    pub owner_id: Vec<u8>,
    pub verifier: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseConfig {
    pub duration_ms: u64,
    pub skew_margin_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The NFS `clientid4`, assigned from a counter by the state machine.
    pub client: u64,
    pub owner: ClientOwner,
    /// Incremented when the same owner comes back with a new verifier (a client reboot),
    /// which drops the old incarnation's opens and locks.
    pub incarnation: u32,
    pub lease: LeaseConfig,
    pub last_renewed: Timestamp,
    pub confirmed: bool,
}

/// What EXCHANGE_ID found under the client's owner id before it ran. The gateway needs it
/// for `EXCHGID4_FLAG_CONFIRMED_R` (set only for [`ExchangePrevious::SameVerifier`]) and to
/// know whether sessions of an earlier incarnation must be forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangePrevious {
    /// No record had this owner id: a new client id was assigned.
    New,
    /// The record existed with the same verifier: the same incarnation, state kept.
    SameVerifier,
    /// The record existed with another verifier: the client rebooted, so it kept its id,
    /// its incarnation was bumped and the old incarnation's opens and locks were dropped.
    Rebooted,
}

impl ClientRecord {
    pub fn lease_expired(&self, now: Timestamp) -> bool {
        let deadline = self.last_renewed.as_unix_nanos()
            + (self.lease.duration_ms as i128 + self.lease.skew_margin_ms as i128) * 1_000_000;
        now.as_unix_nanos() > deadline
    }
}

/// `OPEN4_SHARE_ACCESS_READ`: the open may read.
pub const SHARE_ACCESS_READ: u32 = 1;
/// `OPEN4_SHARE_ACCESS_WRITE`: the open may write.
pub const SHARE_ACCESS_WRITE: u32 = 2;
/// `OPEN4_SHARE_DENY_READ`: no other open-owner may open the file for reading.
pub const SHARE_DENY_READ: u32 = 1;
/// `OPEN4_SHARE_DENY_WRITE`: no other open-owner may open the file for writing.
pub const SHARE_DENY_WRITE: u32 = 2;

/// `OPEN4_SHARE_ACCESS_*` / `OPEN4_SHARE_DENY_*` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareMode {
    pub access: u32,
    pub deny: u32,
}

/// One open of one file by one open-owner of one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenState {
    pub client: u64,
    pub owner: Vec<u8>,
    pub fs: FsId,
    pub ino: InodeId,
    pub share: ShareMode,
    /// The stateid's `other` field is derived from this id; `seqid` from `seqid`.
    pub state_id: u64,
    pub seqid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockKind {
    Read,
    Write,
}

/// One locked byte range, `first..=last` (inclusive, so a lock to end of file, `last ==
/// u64::MAX`, needs no sentinel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRange {
    pub kind: LockKind,
    pub first: u64,
    pub last: u64,
}

impl LockRange {
    /// The NFS `offset4` of the range.
    pub fn offset(&self) -> u64 {
        self.first
    }

    /// The NFS `length4` of the range: `u64::MAX` for a range that runs to end of file.
    /// `0..=u64::MAX - 1` (only reachable by unlocking the last byte of a lock to EOF)
    /// also has length `u64::MAX` and is reported as running to EOF: `length4` cannot say
    /// otherwise.
    pub fn length(&self) -> u64 {
        if self.last == u64::MAX {
            u64::MAX
        } else {
            self.last - self.first + 1
        }
    }

    pub fn overlaps(&self, first: u64, last: u64) -> bool {
        self.first <= last && first <= self.last
    }
}

/// The lock stateid of one lock-owner on one file, with every range it holds there.
/// Ranges are sorted, never overlap, and adjacent ranges of the same kind are merged, so
/// two replicas that applied the same log hold byte-identical rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    pub client: u64,
    /// The lock-owner (`lock_owner4.owner`).
    pub owner: Vec<u8>,
    pub fs: FsId,
    pub ino: InodeId,
    /// The open the lock-owner was first tied to (`open_to_lock_owner4`); closing it while
    /// ranges are held is refused.
    pub open_state_id: u64,
    pub state_id: u64,
    pub seqid: u32,
    pub ranges: Vec<LockRange>,
}
