//! Idempotency keys: stored with the write they guard, replayed for a repeat, refused
//! for another request, owned by their user, forgotten after their retention.

use domain::idempotency::{Idempotency, KeyConflict, StoredResponse, Written};
use domain::ports::{AddMessageError, OpenTicketError, TicketRepository};
use domain::ticket::VersionPrecondition;
use domain::{Caller, Message, MessageType, Role, Ticket, TicketId, TicketStatus, User, UserId};
use futures_util::future::join_all;
use time::OffsetDateTime;

use super::support::{
    caller, fresh, key, message_location, new_message, text, ticket_location, topic, version,
    Fixture,
};

fn ticket_key(raw: &str, fingerprint: u8) -> Idempotency<Ticket> {
    key(raw, fingerprint, ticket_location)
}

fn message_key(raw: &str, fingerprint: u8) -> Idempotency<Message> {
    key(raw, fingerprint, message_location)
}

async fn open_keyed(
    fx: &Fixture,
    author: &User,
    key: &Idempotency<Ticket>,
) -> Result<Written<Ticket>, OpenTicketError> {
    fx.tickets
        .open_ticket(
            caller(author),
            topic("keyed"),
            text("text"),
            Some(key.clone()),
        )
        .await
}

async fn post_keyed(
    fx: &Fixture,
    author: &User,
    id: TicketId,
    key: &Idempotency<Message>,
) -> Result<Written<Message>, AddMessageError> {
    fx.tickets
        .add_message(
            caller(author),
            id,
            new_message(MessageType::Request, "keyed"),
            None,
            Some(key.clone()),
        )
        .await
}

/// The rows that any write of these tests adds.
async fn written_rows(fx: &Fixture) -> [i64; 4] {
    [
        fx.rows_in("tickets").await,
        fx.rows_in("messages").await,
        fx.rows_in("ticket_events").await,
        fx.scalar(
            "SELECT coalesce(sum(tickets_count), 0)::int8 FROM users",
            &[],
        )
        .await,
    ]
}

/// The stored key of a user, as a response, if any.
async fn stored(fx: &Fixture, user: UserId, raw: &str) -> Option<StoredResponse> {
    let client = fx.db.pool().get().await.expect("connection");
    let row = client
        .query_opt(
            "SELECT status, location, etag, body FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
            &[&user.get(), &raw],
        )
        .await
        .expect("query")?;
    let status: i16 = row.get(0);
    Some(StoredResponse {
        status: u16::try_from(status).expect("a 2xx status"),
        location: row.get(1),
        etag: row.get(2),
        body: row.get(3),
    })
}

#[tokio::test]
async fn a_key_stores_the_response_its_write_renders() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let opening = ticket_key("open-1", 7);
    let ticket = fresh(open_keyed(&fx, &author, &opening).await.expect("open"));
    assert_eq!(
        stored(&fx, author.id, "open-1").await,
        Some((opening.render)(&ticket))
    );
    let fingerprint: Vec<u8> = fx
        .scalar(
            "SELECT fingerprint FROM idempotency_keys WHERE key = 'open-1'",
            &[],
        )
        .await;
    assert_eq!(fingerprint, [7; 32]);

    let posting = message_key("post-1", 8);
    let message = fresh(
        post_keyed(&fx, &author, ticket.id, &posting)
            .await
            .expect("post"),
    );
    assert_eq!(
        stored(&fx, author.id, "post-1").await,
        Some((posting.render)(&message))
    );
    assert_eq!(fx.rows_in("idempotency_keys").await, 2);
}

#[tokio::test]
async fn a_repeat_of_an_opening_replays_its_response_and_writes_nothing() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let opening = ticket_key("open", 1);
    let ticket = fresh(open_keyed(&fx, &author, &opening).await.expect("open"));
    let rows = written_rows(&fx).await;
    assert_eq!(rows, [1, 1, 2, 1]);

    // The repeat's own render would name a ticket it does not write: what comes back is
    // the first response, as stored.
    let repeat = open_keyed(&fx, &author, &opening).await.expect("repeat");
    assert_eq!(repeat, Written::Replayed((opening.render)(&ticket)));
    assert_eq!(written_rows(&fx).await, rows);
}

#[tokio::test]
async fn a_repeat_of_a_post_replays_its_response_even_after_the_ticket_changed() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx.open(&author, "post").await;
    let posting = message_key("post", 1);
    let message = fresh(
        post_keyed(&fx, &author, ticket.id, &posting)
            .await
            .expect("post"),
    );
    // Canceled since, and at another version: the repeat is replayed before any check.
    fx.set_status(&author, ticket.id, TicketStatus::Canceled)
        .await;
    let rows = written_rows(&fx).await;
    let repeat = fx
        .tickets
        .add_message(
            caller(&author),
            ticket.id,
            new_message(MessageType::Request, "keyed"),
            Some(VersionPrecondition {
                versions: vec![version(1)],
            }),
            Some(posting.clone()),
        )
        .await
        .expect("replay");
    assert_eq!(repeat, Written::Replayed((posting.render)(&message)));
    assert_eq!(written_rows(&fx).await, rows);
}

#[tokio::test]
async fn a_key_used_for_another_request_is_refused_and_writes_nothing() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fresh(
        open_keyed(&fx, &author, &ticket_key("k", 1))
            .await
            .expect("open"),
    );
    fresh(
        post_keyed(&fx, &author, ticket.id, &message_key("m", 1))
            .await
            .expect("post"),
    );
    let rows = written_rows(&fx).await;
    let keys_before = stored(&fx, author.id, "k").await;

    let reopened = open_keyed(&fx, &author, &ticket_key("k", 2)).await;
    assert!(
        matches!(reopened, Err(OpenTicketError::Key(KeyConflict::Reused))),
        "{reopened:?}"
    );
    // A key is bound to its request whatever kind of write it guarded (a post's
    // fingerprint differs from an opening's: its path does).
    let posted = post_keyed(&fx, &author, ticket.id, &message_key("k", 3)).await;
    assert!(
        matches!(posted, Err(AddMessageError::Key(KeyConflict::Reused))),
        "{posted:?}"
    );
    let reposted = post_keyed(&fx, &author, ticket.id, &message_key("m", 3)).await;
    assert!(
        matches!(reposted, Err(AddMessageError::Key(KeyConflict::Reused))),
        "{reposted:?}"
    );
    assert_eq!(written_rows(&fx).await, rows);
    assert_eq!(stored(&fx, author.id, "k").await, keys_before);
}

#[tokio::test]
async fn keys_belong_to_their_user() {
    let fx = Fixture::new().await;
    let alice = fx.user("alice@post.io", Role::Customer).await;
    let bob = fx.user("bob@post.io", Role::Customer).await;
    let shared = ticket_key("same-key", 1);
    let alices = fresh(open_keyed(&fx, &alice, &shared).await.expect("open"));
    let bobs = fresh(open_keyed(&fx, &bob, &shared).await.expect("open"));
    assert_ne!(alices.id, bobs.id);
    assert_eq!(bobs.author_id, bob.id);
    assert_eq!(
        stored(&fx, alice.id, "same-key").await,
        Some((shared.render)(&alices))
    );
    assert_eq!(
        stored(&fx, bob.id, "same-key").await,
        Some((shared.render)(&bobs))
    );
    // With another fingerprint, too: Bob's use says nothing about Alice's.
    let carol = fx.user("carol@post.io", Role::Customer).await;
    let other = fresh(
        open_keyed(&fx, &carol, &ticket_key("same-key", 9))
            .await
            .expect("open"),
    );
    assert_eq!(other.author_id, carol.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_requests_with_one_key_exactly_one_writes() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let opening = ticket_key("once", 1);
    let actor: Caller = caller(&author);
    let attempts = (0..8).map(|_| {
        let tickets = fx.tickets.clone();
        let opening = opening.clone();
        tokio::spawn(async move {
            tickets
                .open_ticket(actor, topic("once"), text("text"), Some(opening))
                .await
        })
    });
    let mut written = Vec::new();
    let mut replayed = Vec::new();
    let mut in_use = 0;
    for attempt in join_all(attempts).await {
        match attempt.expect("task") {
            Ok(Written::Fresh(ticket)) => written.push(ticket),
            Ok(Written::Replayed(response)) => replayed.push(response),
            Err(OpenTicketError::Key(KeyConflict::InUse)) => in_use += 1,
            Err(other) => panic!("neither a write, a replay nor in use: {other:?}"),
        }
    }
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written.len() + replayed.len() + in_use, 8);
    let first = (opening.render)(&written[0]);
    assert!(replayed.iter().all(|response| *response == first));
    assert_eq!(written_rows(&fx).await, [1, 1, 2, 1]);
    eprintln!("{} replayed, {in_use} in use", replayed.len());
}

#[tokio::test]
async fn a_key_is_replayed_for_24_hours_then_written_anew() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let opening = ticket_key("day", 1);
    let first = fresh(open_keyed(&fx, &author, &opening).await.expect("open"));
    let age = "UPDATE idempotency_keys SET created_at = now() - $1::text::interval";

    fx.execute(age, &[&"23 hours 59 minutes"]).await;
    let repeat = open_keyed(&fx, &author, &opening).await.expect("repeat");
    assert_eq!(repeat, Written::Replayed((opening.render)(&first)));

    fx.execute(age, &[&"25 hours"]).await;
    let second = fresh(
        open_keyed(&fx, &author, &opening)
            .await
            .expect("expired: written again"),
    );
    assert_ne!(second.id, first.id);
    assert_eq!(
        stored(&fx, author.id, "day").await,
        Some((opening.render)(&second)),
        "the key now holds the new write's response"
    );
    let fresh_again: bool = fx
        .scalar(
            "SELECT created_at > now() - interval '1 hour' FROM idempotency_keys",
            &[],
        )
        .await;
    assert!(fresh_again, "the key's retention starts again");
    let third = open_keyed(&fx, &author, &opening).await.expect("repeat");
    assert_eq!(third, Written::Replayed((opening.render)(&second)));

    // An expired key does not bind its old fingerprint either.
    fx.execute(age, &[&"25 hours"]).await;
    let other = fresh(
        open_keyed(&fx, &author, &ticket_key("day", 2))
            .await
            .expect("expired: free for another request"),
    );
    assert_eq!(fx.rows_in("tickets").await, 3);
    assert_eq!(fx.rows_in("idempotency_keys").await, 1);
    assert_eq!(
        stored(&fx, author.id, "day").await,
        Some((ticket_key("day", 2).render)(&other))
    );
}

#[tokio::test]
async fn forgetting_deletes_exactly_the_keys_stored_before_the_cutoff() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let cutoff = OffsetDateTime::now_utc() - time::Duration::hours(24);
    // Keys at the cutoff and after it stay; one written through the repository, too.
    fresh(
        open_keyed(&fx, &author, &ticket_key("recent", 1))
            .await
            .expect("open"),
    );
    let insert =
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at) \
                  SELECT $1, $2 || n, decode(repeat('00', 32), 'hex'), 201, '', $3 \
                  FROM generate_series(1, $4) AS n";
    let at_cutoff = 2_i32;
    fx.execute(insert, &[&author.id.get(), &"at-", &cutoff, &at_cutoff])
        .await;
    let kept = fx.rows_in("idempotency_keys").await;

    // Batches of 10,000: none, fewer than one, exactly one and several batches.
    for (round, old) in [0_i32, 3, 10_000, 25_001].into_iter().enumerate() {
        let before_cutoff = cutoff - time::Duration::microseconds(1);
        let prefix = format!("old{round}-");
        fx.execute(insert, &[&author.id.get(), &prefix, &before_cutoff, &old])
            .await;
        let forgotten = fx
            .tickets
            .forget_idempotency_keys(cutoff)
            .await
            .expect("forget");
        assert_eq!(
            forgotten,
            u64::try_from(old).expect("positive"),
            "{old} old keys"
        );
        assert_eq!(fx.rows_in("idempotency_keys").await, kept, "{old} old keys");
    }
    let left: Vec<String> = fx
        .column("SELECT key FROM idempotency_keys ORDER BY key", &[])
        .await;
    assert_eq!(left, ["at-1", "at-2", "recent"]);
}

#[tokio::test]
async fn a_failed_write_stores_no_key_and_its_key_stays_free() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let open = fx.open(&author, "open").await;
    let canceled = fx.open(&author, "canceled").await;
    fx.set_status(&author, canceled.id, TicketStatus::Canceled)
        .await;
    let absent = TicketId::new(canceled.id.get() + 1000).expect("positive");
    let retry = message_key("retry", 1);

    let missing = post_keyed(&fx, &author, absent, &retry).await;
    assert!(
        matches!(missing, Err(AddMessageError::TicketNotFound)),
        "{missing:?}"
    );
    let refused = post_keyed(&fx, &author, canceled.id, &retry).await;
    assert!(
        matches!(refused, Err(AddMessageError::NotAccepted(_))),
        "{refused:?}"
    );
    let failed = fx
        .tickets
        .add_message(
            caller(&staff),
            open.id,
            new_message(MessageType::Response, "x"),
            Some(VersionPrecondition::default()),
            Some(retry.clone()),
        )
        .await;
    assert!(
        matches!(failed, Err(AddMessageError::PreconditionFailed)),
        "{failed:?}"
    );
    let ghost = Caller {
        id: UserId::new(staff.id.get() + 1000).expect("positive"),
        role: Role::Customer,
    };
    let opened = fx
        .tickets
        .open_ticket(
            ghost,
            topic("ghost"),
            text("boo"),
            Some(ticket_key("retry", 1)),
        )
        .await;
    assert!(opened.is_err(), "{opened:?}");
    assert_eq!(fx.rows_in("idempotency_keys").await, 0);

    // The same key, retried where it can succeed, writes.
    let message = fresh(
        post_keyed(&fx, &author, open.id, &retry)
            .await
            .expect("post"),
    );
    assert_eq!(message.ticket_id, open.id);
    assert_eq!(
        stored(&fx, author.id, "retry").await,
        Some((retry.render)(&message))
    );
}

#[tokio::test]
async fn a_key_that_cannot_be_stored_fails_its_whole_write() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    // Only 2xx responses may be stored (a CHECK says so): this render is a bug, and the
    // write it guards must not happen without its key.
    let mut broken = ticket_key("broken", 1);
    broken.render = std::sync::Arc::new(|_: &Ticket| StoredResponse {
        status: 500,
        location: None,
        etag: None,
        body: Vec::new(),
    });
    let opened = open_keyed(&fx, &author, &broken).await;
    match opened {
        Err(OpenTicketError::Repository(e)) => {
            assert_eq!(e.kind(), domain::RepositoryErrorKind::Unexpected);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(written_rows(&fx).await, [0, 0, 0, 0]);
    assert_eq!(fx.rows_in("idempotency_keys").await, 0);
}
