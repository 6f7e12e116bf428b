//! The simulated network: every RPC of the run (Raft between nodes, client requests to nodes)
//! goes through [`Net::call`].
//!
//! A call is two messages. Each leg independently may be lost (probability `loss`), is
//! delayed by a uniform draw from `delay`, and is lost if the link is cut when it is sent or
//! when it would arrive. A lost request never reaches the server; a lost reply means the
//! server did the work and the caller never hears of it. Either way the caller only sees its
//! deadline pass: like TCP behind a partition, the network gives no error, only silence. A
//! call to a host that is down (crashed, not yet restarted) fails fast, like a refused
//! connection.
//!
//! The server side of a call runs as its own task, registered with the receiving host: it
//! finishes even when the caller stops waiting (as a real server keeps working after a client
//! disconnects), and it is aborted when the host crashes. Hosts have an incarnation number,
//! bumped by every crash, so a message sent to or from an incarnation that has since crashed
//! is dropped when it would arrive.
//!
//! All random draws come from one [`Entropy`] stream, in the order calls are made, which the
//! single-threaded paused runtime makes deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bucketfs_runtime::Entropy;
use tokio::task::AbortHandle;

use crate::trace::Trace;

/// A host on the network: meta nodes are `1..=n`, clients [`CLIENT_BASE`]` + i`.
pub type Addr = u64;
pub const CLIENT_BASE: Addr = 100;

pub fn addr_name(a: Addr) -> String {
    if a >= CLIENT_BASE {
        format!("c{}", a - CLIENT_BASE)
    } else {
        format!("n{a}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The deadline passed with no reply: the request may or may not have been executed.
    #[error("timed out")]
    Timeout,
    /// The target is down; the request was not delivered.
    #[error("unreachable")]
    Unreachable,
}

/// Conditions of the whole network, changed by the nemesis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conditions {
    /// Probability that one message (one leg of a call) is lost.
    pub loss: f64,
    pub delay_min: Duration,
    pub delay_max: Duration,
}

impl Conditions {
    pub const CALM: Conditions = Conditions {
        loss: 0.0,
        delay_min: Duration::from_micros(200),
        delay_max: Duration::from_millis(3),
    };
}

struct Host<S> {
    incarnation: u64,
    /// `None` while the host is down.
    service: Option<S>,
    /// Server-side tasks running on this incarnation.
    tasks: Vec<AbortHandle>,
}

struct State<S> {
    hosts: BTreeMap<Addr, Host<S>>,
    /// Directed links that drop everything.
    cut: BTreeSet<(Addr, Addr)>,
    cond: Conditions,
    sent: u64,
    lost: u64,
}

/// A handle on the network; clones share it. `S` is what a host serves requests with.
pub struct Net<S> {
    state: Arc<Mutex<State<S>>>,
    entropy: Entropy,
    trace: Trace,
}

impl<S> Clone for Net<S> {
    fn clone(&self) -> Self {
        Net {
            state: self.state.clone(),
            entropy: self.entropy.clone(),
            trace: self.trace.clone(),
        }
    }
}

/// What became of one message.
enum Leg {
    Deliver(Duration),
    Lost(&'static str),
}

impl<S: Clone + Send + 'static> Net<S> {
    pub fn new(entropy: Entropy, trace: Trace) -> Self {
        Net {
            state: Arc::new(Mutex::new(State {
                hosts: BTreeMap::new(),
                cut: BTreeSet::new(),
                cond: Conditions::CALM,
                sent: 0,
                lost: 0,
            })),
            entropy,
            trace,
        }
    }

    /// Brings a host up (first start or restart) serving with `service`.
    pub fn up(&self, addr: Addr, service: S) {
        let mut st = self.lock();
        let host = st.hosts.entry(addr).or_insert(Host {
            incarnation: 0,
            service: None,
            tasks: Vec::new(),
        });
        host.service = Some(service);
    }

    /// Takes a host down: its in-flight server tasks are aborted, and messages to or from its
    /// current incarnation are dropped from now on.
    pub fn down(&self, addr: Addr) {
        let tasks = {
            let mut st = self.lock();
            let Some(host) = st.hosts.get_mut(&addr) else {
                return;
            };
            host.incarnation += 1;
            host.service = None;
            std::mem::take(&mut host.tasks)
        };
        for t in tasks {
            t.abort();
        }
    }

    pub fn is_up(&self, addr: Addr) -> bool {
        self.lock()
            .hosts
            .get(&addr)
            .is_some_and(|h| h.service.is_some())
    }

    pub fn incarnation(&self, addr: Addr) -> u64 {
        self.lock().hosts.get(&addr).map_or(0, |h| h.incarnation)
    }

    /// Cuts the network into `groups`: links between hosts of different groups drop every
    /// message. Hosts in no group keep their links.
    pub fn partition(&self, groups: &[Vec<Addr>]) {
        let mut st = self.lock();
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                if i != j {
                    for a in g {
                        for b in h {
                            st.cut.insert((*a, *b));
                        }
                    }
                }
            }
        }
    }

    /// Cuts one direction of one link.
    pub fn cut(&self, from: Addr, to: Addr) {
        self.lock().cut.insert((from, to));
    }

    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    pub fn set_conditions(&self, cond: Conditions) {
        self.lock().cond = cond;
    }

    pub fn conditions(&self) -> Conditions {
        self.lock().cond
    }

    /// Messages sent and lost so far.
    pub fn stats(&self) -> (u64, u64) {
        let st = self.lock();
        (st.sent, st.lost)
    }

    /// Sends a request from `from` to `to`, runs `handler` on the target's service when it
    /// arrives, and carries the reply back; fails with [`NetError::Timeout`] when no reply
    /// has come back within `deadline`. `what` names the call in the trace.
    pub async fn call<R, F, Fut>(
        &self,
        from: Addr,
        to: Addr,
        what: impl fmt::Display,
        deadline: Duration,
        handler: F,
    ) -> Result<R, NetError>
    where
        R: Send + 'static,
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let from_inc = self.incarnation(from);
        self.call_as(from, from_inc, to, what, deadline, handler)
            .await
    }

    /// [`Net::call`] on behalf of incarnation `from_inc` of `from`: nothing is sent if that
    /// incarnation has crashed since (a dead process's leftover tasks are mute).
    pub async fn call_as<R, F, Fut>(
        &self,
        from: Addr,
        from_inc: u64,
        to: Addr,
        what: impl fmt::Display,
        deadline: Duration,
        handler: F,
    ) -> Result<R, NetError>
    where
        R: Send + 'static,
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let what = what.to_string();
        let exchange = self.exchange(from, from_inc, to, &what, handler);
        match tokio::time::timeout(deadline, exchange).await {
            Ok(r) => r,
            Err(_) => {
                self.trace.event(
                    addr_name(from),
                    format_args!("{what} -> {}: timeout", addr_name(to)),
                );
                Err(NetError::Timeout)
            }
        }
    }

    async fn exchange<R, F, Fut>(
        &self,
        from: Addr,
        from_inc: u64,
        to: Addr,
        what: &str,
        handler: F,
    ) -> Result<R, NetError>
    where
        R: Send + 'static,
        F: FnOnce(S) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        if self.incarnation(from) != from_inc {
            return std::future::pending().await;
        }
        if !self.is_up(to) {
            // A refused connection still takes a round trip to notice.
            let delay = self.conditions().delay_min;
            tokio::time::sleep(delay * 2).await;
            self.trace.event(
                addr_name(from),
                format_args!("{what} -> {}: unreachable", addr_name(to)),
            );
            return Err(NetError::Unreachable);
        }
        let to_inc = self.incarnation(to);
        match self.leg(from, to) {
            Leg::Lost(why) => {
                self.trace.event(
                    addr_name(from),
                    format_args!("{what} -> {}: request {why}", addr_name(to)),
                );
                return std::future::pending().await;
            }
            Leg::Deliver(d) => tokio::time::sleep(d).await,
        }
        // The request arrives, unless the link was cut or the target crashed meanwhile.
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.arrive(from, to, to_inc, move |service| {
            tokio::spawn(async move {
                let _ = tx.send(handler(service).await);
            })
            .abort_handle()
        }) {
            self.trace.event(
                addr_name(from),
                format_args!("{what} -> {}: request lost in flight", addr_name(to)),
            );
            return std::future::pending().await;
        }
        let Ok(reply) = rx.await else {
            // The server crashed while working on it.
            return std::future::pending().await;
        };
        match self.leg(to, from) {
            Leg::Lost(why) => {
                self.trace.event(
                    addr_name(from),
                    format_args!("{what} -> {}: reply {why}", addr_name(to)),
                );
                return std::future::pending().await;
            }
            Leg::Deliver(d) => tokio::time::sleep(d).await,
        }
        let delivered = {
            let mut st = self.lock();
            let caller_alive = st
                .hosts
                .get(&from)
                .is_none_or(|h| h.incarnation == from_inc);
            let ok = caller_alive && !st.cut.contains(&(to, from));
            if !ok {
                st.lost += 1;
            }
            ok
        };
        if !delivered {
            self.trace.event(
                addr_name(from),
                format_args!("{what} -> {}: reply lost in flight", addr_name(to)),
            );
            return std::future::pending().await;
        }
        self.trace.event(
            addr_name(from),
            format_args!("{what} -> {}: ok", addr_name(to)),
        );
        Ok(reply)
    }

    /// Hands a request to `to` if it can still be delivered, starting its server task.
    fn arrive(
        &self,
        from: Addr,
        to: Addr,
        to_inc: u64,
        start: impl FnOnce(S) -> AbortHandle,
    ) -> bool {
        let mut st = self.lock();
        let cut = st.cut.contains(&(from, to));
        let service = match st.hosts.get(&to) {
            Some(h) if !cut && h.incarnation == to_inc => h.service.clone(),
            _ => None,
        };
        let Some(service) = service else {
            st.lost += 1;
            return false;
        };
        let task = start(service);
        if let Some(h) = st.hosts.get_mut(&to) {
            h.tasks.retain(|t| !t.is_finished());
            h.tasks.push(task);
        }
        true
    }

    fn leg(&self, from: Addr, to: Addr) -> Leg {
        let mut st = self.lock();
        st.sent += 1;
        if st.cut.contains(&(from, to)) {
            st.lost += 1;
            return Leg::Lost("cut");
        }
        let cond = st.cond;
        // Draw both numbers every time so the stream advances the same way whatever happens.
        let lose = self.entropy.chance(cond.loss);
        let span = cond.delay_max.saturating_sub(cond.delay_min).as_micros() as u64;
        let jitter = self.entropy.below(span + 1);
        if lose {
            st.lost += 1;
            return Leg::Lost("lost");
        }
        Leg::Deliver(cond.delay_min + Duration::from_micros(jitter))
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::time::Instant;

    use super::*;
    use crate::trace::Keep;

    /// A server that counts the requests it executed.
    #[derive(Clone, Default)]
    struct Counter(Arc<AtomicU64>);

    fn net() -> (Net<Counter>, Counter) {
        let trace = Trace::new(Instant::now(), Keep::All, false);
        let net = Net::new(Entropy::seeded(7), trace);
        let c = Counter::default();
        net.up(1, c.clone());
        (net, c)
    }

    async fn bump(net: &Net<Counter>, from: Addr) -> Result<u64, NetError> {
        net.call(
            from,
            1,
            "bump",
            Duration::from_millis(100),
            |c: Counter| async move { c.0.fetch_add(1, Ordering::SeqCst) + 1 },
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn delivers_with_delay_within_bounds() {
        let (net, c) = net();
        let t0 = Instant::now();
        assert_eq!(bump(&net, CLIENT_BASE).await, Ok(1));
        let rtt = t0.elapsed();
        assert!(rtt >= Conditions::CALM.delay_min * 2 && rtt <= Conditions::CALM.delay_max * 2);
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cut_link_times_out_without_executing() {
        let (net, c) = net();
        net.partition(&[vec![1], vec![CLIENT_BASE]]);
        let t0 = Instant::now();
        assert_eq!(bump(&net, CLIENT_BASE).await, Err(NetError::Timeout));
        assert_eq!(t0.elapsed(), Duration::from_millis(100));
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
        net.heal();
        assert_eq!(bump(&net, CLIENT_BASE).await, Ok(1));
    }

    #[tokio::test(start_paused = true)]
    async fn lost_reply_means_executed_but_timed_out() {
        let (net, c) = net();
        net.cut(1, CLIENT_BASE);
        assert_eq!(bump(&net, CLIENT_BASE).await, Err(NetError::Timeout));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(c.0.load(Ordering::SeqCst), 1, "the request got through");
    }

    #[tokio::test(start_paused = true)]
    async fn down_host_is_unreachable_and_its_work_is_aborted() {
        let (net, c) = net();
        // A slow handler: the host crashes while it works.
        let n2 = net.clone();
        let slow = tokio::spawn(async move {
            n2.call(
                CLIENT_BASE,
                1,
                "slow",
                Duration::from_secs(1),
                |c: Counter| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    c.0.fetch_add(1, Ordering::SeqCst);
                },
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        net.down(1);
        assert_eq!(slow.await.unwrap(), Err(NetError::Timeout));
        assert_eq!(c.0.load(Ordering::SeqCst), 0, "aborted with the host");
        assert_eq!(bump(&net, CLIENT_BASE).await, Err(NetError::Unreachable));
        net.up(1, c.clone());
        assert_eq!(bump(&net, CLIENT_BASE).await, Ok(1));
    }

    #[tokio::test(start_paused = true)]
    async fn loss_rate_is_honoured_and_replayable() {
        async fn run() -> (u64, u64, u64) {
            let (net, c) = net();
            net.set_conditions(Conditions {
                loss: 0.3,
                ..Conditions::CALM
            });
            let mut ok = 0;
            for _ in 0..200 {
                if bump(&net, CLIENT_BASE).await.is_ok() {
                    ok += 1;
                }
            }
            (ok, c.0.load(Ordering::SeqCst), net.stats().1)
        }
        let a = run().await;
        // Both legs must survive: about 0.7^2 of 200.
        assert!((70..130).contains(&a.0), "{a:?}");
        assert!(a.1 >= a.0, "some requests executed without a reply");
        assert_eq!(a, run().await, "same seed, same fate");
    }
}
