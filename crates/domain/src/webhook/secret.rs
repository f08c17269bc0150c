use std::fmt;

/// A subscription's signing secret, `whsec_` and the base64 of random bytes (the
/// Standard Webhooks form). The HTTP adapter makes it and signs with it; here it is
/// only carried, and never printed: `Debug` shows no part of it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself, to store, to show once, or to sign with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_part_of_the_secret() {
        let secret = WebhookSecret::new("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ".to_owned());
        let printed = format!("{secret:?} {:?}", Some(&secret));
        assert!(!printed.contains("c2Vj"), "{printed}");
        assert!(!printed.contains("whsec"), "{printed}");
    }
}
