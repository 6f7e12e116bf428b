//! NFS client records through the public commands: EXCHANGE_ID, batched renewal, expiry
//! with the clock-skew margin, DESTROY_CLIENTID.

mod common;

use bucketfs_meta_state::nfs_state::{ClientOwner, ClientRecord, ExchangePrevious, LeaseConfig};
use bucketfs_meta_state::types::Timestamp;
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use common::Harness;

const LEASE: LeaseConfig = LeaseConfig {
    duration_ms: 90_000,
    skew_margin_ms: 2_000,
};

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + ms as i128 * 1_000_000)
}

fn exchange(h: &mut Harness, owner: &str, verifier: u64, now_ms: i64) -> ClientRecord {
    let cmd = Command::ExchangeClient {
        owner: ClientOwner {
            owner_id: owner.as_bytes().to_vec(),
            verifier,
        },
        lease: LEASE,
    };
    // `run` advances the clock by 1 ms before stamping.
    h.now = at(now_ms - 1);
    match h.run(cmd) {
        Ok(Reply::Exchanged { record: r, .. }) => r,
        other => panic!("{other:?}"),
    }
}

fn run_at(h: &mut Harness, now_ms: i64, cmd: Command) -> Result<Reply, NsError> {
    h.now = at(now_ms - 1);
    h.run(cmd)
}

#[test]
fn exchange_renew_expire_destroy() {
    let mut h = Harness::new();
    let a = exchange(&mut h, "host-a", 1, 0);
    let b = exchange(&mut h, "host-b", 1, 1_000);
    assert_eq!((a.client, b.client), (1, 2));
    assert!(a.confirmed && a.incarnation == 0);
    assert_eq!(a.last_renewed, at(0));

    // Same owner and verifier: the same record, renewed.
    let a_again = exchange(&mut h, "host-a", 1, 5_000);
    assert_eq!((a_again.client, a_again.incarnation), (a.client, 0));
    assert_eq!(a_again.last_renewed, at(5_000));
    // New verifier (the client rebooted): same id, next incarnation.
    let a_reboot = exchange(&mut h, "host-a", 2, 6_000);
    assert_eq!((a_reboot.client, a_reboot.incarnation), (a.client, 1));

    assert_eq!(
        run_at(
            &mut h,
            10_000,
            Command::RenewLeases {
                clients: vec![b.client, 99, a.client]
            }
        ),
        Ok(Reply::Renewed {
            renewed: 2,
            unknown: vec![99]
        })
    );
    // Both deadlines are now 10 s + 90 s lease + 2 s margin = 102 s.
    assert_eq!(
        run_at(&mut h, 102_000, Command::ExpireLeases),
        Ok(Reply::Expired { clients: vec![] }),
        "exactly at the deadline the lease still holds"
    );
    assert_eq!(
        run_at(
            &mut h,
            100_000,
            Command::RenewLeases {
                clients: vec![a.client]
            }
        ),
        Ok(Reply::Renewed {
            renewed: 1,
            unknown: vec![]
        })
    );
    assert_eq!(
        run_at(&mut h, 102_001, Command::ExpireLeases),
        Ok(Reply::Expired {
            clients: vec![b.client]
        })
    );
    assert_eq!(
        h.query(Query::GetClient { client: b.client }),
        Err(NsError::NoSuchClient(b.client))
    );
    let Ok(QueryReply::Client(rec)) = h.query(Query::GetClient { client: a.client }) else {
        panic!("a was renewed at 100 s")
    };
    assert_eq!(rec.last_renewed, at(100_000));

    // The owner of an expired record comes back as a new client.
    let b2 = exchange(&mut h, "host-b", 1, 103_000);
    assert_eq!(b2.client, 3);

    assert_eq!(
        run_at(&mut h, 104_000, Command::DestroyClient { client: a.client }),
        Ok(Reply::Done)
    );
    assert_eq!(
        run_at(&mut h, 104_001, Command::DestroyClient { client: a.client }),
        Err(NsError::NoSuchClient(a.client))
    );
    let a2 = exchange(&mut h, "host-a", 2, 105_000);
    assert_eq!((a2.client, a2.incarnation), (4, 0));
}

#[test]
fn exchange_rejects_bad_arguments() {
    let mut h = Harness::new();
    let bad = |owner: Vec<u8>, duration_ms| Command::ExchangeClient {
        owner: ClientOwner {
            owner_id: owner,
            verifier: 0,
        },
        lease: LeaseConfig {
            duration_ms,
            skew_margin_ms: 0,
        },
    };
    assert!(matches!(
        h.run(bad(Vec::new(), 1)),
        Err(NsError::Invalid(_))
    ));
    assert!(matches!(
        h.run(bad(vec![1; 1025], 1)),
        Err(NsError::Invalid(_))
    ));
    assert!(matches!(h.run(bad(vec![1], 0)), Err(NsError::Invalid(_))));
    assert!(matches!(
        h.run(bad(vec![1; 1024], 1)),
        Ok(Reply::Exchanged { .. })
    ));
}

/// What EXCHANGE_ID found, as the gateway needs it for `EXCHGID4_FLAG_CONFIRMED_R`.
#[test]
fn exchange_says_what_it_found() {
    let mut h = Harness::new();
    let cmd = |owner: &str, verifier| Command::ExchangeClient {
        owner: ClientOwner {
            owner_id: owner.as_bytes().to_vec(),
            verifier,
        },
        lease: LEASE,
    };
    let previous = |r: Result<Reply, NsError>| match r {
        Ok(Reply::Exchanged { record, previous }) => (record.client, record.incarnation, previous),
        other => panic!("{other:?}"),
    };
    use ExchangePrevious::{New, Rebooted, SameVerifier};
    assert_eq!(previous(h.run(cmd("a", 1))), (1, 0, New));
    assert_eq!(previous(h.run(cmd("a", 1))), (1, 0, SameVerifier));
    assert_eq!(previous(h.run(cmd("b", 1))), (2, 0, New), "per owner");
    assert_eq!(previous(h.run(cmd("a", 2))), (1, 1, Rebooted));
    assert_eq!(previous(h.run(cmd("a", 2))), (1, 1, SameVerifier));
    // Going back to an old verifier is another reboot, not a match with an old incarnation.
    assert_eq!(previous(h.run(cmd("a", 1))), (1, 2, Rebooted));

    // A retried EXCHANGE_ID (same client and seq) gets its first answer, not the
    // `SameVerifier` its own effect would produce if it ran again.
    let first = h.run(cmd("c", 7));
    assert_eq!(previous(first.clone()).2, New);
    let retry = bucketfs_meta_state::Proposal {
        client: h.client,
        seq: h.seq,
        ack_below: h.seq,
        now: h.now,
        command: cmd("c", 7),
    };
    assert_eq!(h.propose(&retry), first);

    // An expired and swept record is gone: its owner is new again.
    let swept = run_at(&mut h, 10_000_000, Command::ExpireLeases);
    assert!(matches!(swept, Ok(Reply::Expired { ref clients }) if clients.len() == 3));
    assert_eq!(previous(h.run(cmd("a", 1))).2, New);
}
