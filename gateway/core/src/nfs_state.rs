//! NFS client records, open state and byte-range locks in the metadata cluster (DESIGN.md
//! "Where state lives"), so that any gateway can serve any client: one that lost its gateway
//! reconnects elsewhere, gets BADSESSION, makes a new session with its clientid, and carries
//! on with its opens and locks.
//!
//! Stateids carry meta's state id: `other = [b'b', kind, 0, 0, state id (8 bytes, BE)]`,
//! with `kind` telling an open from a lock stateid. A gateway keeps the open and lock states
//! it handed out in memory to check READ/WRITE stateids without a meta round trip; a stateid
//! it has not seen (the client came from another gateway) is checked with meta once and then
//! remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bucketfs_meta_client::{ClientError, MetaClient, ReadConsistency};
use bucketfs_meta_state::command::Locker as MetaLocker;
use bucketfs_meta_state::nfs_state::{
    ClientOwner, ExchangePrevious, LeaseConfig, LockKind, LockState, OpenState,
};
use bucketfs_meta_state::types::{FsId, InodeId};
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use bucketfs_nfs_server::{ClientRegistry, OpenStore, PreviousRecord, Registered};
use bucketfs_nfs_wire::nfs::ops::{LockDenied, LockError, LockType, Locker};
use bucketfs_nfs_wire::nfs::types::{Opaque, Verifier};
use bucketfs_nfs_wire::nfs::{NfsStatus, StateId, StateOwner};

use crate::context::unexpected;
use crate::errors::meta_status;
use crate::handle::Handle;

const TAG: u8 = b'b';
const KIND_OPEN: u8 = b'O';
const KIND_LOCK: u8 = b'L';

fn stateid(kind: u8, state_id: u64, seqid: u32) -> StateId {
    let mut other = [0u8; 12];
    other[0] = TAG;
    other[1] = kind;
    other[4..].copy_from_slice(&state_id.to_be_bytes());
    StateId { seqid, other }
}

/// The kind and meta state id of a stateid this system made; `None` for anything else.
fn parse(s: &StateId) -> Option<(u8, u64)> {
    let o = &s.other;
    if o[0] != TAG || !matches!(o[1], KIND_OPEN | KIND_LOCK) || o[2] != 0 || o[3] != 0 {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&o[4..]);
    Some((o[1], u64::from_be_bytes(id)))
}

fn special(s: &StateId) -> bool {
    *s == StateId::ANONYMOUS || *s == StateId::BYPASS
}

/// Lease terms this gateway asks meta to keep for its clients.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTerms {
    pub lease: Duration,
    /// How much later than the lease meta may expire a client (clock skew between nodes).
    pub skew_margin: Duration,
}

/// [`ClientRegistry`] in the metadata cluster.
pub struct MetaRegistry {
    meta: MetaClient,
    terms: LeaseTerms,
}

impl MetaRegistry {
    pub fn new(meta: MetaClient, terms: LeaseTerms) -> Self {
        Self { meta, terms }
    }

    /// One `RenewLeases` entry for every client that renewed here since the last batch;
    /// returns the clients meta no longer knows (their leases expired).
    pub async fn renew(&self, clients: Vec<u64>) -> Result<Vec<u64>, NfsStatus> {
        if clients.is_empty() {
            return Ok(Vec::new());
        }
        let n = clients.len();
        match self.meta.write(Command::RenewLeases { clients }).await {
            Ok(Reply::Renewed { unknown, .. }) => {
                crate::metrics::lease_renewal(n);
                Ok(unknown)
            }
            Ok(other) => Err(unexpected("RenewLeases", &other)),
            Err(e) => Err(meta_status(&e)),
        }
    }
}

#[async_trait]
impl ClientRegistry for MetaRegistry {
    async fn exchange(&self, owner: &[u8], verifier: Verifier) -> Result<Registered, NfsStatus> {
        let command = Command::ExchangeClient {
            owner: ClientOwner {
                owner_id: owner.to_vec(),
                verifier: u64::from_be_bytes(verifier),
            },
            lease: LeaseConfig {
                duration_ms: self.terms.lease.as_millis() as u64,
                skew_margin_ms: self.terms.skew_margin.as_millis() as u64,
            },
        };
        match self.meta.write(command).await {
            Ok(Reply::Exchanged { record, previous }) => Ok(Registered {
                clientid: record.client,
                previous: match previous {
                    ExchangePrevious::New => PreviousRecord::New,
                    ExchangePrevious::SameVerifier => PreviousRecord::SameVerifier,
                    ExchangePrevious::Rebooted => PreviousRecord::Rebooted,
                },
            }),
            Ok(other) => Err(unexpected("ExchangeClient", &other)),
            Err(e) => Err(meta_status(&e)),
        }
    }

    async fn lookup(&self, clientid: u64) -> Result<Option<(Vec<u8>, Verifier)>, NfsStatus> {
        match self
            .meta
            .read(
                Query::GetClient { client: clientid },
                ReadConsistency::Linearizable,
            )
            .await
        {
            Ok(QueryReply::Client(record)) => Ok(Some((
                record.owner.owner_id,
                record.owner.verifier.to_be_bytes(),
            ))),
            Ok(other) => Err(unexpected("GetClient", &other)),
            Err(ClientError::Ns(NsError::NoSuchClient(_))) => Ok(None),
            Err(e) => Err(meta_status(&e)),
        }
    }

    async fn destroy(&self, clientid: u64) -> Result<(), NfsStatus> {
        match self
            .meta
            .write(Command::DestroyClient { client: clientid })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(meta_status(&e)),
        }
    }
}

/// What this gateway remembers of a stateid.
#[derive(Debug, Clone)]
struct Known {
    client: u64,
    ino: InodeId,
    seqid: u32,
    /// OPEN4_SHARE_ACCESS_* of the open (of the open the lock derives from, for locks).
    access: u32,
}

#[derive(Default)]
struct Cache {
    opens: HashMap<u64, Known>,
    locks: HashMap<u64, Known>,
}

type Serial = Arc<tokio::sync::Mutex<()>>;

/// [`OpenStore`] in the metadata cluster, for one file system.
pub struct MetaOpens {
    meta: MetaClient,
    fs: FsId,
    cache: Mutex<Cache>,
    /// OPEN, OPEN_DOWNGRADE and CLOSE of one client on one file run one at a time here, so
    /// that a CLOSE is checked against the seqid of every OPEN that meta applied before it
    /// (RFC 8881 §9.1.4.2: a CLOSE with an older seqid is OLD_STATEID, and the client retries).
    serial: Mutex<HashMap<(u64, InodeId), Serial>>,
}

fn lock_kind(write: bool) -> LockKind {
    if write {
        LockKind::Write
    } else {
        LockKind::Read
    }
}

fn lock_error(e: &ClientError) -> LockError {
    match e {
        ClientError::Ns(NsError::LockDenied {
            client,
            owner,
            kind,
            offset,
            length,
        }) => LockError::Denied(LockDenied {
            offset: *offset,
            length: *length,
            locktype: match kind {
                LockKind::Read => LockType::Read,
                LockKind::Write => LockType::Write,
            },
            owner: StateOwner {
                clientid: *client,
                owner: Opaque(owner.clone()),
            },
        }),
        other => LockError::Status(meta_status(other)),
    }
}

impl MetaOpens {
    pub fn new(meta: MetaClient, fs: FsId) -> Self {
        Self {
            meta,
            fs,
            cache: Mutex::new(Cache::default()),
            serial: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn serial(&self, client: u64, ino: InodeId) -> Serial {
        let mut serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        // Entries nobody waits on can go; the map stays as small as the opens in progress.
        if serial.len() > 1024 {
            serial.retain(|_, m| Arc::strong_count(m) > 1);
        }
        Arc::clone(serial.entry((client, ino)).or_default())
    }

    fn ino(&self, fh: &[u8]) -> Result<InodeId, NfsStatus> {
        let h = Handle::decode(fh)?;
        if h.fs != self.fs {
            return Err(NfsStatus::Stale);
        }
        Ok(h.ino)
    }

    fn remember_open(&self, open: &OpenState) -> StateId {
        self.cache().opens.insert(
            open.state_id,
            Known {
                client: open.client,
                ino: open.ino,
                seqid: open.seqid,
                access: open.share.access,
            },
        );
        stateid(KIND_OPEN, open.state_id, open.seqid)
    }

    fn remember_lock(&self, lock: &LockState) -> StateId {
        let access = self
            .cache()
            .opens
            .get(&lock.open_state_id)
            .map_or(3, |o| o.access);
        self.cache().locks.insert(
            lock.state_id,
            Known {
                client: lock.client,
                ino: lock.ino,
                seqid: lock.seqid,
                access,
            },
        );
        stateid(KIND_LOCK, lock.state_id, lock.seqid)
    }

    /// The remembered state of `s`, checked for the client, the file and the seqid (0 means
    /// "current", RFC 8881 §8.2.2).
    fn check_known(
        &self,
        client: u64,
        s: &StateId,
        ino: Option<InodeId>,
    ) -> Result<Option<(u8, u64, Known)>, NfsStatus> {
        let (kind, id) = parse(s).ok_or(NfsStatus::BadStateId)?;
        let cache = self.cache();
        let table = if kind == KIND_OPEN {
            &cache.opens
        } else {
            &cache.locks
        };
        let Some(known) = table.get(&id) else {
            return Ok(None);
        };
        if known.client != client || ino.is_some_and(|i| i != known.ino) {
            return Err(NfsStatus::BadStateId);
        }
        if s.seqid != 0 && s.seqid < known.seqid {
            return Err(NfsStatus::OldStateId);
        }
        if s.seqid > known.seqid {
            return Err(NfsStatus::BadStateId);
        }
        Ok(Some((kind, id, known.clone())))
    }

    async fn valid_in_meta(&self, client: u64, id: u64) -> Result<bool, NfsStatus> {
        match self
            .meta
            .read(
                Query::TestStateIds {
                    client,
                    state_ids: vec![id],
                },
                ReadConsistency::Linearizable,
            )
            .await
        {
            Ok(QueryReply::StateIds(v)) => Ok(v.first().copied().unwrap_or(false)),
            Ok(other) => Err(unexpected("TestStateIds", &other)),
            Err(ClientError::Ns(NsError::NoSuchClient(_))) => Ok(false),
            Err(e) => Err(meta_status(&e)),
        }
    }
}

#[async_trait]
impl OpenStore for MetaOpens {
    async fn open(
        &self,
        clientid: u64,
        owner: &[u8],
        fh: &[u8],
        access: u32,
        deny: u32,
    ) -> Result<StateId, NfsStatus> {
        let ino = self.ino(fh)?;
        let serial = self.serial(clientid, ino);
        let _serial = serial.lock().await;
        match self
            .meta
            .write(Command::Open {
                fs: self.fs,
                ino,
                client: clientid,
                owner: owner.to_vec(),
                access,
                deny,
            })
            .await
        {
            Ok(Reply::Open(open)) => Ok(self.remember_open(&open)),
            Ok(other) => Err(unexpected("Open", &other)),
            Err(e) => Err(meta_status(&e)),
        }
    }

    async fn check_close(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
    ) -> Result<(), NfsStatus> {
        let ino = self.ino(fh)?;
        let (kind, _) = parse(stateid).ok_or(NfsStatus::BadStateId)?;
        if kind != KIND_OPEN {
            return Err(NfsStatus::BadStateId);
        }
        // An open this gateway has not seen (the client moved here from another gateway) is
        // left to meta, which `close` asks anyway.
        self.check_known(clientid, stateid, Some(ino)).map(|_| ())
    }

    async fn close(&self, clientid: u64, stateid: &StateId, fh: &[u8]) -> Result<(), NfsStatus> {
        let ino = self.ino(fh)?;
        let (kind, id) = parse(stateid).ok_or(NfsStatus::BadStateId)?;
        if kind != KIND_OPEN {
            return Err(NfsStatus::BadStateId);
        }
        let serial = self.serial(clientid, ino);
        let _serial = serial.lock().await;
        self.check_known(clientid, stateid, Some(ino))?;
        match self
            .meta
            .write(Command::Close {
                client: clientid,
                state_id: id,
            })
            .await
        {
            Ok(_) => {
                let mut cache = self.cache();
                cache.opens.remove(&id);
                cache
                    .locks
                    .retain(|_, l| !(l.client == clientid && l.ino == ino));
                Ok(())
            }
            Err(e) => Err(meta_status(&e)),
        }
    }

    async fn downgrade(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
        access: u32,
        deny: u32,
    ) -> Result<StateId, NfsStatus> {
        let ino = self.ino(fh)?;
        let (kind, id) = parse(stateid).ok_or(NfsStatus::BadStateId)?;
        if kind != KIND_OPEN {
            return Err(NfsStatus::BadStateId);
        }
        let serial = self.serial(clientid, ino);
        let _serial = serial.lock().await;
        self.check_known(clientid, stateid, Some(ino))?;
        match self
            .meta
            .write(Command::OpenDowngrade {
                client: clientid,
                state_id: id,
                seqid: stateid.seqid,
                access,
                deny,
            })
            .await
        {
            Ok(Reply::Open(open)) => Ok(self.remember_open(&open)),
            Ok(other) => Err(unexpected("OpenDowngrade", &other)),
            Err(e) => Err(meta_status(&e)),
        }
    }

    async fn holds_state(&self, clientid: u64) -> bool {
        self.cache().opens.values().any(|o| o.client == clientid)
    }

    async fn drop_client(&self, clientid: u64) {
        let mut cache = self.cache();
        cache.opens.retain(|_, o| o.client != clientid);
        cache.locks.retain(|_, l| l.client != clientid);
    }

    async fn check_io(
        &self,
        clientid: u64,
        stateid: &StateId,
        fh: &[u8],
        access: u32,
    ) -> Result<(), NfsStatus> {
        if special(stateid) {
            // The READ bypass stateid is for reads only (RFC 8881 §8.2.3).
            if *stateid == StateId::BYPASS && access != 1 {
                return Err(NfsStatus::BadStateId);
            }
            return Ok(());
        }
        let ino = self.ino(fh)?;
        match self.check_known(clientid, stateid, Some(ino))? {
            Some((_, _, known)) => {
                if known.access & access == 0 {
                    return Err(NfsStatus::OpenMode);
                }
                Ok(())
            }
            None => {
                // A stateid from another gateway (the client failed over): meta decides, and
                // this gateway remembers it for the next READ or WRITE.
                let (kind, id) = parse(stateid).ok_or(NfsStatus::BadStateId)?;
                if !self.valid_in_meta(clientid, id).await? {
                    return Err(NfsStatus::BadStateId);
                }
                let known = Known {
                    client: clientid,
                    ino,
                    seqid: stateid.seqid,
                    access: 3,
                };
                let mut cache = self.cache();
                let table = if kind == KIND_OPEN {
                    &mut cache.opens
                } else {
                    &mut cache.locks
                };
                table.insert(id, known);
                Ok(())
            }
        }
    }

    async fn test(&self, clientid: u64, stateid: &StateId) -> NfsStatus {
        if special(stateid) {
            return NfsStatus::BadStateId;
        }
        let Some((_, id)) = parse(stateid) else {
            return NfsStatus::BadStateId;
        };
        match self.check_known(clientid, stateid, None) {
            Ok(_) => {}
            Err(s) => return s,
        }
        match self.valid_in_meta(clientid, id).await {
            Ok(true) => NfsStatus::Ok,
            Ok(false) => NfsStatus::BadStateId,
            Err(s) => s,
        }
    }

    async fn free(&self, clientid: u64, stateid: &StateId) -> NfsStatus {
        let Some((_, id)) = parse(stateid) else {
            return NfsStatus::BadStateId;
        };
        match self
            .meta
            .write(Command::FreeStateId {
                client: clientid,
                state_id: id,
            })
            .await
        {
            Ok(_) => {
                self.cache().locks.remove(&id);
                NfsStatus::Ok
            }
            Err(e) => meta_status(&e),
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
        let ino = self.ino(fh).map_err(LockError::Status)?;
        let meta_locker = match locker {
            Locker::New(n) => {
                let (kind, id) =
                    parse(&n.open_stateid).ok_or(LockError::Status(NfsStatus::BadStateId))?;
                if kind != KIND_OPEN {
                    return Err(LockError::Status(NfsStatus::BadStateId));
                }
                self.check_known(clientid, &n.open_stateid, Some(ino))
                    .map_err(LockError::Status)?;
                MetaLocker::New {
                    open_state_id: id,
                    lock_owner: n.lock_owner.owner.0.clone(),
                }
            }
            Locker::Existing(e) => {
                let (kind, id) =
                    parse(&e.lock_stateid).ok_or(LockError::Status(NfsStatus::BadStateId))?;
                if kind != KIND_LOCK {
                    return Err(LockError::Status(NfsStatus::BadStateId));
                }
                self.check_known(clientid, &e.lock_stateid, Some(ino))
                    .map_err(LockError::Status)?;
                MetaLocker::Existing { lock_state_id: id }
            }
        };
        match self
            .meta
            .write(Command::Lock {
                client: clientid,
                locker: meta_locker,
                kind: lock_kind(write),
                offset,
                length,
            })
            .await
        {
            Ok(Reply::Lock(lock)) => Ok(self.remember_lock(&lock)),
            Ok(other) => Err(LockError::Status(unexpected("Lock", &other))),
            Err(e) => Err(lock_error(&e)),
        }
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
        let ino = self.ino(fh).map_err(LockError::Status)?;
        match self
            .meta
            .read(
                Query::LockTest {
                    fs: self.fs,
                    ino,
                    client: clientid,
                    lock_owner: owner.to_vec(),
                    kind: lock_kind(write),
                    offset,
                    length,
                },
                ReadConsistency::Linearizable,
            )
            .await
        {
            Ok(QueryReply::LockFree) => Ok(()),
            Ok(other) => Err(LockError::Status(unexpected("LockTest", &other))),
            Err(e) => Err(lock_error(&e)),
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
        let ino = self.ino(fh)?;
        let (kind, id) = parse(stateid).ok_or(NfsStatus::BadStateId)?;
        if kind != KIND_LOCK {
            return Err(NfsStatus::BadStateId);
        }
        self.check_known(clientid, stateid, Some(ino))?;
        match self
            .meta
            .write(Command::Unlock {
                client: clientid,
                lock_state_id: id,
                offset,
                length,
            })
            .await
        {
            Ok(Reply::Lock(lock)) => Ok(self.remember_lock(&lock)),
            Ok(other) => Err(unexpected("Unlock", &other)),
            Err(e) => Err(meta_status(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateids_carry_kind_and_id() {
        let s = stateid(KIND_LOCK, 0xdead_beef, 3);
        assert_eq!(parse(&s), Some((KIND_LOCK, 0xdead_beef)));
        assert_eq!(s.seqid, 3);
        assert_eq!(parse(&StateId::ANONYMOUS), None);
        let mut foreign = s.clone();
        foreign.other[0] = 0;
        assert_eq!(parse(&foreign), None);
    }
}
