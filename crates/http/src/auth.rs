//! Authentication: JWTs (HS256), bcrypt hashing off the async workers, login
//! throttling, and the `Authenticated` extractor that turns a request's token into the
//! domain's `Caller`.

mod caller;
mod hasher;
mod jwt;
mod throttle;

pub(crate) use caller::request_token;
pub use caller::{bearer_token, Authenticated, TOKEN_COOKIE};
pub use hasher::BcryptHasher;
pub use jwt::{TokenError, Tokens};
pub use throttle::LoginThrottle;
