//! Issuing and verifying the API's JWTs: HS256 only, with `exp`, `iss`, `aud` and
//! `sub` required and a small leeway for clock skew.

use std::time::Duration;

use domain::{Caller, Role, UserId};
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
    /// The user's role when the token was issued (`customer`, `staff`, `superuser`):
    /// what a request assumes until the database confirms it (see `auth::claimed`).
    /// Tokens issued before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// A verified token's subject, and the role it was issued for when it names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSubject {
    pub user: UserId,
    pub role: Option<Role>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Staff => "staff",
        Role::Superuser => "superuser",
    }
}

fn role_named(name: &str) -> Option<Role> {
    [Role::Customer, Role::Staff, Role::Superuser]
        .into_iter()
        .find(|role| role_name(*role) == name)
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

    /// A token for `caller`, naming their role as it is now.
    pub fn issue(&self, caller: Caller) -> Result<String, TokenError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: caller.id.to_string(),
            iat: now,
            exp: now.saturating_add(ttl),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            role: Some(role_name(caller.role).to_owned()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(TokenError::Signing)
    }

    /// The user a valid token was issued for, and their role then. An unknown role
    /// name counts as none: the database decides.
    pub fn verify(&self, token: &str) -> Result<TokenSubject, TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let user = UserId::parse(&data.claims.sub).ok_or(TokenError::Invalid)?;
        let role = data.claims.role.as_deref().and_then(role_named);
        Ok(TokenSubject { user, role })
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
        for role in [Role::Customer, Role::Staff, Role::Superuser] {
            let token = t.issue(Caller { id: user, role }).expect("signs");
            let subject = TokenSubject {
                user,
                role: Some(role),
            };
            assert_eq!(t.verify(&token).ok(), Some(subject));
        }
        let token = t
            .issue(Caller {
                id: user,
                role: Role::Staff,
            })
            .expect("signs");
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
                role: None,
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
                role: None,
            },
            &EncodingKey::from_secret(&secret),
        )
        .expect("signs");
        assert!(t.verify(&expired).is_err(), "expired beyond the leeway");
    }

    #[test]
    fn a_token_without_a_known_role_names_none() {
        let secret = [7u8; 32];
        let t = tokens(&secret);
        for role in [None, Some("admin".to_owned())] {
            let token = encode(
                &Header::new(Algorithm::HS256),
                &Claims {
                    sub: "42".into(),
                    exp: OffsetDateTime::now_utc().unix_timestamp() + 60,
                    iat: 0,
                    iss: "tickets".into(),
                    aud: "tickets-api".into(),
                    role: role.clone(),
                },
                &EncodingKey::from_secret(&secret),
            )
            .expect("signs");
            let subject = t.verify(&token).expect("valid");
            assert_eq!(subject.role, None, "{role:?}");
            assert_eq!(subject.user.get(), 42);
        }
    }
}
