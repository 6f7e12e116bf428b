//! The machine seams of bucketfs. Core code takes time and randomness only through these
//! handles, so the simulator can replace them and replay a run from a seed:
//!
//! * [`Clock`]: a monotonic instant (tokio's, which the simulator pauses and advances) and
//!   wall-clock time for timestamps and leases.
//! * [`Entropy`]: random numbers. [`Entropy::os`] in production, [`Entropy::seeded`] in
//!   the simulator and in tests.

pub mod clock;
pub mod entropy;

pub use clock::{Clock, SimClock, SystemClock};
pub use entropy::Entropy;
