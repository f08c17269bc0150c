//! Authentication: JWTs (HS256), bcrypt hashing off the async workers, and the
//! `Authenticated` extractor that turns a request's token into the domain's `Caller`.
//! Login throttling is the domain's (`domain::throttle`), counted in PostgreSQL.

mod caller;
mod hasher;
mod jwt;

pub(crate) use caller::request_token;
pub use caller::{bearer_token, Authenticated, ClaimedCaller, TOKEN_COOKIE};
pub use hasher::{BcryptHasher, HashingLoad};
pub use jwt::{TokenError, TokenSubject, Tokens};
