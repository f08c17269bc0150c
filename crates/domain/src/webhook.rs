//! Webhook subscriptions: a superuser's request that every event of the ticket event
//! log of some types be POSTed to a URL, signed, and retried until it is delivered or
//! given up. This module holds the subscription's validated values, who may manage
//! subscriptions, the retry policy ([`retry`]) and which addresses a delivery may reach
//! ([`target`]); the use cases are in [`crate::webhooks`].

mod description;
mod events;
pub mod retry;
mod secret;
pub mod target;
mod url;

use std::time::Duration;

use time::OffsetDateTime;

pub use self::description::WebhookDescription;
pub use self::events::EventSelection;
pub use self::secret::WebhookSecret;
pub use self::url::WebhookUrl;
use crate::{AttemptId, EventId, Role, WebhookId};

/// A subscription as the API shows it. The secret is not part of it: it is shown once,
/// when the subscription is created, and afterwards only the deliveries use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub created_at: OffsetDateTime,
    pub url: WebhookUrl,
    pub events: EventSelection,
    pub description: WebhookDescription,
    /// An inactive subscription receives nothing, not even the deliveries that were
    /// due when it was deactivated.
    pub active: bool,
}

/// One attempt to deliver an event to a subscription, as `GET
/// /webhooks/{id}/deliveries` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: AttemptId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    /// 1 for the first attempt of a delivery, 2 for its first retry, and so on.
    pub attempt: u32,
    /// The receiver's HTTP status; `None` when no answer came (then `error` says why).
    pub status_code: Option<u16>,
    /// Why no answer came; `None` when one did.
    pub error: Option<String>,
    pub duration: Duration,
    pub created_at: OffsetDateTime,
    /// When the next attempt is due; `None` when none is (delivered, given up, or the
    /// subscription disabled).
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// Who may create, read, change and delete subscriptions, and read their deliveries:
/// superusers only. A subscription receives every event, internal notes included, so
/// it is as powerful as reading every ticket; and its URL may carry credentials of the
/// receiving system.
pub fn may_manage(role: Role) -> bool {
    match role {
        Role::Superuser => true,
        Role::Customer | Role::Staff => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_superusers_manage_webhooks() {
        assert!(may_manage(Role::Superuser));
        assert!(!may_manage(Role::Staff));
        assert!(!may_manage(Role::Customer));
    }
}
