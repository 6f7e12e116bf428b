//! The run's trace: every event the simulator observes or causes, stamped with virtual time,
//! folded into a digest as it is recorded.
//!
//! The digest is the determinism check: two runs of one seed must record the same events in
//! the same order, so they must end with the same digest. FNV-1a over the rendered lines is
//! used instead of `std`'s `DefaultHasher` because its output is specified (the same on every
//! platform and Rust release), so a digest printed by CI can be compared with one printed on
//! a laptop.

use std::fmt::{self, Display};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Fnv64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub fn new() -> Self {
        Fnv64(Self::OFFSET)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// How much of the trace to keep in memory besides the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every line (for `--reproduce`).
    All,
    /// The last `n` lines, printed when a seed fails.
    Tail(usize),
}

struct Inner {
    start: Instant,
    digest: Fnv64,
    events: u64,
    /// Virtual time of the latest event.
    last: std::time::Duration,
    keep: Keep,
    lines: std::collections::VecDeque<String>,
    echo: bool,
}

/// A shared handle; clones record into the same trace.
#[derive(Clone)]
pub struct Trace {
    inner: Arc<Mutex<Inner>>,
}

impl Trace {
    /// `start` is virtual time zero of the run. With `echo`, lines are also printed as they
    /// are recorded, so a run that hangs or panics still shows how it got there.
    pub fn new(start: Instant, keep: Keep, echo: bool) -> Self {
        Trace {
            inner: Arc::new(Mutex::new(Inner {
                start,
                digest: Fnv64::new(),
                events: 0,
                last: std::time::Duration::ZERO,
                keep,
                lines: std::collections::VecDeque::new(),
                echo,
            })),
        }
    }

    /// Records one event from `who` (a node, a client, the nemesis...).
    pub fn event(&self, who: impl Display, what: impl Display) {
        let mut inner = self.lock();
        let t = Instant::now().saturating_duration_since(inner.start);
        inner.last = t;
        // tokio's timers have millisecond resolution, so milliseconds are exact.
        let line = format!(
            "{:>3}.{:03}s {who:<8} {what}",
            t.as_secs(),
            t.subsec_millis()
        );
        inner.digest.write(line.as_bytes());
        inner.digest.write(b"\n");
        inner.events += 1;
        if inner.echo {
            println!("{line}");
        }
        match inner.keep {
            Keep::All => inner.lines.push_back(line),
            Keep::Tail(n) => {
                if n > 0 {
                    if inner.lines.len() == n {
                        inner.lines.pop_front();
                    }
                    inner.lines.push_back(line);
                }
            }
        }
    }

    pub fn digest(&self) -> u64 {
        self.lock().digest.finish()
    }

    pub fn events(&self) -> u64 {
        self.lock().events
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.iter().cloned().collect()
    }

    /// Virtual time of the latest event (readable after the run's runtime is gone).
    pub fn last_event_at(&self) -> std::time::Duration {
        self.lock().last
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while the lock was held leaves a usable trace: the digest is only
        // ever written whole-line at a time.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("Trace")
            .field("events", &inner.events)
            .field("digest", &format_args!("{:016x}", inner.digest.finish()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        let mut h = Fnv64::new();
        assert_eq!(h.finish(), 0xcbf2_9ce4_8422_2325);
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv64::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_f739_67e8);
    }

    #[tokio::test(start_paused = true)]
    async fn digest_depends_on_content_order_and_time() {
        let start = Instant::now();
        let a = Trace::new(start, Keep::Tail(2), false);
        let b = Trace::new(start, Keep::All, false);
        a.event("n1", "x");
        a.event("n2", "y");
        b.event("n1", "x");
        b.event("n2", "y");
        assert_eq!(a.digest(), b.digest());

        let c = Trace::new(start, Keep::All, false);
        c.event("n2", "y");
        c.event("n1", "x");
        assert_ne!(a.digest(), c.digest());

        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        a.event("n3", "z");
        let d = Trace::new(start, Keep::All, false);
        d.event("n1", "x");
        d.event("n2", "y");
        d.event("n3", "z");
        assert_ne!(
            a.digest(),
            d.digest(),
            "the virtual time is part of each event"
        );
        assert_eq!(a.lines().len(), 2, "tail keeps the last two");
        assert_eq!(b.lines().len(), 2);
    }
}
