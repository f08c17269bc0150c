//! Confirming the caller with the request's own statements (`TicketRepository`'s
//! contract): a caller who is gone, deactivated or has another role than the one
//! assumed fails every method with `CallerChanged`, and writes nothing.

use domain::page::PageRequest;
use domain::ports::{AddMessageError, OpenTicketError, TicketRepository, Viewer};
use domain::ticket::TicketFilter;
use domain::{Caller, MessageType, RepositoryError, RepositoryErrorKind, Role, TicketStatus};

use super::support::{
    caller, fresh, limit, new_message, status_change, text, topic, viewer, Fixture,
};

/// How a caller the request assumed differs from the user as stored.
const CHANGES: [(&str, &str); 4] = [
    (
        "deactivated",
        "UPDATE users SET is_active = false WHERE id = $1",
    ),
    (
        "demoted",
        "UPDATE users SET is_staff = false, is_superuser = false WHERE id = $1",
    ),
    (
        "promoted",
        "UPDATE users SET is_superuser = true WHERE id = $1",
    ),
    ("deleted", "DELETE FROM users WHERE id = $1"),
];

/// The rows a write adds to.
async fn written_rows(fx: &Fixture) -> [i64; 4] {
    [
        fx.rows_in("tickets").await,
        fx.rows_in("messages").await,
        fx.rows_in("ticket_events").await,
        fx.scalar("SELECT coalesce(sum(version), 0)::bigint FROM tickets", &[])
            .await,
    ]
}

fn assert_caller_changed(error: &RepositoryError, what: &str) {
    assert_eq!(
        error.kind(),
        RepositoryErrorKind::CallerChanged,
        "{what}: {error:?}"
    );
}

#[tokio::test]
async fn every_read_fails_for_a_caller_who_changed() {
    for (change, sql) in CHANGES {
        let fx = Fixture::new().await;
        let (author, staff) = fx.author_and_staff().await;
        let ticket = fx.open(&author, "printer").await;
        // Staff deleted with a ticket of their own would violate its foreign key.
        fx.execute(sql, &[&staff.id.get()]).await;
        let as_staff = viewer(&staff);
        let page = || PageRequest {
            after: None,
            limit: limit(10),
        };

        let found = fx.tickets.find_visible(as_staff, ticket.id).await;
        assert_caller_changed(&found.expect_err("find"), change);
        let snapshot = fx.tickets.ticket_snapshot(as_staff, ticket.id).await;
        assert_caller_changed(&snapshot.expect_err("snapshot"), change);
        let listed = fx
            .tickets
            .list_visible(as_staff, TicketFilter::default(), page())
            .await;
        assert_caller_changed(&listed.expect_err("list"), change);
        let messages = fx.tickets.list_messages(as_staff, ticket.id, page()).await;
        assert_caller_changed(&messages.expect_err("messages"), change);
        let history = fx
            .tickets
            .list_events(
                as_staff,
                ticket.id,
                PageRequest {
                    after: None,
                    limit: limit(10),
                },
            )
            .await;
        assert_caller_changed(&history.expect_err("history"), change);
    }
}

#[tokio::test]
async fn every_write_fails_for_a_caller_who_changed_and_writes_nothing() {
    for (change, sql) in CHANGES {
        let fx = Fixture::new().await;
        let (author, staff) = fx.author_and_staff().await;
        let ticket = fx.open(&author, "printer").await;
        let before = written_rows(&fx).await;
        fx.execute(sql, &[&staff.id.get()]).await;
        let as_staff = caller(&staff);

        let opened = fx
            .tickets
            .open_ticket(as_staff, topic("mine"), text("text"), None)
            .await;
        match opened {
            Err(OpenTicketError::Repository(e)) => assert_caller_changed(&e, change),
            other => panic!("{change}: opening gave {other:?}"),
        }
        let posted = fx
            .tickets
            .add_message(
                as_staff,
                ticket.id,
                new_message(MessageType::Response, "hello"),
                None,
                None,
            )
            .await;
        match posted {
            Err(AddMessageError::Repository(e)) => assert_caller_changed(&e, change),
            other => panic!("{change}: posting gave {other:?}"),
        }
        let now = fx.ticket_as(&author, ticket.id).await;
        let changed = fx
            .tickets
            .update_if_unchanged(
                as_staff,
                ticket.id,
                domain::ports::ExpectedTicket::of(&now, false),
                status_change(TicketStatus::Pending, TicketStatus::Unresolved),
            )
            .await;
        assert_caller_changed(&changed.expect_err("update"), change);

        assert_eq!(
            written_rows(&fx).await,
            before,
            "{change}: something was written"
        );
    }
}

#[tokio::test]
async fn a_confirmed_caller_reads_and_writes_as_before() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "printer").await;
    let reply = fresh(
        fx.tickets
            .add_message(
                caller(&staff),
                ticket.id,
                new_message(MessageType::Response, "on it"),
                None,
                None,
            )
            .await
            .expect("staff answer"),
    );
    assert_eq!(reply.kind, MessageType::Response);
    assert_eq!(fx.ticket_as(&staff, ticket.id).await.id, ticket.id);
    // A superuser is confirmed as a superuser, not as staff.
    let root = fx.user("root@post.io", Role::Superuser).await;
    assert!(fx
        .tickets
        .find_visible(viewer(&root), ticket.id)
        .await
        .expect("found")
        .is_some());
    let as_staff_only = Caller {
        role: Role::Staff,
        ..caller(&root)
    };
    let error = fx
        .tickets
        .find_visible(Viewer::from(as_staff_only), ticket.id)
        .await
        .expect_err("a superuser assumed to be staff only");
    assert_caller_changed(&error, "superuser as staff");
}

#[tokio::test]
async fn a_view_on_someone_s_behalf_confirms_nobody() {
    let fx = Fixture::new().await;
    let (author, _) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "printer").await;
    fx.execute(
        "UPDATE users SET is_active = false WHERE id = $1",
        &[&author.id.get()],
    )
    .await;

    let theirs = fx
        .tickets
        .list_by_author(
            author.id,
            PageRequest {
                after: None,
                limit: limit(10),
            },
        )
        .await
        .expect("a deactivated user's tickets are still listed for staff");
    assert_eq!(theirs.items.len(), 1);
    assert_eq!(theirs.items[0].id, ticket.id);
}
