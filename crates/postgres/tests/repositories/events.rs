//! The ticket event log and the version it keeps in step: every write appends its
//! events in its own transaction, and `list_events` shows them by id to those who may
//! see them.

use domain::event::{EventData, TicketEvent};
use domain::idempotency::Written;
use domain::page::{Page, PageRequest};
use domain::ports::{AddMessageError, TicketRepository, Viewer};
use domain::ticket::{TicketVersion, UserRef, VersionPrecondition};
use domain::workflow::{self, Change, TicketChanges};
use domain::{EventId, Message, MessageType, Priority, Role, TicketId, TicketStatus, User};

use super::support::{
    caller, expecting, limit, new_message, post_on, status_change, version, viewer, Fixture,
};

fn actor(user: &User) -> Option<UserRef> {
    Some(UserRef {
        id: user.id,
        username: user.username.clone(),
    })
}

fn data(events: &[TicketEvent]) -> Vec<EventData> {
    events.iter().map(|event| event.data.clone()).collect()
}

/// The stored `internal` flags of a ticket's events, oldest first.
async fn internal_flags(fx: &Fixture, id: TicketId) -> Vec<bool> {
    fx.column(
        "SELECT internal FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        &[&id.get()],
    )
    .await
}

/// A post that the rules refused (rather than one that failed).
fn is_refusal(result: &Result<Written<Message>, AddMessageError>) -> bool {
    matches!(
        result,
        Err(AddMessageError::TicketNotFound
            | AddMessageError::NotAccepted(_)
            | AddMessageError::PreconditionFailed)
    )
}

#[tokio::test]
async fn opening_records_the_ticket_then_its_first_message_by_the_author() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx.open(&author, "hello").await;
    let first_message: i64 = fx
        .scalar(
            "SELECT id FROM messages WHERE ticket_id = $1",
            &[&ticket.id.get()],
        )
        .await;

    let events = fx.events(viewer(&author), ticket.id).await;
    assert_eq!(
        data(&events),
        [
            EventData::TicketCreated {
                topic: "hello".to_owned(),
                status: TicketStatus::Pending,
                priority: Priority::Normal,
            },
            EventData::MessageCreated {
                message_id: domain::MessageId::new(first_message).expect("positive"),
                kind: MessageType::Request,
            },
        ]
    );
    for event in &events {
        assert_eq!(event.ticket_id, ticket.id);
        assert_eq!(event.actor, actor(&author));
        assert_eq!(
            event.created_at, ticket.created_at,
            "in the same transaction"
        );
    }
    assert!(events[0].id < events[1].id);
    assert_eq!(internal_flags(&fx, ticket.id).await, [false, false]);
}

#[tokio::test]
async fn a_message_records_its_event_and_a_note_an_internal_one() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "hello").await;
    let mut expected = data(&fx.events(viewer(&staff), ticket.id).await);

    for (who, kind) in [
        (&staff, MessageType::Response),
        (&staff, MessageType::Note),
        (&author, MessageType::Request),
        (&staff, MessageType::Other),
    ] {
        let message = fx.post(who, ticket.id, kind, "words").await;
        expected.push(EventData::message_posted(message.id, kind));
        let events = fx.events(viewer(&staff), ticket.id).await;
        assert_eq!(data(&events), expected, "after a {kind:?}");
        let last = events.last().expect("events");
        assert_eq!(last.actor, actor(who));
        assert_eq!(
            last.created_at, message.created_at,
            "in the same transaction"
        );
    }
    assert_eq!(
        internal_flags(&fx, ticket.id).await,
        [false, false, false, true, false, false]
    );
}

/// The changes of one request, by how many fields they change.
fn changes_of_every_size(staff: &User) -> Vec<TicketChanges> {
    let to_high = Change {
        from: Priority::Normal,
        to: Priority::High,
    };
    vec![
        TicketChanges {
            priority: Some(to_high),
            ..TicketChanges::default()
        },
        TicketChanges {
            assignee: Some(Change {
                from: None,
                to: Some(staff.id),
            }),
            status: Some(Change {
                from: TicketStatus::Pending,
                to: TicketStatus::Unresolved,
            }),
            ..TicketChanges::default()
        },
        TicketChanges {
            status: Some(Change {
                from: TicketStatus::Unresolved,
                to: TicketStatus::Resolved,
            }),
            priority: Some(Change {
                from: Priority::High,
                to: Priority::Urgent,
            }),
            assignee: Some(Change {
                from: Some(staff.id),
                to: None,
            }),
        },
    ]
}

#[tokio::test]
async fn a_change_records_one_event_per_field_and_grows_the_version_as_much() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "triage").await;
    let mut before = ticket;
    for changes in changes_of_every_size(&staff) {
        let listed_before = fx.events(viewer(&staff), before.id).await.len();
        let after = fx.change(&staff, before.id, changes.clone()).await;

        let events = fx.events(viewer(&staff), before.id).await;
        let appended = &events[listed_before..];
        assert_eq!(data(appended), changes.events(), "{changes:?}");
        assert!(appended.iter().all(|event| event.actor == actor(&staff)));
        let grown = i64::try_from(appended.len()).expect("few events");
        assert_eq!(after.version.get(), before.version.get() + grown);
        assert_eq!(
            workflow::version_increment(&changes.events()),
            grown,
            "every field's event is visible"
        );
        assert!(after.updated_at > before.updated_at, "{changes:?}");
        fx.assert_version_counts_visible_events(after.id).await;
        before = after;
    }
}

/// The domain does not send an empty change (it answers with the ticket as it is), but
/// the port takes one: the adapter then writes nothing and records no event.
#[tokio::test]
async fn an_empty_change_records_no_event_and_moves_nothing() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "unchanged").await;
    let events_before = fx.rows_in("ticket_events").await;

    let after = fx.change(&staff, ticket.id, TicketChanges::default()).await;
    assert_eq!(fx.rows_in("ticket_events").await, events_before);
    assert_eq!(after.version, ticket.version);
    assert_eq!(after.updated_at, ticket.updated_at);
    fx.assert_version_counts_visible_events(ticket.id).await;
}

#[tokio::test]
async fn refused_and_lost_writes_record_nothing() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let stranger = fx.user("stranger@post.io", Role::Customer).await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let ticket = fx.open(&author, "refusals").await;
    fx.post(&staff, ticket.id, MessageType::Response, "hi")
        .await;
    let canceled = fx.open(&author, "gone").await;
    fx.set_status(&author, canceled.id, TicketStatus::Canceled)
        .await;
    let events_before = fx.rows_in("ticket_events").await;

    let lost = fx
        .tickets
        .update_if_unchanged(
            caller(&staff),
            ticket.id,
            expecting(TicketStatus::Pending, TicketVersion::FIRST),
            status_change(TicketStatus::Pending, TicketStatus::Resolved),
        )
        .await
        .expect("update");
    assert_eq!(lost, None);
    let refusals = [
        (&stranger, ticket.id, MessageType::Request, None),
        (&author, canceled.id, MessageType::Request, None),
        (
            &staff,
            ticket.id,
            MessageType::Response,
            Some(VersionPrecondition {
                versions: vec![TicketVersion::FIRST],
            }),
        ),
    ];
    for (who, id, kind, precondition) in refusals {
        let refused = post_on(&fx.tickets, who, id, kind, "no", precondition).await;
        assert!(is_refusal(&refused), "{refused:?}");
    }
    assert_eq!(fx.rows_in("ticket_events").await, events_before);
}

#[tokio::test]
async fn event_ids_grow_in_the_order_of_the_writes() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let first = fx.open(&author, "one").await;
    let second = fx.open(&author, "two").await;
    // Writes to two tickets, interleaved.
    let mut written = Vec::new();
    for n in 0..4 {
        for id in [first.id, second.id] {
            let kind = if n % 2 == 0 {
                MessageType::Response
            } else {
                MessageType::Note
            };
            let message = fx.post(&staff, id, kind, &format!("{n}")).await;
            written.push((id, message.id));
        }
    }
    for id in [first.id, second.id] {
        let events = fx.events(viewer(&staff), id).await;
        let ids: Vec<EventId> = events.iter().map(|event| event.id).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        let messages: Vec<_> = events[2..]
            .iter()
            .map(|event| match event.data {
                EventData::MessageCreated { message_id, .. }
                | EventData::NoteCreated { message_id } => message_id,
                ref other => panic!("not a message's event: {other:?}"),
            })
            .collect();
        let expected: Vec<_> = written
            .iter()
            .filter(|(ticket, _)| *ticket == id)
            .map(|(_, message)| *message)
            .collect();
        assert_eq!(messages, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_record_their_events_in_the_order_of_their_changes() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "busy").await;
    let posts = (0..24).map(|n| {
        let tickets = fx.tickets.clone();
        let (who, kind) = match n % 3 {
            0 => (caller(&author), MessageType::Request),
            1 => (caller(&staff), MessageType::Response),
            _ => (caller(&staff), MessageType::Note),
        };
        tokio::spawn(async move {
            tickets
                .add_message(who, ticket.id, new_message(kind, "race"), None, None)
                .await
        })
    });
    for posted in futures_util::future::join_all(posts).await {
        posted.expect("task").expect("add message");
    }

    // The ticket's row lock orders the writers: the messages (numbered when the
    // ticket is locked) and their events (numbered before the commit) agree.
    let events = fx.events(viewer(&staff), ticket.id).await;
    assert_eq!(events.len(), 2 + 24);
    let messages: Vec<i64> = events[1..]
        .iter()
        .map(|event| match event.data {
            EventData::MessageCreated { message_id, .. }
            | EventData::NoteCreated { message_id } => message_id.get(),
            ref other => panic!("not a message's event: {other:?}"),
        })
        .collect();
    let mut sorted = messages.clone();
    sorted.sort_unstable();
    assert_eq!(messages, sorted);
    fx.assert_version_counts_visible_events(ticket.id).await;
}

/// Follows `next` through a ticket's events in pages of `size`, returning the pages.
async fn event_pages(
    fx: &Fixture,
    viewer: Viewer,
    id: TicketId,
    size: u16,
) -> Vec<Page<TicketEvent, EventId>> {
    let mut pages = Vec::new();
    let mut request = PageRequest::first(limit(size));
    loop {
        let page = fx
            .tickets
            .list_events(viewer, id, request)
            .await
            .expect("list events")
            .expect("visible");
        request.after = page.next;
        let done = page.next.is_none();
        pages.push(page);
        if done {
            return pages;
        }
    }
}

#[tokio::test]
async fn events_page_by_id() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let ticket = fx.open(&author, "pages").await;
    for n in 0..3 {
        fx.post(&author, ticket.id, MessageType::Request, &format!("{n}"))
            .await;
    }
    let all = fx.events(viewer(&author), ticket.id).await;
    assert_eq!(all.len(), 5);

    for (size, lengths) in [
        (1, vec![1, 1, 1, 1, 1]),
        (2, vec![2, 2, 1]),
        (4, vec![4, 1]),
        // Exactly a page's worth: the extra row that would say "more" is not there.
        (5, vec![5]),
        (6, vec![5]),
    ] {
        let pages = event_pages(&fx, viewer(&author), ticket.id, size).await;
        let seen: Vec<usize> = pages.iter().map(|page| page.items.len()).collect();
        assert_eq!(seen, lengths, "pages of {size}");
        for page in &pages[..pages.len() - 1] {
            assert_eq!(page.next, page.items.last().map(|event| event.id));
        }
        let flat: Vec<TicketEvent> = pages.into_iter().flat_map(|page| page.items).collect();
        assert_eq!(flat, all, "pages of {size}");
    }

    // After any key: the events with greater ids; after the last: an empty page.
    for (n, event) in all.iter().enumerate() {
        let page = fx
            .tickets
            .list_events(
                viewer(&author),
                ticket.id,
                PageRequest {
                    limit: limit(10),
                    after: Some(event.id),
                },
            )
            .await
            .expect("list events")
            .expect("visible");
        assert_eq!(page.items, all[n + 1..], "after event {n}");
        assert_eq!(page.next, None);
    }
}

#[tokio::test]
async fn customers_never_see_internal_events_and_strangers_see_no_history() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let stranger = fx.user("stranger@post.io", Role::Customer).await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let ticket = fx.open(&author, "secrets").await;
    for kind in [
        MessageType::Note,
        MessageType::Note,
        MessageType::Response,
        MessageType::Note,
        MessageType::Response,
        MessageType::Note,
    ] {
        fx.post(&staff, ticket.id, kind, "x").await;
    }

    let everything = fx.events(viewer(&staff), ticket.id).await;
    assert_eq!(everything.len(), 8);
    let visible: Vec<TicketEvent> = everything
        .iter()
        .filter(|event| !event.data.is_internal())
        .cloned()
        .collect();
    assert_eq!(visible.len(), 4);
    assert_eq!(fx.events(viewer(&author), ticket.id).await, visible);
    // Paging skips internal events without short or empty pages.
    let pages = event_pages(&fx, viewer(&author), ticket.id, 2).await;
    let lengths: Vec<usize> = pages.iter().map(|page| page.items.len()).collect();
    assert_eq!(lengths, [2, 2]);

    // A staff viewer that may not see internal events, as the port allows.
    let outsider_staff = Viewer {
        sees_internal: false,
        ..viewer(&staff)
    };
    assert_eq!(fx.events(outsider_staff, ticket.id).await, visible);

    let first = PageRequest::first(limit(10));
    let absent = TicketId::new(ticket.id.get() + 1000).expect("positive");
    for (who, id) in [(viewer(&stranger), ticket.id), (viewer(&staff), absent)] {
        assert_eq!(
            fx.tickets
                .list_events(who, id, first)
                .await
                .expect("list events"),
            None,
            "{who:?} on {id}"
        );
    }
}

#[tokio::test]
async fn a_visible_message_moves_version_and_updated_at_and_a_note_neither() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "versions").await;
    assert_eq!(ticket.version, TicketVersion::FIRST);

    let mut before = ticket;
    for (who, kind, moves) in [
        (&staff, MessageType::Note, false),
        (&staff, MessageType::Response, true),
        (&staff, MessageType::Note, false),
        (&author, MessageType::Request, true),
        (&staff, MessageType::Other, true),
    ] {
        let message = fx.post(who, before.id, kind, "x").await;
        let after = fx.ticket_as(&staff, before.id).await;
        if moves {
            assert_eq!(after.version.get(), before.version.get() + 1, "{kind:?}");
            assert_eq!(after.updated_at, message.created_at, "{kind:?}");
            assert!(after.updated_at > before.updated_at, "{kind:?}");
        } else {
            assert_eq!(after, before, "a {kind:?} changes nothing of the ticket");
        }
        before = after;
    }
}

/// A small deterministic generator (xorshift), so that a failure replays.
struct Steps(u64);

impl Steps {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % u64::try_from(below).expect("small")).expect("small")
    }
}

#[tokio::test]
async fn the_version_counts_visible_events_after_any_sequence_of_writes() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let tickets = [
        fx.open(&author, "a").await,
        fx.open(&author, "b").await,
        fx.open(&staff, "c").await,
    ];
    let mut steps = Steps(0x9e37_79b9_7f4a_7c15);
    for step in 0..60 {
        let ticket = &tickets[steps.next(tickets.len())];
        let current = fx.ticket_as(&staff, ticket.id).await;
        match steps.next(6) {
            0 => {
                let kind = MessageType::ALL[steps.next(MessageType::ALL.len())];
                // Refused on a canceled ticket for all but notes; either way the
                // invariant holds.
                let posted = post_on(&fx.tickets, &staff, ticket.id, kind, "m", None).await;
                assert!(posted.is_ok() || is_refusal(&posted), "{posted:?}");
            }
            1 => {
                let to = TicketStatus::ALL[steps.next(4)];
                if to != current.status {
                    fx.change(&staff, ticket.id, status_change(current.status, to))
                        .await;
                }
            }
            2 => {
                let to = Priority::ALL[steps.next(4)];
                if to != current.priority {
                    let changes = TicketChanges {
                        priority: Some(Change {
                            from: current.priority,
                            to,
                        }),
                        ..TicketChanges::default()
                    };
                    fx.change(&staff, ticket.id, changes).await;
                }
            }
            3 => {
                let from = current.assignee.as_ref().map(|a| a.id);
                let to = if from.is_some() { None } else { Some(staff.id) };
                let changes = TicketChanges {
                    assignee: Some(Change { from, to }),
                    ..TicketChanges::default()
                };
                fx.change(&staff, ticket.id, changes).await;
            }
            4 => {
                // A stale compare-and-set.
                let stale = version(current.version.get() + 1);
                let lost = fx
                    .tickets
                    .update_if_unchanged(
                        caller(&staff),
                        ticket.id,
                        expecting(current.status, stale),
                        status_change(current.status, TicketStatus::Pending),
                    )
                    .await
                    .expect("update");
                assert_eq!(lost, None);
            }
            _ => {
                let precondition = VersionPrecondition {
                    versions: vec![current.version],
                };
                let posted = post_on(
                    &fx.tickets,
                    &staff,
                    ticket.id,
                    MessageType::Response,
                    "if-match",
                    Some(precondition),
                )
                .await;
                assert!(posted.is_ok() || is_refusal(&posted), "{posted:?}");
            }
        }
        for ticket in &tickets {
            let (version, visible) = fx.version_and_visible_events(ticket.id).await;
            assert_eq!(
                version,
                visible - 1,
                "ticket {} after step {step}",
                ticket.id
            );
        }
    }
    let changes: i64 = fx
        .scalar("SELECT count(DISTINCT type) FROM ticket_events", &[])
        .await;
    assert_eq!(changes, 6, "the sequence wrote every type of event");
}
