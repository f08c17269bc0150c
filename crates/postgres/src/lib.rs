//! The PostgreSQL adapter of the tickets service: a connection pool, the schema
//! migrations, and the implementations of the domain's repository ports.
//!
//! Every query is prepared once per connection (`prepare_cached`) and checks
//! visibility inside its SQL, so a caller can never read a row it may not see by
//! forgetting a check in Rust. Every write is one transaction that also appends its
//! events to the ticket event log. Database failures become
//! [`domain::RepositoryError`]s, unavailable (503) or unexpected (500) as
//! [`error`] classifies them, and are never shown.

mod confirm;
mod enums;
mod error;
mod events;
mod feed;
mod idempotency;
mod migrate;
mod pool;
mod query;
mod rows;
mod throttle;
mod tickets;
mod tx;
mod users;
mod visibility;
mod webhooks;

#[cfg(feature = "test-support")]
pub mod testing;

pub use deadpool_postgres::{Pool, WeakPool};
pub use feed::{
    CommitSignal, Commits, EventTail, Listeners, Subscription, TailReconnections, TailSettings,
};
pub use migrate::{run_migrations, MigrationError};
pub use pool::{create_pool, create_worker_pool, ping, PoolSettings, PoolSetupError};
pub use throttle::PgLoginFailureRepository;
pub use tickets::PgTicketRepository;
pub use users::PgUserRepository;
pub use webhooks::PgWebhookRepository;
