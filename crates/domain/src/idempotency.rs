//! Retry-safe writes: a client names a write with an `Idempotency-Key`; the adapter
//! stores the key, with the response it answered, in the same transaction as the write,
//! so that a repeat of the request replays that response instead of writing again.

use std::fmt;
use std::sync::Arc;

use crate::ValidationError;

/// How long a key is remembered. The contract asks for at least 24 hours.
pub const RETENTION: time::Duration = time::Duration::hours(24);

/// A client's name for one write: 1 to 255 visible ASCII characters. Keys belong to
/// the user who sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let visible = raw.bytes().all(|b| b.is_ascii_graphic());
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !visible {
            return Err(ValidationError::new(
                "Idempotency-Key",
                "idempotency_key_invalid",
                "The header `Idempotency-Key` must hold 1 to 255 visible ASCII characters \
                 (no spaces).",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies the request a key was first used with (method, path and body, as
/// the HTTP layer hashes them). A repeat must have the same fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFingerprint(pub [u8; 32]);

/// The response that a key replays, as the HTTP layer made it. Opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

/// Makes the response to remember from what the write returned.
pub type Render<T> = Arc<dyn Fn(&T) -> StoredResponse + Send + Sync>;

/// A write guarded by a key: the adapter stores `render`'s response under the key in
/// the transaction of the write.
pub struct Idempotency<T> {
    pub key: IdempotencyKey,
    pub fingerprint: RequestFingerprint,
    pub render: Render<T>,
}

impl<T> Clone for Idempotency<T> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            fingerprint: self.fingerprint,
            render: Arc::clone(&self.render),
        }
    }
}

impl<T> fmt::Debug for Idempotency<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("key", &self.key)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The outcome of a write that may have been made before under the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    /// Written now.
    Fresh(T),
    /// Written by an earlier request with the same key: its response, again.
    Replayed(StoredResponse),
}

/// Why a key cannot guard this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyConflict {
    /// A request with the same key is still running (409).
    #[error("a request with this idempotency key is still running")]
    InUse,
    /// The key was first used with another method, path or body (422).
    #[error("the idempotency key was used for another request")]
    Reused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse("8e03978e-40d5-43e8-bc93-6894a57f9324").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in [
            "",
            "two words",
            "tab\there",
            "é",
            "\u{7f}",
            &"k".repeat(256),
        ] {
            assert_eq!(
                IdempotencyKey::parse(bad).map_err(|e| e.code),
                Err("idempotency_key_invalid"),
                "{bad:?}"
            );
        }
    }
}
