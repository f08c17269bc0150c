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

/// A failure of the infrastructure behind a port (database down, pool exhausted,
/// hashing pool gone). The cause is kept for logs and never shown to clients.
#[derive(Debug, thiserror::Error)]
#[error("repository failure: {source}")]
pub struct RepositoryError {
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl RepositoryError {
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }

    /// Builds an error from a plain description, for failures without an error value.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new(message.to_string())
    }
}
