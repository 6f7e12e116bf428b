//! The namespace rules. See the crate docs for the contract.

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
    let _ = (txn, index, proposal);
    Err(MetaError::Storage("namespace rules not built yet".into()))
}

/// Answers a read against a consistent view.
pub fn query<R: KvRead + ?Sized>(
    kv: &R,
    query: &Query,
) -> Result<Result<QueryReply, NsError>, MetaError> {
    let _ = (kv, query);
    Err(MetaError::Storage("namespace rules not built yet".into()))
}
