//! Exactly-once application: a retried `(client, seq)` gets its first result back and
//! changes nothing; acknowledged sequence numbers are forgotten and then refused as stale.

mod common;

use bucketfs_meta_state::command::{CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::kv::{MemKv, Table, Txn};
use bucketfs_meta_state::types::{ClientId, FsId, InodeId, Timestamp};
use bucketfs_meta_state::{Command, NsError, Proposal, Reply, apply};
use common::{Harness, create, remove};

fn proposal(client: u64, seq: u64, ack_below: u64, command: Command) -> Proposal {
    Proposal {
        client: ClientId(client),
        seq,
        ack_below,
        now: Timestamp::new(1_000, seq as u32),
        command,
    }
}

fn touch(fs: FsId, name: &str) -> Command {
    create(
        fs,
        InodeId::ROOT,
        name.into(),
        NewInode::File,
        CreateMode::Guarded,
    )
}

fn requests(kv: &MemKv, client: u64) -> Vec<u64> {
    kv.rows
        .keys()
        .filter(|(t, k)| *t == Table::Requests && k[..8] == client.to_be_bytes())
        .map(|(_, k)| u64::from_be_bytes(k[8..16].try_into().unwrap()))
        .collect()
}

#[test]
fn a_retry_returns_the_first_reply_and_changes_nothing() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let first = h.propose(&proposal(7, 1, 0, touch(fs, "f")));
    assert!(matches!(first, Ok(Reply::Changed { .. })));
    // The file goes away through another request; a retry must not create it again.
    h.propose(&proposal(
        7,
        2,
        0,
        remove(fs, InodeId::ROOT, "f".into(), RemoveKind::Any),
    ))
    .unwrap();
    let before = h.kv.clone();
    let retry = h.propose(&proposal(7, 1, 0, touch(fs, "f")));
    assert_eq!(retry, first);
    assert_eq!(h.kv, before, "a retry writes nothing");
    assert_eq!(h.lookup(fs, InodeId::ROOT, "f"), Err(NsError::NotFound));

    // Even a retry carrying a different command gets the stored reply: the sequence
    // number identifies the request.
    assert_eq!(h.propose(&proposal(7, 1, 0, Command::Noop)), first);
    assert_eq!(h.kv, before);
}

#[test]
fn refusals_are_replayed_too() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    h.propose(&proposal(7, 1, 0, touch(fs, "f"))).unwrap();
    let refused = h.propose(&proposal(7, 2, 0, touch(fs, "f")));
    assert_eq!(refused, Err(NsError::Exists));
    h.propose(&proposal(
        7,
        3,
        0,
        remove(fs, InodeId::ROOT, "f".into(), RemoveKind::Any),
    ))
    .unwrap();
    // Applying seq 2 now would succeed; its committed answer was Exists and stays so.
    assert_eq!(
        h.propose(&proposal(7, 2, 0, touch(fs, "f"))),
        Err(NsError::Exists)
    );
    assert_eq!(h.lookup(fs, InodeId::ROOT, "f"), Err(NsError::NotFound));
}

#[test]
fn acknowledged_requests_are_forgotten_and_then_stale() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    for seq in 1..=3 {
        h.propose(&proposal(7, seq, 1, touch(fs, &format!("f{seq}"))))
            .unwrap();
    }
    assert_eq!(requests(&h.kv, 7), vec![1, 2, 3]);
    h.propose(&proposal(7, 4, 3, Command::Noop)).unwrap();
    assert_eq!(requests(&h.kv, 7), vec![3, 4]);

    let before = h.kv.clone();
    assert_eq!(
        h.propose(&proposal(7, 1, 0, touch(fs, "f1"))),
        Err(NsError::StaleRequest {
            seq: 1,
            window_start: 3
        })
    );
    assert_eq!(
        h.propose(&proposal(7, 2, 4, touch(fs, "late"))),
        Err(NsError::StaleRequest {
            seq: 2,
            window_start: 3
        })
    );
    assert_eq!(
        h.kv, before,
        "a stale request stores nothing, not even its ack"
    );
    // seq 3 is inside the window: still answered from its stored reply.
    assert!(matches!(
        h.propose(&proposal(7, 3, 0, touch(fs, "f3"))),
        Ok(Reply::Changed { .. })
    ));
    assert_eq!(h.kv, before);
    // A smaller ack than before does not lower the window.
    h.propose(&proposal(7, 5, 1, Command::Noop)).unwrap();
    assert_eq!(requests(&h.kv, 7), vec![3, 4, 5]);
}

#[test]
fn an_ack_cannot_forget_its_own_reply() {
    let mut h = Harness::new();
    h.mkfs("main");
    let first = h.propose(&proposal(9, 5, 100, Command::Noop));
    assert_eq!(requests(&h.kv, 9), vec![5]);
    assert_eq!(h.propose(&proposal(9, 5, 100, Command::Noop)), first);
    assert!(matches!(
        h.propose(&proposal(9, 4, 0, Command::Noop)),
        Err(NsError::StaleRequest {
            seq: 4,
            window_start: 5
        })
    ));
}

#[test]
fn clients_have_separate_windows() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    h.propose(&proposal(1, 10, 10, touch(fs, "a"))).unwrap();
    // Client 2 has acked nothing, so its seq 1 is new, and client 1's rows are its own.
    assert_eq!(
        h.propose(&proposal(2, 1, 0, touch(fs, "a"))),
        Err(NsError::Exists)
    );
    assert!(requests(&h.kv, 1).contains(&10));
    assert_eq!(requests(&h.kv, 2), vec![1]);
}

#[test]
fn proposals_in_one_batch_see_each_other() {
    let mut kv = MemKv::default();
    let fs = FsId(1);
    let batch = [
        proposal(
            1,
            1,
            0,
            Command::CreateFs {
                name: "main".into(),
                bucket: "b".into(),
                prefix: String::new(),
            },
        ),
        proposal(1, 2, 0, touch(fs, "f")),
        proposal(1, 3, 0, touch(fs, "f")),
        // A duplicate inside the same batch is answered from the row the batch wrote.
        proposal(1, 2, 0, touch(fs, "g")),
    ];
    let mut txn = Txn::new(&kv);
    let results: Vec<_> = batch
        .iter()
        .enumerate()
        .map(|(i, p)| apply(&mut txn, i as u64 + 1, p).unwrap())
        .collect();
    let writes = txn.into_writes();
    kv.apply(writes);
    assert!(matches!(results[0], Ok(Reply::Fs(_))));
    assert!(matches!(results[1], Ok(Reply::Changed { .. })));
    assert_eq!(results[2], Err(NsError::Exists));
    assert_eq!(results[3], results[1]);
    let mut h = Harness::new();
    h.kv = kv;
    assert_eq!(h.lookup(fs, InodeId::ROOT, "g"), Err(NsError::NotFound));
}

#[test]
fn a_refused_command_leaves_no_writes_but_its_result() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    h.run(touch(fs, "f")).unwrap();
    let before = h.kv.clone();
    assert_eq!(h.run(touch(fs, "f")), Err(NsError::Exists));
    let changed: Vec<Table> =
        h.kv.rows
            .iter()
            .filter(|(k, v)| before.rows.get(*k) != Some(*v))
            .map(|((t, _), _)| *t)
            .chain(
                before
                    .rows
                    .keys()
                    .filter(|k| !h.kv.rows.contains_key(*k))
                    .map(|(t, _)| *t),
            )
            .collect();
    // The new request row, the old one dropped by the ack, and the window start.
    assert!(
        changed
            .iter()
            .all(|t| matches!(t, Table::Requests | Table::Meta)),
        "{changed:?}"
    );
    assert_eq!(changed.iter().filter(|t| **t == Table::Meta).count(), 1);
}

/// Retried CREATE, LINK, REMOVE and RENAME (a replacing one, a directory move, a no-op)
/// change nothing, the link index included, whether the retry comes right away or after
/// later commands changed the names it touched.
#[test]
fn retried_namespace_commands_keep_the_link_index_exact() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let root = InodeId::ROOT;
    let (f, d, x) = (InodeId(2), InodeId(3), InodeId(4));
    let rename = |sp: InodeId, sn: &str, dp: InodeId, dn: &str| Command::Rename {
        src_fs: fs,
        src_parent: sp,
        src_name: sn.into(),
        dst_fs: fs,
        dst_parent: dp,
        dst_name: dn.into(),
    };
    let commands = [
        touch(fs, "f"),
        create(fs, root, "d".into(), NewInode::Dir, CreateMode::Guarded),
        Command::Link {
            fs,
            ino: f,
            new_parent: d,
            new_name: "g".into(),
        },
        touch(fs, "x"),
        // Replaces one of f's two names.
        rename(root, "x", d, "g"),
        // Moves f's primary (oldest) link.
        rename(root, "f", d, "k"),
        rename(d, "k", d, "k"),
        remove(fs, d, "g".into(), RemoveKind::Any),
        rename(root, "d", root, "e"),
    ];
    let mut replies = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let seq = i as u64 + 1;
        let reply = h.propose(&proposal(7, seq, 0, command.clone()));
        assert!(reply.is_ok(), "{command:?}: {reply:?}");
        h.check_link_index(fs).unwrap();
        let after = h.kv.clone();
        assert_eq!(h.propose(&proposal(7, seq, 0, command.clone())), reply);
        assert_eq!(
            h.kv, after,
            "an immediate retry of {command:?} wrote something"
        );
        replies.push(reply);
    }
    // Every retry again, now that later commands moved the names around.
    let end = h.kv.clone();
    for (i, command) in commands.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(h.propose(&proposal(7, seq, 0, command.clone())), replies[i]);
    }
    assert_eq!(h.kv, end, "late retries wrote something");
    h.check_link_index(fs).unwrap();

    let path = |h: &Harness, ino| h.query(bucketfs_meta_state::Query::Path { fs, ino });
    use bucketfs_meta_state::QueryReply;
    assert_eq!(path(&h, f), Ok(QueryReply::Path(Some("e/k".into()))));
    assert_eq!(path(&h, d), Ok(QueryReply::Path(Some("e".into()))));
    assert_eq!(path(&h, x), Err(NsError::Stale));
}
