//! openraft's async runtime for bucketfs: tokio for everything, except that openraft's random
//! numbers (election timeouts) come from a per-thread generator that the simulator re-seeds.
//!
//! The simulator runs every node on one thread and calls [`seed_thread_rng`] at the start of
//! each run, so the sequence of election timeouts — and with it who campaigns when — replays
//! from the run's seed. In production nothing re-seeds and each thread's generator starts from
//! operating-system entropy (drawn through `bucketfs_runtime::Entropy`, the project's seam).
//!
//! Unlike openraft-rt's `DeterministicRng`, which derives a seed per spawned task, the stream
//! here is per thread: simpler, and enough because the simulator is single-threaded. On a
//! multi-threaded runtime the draws are not reproducible, which production does not need.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::time::Duration;

use openraft::OptionalSend;
use openraft::TokioRuntime;
use openraft::async_runtime::{Select2, Select3, Select4};
use rand::SeedableRng;
use rand::TryRng;
use rand::rngs::StdRng;

thread_local! {
    static RNG: RefCell<StdRng> = RefCell::new(StdRng::seed_from_u64(
        bucketfs_runtime::Entropy::os().next_u64(),
    ));
}

/// Re-seeds the calling thread's generator; every later [`BucketfsRng`] draw on this thread
/// follows from `seed`.
pub fn seed_thread_rng(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = StdRng::seed_from_u64(seed));
}

/// A handle on the calling thread's generator (what openraft gets from `thread_rng()`).
/// Draws go to the shared per-thread stream, so a re-seed affects handles already taken.
#[derive(Debug, Default, Clone, Copy)]
pub struct BucketfsRng {
    // Not Send: the generator it draws from belongs to the thread that took it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl TryRng for BucketfsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(RNG.with(|r| rand::Rng::next_u32(&mut *r.borrow_mut())))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(RNG.with(|r| rand::Rng::next_u64(&mut *r.borrow_mut())))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        RNG.with(|r| rand::Rng::fill_bytes(&mut *r.borrow_mut(), dst));
        Ok(())
    }
}

/// openraft's tokio runtime with [`BucketfsRng`] as its random number generator.
#[derive(Debug)]
pub struct BucketfsRuntime {
    inner: TokioRuntime,
}

impl openraft::AsyncRuntime for BucketfsRuntime {
    type JoinError = <TokioRuntime as openraft::AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> =
        <TokioRuntime as openraft::AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as openraft::AsyncRuntime>::Sleep;
    type Instant = <TokioRuntime as openraft::AsyncRuntime>::Instant;
    type TimeoutError = <TokioRuntime as openraft::AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as openraft::AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = BucketfsRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn select2<A, B>(
        a: A,
        b: B,
    ) -> impl Future<Output = Select2<A::Output, B::Output>> + OptionalSend
    where
        A: Future + OptionalSend,
        B: Future + OptionalSend,
    {
        TokioRuntime::select2(a, b)
    }

    fn select3<A, B, C>(
        a: A,
        b: B,
        c: C,
    ) -> impl Future<Output = Select3<A::Output, B::Output, C::Output>> + OptionalSend
    where
        A: Future + OptionalSend,
        B: Future + OptionalSend,
        C: Future + OptionalSend,
    {
        TokioRuntime::select3(a, b, c)
    }

    fn select4<A, B, C, D>(
        a: A,
        b: B,
        c: C,
        d: D,
    ) -> impl Future<Output = Select4<A::Output, B::Output, C::Output, D::Output>> + OptionalSend
    where
        A: Future + OptionalSend,
        B: Future + OptionalSend,
        C: Future + OptionalSend,
        D: Future + OptionalSend,
    {
        TokioRuntime::select4(a, b, c, d)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        BucketfsRng::default()
    }

    type Mpsc = <TokioRuntime as openraft::AsyncRuntime>::Mpsc;
    type Watch = <TokioRuntime as openraft::AsyncRuntime>::Watch;
    type Oneshot = <TokioRuntime as openraft::AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as openraft::AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        BucketfsRuntime {
            inner: TokioRuntime::new(threads),
        }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.inner.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // tokio's pool instead of the trait's default thread-per-call.
        let handle = tokio::task::spawn_blocking(f);
        async move { handle.await.map_err(io::Error::other) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::AsyncRuntime;
    use rand::Rng;

    #[test]
    fn reseeding_replays_the_stream() {
        seed_thread_rng(7);
        let mut a = BucketfsRuntime::thread_rng();
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        seed_thread_rng(7);
        let mut b = BucketfsRuntime::thread_rng();
        let again: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(first, again);
        seed_thread_rng(8);
        let other: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_ne!(first, other);
    }

    #[test]
    fn passes_openraft_runtime_suite() {
        openraft_rt::testing::Suite::<BucketfsRuntime>::test_all();
    }
}
