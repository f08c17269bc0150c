//! The repositories against a real PostgreSQL, each test on a fresh database of its
//! own (see `postgres_adapter::testing`). One test binary keeps linking cheap.

// Clippy allows `expect` in `#[test]` functions only; in the helpers here, too, a
// failed `expect` is a failed test.
#![allow(clippy::expect_used)]

mod repositories {
    pub mod confirm;
    pub mod errors;
    pub mod events;
    pub mod feed;
    pub mod idempotency;
    pub mod messages;
    pub mod migrations;
    pub mod pagination;
    pub mod search;
    pub mod support;
    pub mod throttle;
    pub mod tickets;
    pub mod users;
    pub mod webhooks;
}
