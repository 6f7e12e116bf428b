//! What a call can end with, shaped by what the caller can do about it.

use bucketfs_meta_state::NsError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The namespace refused the command or query (no such file, exists, ...). For a write
    /// this is a committed result: retrying the same command gets the same answer.
    #[error(transparent)]
    Ns(NsError),
    /// No node gave a definitive answer before the call's deadline (leader election, lost
    /// quorum, unreachable nodes). For a write the outcome is unknown: it may have been
    /// applied. Retry later; a new call is a new write.
    #[error("{op}: no answer after {attempts} attempts: {last_error}")]
    Unavailable {
        op: &'static str,
        attempts: u32,
        last_error: String,
    },
    /// The cluster refused the request as malformed or impossible; retrying will not help.
    #[error("{op}: refused: {message}")]
    Invalid { op: &'static str, message: String },
    /// A membership change was refused (another is in progress, unknown learner, ...); the
    /// message says why. Retry once the cause is gone.
    #[error("{op}: membership change refused: {message}")]
    Membership { op: &'static str, message: String },
    /// A node answered something this client cannot decode: mismatched versions.
    #[error("{op}: undecodable answer: {message}")]
    Protocol { op: &'static str, message: String },
    /// The client was built with unusable settings (no address, an invalid address).
    #[error("client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unavailable { .. } | ClientError::Membership { .. }
        )
    }
}
