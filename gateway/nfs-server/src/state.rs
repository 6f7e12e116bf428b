//! Client and session state (RFC 8881 §2.4, §2.10): client records from EXCHANGE_ID, sessions
//! from CREATE_SESSION, and each session's slot table with its reply cache.
//!
//! The state sits behind [`ClientStore`] because it will move to the metadata cluster so that
//! any gateway can serve any session; [`MemClientStore`] keeps it in this gateway's memory. The
//! trait speaks in decisions (execute / replay / fail), not in data structures, so a replicated
//! implementation can make each decision atomically on its side.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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
    /// A new request: execute the COMPOUND, then [`ClientStore::complete`] the slot.
    Execute { res: SequenceResOk, clientid: u64 },
    /// A retransmission of the slot's last request: send these COMPOUND4res bytes again.
    Replay(Vec<u8>),
}

/// Client, session and slot state. Every method is one atomic decision.
pub trait ClientStore: Send + Sync + 'static {
    /// EXCHANGE_ID for SP4_NONE (RFC 8881 §18.35.4): same owner and verifier → the same
    /// record; a new verifier → a new, unconfirmed incarnation that replaces the old one when
    /// its first session is created.
    fn exchange_id(&self, owner: &[u8], verifier: Verifier, now: Instant) -> ExchangeOutcome;
    /// CREATE_SESSION (RFC 8881 §18.36.4), including its own one-slot replay cache.
    fn create_session(
        &self,
        args: &CreateSessionArgs,
        limits: &SessionLimits,
        now: Instant,
    ) -> Result<CreateSessionResOk, NfsStatus>;
    /// SEQUENCE (RFC 8881 §18.46.4) for a COMPOUND of `shape`; renews the client's lease.
    /// A request over the session's negotiated limits fails before its slot is touched.
    fn sequence(
        &self,
        args: &SequenceArgs,
        shape: RequestShape,
        now: Instant,
    ) -> Result<SequenceOutcome, NfsStatus>;
    /// Ends the request executing in `slot`, storing its reply so a retransmission can replay
    /// it; `None` (the client did not ask for caching) makes a retransmission fail with
    /// RETRY_UNCACHED_REP instead.
    fn complete(&self, session: &SessionId, slot: u32, reply: Option<Vec<u8>>);
    fn destroy_session(&self, session: &SessionId) -> Result<(), NfsStatus>;
    fn destroy_clientid(&self, clientid: u64) -> Result<(), NfsStatus>;
    /// Whether the session exists (BIND_CONN_TO_SESSION).
    fn session_exists(&self, session: &SessionId) -> bool;
    /// Drops clients whose lease ran out more than `lease` ago, with their sessions; returns
    /// the dropped clientids so their open state can go too.
    fn expire(&self, now: Instant, lease: Duration) -> Vec<u64>;
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

#[derive(Debug)]
struct Client {
    owner: Vec<u8>,
    verifier: Verifier,
    confirmed: bool,
    /// The csa_sequence of the last CREATE_SESSION executed, and its result.
    cs_seq: u32,
    cs_reply: Option<CreateSessionResOk>,
    /// An older incarnation of the same owner, dropped when this one is confirmed.
    replaces: Option<u64>,
    renewed: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<u64, Client>,
    sessions: HashMap<SessionId, Session>,
    next_client: u32,
    next_session: u32,
}

/// [`ClientStore`] in gateway memory.
#[derive(Debug)]
pub struct MemClientStore {
    /// High half of every clientid, so ids from a previous boot are never mistaken for ours.
    boot: u32,
    inner: Mutex<Inner>,
}

impl MemClientStore {
    pub fn new(boot: u32) -> Self {
        Self {
            boot,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing all client state, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    }
}

impl ClientStore for MemClientStore {
    fn exchange_id(&self, owner: &[u8], verifier: Verifier, now: Instant) -> ExchangeOutcome {
        let mut inner = self.lock();
        // Newest incarnation of this owner first: an unconfirmed one replacing a confirmed one
        // is what a restarted client is talking to.
        let existing = inner
            .clients
            .iter()
            .filter(|(_, c)| c.owner == owner)
            .map(|(id, c)| (*id, c.verifier, c.confirmed, c.cs_seq))
            .max_by_key(|(id, ..)| *id);
        if let Some((id, v, confirmed, cs_seq)) = existing
            && v == verifier
        {
            if let Some(c) = inner.clients.get_mut(&id) {
                c.renewed = now;
            }
            return ExchangeOutcome {
                clientid: id,
                sequenceid: cs_seq.wrapping_add(1),
                confirmed,
            };
        }
        // New owner, or a new verifier (client reboot): a new unconfirmed record. An older
        // unconfirmed one is useless now; a confirmed one lives until this one is confirmed.
        let replaces = match existing {
            Some((id, _, true, _)) => Some(id),
            Some((id, _, false, _)) => {
                let replaced = inner.clients.get(&id).and_then(|c| c.replaces);
                inner.remove_client(id);
                replaced
            }
            None => None,
        };
        inner.next_client = inner.next_client.wrapping_add(1);
        let clientid = (u64::from(self.boot) << 32) | u64::from(inner.next_client);
        inner.clients.insert(
            clientid,
            Client {
                owner: owner.to_vec(),
                verifier,
                confirmed: false,
                cs_seq: 0,
                cs_reply: None,
                replaces,
                renewed: now,
            },
        );
        ExchangeOutcome {
            clientid,
            sequenceid: 1,
            confirmed: false,
        }
    }

    fn create_session(
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
        if args.sequence == client.cs_seq {
            // Retransmission of the last CREATE_SESSION: same answer, no new session.
            return client.cs_reply.clone().ok_or(NfsStatus::SeqMisordered);
        }
        if args.sequence != client.cs_seq.wrapping_add(1) {
            return Err(NfsStatus::SeqMisordered);
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
        client.cs_seq = args.sequence;
        client.cs_reply = Some(res.clone());
        client.renewed = now;
        let replaced = if client.confirmed {
            None
        } else {
            client.confirmed = true;
            client.replaces.take()
        };
        if let Some(old) = replaced {
            inner.remove_client(old);
        }
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
        Ok(res)
    }

    fn sequence(
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

    fn complete(&self, session: &SessionId, slot: u32, reply: Option<Vec<u8>>) {
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

    fn destroy_session(&self, session: &SessionId) -> Result<(), NfsStatus> {
        self.lock()
            .sessions
            .remove(session)
            .map(|_| ())
            .ok_or(NfsStatus::BadSession)
    }

    fn destroy_clientid(&self, clientid: u64) -> Result<(), NfsStatus> {
        let mut inner = self.lock();
        if !inner.clients.contains_key(&clientid) {
            return Err(NfsStatus::StaleClientId);
        }
        if inner.sessions.values().any(|s| s.clientid == clientid) {
            return Err(NfsStatus::ClientIdBusy);
        }
        inner.remove_client(clientid);
        Ok(())
    }

    fn session_exists(&self, session: &SessionId) -> bool {
        self.lock().sessions.contains_key(session)
    }

    fn expire(&self, now: Instant, lease: Duration) -> Vec<u64> {
        let mut inner = self.lock();
        let stale: Vec<u64> = inner
            .clients
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.renewed) > lease)
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            inner.remove_client(*id);
        }
        stale
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

    #[test]
    fn create_session_negotiates_and_replays() {
        let store = MemClientStore::new(7);
        let now = bucketfs_runtime::SystemClock.now();
        let ex = store.exchange_id(b"owner", [1; 8], now);
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
        let ex2 = store.exchange_id(b"owner", [1; 8], now);
        assert_eq!(ex2.clientid, ex.clientid);
        assert!(ex2.confirmed);
        assert_eq!(ex2.sequenceid, ex.sequenceid + 1);
    }

    #[test]
    fn new_verifier_replaces_old_incarnation_on_confirm() {
        let store = MemClientStore::new(1);
        let now = bucketfs_runtime::SystemClock.now();
        let limits = SessionLimits::default();
        let old = store.exchange_id(b"o", [1; 8], now);
        let s_old = store
            .create_session(&cs(old.clientid, 1), &limits, now)
            .expect("old session");
        let new = store.exchange_id(b"o", [2; 8], now);
        assert_ne!(new.clientid, old.clientid);
        assert!(store.session_exists(&s_old.sessionid));
        store
            .create_session(&cs(new.clientid, new.sequenceid), &limits, now)
            .expect("new session");
        assert!(!store.session_exists(&s_old.sessionid));
        assert_eq!(
            store.destroy_clientid(old.clientid),
            Err(NfsStatus::StaleClientId)
        );
    }

    #[test]
    fn slots_replay_misorder_and_badslot() {
        let store = MemClientStore::new(1);
        let now = bucketfs_runtime::SystemClock.now();
        let ex = store.exchange_id(b"o", [1; 8], now);
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
            store.destroy_clientid(ex.clientid),
            Err(NfsStatus::ClientIdBusy)
        );
        store.destroy_session(&s).expect("destroy");
        assert_eq!(store.destroy_session(&s), Err(NfsStatus::BadSession));
        store.destroy_clientid(ex.clientid).expect("destroy client");
    }

    #[test]
    fn expire_drops_idle_clients_with_sessions() {
        let store = MemClientStore::new(1);
        let start = bucketfs_runtime::SystemClock.now();
        let ex = store.exchange_id(b"o", [1; 8], start);
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
