//! The tail of the event log (`postgres_adapter::EventTail`): it hands out every event
//! once, in id order, never an id before a lower one that a running transaction may
//! still commit, and skips the ids of transactions that rolled back.

use std::time::Duration;

use domain::feed::FeedEvent;
use domain::{MessageType, Role};
use postgres_adapter::{
    EventTail, Listeners, PgTicketRepository, Subscription, TailReconnections, TailSettings,
};
use tokio::sync::broadcast::error::TryRecvError;

use super::support::Fixture;

/// Generous: a failure means the tail never delivers, not that it is slow.
const PATIENCE: Duration = Duration::from_secs(30);

async fn tail_of(fx: &Fixture) -> EventTail {
    tail_polling_every(fx, Duration::from_millis(100)).await
}

/// A tail that reads the log when woken, and otherwise only every `poll_interval`.
async fn tail_polling_every(fx: &Fixture, poll_interval: Duration) -> EventTail {
    let tail = EventTail::start(TailSettings {
        url: fx.db.url().to_owned(),
        buffer: 64,
        poll_interval,
    })
    .expect("the tail starts");
    tail.ready(PATIENCE)
        .await
        .expect("the tail finds the log's end");
    tail
}

async fn next_id(receiver: &mut Subscription<FeedEvent>) -> i64 {
    tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .expect("an event within the patience")
        .expect("the tail runs")
        .event
        .id
        .get()
}

/// A connection of its own, holding a transaction that has appended one event (as a
/// writer does: a row written first, so that the transaction has an id).
async fn hold_an_event(fx: &Fixture, ticket: i64) -> (tokio_postgres::Client, i64) {
    let (client, connection) = tokio_postgres::connect(fx.db.url(), tokio_postgres::NoTls)
        .await
        .expect("a connection");
    tokio::spawn(connection);
    client.batch_execute("BEGIN").await.expect("a transaction");
    client
        .execute(
            "UPDATE tickets SET updated_at = updated_at WHERE id = $1",
            &[&ticket],
        )
        .await
        .expect("the ticket's row");
    let id: i64 = client
        .query_one(
            "INSERT INTO ticket_events (ticket_id, type, internal, data) \
             VALUES ($1, 'note.created', true, '{\"message_id\": 1}') RETURNING id",
            &[&ticket],
        )
        .await
        .expect("an event")
        .get(0);
    (client, id)
}

/// A tail, a transaction holding event id `lower` open, and event `lower + 1` committed
/// by another ticket's writer meanwhile.
struct Hole {
    fx: Fixture,
    staff: domain::User,
    other: domain::TicketId,
    _tail: EventTail,
    receiver: Subscription<FeedEvent>,
    held: tokio_postgres::Client,
    lower: i64,
}

impl Hole {
    async fn new() -> Self {
        let fx = Fixture::new().await;
        let (author, staff) = fx.author_and_staff().await;
        let held_ticket = fx.open(&author, "held").await;
        let other = fx.open(&author, "other").await.id;
        let tail = tail_of(&fx).await;
        let (receiver, _) = tail.subscribe(None);
        let (held, lower) = hold_an_event(&fx, held_ticket.id.get()).await;
        fx.post(&staff, other, MessageType::Response, "committed meanwhile")
            .await;
        Hole {
            fx,
            staff,
            other,
            _tail: tail,
            receiver,
            held,
            lower,
        }
    }
}

#[tokio::test]
async fn a_later_id_waits_for_a_lower_one_still_running_then_both_come_in_order() {
    let hole = Hole::new().await;
    let (held, lower, mut receiver) = (hole.held, hole.lower, hole.receiver);
    // The committed event stays back while the lower id may still commit. Nothing can
    // prove a negative in time; waiting several polls makes a wrong tail fail here.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.try_recv().err(), Some(TryRecvError::Empty));

    held.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(next_id(&mut receiver).await, lower);
    assert_eq!(next_id(&mut receiver).await, lower + 1);
}

#[tokio::test]
async fn the_id_of_a_rolled_back_event_is_skipped() {
    let Hole {
        fx,
        staff,
        other,
        _tail,
        mut receiver,
        held,
        lower,
    } = Hole::new().await;
    held.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(next_id(&mut receiver).await, lower + 1);
    // And the tail goes on after the hole.
    fx.post(&staff, other, MessageType::Response, "after").await;
    assert_eq!(next_id(&mut receiver).await, lower + 2);
}

#[tokio::test]
async fn the_horizon_follows_what_was_handed_out_and_resumes_after_it() {
    let fx = Fixture::new().await;
    let (author, _) = fx.author_and_staff().await;
    fx.open(&author, "before").await;
    let tail = tail_of(&fx).await;
    let (mut receiver, horizon) = tail.subscribe(None);
    // Opening writes two events; the tail started after them.
    assert_eq!(horizon, Some(2));

    fx.open(&author, "after").await;
    assert_eq!(next_id(&mut receiver).await, 3);
    assert_eq!(next_id(&mut receiver).await, 4);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tail.subscribe(None).1 != Some(4) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the horizon moves on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends the tail's connection from the server's side, as a PostgreSQL restart does;
/// returns how many connections it ended.
async fn cut_the_tail(fx: &Fixture) -> i64 {
    fx.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'tickets-event-tail' AND datname = current_database()",
        &[],
    )
    .await
}

#[tokio::test]
async fn every_reconnection_is_as_quick_as_the_first_after_the_connection_worked() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "outages").await.id;
    let tail = tail_of(&fx).await;
    let (mut receiver, _) = tail.subscribe(None);
    assert_eq!(tail.reconnections(), TailReconnections::default());
    // Each outage is followed by a working connection. A backoff that never starts
    // over pauses 250 ms, 500 ms, 1 s, 2 s, 4 s, then 5 s before reconnecting; one that
    // starts over pauses 250 ms every time.
    for outage in 1..=6 {
        assert_eq!(
            cut_the_tail(&fx).await,
            1,
            "outage {outage}: one tail to cut"
        );
        fx.post(&staff, ticket, MessageType::Response, "during the outage")
            .await;
        let written: i64 = fx.scalar("SELECT max(id) FROM ticket_events", &[]).await;
        while next_id(&mut receiver).await < written {}
        // The tail records a reconnection before its pause: by the time the event has
        // come, it has, unless the event slipped through before the cut took effect.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tail.reconnections().count < outage {
            assert!(
                tokio::time::Instant::now() < deadline,
                "outage {outage}: the tail never reconnected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            tail.reconnections(),
            TailReconnections {
                count: outage,
                last_pause: Some(Duration::from_millis(250)),
            },
            "outage {outage}"
        );
    }
}

#[tokio::test]
async fn an_authors_subscription_gets_only_that_authors_tickets_events_in_order() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let other = fx.user("other@example.com", Role::Customer).await;
    let tail = tail_of(&fx).await;
    let (mut everything, _) = tail.subscribe(None);
    let (mut authors, _) = tail.subscribe(Some(author.id));

    let theirs = fx.open(&other, "not the author's").await.id;
    let own = fx.open(&author, "the author's").await.id;
    fx.post(&staff, theirs, MessageType::Response, "to the other")
        .await;
    fx.post(&staff, own, MessageType::Response, "to the author")
        .await;

    let mut everything_got = Vec::new();
    for _ in 0..6 {
        everything_got.push(next_id(&mut everything).await);
    }
    assert_eq!(everything_got, (1..=6).collect::<Vec<i64>>());
    // The author's ticket's events: its opening (ids 3 and 4) and the response (6).
    let mut authors_got = Vec::new();
    for _ in 0..3 {
        authors_got.push(next_id(&mut authors).await);
    }
    assert_eq!(authors_got, [3, 4, 6]);
    assert_eq!(authors.try_recv().err(), Some(TryRecvError::Empty));
}

#[tokio::test]
async fn an_authors_channel_lives_as_long_as_its_subscriptions() {
    let fx = Fixture::new().await;
    let (author, _) = fx.author_and_staff().await;
    let tail = tail_of(&fx).await;
    let listeners = |subscriptions, authors| Listeners {
        subscriptions,
        authors,
    };

    let (first, _) = tail.subscribe(Some(author.id));
    let (second, _) = tail.subscribe(Some(author.id));
    let (everything, _) = tail.subscribe(None);
    assert_eq!(tail.listeners(), listeners(3, 1));
    drop(first);
    assert_eq!(tail.listeners(), listeners(2, 1));
    drop(second);
    assert_eq!(tail.listeners(), listeners(1, 0));
    drop(everything);
    assert_eq!(tail.listeners(), listeners(0, 0));

    // A channel released is made anew for the next subscription, and it works.
    let (mut again, _) = tail.subscribe(Some(author.id));
    fx.open(&author, "after").await;
    assert_eq!(next_id(&mut again).await, 1);
}

/// Longer than any test's patience: a tail polling this rarely learns of a commit only
/// when something wakes it.
const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_signalled_commit_wakes_its_own_tail_which_announces_it_to_the_other_replicas() {
    let mut fx = Fixture::new().await;
    let (author, _) = fx.author_and_staff().await;
    let here = tail_polling_every(&fx, NEVER).await;
    let there = tail_polling_every(&fx, NEVER).await;
    fx.tickets = PgTicketRepository::new(fx.db.pool().clone()).signalling(here.commit_signal());
    let (mut here_receives, _) = here.subscribe(None);
    let (mut there_receives, _) = there.subscribe(None);

    fx.open(&author, "signalled").await;
    for receiver in [&mut here_receives, &mut there_receives] {
        assert_eq!(next_id(receiver).await, 1);
        assert_eq!(next_id(receiver).await, 2);
    }
}

#[tokio::test]
async fn a_writer_without_a_signal_notifies_the_tails_itself() {
    let fx = Fixture::new().await;
    let (author, _) = fx.author_and_staff().await;
    let tail = tail_polling_every(&fx, NEVER).await;
    let (mut receiver, _) = tail.subscribe(None);

    fx.open(&author, "notified").await;
    assert_eq!(next_id(&mut receiver).await, 1);
    assert_eq!(next_id(&mut receiver).await, 2);
}
