//! `PgTicketRepository`: opening tickets, visibility, status changes and messages.

use domain::page::{PageLimit, PageRequest};
use domain::ports::{AddMessageError, TicketRepository};
use domain::ticket::TicketFilter;
use domain::{MessageType, Role, TicketId, TicketStatus, UserId};

use super::support::{text, topic, viewer, Fixture};

#[tokio::test]
async fn opening_a_ticket_writes_ticket_first_message_and_count_together() {
    let fx = Fixture::new().await;
    let author = fx.user("Author@Post.io", Role::Customer).await;
    let ticket = fx
        .tickets
        .open_ticket_with_first_message(author.id, topic(" new discount "), text("Hello\nthere"))
        .await
        .expect("open");
    assert_eq!(ticket.topic, "new discount");
    assert_eq!(ticket.status, TicketStatus::Pending);
    assert_eq!(ticket.author_id, author.id);
    assert_eq!(ticket.author_email, "Author@Post.io");
    assert_eq!(ticket.created_at, ticket.updated_at);

    let (kind, message_text, message_author): (String, String, i64) = {
        let client = fx.db.pool().get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT type::text, text, author_id FROM messages WHERE ticket_id = $1",
                &[&ticket.id.get()],
            )
            .await
            .expect("exactly one message");
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(kind, "request");
    assert_eq!(message_text, "Hello\nthere");
    assert_eq!(message_author, author.id.get());
    let status: String = fx
        .scalar(
            "SELECT status::text FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(status, "pending");

    let count: i64 = fx
        .scalar(
            "SELECT tickets_count FROM users WHERE id = $1",
            &[&author.id.get()],
        )
        .await;
    assert_eq!(count, 1);
    fx.tickets
        .open_ticket_with_first_message(author.id, topic("second"), text("again"))
        .await
        .expect("open");
    let count: i64 = fx
        .scalar(
            "SELECT tickets_count FROM users WHERE id = $1",
            &[&author.id.get()],
        )
        .await;
    assert_eq!(count, 2);
}

#[tokio::test]
async fn opening_a_ticket_for_a_missing_author_writes_nothing() {
    let fx = Fixture::new().await;
    let missing = UserId::new(4242).expect("positive");
    let opened = fx
        .tickets
        .open_ticket_with_first_message(missing, topic("ghost"), text("boo"))
        .await;
    assert!(opened.is_err());
    let written: i64 = fx
        .scalar(
            "SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM messages)",
            &[],
        )
        .await;
    assert_eq!(written, 0);
}

#[tokio::test]
async fn customers_see_only_their_own_tickets_and_staff_see_all() {
    let fx = Fixture::new().await;
    let alice = fx.user("alice@post.io", Role::Customer).await;
    let mallory = fx.user("mallory@post.io", Role::Customer).await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let ticket = fx
        .tickets
        .open_ticket_with_first_message(alice.id, topic("mine"), text("private"))
        .await
        .expect("open");
    let first_page = PageRequest::first(PageLimit::DEFAULT);

    // The author and staff see it ...
    for who in [&alice, &staff] {
        let found = fx
            .tickets
            .find_visible(viewer(who), ticket.id)
            .await
            .expect("query");
        assert_eq!(found.as_ref(), Some(&ticket), "{}", who.email);
        let snapshot = fx
            .tickets
            .status_snapshot(viewer(who), ticket.id)
            .await
            .expect("query")
            .expect("visible");
        assert_eq!(snapshot.ticket, ticket);
        let listed = fx
            .tickets
            .list_visible(viewer(who), TicketFilter::default(), first_page)
            .await
            .expect("list");
        assert_eq!(listed.items, vec![ticket.clone()]);
        let messages = fx
            .tickets
            .list_messages(viewer(who), ticket.id, first_page)
            .await
            .expect("query")
            .expect("visible");
        assert_eq!(messages.items.len(), 1);
    }

    // ... another customer cannot see, list, read or write it.
    let stranger = viewer(&mallory);
    assert_eq!(
        fx.tickets
            .find_visible(stranger, ticket.id)
            .await
            .expect("query"),
        None
    );
    assert_eq!(
        fx.tickets
            .status_snapshot(stranger, ticket.id)
            .await
            .expect("query"),
        None
    );
    let listed = fx
        .tickets
        .list_visible(stranger, TicketFilter::default(), first_page)
        .await
        .expect("list");
    assert!(listed.items.is_empty());
    assert_eq!(
        fx.tickets
            .list_messages(stranger, ticket.id, first_page)
            .await
            .expect("query"),
        None
    );
    let written = fx
        .tickets
        .add_message(stranger, ticket.id, MessageType::Request, text("let me in"))
        .await;
    assert!(
        matches!(written, Err(AddMessageError::TicketNotFound)),
        "{written:?}"
    );
    let messages: i64 = fx.scalar("SELECT count(*) FROM messages", &[]).await;
    assert_eq!(messages, 1, "the stranger's message was not stored");

    // A ticket that does not exist looks the same as one not visible.
    let absent = TicketId::new(ticket.id.get() + 1000).expect("positive");
    assert_eq!(
        fx.tickets
            .find_visible(viewer(&staff), absent)
            .await
            .expect("query"),
        None
    );
    assert_eq!(
        fx.tickets
            .list_messages(viewer(&staff), absent, first_page)
            .await
            .expect("query"),
        None
    );
    let written = fx
        .tickets
        .add_message(
            viewer(&staff),
            absent,
            MessageType::Response,
            text("hello?"),
        )
        .await;
    assert!(
        matches!(written, Err(AddMessageError::TicketNotFound)),
        "{written:?}"
    );
}

#[tokio::test]
async fn set_status_if_current_is_a_compare_and_set() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx
        .tickets
        .open_ticket_with_first_message(author.id, topic("cas"), text("text"))
        .await
        .expect("open");

    let changed = fx
        .tickets
        .set_status_if_current(ticket.id, TicketStatus::Pending, TicketStatus::Unresolved)
        .await
        .expect("update")
        .expect("was pending");
    assert_eq!(changed.status, TicketStatus::Unresolved);
    assert_eq!(changed.author_email, "author@post.io");
    assert!(changed.updated_at > ticket.updated_at);
    assert_eq!(changed.created_at, ticket.created_at);

    // A second writer that read `pending` earlier loses.
    let stale = fx
        .tickets
        .set_status_if_current(ticket.id, TicketStatus::Pending, TicketStatus::Canceled)
        .await
        .expect("update");
    assert_eq!(stale, None);
    let status: String = fx
        .scalar(
            "SELECT status::text FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(status, "unresolved");

    let absent = TicketId::new(ticket.id.get() + 1000).expect("positive");
    assert_eq!(
        fx.tickets
            .set_status_if_current(absent, TicketStatus::Pending, TicketStatus::Resolved)
            .await
            .expect("update"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_compare_and_sets_from_one_status_exactly_one_wins() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx
        .tickets
        .open_ticket_with_first_message(author.id, topic("race"), text("text"))
        .await
        .expect("open");
    let targets = [
        TicketStatus::Canceled,
        TicketStatus::Resolved,
        TicketStatus::Unresolved,
        TicketStatus::Canceled,
        TicketStatus::Resolved,
        TicketStatus::Unresolved,
    ];
    let attempts = targets.map(|target| {
        let tickets = fx.tickets.clone();
        tokio::spawn(async move {
            tickets
                .set_status_if_current(ticket.id, TicketStatus::Pending, target)
                .await
        })
    });
    let winners: Vec<_> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter_map(|attempt| attempt.expect("task").expect("update"))
        .collect();
    assert_eq!(winners.len(), 1);
    let status: String = fx
        .scalar(
            "SELECT status::text FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(status, winners[0].status.as_str());
}

#[tokio::test]
async fn messages_are_added_to_open_visible_tickets_only() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let staff = fx.user("Staff@Post.io", Role::Staff).await;
    let ticket = fx
        .tickets
        .open_ticket_with_first_message(author.id, topic("help"), text("please"))
        .await
        .expect("open");

    let snapshot = fx
        .tickets
        .status_snapshot(viewer(&staff), ticket.id)
        .await
        .expect("query")
        .expect("visible");
    assert!(!snapshot.has_response);

    let response = fx
        .tickets
        .add_message(
            viewer(&staff),
            ticket.id,
            MessageType::Response,
            text("on it"),
        )
        .await
        .expect("add");
    assert_eq!(response.ticket_id, ticket.id);
    assert_eq!(response.kind, MessageType::Response);
    assert_eq!(response.text, "on it");
    assert_eq!(response.author_id, staff.id);
    assert_eq!(response.author_email, "Staff@Post.io");

    let snapshot = fx
        .tickets
        .status_snapshot(viewer(&author), ticket.id)
        .await
        .expect("query")
        .expect("visible");
    assert!(snapshot.has_response);
    assert!(
        snapshot.ticket.updated_at > ticket.updated_at,
        "updated_at moved"
    );
    assert_eq!(snapshot.ticket.updated_at, response.created_at);

    let reply = fx
        .tickets
        .add_message(
            viewer(&author),
            ticket.id,
            MessageType::Request,
            text("thanks"),
        )
        .await
        .expect("add");
    assert_eq!(reply.kind, MessageType::Request);
    assert!(reply.created_at >= response.created_at);

    fx.tickets
        .set_status_if_current(ticket.id, TicketStatus::Pending, TicketStatus::Canceled)
        .await
        .expect("update")
        .expect("was pending");
    let before: time::OffsetDateTime = fx
        .scalar(
            "SELECT updated_at FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    for who in [&author, &staff] {
        let refused = fx
            .tickets
            .add_message(viewer(who), ticket.id, MessageType::Other, text("too late"))
            .await;
        assert!(
            matches!(refused, Err(AddMessageError::TicketCanceled)),
            "{refused:?}"
        );
    }
    let after: time::OffsetDateTime = fx
        .scalar(
            "SELECT updated_at FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(before, after, "a refused message does not touch the ticket");
    let messages: i64 = fx
        .scalar(
            "SELECT count(*) FROM messages WHERE ticket_id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(messages, 3);

    // A stranger learns nothing, not even that the ticket is canceled.
    let mallory = fx.user("mallory@post.io", Role::Customer).await;
    let refused = fx
        .tickets
        .add_message(
            viewer(&mallory),
            ticket.id,
            MessageType::Request,
            text("hi"),
        )
        .await;
    assert!(
        matches!(refused, Err(AddMessageError::TicketNotFound)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_schema_refuses_what_the_domain_never_writes() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let client = fx.db.pool().get().await.expect("connection");
    let superuser_not_staff = client
        .execute(
            "UPDATE users SET is_staff = false, is_superuser = true WHERE id = $1",
            &[&author.id.get()],
        )
        .await;
    assert!(superuser_not_staff.is_err());
    let long_topic = client
        .execute(
            "INSERT INTO tickets (author_id, topic) VALUES ($1, repeat('x', 21))",
            &[&author.id.get()],
        )
        .await;
    assert!(long_topic.is_err());
    let negative_count = client
        .execute(
            "UPDATE users SET tickets_count = -1 WHERE id = $1",
            &[&author.id.get()],
        )
        .await;
    assert!(negative_count.is_err());
}
