//! `add_message`: what it refuses, in which order, and that a refusal writes nothing;
//! `If-Match` preconditions; and posts racing a cancel.

use std::sync::atomic::{AtomicBool, Ordering};

use domain::event::EventData;
use domain::idempotency::Written;
use domain::page::PageRequest;
use domain::ports::{AddMessageError, TicketRepository};
use domain::ticket::{TicketVersion, VersionPrecondition};
use domain::{Message, MessageType, Role, Ticket, TicketId, TicketStatus, User};
use futures_util::future::join_all;
use tokio::sync::Notify;

use super::support::{caller, expecting, limit, post_on, status_change, version, viewer, Fixture};

/// What a test can see of a ticket's rows: the ticket, its messages and its events.
async fn footprint(fx: &Fixture, staff: &User, id: TicketId) -> (Option<Ticket>, i64, i64) {
    let ticket = fx
        .tickets
        .find_visible(viewer(staff), id)
        .await
        .expect("query");
    let messages = fx
        .scalar(
            "SELECT count(*) FROM messages WHERE ticket_id = $1",
            &[&id.get()],
        )
        .await;
    let events = fx
        .scalar(
            "SELECT count(*) FROM ticket_events WHERE ticket_id = $1",
            &[&id.get()],
        )
        .await;
    (ticket, messages, events)
}

fn admitting(versions: &[i64]) -> Option<VersionPrecondition> {
    Some(VersionPrecondition {
        versions: versions.iter().copied().map(version).collect(),
    })
}

/// The outcome of `add_message`, comparable: `Ok` for a message written now.
fn outcome(result: Result<Written<Message>, AddMessageError>) -> Result<(), String> {
    match result {
        Ok(Written::Fresh(_)) => Ok(()),
        Ok(Written::Replayed(response)) => Err(format!("replayed {response:?}")),
        Err(AddMessageError::NotAccepted(status)) => Err(format!("not accepted: {status}")),
        Err(other) => Err(format!("{other:?}")),
    }
}

#[tokio::test]
async fn refusals_come_in_their_order_of_precedence_and_write_nothing() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let stranger = fx.user("stranger@post.io", Role::Customer).await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let open = fx.open(&author, "open").await;
    let canceled = fx.open(&author, "canceled").await;
    fx.set_status(&author, canceled.id, TicketStatus::Canceled)
        .await;
    // Both tickets are at version 2 now: `open` after a response, `canceled` after
    // its cancel.
    fx.post(&staff, open.id, MessageType::Response, "hi").await;
    let absent = TicketId::new(canceled.id.get() + 1000).expect("positive");
    let not_found = Err(format!("{:?}", AddMessageError::TicketNotFound));
    let canceled_refusal = Err("not accepted: canceled".to_owned());
    let failed = Err(format!("{:?}", AddMessageError::PreconditionFailed));

    let cases: [(&User, TicketId, MessageType, Option<VersionPrecondition>, _); 11] = [
        // Not visible: nothing else is told, not even that the ticket is canceled.
        (
            &stranger,
            canceled.id,
            MessageType::Request,
            admitting(&[9]),
            &not_found,
        ),
        (&stranger, open.id, MessageType::Note, None, &not_found),
        (&staff, absent, MessageType::Note, None, &not_found),
        // A canceled ticket refuses the conversation before any precondition.
        (
            &author,
            canceled.id,
            MessageType::Request,
            admitting(&[9]),
            &canceled_refusal,
        ),
        (
            &staff,
            canceled.id,
            MessageType::Response,
            admitting(&[2]),
            &canceled_refusal,
        ),
        (
            &staff,
            canceled.id,
            MessageType::Other,
            None,
            &canceled_refusal,
        ),
        // Notes are accepted on a canceled ticket, but still under the precondition.
        (
            &staff,
            canceled.id,
            MessageType::Note,
            admitting(&[1]),
            &failed,
        ),
        (&staff, canceled.id, MessageType::Note, None, &Ok(())),
        // The precondition, on a ticket that takes the message.
        (
            &staff,
            open.id,
            MessageType::Response,
            admitting(&[]),
            &failed,
        ),
        (
            &author,
            open.id,
            MessageType::Request,
            admitting(&[1, 3]),
            &failed,
        ),
        (
            &author,
            open.id,
            MessageType::Request,
            admitting(&[1, 2]),
            &Ok(()),
        ),
    ];
    for (who, id, kind, precondition, expected) in cases {
        let before = footprint(&fx, &staff, id).await;
        let described = format!(
            "{} posting a {kind:?} on {id} with {precondition:?}",
            who.email
        );
        let result = post_on(&fx.tickets, who, id, kind, "x", precondition).await;
        assert_eq!(&outcome(result), expected, "{described}");
        if expected.is_err() {
            assert_eq!(
                footprint(&fx, &staff, id).await,
                before,
                "{described} wrote"
            );
        }
    }
}

#[tokio::test]
async fn a_precondition_admits_only_the_current_version() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "if-match").await;
    let read = ticket.version;

    // The author read version 1; staff answer meanwhile, so version 1 is stale.
    fx.post(&staff, ticket.id, MessageType::Response, "answer")
        .await;
    let stale = post_on(
        &fx.tickets,
        &author,
        ticket.id,
        MessageType::Request,
        "based on version 1",
        Some(VersionPrecondition {
            versions: vec![read],
        }),
    )
    .await;
    assert!(
        matches!(stale, Err(AddMessageError::PreconditionFailed)),
        "{stale:?}"
    );

    // A note leaves the version alone, so it does not fail a precondition.
    fx.post(&staff, ticket.id, MessageType::Note, "internal")
        .await;
    let current = fx.version(ticket.id).await;
    assert_eq!(current, version(2));
    let written = post_on(
        &fx.tickets,
        &author,
        ticket.id,
        MessageType::Request,
        "based on version 2",
        Some(VersionPrecondition {
            versions: vec![current],
        }),
    )
    .await;
    assert!(matches!(written, Ok(Written::Fresh(_))), "{written:?}");
    assert_eq!(fx.version(ticket.id).await, version(3));
    let texts: Vec<String> = fx
        .column(
            "SELECT text FROM messages WHERE ticket_id = $1 ORDER BY id",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(texts, ["text", "answer", "internal", "based on version 2"]);
}

#[tokio::test]
async fn posts_racing_a_cancel_are_kept_exactly_when_they_came_first() {
    const POSTERS: usize = 6;
    const POSTS: usize = 8;
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "race").await;
    let answered = AtomicBool::new(false);
    let go = Notify::new();

    let poster = |n: usize| {
        let (fx, answered, go) = (&fx, &answered, &go);
        let (who, kind) = if n % 2 == 0 {
            (&author, MessageType::Request)
        } else {
            (&staff, MessageType::Response)
        };
        async move {
            let mut results = Vec::new();
            for k in 0..POSTS {
                // Read before sending: a post that starts after the cancel answered
                // must find the ticket canceled.
                let after_cancel = answered.load(Ordering::SeqCst);
                let text = format!("{n}.{k}");
                let result = post_on(&fx.tickets, who, ticket.id, kind, &text, None).await;
                results.push((after_cancel, result));
                if k == 1 {
                    go.notify_one();
                }
            }
            results
        }
    };
    let cancel = async {
        go.notified().await;
        // Posts keep moving the version: read it again until the compare-and-set holds.
        let mut canceled = None;
        for _ in 0..1000 {
            let current: TicketVersion = fx.version(ticket.id).await;
            canceled = fx
                .tickets
                .update_if_unchanged(
                    caller(&author),
                    ticket.id,
                    expecting(TicketStatus::Pending, current),
                    status_change(TicketStatus::Pending, TicketStatus::Canceled),
                )
                .await
                .expect("update");
            if canceled.is_some() {
                break;
            }
        }
        answered.store(true, Ordering::SeqCst);
        canceled.expect("the cancel won within 1000 attempts")
    };
    let (posted, canceled) = tokio::join!(join_all((0..POSTERS).map(poster)), cancel);
    assert_eq!(canceled.status, TicketStatus::Canceled);

    let mut accepted = Vec::new();
    for (after_cancel, result) in posted.into_iter().flatten() {
        match result {
            Ok(Written::Fresh(message)) if !after_cancel => accepted.push(message.id.get()),
            Err(AddMessageError::NotAccepted(TicketStatus::Canceled)) => {}
            other => panic!("sent after the cancel answered: {after_cancel}; got {other:?}"),
        }
    }
    // Every accepted message is stored, and nothing else.
    let first: i64 = fx
        .scalar(
            "SELECT min(id) FROM messages WHERE ticket_id = $1",
            &[&ticket.id.get()],
        )
        .await;
    let mut expected = vec![first];
    expected.extend(&accepted);
    expected.sort_unstable();
    let stored: Vec<i64> = fx
        .column(
            "SELECT id FROM messages WHERE ticket_id = $1 ORDER BY id",
            &[&ticket.id.get()],
        )
        .await;
    assert_eq!(stored, expected);
    // ... and the history tells the same: every message's event before the cancel's.
    let events = fx.events(viewer(&staff), ticket.id).await;
    let cancel_at = events
        .iter()
        .position(|event| matches!(event.data, EventData::StatusChanged { .. }))
        .expect("the cancel's event");
    assert_eq!(
        cancel_at,
        events.len() - 1,
        "nothing was recorded after the cancel"
    );
    assert_eq!(events.len(), 1 + stored.len() + 1);
    fx.assert_version_counts_visible_events(ticket.id).await;
    eprintln!("{} messages accepted before the cancel", accepted.len());
}

#[tokio::test]
async fn customers_never_see_notes_among_the_messages() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open_with(&author, "notes", "first").await;
    for (kind, text) in [
        (MessageType::Note, "n1"),
        (MessageType::Response, "r1"),
        (MessageType::Note, "n2"),
        (MessageType::Note, "n3"),
        (MessageType::Response, "r2"),
        (MessageType::Note, "n4"),
    ] {
        fx.post(&staff, ticket.id, kind, text).await;
    }
    for (who, expected) in [
        (&author, vec!["first", "r1", "r2"]),
        (&staff, vec!["first", "n1", "r1", "n2", "n3", "r2", "n4"]),
    ] {
        // Pages of two: notes leave no short or empty pages behind for customers.
        let mut pages = Vec::new();
        let mut request = PageRequest::first(limit(2));
        loop {
            let page = fx
                .tickets
                .list_messages(viewer(who), ticket.id, request)
                .await
                .expect("query")
                .expect("visible");
            pages.push(
                page.items
                    .iter()
                    .map(|m| m.text.clone())
                    .collect::<Vec<_>>(),
            );
            match page.next {
                Some(next) => request.after = Some(next),
                None => break,
            }
        }
        let expected_pages: Vec<Vec<String>> = expected
            .chunks(2)
            .map(|chunk| chunk.iter().map(|text| (*text).to_owned()).collect())
            .collect();
        assert_eq!(pages, expected_pages, "{}", who.email);
    }
}
