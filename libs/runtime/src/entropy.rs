use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A shared source of random numbers. Cloning shares the stream.
#[derive(Debug, Clone)]
pub struct Entropy {
    rng: Arc<Mutex<StdRng>>,
}

impl Entropy {
    /// Seeded from the operating system; for production.
    #[allow(clippy::disallowed_methods)] // the one place OS entropy enters
    pub fn os() -> Self {
        Entropy {
            rng: Arc::new(Mutex::new(rand::make_rng())),
        }
    }

    /// A reproducible stream; for the simulator and tests.
    pub fn seeded(seed: u64) -> Self {
        Entropy {
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }

    pub fn next_u64(&self) -> u64 {
        self.lock().next_u64()
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        (self.next_u64() as f64 / u64::MAX as f64) < p
    }

    /// An independent stream derived from this one (for one simulated node, say).
    pub fn fork(&self) -> Entropy {
        Entropy::seeded(self.next_u64())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StdRng> {
        // A panic while holding the lock cannot leave the RNG in a broken state.
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }
}
