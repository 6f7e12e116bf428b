use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Time as the core code sees it.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time for timeouts and intervals.
    fn now(&self) -> Instant;
    /// Wall-clock time since the Unix epoch, in nanoseconds, for file times and leases.
    fn wall_nanos(&self) -> i128;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[allow(clippy::disallowed_methods)] // the one place the real wall clock is read
    fn wall_nanos(&self) -> i128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0)
    }
}

/// A clock for the simulator: wall time is a fixed epoch plus tokio's (paused, virtual)
/// elapsed time plus a per-node offset that the simulator can change to model skew.
#[derive(Debug, Clone)]
pub struct SimClock {
    start: Instant,
    epoch_nanos: i128,
    offset_nanos: Arc<AtomicI64>,
}

impl SimClock {
    /// `epoch_nanos` is the wall time at `start`; every node of a run should get the same.
    pub fn new(start: Instant, epoch_nanos: i128) -> Self {
        SimClock {
            start,
            epoch_nanos,
            offset_nanos: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Moves this node's wall clock relative to true (virtual) time.
    pub fn set_offset(&self, offset: Duration, ahead: bool) {
        let n = offset.as_nanos().min(i64::MAX as u128) as i64;
        self.offset_nanos
            .store(if ahead { n } else { -n }, Ordering::Relaxed);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_nanos(&self) -> i128 {
        let elapsed = Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos() as i128;
        self.epoch_nanos + elapsed + self.offset_nanos.load(Ordering::Relaxed) as i128
    }
}
