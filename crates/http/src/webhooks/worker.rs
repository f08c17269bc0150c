//! The delivery worker that every process runs. Replicas share the outbox through the
//! repository's leases: each claims due deliveries for itself, makes one attempt of each
//! (several at once, up to `concurrency`), and records what the domain's retry policy
//! makes of it. A delivery whose process dies under way is claimed again once its lease
//! ends, so nothing is lost; its receiver may then see it twice, with the same
//! `webhook-id`.
//!
//! The worker looks at the outbox when the process's event tail hears of a commit (a
//! write queues its deliveries in its own transaction, so they are there by then), so a
//! delivery starts within milliseconds of its write on the replica that hears it. The
//! poll interval is the safety net: retries that come due, a lost notification, the
//! leases of a killed replica.

use std::time::Duration;

use domain::webhooks::{DeliveryOutcome, DeliveryService};
use postgres_adapter::Commits;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::shutdown::Draining;
use crate::startup::error_chain;

/// How the worker paces itself.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Attempts under way at once.
    pub concurrency: usize,
    /// How often the outbox is looked at when nothing else wakes the worker.
    pub poll_interval: Duration,
}

/// The least time between two looks at the outbox that commits ask for. Under a load of
/// writes, commits come by the hundred per second; each look is a statement on the
/// pool, even with no webhook at all. Deliveries then wait at most this long.
const COMMIT_SPACING: Duration = Duration::from_millis(20);

/// Claims and delivers until the service starts stopping, then lets the attempts under
/// way finish (each is bounded by the attempt timeout) and returns.
pub async fn run(
    service: DeliveryService,
    settings: WorkerSettings,
    draining: Draining,
    mut commits: Commits,
) {
    let concurrency = settings.concurrency.max(1);
    let mut under_way = JoinSet::new();
    let stopping = draining.started();
    tokio::pin!(stopping);
    loop {
        let free = concurrency.saturating_sub(under_way.len());
        let looked = Instant::now();
        if free > 0 {
            match service.claim(free).await {
                Ok(claimed) => {
                    for delivery in claimed {
                        under_way.spawn(deliver(service.clone(), delivery));
                    }
                }
                Err(e) => tracing::warn!(
                    error = %error_chain(&e),
                    "could not claim webhook deliveries; will retry"
                ),
            }
        }
        // A finished attempt frees a slot and may have made a retry due at once, and a
        // commit may have queued deliveries: look again then. Otherwise wait for the
        // next turn.
        tokio::select! {
            Some(_) = under_way.join_next(), if !under_way.is_empty() => {}
            () = commits.next() => {
                tokio::time::sleep_until(looked + COMMIT_SPACING).await;
            }
            () = tokio::time::sleep(settings.poll_interval) => {}
            () = &mut stopping => break,
        }
    }
    while under_way.join_next().await.is_some() {}
}

async fn deliver(service: DeliveryService, delivery: domain::ports::ClaimedDelivery) {
    let delivery_id = delivery.lease.delivery_id.get();
    let webhook_id = delivery.webhook_id.get();
    let event_id = delivery.event.id.get();
    match service.deliver(delivery).await {
        Ok(DeliveryOutcome::Attempted(verdict)) => {
            tracing::debug!(
                delivery_id,
                webhook_id,
                event_id,
                ?verdict,
                "webhook attempt"
            );
        }
        Ok(DeliveryOutcome::Dropped) => {
            tracing::debug!(
                delivery_id,
                webhook_id,
                "webhook inactive: delivery dropped"
            );
        }
        Ok(DeliveryOutcome::LeaseLost) => tracing::info!(
            delivery_id,
            webhook_id,
            "webhook delivery taken over or deleted meanwhile: this attempt is not recorded"
        ),
        // The lease runs out and the delivery is claimed again: nothing is lost.
        Err(e) => tracing::warn!(
            delivery_id,
            webhook_id,
            error = %error_chain(&e),
            "could not record a webhook attempt; the delivery will be retried"
        ),
    }
}
