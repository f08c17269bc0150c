//! The ticket event log in PostgreSQL: appending a write's events inside its
//! transaction, and reading a ticket's history. An event's `data` is stored as the
//! JSON object that clients see (the contract's "History" table), so that every reader
//! of the log (history, stream, webhooks) serves it as stored.

use std::borrow::Cow;
use std::sync::LazyLock;

use domain::event::{EventData, TicketEvent};
use domain::feed::FeedEvent;
use domain::{Caller, EventId, MessageId, RepositoryError, TicketId, UserId};
use serde_json::{json, Map, Value};
use tokio_postgres::Row;

use crate::rows;

/// The channel of `NOTIFY`, as a literal for the statements.
macro_rules! events_channel {
    () => {
        "ticket_events"
    };
}

/// The channel on which writers announce new events (see [`NOTIFY`]).
pub(crate) const EVENTS_CHANNEL: &str = events_channel!();

/// The statement that appends `count` events in the given order; `$3`, `$4` and `$5`
/// are the first one's type, internal flag and data, the next three the second's, and
/// so on. Every writer has locked the ticket's row before this runs, so the ids of one
/// ticket's events grow in commit order. In the same statement (so in the write's
/// transaction), each event is queued for every active webhook that subscribes to its
/// type (the outbox). The replicas' listeners learn of the events from [`NOTIFY`], sent
/// right after the `COMMIT`.
///
/// One text per count of events, each with a row of `VALUES` per event, rather than one
/// text that unnests arrays: PostgreSQL estimates an unnested array at ten rows in a
/// generic plan and so kept planning that statement anew at every write (124 µs each,
/// `pg_stat_statements` in `just bench compare`), where these settle on their generic
/// plan after five runs.
/// `None` for no events: there is nothing to append.
fn append_statement(count: usize) -> Option<Cow<'static, str>> {
    // The texts for one to four events (a write records at most three).
    static COMMON: LazyLock<Vec<String>> =
        LazyLock::new(|| (1..=4).map(build_append_statement).collect());
    let index = count.checked_sub(1)?;
    Some(match COMMON.get(index) {
        Some(sql) => Cow::Borrowed(sql.as_str()),
        None => Cow::Owned(build_append_statement(count)),
    })
}

fn build_append_statement(count: usize) -> String {
    let rows: Vec<String> = (0..count)
        .map(|i| {
            let first = 3 + 3 * i;
            format!(
                "($1, $2, ${first}::text::ticket_event_type, ${}, ${}::jsonb)",
                first + 1,
                first + 2
            )
        })
        .collect();
    format!(
        concat!(
            "WITH e AS (",
            "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) VALUES {} ",
            "RETURNING id, type",
            "), outbox AS (",
            "INSERT INTO webhook_deliveries (webhook_id, event_id) ",
            "SELECT w.id, e.id FROM e JOIN webhooks w ON w.active ",
            "AND (e.type::text = ANY (w.events) OR '*' = ANY (w.events)) ",
            "ORDER BY e.id, w.id",
            ") SELECT max(e.id) FROM e"
        ),
        rows.join(", ")
    )
}

/// Tells every replica's listener that events up to the highest id this session has
/// taken exist; the notification carries the id only, and listeners read the events
/// from the table. Sent by a writer that has no tail in its process to tell
/// ([`crate::CommitSignal`]); in the service, the tail announces its process's commits
/// itself, several at once ([`ANNOUNCE`]), since every `NOTIFY` is a transaction with
/// a WAL flush of its own.
///
/// It runs on its own, right after the write's `COMMIT` and in the same round trip,
/// not inside the write's transaction: a transaction that notifies holds a lock of the
/// whole cluster from its commit until it ends, and so its commit's WAL flush. Inside
/// the writes, that serialised every write's commit: `just bench compare` measured the
/// mixed workload at 63-67% of the pre-workflow build's throughput, with writes' p50 at
/// 50 ms instead of 14 ms. Should the process die between the two, no event is lost:
/// the listeners read the table at least every poll interval.
pub(crate) const NOTIFY: &str = concat!(
    "SELECT pg_notify('",
    events_channel!(),
    "', currval(pg_get_serial_sequence('ticket_events', 'id'))::text)"
);

/// The tail's announcement of its own process's commits (see `feed`'s `CommitSignal`),
/// for the other replicas: the id of the log's last event, which they read up to.
pub(crate) const ANNOUNCE: &str = concat!(
    "SELECT pg_notify('",
    events_channel!(),
    "', (SELECT coalesce(max(id), 0) FROM ticket_events)::text)"
);

/// Some events to append (see [`append_statement`]), with the parameters of the
/// statement, which must outlive it.
pub(crate) struct Appended {
    ticket_id: i64,
    actor_id: Option<i64>,
    types: Vec<&'static str>,
    internal: Vec<bool>,
    data: Vec<Value>,
}

impl Appended {
    pub(crate) fn new(ticket_id: TicketId, actor: Option<Caller>, events: &[EventData]) -> Self {
        Self {
            ticket_id: ticket_id.get(),
            actor_id: actor.map(|caller| caller.id.get()),
            types: events.iter().map(EventData::type_name).collect(),
            internal: events.iter().map(EventData::is_internal).collect(),
            data: events.iter().map(encode).collect(),
        }
    }

    /// The statement, to run in the write's transaction; `None` when there are no
    /// events to append.
    pub(crate) fn statement(&self) -> Option<Cow<'static, str>> {
        append_statement(self.types.len())
    }

    /// The statement's parameters.
    pub(crate) fn params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            Vec::with_capacity(2 + 3 * self.types.len());
        params.push(&self.ticket_id);
        params.push(&self.actor_id);
        for ((kind, internal), data) in self.types.iter().zip(&self.internal).zip(&self.data) {
            params.push(kind);
            params.push(internal);
            params.push(data);
        }
        params
    }
}

/// The data of an event as clients see it.
pub(crate) fn encode(data: &EventData) -> Value {
    match data {
        EventData::TicketCreated {
            topic,
            status,
            priority,
        } => json!({"topic": topic, "status": status.as_str(), "priority": priority.as_str()}),
        EventData::MessageCreated { message_id, kind } => {
            json!({"message_id": message_id.get(), "type": kind.as_str()})
        }
        EventData::NoteCreated { message_id } => json!({"message_id": message_id.get()}),
        EventData::StatusChanged { from, to } => json!({"from": from.as_str(), "to": to.as_str()}),
        EventData::PriorityChanged { from, to } => {
            json!({"from": from.as_str(), "to": to.as_str()})
        }
        EventData::Assigned { from, to } => json!({
            "from": from.map(UserId::get),
            "to": to.map(UserId::get),
        }),
    }
}

/// Reads stored data back; anything that does not fit its type is a broken invariant.
pub(crate) fn decode(type_name: &str, data: &Value) -> Result<EventData, RepositoryError> {
    let object = data.as_object().ok_or_else(|| invalid(type_name, data))?;
    let decoded = match type_name {
        "ticket.created" => Some(EventData::TicketCreated {
            topic: text(object, "topic")
                .map(str::to_owned)
                .ok_or_else(|| invalid(type_name, data))?,
            status: parsed(object, "status").ok_or_else(|| invalid(type_name, data))?,
            priority: parsed(object, "priority").ok_or_else(|| invalid(type_name, data))?,
        }),
        "message.created" => message_id(object)
            .zip(text(object, "type").and_then(domain::MessageType::from_name))
            .map(|(message_id, kind)| EventData::MessageCreated { message_id, kind }),
        "note.created" => {
            message_id(object).map(|message_id| EventData::NoteCreated { message_id })
        }
        "ticket.status_changed" => parsed(object, "from")
            .zip(parsed(object, "to"))
            .map(|(from, to)| EventData::StatusChanged { from, to }),
        "ticket.priority_changed" => parsed(object, "from")
            .zip(parsed(object, "to"))
            .map(|(from, to)| EventData::PriorityChanged { from, to }),
        "ticket.assigned" => optional_user(object, "from")
            .zip(optional_user(object, "to"))
            .map(|(from, to)| EventData::Assigned { from, to }),
        _ => None,
    };
    decoded.ok_or_else(|| invalid(type_name, data))
}

fn invalid(type_name: &str, data: &Value) -> RepositoryError {
    RepositoryError::msg(format!("an event of type {type_name:?} holds {data}"))
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str)
}

fn parsed<T: std::str::FromStr>(object: &Map<String, Value>, field: &str) -> Option<T> {
    text(object, field).and_then(|name| name.parse().ok())
}

fn message_id(object: &Map<String, Value>) -> Option<MessageId> {
    object
        .get("message_id")
        .and_then(Value::as_i64)
        .and_then(MessageId::new)
}

/// `Some(None)` for JSON null, `Some(Some(id))` for an id, `None` for anything else.
fn optional_user(object: &Map<String, Value>, field: &str) -> Option<Option<UserId>> {
    match object.get(field)? {
        Value::Null => Some(None),
        value => value.as_i64().and_then(UserId::new).map(Some),
    }
}

/// The columns `event` reads, from an event `e` joined (left) with its actor `au`.
macro_rules! event_columns {
    () => {
        "e.id, e.ticket_id, e.created_at, e.type::text AS type, e.data, e.actor_id, au.username AS actor_username"
    };
}

/// Also read by the webhook claim, which joins the same `e` and `au`.
pub(crate) use event_columns;

// One round trip: no row at all means the ticket is absent or not visible; a single row
// of NULL event columns means a visible ticket without (more) events to show.
macro_rules! list_events {
    ($keyset:literal, $limit:literal) => {
        concat!(
            "WITH t AS (SELECT id FROM tickets t WHERE t.id = $1 AND ",
            crate::visibility::ticket_visible!("t", "$2", "$3"),
            ") SELECT e.* FROM t LEFT JOIN LATERAL (",
            "SELECT ",
            event_columns!(),
            " FROM ticket_events e LEFT JOIN users au ON au.id = e.actor_id ",
            "WHERE e.ticket_id = t.id AND ",
            crate::visibility::event_visible!("e", "$4"),
            $keyset,
            " ORDER BY e.id LIMIT ",
            $limit,
            ") e ON true ORDER BY e.id"
        )
    };
}

pub(crate) const LIST_FIRST: &str = list_events!("", "$5");
pub(crate) const LIST_AFTER: &str = list_events!(" AND e.id > $5", "$6");

/// The events a resuming stream missed: after `$1`, up to `$2`, that the viewer (`$3`,
/// `$4` sees all, `$5` sees internal) may see, at most `$6`.
macro_rules! events_between {
    ($ticket:literal, $limit:literal) => {
        concat!(
            "SELECT ",
            event_columns!(),
            ", t.author_id AS ticket_author FROM ticket_events e ",
            "JOIN tickets t ON t.id = e.ticket_id LEFT JOIN users au ON au.id = e.actor_id ",
            "WHERE e.id > $1 AND e.id <= $2 AND ",
            crate::visibility::ticket_visible!("t", "$3", "$4"),
            " AND ",
            crate::visibility::event_visible!("e", "$5"),
            $ticket,
            " ORDER BY e.id LIMIT ",
            $limit
        )
    };
}

pub(crate) const BETWEEN: &str = events_between!("", "$6");
/// The same for one ticket (`$6`), through the ticket's own index.
pub(crate) const BETWEEN_OF_TICKET: &str = events_between!(" AND e.ticket_id = $6", "$7");

/// How many events the tail ([`TAIL`]) reads at once.
macro_rules! tail_batch {
    () => {
        1000
    };
}

/// The most events [`TAIL`] returns.
pub(crate) const TAIL_BATCH: usize = tail_batch!();

/// Every event after `$1`, at most [`TAIL_BATCH`], with the snapshot the statement saw:
/// what the tail of the log ([`crate::feed`]) reads. A single row of NULL event columns
/// when there are none.
///
/// The tail runs it with a generic plan (see `feed`'s connection settings), planned
/// once: PostgreSQL would otherwise plan it anew at every read, since a custom plan for
/// "after the last id" always looks cheaper than the generic one, and planning took
/// 350 µs against 45 µs to run (`pg_stat_statements` in `just bench compare`). The
/// batch is a literal so that the generic plan knows how few rows it reads: an index
/// scan of `ticket_events` in id order, with nested loops into `tickets` and `users`.
pub(crate) const TAIL: &str = concat!(
    "WITH s AS (SELECT pg_current_snapshot()::text AS snapshot) ",
    "SELECT s.snapshot, e.* FROM s LEFT JOIN LATERAL (",
    "SELECT ",
    event_columns!(),
    ", t.author_id AS ticket_author FROM ticket_events e ",
    "JOIN tickets t ON t.id = e.ticket_id LEFT JOIN users au ON au.id = e.actor_id ",
    "WHERE e.id > $1 ORDER BY e.id LIMIT ",
    tail_batch!(),
    ") e ON true ORDER BY e.id"
);

/// A row of the event columns with `ticket_author`; `None` for a NULL row.
pub(crate) fn feed_event(row: &Row) -> Result<Option<FeedEvent>, RepositoryError> {
    let Some(event) = event(row)? else {
        return Ok(None);
    };
    Ok(Some(FeedEvent {
        event,
        ticket_author: rows::user_id(row, "ticket_author")?,
    }))
}

/// A row of the event columns; `None` for the NULL row of a visible ticket without
/// events to show.
pub(crate) fn event(row: &Row) -> Result<Option<TicketEvent>, RepositoryError> {
    let Some(id) = rows::column::<Option<i64>>(row, "id")? else {
        return Ok(None);
    };
    let type_name: String = rows::column(row, "type")?;
    let data: Value = rows::column(row, "data")?;
    Ok(Some(TicketEvent {
        id: rows::id_of(id, EventId::new)?,
        ticket_id: rows::id_of(rows::column(row, "ticket_id")?, TicketId::new)?,
        created_at: rows::column(row, "created_at")?,
        actor: rows::user_ref(row, "actor_id", "actor_username")?,
        data: decode(&type_name, &data)?,
    }))
}

#[cfg(test)]
mod tests {
    use domain::{MessageType, Priority, TicketStatus};

    use super::*;

    #[test]
    fn every_event_round_trips_in_the_contract_s_shape() {
        let message_id = MessageId::new(7).expect("positive");
        let cases = [
            (
                EventData::TicketCreated {
                    topic: "help".to_owned(),
                    status: TicketStatus::Pending,
                    priority: Priority::Normal,
                },
                json!({"topic": "help", "status": "pending", "priority": "normal"}),
            ),
            (
                EventData::MessageCreated {
                    message_id,
                    kind: MessageType::Response,
                },
                json!({"message_id": 7, "type": "response"}),
            ),
            (
                EventData::NoteCreated { message_id },
                json!({"message_id": 7}),
            ),
            (
                EventData::StatusChanged {
                    from: TicketStatus::Pending,
                    to: TicketStatus::Resolved,
                },
                json!({"from": "pending", "to": "resolved"}),
            ),
            (
                EventData::PriorityChanged {
                    from: Priority::Normal,
                    to: Priority::Urgent,
                },
                json!({"from": "normal", "to": "urgent"}),
            ),
            (
                EventData::Assigned {
                    from: None,
                    to: UserId::new(4),
                },
                json!({"from": null, "to": 4}),
            ),
        ];
        for (event, shape) in cases {
            assert_eq!(encode(&event), shape);
            assert_eq!(decode(event.type_name(), &shape).ok(), Some(event));
        }
    }

    #[test]
    fn data_that_does_not_fit_its_type_is_an_error() {
        for (type_name, data) in [
            (
                "ticket.created",
                json!({"topic": "x", "status": "open", "priority": "normal"}),
            ),
            (
                "message.created",
                json!({"message_id": 0, "type": "request"}),
            ),
            ("note.created", json!([])),
            ("ticket.assigned", json!({"from": "4", "to": null})),
            ("ticket.deleted", json!({})),
        ] {
            assert!(decode(type_name, &data).is_err(), "{type_name} {data}");
        }
    }
}
