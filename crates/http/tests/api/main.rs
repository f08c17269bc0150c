//! End-to-end tests of the HTTP API: each test starts the real application on a random
//! port against its own fresh database and speaks to it over HTTP, as a client would.
//! The contract they check is `docs/api.md`.

// A test that cannot go on should stop with a reason. `allow-expect-in-tests` covers
// only `#[test]` functions, not the helpers they share.
#![allow(clippy::expect_used)]

mod auth;
mod bad_input;
mod concurrency;
mod errors;
mod headers;
mod health;
mod helpers;
mod login;
mod messages;
mod pagination;
mod status;
mod tickets;
mod users;
mod users_patch;
