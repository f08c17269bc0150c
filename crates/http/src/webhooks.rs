//! Delivering webhooks: the Standard Webhooks signature ([`signing`]), the HTTP client
//! that makes one attempt with the SSRF guard ([`sender`]), and the worker that every
//! process runs on the shared outbox ([`worker`]). What an attempt means for its
//! delivery (retry, give up, disable) is the domain's rule; this only carries it out.

pub mod sender;
pub mod signing;
pub mod worker;

use std::time::Duration;

/// How long an attempt may take, from connecting to the answer's status: an answer
/// later than this is no delivery (the contract's 10 seconds).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
