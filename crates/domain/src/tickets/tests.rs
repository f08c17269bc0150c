//! Unit tests of the ticket use cases against mockall mocks of the ticket repository.
//! Each test says which port calls must happen, with which arguments, and which must
//! not happen at all.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use mockall::Sequence;
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::page::PageLimit;
use crate::ports::{MockTicketRepository, StatusSnapshot};
use crate::status::Transition;
use crate::ticket::SortOrder;
use crate::{MessageId, Role, UserId};

use TicketStatus::{Canceled, Pending, Resolved, Unresolved};

const TICKET: i64 = 10;
const AUTHOR: i64 = 1;
const STAFF: i64 = 2;
const SUPERUSER: i64 = 3;

fn caller(id: i64, role: Role) -> Caller {
    Caller {
        id: UserId::new(id).unwrap(),
        role,
    }
}

/// The viewer that the service must hand to the ports for this caller.
fn viewer_of(caller: Caller) -> Viewer {
    Viewer {
        user_id: caller.id,
        sees_all: caller.role != Role::Customer,
    }
}

fn ticket_id() -> TicketId {
    TicketId::new(TICKET).unwrap()
}

fn ticket(id: i64, author: i64, status: TicketStatus) -> Ticket {
    Ticket {
        id: TicketId::new(id).unwrap(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
        author_id: UserId::new(author).unwrap(),
        author_email: format!("user{author}@post.io"),
        topic: "new discount".to_owned(),
        status,
    }
}

/// The ticket as `set_status_if_current` returns it: new status, `updated_at` moved.
fn changed(author: i64, status: TicketStatus) -> Ticket {
    Ticket {
        updated_at: datetime!(2026-11-28 11:14:10 UTC),
        ..ticket(TICKET, author, status)
    }
}

fn snapshot(author: i64, status: TicketStatus, has_response: bool) -> StatusSnapshot {
    StatusSnapshot {
        ticket: ticket(TICKET, author, status),
        has_response,
    }
}

fn message(author: i64, kind: MessageType) -> Message {
    Message {
        id: MessageId::new(7).unwrap(),
        ticket_id: ticket_id(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        kind,
        text: "Where is my discount?".to_owned(),
        author_id: UserId::new(author).unwrap(),
        author_email: format!("user{author}@post.io"),
    }
}

fn text() -> MessageText {
    MessageText::parse("Where is my discount?").unwrap()
}

fn created_page() -> PageRequest<CreatedKey> {
    PageRequest {
        limit: PageLimit::parse("20").unwrap(),
        after: Some(CreatedKey {
            created_at: OffsetDateTime::UNIX_EPOCH,
            id: 4,
        }),
    }
}

fn repository_failure() -> RepositoryError {
    RepositoryError::msg("connection refused")
}

fn service(repo: MockTicketRepository) -> TicketService {
    TicketService::new(Arc::new(repo))
}

/// Drops the service so that mockall checks the `.times(..)` of every expectation,
/// and names the case when one was not met.
fn check_port_calls(service: TicketService, case: &str) {
    let verdict = std::panic::catch_unwind(AssertUnwindSafe(move || drop(service)));
    assert!(verdict.is_ok(), "port calls were wrong in case {case}");
}

/// Expects one `status_snapshot` call for this caller and ticket, in `seq`.
fn expect_snapshot(
    repo: &mut MockTicketRepository,
    seq: &mut Sequence,
    who: Caller,
    answer: Option<StatusSnapshot>,
) {
    let viewer = viewer_of(who);
    repo.expect_status_snapshot()
        .withf(move |v, id| *v == viewer && *id == ticket_id())
        .times(1)
        .in_sequence(seq)
        .return_once(move |_, _| Ok(answer));
}

/// Expects one compare-and-set from `from` to `to`, in `seq`.
fn expect_cas(
    repo: &mut MockTicketRepository,
    seq: &mut Sequence,
    from: TicketStatus,
    to: TicketStatus,
    answer: Option<Ticket>,
) {
    repo.expect_set_status_if_current()
        .withf(move |id, expected, new| *id == ticket_id() && *expected == from && *new == to)
        .times(1)
        .in_sequence(seq)
        .return_once(move |_, _, _| Ok(answer));
}

// ---- change_status -----------------------------------------------------------------

/// A status change's result, comparable with `assert_eq!`.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ticket(Ticket),
    Refused(TransitionError),
    NotFound,
    Conflict,
    Unexpected,
}

impl From<Result<Ticket, ChangeStatusError>> for Outcome {
    fn from(result: Result<Ticket, ChangeStatusError>) -> Self {
        match result {
            Ok(ticket) => Outcome::Ticket(ticket),
            Err(ChangeStatusError::Refused(rule)) => Outcome::Refused(rule),
            Err(ChangeStatusError::NotFound) => Outcome::NotFound,
            Err(ChangeStatusError::Conflict) => Outcome::Conflict,
            Err(ChangeStatusError::Unexpected(_)) => Outcome::Unexpected,
        }
    }
}

/// One reading of the ticket during a status change: what the snapshot shows and,
/// when the rule lets the change go ahead, whether the compare-and-set wins.
#[derive(Debug, Clone, Copy)]
struct Round {
    seen: TicketStatus,
    has_response: bool,
    cas_wins: Option<bool>,
}

fn read_only(seen: TicketStatus, has_response: bool) -> Round {
    Round {
        seen,
        has_response,
        cas_wins: None,
    }
}

fn cas(seen: TicketStatus, wins: bool) -> Round {
    Round {
        seen,
        has_response: true,
        cas_wins: Some(wins),
    }
}

/// Runs `who`'s request to move the ticket by `author` to `target` against a
/// repository that must be called for exactly these rounds, in order, and nothing
/// else: no round means no repository call at all.
async fn change_status(
    who: Caller,
    author: i64,
    target: TicketStatus,
    rounds: &[Round],
    case: &str,
) -> Outcome {
    let mut repo = MockTicketRepository::new();
    let mut seq = Sequence::new();
    if rounds.is_empty() {
        repo.expect_status_snapshot().times(0);
    }
    if rounds.iter().all(|round| round.cas_wins.is_none()) {
        repo.expect_set_status_if_current().times(0);
    }
    for round in rounds {
        let answer = StatusSnapshot {
            ticket: ticket(TICKET, author, round.seen),
            has_response: round.has_response,
        };
        expect_snapshot(&mut repo, &mut seq, who, Some(answer));
        if let Some(wins) = round.cas_wins {
            let answer = wins.then(|| changed(author, target));
            expect_cas(&mut repo, &mut seq, round.seen, target, answer);
        }
    }
    let service = service(repo);
    let outcome = service.change_status(who, ticket_id(), target).await.into();
    check_port_calls(service, case);
    outcome
}

/// Every standing the rule knows of a caller who can see the ticket, as
/// (label, caller, the ticket's author).
fn standings() -> [(&'static str, Caller, i64); 5] {
    [
        ("customer author", caller(AUTHOR, Role::Customer), AUTHOR),
        ("staff non-author", caller(STAFF, Role::Staff), AUTHOR),
        ("staff author", caller(STAFF, Role::Staff), STAFF),
        (
            "superuser non-author",
            caller(SUPERUSER, Role::Superuser),
            AUTHOR,
        ),
        (
            "superuser author",
            caller(SUPERUSER, Role::Superuser),
            SUPERUSER,
        ),
    ]
}

#[tokio::test]
async fn change_status_follows_the_rule_for_every_standing_status_pair_and_response() {
    let mut checked = 0;
    for (label, who, author) in standings() {
        let standing = Standing {
            is_author: who.id.get() == author,
            is_staff: who.role.is_staff(),
        };
        for from in TicketStatus::ALL {
            for target in TicketStatus::ALL {
                for has_response in [false, true] {
                    let case = format!("{label}: {from} -> {target}, response: {has_response}");
                    let decision = status::decide(standing, from, target, has_response);
                    // A customer may only cancel: anything else is refused unread.
                    let rounds = match decision {
                        _ if !who.is_staff() && target != Canceled => vec![],
                        Ok(Transition::Change) => vec![Round {
                            cas_wins: Some(true),
                            ..read_only(from, has_response)
                        }],
                        Ok(Transition::Unchanged) | Err(_) => vec![read_only(from, has_response)],
                    };
                    let expected = match decision {
                        Ok(Transition::Change) => Outcome::Ticket(changed(author, target)),
                        Ok(Transition::Unchanged) => Outcome::Ticket(ticket(TICKET, author, from)),
                        Err(rule) => Outcome::Refused(rule),
                    };

                    let outcome = change_status(who, author, target, &rounds, &case).await;

                    assert_eq!(outcome, expected, "{case}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 5 * 4 * 4 * 2);
}

#[tokio::test]
async fn a_customer_asking_for_another_status_than_canceled_touches_no_repository() {
    for target in [Pending, Resolved, Unresolved] {
        let customer = caller(AUTHOR, Role::Customer);

        let outcome = change_status(customer, AUTHOR, target, &[], target.as_str()).await;

        let expected = Outcome::Refused(TransitionError::NotPermitted(target));
        assert_eq!(outcome, expected);
    }
}

#[tokio::test]
async fn a_ticket_the_caller_cannot_see_is_not_found() {
    let cases = [
        (caller(AUTHOR, Role::Customer), Canceled),
        (caller(STAFF, Role::Staff), Resolved),
        (caller(SUPERUSER, Role::Superuser), Pending),
    ];
    for (who, target) in cases {
        let mut repo = MockTicketRepository::new();
        expect_snapshot(&mut repo, &mut Sequence::new(), who, None);
        repo.expect_set_status_if_current().times(0);
        let service = service(repo);

        let outcome = service.change_status(who, ticket_id(), target).await;

        assert_eq!(Outcome::from(outcome), Outcome::NotFound, "{who:?}");
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn a_lost_compare_and_set_re_reads_the_ticket_and_decides_again() {
    let customer = caller(AUTHOR, Role::Customer);
    let staff = caller(STAFF, Role::Staff);
    let superuser = caller(SUPERUSER, Role::Superuser);
    let cases = [
        (
            "canceled meanwhile",
            staff,
            Unresolved,
            [cas(Pending, false), read_only(Canceled, true)],
            Outcome::Refused(TransitionError::TicketCanceled),
        ),
        (
            "resolved meanwhile",
            customer,
            Canceled,
            [cas(Pending, false), read_only(Resolved, true)],
            Outcome::Refused(TransitionError::CannotCancelResolved),
        ),
        (
            "the same change won",
            customer,
            Canceled,
            [cas(Unresolved, false), read_only(Canceled, true)],
            Outcome::Ticket(ticket(TICKET, AUTHOR, Canceled)),
        ),
        (
            "retried from the fresh status",
            superuser,
            Resolved,
            [cas(Pending, false), cas(Unresolved, true)],
            Outcome::Ticket(changed(AUTHOR, Resolved)),
        ),
    ];
    for (case, who, target, rounds, expected) in cases {
        let outcome = change_status(who, AUTHOR, target, &rounds, case).await;

        assert_eq!(outcome, expected, "{case}");
    }
}

#[tokio::test]
async fn five_lost_races_give_up_with_conflict() {
    let staff = caller(STAFF, Role::Staff);
    let rounds = [cas(Pending, false); 5];

    let outcome = change_status(staff, AUTHOR, Unresolved, &rounds, "five lost races").await;

    assert_eq!(outcome, Outcome::Conflict);
}

#[tokio::test]
async fn change_status_reports_repository_failures_as_unexpected() {
    let staff = caller(STAFF, Role::Staff);

    let mut repo = MockTicketRepository::new();
    repo.expect_status_snapshot()
        .times(1)
        .returning(|_, _| Err(repository_failure()));
    repo.expect_set_status_if_current().times(0);
    let outcome = service(repo)
        .change_status(staff, ticket_id(), Pending)
        .await;
    assert_eq!(Outcome::from(outcome), Outcome::Unexpected);

    let mut repo = MockTicketRepository::new();
    let answer = Some(snapshot(AUTHOR, Unresolved, false));
    expect_snapshot(&mut repo, &mut Sequence::new(), staff, answer);
    repo.expect_set_status_if_current()
        .times(1)
        .returning(|_, _, _| Err(repository_failure()));
    let outcome = service(repo)
        .change_status(staff, ticket_id(), Pending)
        .await;
    assert_eq!(Outcome::from(outcome), Outcome::Unexpected);
}

// ---- open, get, list ---------------------------------------------------------------

/// A customer (the author of the tickets in these tests), staff and a superuser.
fn everyone() -> [Caller; 3] {
    [
        caller(AUTHOR, Role::Customer),
        caller(STAFF, Role::Staff),
        caller(SUPERUSER, Role::Superuser),
    ]
}

#[tokio::test]
async fn open_creates_the_ticket_and_its_first_message_for_the_caller() {
    for who in everyone() {
        let author = who.id;
        let mut repo = MockTicketRepository::new();
        repo.expect_open_ticket_with_first_message()
            .withf(move |id, topic, body| {
                *id == author && topic.as_str() == "new discount" && *body == text()
            })
            .times(1)
            .returning(|id, _, _| Ok(ticket(TICKET, id.get(), Pending)));
        let service = service(repo);

        let opened = service
            .open(who, Topic::parse("new discount").unwrap(), text())
            .await;

        assert_eq!(opened.unwrap(), ticket(TICKET, who.id.get(), Pending));
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn open_passes_repository_failures_on() {
    let mut repo = MockTicketRepository::new();
    repo.expect_open_ticket_with_first_message()
        .times(1)
        .returning(|_, _, _| Err(repository_failure()));

    let outcome = service(repo)
        .open(everyone()[0], Topic::parse("refund").unwrap(), text())
        .await;

    assert!(outcome.is_err());
}

#[tokio::test]
async fn get_asks_for_the_ticket_as_the_caller_may_see_it() {
    for who in everyone() {
        let viewer = viewer_of(who);
        let mut repo = MockTicketRepository::new();
        repo.expect_find_visible()
            .withf(move |v, id| *v == viewer && *id == ticket_id())
            .times(1)
            .returning(|_, _| Ok(Some(ticket(TICKET, AUTHOR, Resolved))));
        let service = service(repo);

        let found = service.get(who, ticket_id()).await;

        assert_eq!(found.unwrap(), ticket(TICKET, AUTHOR, Resolved));
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn get_of_an_invisible_ticket_is_not_found_and_failures_are_unexpected() {
    let mut answers = vec![Err(repository_failure()), Ok(None)];
    let mut repo = MockTicketRepository::new();
    repo.expect_find_visible()
        .times(2)
        .returning(move |_, _| answers.pop().unwrap());
    let service = service(repo);
    let who = everyone()[0];

    let missing = service.get(who, ticket_id()).await;
    let failed = service.get(who, ticket_id()).await;

    assert!(
        matches!(missing, Err(ReadTicketError::NotFound)),
        "{missing:?}"
    );
    assert!(
        matches!(failed, Err(ReadTicketError::Unexpected(_))),
        "{failed:?}"
    );
}

fn filter_by_author() -> TicketFilter {
    TicketFilter {
        statuses: vec![Pending, Unresolved],
        author_email: Some("someone.else@post.io".to_owned()),
        order: SortOrder::Descending,
    }
}

fn ticket_page() -> Page<Ticket, CreatedKey> {
    Page {
        items: vec![
            ticket(TICKET, AUTHOR, Pending),
            ticket(11, AUTHOR, Unresolved),
        ],
        next: Some(CreatedKey {
            created_at: OffsetDateTime::UNIX_EPOCH,
            id: 11,
        }),
    }
}

#[tokio::test]
async fn list_drops_a_customers_author_filter_and_keeps_that_of_staff() {
    let [customer, staff, superuser] = everyone();
    let without_author = TicketFilter {
        author_email: None,
        ..filter_by_author()
    };
    let cases = [
        (customer, without_author),
        (staff, filter_by_author()),
        (superuser, filter_by_author()),
    ];
    for (who, expected) in cases {
        let viewer = viewer_of(who);
        let mut repo = MockTicketRepository::new();
        repo.expect_list_visible()
            .withf(move |v, filter, page| {
                *v == viewer && *filter == expected && *page == created_page()
            })
            .times(1)
            .returning(|_, _, _| Ok(ticket_page()));
        let service = service(repo);

        let listed = service.list(who, filter_by_author(), created_page()).await;

        assert_eq!(listed.unwrap(), ticket_page(), "{who:?}");
        check_port_calls(service, &format!("{who:?}"));
    }
}

// ---- messages ----------------------------------------------------------------------

#[tokio::test]
async fn post_message_writes_requests_for_customers_and_responses_for_staff() {
    let kinds = [
        MessageType::Request,
        MessageType::Response,
        MessageType::Response,
    ];
    for (who, kind) in everyone().into_iter().zip(kinds) {
        let viewer = viewer_of(who);
        let mut repo = MockTicketRepository::new();
        repo.expect_add_message()
            .withf(move |v, id, k, body| {
                *v == viewer && *id == ticket_id() && *k == kind && *body == text()
            })
            .times(1)
            .returning(move |v, _, k, _| Ok(message(v.user_id.get(), k)));
        let service = service(repo);

        let posted = service.post_message(who, ticket_id(), text()).await;

        assert_eq!(posted.unwrap(), message(who.id.get(), kind));
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn post_message_maps_the_repository_errors() {
    let mut answers = vec![
        AddMessageError::Repository(repository_failure()),
        AddMessageError::TicketCanceled,
        AddMessageError::TicketNotFound,
    ];
    let mut repo = MockTicketRepository::new();
    repo.expect_add_message()
        .times(3)
        .returning(move |_, _, _, _| Err(answers.pop().unwrap()));
    let service = service(repo);
    let post = || service.post_message(everyone()[0], ticket_id(), text());

    let not_found = post().await;
    let canceled = post().await;
    let failed = post().await;

    assert!(
        matches!(not_found, Err(PostMessageError::NotFound)),
        "{not_found:?}"
    );
    assert!(
        matches!(canceled, Err(PostMessageError::TicketCanceled)),
        "{canceled:?}"
    );
    assert!(
        matches!(failed, Err(PostMessageError::Unexpected(_))),
        "{failed:?}"
    );
}

#[tokio::test]
async fn list_messages_returns_the_page_the_caller_may_see() {
    let page = Page {
        items: vec![
            message(AUTHOR, MessageType::Request),
            message(STAFF, MessageType::Response),
        ],
        next: None,
    };
    for who in everyone() {
        let viewer = viewer_of(who);
        let answer = page.clone();
        let mut repo = MockTicketRepository::new();
        repo.expect_list_messages()
            .withf(move |v, id, p| *v == viewer && *id == ticket_id() && *p == created_page())
            .times(1)
            .return_once(move |_, _, _| Ok(Some(answer)));
        let service = service(repo);

        let listed = service
            .list_messages(who, ticket_id(), created_page())
            .await;

        assert_eq!(listed.unwrap(), page, "{who:?}");
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn list_messages_of_an_invisible_ticket_is_not_found_and_failures_are_unexpected() {
    let mut answers = vec![Err(repository_failure()), Ok(None)];
    let mut repo = MockTicketRepository::new();
    repo.expect_list_messages()
        .times(2)
        .returning(move |_, _, _| answers.pop().unwrap());
    let service = service(repo);
    let who = everyone()[1];

    let missing = service
        .list_messages(who, ticket_id(), created_page())
        .await;
    let failed = service
        .list_messages(who, ticket_id(), created_page())
        .await;

    assert!(
        matches!(missing, Err(ReadTicketError::NotFound)),
        "{missing:?}"
    );
    assert!(
        matches!(failed, Err(ReadTicketError::Unexpected(_))),
        "{failed:?}"
    );
}
