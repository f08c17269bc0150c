//! The tickets service's domain: validated values, the ticket status rules, the
//! repository ports and the use cases. Nothing here performs I/O; adapters implement
//! the ports in [`ports`] and the HTTP layer calls the services in [`users`] and
//! [`tickets`].
//!
//! The use cases open `tracing` spans (at `debug`), so that logs show the time a request
//! spent in each. `tracing` is a facade, like `log`: it does no I/O, and the binary's
//! subscriber decides where spans go, so the rules stay pure and testable without one.

pub mod error;
pub mod event;
pub mod feed;
pub mod idempotency;
pub mod ids;
pub mod message;
pub mod page;
pub mod ports;
pub mod priority;
pub mod status;
pub mod throttle;
pub mod ticket;
pub mod tickets;
pub mod user;
pub mod users;
pub mod values;
pub mod webhook;
pub mod webhooks;
pub mod workflow;

pub use error::{RepositoryError, RepositoryErrorKind, ValidationError};
pub use ids::{AttemptId, DeliveryId, EventId, MessageId, TicketId, UserId, WebhookId};
pub use message::{Message, MessageType};
pub use priority::Priority;
pub use status::TicketStatus;
pub use ticket::Ticket;
pub use user::{Caller, Role, User};
