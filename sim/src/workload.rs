//! Clients of the simulated cluster: each runs namespace operations one after another on the
//! root of one file system, through the simulated network, and records them in the history.
//!
//! Retries follow the exactly-once protocol of `bucketfs-meta-state`: a mutation keeps its
//! `(client, seq)` across every attempt and every node it tries, so the cluster can recognise
//! a retry of something it already applied. `ack_below` is the lowest sequence number the
//! client still lacks a reply for, so replies of abandoned operations stay available to late
//! retries and a late duplicate is never refused as stale by mistake.
//!
//! Routing: the client keeps a guess of the leader; a `NotLeader` reply with a hint moves the
//! guess there, anything else moves it to the next node. An operation gets a bounded budget
//! of virtual time; when it runs out the operation is recorded as `Unknown` if any attempt
//! might have been proposed (a timeout, `Unavailable`, and even `NotLeader`, which the server
//! also answers for a proposal discarded by a leader change), and as `Failed` only if no
//! attempt was ever delivered (every target was down).

use std::future::Future;
use std::time::Duration;

use bucketfs_meta_state::command::{ApplyResult, CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::types::{ClientId, FileType, FsId, InodeId};
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use bucketfs_runtime::Entropy;
use tokio::time::Instant;

use crate::history::{History, Outcome};
use crate::model::{self, Answer, Kind, NAMES, NsOp, NsState, Refusal};
use crate::net::{Addr, CLIENT_BASE, Net, NetError, addr_name};
use crate::trace::Trace;

/// Why a node did not serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// Not the leader. Not a promise that nothing was proposed: a proposal discarded by a
    /// leader change is reported this way too, and may still commit under the next leader.
    NotLeader(Option<u64>),
    /// The node tried and could not finish (lost leadership, quorum unreachable...): the
    /// request may or may not take effect.
    Unavailable(String),
    /// The node is broken; treated like `Unavailable`.
    Fatal(String),
}

/// What a meta node offers to clients: the simulator's view of the server API.
pub trait MetaService: Clone + Send + Sync + 'static {
    fn write(
        &self,
        client: ClientId,
        seq: u64,
        ack_below: u64,
        command: Command,
    ) -> impl Future<Output = Result<ApplyResult, ServiceError>> + Send;

    /// `linearizable = false` asks for a local, possibly stale read.
    fn read(
        &self,
        query: Query,
        linearizable: bool,
    ) -> impl Future<Output = Result<Result<QueryReply, NsError>, ServiceError>> + Send;
}

/// Knobs of one client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub nodes: u64,
    /// Deadline of one attempt (one RPC).
    pub rpc_timeout: Duration,
    /// Total virtual time an operation may take before the client gives up on it.
    pub op_budget: Duration,
    /// Pause between attempts that did not get a useful hint.
    pub backoff: Duration,
    /// Longest pause between two operations.
    pub think_max: Duration,
    /// Deliberate protocol violation for checker self-tests: retry mutations under a fresh
    /// sequence number, which defeats the cluster's deduplication.
    pub retry_with_new_seq: bool,
    /// Deliberate violation: ask for stale local reads.
    pub stale_reads: bool,
}

pub struct Client<S> {
    pub index: usize,
    pub id: ClientId,
    addr: Addr,
    next_seq: u64,
    /// Sequence numbers given up on without a reply.
    abandoned: std::collections::BTreeSet<u64>,
    leader_guess: u64,
    /// Sequence number of the latest attempt sent.
    last_sent_seq: u64,
    cfg: ClientConfig,
    net: Net<S>,
    entropy: Entropy,
    history: History,
    trace: Trace,
    start: Instant,
}

/// The outcome of one logical request after all its attempts.
enum Settled<T> {
    Reply(T),
    /// Gave up; `maybe_applied` when some attempt might have been executed.
    GaveUp {
        maybe_applied: bool,
        last: String,
    },
}

impl<S: MetaService> Client<S> {
    pub fn new(
        index: usize,
        cfg: ClientConfig,
        net: Net<S>,
        entropy: Entropy,
        history: History,
        trace: Trace,
        start: Instant,
    ) -> Self {
        let id = ClientId(entropy.next_u64());
        let leader_guess = 1 + entropy.below(cfg.nodes);
        Client {
            index,
            id,
            addr: CLIENT_BASE + index as Addr,
            next_seq: 1,
            abandoned: Default::default(),
            leader_guess,
            last_sent_seq: 0,
            cfg,
            net,
            entropy,
            history,
            trace,
            start,
        }
    }

    pub fn addr(&self) -> Addr {
        self.addr
    }

    fn who(&self) -> String {
        addr_name(self.addr)
    }

    fn ack_below(&self) -> u64 {
        self.abandoned
            .first()
            .copied()
            .unwrap_or(self.next_seq)
            .min(self.next_seq)
    }

    /// Creates the file system the workload runs in, retrying until it has a reply or
    /// `budget` runs out. Not part of the checked history: it happens before any fault.
    pub async fn create_fs(&mut self, name: &str, budget: Duration) -> Result<FsId, String> {
        let command = Command::CreateFs {
            name: name.to_string(),
            bucket: "sim-bucket".into(),
            prefix: String::new(),
        };
        match self.mutate(command, budget).await {
            Settled::Reply(Ok(Reply::Fs(info))) => Ok(info.id),
            Settled::Reply(other) => Err(format!("CreateFs answered {other:?}")),
            Settled::GaveUp { last, .. } => Err(format!("CreateFs gave up: {last}")),
        }
    }

    /// Runs random operations on `fs` until `stop_at`.
    pub async fn run(&mut self, fs: FsId, stop_at: Instant) {
        while Instant::now() < stop_at {
            let op = self.pick_op();
            self.perform(fs, op).await;
            let think = self
                .entropy
                .below(self.cfg.think_max.as_micros() as u64 + 1);
            tokio::time::sleep(Duration::from_micros(think)).await;
        }
    }

    fn pick_op(&self) -> NsOp {
        let n = NAMES.len() as u64;
        let name = self.entropy.below(n) as u8;
        let kind = if self.entropy.chance(0.3) {
            Kind::Dir
        } else {
            Kind::File
        };
        match self.entropy.below(100) {
            0..30 => NsOp::Create { name, kind },
            30..45 => NsOp::Remove { name },
            45..65 => NsOp::Rename {
                from: name,
                to: self.entropy.below(n) as u8,
            },
            65..80 => NsOp::Lookup { name },
            80..90 => NsOp::ReadDir,
            _ => NsOp::GetAttrRoot,
        }
    }

    /// Performs `op` within the client's usual budget and records it in the history.
    pub async fn perform(&mut self, fs: FsId, op: NsOp) -> Outcome {
        self.perform_within(fs, op, self.cfg.op_budget).await
    }

    /// Performs `op`, giving up after `budget`, and records it in the history.
    pub async fn perform_within(&mut self, fs: FsId, op: NsOp, budget: Duration) -> Outcome {
        let id = self.history.invoke(self.index, op, self.start.elapsed());
        self.trace.event(self.who(), format_args!("invoke {op}"));
        let outcome = if op.is_read() {
            match self.query(request_query(fs, &op), budget).await {
                Settled::Reply(r) => Outcome::Ok(read_answer(&op, &r)),
                Settled::GaveUp { last, .. } => Outcome::Unknown(last),
            }
        } else {
            let settled = self.mutate(command_of(fs, &op), budget).await;
            // The seq of the attempt that was answered (only the broken client changes it).
            self.history.set_request(id, self.id.0, self.last_sent_seq);
            match settled {
                Settled::Reply(r) => Outcome::Ok(write_answer(&r)),
                Settled::GaveUp {
                    maybe_applied: true,
                    last,
                } => Outcome::Unknown(last),
                Settled::GaveUp {
                    maybe_applied: false,
                    last,
                } => Outcome::Failed(last),
            }
        };
        let shown = match &outcome {
            Outcome::Ok(a) => a.to_string(),
            other => format!("{other:?}"),
        };
        self.trace
            .event(self.who(), format_args!("return {op}: {shown}"));
        self.history
            .finish(id, outcome.clone(), self.start.elapsed());
        outcome
    }

    async fn mutate(&mut self, command: Command, budget: Duration) -> Settled<ApplyResult> {
        let ack_below = self.ack_below();
        let seq = self.next_seq;
        self.next_seq += 1;
        let client = self.id;
        let fresh_seq = self.cfg.retry_with_new_seq;
        let settled = self
            .attempts(budget, move |this, to, attempt| {
                // The deliberately broken client makes every retry a new request.
                let s = if fresh_seq && attempt > 0 {
                    this.next_seq += 1;
                    this.next_seq - 1
                } else {
                    seq
                };
                this.last_sent_seq = s;
                let command = command.clone();
                let what = format!("write #{s}");
                let net = this.net.clone();
                let from = this.addr;
                let timeout = this.cfg.rpc_timeout;
                async move {
                    net.call(from, to, what, timeout, move |svc: S| async move {
                        svc.write(client, s, ack_below, command).await
                    })
                    .await
                }
            })
            .await;
        if let Settled::GaveUp { .. } = settled {
            self.abandoned.insert(seq);
        }
        settled
    }

    async fn query(
        &mut self,
        query: Query,
        budget: Duration,
    ) -> Settled<Result<QueryReply, NsError>> {
        let linearizable = !self.cfg.stale_reads;
        if self.cfg.stale_reads {
            // The broken client reads from any node, the way a careless cache would.
            self.leader_guess = 1 + self.entropy.below(self.cfg.nodes);
        }
        self.attempts(budget, move |this, to, _| {
            let query = query.clone();
            let net = this.net.clone();
            let from = this.addr;
            let timeout = this.cfg.rpc_timeout;
            async move {
                net.call(from, to, "read", timeout, move |svc: S| async move {
                    svc.read(query, linearizable).await
                })
                .await
            }
        })
        .await
    }

    /// The retry loop shared by writes and reads. `send(self, node)` makes one attempt.
    async fn attempts<T, F, Fut>(&mut self, budget: Duration, mut send: F) -> Settled<T>
    where
        F: FnMut(&mut Self, u64, u32) -> Fut,
        Fut: Future<Output = Result<Result<T, ServiceError>, NetError>>,
    {
        let deadline = Instant::now() + budget;
        let mut maybe_applied = false;
        let mut last = String::from("no attempt");
        let mut attempt = 0;
        loop {
            if Instant::now() >= deadline {
                return Settled::GaveUp {
                    maybe_applied,
                    last,
                };
            }
            let to = self.leader_guess;
            let mut pause = true;
            let result = send(self, to, attempt).await;
            attempt += 1;
            match result {
                Ok(Ok(reply)) => return Settled::Reply(reply),
                Ok(Err(ServiceError::NotLeader(hint))) => {
                    maybe_applied = true;
                    last = format!("n{to}: not leader (hint {hint:?})");
                    match hint {
                        Some(l) if l != to && (1..=self.cfg.nodes).contains(&l) => {
                            self.leader_guess = l;
                            pause = false;
                        }
                        _ => self.next_node(),
                    }
                }
                Ok(Err(ServiceError::Unavailable(e) | ServiceError::Fatal(e))) => {
                    maybe_applied = true;
                    last = format!("n{to}: {e}");
                    self.next_node();
                }
                Err(NetError::Timeout) => {
                    maybe_applied = true;
                    last = format!("n{to}: timeout");
                    self.next_node();
                }
                Err(NetError::Unreachable) => {
                    last = format!("n{to}: unreachable");
                    self.next_node();
                }
            }
            if pause {
                let jitter = self.entropy.below(self.cfg.backoff.as_micros() as u64 + 1);
                tokio::time::sleep(self.cfg.backoff / 2 + Duration::from_micros(jitter)).await;
            }
        }
    }

    fn next_node(&mut self) {
        self.leader_guess = self.leader_guess % self.cfg.nodes + 1;
    }
}

pub fn command_of(fs: FsId, op: &NsOp) -> Command {
    let name = |i: u8| model::name_of(i).to_string();
    match *op {
        NsOp::Create { name: n, kind } => Command::Create {
            fs,
            parent: InodeId::ROOT,
            name: name(n),
            kind: match kind {
                Kind::File => NewInode::File,
                Kind::Dir => NewInode::Dir,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            how: CreateMode::Guarded,
        },
        NsOp::Remove { name: n } => Command::Remove {
            fs,
            parent: InodeId::ROOT,
            name: name(n),
            kind: RemoveKind::Any,
        },
        NsOp::Rename { from, to } => Command::Rename {
            src_fs: fs,
            src_parent: InodeId::ROOT,
            src_name: name(from),
            dst_fs: fs,
            dst_parent: InodeId::ROOT,
            dst_name: name(to),
        },
        // Reads are not commands; a no-op keeps the function total.
        NsOp::Lookup { .. } | NsOp::ReadDir | NsOp::GetAttrRoot => Command::Noop,
    }
}

pub fn request_query(fs: FsId, op: &NsOp) -> Query {
    match *op {
        NsOp::Lookup { name } => Query::Lookup {
            fs,
            parent: InodeId::ROOT,
            name: model::name_of(name).to_string(),
        },
        NsOp::ReadDir => Query::ReadDir {
            fs,
            dir: InodeId::ROOT,
            after_cookie: 0,
            limit: 1000,
        },
        _ => Query::GetAttr {
            fs,
            ino: InodeId::ROOT,
        },
    }
}

fn refusal(e: &NsError) -> Refusal {
    match e {
        NsError::NotFound => Refusal::NotFound,
        NsError::Exists => Refusal::Exists,
        NsError::NotDir => Refusal::NotDir,
        NsError::IsDir => Refusal::IsDir,
        NsError::NotEmpty => Refusal::NotEmpty,
        other => Refusal::Other(format!("{other:?}")),
    }
}

fn kind_of(t: FileType) -> Option<Kind> {
    match t {
        FileType::File => Some(Kind::File),
        FileType::Dir => Some(Kind::Dir),
        FileType::Symlink
        | FileType::Fifo
        | FileType::Socket
        | FileType::CharDev
        | FileType::BlockDev => None,
    }
}

/// The abstract form of a mutation's reply.
pub fn write_answer(r: &ApplyResult) -> Answer {
    match r {
        Ok(_) => Answer::Done,
        Err(e) => Answer::Refused(refusal(e)),
    }
}

/// The abstract form of a read's reply.
pub fn read_answer(op: &NsOp, r: &Result<QueryReply, NsError>) -> Answer {
    match (op, r) {
        (_, Err(e)) => Answer::Refused(refusal(e)),
        (NsOp::Lookup { .. }, Ok(QueryReply::Inode(i))) => match kind_of(i.kind) {
            Some(k) => Answer::Found(k),
            None => Answer::Unexpected(format!("{:?}", i.kind)),
        },
        (NsOp::ReadDir, Ok(QueryReply::Page(p))) => {
            if !p.eof {
                return Answer::Unexpected("partial page".into());
            }
            let mut s = NsState::default();
            for e in &p.entries {
                match (model::index_of(&e.name), kind_of(e.inode.kind)) {
                    (Some(n), Some(k)) if s.get(n).is_none() => s = s.with(n, Some(k)),
                    _ => return Answer::Unexpected(format!("entry {:?}", e.name)),
                }
            }
            Answer::Listing(s)
        }
        (NsOp::GetAttrRoot, Ok(QueryReply::Inode(i))) => Answer::RootLinks(i.nlink),
        (_, Ok(other)) => Answer::Unexpected(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use bucketfs_meta_state::Proposal;
    use bucketfs_meta_state::kv::{MemKv, Txn};
    use bucketfs_meta_state::types::Timestamp;

    use super::*;

    /// The model must state the same rules as the real state machine, or the linearizability
    /// checker would report the difference as a violation. Random sequential histories, run
    /// through both, must get the same abstract replies.
    #[test]
    fn model_agrees_with_state_machine() {
        let entropy = Entropy::seeded(11);
        for round in 0..40 {
            let mut kv = MemKv::default();
            let mut index = 0;
            let mut propose = |kv: &mut MemKv, command: Command| {
                index += 1;
                let proposal = Proposal {
                    client: ClientId(1),
                    seq: index,
                    ack_below: index,
                    now: Timestamp::new(1_700_000_000, index as u32),
                    command,
                };
                let mut txn = Txn::new(&*kv);
                let r = bucketfs_meta_state::apply(&mut txn, index, &proposal).unwrap();
                let writes = txn.into_writes();
                kv.apply(writes);
                r
            };
            let fs = match propose(
                &mut kv,
                Command::CreateFs {
                    name: "m".into(),
                    bucket: "b".into(),
                    prefix: String::new(),
                },
            ) {
                Ok(Reply::Fs(info)) => info.id,
                other => panic!("CreateFs: {other:?}"),
            };
            let mut state = NsState::default();
            for step in 0..60 {
                let n = NAMES.len() as u64;
                let name = entropy.below(n) as u8;
                let kind = if entropy.chance(0.4) {
                    Kind::Dir
                } else {
                    Kind::File
                };
                let op = match entropy.below(6) {
                    0 | 1 => NsOp::Create { name, kind },
                    2 => NsOp::Remove { name },
                    3 => NsOp::Rename {
                        from: name,
                        to: entropy.below(n) as u8,
                    },
                    4 => NsOp::Lookup { name },
                    _ => [NsOp::ReadDir, NsOp::GetAttrRoot][entropy.below(2) as usize],
                };
                let real = if op.is_read() {
                    let r = bucketfs_meta_state::query(&kv, &request_query(fs, &op)).unwrap();
                    read_answer(&op, &r)
                } else {
                    write_answer(&propose(&mut kv, command_of(fs, &op)))
                };
                let (next, expected) = state.step(&op);
                assert_eq!(
                    real, expected,
                    "round {round} step {step}: {op} in state {state}"
                );
                state = next;
            }
        }
    }
}
