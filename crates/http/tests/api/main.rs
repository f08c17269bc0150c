//! End-to-end tests of the HTTP API: each test starts the real application on a random
//! port against its own fresh database and speaks to it over HTTP, as a client would.
//! The contract they check is `docs/api.md`. When a test's app is dropped, its database's
//! invariants are checked too (`invariants.rs`).

// A test that cannot go on should stop with a reason. `allow-expect-in-tests` covers
// only `#[test]` functions, not the helpers they share.
#![allow(clippy::expect_used)]

mod auth;
mod bad_input;
mod claimed;
mod compression;
mod concurrency;
mod conditional;
mod cors;
mod docs;
mod errors;
mod head;
mod headers;
mod health;
mod helpers;
mod history;
mod idempotency;
mod invariants;
mod login;
mod messages;
mod metrics;
mod model;
mod notes;
mod pagination;
mod search;
mod shutdown;
mod status;
mod status_races;
mod stream;
mod tickets;
mod users;
mod users_patch;
mod webhooks;
mod workflow;
