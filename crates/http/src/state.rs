//! The one application state value that every handler receives.

use std::sync::Arc;

use domain::throttle::LoginThrottle;
use domain::tickets::TicketService;
use domain::users::UserService;
use domain::webhooks::WebhookService;
use postgres_adapter::{EventTail, Pool};
use secrecy::SecretString;

use crate::auth::Tokens;
use crate::metrics::Metrics;
use crate::pagination::CursorCodec;
use crate::settings::EventSettings;
use crate::shutdown::Draining;
use crate::sse::LiveEvent;

/// Each actix-web worker has its own (see `startup`): the services and the pool that
/// serve requests are the worker's, whose thread drives their connections; the rest is
/// shared by every worker.
#[derive(Clone)]
pub struct AppState {
    pub users: UserService,
    pub tickets: TicketService,
    pub webhooks: WebhookService,
    pub tokens: Arc<Tokens>,
    pub throttle: LoginThrottle,
    pub cursors: Arc<CursorCodec>,
    /// Registration of staff by key is off when `None`.
    pub staff_api_key: Option<SecretString>,
    /// Mark the login cookie `Secure` (the service is reached over HTTPS).
    pub secure_cookies: bool,
    /// The worker's pool, for the readiness probe.
    pub pool: Pool,
    /// Set once the service stops: readiness then answers 503, and streams end.
    pub draining: Draining,
    /// The tail of the event log, which feeds the live streams.
    pub feed: Arc<EventTail<LiveEvent>>,
    pub events: EventSettings,
    /// What `GET /metrics` renders.
    pub metrics: Arc<Metrics>,
}
