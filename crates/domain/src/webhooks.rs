//! Use cases of webhooks: managing subscriptions and reading their deliveries
//! ([`WebhookService`], superusers only), and delivering the outbox
//! ([`DeliveryService`], run by a worker in every process).

use std::sync::Arc;
use std::time::Duration;

use crate::page::{Page, PageRequest};
use crate::ports::{
    AttemptRecord, ClaimedDelivery, DeliveryCounts, NewWebhook, WebhookChanges, WebhookRepository,
    WebhookSender,
};
use crate::webhook::retry::{self, RetryDelays, Verdict};
use crate::webhook::{self, Attempt, Webhook};
use crate::{AttemptId, Caller, RepositoryError, WebhookId};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The caller is not a superuser.
    #[error("only superusers manage webhooks")]
    SuperuserOnly,
    #[error("webhook not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

/// Subscriptions and their attempts, for superusers only: every method that reads or
/// changes them refuses anyone else before it touches the repository. The outbox's
/// counts ([`WebhookService::delivery_counts`]) are the service's own business.
#[derive(Clone)]
pub struct WebhookService {
    webhooks: Arc<dyn WebhookRepository>,
}

impl WebhookService {
    pub fn new(webhooks: Arc<dyn WebhookRepository>) -> Self {
        Self { webhooks }
    }

    /// Refuses anyone but a superuser; every method does this first, and adapters may
    /// do it before they read the rest of a request.
    pub fn authorize(caller: Caller) -> Result<(), WebhookError> {
        if webhook::may_manage(caller.role) {
            Ok(())
        } else {
            Err(WebhookError::SuperuserOnly)
        }
    }

    pub async fn create(&self, caller: Caller, new: NewWebhook) -> Result<Webhook, WebhookError> {
        Self::authorize(caller)?;
        Ok(self.webhooks.create_webhook(new).await?)
    }

    pub async fn list(
        &self,
        caller: Caller,
        page: PageRequest<WebhookId>,
    ) -> Result<Page<Webhook, WebhookId>, WebhookError> {
        Self::authorize(caller)?;
        Ok(self.webhooks.list_webhooks(page).await?)
    }

    pub async fn get(&self, caller: Caller, id: WebhookId) -> Result<Webhook, WebhookError> {
        Self::authorize(caller)?;
        self.webhooks
            .find_webhook(id)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    /// Applies the changes; with none, the subscription as it is.
    pub async fn update(
        &self,
        caller: Caller,
        id: WebhookId,
        changes: WebhookChanges,
    ) -> Result<Webhook, WebhookError> {
        Self::authorize(caller)?;
        let updated = if changes.is_empty() {
            self.webhooks.find_webhook(id).await?
        } else {
            self.webhooks.update_webhook(id, changes).await?
        };
        updated.ok_or(WebhookError::NotFound)
    }

    pub async fn delete(&self, caller: Caller, id: WebhookId) -> Result<(), WebhookError> {
        Self::authorize(caller)?;
        if self.webhooks.delete_webhook(id).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound)
        }
    }

    /// The subscription's attempts, newest first.
    pub async fn attempts(
        &self,
        caller: Caller,
        id: WebhookId,
        page: PageRequest<AttemptId>,
    ) -> Result<Page<Attempt, AttemptId>, WebhookError> {
        Self::authorize(caller)?;
        self.webhooks
            .list_attempts(id, page)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    /// How many deliveries are pending and failed, for every subscription together: for
    /// the service's metrics, so no caller is asked for. The counts name no
    /// subscription, event or receiver.
    pub async fn delivery_counts(&self) -> Result<DeliveryCounts, RepositoryError> {
        self.webhooks.count_deliveries().await
    }
}

/// What became of a claimed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// An attempt was made and recorded with this verdict.
    Attempted(Verdict),
    /// The subscription is inactive: the delivery ended without an attempt.
    Dropped,
    /// The lease was lost before the result could be recorded (it expired and another
    /// worker took the delivery over, or the subscription was deleted): nothing was
    /// recorded, and the other worker's result stands.
    LeaseLost,
}

/// How deliveries are made: the delays between attempts and how long a claim lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    pub retry_delays: RetryDelays,
    /// Longer than an attempt can take, so that no other worker takes a delivery over
    /// while its attempt may still be under way.
    pub lease: Duration,
}

/// Delivering the outbox: claiming due deliveries, making one attempt each, and
/// recording what the retry policy makes of it.
#[derive(Clone)]
pub struct DeliveryService {
    webhooks: Arc<dyn WebhookRepository>,
    sender: Arc<dyn WebhookSender>,
    policy: DeliveryPolicy,
}

impl DeliveryService {
    pub fn new(
        webhooks: Arc<dyn WebhookRepository>,
        sender: Arc<dyn WebhookSender>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            webhooks,
            sender,
            policy,
        }
    }

    /// Claims up to `limit` due deliveries for this worker.
    pub async fn claim(&self, limit: usize) -> Result<Vec<ClaimedDelivery>, RepositoryError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.webhooks.claim_due(limit, self.policy.lease).await
    }

    /// Makes one attempt of a claimed delivery and records it, or drops the delivery
    /// when its subscription is inactive.
    pub async fn deliver(
        &self,
        delivery: ClaimedDelivery,
    ) -> Result<DeliveryOutcome, RepositoryError> {
        if !delivery.active {
            let dropped = self.webhooks.drop_delivery(delivery.lease).await?;
            return Ok(if dropped {
                DeliveryOutcome::Dropped
            } else {
                DeliveryOutcome::LeaseLost
            });
        }
        let sent = self.sender.send(&delivery).await;
        let attempt = delivery.attempts_made.saturating_add(1);
        let verdict = retry::verdict(attempt, &sent.result, &self.policy.retry_delays);
        let record = AttemptRecord {
            result: sent.result,
            duration: sent.duration,
            verdict,
        };
        Ok(
            if self.webhooks.record_attempt(delivery.lease, record).await? {
                DeliveryOutcome::Attempted(verdict)
            } else {
                DeliveryOutcome::LeaseLost
            },
        )
    }
}

#[cfg(test)]
mod tests;
