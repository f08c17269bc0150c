//! The tickets HTTP API: actix-web routes over the domain's use cases, wired to the
//! PostgreSQL adapter. Start with [`startup::Application`]; routes are listed in
//! [`routes`], status codes are chosen in [`error`], and [`openapi`] describes them.

pub mod auth;
pub mod body;
pub mod compress;
pub mod conditional;
pub mod cors;
pub mod dto;
pub mod error;
pub mod head;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod request_id;
pub mod routes;
pub mod settings;
pub mod shutdown;
pub mod sse;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;
