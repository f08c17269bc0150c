//! [`WebhookRepository`] on PostgreSQL: subscriptions, and the outbox of their
//! deliveries (`webhook_deliveries`, filled by the event append of
//! [`crate::events`]) with its attempts.
//!
//! Workers in every replica share the outbox through leases: a claim marks due rows
//! `leased_until = now() + lease` in one statement that locks them with `FOR UPDATE
//! SKIP LOCKED`, so that concurrent claims never return the same row; an expired lease
//! makes the row claimable again (a replica killed mid-delivery loses nothing). What a
//! worker records about a delivery is a compare-and-set on the lease it claimed: a
//! later claim sets a later `leased_until` (now() has passed the old one), so a worker
//! whose lease was taken over writes nothing.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::page::{Page, PageRequest};
use domain::ports::{
    AttemptRecord, ClaimedDelivery, DeliveryCounts, Lease, NewWebhook, WebhookChanges,
    WebhookRepository,
};
use domain::webhook::retry::{AttemptResult, DeliveryState};
use domain::webhook::{
    Attempt, EventSelection, Webhook, WebhookDescription, WebhookSecret, WebhookUrl,
};
use domain::{AttemptId, DeliveryId, EventId, RepositoryError, WebhookId};
use tokio_postgres::Row;

use crate::enums::{self, DbDeliveryState};
use crate::events;
use crate::pool::connection;
use crate::{query, rows};

/// The columns `webhook` reads (never the secret).
macro_rules! webhook_columns {
    () => {
        "id, created_at, url, events, description, active"
    };
}

const CREATE: &str = concat!(
    "INSERT INTO webhooks (url, events, description, secret) VALUES ($1, $2, $3, $4) ",
    "RETURNING ",
    webhook_columns!()
);

const LIST_FIRST: &str = concat!(
    "SELECT ",
    webhook_columns!(),
    " FROM webhooks ORDER BY id LIMIT $1"
);

const LIST_AFTER: &str = concat!(
    "SELECT ",
    webhook_columns!(),
    " FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2"
);

const FIND: &str = concat!(
    "SELECT ",
    webhook_columns!(),
    " FROM webhooks WHERE id = $1"
);

/// NULL leaves a field as it is.
const UPDATE: &str = concat!(
    "UPDATE webhooks SET url = coalesce($2, url), events = coalesce($3, events), ",
    "description = coalesce($4, description), active = coalesce($5, active) ",
    "WHERE id = $1 RETURNING ",
    webhook_columns!()
);

const DELETE: &str = "DELETE FROM webhooks WHERE id = $1";

/// The columns `attempt` reads, from an attempt `a`.
macro_rules! attempt_columns {
    () => {
        concat!(
            "a.id, a.event_id, a.webhook_id, a.attempt, a.status_code, a.error, ",
            "a.duration_ms, a.created_at, a.next_attempt_at"
        )
    };
}

// One round trip: no row at all means no such webhook; a single row of NULL attempt
// columns means a webhook without (more) attempts.
macro_rules! list_attempts {
    ($keyset:literal, $limit:literal) => {
        concat!(
            "WITH w AS (SELECT id FROM webhooks WHERE id = $1) ",
            "SELECT a.* FROM w LEFT JOIN LATERAL (SELECT ",
            attempt_columns!(),
            " FROM webhook_attempts a WHERE a.webhook_id = w.id",
            $keyset,
            " ORDER BY a.id DESC LIMIT ",
            $limit,
            ") a ON true ORDER BY a.id DESC"
        )
    };
}

const LIST_ATTEMPTS_FIRST: &str = list_attempts!("", "$2");
const LIST_ATTEMPTS_AFTER: &str = list_attempts!(" AND a.id < $2", "$3");

/// Leases up to `$1` due deliveries for `$2` milliseconds and returns them with their
/// subscription and event. The due rows are chosen and locked first (`MATERIALIZED`,
/// so that the `LIMIT` and the locks apply once); rows that another claim has locked
/// are skipped, and a row that another claim leased meanwhile no longer matches when
/// it is re-checked after its lock. The state's label is spelled into the SQL so that
/// the partial index `webhook_deliveries_due_idx` serves the search.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            "WITH due AS MATERIALIZED (",
            "SELECT id FROM webhook_deliveries WHERE state = '{pending}' ",
            "AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until < now()) ",
            "ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            "), d AS (",
            "UPDATE webhook_deliveries SET leased_until = now() + $2::int8 * interval '1 millisecond' ",
            "WHERE id IN (SELECT id FROM due) ",
            "RETURNING id, webhook_id, event_id, attempts, leased_until, next_attempt_at",
            ") SELECT d.id AS delivery_id, d.webhook_id, d.attempts, d.leased_until, ",
            "w.url, w.secret, w.active, {event} ",
            "FROM d JOIN webhooks w ON w.id = d.webhook_id ",
            "JOIN ticket_events e ON e.id = d.event_id LEFT JOIN users au ON au.id = e.actor_id ",
            "ORDER BY d.next_attempt_at, d.id"
        ),
        pending = enums::delivery_state_label(DeliveryState::Pending),
        event = events::event_columns!(),
    )
});

/// Records an attempt (`$5`–`$7`) and applies its verdict: the delivery's new state
/// (`$3`), the delay until its next attempt (`$4` milliseconds, NULL for none), and
/// with `$8` the subscription's deactivation; all only if the delivery still carries
/// the lease `$2`. One statement, so one transaction: the attempt is never recorded
/// without its delivery's new state, nor the reverse. Returns the rows changed (0 when
/// the lease was lost).
static RECORD: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            "WITH d AS (",
            "UPDATE webhook_deliveries SET attempts = attempts + 1, state = $3, ",
            "next_attempt_at = CASE WHEN $4::int8 IS NULL THEN next_attempt_at ",
            "ELSE now() + $4 * interval '1 millisecond' END, leased_until = NULL ",
            "WHERE id = $1 AND leased_until = $2 AND state = '{pending}' ",
            "RETURNING id, webhook_id, event_id, attempts, ",
            "CASE WHEN $4::int8 IS NULL THEN NULL ELSE next_attempt_at END AS next_attempt_at",
            "), a AS (",
            "INSERT INTO webhook_attempts (delivery_id, webhook_id, event_id, attempt, ",
            "status_code, error, duration_ms, next_attempt_at) ",
            "SELECT id, webhook_id, event_id, attempts, $5, $6, $7, next_attempt_at FROM d",
            "), w AS (",
            "UPDATE webhooks SET active = false WHERE $8 AND id IN (SELECT webhook_id FROM d)",
            ") SELECT count(*) AS recorded FROM d"
        ),
        pending = enums::delivery_state_label(DeliveryState::Pending),
    )
});

/// Ends a delivery of an inactive subscription without an attempt, under its lease.
static DROP_DELIVERY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE webhook_deliveries SET state = '{failed}', leased_until = NULL \
         WHERE id = $1 AND leased_until = $2 AND state = '{pending}'",
        failed = enums::delivery_state_label(DeliveryState::Failed),
        pending = enums::delivery_state_label(DeliveryState::Pending),
    )
});

/// The outbox's pending and failed deliveries. Each count reads only its partial index
/// (`webhook_deliveries_due_idx`, `webhook_deliveries_failed_idx`), never the delivered
/// rows that make up most of the table; the labels are spelled into the SQL so that the
/// indexes' predicates match.
static COUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = '{pending}') AS pending, \
         (SELECT count(*) FROM webhook_deliveries WHERE state = '{failed}') AS failed",
        pending = enums::delivery_state_label(DeliveryState::Pending),
        failed = enums::delivery_state_label(DeliveryState::Failed),
    )
});

/// Subscriptions and their outbox in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgWebhookRepository {
    pool: Pool,
}

impl PgWebhookRepository {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

/// Whole milliseconds, as the statements take durations.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl WebhookRepository for PgWebhookRepository {
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::one_row(
            &client,
            CREATE,
            &[
                &new.url.as_str(),
                &new.events.names(),
                &new.description.as_str(),
                &new.secret.expose(),
            ],
        )
        .await?;
        webhook(&row)
    }

    async fn list_webhooks(
        &self,
        page: PageRequest<WebhookId>,
    ) -> Result<Page<Webhook, WebhookId>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let limit = rows::fetch_count(page.limit.get());
        let fetched = match page.after {
            None => query::rows(&client, LIST_FIRST, &[&limit]).await?,
            Some(after) => query::rows(&client, LIST_AFTER, &[&after.get(), &limit]).await?,
        };
        let webhooks = fetched.iter().map(webhook).collect::<Result<Vec<_>, _>>()?;
        Ok(rows::page(webhooks, page.limit.get(), |w| w.id))
    }

    async fn find_webhook(&self, id: WebhookId) -> Result<Option<Webhook>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(&client, FIND, &[&id.get()]).await?;
        row.as_ref().map(webhook).transpose()
    }

    async fn update_webhook(
        &self,
        id: WebhookId,
        changes: WebhookChanges,
    ) -> Result<Option<Webhook>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let events = changes.events.as_ref().map(EventSelection::names);
        let row = query::optional_row(
            &client,
            UPDATE,
            &[
                &id.get(),
                &changes.url.as_ref().map(WebhookUrl::as_str),
                &events,
                &changes.description.as_ref().map(WebhookDescription::as_str),
                &changes.active,
            ],
        )
        .await?;
        row.as_ref().map(webhook).transpose()
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, RepositoryError> {
        let client = connection(&self.pool).await?;
        let statement = client
            .prepare_cached(DELETE)
            .await
            .map_err(crate::error::db)?;
        let deleted = client
            .execute(&statement, &[&id.get()])
            .await
            .map_err(crate::error::db)?;
        Ok(deleted > 0)
    }

    async fn list_attempts(
        &self,
        id: WebhookId,
        page: PageRequest<AttemptId>,
    ) -> Result<Option<Page<Attempt, AttemptId>>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let limit = rows::fetch_count(page.limit.get());
        let fetched = match page.after {
            None => query::rows(&client, LIST_ATTEMPTS_FIRST, &[&id.get(), &limit]).await?,
            Some(after) => {
                query::rows(
                    &client,
                    LIST_ATTEMPTS_AFTER,
                    &[&id.get(), &after.get(), &limit],
                )
                .await?
            }
        };
        if fetched.is_empty() {
            return Ok(None);
        }
        let mut attempts = Vec::with_capacity(fetched.len());
        for row in &fetched {
            if rows::column::<Option<i64>>(row, "id")?.is_some() {
                attempts.push(attempt(row)?);
            }
        }
        Ok(Some(rows::page(attempts, page.limit.get(), |a| a.id)))
    }

    async fn claim_due(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let fetched =
            query::rows(&client, &CLAIM, &[&i64::from(limit), &millis(lease).max(1)]).await?;
        fetched.iter().map(claimed).collect()
    }

    async fn record_attempt(
        &self,
        lease: Lease,
        attempt: AttemptRecord,
    ) -> Result<bool, RepositoryError> {
        let (status_code, error) = match &attempt.result {
            AttemptResult::Answered(status) => (Some(i32::from(*status)), None),
            AttemptResult::NoAnswer(why) => (None, Some(why.as_str())),
        };
        let duration_ms = i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX);
        let next = attempt.verdict.next_attempt_in().map(millis);
        let client = connection(&self.pool).await?;
        let row = query::one_row(
            &client,
            &RECORD,
            &[
                &lease.delivery_id.get(),
                &lease.until,
                &DbDeliveryState(attempt.verdict.state()),
                &next,
                &status_code,
                &error,
                &duration_ms,
                &attempt.verdict.disables(),
            ],
        )
        .await?;
        Ok(rows::column::<i64>(&row, "recorded")? > 0)
    }

    async fn drop_delivery(&self, lease: Lease) -> Result<bool, RepositoryError> {
        let client = connection(&self.pool).await?;
        let statement = client
            .prepare_cached(&DROP_DELIVERY)
            .await
            .map_err(crate::error::db)?;
        let dropped = client
            .execute(&statement, &[&lease.delivery_id.get(), &lease.until])
            .await
            .map_err(crate::error::db)?;
        Ok(dropped > 0)
    }

    async fn count_deliveries(&self) -> Result<DeliveryCounts, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::one_row(&client, &COUNT, &[]).await?;
        let count = |column| {
            rows::column::<i64>(&row, column).and_then(|n| {
                u64::try_from(n).map_err(|_| RepositoryError::msg(format!("{column} count = {n}")))
            })
        };
        Ok(DeliveryCounts {
            pending: count("pending")?,
            failed: count("failed")?,
        })
    }
}

/// A row of the webhook columns. Stored values passed the same checks on the way in
/// (a URL, those of its time: see `WebhookUrl::from_stored`); one that no longer does
/// is a broken invariant.
fn webhook(row: &Row) -> Result<Webhook, RepositoryError> {
    let url: String = rows::column(row, "url")?;
    let events: Vec<String> = rows::column(row, "events")?;
    let description: String = rows::column(row, "description")?;
    Ok(Webhook {
        id: rows::id_of(rows::column(row, "id")?, WebhookId::new)?,
        created_at: rows::column(row, "created_at")?,
        url: WebhookUrl::from_stored(&url).map_err(RepositoryError::unexpected)?,
        events: EventSelection::parse(&events).map_err(RepositoryError::unexpected)?,
        description: WebhookDescription::parse(&description)
            .map_err(RepositoryError::unexpected)?,
        active: rows::column(row, "active")?,
    })
}

/// A row of the attempt columns.
fn attempt(row: &Row) -> Result<Attempt, RepositoryError> {
    let status_code = rows::column::<Option<i32>>(row, "status_code")?
        .map(|code| {
            u16::try_from(code)
                .map_err(|_| RepositoryError::msg(format!("status code {code} in database")))
        })
        .transpose()?;
    let attempt: i32 = rows::column(row, "attempt")?;
    let duration_ms: i32 = rows::column(row, "duration_ms")?;
    Ok(Attempt {
        id: rows::id_of(rows::column(row, "id")?, AttemptId::new)?,
        event_id: rows::id_of(rows::column(row, "event_id")?, EventId::new)?,
        webhook_id: rows::id_of(rows::column(row, "webhook_id")?, WebhookId::new)?,
        attempt: non_negative(attempt, "attempt")?,
        status_code,
        error: rows::column(row, "error")?,
        duration: Duration::from_millis(u64::from(non_negative(duration_ms, "duration_ms")?)),
        created_at: rows::column(row, "created_at")?,
        next_attempt_at: rows::column(row, "next_attempt_at")?,
    })
}

/// A row of `CLAIM`.
fn claimed(row: &Row) -> Result<ClaimedDelivery, RepositoryError> {
    let url: String = rows::column(row, "url")?;
    let attempts: i32 = rows::column(row, "attempts")?;
    let event = events::event(row)?
        .ok_or_else(|| RepositoryError::msg("a claimed delivery without its event"))?;
    Ok(ClaimedDelivery {
        lease: Lease {
            delivery_id: rows::id_of(rows::column(row, "delivery_id")?, DeliveryId::new)?,
            until: rows::column(row, "leased_until")?,
        },
        webhook_id: rows::id_of(rows::column(row, "webhook_id")?, WebhookId::new)?,
        url: WebhookUrl::from_stored(&url).map_err(RepositoryError::unexpected)?,
        secret: WebhookSecret::new(rows::column(row, "secret")?),
        active: rows::column(row, "active")?,
        attempts_made: non_negative(attempts, "attempts")?,
        event,
    })
}

fn non_negative(value: i32, column: &str) -> Result<u32, RepositoryError> {
    u32::try_from(value)
        .map_err(|_| RepositoryError::msg(format!("{column} = {value} in database")))
}
