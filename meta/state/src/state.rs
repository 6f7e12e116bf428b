//! The namespace rules: [`apply`] for committed proposals, [`query`] for reads.
//!
//! # Layout
//!
//! * `dedupe` wraps every proposal in the exactly-once protocol and runs the command in a
//!   nested transaction, so a command that is refused half-way leaves no partial writes.
//! * `fs`, `namespace`, `rename`, `clients` and `open_lock` hold the commands; `queries`
//!   the reads.
//! * `rows` is the typed view of the tables; `crate::keys` their byte layouts.
//!
//! Every command validates before it writes, but atomicity does not depend on that: only a
//! command that returns `Ok` has its writes kept.
//!
//! # Timestamps and change counters
//!
//! A proposal's `now` is the only time there is. Every inode a command changes gets
//! `change = index` (the log index, strictly increasing across entries) and `ctime = now`;
//! directories whose entries change also get `mtime = now`.

mod clients;
mod dedupe;
mod fs;
mod namespace;
mod open_lock;
mod queries;
mod rename;
mod rows;

use crate::command::{ApplyResult, Proposal, Query, QueryReply};
use crate::error::{MetaError, NsError};
use crate::kv::{KvRead, Txn};

/// Applies one committed proposal at log `index`. Namespace refusals come back as
/// `Ok(Err(NsError))` and are committed like successes; `Err(MetaError)` means the store
/// failed and the node must not continue.
pub fn apply<R: KvRead + ?Sized>(
    txn: &mut Txn<'_, R>,
    index: u64,
    proposal: &Proposal,
) -> Result<ApplyResult, MetaError> {
    dedupe::apply(txn, index, proposal)
}

/// Answers a read against a consistent view.
pub fn query<R: KvRead + ?Sized>(
    kv: &R,
    query: &Query,
) -> Result<Result<QueryReply, NsError>, MetaError> {
    queries::query(kv, query)
}
