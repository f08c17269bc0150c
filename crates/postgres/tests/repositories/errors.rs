//! Failures: an outage is `Unavailable` (retry), a row that does not decode is
//! `Unexpected` (a bug); and a write abandoned mid-transaction closes its connection
//! rather than return it to the pool with the transaction open.

use std::net::TcpListener;
use std::time::Duration;

use deadpool_postgres::Object;
use domain::page::PageRequest;
use domain::ports::{AddMessageError, OpenTicketError, TicketRepository, Viewer};
use domain::ticket::TicketVersion;
use domain::{MessageType, RepositoryError, RepositoryErrorKind, Role, TicketId, TicketStatus};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::PgTicketRepository;

use super::support::{
    caller, expecting, fresh, limit, pool_on, post_on, status_change, text, topic, viewer, Fixture,
};

/// A URL on which nothing listens: a port the system just handed out and took back.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    format!("postgres://postgres@127.0.0.1:{port}/tickets")
}

fn kind(result: Result<impl std::fmt::Debug, RepositoryError>) -> RepositoryErrorKind {
    result.expect_err("a failure").kind()
}

/// Locks the ticket's row in a transaction of its own, so that writers wait.
async fn lock_ticket(fx: &Fixture, id: TicketId) -> Object {
    let locker = fx.db.pool().get().await.expect("connection");
    locker.batch_execute("BEGIN").await.expect("begin");
    locker
        .query(
            "SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE",
            &[&id.get()],
        )
        .await
        .expect("lock the ticket");
    locker
}

/// The backend of this database that waits for a lock, once there is one.
async fn backend_waiting_for_a_lock(fx: &Fixture) -> i32 {
    let waiting = "SELECT pid FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    for _ in 0..300 {
        if let Some(pid) = fx.column::<i32>(waiting, &[]).await.first() {
            return *pid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no backend came to wait for the lock");
}

/// Waits until the backend `pid` has ended.
async fn until_gone(fx: &Fixture, pid: i32) {
    let alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1";
    for _ in 0..300 {
        if fx.scalar::<i64>(alive, &[&pid]).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("backend {pid} did not end");
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    let fx = Fixture::new().await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let ticket = fx.open(&staff, "unreachable").await;
    let nowhere = PgTicketRepository::new(pool_on(&closed_port_url(), 2, Duration::from_secs(5)));

    let read = nowhere.find_visible(viewer(&staff), ticket.id).await;
    assert_eq!(kind(read), RepositoryErrorKind::Unavailable);
    let events = nowhere
        .list_events(viewer(&staff), ticket.id, PageRequest::first(limit(10)))
        .await;
    assert_eq!(kind(events), RepositoryErrorKind::Unavailable);
    let forgotten = nowhere
        .forget_idempotency_keys(time::OffsetDateTime::now_utc())
        .await;
    assert_eq!(kind(forgotten), RepositoryErrorKind::Unavailable);
    match nowhere
        .open_ticket(caller(&staff), topic("x"), text("y"), None)
        .await
    {
        Err(OpenTicketError::Repository(e)) => {
            assert_eq!(e.kind(), RepositoryErrorKind::Unavailable);
        }
        other => panic!("{other:?}"),
    }
    match post_on(&nowhere, &staff, ticket.id, MessageType::Note, "x", None).await {
        Err(AddMessageError::Repository(e)) => {
            assert_eq!(e.kind(), RepositoryErrorKind::Unavailable);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_connection_terminated_mid_write_is_unavailable_and_writes_nothing() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx.open(&author, "terminated").await;
    let repository = PgTicketRepository::new(fx.own_pool(2));
    let locker = lock_ticket(&fx, ticket.id).await;

    let actor = caller(&author);
    let cancel = |repository: PgTicketRepository| async move {
        repository
            .update_if_unchanged(
                actor,
                ticket.id,
                expecting(TicketStatus::Pending, TicketVersion::FIRST),
                status_change(TicketStatus::Pending, TicketStatus::Canceled),
            )
            .await
    };
    let write = tokio::spawn(cancel(repository.clone()));
    let pid = backend_waiting_for_a_lock(&fx).await;
    let terminated: bool = fx.scalar("SELECT pg_terminate_backend($1)", &[&pid]).await;
    assert!(terminated);
    let outcome = write.await.expect("task");
    assert_eq!(kind(outcome), RepositoryErrorKind::Unavailable);
    locker.batch_execute("ROLLBACK").await.expect("rollback");

    assert_eq!(fx.version(ticket.id).await, TicketVersion::FIRST);
    assert_eq!(fx.rows_in("ticket_events").await, 2);
    // The pool does not hand out the dead connection again.
    let canceled = cancel(repository)
        .await
        .expect("a new connection")
        .expect("still at version 1");
    assert_eq!(canceled.status, TicketStatus::Canceled);
}

#[tokio::test]
async fn a_statement_cancelled_by_its_timeout_is_unavailable_and_writes_nothing() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "slow").await;
    let impatient = PgTicketRepository::new(pool_on(fx.db.url(), 1, Duration::from_millis(200)));
    // The write waits for the ticket's lock until the server cancels it.
    let locker = lock_ticket(&fx, ticket.id).await;
    let written = post_on(
        &impatient,
        &staff,
        ticket.id,
        MessageType::Response,
        "late",
        None,
    )
    .await;
    match written {
        Err(AddMessageError::Repository(e)) => {
            assert_eq!(e.kind(), RepositoryErrorKind::Unavailable, "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    locker.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(fx.rows_in("messages").await, 1);
    assert_eq!(fx.rows_in("ticket_events").await, 2);
    assert_eq!(fx.version(ticket.id).await, ticket.version);
}

#[tokio::test]
async fn a_dropped_database_is_unavailable() {
    let fx = Fixture::new().await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let doomed = TestDatabase::create().await;
    let repository = PgTicketRepository::new(pool_on(doomed.url(), 2, Duration::from_secs(5)));
    let id = TicketId::new(1).expect("positive");
    // Staff of another database: no caller to confirm in this one.
    let staff_view = Viewer {
        caller_role: None,
        ..viewer(&staff)
    };
    assert_eq!(
        repository
            .find_visible(staff_view, id)
            .await
            .expect("reachable"),
        None
    );
    fx.execute(
        &format!("DROP DATABASE \"{}\" WITH (FORCE)", doomed.name()),
        &[],
    )
    .await;
    // Once for the connection the drop ended, once for a new one.
    for attempt in 0..2 {
        let error = repository
            .find_visible(staff_view, id)
            .await
            .expect_err("no database");
        assert_eq!(
            error.kind(),
            RepositoryErrorKind::Unavailable,
            "attempt {attempt}: {:?}",
            std::error::Error::source(&error)
        );
    }
}

#[tokio::test]
async fn an_event_that_does_not_decode_is_unexpected() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx.open(&author, "broken").await;
    let intact = fx.open(&author, "intact").await;
    fx.execute(
        "UPDATE ticket_events SET data = '{}' \
         WHERE id = (SELECT min(id) FROM ticket_events WHERE ticket_id = $1)",
        &[&ticket.id.get()],
    )
    .await;

    let listed = fx
        .tickets
        .list_events(viewer(&author), ticket.id, PageRequest::first(limit(10)))
        .await;
    assert_eq!(kind(listed), RepositoryErrorKind::Unexpected);
    // Only the broken row fails: the ticket and other histories still read.
    assert_eq!(fx.events(viewer(&author), intact.id).await.len(), 2);
    let found = fx
        .tickets
        .find_visible(viewer(&author), ticket.id)
        .await
        .expect("query");
    assert_eq!(found, Some(ticket));
}

#[tokio::test]
async fn a_write_abandoned_mid_transaction_closes_its_connection_and_writes_nothing() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "abandoned").await;
    let pool = fx.own_pool(2);
    let repository = PgTicketRepository::new(pool.clone());
    // A write that ends goes back to the pool.
    fresh(
        post_on(
            &repository,
            &staff,
            ticket.id,
            MessageType::Note,
            "first",
            None,
        )
        .await
        .expect("add message"),
    );
    assert_eq!(pool.status().size, 1);
    let messages_before = fx.rows_in("messages").await;
    let events_before = fx.rows_in("ticket_events").await;

    let locker = lock_ticket(&fx, ticket.id).await;
    let write = {
        let (repository, staff) = (repository.clone(), staff.clone());
        tokio::spawn(async move {
            post_on(
                &repository,
                &staff,
                ticket.id,
                MessageType::Response,
                "abandoned",
                None,
            )
            .await
        })
    };
    // The write's transaction has begun and waits for the ticket: abandon it there,
    // as a client that goes away abandons its request.
    let pid = backend_waiting_for_a_lock(&fx).await;
    write.abort();
    assert!(write.await.expect_err("aborted").is_cancelled());
    assert_eq!(pool.status().size, 0, "the connection left the pool");

    locker.batch_execute("ROLLBACK").await.expect("rollback");
    until_gone(&fx, pid).await;
    assert_eq!(fx.rows_in("messages").await, messages_before);
    assert_eq!(fx.rows_in("ticket_events").await, events_before);
    assert_eq!(fx.version(ticket.id).await, ticket.version);

    // The next checkout opens a working connection.
    let message = fresh(
        post_on(
            &repository,
            &staff,
            ticket.id,
            MessageType::Response,
            "again",
            None,
        )
        .await
        .expect("add message"),
    );
    assert_eq!(message.text, "again");
    assert_eq!(pool.status().size, 1);
}
