//! The ports of webhooks: the subscriptions and their outbox of deliveries
//! ([`WebhookRepository`]), and the one attempt of a delivery ([`WebhookSender`]).

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::TicketEvent;
use crate::page::{Page, PageRequest};
use crate::webhook::retry::{AttemptResult, Verdict};
use crate::webhook::{
    Attempt, EventSelection, Webhook, WebhookDescription, WebhookSecret, WebhookUrl,
};
use crate::{AttemptId, DeliveryId, RepositoryError, WebhookId};

/// A subscription to create; it starts active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub events: EventSelection,
    pub description: WebhookDescription,
    pub secret: WebhookSecret,
}

/// Changes to a subscription; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    pub url: Option<WebhookUrl>,
    pub events: Option<EventSelection>,
    pub description: Option<WebhookDescription>,
    pub active: Option<bool>,
}

impl WebhookChanges {
    pub fn is_empty(&self) -> bool {
        self == &WebhookChanges::default()
    }
}

/// A claim on a delivery: it is this worker's until `until`, and whatever the worker
/// records about it counts only while the delivery still carries this very lease (no
/// other worker has taken it over since). Leases of one delivery only ever grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub delivery_id: DeliveryId,
    pub until: OffsetDateTime,
}

/// A due delivery, claimed with a lease, with everything an attempt needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub lease: Lease,
    pub webhook_id: WebhookId,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    /// The subscription's state now; an inactive one gets nothing.
    pub active: bool,
    /// Attempts made before this one.
    pub attempts_made: u32,
    /// The event to deliver, as the History shows it.
    pub event: TicketEvent,
}

/// One attempt as it happened, and what it means for its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub result: AttemptResult,
    pub duration: Duration,
    pub verdict: Verdict,
}

/// How many deliveries of the outbox are in each unfinished or unsuccessful state, for
/// every subscription together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Waiting for an attempt: due or not, leased to a worker or not.
    pub pending: u64,
    /// Given up: after the last retry, on `410`, or with their subscription inactive.
    pub failed: u64,
}

/// Subscriptions, and the outbox of their deliveries. The outbox is filled by the
/// ticket repository, in the transaction of each event (see its event append).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    async fn create_webhook(&self, webhook: NewWebhook) -> Result<Webhook, RepositoryError>;

    /// Subscriptions by id (creation order).
    async fn list_webhooks(
        &self,
        page: PageRequest<WebhookId>,
    ) -> Result<Page<Webhook, WebhookId>, RepositoryError>;

    async fn find_webhook(&self, id: WebhookId) -> Result<Option<Webhook>, RepositoryError>;

    /// Applies the changes; `None` when the subscription does not exist.
    async fn update_webhook(
        &self,
        id: WebhookId,
        changes: WebhookChanges,
    ) -> Result<Option<Webhook>, RepositoryError>;

    /// Deletes the subscription with its deliveries and attempts; `false` when it did
    /// not exist. A delivery under way when it is deleted records nothing.
    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, RepositoryError>;

    /// The subscription's attempts, newest first; `None` when it does not exist.
    async fn list_attempts(
        &self,
        id: WebhookId,
        page: PageRequest<AttemptId>,
    ) -> Result<Option<Page<Attempt, AttemptId>>, RepositoryError>;

    /// Claims up to `limit` pending deliveries that are due and not leased (or whose
    /// lease has expired), oldest due first, each leased for `lease`. Deliveries that
    /// another worker is claiming at the same moment are skipped, never shared: two
    /// claims never return the same delivery while its lease runs.
    async fn claim_due(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError>;

    /// Records the attempt and applies its verdict to the delivery (its state, the
    /// next attempt's time, and for [`Verdict::Disable`] the subscription's
    /// deactivation), all in one transaction, and ends the lease; only while the
    /// delivery still carries `lease`. `false` when it does not (another worker took
    /// it over after the lease expired, or the subscription was deleted): nothing is
    /// written then.
    async fn record_attempt(
        &self,
        lease: Lease,
        attempt: AttemptRecord,
    ) -> Result<bool, RepositoryError>;

    /// Ends a delivery without an attempt (its subscription is inactive), only while it
    /// still carries `lease`; `false` when it does not.
    async fn drop_delivery(&self, lease: Lease) -> Result<bool, RepositoryError>;

    /// Counts the outbox's pending and failed deliveries. Called periodically by every
    /// replica, so it must stay cheap however many deliveries have been made.
    ///
    /// # Errors
    /// When the database is unavailable.
    async fn count_deliveries(&self) -> Result<DeliveryCounts, RepositoryError>;
}

/// One attempt, as made by the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAttempt {
    pub result: AttemptResult,
    pub duration: Duration,
}

/// Makes attempts: signs the event and POSTs it to the subscription's URL.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// One attempt. Never fails: a failure to get an answer is an
    /// [`AttemptResult::NoAnswer`] saying why.
    async fn send(&self, delivery: &ClaimedDelivery) -> SentAttempt;
}
