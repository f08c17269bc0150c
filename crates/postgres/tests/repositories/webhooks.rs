//! Subscriptions and their outbox (`PgWebhookRepository`): the outbox is filled in the
//! transaction of each event, workers claim due deliveries under leases that two claims
//! never share, an expired lease is taken over, and what a worker records counts only
//! under the lease it holds.

use std::collections::HashSet;
use std::time::Duration;

use domain::page::PageRequest;
use domain::ports::{
    AttemptRecord, ClaimedDelivery, DeliveryCounts, NewWebhook, WebhookChanges, WebhookRepository,
};
use domain::webhook::retry::{AttemptResult, Verdict};
use domain::webhook::{EventSelection, Webhook, WebhookDescription, WebhookSecret, WebhookUrl};
use domain::{MessageType, User, WebhookId};
use postgres_adapter::PgWebhookRepository;

use super::support::{limit, pool_on, Fixture};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Longer than any test runs: a lease ends in these tests only when a test expires it.
const LEASE: Duration = Duration::from_secs(600);

fn url(raw: &str) -> WebhookUrl {
    WebhookUrl::parse(raw).expect("valid url")
}

fn selection(types: &[&str]) -> EventSelection {
    EventSelection::parse(types).expect("valid selection")
}

fn new_webhook(target: &str, types: &[&str]) -> NewWebhook {
    NewWebhook {
        url: url(target),
        events: selection(types),
        description: WebhookDescription::parse("a receiver").expect("valid description"),
        secret: WebhookSecret::new(SECRET.to_owned()),
    }
}

fn answered(status: u16, verdict: Verdict) -> AttemptRecord {
    AttemptRecord {
        result: AttemptResult::Answered(status),
        duration: Duration::from_millis(12),
        verdict,
    }
}

struct Hooks {
    fx: Fixture,
    webhooks: PgWebhookRepository,
    author: User,
    staff: User,
}

impl Hooks {
    async fn new() -> Self {
        let fx = Fixture::new().await;
        let (author, staff) = fx.author_and_staff().await;
        Hooks {
            webhooks: PgWebhookRepository::new(fx.db.pool().clone()),
            fx,
            author,
            staff,
        }
    }

    async fn create(&self, target: &str, types: &[&str]) -> Webhook {
        self.webhooks
            .create_webhook(new_webhook(target, types))
            .await
            .expect("create webhook")
    }

    /// Opens a ticket: two events, `ticket.created` and `message.created`.
    async fn open(&self) -> domain::TicketId {
        self.fx.open(&self.author, "Charged twice").await.id
    }

    async fn claim(&self, how_many: u32) -> Vec<ClaimedDelivery> {
        self.webhooks
            .claim_due(how_many, LEASE)
            .await
            .expect("claim")
    }

    /// Makes every delivery due and unleased, as the passing of time would.
    async fn expire_leases_and_delays(&self) {
        self.fx
            .execute(
                "UPDATE webhook_deliveries SET leased_until = now() - interval '1 second' \
                 WHERE leased_until IS NOT NULL",
                &[],
            )
            .await;
        self.fx
            .execute(
                "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' \
                 WHERE state = 'pending'",
                &[],
            )
            .await;
    }

    async fn counts(&self) -> DeliveryCounts {
        self.webhooks.count_deliveries().await.expect("count")
    }

    async fn state_of(&self, delivery: &ClaimedDelivery) -> String {
        self.fx
            .scalar(
                "SELECT state::text FROM webhook_deliveries WHERE id = $1",
                &[&delivery.lease.delivery_id.get()],
            )
            .await
    }
}

#[tokio::test]
async fn subscriptions_are_created_read_changed_and_deleted_and_the_secret_is_kept_apart() {
    let hooks = Hooks::new().await;
    let created = hooks
        .create("https://example.com/hooks", &["ticket.status_changed"])
        .await;
    assert!(created.active);
    assert_eq!(created.url.as_str(), "https://example.com/hooks");
    assert_eq!(created.events.names(), vec!["ticket.status_changed"]);
    let stored: String = hooks
        .fx
        .scalar(
            "SELECT secret FROM webhooks WHERE id = $1",
            &[&created.id.get()],
        )
        .await;
    assert_eq!(stored, SECRET);

    let found = hooks.webhooks.find_webhook(created.id).await.expect("find");
    assert_eq!(found.as_ref(), Some(&created));

    let changed = hooks
        .webhooks
        .update_webhook(
            created.id,
            WebhookChanges {
                events: Some(selection(&["*"])),
                active: Some(false),
                ..WebhookChanges::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(changed.events, EventSelection::All);
    assert!(!changed.active);
    assert_eq!(changed.url, created.url, "unchanged fields stay");
    assert_eq!(changed.description, created.description);

    let second = hooks.create("http://example.org/", &["*"]).await;
    let page = hooks
        .webhooks
        .list_webhooks(PageRequest::first(limit(1)))
        .await
        .expect("list");
    assert_eq!(page.items, vec![changed.clone()]);
    let rest = hooks
        .webhooks
        .list_webhooks(PageRequest {
            limit: limit(1),
            after: page.next,
        })
        .await
        .expect("list");
    assert_eq!(rest.items, vec![second.clone()]);
    assert_eq!(rest.next, None);

    assert!(hooks
        .webhooks
        .delete_webhook(created.id)
        .await
        .expect("delete"));
    assert!(!hooks
        .webhooks
        .delete_webhook(created.id)
        .await
        .expect("delete"));
    assert_eq!(
        hooks.webhooks.find_webhook(created.id).await.expect("find"),
        None
    );
    let missing = WebhookId::new(created.id.get() + 1000).expect("an id");
    assert_eq!(
        hooks
            .webhooks
            .update_webhook(missing, WebhookChanges::default())
            .await
            .expect("update"),
        None
    );
}

#[tokio::test]
async fn each_event_is_queued_for_every_active_subscription_to_its_type() {
    let hooks = Hooks::new().await;
    let all = hooks.create("https://all.example.com/", &["*"]).await;
    let notes = hooks
        .create("https://notes.example.com/", &["note.created"])
        .await;
    let created = hooks
        .create("https://created.example.com/", &["ticket.created"])
        .await;
    let inactive = hooks.create("https://off.example.com/", &["*"]).await;
    hooks
        .webhooks
        .update_webhook(
            inactive.id,
            WebhookChanges {
                active: Some(false),
                ..WebhookChanges::default()
            },
        )
        .await
        .expect("deactivate");

    let ticket = hooks.open().await;
    hooks
        .fx
        .post(&hooks.staff, ticket, MessageType::Note, "a note")
        .await;

    let queued = |id: WebhookId| {
        let fx = &hooks.fx;
        async move {
            fx.column::<String>(
                "SELECT e.type::text FROM webhook_deliveries d \
                 JOIN ticket_events e ON e.id = d.event_id WHERE d.webhook_id = $1 ORDER BY e.id",
                &[&id.get()],
            )
            .await
        }
    };
    assert_eq!(
        queued(all.id).await,
        vec!["ticket.created", "message.created", "note.created"]
    );
    assert_eq!(queued(notes.id).await, vec!["note.created"]);
    assert_eq!(queued(created.id).await, vec!["ticket.created"]);
    assert!(queued(inactive.id).await.is_empty());
}

#[tokio::test]
async fn a_claim_leases_due_deliveries_with_their_event_and_subscription() {
    let hooks = Hooks::new().await;
    let webhook = hooks
        .create("https://example.com/hooks", &["ticket.created"])
        .await;
    let ticket = hooks.open().await;

    let claimed = hooks.claim(10).await;
    assert_eq!(claimed.len(), 1);
    let delivery = &claimed[0];
    assert_eq!(delivery.webhook_id, webhook.id);
    assert_eq!(delivery.url, webhook.url);
    assert_eq!(delivery.secret.expose(), SECRET);
    assert!(delivery.active);
    assert_eq!(delivery.attempts_made, 0);
    assert_eq!(delivery.event.ticket_id, ticket);
    assert_eq!(delivery.event.data.type_name(), "ticket.created");

    assert!(
        hooks.claim(10).await.is_empty(),
        "a leased delivery is not due"
    );
    assert_eq!(hooks.state_of(delivery).await, "pending");
}

#[tokio::test]
async fn two_claimers_never_claim_the_same_delivery() {
    let hooks = Hooks::new().await;
    hooks.create("https://one.example.com/", &["*"]).await;
    hooks.create("https://two.example.com/", &["*"]).await;
    for _ in 0..10 {
        hooks.open().await;
    }
    let total = hooks.fx.rows_in("webhook_deliveries").await;
    assert_eq!(total, 40);

    // Two workers on pools of their own, claiming small batches at the same time until
    // the outbox is empty.
    let worker = |pool| {
        let repository = PgWebhookRepository::new(pool);
        async move {
            let mut mine = Vec::new();
            loop {
                let batch = repository.claim_due(3, LEASE).await.expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|d| d.lease.delivery_id.get()));
            }
        }
    };
    let (first, second) = tokio::join!(
        tokio::spawn(worker(pool_on(
            hooks.fx.db.url(),
            2,
            Duration::from_secs(60)
        ))),
        tokio::spawn(worker(pool_on(
            hooks.fx.db.url(),
            2,
            Duration::from_secs(60)
        ))),
    );
    let (first, second) = (first.expect("worker"), second.expect("worker"));
    let first_set: HashSet<i64> = first.iter().copied().collect();
    let second_set: HashSet<i64> = second.iter().copied().collect();
    assert_eq!(
        first_set.len(),
        first.len(),
        "no delivery twice to one worker"
    );
    assert_eq!(
        second_set.len(),
        second.len(),
        "no delivery twice to one worker"
    );
    assert!(
        first_set.is_disjoint(&second_set),
        "shared: {:?}",
        first_set.intersection(&second_set).collect::<Vec<_>>()
    );
    assert_eq!(
        i64::try_from(first.len() + second.len()).expect("a count"),
        total
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_first_worker_records_nothing() {
    let hooks = Hooks::new().await;
    hooks
        .create("https://example.com/hooks", &["ticket.created"])
        .await;
    hooks.open().await;
    let first = hooks.claim(1).await.pop().expect("a delivery");

    // The first worker's replica was killed: its lease runs out.
    hooks.expire_leases_and_delays().await;
    let second = hooks.claim(1).await.pop().expect("taken over");
    assert_eq!(second.lease.delivery_id, first.lease.delivery_id);
    assert!(second.lease.until > first.lease.until);

    let late = hooks
        .webhooks
        .record_attempt(first.lease, answered(200, Verdict::Delivered))
        .await
        .expect("record");
    assert!(!late, "a lost lease records nothing");
    assert!(!hooks
        .webhooks
        .drop_delivery(first.lease)
        .await
        .expect("drop"));
    assert_eq!(hooks.fx.rows_in("webhook_attempts").await, 0);

    let recorded = hooks
        .webhooks
        .record_attempt(second.lease, answered(204, Verdict::Delivered))
        .await
        .expect("record");
    assert!(recorded);
    assert_eq!(hooks.state_of(&second).await, "delivered");
    assert!(
        hooks.claim(1).await.is_empty(),
        "a delivered delivery is done"
    );
}

#[tokio::test]
async fn attempts_are_recorded_with_their_verdict_and_listed_newest_first() {
    let hooks = Hooks::new().await;
    let webhook = hooks
        .create("https://example.com/hooks", &["ticket.created"])
        .await;
    hooks.open().await;

    let first = hooks.claim(1).await.pop().expect("a delivery");
    let retry = AttemptRecord {
        result: AttemptResult::NoAnswer("connection refused".to_owned()),
        duration: Duration::from_millis(3),
        verdict: Verdict::RetryAfter(Duration::from_secs(3600)),
    };
    assert!(hooks
        .webhooks
        .record_attempt(first.lease, retry)
        .await
        .expect("record"));
    assert_eq!(hooks.state_of(&first).await, "pending");
    assert!(hooks.claim(1).await.is_empty(), "the retry is not due yet");

    hooks.expire_leases_and_delays().await;
    let second = hooks.claim(1).await.pop().expect("due again");
    assert_eq!(second.attempts_made, 1);
    assert!(hooks
        .webhooks
        .record_attempt(second.lease, answered(500, Verdict::GivenUp))
        .await
        .expect("record"));
    assert_eq!(hooks.state_of(&second).await, "failed");
    hooks.expire_leases_and_delays().await;
    assert!(hooks.claim(1).await.is_empty(), "a failed delivery is done");

    let page = hooks
        .webhooks
        .list_attempts(webhook.id, PageRequest::first(limit(1)))
        .await
        .expect("list")
        .expect("the webhook exists");
    assert_eq!(page.items.len(), 1);
    let newest = &page.items[0];
    assert_eq!(newest.attempt, 2);
    assert_eq!(newest.status_code, Some(500));
    assert_eq!(newest.error, None);
    assert_eq!(newest.next_attempt_at, None);
    assert_eq!(newest.webhook_id, webhook.id);
    let rest = hooks
        .webhooks
        .list_attempts(
            webhook.id,
            PageRequest {
                limit: limit(10),
                after: page.next,
            },
        )
        .await
        .expect("list")
        .expect("the webhook exists");
    assert_eq!(rest.next, None);
    let oldest = &rest.items[..];
    assert_eq!(oldest.len(), 1);
    assert_eq!(oldest[0].attempt, 1);
    assert_eq!(oldest[0].status_code, None);
    assert_eq!(oldest[0].error.as_deref(), Some("connection refused"));
    assert_eq!(oldest[0].duration, Duration::from_millis(3));
    let next = oldest[0].next_attempt_at.expect("a retry was due");
    assert!(next > oldest[0].created_at);
    assert_eq!(oldest[0].event_id, newest.event_id);

    let missing = WebhookId::new(webhook.id.get() + 1000).expect("an id");
    assert_eq!(
        hooks
            .webhooks
            .list_attempts(missing, PageRequest::first(limit(10)))
            .await
            .expect("list"),
        None
    );
}

#[tokio::test]
async fn gone_disables_the_subscription_and_its_other_deliveries_are_dropped() {
    let hooks = Hooks::new().await;
    let webhook = hooks.create("https://example.com/hooks", &["*"]).await;
    hooks.open().await;
    let mut claimed = hooks.claim(10).await;
    assert_eq!(claimed.len(), 2);
    let other = claimed.pop().expect("two");
    let first = claimed.pop().expect("two");

    assert!(hooks
        .webhooks
        .record_attempt(first.lease, answered(410, Verdict::Disable))
        .await
        .expect("record"));
    assert_eq!(hooks.state_of(&first).await, "failed");
    let now = hooks
        .webhooks
        .find_webhook(webhook.id)
        .await
        .expect("find")
        .expect("exists");
    assert!(!now.active);

    // The other delivery was claimed before; once due again it shows the subscription
    // inactive, and is dropped without an attempt.
    hooks.expire_leases_and_delays().await;
    let again = hooks.claim(10).await.pop().expect("the other delivery");
    assert_eq!(again.lease.delivery_id, other.lease.delivery_id);
    assert!(!again.active);
    assert!(hooks
        .webhooks
        .drop_delivery(again.lease)
        .await
        .expect("drop"));
    assert_eq!(hooks.state_of(&again).await, "failed");
    assert_eq!(hooks.fx.rows_in("webhook_attempts").await, 1);

    // New events reach an inactive subscription no more.
    hooks.open().await;
    assert_eq!(hooks.fx.rows_in("webhook_deliveries").await, 2);
}

#[tokio::test]
async fn deleting_a_subscription_under_delivery_leaves_the_worker_nothing_to_record() {
    let hooks = Hooks::new().await;
    let webhook = hooks.create("https://example.com/hooks", &["*"]).await;
    hooks.open().await;
    let delivery = hooks.claim(1).await.pop().expect("a delivery");
    assert!(hooks
        .webhooks
        .delete_webhook(webhook.id)
        .await
        .expect("delete"));
    assert!(!hooks
        .webhooks
        .record_attempt(delivery.lease, answered(200, Verdict::Delivered))
        .await
        .expect("record"));
    assert_eq!(hooks.fx.rows_in("webhook_deliveries").await, 0);
    assert_eq!(hooks.fx.rows_in("webhook_attempts").await, 0);
}

#[tokio::test]
async fn the_outbox_is_counted_by_pending_and_failed_deliveries() {
    let hooks = Hooks::new().await;
    let counts = |pending, failed| DeliveryCounts { pending, failed };
    assert_eq!(hooks.counts().await, counts(0, 0), "an empty outbox");

    hooks.create("https://one.example.com/", &["*"]).await;
    hooks
        .create("https://two.example.com/", &["ticket.created"])
        .await;
    hooks.open().await;
    hooks.open().await;
    // Two events per ticket to the first subscription, one to the second.
    assert_eq!(hooks.counts().await, counts(6, 0));

    let mut claimed = hooks.claim(6).await;
    assert_eq!(claimed.len(), 6);
    assert_eq!(
        hooks.counts().await,
        counts(6, 0),
        "leased is still pending"
    );
    let mut next = || claimed.pop().expect("six were claimed");
    let retry = answered(503, Verdict::RetryAfter(Duration::from_secs(3600)));
    for (delivery, record) in [
        (next(), answered(204, Verdict::Delivered)),
        (next(), answered(500, Verdict::GivenUp)),
        (next(), answered(410, Verdict::Disable)),
        (next(), retry),
    ] {
        assert!(hooks
            .webhooks
            .record_attempt(delivery.lease, record)
            .await
            .expect("record"));
    }
    assert!(hooks
        .webhooks
        .drop_delivery(next().lease)
        .await
        .expect("drop"));
    // Delivered: 1; failed: given up, gone and dropped; pending: the retry and the one
    // still leased.
    assert_eq!(hooks.counts().await, counts(2, 3));
}
