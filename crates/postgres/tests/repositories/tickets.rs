//! `PgTicketRepository`: opening tickets, visibility, compare-and-set changes,
//! messages and assignee candidates.

use domain::page::{PageLimit, PageRequest};
use domain::ports::{AddMessageError, ExpectedTicket, OpenTicketError, TicketRepository};
use domain::ticket::{TicketFilter, TicketVersion, UserRef};
use domain::workflow::{Change, TicketChanges};
use domain::{Caller, MessageType, Priority, Role, TicketId, TicketStatus, UserId};

use super::support::{
    caller, expecting, fresh, status_change, text, topic, version, viewer, Fixture,
};

#[tokio::test]
async fn opening_a_ticket_writes_ticket_first_message_and_count_together() {
    let fx = Fixture::new().await;
    let author = fx.user("Author@Post.io", Role::Customer).await;
    let ticket = fresh(
        fx.tickets
            .open_ticket(
                caller(&author),
                topic(" new discount "),
                text("Hello\nthere"),
                None,
            )
            .await
            .expect("open"),
    );
    assert_eq!(ticket.topic, "new discount");
    assert_eq!(ticket.status, TicketStatus::Pending);
    assert_eq!(ticket.priority, Priority::Normal);
    assert_eq!(ticket.assignee, None);
    assert_eq!(ticket.version, TicketVersion::FIRST);
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
    let stored: String = fx
        .scalar(
            "SELECT format('%s %s %s', status, priority, version) FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(stored, "pending normal 1");

    let tickets_count = "SELECT tickets_count FROM users WHERE id = $1";
    let count: i64 = fx.scalar(tickets_count, &[&author.id.get()]).await;
    assert_eq!(count, 1);
    fx.open(&author, "second").await;
    let count: i64 = fx.scalar(tickets_count, &[&author.id.get()]).await;
    assert_eq!(count, 2);
}

#[tokio::test]
async fn opening_a_ticket_for_a_missing_author_writes_nothing() {
    let fx = Fixture::new().await;
    let missing = Caller {
        id: UserId::new(4242).expect("positive"),
        role: Role::Customer,
    };
    let opened = fx
        .tickets
        .open_ticket(missing, topic("ghost"), text("boo"), None)
        .await;
    assert!(
        matches!(opened, Err(OpenTicketError::Repository(_))),
        "{opened:?}"
    );
    let written: i64 = fx
        .scalar(
            "SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM messages) \
             + (SELECT count(*) FROM ticket_events)",
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
    let ticket = fx.open_with(&alice, "mine", "private").await;
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
            .ticket_snapshot(viewer(who), ticket.id)
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
            .ticket_snapshot(stranger, ticket.id)
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
        .try_post(&mallory, ticket.id, MessageType::Request, "let me in")
        .await;
    assert!(
        matches!(written, Err(AddMessageError::TicketNotFound)),
        "{written:?}"
    );
    assert_eq!(
        fx.rows_in("messages").await,
        1,
        "the stranger's message was not stored"
    );

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
            .ticket_snapshot(viewer(&staff), absent)
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
        .try_post(&staff, absent, MessageType::Response, "hello?")
        .await;
    assert!(
        matches!(written, Err(AddMessageError::TicketNotFound)),
        "{written:?}"
    );
}

#[tokio::test]
async fn update_if_unchanged_writes_only_at_the_expected_version() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "cas").await;

    let changed = fx
        .tickets
        .update_if_unchanged(
            caller(&staff),
            ticket.id,
            expecting(TicketStatus::Pending, ticket.version),
            status_change(TicketStatus::Pending, TicketStatus::Unresolved),
        )
        .await
        .expect("update")
        .expect("still at version 1");
    assert_eq!(changed.status, TicketStatus::Unresolved);
    assert_eq!(changed.version, version(2));
    assert_eq!(changed.author_email, "author@post.io");
    assert!(changed.updated_at > ticket.updated_at);
    assert_eq!(changed.created_at, ticket.created_at);

    // A second writer that read version 1 earlier loses, and writes nothing.
    let stale = fx
        .tickets
        .update_if_unchanged(
            caller(&author),
            ticket.id,
            expecting(TicketStatus::Pending, ticket.version),
            status_change(TicketStatus::Pending, TicketStatus::Canceled),
        )
        .await
        .expect("update");
    assert_eq!(stale, None);
    let stored = fx.ticket_as(&staff, ticket.id).await;
    assert_eq!(stored, changed, "the stale write changed nothing");

    // A version ahead of the ticket's is as stale as one behind it.
    let ahead = fx
        .tickets
        .update_if_unchanged(
            caller(&staff),
            ticket.id,
            expecting(TicketStatus::Unresolved, version(3)),
            status_change(TicketStatus::Unresolved, TicketStatus::Pending),
        )
        .await
        .expect("update");
    assert_eq!(ahead, None);

    let absent = TicketId::new(ticket.id.get() + 1000).expect("positive");
    assert_eq!(
        fx.tickets
            .update_if_unchanged(
                caller(&staff),
                absent,
                expecting(TicketStatus::Pending, TicketVersion::FIRST),
                status_change(TicketStatus::Pending, TicketStatus::Resolved),
            )
            .await
            .expect("update"),
        None
    );
}

#[tokio::test]
async fn without_a_version_only_the_fields_decided_on_must_be_unchanged() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "busy").await;
    let read = ExpectedTicket {
        version: None,
        ..expecting(TicketStatus::Pending, ticket.version)
    };
    // A message moves the version but none of the fields the status rule decided on.
    fx.post(&author, ticket.id, MessageType::Request, "still waiting")
        .await;

    let changed = fx
        .tickets
        .update_if_unchanged(
            caller(&staff),
            ticket.id,
            read,
            status_change(TicketStatus::Pending, TicketStatus::Unresolved),
        )
        .await
        .expect("update")
        .expect("the status is still pending");
    assert_eq!(changed.status, TicketStatus::Unresolved);
    assert_eq!(changed.version, version(3));

    // A status changed meanwhile still makes the write lose, as do a priority or an
    // assignee that moved.
    for moved in [
        ExpectedTicket {
            status: TicketStatus::Pending,
            ..read
        },
        ExpectedTicket {
            status: TicketStatus::Unresolved,
            priority: Priority::High,
            ..read
        },
        ExpectedTicket {
            status: TicketStatus::Unresolved,
            assignee: Some(staff.id),
            ..read
        },
    ] {
        let lost = fx
            .tickets
            .update_if_unchanged(
                caller(&staff),
                ticket.id,
                moved,
                status_change(moved.status, TicketStatus::Resolved),
            )
            .await
            .expect("update");
        assert_eq!(lost, None, "{moved:?}");
    }
    assert_eq!(fx.ticket_as(&staff, ticket.id).await, changed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_compare_and_sets_from_one_version_exactly_one_wins() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "race").await;
    let targets = [
        TicketStatus::Canceled,
        TicketStatus::Resolved,
        TicketStatus::Unresolved,
        TicketStatus::Canceled,
        TicketStatus::Resolved,
        TicketStatus::Unresolved,
    ];
    let actor = caller(&staff);
    let attempts = targets.map(|target| {
        let tickets = fx.tickets.clone();
        tokio::spawn(async move {
            tickets
                .update_if_unchanged(
                    actor,
                    ticket.id,
                    expecting(TicketStatus::Pending, TicketVersion::FIRST),
                    status_change(TicketStatus::Pending, target),
                )
                .await
        })
    });
    let winners: Vec<_> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter_map(|attempt| attempt.expect("task").expect("update"))
        .collect();
    assert_eq!(winners.len(), 1);
    let stored: String = fx
        .scalar(
            "SELECT status::text FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(stored, winners[0].status.as_str());
    assert_eq!(fx.version(ticket.id).await, version(2));
    let status_events: i64 = fx
        .scalar(
            "SELECT count(*) FROM ticket_events WHERE type = 'ticket.status_changed'",
            &[],
        )
        .await;
    assert_eq!(status_events, 1, "only the winner recorded its change");
}

#[tokio::test]
async fn update_if_unchanged_sets_priority_and_assignee_and_unassigns() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "triage").await;

    let triaged = fx
        .change(
            &staff,
            ticket.id,
            TicketChanges {
                priority: Some(Change {
                    from: Priority::Normal,
                    to: Priority::Urgent,
                }),
                assignee: Some(Change {
                    from: None,
                    to: Some(staff.id),
                }),
                ..TicketChanges::default()
            },
        )
        .await;
    assert_eq!(triaged.priority, Priority::Urgent);
    assert_eq!(
        triaged.assignee,
        Some(UserRef {
            id: staff.id,
            username: staff.username.clone(),
        })
    );
    assert_eq!(
        triaged.status,
        TicketStatus::Pending,
        "the status is left alone"
    );
    assert_eq!(
        fx.tickets
            .find_visible(viewer(&author), ticket.id)
            .await
            .expect("query"),
        Some(triaged.clone()),
        "what the write returned is what is stored, and the author sees the assignee"
    );

    let unassigned = fx
        .change(
            &staff,
            ticket.id,
            TicketChanges {
                assignee: Some(Change {
                    from: Some(staff.id),
                    to: None,
                }),
                ..TicketChanges::default()
            },
        )
        .await;
    assert_eq!(unassigned.assignee, None);
    assert_eq!(
        unassigned.priority,
        Priority::Urgent,
        "the priority is left alone"
    );
    let assignee: Option<i64> = fx
        .scalar(
            "SELECT assignee_id FROM tickets WHERE id = $1",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(assignee, None);
}

#[tokio::test]
async fn messages_are_added_to_visible_tickets_that_take_their_type() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let staff = fx.user("Staff@Post.io", Role::Staff).await;
    let ticket = fx.open_with(&author, "help", "please").await;

    let snapshot = fx
        .tickets
        .ticket_snapshot(viewer(&staff), ticket.id)
        .await
        .expect("query")
        .expect("visible");
    assert!(!snapshot.has_response);

    let response = fx
        .post(&staff, ticket.id, MessageType::Response, "on it")
        .await;
    assert_eq!(response.ticket_id, ticket.id);
    assert_eq!(response.kind, MessageType::Response);
    assert_eq!(response.text, "on it");
    assert_eq!(response.author_id, staff.id);
    assert_eq!(response.author_email, "Staff@Post.io");

    let snapshot = fx
        .tickets
        .ticket_snapshot(viewer(&author), ticket.id)
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
        .post(&author, ticket.id, MessageType::Request, "thanks")
        .await;
    assert_eq!(reply.kind, MessageType::Request);
    assert!(reply.created_at >= response.created_at);

    fx.set_status(&author, ticket.id, TicketStatus::Canceled)
        .await;
    let before = fx.ticket_as(&staff, ticket.id).await;
    for (who, kind) in [
        (&author, MessageType::Request),
        (&staff, MessageType::Response),
        (&staff, MessageType::Other),
    ] {
        let refused = fx.try_post(who, ticket.id, kind, "too late").await;
        assert!(
            matches!(
                refused,
                Err(AddMessageError::NotAccepted(TicketStatus::Canceled))
            ),
            "{kind:?}: {refused:?}"
        );
    }
    let after = fx.ticket_as(&staff, ticket.id).await;
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
        .try_post(&mallory, ticket.id, MessageType::Request, "hi")
        .await;
    assert!(
        matches!(refused, Err(AddMessageError::TicketNotFound)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_note_is_no_response() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "notes").await;
    fx.post(&staff, ticket.id, MessageType::Note, "looks like a refund")
        .await;
    let snapshot = fx
        .tickets
        .ticket_snapshot(viewer(&staff), ticket.id)
        .await
        .expect("query")
        .expect("visible");
    assert!(!snapshot.has_response);
}

#[tokio::test]
async fn assignee_candidates_are_users_as_stored() {
    let fx = Fixture::new().await;
    let customer = fx.user("customer@post.io", Role::Customer).await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let root = fx.user("root@post.io", Role::Superuser).await;
    fx.execute(
        "UPDATE users SET is_active = false, username = 'gone' WHERE id = $1",
        &[&staff.id.get()],
    )
    .await;

    for (user, username, role, is_active) in [
        (&customer, "someone", Role::Customer, true),
        (&staff, "gone", Role::Staff, false),
        (&root, "someone", Role::Superuser, true),
    ] {
        let candidate = fx
            .tickets
            .assignee_candidate(user.id)
            .await
            .expect("query")
            .expect("exists");
        assert_eq!(
            candidate.user,
            UserRef {
                id: user.id,
                username: username.to_owned(),
            }
        );
        assert_eq!((candidate.role, candidate.is_active), (role, is_active));
    }
    let unknown = UserId::new(root.id.get() + 1000).expect("positive");
    assert_eq!(
        fx.tickets.assignee_candidate(unknown).await.expect("query"),
        None
    );
}

#[tokio::test]
async fn the_schema_refuses_what_the_domain_never_writes() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx.open(&author, "schema").await;
    let client = fx.db.pool().get().await.expect("connection");
    let author_id = author.id.get();
    let ticket_id = ticket.id.get();
    let refused: [(&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]); 7] = [
        (
            "UPDATE users SET is_staff = false, is_superuser = true WHERE id = $1",
            &[&author_id],
        ),
        (
            "INSERT INTO tickets (author_id, topic) VALUES ($1, repeat('x', 21))",
            &[&author_id],
        ),
        (
            "UPDATE users SET tickets_count = -1 WHERE id = $1",
            &[&author_id],
        ),
        (
            "UPDATE tickets SET version = 0 WHERE id = $1",
            &[&ticket_id],
        ),
        (
            "INSERT INTO ticket_events (ticket_id, type, internal, data) \
             VALUES ($1, 'ticket.created', false, '[]')",
            &[&ticket_id],
        ),
        (
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body) \
             VALUES ($1, 'k', '\\x00', 201, '')",
            &[&author_id],
        ),
        (
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body) \
             VALUES ($1, 'k', decode(repeat('00', 32), 'hex'), 500, '')",
            &[&author_id],
        ),
    ];
    for (sql, params) in refused {
        assert!(client.execute(sql, params).await.is_err(), "{sql}");
    }
}
