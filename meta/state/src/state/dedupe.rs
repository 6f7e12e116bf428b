//! Exactly-once application of proposals.
//!
//! A writer numbers its proposals; `(client, seq)` of every applied proposal maps to the
//! result it produced (refusals included), written in the same entry as the effect. A
//! retried proposal finds its row and gets the stored result back without touching anything
//! else. `ack_below` says the writer holds the replies of every smaller `seq`: those rows
//! are dropped and the client's *window start* is raised to it, so a very late duplicate
//! (say, a packet delayed past its own ack) is refused as stale instead of applied twice.
//!
//! `ack_below` is capped at the proposal's own `seq`: a writer cannot have received the reply
//! of the proposal it is sending, and keeping that reply is what makes its retry safe.
//!
//! The command itself runs in a nested transaction whose writes are kept only on success,
//! so a refusal never leaves half of a command behind.

use crate::command::{ApplyResult, Command, Proposal, Reply};
use crate::error::{MetaError, NsError};
use crate::keys;
use crate::kv::{KvRead, Table, Txn};

use super::rows::{self, Fail, Res, Stamp};
use super::{clients, fs, namespace, open_lock, rename};

pub(super) fn apply<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    index: u64,
    proposal: &Proposal,
) -> Result<ApplyResult, MetaError> {
    let client = proposal.client;
    let request_key = keys::request(client, proposal.seq);
    if let Some(stored) = rows::get::<ApplyResult, _>(txn, Table::Requests, &request_key)? {
        return Ok(stored);
    }
    let window_key = keys::request_window(client);
    let window: u64 = rows::get(txn, Table::Meta, &window_key)?.unwrap_or(0);
    if proposal.seq < window {
        return Ok(Err(NsError::StaleRequest {
            seq: proposal.seq,
            window_start: window,
        }));
    }

    let stamp = Stamp {
        index,
        now: proposal.now,
    };
    let (result, writes) = {
        let mut inner = Txn::new(&*txn);
        match execute(&mut inner, stamp, &proposal.command) {
            Ok(reply) => (Ok(reply), Some(inner.into_writes())),
            Err(Fail::Ns(e)) => (Err(e), None),
            Err(Fail::Meta(e)) => return Err(e),
        }
    };
    for ((table, key), value) in writes.map(|w| w.writes).unwrap_or_default() {
        match value {
            Some(v) => txn.put(table, key, v),
            None => txn.delete(table, key),
        }
    }
    rows::put(txn, Table::Requests, request_key, &result);

    let new_window = proposal.ack_below.min(proposal.seq);
    if new_window > window {
        let start = keys::request(client, window);
        let end = keys::request(client, new_window);
        for (key, _) in txn.scan(Table::Requests, &start, Some(&end), usize::MAX)? {
            txn.delete(Table::Requests, key);
        }
        rows::put(txn, Table::Meta, window_key, &new_window);
    }
    Ok(result)
}

fn execute<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    stamp: Stamp,
    command: &Command,
) -> Res<Reply> {
    match command {
        Command::CreateFs {
            name,
            bucket,
            prefix,
        } => fs::create_fs(txn, stamp, name, bucket, prefix),
        Command::SetAttr {
            fs,
            ino,
            attrs,
            guard_ctime,
        } => namespace::set_attr(txn, stamp, *fs, *ino, attrs, *guard_ctime),
        Command::Create {
            fs,
            parent,
            name,
            kind,
            mode,
            uid,
            gid,
            how,
        } => namespace::create(
            txn,
            stamp,
            namespace::CreateArgs {
                fs: *fs,
                parent: *parent,
                name,
                kind,
                mode: *mode,
                uid: *uid,
                gid: *gid,
                how,
            },
        ),
        Command::Link {
            fs,
            ino,
            new_parent,
            new_name,
        } => namespace::link(txn, stamp, *fs, *ino, *new_parent, new_name),
        Command::Remove {
            fs,
            parent,
            name,
            kind,
        } => namespace::remove(txn, stamp, *fs, *parent, name, kind),
        Command::Rename {
            src_fs,
            src_parent,
            src_name,
            dst_fs,
            dst_parent,
            dst_name,
        } => rename::rename(
            txn,
            stamp,
            rename::RenameArgs {
                src_fs: *src_fs,
                src_parent: *src_parent,
                src_name,
                dst_fs: *dst_fs,
                dst_parent: *dst_parent,
                dst_name,
            },
        ),
        Command::CommitObject {
            fs,
            ino,
            size,
            mtime,
            object,
            expect_change,
            data_changed,
        } => namespace::commit_object(
            txn,
            stamp,
            namespace::CommitArgs {
                fs: *fs,
                ino: *ino,
                size: *size,
                mtime: *mtime,
                object,
                expect_change: *expect_change,
                data_changed: *data_changed,
            },
        ),
        Command::ExchangeClient { owner, lease } => clients::exchange(txn, stamp, owner, *lease),
        Command::RenewLeases { clients: ids } => clients::renew(txn, stamp, ids),
        Command::ExpireLeases => clients::expire(txn, stamp),
        Command::DestroyClient { client } => clients::destroy(txn, *client),
        Command::Noop => Ok(Reply::Done),
        Command::Open {
            fs,
            ino,
            client,
            owner,
            access,
            deny,
        } => open_lock::open(
            txn,
            stamp,
            open_lock::OpenArgs {
                fs: *fs,
                ino: *ino,
                client: *client,
                owner,
                access: *access,
                deny: *deny,
            },
        ),
        Command::OpenDowngrade {
            client,
            state_id,
            seqid,
            access,
            deny,
        } => open_lock::open_downgrade(
            txn,
            stamp,
            *client,
            *state_id,
            *seqid,
            crate::nfs_state::ShareMode {
                access: *access,
                deny: *deny,
            },
        ),
        Command::Close { client, state_id } => open_lock::close(txn, stamp, *client, *state_id),
        Command::Lock {
            client,
            locker,
            kind,
            offset,
            length,
        } => open_lock::lock(
            txn,
            stamp,
            open_lock::LockArgs {
                client: *client,
                locker,
                kind: *kind,
                offset: *offset,
                length: *length,
            },
        ),
        Command::Unlock {
            client,
            lock_state_id,
            offset,
            length,
        } => open_lock::unlock(txn, stamp, *client, *lock_state_id, *offset, *length),
        Command::FreeStateId { client, state_id } => {
            open_lock::free_state_id(txn, stamp, *client, *state_id)
        }
    }
}
