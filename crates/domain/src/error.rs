//! Errors shared by every use case.

use std::error::Error as StdError;
use std::fmt;

/// Input that a value type refused. `field` names the JSON field the value came from,
/// `code` is a stable snake_case identifier and `message` a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

/// Whether a [`RepositoryError`] is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepositoryErrorKind {
    /// The infrastructure cannot serve now (pool timeout, connection lost, database
    /// shutting down or out of connections, hashing saturated): the request may be
    /// retried, and the HTTP layer answers 503.
    Unavailable,
    /// Anything else: a row that does not decode, a broken invariant, a statement the
    /// database refuses. A bug to fix, not an outage; the HTTP layer answers 500.
    Unexpected,
    /// The caller the request assumed (from its token) is no longer so: the user is
    /// gone, deactivated, or has another role now. Nothing was written; the request may
    /// be decided again for the caller as they are now (see
    /// [`crate::ports::TicketRepository`]).
    CallerChanged,
}

/// A failure of the infrastructure behind a port. The cause is kept for logs and never
/// shown to clients; the kind says whether it is an outage or a bug.
#[derive(Debug, thiserror::Error)]
#[error("repository failure: {source}")]
pub struct RepositoryError {
    kind: RepositoryErrorKind,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl RepositoryError {
    /// The infrastructure is unavailable now; retrying later may succeed.
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind: RepositoryErrorKind::Unavailable,
            source: source.into(),
        }
    }

    /// Something that should not happen: a bug or a broken invariant.
    pub fn unexpected(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind: RepositoryErrorKind::Unexpected,
            source: source.into(),
        }
    }

    /// The request's caller is not as it assumed; see
    /// [`RepositoryErrorKind::CallerChanged`].
    pub fn caller_changed(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind: RepositoryErrorKind::CallerChanged,
            source: source.into(),
        }
    }

    /// An unexpected failure described in words, for failures without an error value.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::unexpected(message.to_string())
    }

    pub fn kind(&self) -> RepositoryErrorKind {
        self.kind
    }
}
