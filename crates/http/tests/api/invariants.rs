//! The database's invariants — what no sequence of requests, concurrent or not, may
//! break — checked after every end-to-end test by `TestApp`'s `Drop`, and on demand
//! with [`violations`] on any connection.

use std::fmt;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::helpers::{spawn_app, TestApp};

/// One rule of the data, with the query that lists what breaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    TicketWithoutMessages,
    FirstMessageNotTheAuthorsRequest,
    MessageWithoutTicket,
    MessageWithoutAuthor,
    TicketWithoutAuthor,
    WrongTicketsCount,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::TicketWithoutMessages,
        Rule::FirstMessageNotTheAuthorsRequest,
        Rule::MessageWithoutTicket,
        Rule::MessageWithoutAuthor,
        Rule::TicketWithoutAuthor,
        Rule::WrongTicketsCount,
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
/// customer with one ticket and `{staff}` a member of staff.
async fn rules_broken_by(app: &TestApp, sql: &str) -> Vec<Rule> {
    let customer = app.customer().await;
    let staff = app.staff().await;
    app.open_ticket_id(&customer).await;
    let sql = sql
        .replace("{customer}", &customer.id.to_string())
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

#[tokio::test]
async fn a_sound_database_has_no_violations() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.post_message_ok(&staff, ticket, "a response").await;
    app.open_ticket_id(&staff).await;

    assert_eq!(app.invariant_violations().await, []);
}

#[tokio::test]
async fn each_rule_reports_what_breaks_it() {
    use Rule::*;
    let app = spawn_app().await;
    let cases = [
        (
            "INSERT INTO tickets (author_id, topic) VALUES ({customer}, 'bare')",
            vec![TicketWithoutMessages, WrongTicketsCount],
        ),
        (
            "WITH t AS (INSERT INTO tickets (author_id, topic) VALUES ({customer}, 'x') \
             RETURNING id) INSERT INTO messages (ticket_id, author_id, type, text) \
             SELECT id, {staff}, 'response', 'staff first' FROM t; \
             UPDATE users SET tickets_count = tickets_count + 1 WHERE id = {customer}",
            vec![FirstMessageNotTheAuthorsRequest],
        ),
        (
            "WITH t AS (INSERT INTO tickets (author_id, topic) VALUES ({customer}, 'x') \
             RETURNING id) INSERT INTO messages (ticket_id, author_id, type, text) \
             SELECT id, {staff}, 'request', 'not by the author' FROM t; \
             UPDATE users SET tickets_count = tickets_count + 1 WHERE id = {customer}",
            vec![FirstMessageNotTheAuthorsRequest],
        ),
        (
            "INSERT INTO messages (ticket_id, author_id, type, text, created_at) \
             SELECT id, {staff}, 'response', 'earlier', created_at - interval '1 second' \
             FROM tickets WHERE author_id = {customer}",
            vec![FirstMessageNotTheAuthorsRequest],
        ),
        // A later response is how tickets go on: no violation.
        (
            "INSERT INTO messages (ticket_id, author_id, type, text) \
             SELECT id, {staff}, 'response', 'later' FROM tickets WHERE author_id = {customer}",
            vec![],
        ),
        (
            "INSERT INTO messages (ticket_id, author_id, type, text) \
             VALUES (9223372036854775807, {customer}, 'request', 'orphan')",
            vec![MessageWithoutTicket],
        ),
        (
            "INSERT INTO messages (ticket_id, author_id, type, text) \
             SELECT id, 9223372036854775807, 'request', 'ghost' \
             FROM tickets WHERE author_id = {customer}",
            vec![MessageWithoutAuthor],
        ),
        (
            "UPDATE tickets SET author_id = 9223372036854775807 WHERE author_id = {customer}",
            vec![
                FirstMessageNotTheAuthorsRequest,
                TicketWithoutAuthor,
                WrongTicketsCount,
            ],
        ),
        (
            "UPDATE users SET tickets_count = tickets_count + 1 WHERE id IN ({customer}, {staff})",
            vec![WrongTicketsCount, WrongTicketsCount],
        ),
        (
            "DELETE FROM tickets WHERE author_id = {customer}",
            vec![MessageWithoutTicket, WrongTicketsCount],
        ),
    ];

    for (sql, expected) in cases {
        assert_eq!(rules_broken_by(&app, sql).await, expected, "{sql}");
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
