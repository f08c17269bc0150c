//! The migrations, the pool settings and the test databases themselves.

use std::time::Duration;

use domain::event::EventData;
use domain::page::PageRequest;
use domain::ports::{TicketRepository, Viewer};
use domain::{Caller, MessageType, Priority, Role, TicketId, TicketStatus, UserId};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{ping, run_migrations, PgTicketRepository};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio_postgres::NoTls;

use super::support::{limit, new_message, pool_on};

/// The same migration files as the adapter embeds, for a runner that can stop at a
/// version (the adapter's `run_migrations` always applies them all).
mod embedded {
    // The macro's generated `runner()` unwraps the parsing of files it has already
    // validated at compile time.
    #![allow(clippy::unwrap_used)]
    refinery::embed_migrations!("../../migrations");
}

/// The migration files in the repository.
fn migration_files() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let count = std::fs::read_dir(dir)
        .expect("migrations directory")
        .filter(|entry| {
            entry
                .as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count();
    i64::try_from(count).expect("few migrations")
}

async fn count(db: &TestDatabase, sql: &str) -> i64 {
    let client = db.pool().get().await.expect("connection");
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_apply_each_migration_once() {
    let db = TestDatabase::create_empty().await;
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' \
                  AND tablename IN ('users', 'tickets', 'messages')";
    assert_eq!(count(&db, tables).await, 0, "starts empty");

    // Separate pools, as separate replicas would have.
    let runs = (0..4).map(|_| {
        let pool = pool_on(db.url(), 1, Duration::from_secs(30));
        tokio::spawn(async move { run_migrations(&pool).await })
    });
    for run in futures_util::future::join_all(runs).await {
        run.expect("task").expect("migrations");
    }

    assert_eq!(count(&db, tables).await, 3);
    let history = "SELECT count(*) FROM refinery_schema_history";
    assert_eq!(count(&db, history).await, migration_files());
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT version) FROM refinery_schema_history"
        )
        .await,
        migration_files()
    );

    // Once more on an up-to-date database: nothing to do, and no error.
    run_migrations(db.pool()).await.expect("migrations again");
    assert_eq!(count(&db, history).await, migration_files());
    // The migration lock is not left behind.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn test_databases_are_migrated_separate_and_dropped() {
    let first = TestDatabase::create().await;
    let second = TestDatabase::create().await;
    assert_ne!(first.url(), second.url());
    assert_eq!(
        count(&first, "SELECT count(*) FROM refinery_schema_history").await,
        migration_files()
    );
    let client = first.pool().get().await.expect("connection");
    client
        .execute(
            "INSERT INTO users (email, username, password_hash) VALUES ('a@b.c', 'a', 'h')",
            &[],
        )
        .await
        .expect("insert");
    drop(client);
    assert_eq!(count(&first, "SELECT count(*) FROM users").await, 1);
    assert_eq!(count(&second, "SELECT count(*) FROM users").await, 0);

    let name = first.name().to_owned();
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
    assert_eq!(count(&second, &exists).await, 1);
    drop(first);
    assert_eq!(count(&second, &exists).await, 0, "dropped with its guard");
}

#[tokio::test]
async fn pool_connections_carry_their_session_settings() {
    let db = TestDatabase::create().await;
    let pool = pool_on(db.url(), 2, Duration::from_millis(250));
    ping(&pool).await.expect("ping");
    let client = pool.get().await.expect("connection");
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(timeout, "250ms");
    let plan_cache_mode: String = client
        .query_one("SHOW plan_cache_mode", &[])
        .await
        .expect("show")
        .get(0);
    // Default plan caching: the list queries are one text per shape instead.
    assert_eq!(plan_cache_mode, "auto");
    let slow = client.execute("SELECT pg_sleep(5)", &[]).await;
    let code = slow.expect_err("cancelled by the timeout").code().cloned();
    assert_eq!(code, Some(tokio_postgres::error::SqlState::QUERY_CANCELED));
}

/// actix-web runs each worker on its own runtime and stops them one by one at shutdown.
/// A connection first opened by a worker must survive that worker's runtime, or the
/// requests other workers run on it fail mid-flight.
#[tokio::test]
async fn pooled_connections_outlive_the_runtime_that_first_asked_for_them() {
    let db = TestDatabase::create().await;
    // Built on this test's runtime, as the service's pool is on the main one.
    let pool = db.pool();

    let worker_pool = pool.clone();
    // On the blocking pool, so that this test's own runtime (the pool's) keeps running.
    let worker_backend = tokio::task::spawn_blocking(move || {
        let worker = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("worker runtime");
        worker.block_on(async {
            let client = worker_pool.get().await.expect("connection");
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .expect("query")
                .get(0);
            pid
        })
        // The worker's runtime is dropped here, as at a worker's shutdown.
    })
    .await
    .expect("worker thread");

    let client = pool.get().await.expect("a connection");
    let backend: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("the connection works")
        .get(0);
    assert_eq!(
        backend, worker_backend,
        "the worker's connection died with its runtime and was replaced"
    );
}

/// A V1 ticket as the test writes it: its author, topic, status, and its messages as
/// (author, type, minutes after the ticket).
struct V1Ticket {
    author: usize,
    topic: &'static str,
    status: TicketStatus,
    messages: Vec<(usize, MessageType, i64)>,
}

/// An event as the migration must have written it.
#[derive(Debug, PartialEq)]
struct Expected {
    kind: &'static str,
    actor: Option<i64>,
    created_at: OffsetDateTime,
    data: Value,
}

#[tokio::test]
async fn v2_writes_the_history_and_version_of_every_v1_ticket() {
    let db = TestDatabase::create_empty().await;
    let (mut client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(1))
        .run_async(&mut client)
        .await
        .expect("V1 alone");
    let v2_tables =
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('ticket_events', 'idempotency_keys')";
    let none: i64 = client
        .query_one(v2_tables, &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(none, 0, "only V1 is applied");

    // Users, then tickets in every status with messages of every V1 type, two of them
    // written at the same instant.
    let mut users = Vec::new();
    for (email, staff) in [
        ("alice@post.io", false),
        ("bob@post.io", false),
        ("staff@post.io", true),
    ] {
        let row = client
            .query_one(
                "INSERT INTO users (email, username, password_hash, is_staff) \
                 VALUES ($1, 'someone', 'hash', $2) RETURNING id",
                &[&email, &staff],
            )
            .await
            .expect("user");
        users.push(row.get::<_, i64>(0));
    }
    let (alice, bob, staff) = (0, 1, 2);
    let tickets = [
        V1Ticket {
            author: alice,
            topic: "pending chat",
            status: TicketStatus::Pending,
            messages: vec![
                (alice, MessageType::Request, 0),
                (staff, MessageType::Response, 5),
                (alice, MessageType::Request, 5),
                (staff, MessageType::Other, 9),
            ],
        },
        V1Ticket {
            author: bob,
            topic: "resolved",
            status: TicketStatus::Resolved,
            messages: vec![
                (bob, MessageType::Request, 0),
                (staff, MessageType::Response, 2),
            ],
        },
        V1Ticket {
            author: alice,
            topic: "unresolved",
            status: TicketStatus::Unresolved,
            messages: vec![(alice, MessageType::Request, 0)],
        },
        V1Ticket {
            author: bob,
            topic: "canceled",
            status: TicketStatus::Canceled,
            messages: vec![
                (bob, MessageType::Request, 0),
                (bob, MessageType::Request, 1),
            ],
        },
        V1Ticket {
            author: alice,
            topic: "untouched",
            status: TicketStatus::Pending,
            messages: vec![(alice, MessageType::Request, 0)],
        },
    ];
    let start = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid")
        - time::Duration::days(3);
    let mut expected = Vec::new();
    for (n, ticket) in tickets.iter().enumerate() {
        let created_at = start + time::Duration::hours(i64::try_from(n).expect("few"));
        let updated_at = created_at + time::Duration::minutes(30);
        let author = users[ticket.author];
        let id: i64 = client
            .query_one(
                "INSERT INTO tickets (author_id, topic, status, created_at, updated_at) \
                 VALUES ($1, $2, $3::text::ticket_status, $4, $5) RETURNING id",
                &[
                    &author,
                    &ticket.topic,
                    &ticket.status.as_str(),
                    &created_at,
                    &updated_at,
                ],
            )
            .await
            .expect("ticket")
            .get(0);
        let mut events = vec![Expected {
            kind: "ticket.created",
            actor: Some(author),
            created_at,
            data: json!({"topic": ticket.topic, "status": "pending", "priority": "normal"}),
        }];
        for &(by, kind, minutes) in &ticket.messages {
            let at = created_at + time::Duration::minutes(minutes);
            let message: i64 = client
                .query_one(
                    "INSERT INTO messages (ticket_id, author_id, type, text, created_at) \
                     VALUES ($1, $2, $3::text::message_type, 'words', $4) RETURNING id",
                    &[&id, &users[by], &kind.as_str(), &at],
                )
                .await
                .expect("message")
                .get(0);
            events.push(Expected {
                kind: "message.created",
                actor: Some(users[by]),
                created_at: at,
                data: json!({"message_id": message, "type": kind.as_str()}),
            });
        }
        if ticket.status != TicketStatus::Pending {
            events.push(Expected {
                kind: "ticket.status_changed",
                actor: None,
                created_at: updated_at,
                data: json!({"from": "pending", "to": ticket.status.as_str()}),
            });
        }
        expected.push((id, events));
    }
    drop(client);
    driver.await.expect("driver").expect("connection");

    run_migrations(db.pool()).await.expect("V2");

    let client = db.pool().get().await.expect("connection");
    for (id, events) in &expected {
        let stored: Vec<Expected> = client
            .query(
                "SELECT type::text, actor_id, created_at, data, internal \
                 FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
                &[id],
            )
            .await
            .expect("events")
            .iter()
            .map(|row| {
                assert!(!row.get::<_, bool>(4), "no V1 event is internal");
                let kind: String = row.get(0);
                Expected {
                    kind: EventData::TYPE_NAMES
                        .into_iter()
                        .find(|name| *name == kind)
                        .expect("a known type"),
                    actor: row.get(1),
                    created_at: row.get(2),
                    data: row.get(3),
                }
            })
            .collect();
        assert_eq!(&stored, events, "ticket {id}");
        let version: i64 = client
            .query_one("SELECT version FROM tickets WHERE id = $1", &[id])
            .await
            .expect("version")
            .get(0);
        let visible = i64::try_from(events.len()).expect("few");
        assert_eq!(version, visible - 1, "ticket {id}");
        let priority: String = client
            .query_one("SELECT priority::text FROM tickets WHERE id = $1", &[id])
            .await
            .expect("priority")
            .get(0);
        assert_eq!(priority, Priority::Normal.as_str());
    }
    drop(client);

    // The adapter reads the written history, and carries on from the written version.
    let repository = PgTicketRepository::new(pool_on(db.url(), 2, Duration::from_secs(60)));
    let staff_caller = Caller {
        id: UserId::new(users[staff]).expect("positive"),
        role: Role::Staff,
    };
    for (id, events) in &expected {
        let history = repository
            .list_events(
                Viewer::from(staff_caller),
                TicketId::new(*id).expect("positive"),
                PageRequest::first(limit(100)),
            )
            .await
            .expect("every written event decodes")
            .expect("visible");
        let read: Vec<(&str, Option<i64>, OffsetDateTime)> = history
            .items
            .iter()
            .map(|event| {
                let actor = event.actor.as_ref().map(|actor| actor.id.get());
                (event.data.type_name(), actor, event.created_at)
            })
            .collect();
        let written: Vec<(&str, Option<i64>, OffsetDateTime)> = events
            .iter()
            .map(|event| (event.kind, event.actor, event.created_at))
            .collect();
        assert_eq!(read, written, "ticket {id}");
    }
    let (first, first_events) = &expected[0];
    let first = TicketId::new(*first).expect("positive");
    repository
        .add_message(
            staff_caller,
            first,
            new_message(MessageType::Response, "after"),
            None,
            None,
        )
        .await
        .expect("add message");
    let found = repository
        .find_visible(Viewer::from(staff_caller), first)
        .await
        .expect("query")
        .expect("visible");
    let written = i64::try_from(first_events.len()).expect("few");
    assert_eq!(
        found.version.get(),
        written,
        "one more than the migration's"
    );
}
