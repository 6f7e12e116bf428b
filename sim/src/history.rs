//! The recorded history of client operations: when each was invoked, when (and whether) it
//! returned, and what it returned.
//!
//! Real-time order is taken from a logical counter bumped on every invoke and return, not from
//! virtual time: under tokio's paused clock many events share one instant, and "A returned
//! before B was invoked" must still be decidable. The counter follows the order the single
//! simulation thread executed the events in, which is exactly real-time order.
//!
//! Outcomes follow the usual convention of history checkers: an operation whose reply never
//! arrived is [`Outcome::Unknown`] (it may or may not have taken effect), and only an
//! operation the cluster provably did not execute is [`Outcome::Failed`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::model::{Answer, NsOp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished when the history was read.
    Pending,
    Ok(Answer),
    /// Definitely not executed (every attempt was refused before it could be proposed).
    Failed(String),
    /// The client gave up without a reply; the operation may have taken effect.
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct HistOp {
    pub client: usize,
    pub op: NsOp,
    /// Logical time of the invocation.
    pub invoke: u64,
    /// Logical time of the reply (or of giving up).
    pub ret: Option<u64>,
    pub invoked_at: Duration,
    pub returned_at: Option<Duration>,
    pub outcome: Outcome,
    /// For mutations, the `(client id, seq)` the request carried.
    pub request: Option<(u64, u64)>,
}

impl HistOp {
    /// The checker must explain the reply of this operation.
    pub fn is_complete(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_))
    }
}

impl fmt::Display for HistOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c{} {} [{}..{}] ",
            self.client,
            self.op,
            self.invoke,
            self.ret.map_or("inf".to_string(), |r| r.to_string())
        )?;
        match &self.outcome {
            Outcome::Pending => write!(f, "pending"),
            Outcome::Ok(a) => write!(f, "-> {a}"),
            Outcome::Failed(why) => write!(f, "failed ({why})"),
            Outcome::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    ops: Vec<HistOp>,
    clock: u64,
}

/// Shared between the client tasks.
#[derive(Debug, Clone, Default)]
pub struct History {
    inner: Arc<Mutex<Inner>>,
}

/// Index of an operation in its history.
pub type OpId = usize;

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn invoke(&self, client: usize, op: NsOp, now: Duration) -> OpId {
        let mut inner = self.lock();
        inner.clock += 1;
        let invoke = inner.clock;
        inner.ops.push(HistOp {
            client,
            op,
            invoke,
            ret: None,
            invoked_at: now,
            returned_at: None,
            outcome: Outcome::Pending,
            request: None,
        });
        inner.ops.len() - 1
    }

    /// Records how operation `id` ended.
    pub fn finish(&self, id: OpId, outcome: Outcome, now: Duration) {
        let mut inner = self.lock();
        inner.clock += 1;
        let t = inner.clock;
        if let Some(op) = inner.ops.get_mut(id) {
            op.ret = Some(t);
            op.returned_at = Some(now);
            op.outcome = outcome;
        }
    }

    /// Records the `(client id, seq)` that mutation `id` is sent as.
    pub fn set_request(&self, id: OpId, client: u64, seq: u64) {
        if let Some(op) = self.lock().ops.get_mut(id) {
            op.request = Some((client, seq));
        }
    }

    pub fn ops(&self) -> Vec<HistOp> {
        self.lock().ops.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
