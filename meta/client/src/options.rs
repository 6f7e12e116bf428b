//! Client settings. Durations bound every wait: no call blocks longer than `call_timeout`
//! (or `admin_timeout` for membership changes).

use std::sync::Arc;
use std::time::Duration;

use bucketfs_meta_state::types::ClientId;
use bucketfs_runtime::{Clock, Entropy, SystemClock};

#[derive(Clone)]
pub struct ClientOptions {
    /// Overall deadline of one write or read, retries included.
    pub call_timeout: Duration,
    /// Deadline of one attempt against one node.
    pub rpc_timeout: Duration,
    /// Overall deadline of admin calls (init, membership changes, which may wait for a
    /// learner to catch up); also their per-attempt deadline.
    pub admin_timeout: Duration,
    /// Deadline for opening a TCP connection to a node.
    pub connect_timeout: Duration,
    /// First backoff between attempts; doubled per failure up to `backoff_max`, with the
    /// upper half of each step drawn at random.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub clock: Arc<dyn Clock>,
    pub entropy: Entropy,
    /// The writer identity for exactly-once; drawn from `entropy` when `None`. Reusing one
    /// across processes is only safe if their `seq`s never overlap, so leave it `None`.
    pub client_id: Option<ClientId>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            call_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(3),
            admin_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
            clock: Arc::new(SystemClock),
            entropy: Entropy::os(),
            client_id: None,
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("call_timeout", &self.call_timeout)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("admin_timeout", &self.admin_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}
