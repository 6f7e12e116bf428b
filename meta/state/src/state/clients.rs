//! NFSv4.1 client records (EXCHANGE_ID, lease renewal and expiry, DESTROY_CLIENTID).
//!
//! Records are keyed by the `clientid4` the state machine assigns from a counter (first id
//! 1), with a second row mapping the client's `owner_id` to that id. A client that comes back
//! with the same owner and a new boot verifier keeps its id but starts a new incarnation:
//! its opens and locks belong to the previous boot and are dropped, as RFC 8881 §18.35.4
//! requires for a rebooted client. Records are created confirmed: the gateway confirms
//! them through CREATE_SESSION before telling the client anything, and keeping the
//! unconfirmed phase in gateway memory avoids a second Raft write per mount.
//!
//! EXCHANGE_ID replies with what it found ([`ExchangePrevious`]): nothing (`New`), the same
//! incarnation (`SameVerifier`, for which the gateway sets `EXCHGID4_FLAG_CONFIRMED_R`), or
//! an earlier one (`Rebooted`). The answer is part of the committed reply, so a retried
//! EXCHANGE_ID gets the first answer back rather than `SameVerifier` from its own effect.
//!
//! Lease arithmetic only compares proposal timestamps (see `crate::nfs_state`).

use crate::command::Reply;
use crate::error::NsError;
use crate::keys;
use crate::kv::{KvRead, Table, Txn};
use crate::nfs_state::{ClientOwner, ClientRecord, ExchangePrevious, LeaseConfig};

use super::rows::{self, Res, Stamp};

/// RFC 8881 `NFS4_OPAQUE_LIMIT`.
const OWNER_ID_MAX_BYTES: usize = 1024;

fn load<K: KvRead + ?Sized>(kv: &K, client: u64) -> Res<Option<ClientRecord>> {
    Ok(rows::get(kv, Table::Clients, &keys::client_by_id(client))?)
}

fn store<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, record: &ClientRecord) {
    rows::put(
        txn,
        Table::Clients,
        keys::client_by_id(record.client),
        record,
    );
}

/// Drops every open and lock of `client`, with their by-file index rows.
fn drop_state<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, client: u64) -> Res<()> {
    super::open_lock::drop_client_state(txn, client)
}

fn drop_client<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, record: &ClientRecord) -> Res<()> {
    txn.delete(Table::Clients, keys::client_by_id(record.client));
    txn.delete(
        Table::Clients,
        keys::client_by_owner(&record.owner.owner_id),
    );
    drop_state(txn, record.client)
}

pub(super) fn exchange<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    owner: &ClientOwner,
    lease: LeaseConfig,
) -> Res<Reply> {
    if owner.owner_id.is_empty() || owner.owner_id.len() > OWNER_ID_MAX_BYTES {
        return Err(NsError::Invalid("owner id must be 1 to 1024 bytes".into()).into());
    }
    if lease.duration_ms == 0 {
        return Err(NsError::Invalid("lease duration must be positive".into()).into());
    }
    let owner_key = keys::client_by_owner(&owner.owner_id);
    let existing: Option<u64> = rows::get(txn, Table::Clients, &owner_key)?;
    let (record, previous) = match existing {
        Some(id) => {
            let mut record = load(txn, id)?.ok_or_else(|| crate::error::MetaError::Corrupt {
                table: Table::Clients.name(),
                reason: format!("owner index points at missing client {id}"),
            })?;
            let previous = if record.owner.verifier == owner.verifier {
                ExchangePrevious::SameVerifier
            } else {
                drop_state(txn, id)?;
                record.incarnation = record.incarnation.wrapping_add(1);
                record.owner.verifier = owner.verifier;
                ExchangePrevious::Rebooted
            };
            // The lease terms in force are the ones of the latest exchange.
            record.lease = lease;
            record.last_renewed = stamp.now;
            record.confirmed = true;
            (record, previous)
        }
        None => {
            let id = rows::take_counter(txn, keys::next_nfs_client(), 1)?;
            rows::put(txn, Table::Clients, owner_key, &id);
            let record = ClientRecord {
                client: id,
                owner: owner.clone(),
                incarnation: 0,
                lease,
                last_renewed: stamp.now,
                confirmed: true,
            };
            (record, ExchangePrevious::New)
        }
    };
    store(txn, &record);
    Ok(Reply::Exchanged { record, previous })
}

pub(super) fn renew<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    clients: &[u64],
) -> Res<Reply> {
    let mut renewed = 0u32;
    let mut unknown = Vec::new();
    for &id in clients {
        match load(txn, id)? {
            Some(mut record) => {
                record.last_renewed = stamp.now;
                store(txn, &record);
                renewed = renewed.saturating_add(1);
            }
            None => unknown.push(id),
        }
    }
    Ok(Reply::Renewed { renewed, unknown })
}

pub(super) fn expire<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, stamp: Stamp) -> Res<Reply> {
    let (start, end) = keys::client_by_id_range();
    let records: Vec<(Vec<u8>, ClientRecord)> =
        rows::scan_all(txn, Table::Clients, &start, Some(&end))?;
    let mut expired = Vec::new();
    for (_, record) in records {
        if record.lease_expired(stamp.now) {
            drop_client(txn, &record)?;
            expired.push(record.client);
        }
    }
    Ok(Reply::Expired { clients: expired })
}

pub(super) fn destroy<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, client: u64) -> Res<Reply> {
    let record = load(txn, client)?.ok_or(NsError::NoSuchClient(client))?;
    drop_client(txn, &record)?;
    Ok(Reply::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemKv;
    use crate::nfs_state::{LockKind, LockRange, LockState, OpenState, ShareMode};
    use crate::types::{FsId, InodeId, Timestamp};

    fn stamp(index: u64, secs: i64) -> Stamp {
        Stamp {
            index,
            now: Timestamp::new(secs, 0),
        }
    }

    fn run<T>(kv: &mut MemKv, f: impl FnOnce(&mut Txn<'_, MemKv>) -> Res<T>) -> T {
        let mut txn = Txn::new(&*kv);
        let out = f(&mut txn).map_err(|e| format!("{e:?}")).expect("command");
        let writes = txn.into_writes();
        kv.apply(writes);
        out
    }

    fn give_state(kv: &mut MemKv, client: u64, state_id: u64) {
        let open = OpenState {
            client,
            owner: b"o".to_vec(),
            fs: FsId(1),
            ino: InodeId(2),
            share: ShareMode { access: 1, deny: 0 },
            state_id,
            seqid: 1,
        };
        let lock = LockState {
            client,
            owner: b"l".to_vec(),
            fs: FsId(1),
            ino: InodeId(2),
            open_state_id: state_id,
            state_id: state_id + 1000,
            seqid: 1,
            ranges: vec![LockRange {
                kind: LockKind::Write,
                first: 0,
                last: u64::MAX,
            }],
        };
        run(kv, |txn| {
            super::super::open_lock::put_open(txn, &open);
            super::super::open_lock::put_lock(txn, &lock);
            Ok(())
        });
    }

    /// Opens and locks of `client`, and index rows naming it.
    fn state_rows(kv: &MemKv, client: u64) -> usize {
        let prefix = keys::client_state_prefix(client);
        let own = kv
            .rows
            .keys()
            .filter(|(t, k)| matches!(t, Table::Opens | Table::Locks) && k.starts_with(&prefix))
            .count();
        let indexed = kv
            .rows
            .iter()
            .filter(|((t, k), v)| {
                *t == Table::Meta
                    && (k.starts_with(&[0x30]) || k.starts_with(&[0x31]))
                    && crate::codec::decode::<u64>("meta", v).ok() == Some(client)
            })
            .count();
        own + indexed
    }

    const LEASE: LeaseConfig = LeaseConfig {
        duration_ms: 90_000,
        skew_margin_ms: 5_000,
    };

    fn owner(id: &[u8], verifier: u64) -> ClientOwner {
        ClientOwner {
            owner_id: id.to_vec(),
            verifier,
        }
    }

    fn record(reply: Reply) -> ClientRecord {
        exchanged(reply).0
    }

    fn exchanged(reply: Reply) -> (ClientRecord, ExchangePrevious) {
        match reply {
            Reply::Exchanged { record, previous } => (record, previous),
            other => panic!("expected an exchange, got {other:?}"),
        }
    }

    #[test]
    fn reboot_drops_state_of_that_client_only() {
        let mut kv = MemKv::default();
        let (a, previous) = exchanged(run(&mut kv, |t| {
            exchange(t, stamp(1, 10), &owner(b"a", 1), LEASE)
        }));
        assert_eq!(previous, ExchangePrevious::New);
        let (b, previous) = exchanged(run(&mut kv, |t| {
            exchange(t, stamp(2, 10), &owner(b"b", 1), LEASE)
        }));
        assert_eq!((previous, b.incarnation), (ExchangePrevious::New, 0));
        assert_ne!(a.client, b.client);
        give_state(&mut kv, a.client, 7);
        give_state(&mut kv, a.client, 8);
        give_state(&mut kv, b.client, 9);

        // Same owner and verifier: the same record, renewed, state kept.
        let (again, previous) = exchanged(run(&mut kv, |t| {
            exchange(t, stamp(3, 20), &owner(b"a", 1), LEASE)
        }));
        assert_eq!(previous, ExchangePrevious::SameVerifier);
        assert_eq!((again.client, again.incarnation), (a.client, 0));
        assert_eq!(again.last_renewed, Timestamp::new(20, 0));
        assert_eq!(state_rows(&kv, a.client), 8);

        // New verifier: a new incarnation and the old boot's opens and locks are gone.
        let (rebooted, previous) = exchanged(run(&mut kv, |t| {
            exchange(t, stamp(4, 30), &owner(b"a", 2), LEASE)
        }));
        assert_eq!(previous, ExchangePrevious::Rebooted);
        assert_eq!((rebooted.client, rebooted.incarnation), (a.client, 1));
        assert_eq!(state_rows(&kv, a.client), 0);
        assert_eq!(state_rows(&kv, b.client), 4);
        // The rebooted client's next exchange with its new verifier is the same incarnation.
        let (same, previous) = exchanged(run(&mut kv, |t| {
            exchange(t, stamp(5, 31), &owner(b"a", 2), LEASE)
        }));
        assert_eq!(previous, ExchangePrevious::SameVerifier);
        assert_eq!((same.client, same.incarnation), (a.client, 1));
    }

    #[test]
    fn expiry_and_destroy_drop_state() {
        let mut kv = MemKv::default();
        let a = record(run(&mut kv, |t| {
            exchange(t, stamp(1, 0), &owner(b"a", 1), LEASE)
        }));
        let b = record(run(&mut kv, |t| {
            exchange(t, stamp(2, 50), &owner(b"b", 1), LEASE)
        }));
        give_state(&mut kv, a.client, 1);
        give_state(&mut kv, b.client, 2);
        // a: deadline 0 + 90 + 5 = 95 s; b: 145 s.
        let expired = run(&mut kv, |t| expire(t, stamp(3, 96)));
        assert_eq!(
            expired,
            Reply::Expired {
                clients: vec![a.client]
            }
        );
        assert_eq!(state_rows(&kv, a.client), 0);
        assert_eq!(state_rows(&kv, b.client), 4);
        // The owner can come back, as a new client.
        let a2 = record(run(&mut kv, |t| {
            exchange(t, stamp(4, 97), &owner(b"a", 1), LEASE)
        }));
        assert_ne!(a2.client, a.client);

        run(&mut kv, |t| destroy(t, b.client));
        assert_eq!(state_rows(&kv, b.client), 0);
        assert!(load(&kv, b.client).unwrap().is_none());
        let mut txn = Txn::new(&kv);
        assert!(matches!(
            destroy(&mut txn, b.client),
            Err(super::super::rows::Fail::Ns(NsError::NoSuchClient(_)))
        ));
    }
}
