//! The Standard Webhooks scheme: a subscription's secret is `whsec_` and the base64 of
//! random bytes; an attempt carries `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 of HMAC-SHA256 over "id.timestamp.body">`, keyed with
//! the secret's decoded bytes. The tests check it against the `standardwebhooks` crate.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use domain::webhook::WebhookSecret;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes of a new secret: as long as SHA-256's block of output, the most that an
/// HMAC-SHA256 key usefully holds.
const SECRET_BYTES: usize = 32;

/// A new random secret.
pub fn new_secret() -> WebhookSecret {
    let mut key = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    WebhookSecret::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The secret's key could not be read; its text is not part of the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscription's secret is not `whsec_` and base64")]
pub struct UnusableSecret;

/// The `webhook-signature` value of one attempt.
pub fn signature(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, UnusableSecret> {
    let encoded = secret
        .expose()
        .strip_prefix(SECRET_PREFIX)
        .ok_or(UnusableSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| UnusableSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| UnusableSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference implementations.
    #[test]
    fn signs_like_the_specification_example() {
        let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned())
        );
    }

    #[test]
    fn new_secrets_are_random_and_usable() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(
            STANDARD
                .decode(&a.expose()[SECRET_PREFIX.len()..])
                .map(|key| key.len()),
            Ok(SECRET_BYTES)
        );
        assert!(signature(&a, "msg", 1, b"{}").is_ok());
    }

    #[test]
    fn a_malformed_secret_signs_nothing() {
        for broken in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"] {
            let secret = WebhookSecret::new(broken.to_owned());
            assert_eq!(signature(&secret, "msg", 1, b"{}"), Err(UnusableSecret));
        }
    }
}
