//! Issuing and verifying the API's JWTs: HS256 only, with `exp`, `iss`, `aud` and
//! `sub` required and a small leeway for clock skew.

use std::time::Duration;

use domain::UserId;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Clock skew tolerated between replicas when checking `exp`.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: i64,
    iss: String,
    aud: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is invalid")]
    Invalid,
    #[error("the token could not be signed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// Signs and checks tokens with one secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user: UserId) -> Result<String, TokenError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now.saturating_add(ttl),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(TokenError::Signing)
    }

    /// The user a valid token was issued for.
    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        UserId::parse(&data.claims.sub).ok_or(TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &[u8]) -> Tokens {
        Tokens::new(secret, "tickets", "tickets-api", Duration::from_secs(60))
    }

    #[test]
    fn round_trip_and_refusals() {
        let secret = [7u8; 32];
        let t = tokens(&secret);
        let user = UserId::new(42).expect("positive");
        let token = t.issue(user).expect("signs");
        assert_eq!(t.verify(&token).ok(), Some(user));
        assert!(tokens(&[8u8; 32]).verify(&token).is_err(), "other key");
        assert!(t.verify("not.a.token").is_err());
        let other_audience = Tokens::new(&secret, "tickets", "elsewhere", Duration::from_secs(60));
        assert!(
            other_audience.verify(&token).is_err(),
            "audience is checked"
        );
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: "42".into(),
                exp: OffsetDateTime::now_utc().unix_timestamp() + 60,
                iat: 0,
                iss: "tickets".into(),
                aud: "tickets-api".into(),
            },
            &EncodingKey::from_secret(&secret),
        )
        .expect("signs");
        assert!(t.verify(&hs512).is_err(), "only HS256 is accepted");
        let expired = encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "42".into(),
                exp: OffsetDateTime::now_utc().unix_timestamp() - 60,
                iat: 0,
                iss: "tickets".into(),
                aud: "tickets-api".into(),
            },
            &EncodingKey::from_secret(&secret),
        )
        .expect("signs");
        assert!(t.verify(&expired).is_err(), "expired beyond the leeway");
    }
}
