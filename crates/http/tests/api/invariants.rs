//! The database's invariants — what no sequence of requests, concurrent or not, may
//! break — checked after every end-to-end test by `TestApp`'s `Drop`, and on demand
//! with [`violations`] on any connection.

use std::fmt;
use std::time::Duration;

use serde_json::json;
use tokio_postgres::{Client, NoTls};

use crate::helpers::{spawn_app, TestApp};

/// One rule of the data, with the query that lists what breaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    TicketWithoutMessages,
    FirstMessageNotTheAuthorsRequest,
    MessageWithoutTicket,
    MessageWithoutAuthor,
    TicketWithoutAuthor,
    WrongTicketsCount,
    EventWithoutTicket,
    EventWithoutActor,
    TicketNotOpenedByItsFirstEvent,
    MessageWithoutOneEvent,
    MessageEventWithoutMessage,
    StatusHistoryBroken,
    PriorityHistoryBroken,
    AssigneeHistoryBroken,
    WrongVersion,
    UpdatedAtNotTheLastVisibleEvent,
    WrongInternalFlag,
    IdempotencyKeyWithoutUser,
}

/// The history of one field of a ticket chains: each `$changed` event moves `from` the
/// value the previous one left (the first from `$start`, the value `ticket.created`
/// gives, or `$initial` before any event), moves somewhere else, and the last value is
/// the ticket's (`$current`). All values are compared as `jsonb`.
macro_rules! history_chain {
    ($changed:literal, $start:literal, $initial:literal, $current:literal) => {
        concat!(
            "SELECT format('ticket %s: event %s moves from %s to %s, but the value was %s', ",
            "s.ticket_id, s.id, s.moved_from, s.moved_to, s.before) FROM (",
            "SELECT e.ticket_id, e.id, e.type, e.data->'from' AS moved_from, ",
            "e.data->'to' AS moved_to, lag(CASE WHEN e.type = 'ticket.created' THEN ",
            $start,
            " ELSE e.data->'to' END, 1, ",
            $initial,
            ") OVER (PARTITION BY e.ticket_id ORDER BY e.id) AS before ",
            "FROM ticket_events e WHERE e.type IN ('ticket.created', '",
            $changed,
            "')) s WHERE s.type = '",
            $changed,
            "' AND (s.moved_from IS DISTINCT FROM s.before OR s.moved_from = s.moved_to) ",
            "UNION ALL ",
            "SELECT format('ticket %s holds %s, but its history ends at %s', t.id, ",
            $current,
            ", l.after) FROM tickets t LEFT JOIN LATERAL (",
            "SELECT CASE WHEN e.type = 'ticket.created' THEN ",
            $start,
            " ELSE e.data->'to' END AS after FROM ticket_events e ",
            "WHERE e.ticket_id = t.id AND e.type IN ('ticket.created', '",
            $changed,
            "') ORDER BY e.id DESC LIMIT 1) l ON true ",
            "WHERE coalesce(l.after, ",
            $initial,
            ") IS DISTINCT FROM ",
            $current
        )
    };
}

impl Rule {
    pub const ALL: [Rule; 18] = [
        Rule::TicketWithoutMessages,
        Rule::FirstMessageNotTheAuthorsRequest,
        Rule::MessageWithoutTicket,
        Rule::MessageWithoutAuthor,
        Rule::TicketWithoutAuthor,
        Rule::WrongTicketsCount,
        Rule::EventWithoutTicket,
        Rule::EventWithoutActor,
        Rule::TicketNotOpenedByItsFirstEvent,
        Rule::MessageWithoutOneEvent,
        Rule::MessageEventWithoutMessage,
        Rule::StatusHistoryBroken,
        Rule::PriorityHistoryBroken,
        Rule::AssigneeHistoryBroken,
        Rule::WrongVersion,
        Rule::UpdatedAtNotTheLastVisibleEvent,
        Rule::WrongInternalFlag,
        Rule::IdempotencyKeyWithoutUser,
    ];

    /// A query with one text column: one row, describing the offender, per violation.
    fn query(self) -> &'static str {
        match self {
            Rule::TicketWithoutMessages => {
                "SELECT format('ticket %s', t.id) FROM tickets t \
                 WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id)"
            }
            Rule::FirstMessageNotTheAuthorsRequest => {
                "SELECT format('ticket %s by user %s starts with message %s, a %s by user %s', \
                   t.id, t.author_id, f.id, f.type, f.author_id) \
                 FROM tickets t CROSS JOIN LATERAL ( \
                   SELECT m.id, m.type, m.author_id FROM messages m WHERE m.ticket_id = t.id \
                   ORDER BY m.created_at, m.id LIMIT 1) f \
                 WHERE f.type <> 'request' OR f.author_id <> t.author_id"
            }
            Rule::MessageWithoutTicket => {
                "SELECT format('message %s of ticket %s', m.id, m.ticket_id) FROM messages m \
                 WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = m.ticket_id)"
            }
            Rule::MessageWithoutAuthor => {
                "SELECT format('message %s by user %s', m.id, m.author_id) FROM messages m \
                 WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.author_id)"
            }
            Rule::TicketWithoutAuthor => {
                "SELECT format('ticket %s by user %s', t.id, t.author_id) FROM tickets t \
                 WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.author_id)"
            }
            Rule::WrongTicketsCount => {
                "SELECT format('user %s: tickets_count %s, tickets %s', u.id, u.tickets_count, c.n) \
                 FROM users u CROSS JOIN LATERAL ( \
                   SELECT count(*) AS n FROM tickets t WHERE t.author_id = u.id) c \
                 WHERE u.tickets_count <> c.n"
            }
            Rule::EventWithoutTicket => {
                "SELECT format('event %s (%s) of ticket %s', e.id, e.type, e.ticket_id) \
                 FROM ticket_events e \
                 WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = e.ticket_id)"
            }
            Rule::EventWithoutActor => {
                "SELECT format('event %s (%s) of ticket %s by user %s', \
                   e.id, e.type, e.ticket_id, e.actor_id) FROM ticket_events e \
                 WHERE e.actor_id IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = e.actor_id)"
            }
            Rule::TicketNotOpenedByItsFirstEvent => {
                "SELECT format('ticket %s: %s ticket.created events, the first event is %s', \
                   t.id, c.n, coalesce(f.type::text, 'missing')) \
                 FROM tickets t CROSS JOIN LATERAL ( \
                   SELECT count(*) AS n FROM ticket_events e \
                   WHERE e.ticket_id = t.id AND e.type = 'ticket.created') c \
                 LEFT JOIN LATERAL ( \
                   SELECT e.type FROM ticket_events e WHERE e.ticket_id = t.id \
                   ORDER BY e.id LIMIT 1) f ON true \
                 WHERE c.n <> 1 OR f.type IS DISTINCT FROM 'ticket.created'"
            }
            Rule::MessageWithoutOneEvent => {
                "SELECT format('%s %s of ticket %s has %s events', m.type, m.id, m.ticket_id, c.n) \
                 FROM messages m CROSS JOIN LATERAL ( \
                   SELECT count(*) AS n FROM ticket_events e \
                   WHERE e.ticket_id = m.ticket_id AND e.data->'message_id' = to_jsonb(m.id) \
                   AND CASE WHEN m.type = 'note' THEN e.type = 'note.created' \
                     ELSE e.type = 'message.created' AND e.data->>'type' = m.type::text END) c \
                 WHERE c.n <> 1"
            }
            Rule::MessageEventWithoutMessage => {
                "SELECT format('event %s (%s) of ticket %s names message %s', \
                   e.id, e.type, e.ticket_id, e.data->'message_id') \
                 FROM ticket_events e \
                 WHERE e.type IN ('message.created', 'note.created') AND NOT EXISTS ( \
                   SELECT 1 FROM messages m \
                   WHERE m.ticket_id = e.ticket_id AND to_jsonb(m.id) = e.data->'message_id' \
                   AND CASE WHEN e.type = 'note.created' THEN m.type = 'note' \
                     ELSE m.type <> 'note' AND e.data->>'type' = m.type::text END)"
            }
            Rule::StatusHistoryBroken => history_chain!(
                "ticket.status_changed",
                "e.data->'status'",
                "NULL::jsonb",
                "to_jsonb(t.status::text)"
            ),
            Rule::PriorityHistoryBroken => history_chain!(
                "ticket.priority_changed",
                "e.data->'priority'",
                "NULL::jsonb",
                "to_jsonb(t.priority::text)"
            ),
            Rule::AssigneeHistoryBroken => history_chain!(
                "ticket.assigned",
                "'null'::jsonb",
                "'null'::jsonb",
                "coalesce(to_jsonb(t.assignee_id), 'null'::jsonb)"
            ),
            Rule::WrongVersion => {
                "SELECT format('ticket %s: version %s, %s visible events', t.id, t.version, c.n) \
                 FROM tickets t CROSS JOIN LATERAL ( \
                   SELECT count(*) AS n FROM ticket_events e \
                   WHERE e.ticket_id = t.id AND NOT e.internal) c \
                 WHERE t.version < c.n - 1 \
                    OR (t.version > c.n - 1 AND NOT EXISTS ( \
                      SELECT 1 FROM ticket_events a \
                      WHERE a.ticket_id = t.id AND a.type = 'ticket.assigned'))"
            }
            Rule::UpdatedAtNotTheLastVisibleEvent => {
                "SELECT format('ticket %s: updated_at %s, last visible event at %s', \
                   t.id, t.updated_at, l.created_at) \
                 FROM tickets t LEFT JOIN LATERAL ( \
                   SELECT e.created_at FROM ticket_events e \
                   WHERE e.ticket_id = t.id AND NOT e.internal ORDER BY e.id DESC LIMIT 1) l ON true \
                 WHERE l.created_at IS DISTINCT FROM t.updated_at"
            }
            Rule::WrongInternalFlag => {
                "SELECT format('event %s (%s) of ticket %s: internal %s', \
                   e.id, e.type, e.ticket_id, e.internal) FROM ticket_events e \
                 WHERE e.internal <> (e.type = 'note.created')"
            }
            Rule::IdempotencyKeyWithoutUser => {
                "SELECT format('key %s of user %s', k.key, k.user_id) FROM idempotency_keys k \
                 WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = k.user_id)"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::TicketWithoutMessages => "a ticket without messages",
            Rule::FirstMessageNotTheAuthorsRequest => {
                "a ticket whose first message is not a request by its author"
            }
            Rule::MessageWithoutTicket => "a message whose ticket is missing",
            Rule::MessageWithoutAuthor => "a message whose author is missing",
            Rule::TicketWithoutAuthor => "a ticket whose author is missing",
            Rule::WrongTicketsCount => "a tickets_count that is not the number of tickets",
            Rule::EventWithoutTicket => "an event whose ticket is missing",
            Rule::EventWithoutActor => "an event whose actor is missing",
            Rule::TicketNotOpenedByItsFirstEvent => {
                "a ticket whose first event is not its one ticket.created"
            }
            Rule::MessageWithoutOneEvent => {
                "a message without exactly one message.created (note.created for a note)"
            }
            Rule::MessageEventWithoutMessage => {
                "a message.created or note.created whose message is missing"
            }
            Rule::StatusHistoryBroken => {
                "status events that do not chain from ticket.created to the ticket's status"
            }
            Rule::PriorityHistoryBroken => {
                "priority events that do not chain from ticket.created to the ticket's priority"
            }
            Rule::AssigneeHistoryBroken => {
                "ticket.assigned events that do not chain from nobody to the ticket's assignee"
            }
            Rule::WrongVersion => {
                "a version that is not the visible events' count less one (more only for a \
                 ticket that has been assigned: renaming its assignee grows it)"
            }
            Rule::UpdatedAtNotTheLastVisibleEvent => {
                "an updated_at that is not the time of the ticket's last visible event"
            }
            Rule::WrongInternalFlag => "an internal event that is not a note's, or the reverse",
            Rule::IdempotencyKeyWithoutUser => "an idempotency key whose user is missing",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub offender: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.offender)
    }
}

/// Every violation of every rule in the database `client` is connected to (or in its
/// open transaction). One statement, so all rules see the same snapshot.
pub async fn violations(client: &Client) -> Result<Vec<Violation>, tokio_postgres::Error> {
    let sql = Rule::ALL
        .iter()
        .enumerate()
        .map(|(n, rule)| format!("SELECT {n}::int4, v.o FROM ({}) AS v(o)", rule.query()))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
        + " ORDER BY 1, 2";
    let rows = client.query(&sql, &[]).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let n: i32 = row.get(0);
            Violation {
                rule: Rule::ALL[usize::try_from(n).expect("a rule's index")],
                offender: row.get(1),
            }
        })
        .collect())
}

/// [`violations`] on its own connection to `url`, on a thread with its own runtime, so
/// that it can run where blocking on async work is forbidden (inside a test's runtime,
/// in `Drop`) and whatever state the test left its pool in.
fn violations_blocking(url: &str) -> Result<Vec<Violation>, String> {
    let url = url.to_owned();
    let checked = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let checked = async {
                let mut config: tokio_postgres::Config = url.parse()?;
                config.connect_timeout(Duration::from_secs(10));
                let (client, connection) = config.connect(NoTls).await?;
                let driver = tokio::spawn(connection);
                let found = violations(&client).await;
                drop(client);
                let _ = driver.await;
                found
            };
            tokio::time::timeout(Duration::from_secs(60), checked)
                .await
                .map_err(|_| "the check took over 60 s".to_owned())?
                .map_err(|e| e.to_string())
        })
    })
    .join();
    checked.unwrap_or_else(|_| Err("the check panicked".to_owned()))
}

impl TestApp {
    /// The violations in this app's database now, through the test's pool.
    pub async fn invariant_violations(&self) -> Vec<Violation> {
        let client = self.db.pool().get().await.expect("a database connection");
        violations(&client).await.expect("the invariant check runs")
    }
}

/// Every test that spawns an app ends with its database checked: a test cannot forget
/// to, and a test that already failed reports its own failure, not this one.
impl Drop for TestApp {
    fn drop(&mut self) {
        let problem = match violations_blocking(self.db.url()) {
            Ok(found) if found.is_empty() => return,
            Ok(found) => format!(
                "the test left {} violations of the database's invariants:\n{}",
                found.len(),
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            Err(e) => format!("could not check the database's invariants: {e}"),
        };
        if std::thread::panicking() {
            eprintln!("{problem}");
        } else {
            panic!("{problem}");
        }
    }
}

// ---- the checks can fail ------------------------------------------------------------

/// Breaks the database with `sql` inside a transaction that is rolled back, and returns
/// the rules that the check finds broken meanwhile. In `sql`, `{customer}` is a
/// customer with one ticket, `{ticket}` that ticket and `{staff}` a member of staff.
async fn rules_broken_by(app: &TestApp, sql: &str) -> Vec<Rule> {
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let sql = sql
        .replace("{customer}", &customer.id.to_string())
        .replace("{ticket}", &ticket.to_string())
        .replace("{staff}", &staff.id.to_string());
    let client = app.db.pool().get().await.expect("a database connection");
    // Foreign keys would refuse the orphans; `replica` skips their triggers, for this
    // transaction only.
    client
        .batch_execute("BEGIN; SET LOCAL session_replication_role = replica")
        .await
        .expect("a transaction without foreign keys");
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let found = violations(&client).await.expect("the check runs");
    client.batch_execute("ROLLBACK").await.expect("a rollback");
    found.iter().map(|v| v.rule).collect()
}

/// Records the opening of the tickets with topic `x` and their messages, as the
/// service would have in the transaction that wrote them (which `now()` dates).
const RECORD_X: &str = "\
    INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
    SELECT t.id, t.author_id, 'ticket.created', false, \
      jsonb_build_object('topic', t.topic, 'status', t.status, 'priority', t.priority) \
    FROM tickets t WHERE t.topic = 'x'; \
    INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
    SELECT m.ticket_id, m.author_id, 'message.created', false, \
      jsonb_build_object('message_id', m.id, 'type', m.type) \
    FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE t.topic = 'x' ORDER BY m.id";

/// What a visible event does to `{ticket}` besides being recorded.
const TOUCH: &str =
    "UPDATE tickets SET version = version + 1, updated_at = now() WHERE id = {ticket}";

#[tokio::test]
async fn a_sound_database_has_no_violations() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.post_message_ok(&staff, ticket, "a response").await;
    app.post_note_ok(&staff, ticket, "a note").await;
    app.patch_ticket_ok(
        &staff,
        ticket,
        &json!({ "status": "resolved", "priority": "high", "assignee_id": staff.id }),
    )
    .await;
    app.patch_ticket_ok(
        &staff,
        ticket,
        &json!({ "assignee_id": null, "status": "pending" }),
    )
    .await;
    app.set_status_ok(&customer, ticket, "canceled").await;
    app.post_note_ok(&staff, ticket, "after the end").await;
    app.open_ticket_id(&staff).await;

    assert_eq!(app.invariant_violations().await, []);
}

#[tokio::test]
async fn each_rule_reports_what_breaks_it() {
    use Rule::*;
    let app = spawn_app().await;
    let staff_first = "WITH t AS (INSERT INTO tickets (author_id, topic) VALUES ({customer}, 'x') \
         RETURNING id) INSERT INTO messages (ticket_id, author_id, type, text) \
         SELECT id, {staff}, 'response', 'staff first' FROM t; \
         UPDATE users SET tickets_count = tickets_count + 1 WHERE id = {customer}";
    let not_by_the_author = "WITH t AS (INSERT INTO tickets (author_id, topic) \
         VALUES ({customer}, 'x') RETURNING id) INSERT INTO messages (ticket_id, author_id, type, text) \
         SELECT id, {staff}, 'request', 'not by the author' FROM t; \
         UPDATE users SET tickets_count = tickets_count + 1 WHERE id = {customer}";
    let cases: Vec<(String, Vec<Rule>)> = vec![
        (
            "INSERT INTO tickets (author_id, topic) VALUES ({customer}, 'bare')".into(),
            vec![
                TicketWithoutMessages,
                WrongTicketsCount,
                TicketNotOpenedByItsFirstEvent,
                StatusHistoryBroken,
                PriorityHistoryBroken,
                WrongVersion,
                UpdatedAtNotTheLastVisibleEvent,
            ],
        ),
        (
            [staff_first, RECORD_X].join("; "),
            vec![FirstMessageNotTheAuthorsRequest],
        ),
        (
            [not_by_the_author, RECORD_X].join("; "),
            vec![FirstMessageNotTheAuthorsRequest],
        ),
        // Without their events, the same tickets break the history too.
        (
            staff_first.into(),
            vec![
                FirstMessageNotTheAuthorsRequest,
                TicketNotOpenedByItsFirstEvent,
                MessageWithoutOneEvent,
                StatusHistoryBroken,
                PriorityHistoryBroken,
                WrongVersion,
                UpdatedAtNotTheLastVisibleEvent,
            ],
        ),
        (
            "INSERT INTO messages (ticket_id, author_id, type, text, created_at) \
             SELECT id, {staff}, 'response', 'earlier', created_at - interval '1 second' \
             FROM tickets WHERE author_id = {customer}"
                .into(),
            vec![FirstMessageNotTheAuthorsRequest, MessageWithoutOneEvent],
        ),
        // A later response, with its event, is how tickets go on: no violation.
        (
            [
                "WITH m AS (INSERT INTO messages (ticket_id, author_id, type, text) \
                 VALUES ({ticket}, {staff}, 'response', 'later') RETURNING id) \
                 INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 SELECT {ticket}, {staff}, 'message.created', false, \
                 jsonb_build_object('message_id', id, 'type', 'response') FROM m",
                TOUCH,
            ]
            .join("; "),
            vec![],
        ),
        (
            "INSERT INTO messages (ticket_id, author_id, type, text) \
             VALUES (9223372036854775807, {customer}, 'request', 'orphan')"
                .into(),
            vec![MessageWithoutTicket, MessageWithoutOneEvent],
        ),
        (
            "INSERT INTO messages (ticket_id, author_id, type, text) \
             SELECT id, 9223372036854775807, 'request', 'ghost' \
             FROM tickets WHERE author_id = {customer}"
                .into(),
            vec![MessageWithoutAuthor, MessageWithoutOneEvent],
        ),
        (
            "UPDATE tickets SET author_id = 9223372036854775807 WHERE author_id = {customer}"
                .into(),
            vec![
                FirstMessageNotTheAuthorsRequest,
                TicketWithoutAuthor,
                WrongTicketsCount,
            ],
        ),
        (
            "UPDATE users SET tickets_count = tickets_count + 1 WHERE id IN ({customer}, {staff})"
                .into(),
            vec![WrongTicketsCount, WrongTicketsCount],
        ),
        (
            "DELETE FROM tickets WHERE author_id = {customer}".into(),
            vec![
                MessageWithoutTicket,
                WrongTicketsCount,
                EventWithoutTicket,
                EventWithoutTicket,
            ],
        ),
        // ---- the event log
        (
            "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
             VALUES (9223372036854775807, {staff}, 'ticket.created', false, \
             '{\"topic\": \"x\", \"status\": \"pending\", \"priority\": \"normal\"}')"
                .into(),
            vec![EventWithoutTicket],
        ),
        (
            "UPDATE ticket_events SET actor_id = 9223372036854775807 \
             WHERE ticket_id = {ticket} AND type = 'message.created'"
                .into(),
            vec![EventWithoutActor],
        ),
        (
            [
                "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 SELECT ticket_id, actor_id, type, internal, data FROM ticket_events \
                 WHERE ticket_id = {ticket} AND type = 'ticket.created'",
                TOUCH,
            ]
            .join("; "),
            vec![TicketNotOpenedByItsFirstEvent],
        ),
        (
            "DELETE FROM ticket_events WHERE ticket_id = {ticket} AND type = 'ticket.created'"
                .into(),
            vec![
                TicketNotOpenedByItsFirstEvent,
                StatusHistoryBroken,
                PriorityHistoryBroken,
                WrongVersion,
            ],
        ),
        // The opening recorded after the first message.
        (
            "WITH d AS (DELETE FROM ticket_events \
               WHERE ticket_id = {ticket} AND type = 'ticket.created' \
               RETURNING ticket_id, actor_id, type, internal, data, created_at) \
             INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data, created_at) \
             SELECT * FROM d"
                .into(),
            vec![TicketNotOpenedByItsFirstEvent],
        ),
        (
            "INSERT INTO messages (ticket_id, author_id, type, text) \
             VALUES ({ticket}, {staff}, 'note', 'unrecorded')"
                .into(),
            vec![MessageWithoutOneEvent],
        ),
        (
            [
                "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 SELECT ticket_id, actor_id, type, internal, data FROM ticket_events \
                 WHERE ticket_id = {ticket} AND type = 'message.created'",
                TOUCH,
            ]
            .join("; "),
            vec![MessageWithoutOneEvent],
        ),
        (
            "UPDATE ticket_events SET data = jsonb_set(data, '{type}', '\"response\"') \
             WHERE ticket_id = {ticket} AND type = 'message.created'"
                .into(),
            vec![MessageWithoutOneEvent, MessageEventWithoutMessage],
        ),
        (
            "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
             VALUES ({ticket}, {staff}, 'note.created', true, \
             '{\"message_id\": 9223372036854775807}')"
                .into(),
            vec![MessageEventWithoutMessage],
        ),
        // A note with its (internal) event moves nothing: no violation.
        (
            "WITH m AS (INSERT INTO messages (ticket_id, author_id, type, text) \
             VALUES ({ticket}, {staff}, 'note', 'noted') RETURNING id) \
             INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
             SELECT {ticket}, {staff}, 'note.created', true, \
             jsonb_build_object('message_id', id) FROM m"
                .into(),
            vec![],
        ),
        // The same note's event shown to customers (and counted as such).
        (
            [
                "WITH m AS (INSERT INTO messages (ticket_id, author_id, type, text) \
                 VALUES ({ticket}, {staff}, 'note', 'noted') RETURNING id) \
                 INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 SELECT {ticket}, {staff}, 'note.created', false, \
                 jsonb_build_object('message_id', id) FROM m",
                TOUCH,
            ]
            .join("; "),
            vec![WrongInternalFlag],
        ),
        (
            "UPDATE tickets SET status = 'unresolved' WHERE id = {ticket}".into(),
            vec![StatusHistoryBroken],
        ),
        (
            [
                "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 VALUES ({ticket}, {staff}, 'ticket.status_changed', false, \
                 '{\"from\": \"pending\", \"to\": \"unresolved\"}'); \
                 UPDATE tickets SET status = 'unresolved' WHERE id = {ticket}",
                TOUCH,
            ]
            .join("; "),
            vec![],
        ),
        (
            [
                "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 VALUES ({ticket}, {staff}, 'ticket.status_changed', false, \
                 '{\"from\": \"unresolved\", \"to\": \"resolved\"}'); \
                 UPDATE tickets SET status = 'resolved' WHERE id = {ticket}",
                TOUCH,
            ]
            .join("; "),
            vec![StatusHistoryBroken],
        ),
        (
            "UPDATE tickets SET priority = 'urgent' WHERE id = {ticket}".into(),
            vec![PriorityHistoryBroken],
        ),
        (
            [
                "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 VALUES ({ticket}, {staff}, 'ticket.priority_changed', false, \
                 '{\"from\": \"normal\", \"to\": \"normal\"}')",
                TOUCH,
            ]
            .join("; "),
            vec![PriorityHistoryBroken],
        ),
        (
            "UPDATE tickets SET assignee_id = {staff} WHERE id = {ticket}".into(),
            vec![AssigneeHistoryBroken],
        ),
        (
            [
                "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 VALUES ({ticket}, {staff}, 'ticket.assigned', false, \
                 '{\"from\": null, \"to\": {staff}}'); \
                 UPDATE tickets SET assignee_id = {staff} WHERE id = {ticket}",
                TOUCH,
            ]
            .join("; "),
            vec![],
        ),
        (
            [
                "INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
                 VALUES ({ticket}, {staff}, 'ticket.assigned', false, \
                 '{\"from\": {customer}, \"to\": {staff}}'); \
                 UPDATE tickets SET assignee_id = {staff} WHERE id = {ticket}",
                TOUCH,
            ]
            .join("; "),
            vec![AssigneeHistoryBroken],
        ),
        (
            "UPDATE tickets SET version = version + 1 WHERE id = {ticket}".into(),
            vec![WrongVersion],
        ),
        (
            "UPDATE tickets SET updated_at = updated_at + interval '1 millisecond' \
             WHERE id = {ticket}"
                .into(),
            vec![UpdatedAtNotTheLastVisibleEvent],
        ),
        (
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body) \
             VALUES (9223372036854775807, 'k', decode(repeat('00', 32), 'hex'), 201, '')"
                .into(),
            vec![IdempotencyKeyWithoutUser],
        ),
    ];

    let mut shown = std::collections::HashSet::new();
    for (sql, expected) in cases {
        assert_eq!(rules_broken_by(&app, &sql).await, expected, "{sql}");
        shown.extend(expected);
    }
    for rule in Rule::ALL {
        assert!(shown.contains(&rule), "no case breaks {rule:?}");
    }
    // Everything above was rolled back.
    assert_eq!(app.invariant_violations().await, []);
}

#[tokio::test]
#[should_panic(expected = "violations of the database's invariants")]
async fn a_test_that_leaves_a_broken_database_fails() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    app.execute(
        "INSERT INTO tickets (author_id, topic) VALUES ($1, 'no message')",
        customer.id,
    )
    .await;
}
