//! The delivery worker that every process runs. Replicas share the outbox through the
//! repository's leases: each claims due deliveries for itself, makes one attempt of each
//! (several at once, up to `concurrency`), and records what the domain's retry policy
//! makes of it. A delivery whose process dies under way is claimed again once its lease
//! ends, so nothing is lost; its receiver may then see it twice, with the same
//! `webhook-id`.

use std::time::Duration;

use domain::webhooks::{DeliveryOutcome, DeliveryService};
use tokio::task::JoinSet;

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

/// Claims and delivers until the service starts stopping, then lets the attempts under
/// way finish (each is bounded by the attempt timeout) and returns.
pub async fn run(service: DeliveryService, settings: WorkerSettings, draining: Draining) {
    let concurrency = settings.concurrency.max(1);
    let mut under_way = JoinSet::new();
    let stopping = draining.started();
    tokio::pin!(stopping);
    loop {
        let free = concurrency.saturating_sub(under_way.len());
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
        // A finished attempt frees a slot and may have made a retry due at once: look
        // again then. Otherwise wait for the next turn.
        tokio::select! {
            Some(_) = under_way.join_next(), if !under_way.is_empty() => {}
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
