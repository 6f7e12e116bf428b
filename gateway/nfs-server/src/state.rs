//! Client and session state (RFC 8881 §2.4, §2.10).
//!
//! Two owners, as DESIGN.md puts it: *client records* (who a clientid is, its lease) outlive
//! any one gateway and sit behind the async [`ClientRegistry`] (the metadata cluster in
//! production, [`MemClientRegistry`] in tests); *sessions and slot reply caches* are this
//! gateway's soft state, in [`SessionTable`]. A client whose gateway died reaches another one
//! with its session id, gets BADSESSION, and creates a new session there with its clientid,
//! which the new gateway looks up in the registry.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bucketfs_nfs_wire::nfs::NfsStatus;
use bucketfs_nfs_wire::nfs::ops::{
    ChannelAttrs, CreateSessionArgs, CreateSessionResOk, SequenceArgs, SequenceResOk,
};
use bucketfs_nfs_wire::nfs::types::{SessionId, Verifier};
use tokio::time::Instant;
/// Channel limits this server grants (fore channel); client requests are negotiated down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub max_slots: u32,
    pub max_request: u32,
    pub max_response: u32,
    pub max_response_cached: u32,
    pub max_ops: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        // 1 MiB of data plus room for the RPC and COMPOUND headers around a READ or WRITE.
        let io = 1024 * 1024 + 4096;
        Self {
            max_slots: 64,
            max_request: io,
            max_response: io,
            max_response_cached: 64 * 1024,
            max_ops: 16,
        }
    }
}

/// What EXCHANGE_ID decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeOutcome {
    pub clientid: u64,
    /// eir_sequenceid: what the client must send as csa_sequence in its next CREATE_SESSION.
    pub sequenceid: u32,
    pub confirmed: bool,
}

/// The size of the COMPOUND a SEQUENCE opens, checked against the fore channel's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestShape {
    /// Operations in the COMPOUND, SEQUENCE included.
    pub ops: usize,
    /// Bytes of the RPC record.
    pub bytes: usize,
}

/// What SEQUENCE decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceOutcome {
    /// A new request: execute the COMPOUND, then [`SessionTable::complete`] the slot.
    Execute { res: SequenceResOk, clientid: u64 },
    /// A retransmission of the slot's last request: send these COMPOUND4res bytes again.
    Replay(Vec<u8>),
}

/// What the registry knew of a client owner before an EXCHANGE_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousRecord {
    /// A new owner.
    New,
    /// The same owner and boot verifier: the same client, state intact.
    SameVerifier,
    /// The same owner with a new verifier: the client rebooted and its old opens and locks
    /// are gone.
    Rebooted,
}

/// The registry's answer to EXCHANGE_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub clientid: u64,
    pub previous: PreviousRecord,
}

/// Client records shared by every gateway. Every method is one decision made on the
/// registry's side, so two gateways never disagree about who a clientid is.
#[async_trait]
pub trait ClientRegistry: Send + Sync + 'static {
    /// EXCHANGE_ID for SP4_NONE: the same owner keeps its clientid; a new verifier starts a
    /// new incarnation without the old one's state.
    async fn exchange(&self, owner: &[u8], verifier: Verifier) -> Result<Registered, NfsStatus>;
    /// Whether `clientid` names a live client, with its owner and verifier (CREATE_SESSION
    /// on a gateway that has not seen the client).
    async fn lookup(&self, clientid: u64) -> Result<Option<(Vec<u8>, Verifier)>, NfsStatus>;
    /// DESTROY_CLIENTID: the record and all its state go.
    async fn destroy(&self, clientid: u64) -> Result<(), NfsStatus>;
}

#[derive(Debug)]
struct Slot {
    seqid: u32,
    in_progress: bool,
    reply: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Session {
    clientid: u64,
    fore: ChannelAttrs,
    slots: Vec<Slot>,
}

/// This gateway's view of a client.
#[derive(Debug)]
struct Client {
    verifier: Verifier,
    confirmed: bool,
    /// The csa_sequence of the last CREATE_SESSION executed here, and its result. `None`
    /// for a client that created its sessions on another gateway: then any sequence is
    /// accepted, since the one it last used is unknown here.
    cs_seq: Option<u32>,
    cs_reply: Option<CreateSessionResOk>,
    renewed: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<u64, Client>,
    sessions: HashMap<SessionId, Session>,
    next_session: u32,
    /// Clients that renewed their lease since [`SessionTable::take_renewals`] last ran.
    renewed: HashSet<u64>,
}

/// Sessions and slot reply caches in this gateway's memory, plus what it knows of the
/// clients that use them.
#[derive(Debug)]
pub struct SessionTable {
    /// In every session id, so ids from a previous boot of this gateway or from another
    /// gateway are never mistaken for ours.
    boot: u32,
    inner: Mutex<Inner>,
}

fn negotiate(req: &ChannelAttrs, limits: &SessionLimits) -> ChannelAttrs {
    ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: req.maxrequestsize.min(limits.max_request),
        maxresponsesize: req.maxresponsesize.min(limits.max_response),
        maxresponsesize_cached: req.maxresponsesize_cached.min(limits.max_response_cached),
        maxoperations: req.maxoperations.min(limits.max_ops),
        maxrequests: req.maxrequests.clamp(1, limits.max_slots),
        rdma_ird: None,
    }
}

impl Inner {
    fn remove_client(&mut self, clientid: u64) {
        self.clients.remove(&clientid);
        self.sessions.retain(|_, s| s.clientid != clientid);
        self.renewed.remove(&clientid);
    }
}

impl SessionTable {
    pub fn new(boot: u32) -> Self {
        Self {
            boot,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing all session state, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the registry's answer to an EXCHANGE_ID and says what to reply.
    pub fn exchanged(
        &self,
        registered: Registered,
        verifier: Verifier,
        now: Instant,
    ) -> ExchangeOutcome {
        let mut inner = self.lock();
        let clientid = registered.clientid;
        let same = registered.previous == PreviousRecord::SameVerifier
            && inner
                .clients
                .get(&clientid)
                .is_none_or(|c| c.verifier == verifier);
        if !same {
            // A new client, or a new incarnation: sessions of the old one are dead.
            inner.remove_client(clientid);
        }
        let client = inner.clients.entry(clientid).or_insert(Client {
            verifier,
            // Known to the registry with this verifier but new here: another gateway
            // confirmed it (the client is failing over).
            confirmed: same,
            cs_seq: if same { None } else { Some(0) },
            cs_reply: None,
            renewed: now,
        });
        client.renewed = now;
        ExchangeOutcome {
            clientid,
            sequenceid: client.cs_seq.unwrap_or(0).wrapping_add(1),
            confirmed: client.confirmed,
        }
    }

    /// Whether this gateway knows `clientid`.
    pub fn knows(&self, clientid: u64) -> bool {
        self.lock().clients.contains_key(&clientid)
    }

    /// Takes in a client the registry vouched for that this gateway has not seen (its
    /// sessions were on another gateway).
    pub fn adopt(&self, clientid: u64, verifier: Verifier, now: Instant) {
        self.lock().clients.entry(clientid).or_insert(Client {
            verifier,
            confirmed: true,
            cs_seq: None,
            cs_reply: None,
            renewed: now,
        });
    }

    /// CREATE_SESSION (RFC 8881 §18.36.4), including its own one-slot replay cache. The
    /// client must be known here ([`SessionTable::exchanged`] or [`SessionTable::adopt`]).
    pub fn create_session(
        &self,
        args: &CreateSessionArgs,
        limits: &SessionLimits,
        now: Instant,
    ) -> Result<CreateSessionResOk, NfsStatus> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let client = inner
            .clients
            .get_mut(&args.clientid)
            .ok_or(NfsStatus::StaleClientId)?;
        if let Some(cs_seq) = client.cs_seq {
            if args.sequence == cs_seq {
                // Retransmission of the last CREATE_SESSION: same answer, no new session.
                return client.cs_reply.clone().ok_or(NfsStatus::SeqMisordered);
            }
            if args.sequence != cs_seq.wrapping_add(1) {
                return Err(NfsStatus::SeqMisordered);
            }
        }
        inner.next_session = inner.next_session.wrapping_add(1);
        let mut sessionid = [0u8; 16];
        sessionid[..8].copy_from_slice(&args.clientid.to_be_bytes());
        sessionid[8..12].copy_from_slice(&self.boot.to_be_bytes());
        sessionid[12..].copy_from_slice(&inner.next_session.to_be_bytes());
        let fore = negotiate(&args.fore_chan_attrs, limits);
        // No callbacks are ever sent, so the back channel is accepted as asked but never used.
        let back = ChannelAttrs {
            headerpadsize: 0,
            rdma_ird: None,
            ..args.back_chan_attrs.clone()
        };
        let res = CreateSessionResOk {
            sessionid,
            sequence: args.sequence,
            // Neither persistent reply caches nor a back channel on this connection.
            flags: 0,
            fore_chan_attrs: fore.clone(),
            back_chan_attrs: back,
        };
        client.cs_seq = Some(args.sequence);
        client.cs_reply = Some(res.clone());
        client.renewed = now;
        client.confirmed = true;
        let slots = (0..fore.maxrequests)
            .map(|_| Slot {
                seqid: 0,
                in_progress: false,
                reply: None,
            })
            .collect();
        inner.sessions.insert(
            sessionid,
            Session {
                clientid: args.clientid,
                fore,
                slots,
            },
        );
        inner.renewed.insert(args.clientid);
        Ok(res)
    }

    /// SEQUENCE (RFC 8881 §18.46.4) for a COMPOUND of `shape`; renews the client's lease.
    /// A request over the session's negotiated limits fails before its slot is touched.
    pub fn sequence(
        &self,
        args: &SequenceArgs,
        shape: RequestShape,
        now: Instant,
    ) -> Result<SequenceOutcome, NfsStatus> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let session = inner
            .sessions
            .get_mut(&args.sessionid)
            .ok_or(NfsStatus::BadSession)?;
        if shape.ops > session.fore.maxoperations as usize {
            return Err(NfsStatus::TooManyOps);
        }
        if shape.bytes > session.fore.maxrequestsize as usize {
            return Err(NfsStatus::ReqTooBig);
        }
        let highest = u32::try_from(session.slots.len().saturating_sub(1)).unwrap_or(u32::MAX);
        let slot = session
            .slots
            .get_mut(args.slotid as usize)
            .ok_or(NfsStatus::BadSlot)?;
        if args.sequenceid == slot.seqid {
            if slot.in_progress {
                return Err(NfsStatus::Delay);
            }
            return match &slot.reply {
                Some(reply) => Ok(SequenceOutcome::Replay(reply.clone())),
                None => Err(NfsStatus::RetryUncachedRep),
            };
        }
        if args.sequenceid != slot.seqid.wrapping_add(1) {
            return Err(NfsStatus::SeqMisordered);
        }
        slot.seqid = args.sequenceid;
        slot.in_progress = true;
        slot.reply = None;
        let clientid = session.clientid;
        if let Some(c) = inner.clients.get_mut(&clientid) {
            c.renewed = now;
        }
        inner.renewed.insert(clientid);
        Ok(SequenceOutcome::Execute {
            res: SequenceResOk {
                sessionid: args.sessionid,
                sequenceid: args.sequenceid,
                slotid: args.slotid,
                highest_slotid: highest,
                target_highest_slotid: highest,
                status_flags: 0,
            },
            clientid,
        })
    }

    /// Ends the request executing in `slot`, storing its reply so a retransmission can replay
    /// it; `None` (the client did not ask for caching) makes a retransmission fail with
    /// RETRY_UNCACHED_REP instead.
    pub fn complete(&self, session: &SessionId, slot: u32, reply: Option<Vec<u8>>) {
        let mut inner = self.lock();
        // The COMPOUND may have destroyed its own session; then there is nothing to cache.
        if let Some(slot) = inner
            .sessions
            .get_mut(session)
            .and_then(|s| s.slots.get_mut(slot as usize))
        {
            slot.in_progress = false;
            slot.reply = reply;
        }
    }

    pub fn destroy_session(&self, session: &SessionId) -> Result<(), NfsStatus> {
        self.lock()
            .sessions
            .remove(session)
            .map(|_| ())
            .ok_or(NfsStatus::BadSession)
    }

    /// Whether DESTROY_CLIENTID may go ahead here: CLIENTID_BUSY while the client still has
    /// a session on this gateway.
    pub fn check_destroy_client(&self, clientid: u64) -> Result<(), NfsStatus> {
        let inner = self.lock();
        if inner.sessions.values().any(|s| s.clientid == clientid) {
            return Err(NfsStatus::ClientIdBusy);
        }
        Ok(())
    }

    /// Forgets a client and its sessions (destroyed, or expired in the registry).
    pub fn drop_client(&self, clientid: u64) {
        self.lock().remove_client(clientid);
    }

    /// Whether the session exists (BIND_CONN_TO_SESSION).
    pub fn session_exists(&self, session: &SessionId) -> bool {
        self.lock().sessions.contains_key(session)
    }

    /// The clients whose leases were renewed since the last call, for the batched renewal
    /// the registry expects (one write for many clients, never one per SEQUENCE).
    pub fn take_renewals(&self) -> Vec<u64> {
        let mut inner = self.lock();
        let mut ids: Vec<u64> = inner.renewed.drain().collect();
        ids.sort_unstable();
        ids
    }

    /// Puts a client back on the renewal list (its renewal could not be sent).
    pub fn note_renewal(&self, clientid: u64) {
        let mut inner = self.lock();
        if inner.clients.contains_key(&clientid) {
            inner.renewed.insert(clientid);
        }
    }

    /// Drops clients idle here for longer than `idle`, with their sessions; returns them.
    /// This only frees gateway memory: their records and state live in the registry.
    pub fn expire(&self, now: Instant, idle: Duration) -> Vec<u64> {
        let mut inner = self.lock();
        let stale: Vec<u64> = inner
            .clients
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.renewed) > idle)
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            inner.remove_client(*id);
        }
        stale
    }
}

/// [`ClientRegistry`] in this process's memory, for tests and a standalone server.
#[derive(Debug)]
pub struct MemClientRegistry {
    /// High half of every clientid, so ids from a previous boot are never mistaken for ours.
    boot: u32,
    inner: Mutex<MemRegistryInner>,
}

#[derive(Debug, Default)]
struct MemRegistryInner {
    by_owner: HashMap<Vec<u8>, u64>,
    clients: HashMap<u64, (Vec<u8>, Verifier)>,
    next: u32,
}

impl MemClientRegistry {
    pub fn new(boot: u32) -> Self {
        Self {
            boot,
            inner: Mutex::new(MemRegistryInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemRegistryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ClientRegistry for MemClientRegistry {
    async fn exchange(&self, owner: &[u8], verifier: Verifier) -> Result<Registered, NfsStatus> {
        let mut inner = self.lock();
        if let Some(&clientid) = inner.by_owner.get(owner) {
            let record = inner
                .clients
                .get_mut(&clientid)
                .ok_or(NfsStatus::ServerFault)?;
            let previous = if record.1 == verifier {
                PreviousRecord::SameVerifier
            } else {
                record.1 = verifier;
                PreviousRecord::Rebooted
            };
            return Ok(Registered { clientid, previous });
        }
        inner.next = inner.next.wrapping_add(1);
        let clientid = (u64::from(self.boot) << 32) | u64::from(inner.next);
        inner.by_owner.insert(owner.to_vec(), clientid);
        inner.clients.insert(clientid, (owner.to_vec(), verifier));
        Ok(Registered {
            clientid,
            previous: PreviousRecord::New,
        })
    }

    async fn lookup(&self, clientid: u64) -> Result<Option<(Vec<u8>, Verifier)>, NfsStatus> {
        Ok(self.lock().clients.get(&clientid).cloned())
    }

    async fn destroy(&self, clientid: u64) -> Result<(), NfsStatus> {
        let mut inner = self.lock();
        let (owner, _) = inner
            .clients
            .remove(&clientid)
            .ok_or(NfsStatus::StaleClientId)?;
        inner.by_owner.remove(&owner);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bucketfs_runtime::Clock;

    const SMALL: RequestShape = RequestShape { ops: 2, bytes: 200 };

    fn attrs(slots: u32) -> ChannelAttrs {
        ChannelAttrs {
            headerpadsize: 0,
            maxrequestsize: u32::MAX,
            maxresponsesize: u32::MAX,
            maxresponsesize_cached: u32::MAX,
            maxoperations: 100,
            maxrequests: slots,
            rdma_ird: None,
        }
    }

    fn cs(clientid: u64, sequence: u32) -> CreateSessionArgs {
        CreateSessionArgs {
            clientid,
            sequence,
            flags: 0,
            fore_chan_attrs: attrs(1000),
            back_chan_attrs: attrs(1),
            cb_program: 0,
            sec_parms: Vec::new(),
        }
    }

    fn seq(sessionid: SessionId, slotid: u32, sequenceid: u32) -> SequenceArgs {
        SequenceArgs {
            sessionid,
            sequenceid,
            slotid,
            highest_slotid: slotid,
            cachethis: true,
        }
    }

    /// EXCHANGE_ID as the server runs it: registry first, then the session table.
    async fn exchange(
        registry: &MemClientRegistry,
        store: &SessionTable,
        owner: &[u8],
        verifier: Verifier,
        now: Instant,
    ) -> ExchangeOutcome {
        let registered = registry.exchange(owner, verifier).await.expect("exchange");
        store.exchanged(registered, verifier, now)
    }

    #[tokio::test]
    async fn create_session_negotiates_and_replays() {
        let registry = MemClientRegistry::new(7);
        let store = SessionTable::new(7);
        let now = bucketfs_runtime::SystemClock.now();
        let ex = exchange(&registry, &store, b"owner", [1; 8], now).await;
        assert!(!ex.confirmed);
        let limits = SessionLimits::default();
        let res = store
            .create_session(&cs(ex.clientid, ex.sequenceid), &limits, now)
            .expect("first create_session");
        assert_eq!(res.fore_chan_attrs.maxrequests, 64);
        assert_eq!(res.fore_chan_attrs.maxrequestsize, limits.max_request);
        assert_eq!(res.fore_chan_attrs.maxoperations, 16);
        let again = store
            .create_session(&cs(ex.clientid, ex.sequenceid), &limits, now)
            .expect("replay");
        assert_eq!(again, res);
        assert_eq!(
            store.create_session(&cs(ex.clientid, ex.sequenceid + 5), &limits, now),
            Err(NfsStatus::SeqMisordered)
        );
        assert_eq!(
            store.create_session(&cs(999, 1), &limits, now),
            Err(NfsStatus::StaleClientId)
        );
        let ex2 = exchange(&registry, &store, b"owner", [1; 8], now).await;
        assert_eq!(ex2.clientid, ex.clientid);
        assert!(ex2.confirmed);
        assert_eq!(ex2.sequenceid, ex.sequenceid + 1);
    }

    #[tokio::test]
    async fn new_verifier_drops_the_old_incarnations_sessions() {
        let registry = MemClientRegistry::new(1);
        let store = SessionTable::new(1);
        let now = bucketfs_runtime::SystemClock.now();
        let limits = SessionLimits::default();
        let old = exchange(&registry, &store, b"o", [1; 8], now).await;
        let s_old = store
            .create_session(&cs(old.clientid, 1), &limits, now)
            .expect("old session");
        let new = exchange(&registry, &store, b"o", [2; 8], now).await;
        // The registry keeps the owner's clientid; the old incarnation's session is gone.
        assert_eq!(new.clientid, old.clientid);
        assert!(!new.confirmed);
        assert_eq!(new.sequenceid, 1);
        assert!(!store.session_exists(&s_old.sessionid));
        store
            .create_session(&cs(new.clientid, new.sequenceid), &limits, now)
            .expect("new session");
    }

    #[tokio::test]
    async fn a_client_from_another_gateway_is_adopted_with_any_sequence() {
        let registry = MemClientRegistry::new(1);
        let elsewhere = SessionTable::new(1);
        let here = SessionTable::new(2);
        let now = bucketfs_runtime::SystemClock.now();
        let limits = SessionLimits::default();
        let ex = exchange(&registry, &elsewhere, b"o", [1; 8], now).await;
        elsewhere
            .create_session(&cs(ex.clientid, 1), &limits, now)
            .expect("first session");
        assert_eq!(
            here.create_session(&cs(ex.clientid, 2), &limits, now),
            Err(NfsStatus::StaleClientId)
        );
        let (_, verifier) = registry
            .lookup(ex.clientid)
            .await
            .unwrap()
            .expect("known to the registry");
        here.adopt(ex.clientid, verifier, now);
        let res = here
            .create_session(&cs(ex.clientid, 2), &limits, now)
            .expect("session on the second gateway");
        // Session ids of the two gateways differ even for the same client.
        assert_ne!(res.sessionid[8..12], [0, 0, 0, 1]);
        // A repeated EXCHANGE_ID here reports the record as confirmed.
        let again = exchange(&registry, &here, b"o", [1; 8], now).await;
        assert!(again.confirmed);
        assert_eq!(again.sequenceid, 3);
        registry.destroy(ex.clientid).await.unwrap();
        assert_eq!(registry.lookup(ex.clientid).await, Ok(None));
    }

    #[tokio::test]
    async fn slots_replay_misorder_and_badslot() {
        let registry = MemClientRegistry::new(1);
        let store = SessionTable::new(1);
        let now = bucketfs_runtime::SystemClock.now();
        let ex = exchange(&registry, &store, b"o", [1; 8], now).await;
        let s = store
            .create_session(&cs(ex.clientid, 1), &SessionLimits::default(), now)
            .expect("session")
            .sessionid;
        assert!(matches!(
            store.sequence(&seq(s, 0, 1), SMALL, now),
            Ok(SequenceOutcome::Execute { .. })
        ));
        // Same seqid while the first is still executing.
        assert_eq!(
            store.sequence(&seq(s, 0, 1), SMALL, now),
            Err(NfsStatus::Delay)
        );
        store.complete(&s, 0, Some(vec![1, 2, 3]));
        assert_eq!(
            store.sequence(&seq(s, 0, 1), SMALL, now),
            Ok(SequenceOutcome::Replay(vec![1, 2, 3]))
        );
        assert_eq!(
            store.sequence(&seq(s, 0, 3), SMALL, now),
            Err(NfsStatus::SeqMisordered)
        );
        assert_eq!(
            store.sequence(&seq(s, 64, 1), SMALL, now),
            Err(NfsStatus::BadSlot)
        );
        let wide = RequestShape {
            ops: 17,
            bytes: 200,
        };
        assert_eq!(
            store.sequence(&seq(s, 0, 2), wide, now),
            Err(NfsStatus::TooManyOps)
        );
        let big = RequestShape {
            ops: 2,
            bytes: 2 << 20,
        };
        assert_eq!(
            store.sequence(&seq(s, 0, 2), big, now),
            Err(NfsStatus::ReqTooBig)
        );
        // Uncached replies cannot be replayed.
        assert!(matches!(
            store.sequence(&seq(s, 1, 1), SMALL, now),
            Ok(SequenceOutcome::Execute { .. })
        ));
        store.complete(&s, 1, None);
        assert_eq!(
            store.sequence(&seq(s, 1, 1), SMALL, now),
            Err(NfsStatus::RetryUncachedRep)
        );
        // Neither consumed the slot's next seqid.
        assert!(matches!(
            store.sequence(&seq(s, 0, 2), SMALL, now),
            Ok(SequenceOutcome::Execute { .. })
        ));
        assert_eq!(
            store.sequence(&seq([9; 16], 0, 1), SMALL, now),
            Err(NfsStatus::BadSession)
        );
        assert_eq!(
            store.check_destroy_client(ex.clientid),
            Err(NfsStatus::ClientIdBusy)
        );
        assert_eq!(store.take_renewals(), vec![ex.clientid]);
        assert!(store.take_renewals().is_empty());
        store.destroy_session(&s).expect("destroy");
        assert_eq!(store.destroy_session(&s), Err(NfsStatus::BadSession));
        store
            .check_destroy_client(ex.clientid)
            .expect("destroy client");
    }

    #[tokio::test]
    async fn expire_drops_idle_clients_with_sessions() {
        let registry = MemClientRegistry::new(1);
        let store = SessionTable::new(1);
        let start = bucketfs_runtime::SystemClock.now();
        let ex = exchange(&registry, &store, b"o", [1; 8], start).await;
        let s = store
            .create_session(&cs(ex.clientid, 1), &SessionLimits::default(), start)
            .expect("session")
            .sessionid;
        let lease = Duration::from_secs(90);
        assert_eq!(
            store.expire(start + Duration::from_secs(60), lease).len(),
            0
        );
        store
            .sequence(&seq(s, 0, 1), SMALL, start + Duration::from_secs(60))
            .expect("renew");
        assert_eq!(
            store.expire(start + Duration::from_secs(140), lease).len(),
            0
        );
        assert_eq!(
            store.expire(start + Duration::from_secs(151), lease).len(),
            1
        );
        assert!(!store.session_exists(&s));
    }
}
