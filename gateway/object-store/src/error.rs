//! One error type for every backend, shaped by what the caller can do about it rather than by
//! which HTTP status produced it. The S3 backend maps SDK errors into it (`s3::map_sdk_error`), the
//! in-memory store produces the same variants for the same situations, and the fault decorator
//! injects them, so gateway code written against one backend behaves the same on the others.

/// What went wrong with an object-store call.
///
/// Any error on a mutating call that [`is_retryable`](ObjectStoreError::is_retryable) may have
/// been applied anyway (a response lost after S3 committed the write, or a 500 after the commit).
/// A retried conditional write can therefore fail with `PreconditionFailed` because the first
/// attempt succeeded; callers resolve that by comparing the current ETag with the one they wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectStoreError {
    /// The key, version, upload or bucket does not exist (404 NoSuchKey, NoSuchVersion,
    /// NoSuchUpload, NoSuchBucket; also a version that is a delete marker). Also returned by an
    /// `IfMatch` write to a key that has no current object, as S3 does.
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional request's precondition did not hold (412): someone else wrote the key, or
    /// a create-only write found an existing object. Re-read, then decide.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// A concurrent conflicting operation on the same key (409 ConditionalRequestConflict,
    /// OperationAborted). Retry after re-reading; the retry may then see `PreconditionFailed`.
    #[error("conflicting concurrent request: {0}")]
    Conflict(String),
    /// A ranged read starting at or past the end of the object (416 InvalidRange).
    #[error("range not satisfiable: {0}")]
    RangeNotSatisfiable(String),
    /// The service asked us to slow down (503 SlowDown, 429). Retry with a longer backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The service answered with a transient failure (500, 502, 503, 504, RequestTimeout).
    #[error("transient service error: {0}")]
    Retryable(String),
    /// Credentials are missing, wrong or lack permission (403). Not fixable by retrying.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The request itself is wrong (400-class other than the above: too-small part, bad part
    /// list, oversized metadata, bad range, missing bucket configuration). A bug or a
    /// configuration error; retrying will not help.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No complete response: connection failure, timeout, truncated or unparsable response. The
    /// request may or may not have reached the service.
    #[error("transport error: {0}")]
    Transport(String),
}

impl ObjectStoreError {
    /// True when repeating the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ObjectStoreError::Conflict(_)
                | ObjectStoreError::Throttled(_)
                | ObjectStoreError::Retryable(_)
                | ObjectStoreError::Transport(_)
        )
    }

    /// True for `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ObjectStoreError::NotFound(_))
    }

    /// True for `PreconditionFailed`.
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, ObjectStoreError::PreconditionFailed(_))
    }
}

pub type Result<T, E = ObjectStoreError> = std::result::Result<T, E>;
