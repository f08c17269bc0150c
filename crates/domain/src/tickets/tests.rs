//! Unit tests of the ticket use cases against mockall mocks of the ticket repository.
//! Each test says which port calls must happen, with which arguments, and which must
//! not happen at all.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use mockall::Sequence;
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::event::EventData;
use crate::feed::FeedFilter;
use crate::idempotency::{IdempotencyKey, RequestFingerprint, StoredResponse};
use crate::page::PageLimit;
use crate::ports::{AssigneeCandidate, ExpectedTicket, MockTicketRepository, TicketSnapshot};
use crate::status::{self, Standing, Transition};
use crate::ticket::{AssigneeFilter, SortOrder, TicketVersion, UserRef};
use crate::values::SearchQuery;
use crate::workflow::{Change, TicketChanges};
use crate::{MessageId, Priority, RepositoryErrorKind, Role, UserId};

use TicketStatus::{Canceled, Pending, Resolved, Unresolved};

const TICKET: i64 = 10;
const AUTHOR: i64 = 1;
const STAFF: i64 = 2;
const SUPERUSER: i64 = 3;
const OTHER_STAFF: i64 = 4;
/// The ticket's version as a test's first snapshot shows it: not the first, so that a
/// write that compares against `TicketVersion::FIRST` instead of the version read fails.
const SEEN_VERSION: i64 = 3;

fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

fn caller(id: i64, role: Role) -> Caller {
    Caller { id: user(id), role }
}

/// The viewer that the service must hand to the ports for this caller: staff and
/// superusers see every ticket and internal notes, customers neither.
fn viewer_of(caller: Caller) -> Viewer {
    let staff = caller.role != Role::Customer;
    Viewer {
        user_id: caller.id,
        sees_all: staff,
        sees_internal: staff,
        caller_role: Some(caller.role),
    }
}

fn ticket_id() -> TicketId {
    TicketId::new(TICKET).unwrap()
}

fn version(n: i64) -> TicketVersion {
    TicketVersion::new(n).unwrap()
}

fn staff_ref(id: i64) -> UserRef {
    UserRef {
        id: user(id),
        username: format!("staff{id}"),
    }
}

/// A ticket as opened: normal priority, nobody assigned, first version.
fn ticket(id: i64, author: i64, status: TicketStatus) -> Ticket {
    Ticket {
        id: TicketId::new(id).unwrap(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
        author_id: user(author),
        author_email: format!("user{author}@post.io"),
        topic: "new discount".to_owned(),
        status,
        priority: Priority::Normal,
        assignee: None,
        version: TicketVersion::FIRST,
    }
}

/// What one `ticket_snapshot` call shows of the ticket.
#[derive(Debug, Clone, Copy)]
struct Seen {
    status: TicketStatus,
    has_response: bool,
    priority: Priority,
    assignee: Option<i64>,
    version: i64,
}

impl Seen {
    /// The ticket in `status`, with a response, normal, unassigned, at `SEEN_VERSION`.
    fn of(status: TicketStatus) -> Self {
        Seen {
            status,
            has_response: true,
            priority: Priority::Normal,
            assignee: None,
            version: SEEN_VERSION,
        }
    }

    fn ticket(self, author: i64) -> Ticket {
        Ticket {
            priority: self.priority,
            assignee: self.assignee.map(staff_ref),
            version: version(self.version),
            ..ticket(TICKET, author, self.status)
        }
    }

    fn snapshot(self, author: i64) -> TicketSnapshot {
        TicketSnapshot {
            ticket: self.ticket(author),
            has_response: self.has_response,
        }
    }
}

/// The ticket as `update_if_unchanged` returns it: the changes applied, `updated_at` and
/// the version moved.
fn written(seen: &Ticket, changes: &TicketChanges) -> Ticket {
    let mut ticket = seen.clone();
    if let Some(change) = changes.status {
        ticket.status = change.to;
    }
    if let Some(change) = changes.priority {
        ticket.priority = change.to;
    }
    if let Some(change) = changes.assignee {
        ticket.assignee = change.to.map(|id| staff_ref(id.get()));
    }
    ticket.updated_at = datetime!(2026-11-28 11:14:10 UTC);
    ticket.version = version(seen.version.get() + workflow::version_increment(&changes.events()));
    ticket
}

fn message(author: i64, kind: MessageType) -> Message {
    Message {
        id: MessageId::new(7).unwrap(),
        ticket_id: ticket_id(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        kind,
        text: "Where is my discount?".to_owned(),
        author_id: user(author),
        author_email: format!("user{author}@post.io"),
    }
}

fn text() -> MessageText {
    MessageText::parse("Where is my discount?").unwrap()
}

fn topic() -> Topic {
    Topic::parse("new discount").unwrap()
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

/// A failure that is a bug (500).
fn repository_failure() -> RepositoryError {
    RepositoryError::msg("a row did not decode")
}

/// A failure that is an outage (503): its kind must survive every use case.
fn outage() -> RepositoryError {
    RepositoryError::unavailable("pool timed out")
}

/// The response that a key replays.
fn stored_response() -> StoredResponse {
    StoredResponse {
        status: 201,
        location: Some(format!("/tickets/{TICKET}")),
        etag: Some("\"1\"".to_owned()),
        body: b"{\"id\":10}".to_vec(),
    }
}

fn idempotency<T: 'static>(raw: &str) -> Idempotency<T> {
    Idempotency {
        key: IdempotencyKey::parse(raw).unwrap(),
        fingerprint: RequestFingerprint([7; 32]),
        render: Arc::new(|_: &T| stored_response()),
    }
}

/// Whether the port got the very key that the use case was given: the same key and
/// fingerprint, and the same renderer (an `Arc<dyn Fn>`, so compared by address).
fn same_key<T>(got: &Option<Idempotency<T>>, sent: &Option<Idempotency<T>>) -> bool {
    match (got, sent) {
        (None, None) => true,
        (Some(got), Some(sent)) => {
            got.key == sent.key
                && got.fingerprint == sent.fingerprint
                && Arc::ptr_eq(&got.render, &sent.render)
        }
        (Some(_), None) | (None, Some(_)) => false,
    }
}

/// No key, and a key: every use case that takes one must pass either through.
fn keys<T: 'static>() -> [Option<Idempotency<T>>; 2] {
    [
        None,
        Some(idempotency("8e03978e-40d5-43e8-bc93-6894a57f9324")),
    ]
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

/// A customer (the author of the tickets in these tests), staff and a superuser.
fn everyone() -> [Caller; 3] {
    [
        caller(AUTHOR, Role::Customer),
        caller(STAFF, Role::Staff),
        caller(SUPERUSER, Role::Superuser),
    ]
}

// ---- update: the script of port calls ----------------------------------------------

/// An update's result, comparable with `assert_eq!`.
#[derive(Debug, PartialEq)]
enum Updated {
    Ticket(Ticket),
    Refused(UpdateRefused),
    AssigneeInvalid,
    NotFound,
    PreconditionFailed,
    Conflict,
    Unexpected(RepositoryErrorKind),
}

impl From<Result<Ticket, UpdateTicketError>> for Updated {
    fn from(result: Result<Ticket, UpdateTicketError>) -> Self {
        match result {
            Ok(ticket) => Updated::Ticket(ticket),
            Err(UpdateTicketError::Refused(refusal)) => Updated::Refused(refusal),
            Err(UpdateTicketError::AssigneeInvalid) => Updated::AssigneeInvalid,
            Err(UpdateTicketError::NotFound) => Updated::NotFound,
            Err(UpdateTicketError::PreconditionFailed) => Updated::PreconditionFailed,
            Err(UpdateTicketError::Conflict) => Updated::Conflict,
            Err(UpdateTicketError::Unexpected(e)) => Updated::Unexpected(e.kind()),
        }
    }
}

fn refused(refusal: impl Into<UpdateRefused>) -> Updated {
    Updated::Refused(refusal.into())
}

fn set_status(to: TicketStatus) -> TicketUpdate {
    TicketUpdate {
        status: Some(to),
        ..TicketUpdate::default()
    }
}

fn set_priority(to: Priority) -> TicketUpdate {
    TicketUpdate {
        priority: Some(to),
        ..TicketUpdate::default()
    }
}

/// `assignee_id`: a user's id, or `None` (JSON `null`) to unassign.
fn assign(to: Option<i64>) -> TicketUpdate {
    TicketUpdate {
        assignee: Some(to.map(user)),
        ..TicketUpdate::default()
    }
}

fn status_change(from: TicketStatus, to: TicketStatus) -> TicketChanges {
    TicketChanges {
        status: Some(Change { from, to }),
        ..TicketChanges::default()
    }
}

fn priority_change(from: Priority, to: Priority) -> TicketChanges {
    TicketChanges {
        priority: Some(Change { from, to }),
        ..TicketChanges::default()
    }
}

fn assignee_change(from: Option<i64>, to: Option<i64>) -> TicketChanges {
    TicketChanges {
        assignee: Some(Change {
            from: from.map(user),
            to: to.map(user),
        }),
        ..TicketChanges::default()
    }
}

fn precondition(versions: &[i64]) -> Option<VersionPrecondition> {
    Some(VersionPrecondition {
        versions: versions.iter().copied().map(version).collect(),
    })
}

fn candidate(id: i64, role: Role, is_active: bool) -> AssigneeCandidate {
    AssigneeCandidate {
        user: staff_ref(id),
        role,
        is_active,
    }
}

/// One reading of the ticket during an update: what the snapshot shows and, when the
/// rule lets the change go ahead, the changes the compare-and-set must carry and
/// whether it wins the race.
#[derive(Debug, Clone)]
struct Round {
    seen: Seen,
    write: Option<(TicketChanges, bool)>,
}

fn read_only(seen: Seen) -> Round {
    Round { seen, write: None }
}

fn write(seen: Seen, changes: TicketChanges, wins: bool) -> Round {
    Round {
        seen,
        write: Some((changes, wins)),
    }
}

/// `who`'s update of the ticket by `author`, and the port calls it must make, in this
/// order, and no others: the assignee lookup (`None`: `assignee_candidate` must not be
/// called), then the rounds (none: neither `ticket_snapshot` nor `update_if_unchanged`
/// may be called).
struct Script {
    who: Caller,
    author: i64,
    update: TicketUpdate,
    precondition: Option<VersionPrecondition>,
    /// The id `assignee_candidate` must be asked for, and its answer.
    lookup: Option<(i64, Option<AssigneeCandidate>)>,
    rounds: Vec<Round>,
}

impl Script {
    fn new(who: Caller, author: i64, update: TicketUpdate) -> Self {
        Script {
            who,
            author,
            update,
            precondition: None,
            lookup: None,
            rounds: Vec::new(),
        }
    }

    async fn run(self, case: &str) -> Updated {
        let Script {
            who,
            author,
            update,
            precondition,
            lookup,
            rounds,
        } = self;
        let mut repo = MockTicketRepository::new();
        let mut seq = Sequence::new();
        match lookup {
            None => {
                repo.expect_assignee_candidate().times(0);
            }
            Some((id, answer)) => {
                repo.expect_assignee_candidate()
                    .withf(move |asked| *asked == user(id))
                    .times(1)
                    .in_sequence(&mut seq)
                    .return_once(move |_| Ok(answer));
            }
        }
        if rounds.is_empty() {
            repo.expect_ticket_snapshot().times(0);
        }
        if rounds.iter().all(|round| round.write.is_none()) {
            repo.expect_update_if_unchanged().times(0);
        }
        let conditional = precondition.is_some();
        for round in rounds {
            let snapshot = round.seen.snapshot(author);
            let seen = snapshot.ticket.clone();
            expect_snapshot(&mut repo, &mut seq, who, Some(snapshot));
            if let Some((changes, wins)) = round.write {
                let answer = wins.then(|| written(&seen, &changes));
                let expected = expected_of(&seen, conditional);
                expect_write(&mut repo, &mut seq, who, expected, changes, answer);
            }
        }
        let service = service(repo);
        let outcome = service
            .update(who, ticket_id(), update, precondition)
            .await
            .into();
        check_port_calls(service, case);
        outcome
    }
}

/// Expects one `ticket_snapshot` call for this caller's viewer and the ticket, in `seq`.
fn expect_snapshot(
    repo: &mut MockTicketRepository,
    seq: &mut Sequence,
    who: Caller,
    answer: Option<TicketSnapshot>,
) {
    let viewer = viewer_of(who);
    repo.expect_ticket_snapshot()
        .withf(move |v, id| *v == viewer && *id == ticket_id())
        .times(1)
        .in_sequence(seq)
        .return_once(move |_, _| Ok(answer));
}

/// What the compare-and-set must require of the ticket `seen`: the fields the rules
/// decided on, and the version only for a conditional request.
fn expected_of(seen: &Ticket, conditional: bool) -> ExpectedTicket {
    ExpectedTicket {
        status: seen.status,
        priority: seen.priority,
        assignee: seen.assignee.as_ref().map(|a| a.id),
        version: if conditional {
            Some(seen.version)
        } else {
            None
        },
    }
}

/// Expects one compare-and-set by `who` requiring `expected` and carrying exactly
/// `changes`, in `seq`.
fn expect_write(
    repo: &mut MockTicketRepository,
    seq: &mut Sequence,
    who: Caller,
    expected: ExpectedTicket,
    changes: TicketChanges,
    answer: Option<Ticket>,
) {
    repo.expect_update_if_unchanged()
        .withf(move |actor, id, at, carried| {
            *actor == who && *id == ticket_id() && *at == expected && *carried == changes
        })
        .times(1)
        .in_sequence(seq)
        .return_once(move |_, _, _, _| Ok(answer));
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

// ---- update: status ----------------------------------------------------------------

#[tokio::test]
async fn a_status_update_follows_the_rule_for_every_standing_status_pair_and_response() {
    let modes = [
        ("no If-Match", None),
        ("If-Match admits", precondition(&[1, SEEN_VERSION])),
        ("If-Match does not admit", precondition(&[1, 2])),
    ];
    let mut checked = 0;
    for (mode, precondition) in modes {
        let admitted = precondition
            .as_ref()
            .is_none_or(|p| p.admits(version(SEEN_VERSION)));
        for (label, who, author) in standings() {
            let standing = Standing {
                is_author: who.id.get() == author,
                is_staff: who.role.is_staff(),
            };
            for from in TicketStatus::ALL {
                for target in TicketStatus::ALL {
                    for has_response in [false, true] {
                        let case = format!(
                            "{mode}, {label}: {from} -> {target}, response: {has_response}"
                        );
                        let seen = Seen {
                            has_response,
                            ..Seen::of(from)
                        };
                        let change = status_change(from, target);
                        // A customer may only cancel: anything else is refused unread,
                        // before the precondition is even looked at.
                        let (rounds, expected) = if !who.is_staff() && target != Canceled {
                            (vec![], refused(TransitionError::NotPermitted(target)))
                        } else if !admitted {
                            (vec![read_only(seen)], Updated::PreconditionFailed)
                        } else {
                            match status::decide(standing, from, target, has_response) {
                                Ok(Transition::Change) => (
                                    vec![write(seen, change.clone(), true)],
                                    Updated::Ticket(written(&seen.ticket(author), &change)),
                                ),
                                Ok(Transition::Unchanged) => {
                                    (vec![read_only(seen)], Updated::Ticket(seen.ticket(author)))
                                }
                                Err(rule) => (vec![read_only(seen)], refused(rule)),
                            }
                        };
                        let script = Script {
                            precondition: precondition.clone(),
                            rounds,
                            ..Script::new(who, author, set_status(target))
                        };

                        let outcome = script.run(&case).await;

                        assert_eq!(outcome, expected, "{case}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 5 * 4 * 4 * 2);
}

#[tokio::test]
async fn a_customer_asking_for_another_status_than_canceled_touches_no_port() {
    for target in [Pending, Resolved, Unresolved] {
        let customer = caller(AUTHOR, Role::Customer);
        let script = Script {
            precondition: precondition(&[SEEN_VERSION]),
            ..Script::new(customer, AUTHOR, set_status(target))
        };

        let outcome = script.run(target.as_str()).await;

        assert_eq!(outcome, refused(TransitionError::NotPermitted(target)));
    }
}

// ---- update: priority and assignee -------------------------------------------------

#[tokio::test]
async fn a_customer_sending_priority_or_assignee_is_refused_before_any_port_call() {
    let customer = caller(AUTHOR, Role::Customer);
    let requests = [
        ("priority", set_priority(Priority::High)),
        ("priority left as it is", set_priority(Priority::Normal)),
        ("assignee", assign(Some(STAFF))),
        ("unassign", assign(None)),
        (
            "cancel and set the priority",
            TicketUpdate {
                status: Some(Canceled),
                ..set_priority(Priority::Low)
            },
        ),
        (
            "resolve and assign: staff-only comes first",
            TicketUpdate {
                status: Some(Resolved),
                ..assign(Some(STAFF))
            },
        ),
    ];
    for (case, update) in requests {
        let outcome = Script::new(customer, AUTHOR, update).run(case).await;

        assert_eq!(outcome, refused(StaffOnly), "{case}");
    }
}

#[tokio::test]
async fn an_assignee_that_is_no_active_member_of_staff_is_invalid_and_the_ticket_is_not_read() {
    let answers = [
        ("no such user", None),
        (
            "a customer",
            Some(candidate(OTHER_STAFF, Role::Customer, true)),
        ),
        (
            "an inactive customer",
            Some(candidate(OTHER_STAFF, Role::Customer, false)),
        ),
        (
            "inactive staff",
            Some(candidate(OTHER_STAFF, Role::Staff, false)),
        ),
        (
            "an inactive superuser",
            Some(candidate(OTHER_STAFF, Role::Superuser, false)),
        ),
    ];
    for who in [
        caller(STAFF, Role::Staff),
        caller(SUPERUSER, Role::Superuser),
    ] {
        for (label, answer) in answers.clone() {
            let case = format!("{who:?} assigning {label}");
            let script = Script {
                lookup: Some((OTHER_STAFF, answer)),
                ..Script::new(who, AUTHOR, assign(Some(OTHER_STAFF)))
            };

            let outcome = script.run(&case).await;

            assert_eq!(outcome, Updated::AssigneeInvalid, "{case}");
        }
    }
}

#[tokio::test]
async fn assigning_active_staff_looks_them_up_once_then_writes_the_assignee() {
    let staff = caller(STAFF, Role::Staff);
    let cases = [
        ("active staff", Role::Staff, None),
        ("an active superuser", Role::Superuser, None),
        ("staff instead of other staff", Role::Staff, Some(STAFF)),
    ];
    for (case, role, current) in cases {
        let seen = Seen {
            assignee: current,
            ..Seen::of(Pending)
        };
        let changes = assignee_change(current, Some(OTHER_STAFF));
        let script = Script {
            lookup: Some((OTHER_STAFF, Some(candidate(OTHER_STAFF, role, true)))),
            rounds: vec![write(seen, changes.clone(), true)],
            ..Script::new(staff, AUTHOR, assign(Some(OTHER_STAFF)))
        };

        let outcome = script.run(case).await;

        let expected = written(&seen.ticket(AUTHOR), &changes);
        assert_eq!(outcome, Updated::Ticket(expected), "{case}");
    }
}

#[tokio::test]
async fn unassigning_needs_no_assignee_lookup() {
    for who in [
        caller(STAFF, Role::Staff),
        caller(SUPERUSER, Role::Superuser),
    ] {
        let seen = Seen {
            assignee: Some(OTHER_STAFF),
            ..Seen::of(Unresolved)
        };
        let changes = assignee_change(Some(OTHER_STAFF), None);
        let script = Script {
            rounds: vec![write(seen, changes.clone(), true)],
            ..Script::new(who, AUTHOR, assign(None))
        };

        let outcome = script.run(&format!("{who:?}")).await;

        let expected = written(&seen.ticket(AUTHOR), &changes);
        assert_eq!(outcome, Updated::Ticket(expected), "{who:?}");
    }
}

/// Staff's priority and assignee on a ticket in every status, against the contract
/// read directly: a value that the ticket already has changes nothing; otherwise a
/// canceled ticket refuses (no write) and any other is written.
#[tokio::test]
async fn triage_follows_the_rule_for_every_status() {
    let staff = caller(STAFF, Role::Staff);
    let mut checked = 0;
    for status in TicketStatus::ALL {
        // (request, assignee lookup, the assignee the ticket has, changes if any)
        let mut cases = Vec::new();
        for to in Priority::ALL {
            let changes = (to != Priority::Normal).then(|| priority_change(Priority::Normal, to));
            cases.push((set_priority(to), None, None, changes));
        }
        for (from, to) in [
            (None, None),
            (None, Some(OTHER_STAFF)),
            (Some(STAFF), None),
            (Some(STAFF), Some(STAFF)),
            (Some(STAFF), Some(OTHER_STAFF)),
        ] {
            let lookup = to.map(|id| (id, Some(candidate(id, Role::Staff, true))));
            let changes = (from != to).then(|| assignee_change(from, to));
            cases.push((assign(to), lookup, from, changes));
        }
        for (update, lookup, assignee, changes) in cases {
            let case = format!("{update:?} on a {status} ticket");
            let seen = Seen {
                assignee,
                ..Seen::of(status)
            };
            let (rounds, expected) = match changes {
                None => (vec![read_only(seen)], Updated::Ticket(seen.ticket(AUTHOR))),
                Some(_) if status == Canceled => (
                    vec![read_only(seen)],
                    refused(UpdateRefused::TicketCanceled),
                ),
                Some(changes) => {
                    let expected = written(&seen.ticket(AUTHOR), &changes);
                    (vec![write(seen, changes, true)], Updated::Ticket(expected))
                }
            };
            let script = Script {
                lookup,
                rounds,
                ..Script::new(staff, AUTHOR, update)
            };

            let outcome = script.run(&case).await;

            assert_eq!(outcome, expected, "{case}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * (4 + 5));
}

#[tokio::test]
async fn an_update_writes_exactly_the_fields_that_change() {
    let superuser = caller(SUPERUSER, Role::Superuser);
    let everything = TicketUpdate {
        status: Some(Resolved),
        priority: Some(Priority::Urgent),
        assignee: Some(Some(user(STAFF))),
    };
    let seen = Seen {
        assignee: Some(STAFF),
        ..Seen::of(Unresolved)
    };
    // The assignee is already STAFF: status and priority change, the assignee does not.
    let changes = TicketChanges {
        priority: Some(Change {
            from: Priority::Normal,
            to: Priority::Urgent,
        }),
        ..status_change(Unresolved, Resolved)
    };
    let script = Script {
        lookup: Some((STAFF, Some(candidate(STAFF, Role::Staff, true)))),
        rounds: vec![write(seen, changes.clone(), true)],
        ..Script::new(superuser, AUTHOR, everything)
    };

    let outcome = script.run("status and priority").await;

    let expected = written(&seen.ticket(AUTHOR), &changes);
    assert_eq!(outcome, Updated::Ticket(expected));
}

#[tokio::test]
async fn an_update_that_changes_nothing_returns_the_ticket_without_writing() {
    let staff = caller(STAFF, Role::Staff);
    let seen = Seen {
        priority: Priority::High,
        assignee: Some(STAFF),
        ..Seen::of(Resolved)
    };
    let same_again = TicketUpdate {
        status: Some(Resolved),
        priority: Some(Priority::High),
        assignee: Some(Some(user(STAFF))),
    };
    let cases = [
        ("an empty request", TicketUpdate::default(), None),
        (
            "every field as it is",
            same_again,
            Some((STAFF, Some(candidate(STAFF, Role::Staff, true)))),
        ),
    ];
    for (case, update, lookup) in cases {
        for precondition in [None, precondition(&[SEEN_VERSION])] {
            let script = Script {
                precondition,
                lookup: lookup.clone(),
                rounds: vec![read_only(seen)],
                ..Script::new(staff, AUTHOR, update.clone())
            };

            let outcome = script.run(case).await;

            assert_eq!(outcome, Updated::Ticket(seen.ticket(AUTHOR)), "{case}");
        }
    }
}

#[tokio::test]
async fn workflow_refusals_surface_as_refused_and_write_nothing() {
    let staff = caller(STAFF, Role::Staff);
    let customer = caller(AUTHOR, Role::Customer);
    let no_response = Seen {
        has_response: false,
        ..Seen::of(Pending)
    };
    let cases = [
        (
            "staff canceling someone else's ticket",
            staff,
            set_status(Canceled),
            Seen::of(Pending),
            refused(TransitionError::NotPermitted(Canceled)),
        ),
        (
            "resolving with no response, with a priority: all or nothing",
            staff,
            TicketUpdate {
                status: Some(Resolved),
                ..set_priority(Priority::High)
            },
            no_response,
            refused(TransitionError::ResponseRequired),
        ),
        (
            "a canceled ticket's priority",
            staff,
            set_priority(Priority::Low),
            Seen::of(Canceled),
            refused(UpdateRefused::TicketCanceled),
        ),
        (
            "reopening a canceled ticket",
            staff,
            set_status(Unresolved),
            Seen::of(Canceled),
            refused(TransitionError::TicketCanceled),
        ),
        (
            "canceling a resolved ticket",
            customer,
            set_status(Canceled),
            Seen::of(Resolved),
            refused(TransitionError::CannotCancelResolved),
        ),
    ];
    for (case, who, update, seen, expected) in cases {
        let script = Script {
            rounds: vec![read_only(seen)],
            ..Script::new(who, AUTHOR, update)
        };

        let outcome = script.run(case).await;

        assert_eq!(outcome, expected, "{case}");
    }
}

#[tokio::test]
async fn a_ticket_the_caller_cannot_see_is_not_found() {
    let cases = [
        (caller(AUTHOR, Role::Customer), set_status(Canceled), None),
        (caller(STAFF, Role::Staff), set_status(Resolved), None),
        (
            caller(SUPERUSER, Role::Superuser),
            assign(Some(STAFF)),
            Some((STAFF, Some(candidate(STAFF, Role::Staff, true)))),
        ),
    ];
    for (who, update, lookup) in cases {
        let mut repo = MockTicketRepository::new();
        let mut seq = Sequence::new();
        match lookup {
            None => {
                repo.expect_assignee_candidate().times(0);
            }
            Some((id, answer)) => {
                repo.expect_assignee_candidate()
                    .withf(move |asked| *asked == user(id))
                    .times(1)
                    .in_sequence(&mut seq)
                    .return_once(move |_| Ok(answer));
            }
        }
        expect_snapshot(&mut repo, &mut seq, who, None);
        repo.expect_update_if_unchanged().times(0);
        let service = service(repo);

        let outcome = service
            .update(who, ticket_id(), update, precondition(&[SEEN_VERSION]))
            .await;

        assert_eq!(Updated::from(outcome), Updated::NotFound, "{who:?}");
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn a_precondition_that_does_not_admit_the_version_fails_without_a_write() {
    let staff = caller(STAFF, Role::Staff);
    let cases = [
        ("an older version", precondition(&[SEEN_VERSION - 1])),
        ("a newer version", precondition(&[SEEN_VERSION + 1])),
        ("no version (a weak validator)", precondition(&[])),
    ];
    for (label, precondition) in cases {
        // The precondition comes before the rules: a canceled ticket fails it too.
        for status in TicketStatus::ALL {
            let case = format!("{label} on a {status} ticket");
            let script = Script {
                precondition: precondition.clone(),
                rounds: vec![read_only(Seen::of(status))],
                ..Script::new(staff, AUTHOR, set_priority(Priority::Urgent))
            };

            let outcome = script.run(&case).await;

            assert_eq!(outcome, Updated::PreconditionFailed, "{case}");
        }
    }
}

// ---- update: lost races --------------------------------------------------------------

#[tokio::test]
async fn a_lost_compare_and_set_re_reads_the_ticket_and_decides_again() {
    let customer = caller(AUTHOR, Role::Customer);
    let staff = caller(STAFF, Role::Staff);
    let superuser = caller(SUPERUSER, Role::Superuser);
    let next = |seen: Seen| Seen {
        version: SEEN_VERSION + 1,
        ..seen
    };
    let retried = next(Seen::of(Unresolved));
    let reassigned = Seen {
        priority: Priority::High,
        assignee: Some(OTHER_STAFF),
        ..next(Seen::of(Pending))
    };
    let both = TicketChanges {
        assignee: Some(Change {
            from: None,
            to: Some(user(STAFF)),
        }),
        ..priority_change(Priority::Normal, Priority::High)
    };
    let cases = [
        (
            "canceled meanwhile",
            Script {
                rounds: vec![
                    write(Seen::of(Pending), status_change(Pending, Unresolved), false),
                    read_only(next(Seen::of(Canceled))),
                ],
                ..Script::new(staff, AUTHOR, set_status(Unresolved))
            },
            refused(TransitionError::TicketCanceled),
        ),
        (
            "canceled meanwhile, for a priority",
            Script {
                rounds: vec![
                    write(
                        Seen::of(Pending),
                        priority_change(Priority::Normal, Priority::Low),
                        false,
                    ),
                    read_only(next(Seen::of(Canceled))),
                ],
                ..Script::new(staff, AUTHOR, set_priority(Priority::Low))
            },
            refused(UpdateRefused::TicketCanceled),
        ),
        (
            "resolved meanwhile",
            Script {
                rounds: vec![
                    write(Seen::of(Pending), status_change(Pending, Canceled), false),
                    read_only(next(Seen::of(Resolved))),
                ],
                ..Script::new(customer, AUTHOR, set_status(Canceled))
            },
            refused(TransitionError::CannotCancelResolved),
        ),
        (
            "the same change won",
            Script {
                rounds: vec![
                    write(
                        Seen::of(Unresolved),
                        status_change(Unresolved, Canceled),
                        false,
                    ),
                    read_only(next(Seen::of(Canceled))),
                ],
                ..Script::new(customer, AUTHOR, set_status(Canceled))
            },
            Updated::Ticket(next(Seen::of(Canceled)).ticket(AUTHOR)),
        ),
        (
            "retried from the fresh status and version",
            Script {
                rounds: vec![
                    write(Seen::of(Pending), status_change(Pending, Resolved), false),
                    write(retried, status_change(Unresolved, Resolved), true),
                ],
                ..Script::new(superuser, AUTHOR, set_status(Resolved))
            },
            Updated::Ticket(written(
                &retried.ticket(AUTHOR),
                &status_change(Unresolved, Resolved),
            )),
        ),
        (
            "retried with what is still to change",
            Script {
                lookup: Some((STAFF, Some(candidate(STAFF, Role::Staff, true)))),
                rounds: vec![
                    write(Seen::of(Pending), both, false),
                    write(
                        reassigned,
                        assignee_change(Some(OTHER_STAFF), Some(STAFF)),
                        true,
                    ),
                ],
                ..Script::new(
                    staff,
                    AUTHOR,
                    TicketUpdate {
                        priority: Some(Priority::High),
                        ..assign(Some(STAFF))
                    },
                )
            },
            Updated::Ticket(written(
                &reassigned.ticket(AUTHOR),
                &assignee_change(Some(OTHER_STAFF), Some(STAFF)),
            )),
        ),
        (
            "If-Match admitted the version read first, not the fresh one",
            Script {
                precondition: precondition(&[SEEN_VERSION]),
                rounds: vec![
                    write(Seen::of(Pending), status_change(Pending, Unresolved), false),
                    read_only(next(Seen::of(Pending))),
                ],
                ..Script::new(staff, AUTHOR, set_status(Unresolved))
            },
            Updated::PreconditionFailed,
        ),
        (
            "If-Match admits the fresh version too",
            Script {
                precondition: precondition(&[SEEN_VERSION, SEEN_VERSION + 1]),
                rounds: vec![
                    write(Seen::of(Pending), status_change(Pending, Unresolved), false),
                    write(
                        next(Seen::of(Pending)),
                        status_change(Pending, Unresolved),
                        true,
                    ),
                ],
                ..Script::new(staff, AUTHOR, set_status(Unresolved))
            },
            Updated::Ticket(written(
                &next(Seen::of(Pending)).ticket(AUTHOR),
                &status_change(Pending, Unresolved),
            )),
        ),
    ];
    for (case, script, expected) in cases {
        let outcome = script.run(case).await;

        assert_eq!(outcome, expected, "{case}");
    }
}

#[tokio::test]
async fn five_lost_races_give_up_with_conflict() {
    let staff = caller(STAFF, Role::Staff);
    // Each round reads a newer version and must compare against that one.
    let rounds = |changes: TicketChanges| -> Vec<Round> {
        (0..5)
            .map(|i| {
                let seen = Seen {
                    version: SEEN_VERSION + i,
                    ..Seen::of(Pending)
                };
                write(seen, changes.clone(), false)
            })
            .collect()
    };
    let cases = [
        Script {
            rounds: rounds(status_change(Pending, Unresolved)),
            ..Script::new(staff, AUTHOR, set_status(Unresolved))
        },
        // The assignee is looked up once, not once per round.
        Script {
            lookup: Some((OTHER_STAFF, Some(candidate(OTHER_STAFF, Role::Staff, true)))),
            rounds: rounds(assignee_change(None, Some(OTHER_STAFF))),
            ..Script::new(staff, AUTHOR, assign(Some(OTHER_STAFF)))
        },
    ];
    for script in cases {
        let case = format!("five lost races for {:?}", script.update);

        let outcome = script.run(&case).await;

        assert_eq!(outcome, Updated::Conflict, "{case}");
    }
}

/// Runs `who`'s update, without a precondition, against `repo`.
async fn update_with(
    repo: MockTicketRepository,
    who: Caller,
    update: TicketUpdate,
    case: &str,
) -> Updated {
    let service = service(repo);
    let outcome = service.update(who, ticket_id(), update, None).await.into();
    check_port_calls(service, case);
    outcome
}

#[tokio::test]
async fn update_reports_repository_failures_as_unexpected_and_stops() {
    let staff = caller(STAFF, Role::Staff);
    let change = status_change(Pending, Unresolved);
    for (kind, fail) in [
        (
            RepositoryErrorKind::Unexpected,
            repository_failure as fn() -> _,
        ),
        (RepositoryErrorKind::Unavailable, outage),
    ] {
        // The assignee lookup fails: the ticket is not read.
        let mut repo = MockTicketRepository::new();
        repo.expect_assignee_candidate()
            .times(1)
            .returning(move |_| Err(fail()));
        repo.expect_ticket_snapshot().times(0);
        repo.expect_update_if_unchanged().times(0);
        let case = format!("lookup fails, {kind:?}");
        let outcome = update_with(repo, staff, assign(Some(OTHER_STAFF)), &case).await;
        assert_eq!(outcome, Updated::Unexpected(kind), "{case}");

        // The snapshot fails: nothing is written.
        let mut repo = MockTicketRepository::new();
        repo.expect_ticket_snapshot()
            .times(1)
            .returning(move |_, _| Err(fail()));
        repo.expect_update_if_unchanged().times(0);
        let case = format!("snapshot fails, {kind:?}");
        let outcome = update_with(repo, staff, set_status(Unresolved), &case).await;
        assert_eq!(outcome, Updated::Unexpected(kind), "{case}");

        // The write fails: the ticket is not read again.
        let mut repo = MockTicketRepository::new();
        let mut seq = Sequence::new();
        let seen = Some(Seen::of(Pending).snapshot(AUTHOR));
        expect_snapshot(&mut repo, &mut seq, staff, seen);
        repo.expect_update_if_unchanged()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _, _| Err(fail()));
        let case = format!("write fails, {kind:?}");
        let outcome = update_with(repo, staff, set_status(Unresolved), &case).await;
        assert_eq!(outcome, Updated::Unexpected(kind), "{case}");

        // The snapshot after a lost race fails: nothing more is written.
        let mut repo = MockTicketRepository::new();
        let mut seq = Sequence::new();
        let seen = Seen::of(Pending).snapshot(AUTHOR);
        let expected = expected_of(&seen.ticket, false);
        expect_snapshot(&mut repo, &mut seq, staff, Some(seen));
        expect_write(&mut repo, &mut seq, staff, expected, change.clone(), None);
        repo.expect_ticket_snapshot()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Err(fail()));
        let case = format!("second snapshot fails, {kind:?}");
        let outcome = update_with(repo, staff, set_status(Unresolved), &case).await;
        assert_eq!(outcome, Updated::Unexpected(kind), "{case}");
    }
}

// ---- open --------------------------------------------------------------------------

/// An opening's result, comparable with `assert_eq!`.
#[derive(Debug, PartialEq)]
enum Opened {
    Written(Written<Ticket>),
    Key(KeyConflict),
    Unexpected(RepositoryErrorKind),
}

impl From<Result<Written<Ticket>, OpenError>> for Opened {
    fn from(result: Result<Written<Ticket>, OpenError>) -> Self {
        match result {
            Ok(written) => Opened::Written(written),
            Err(OpenError::Key(conflict)) => Opened::Key(conflict),
            Err(OpenError::Unexpected(e)) => Opened::Unexpected(e.kind()),
        }
    }
}

#[tokio::test]
async fn open_hands_the_caller_topic_text_and_key_to_the_port() {
    for who in everyone() {
        for key in keys::<Ticket>() {
            let case = format!("{who:?}, key: {:?}", key.as_ref().map(|k| &k.key));
            let sent = key.clone();
            let mut repo = MockTicketRepository::new();
            repo.expect_open_ticket()
                .withf(move |actor, t, body, key| {
                    *actor == who && *t == topic() && *body == text() && same_key(key, &sent)
                })
                .times(1)
                .returning(|actor, _, _, _| {
                    Ok(Written::Fresh(ticket(TICKET, actor.id.get(), Pending)))
                });
            let service = service(repo);

            let opened = service.open(who, topic(), text(), key).await;

            let expected = Written::Fresh(ticket(TICKET, who.id.get(), Pending));
            assert_eq!(Opened::from(opened), Opened::Written(expected), "{case}");
            check_port_calls(service, &case);
        }
    }
}

#[tokio::test]
async fn open_returns_a_replayed_response_as_the_port_gives_it() {
    let [_, key] = keys::<Ticket>();
    let mut repo = MockTicketRepository::new();
    repo.expect_open_ticket()
        .times(1)
        .returning(|_, _, _, _| Ok(Written::Replayed(stored_response())));
    let service = service(repo);

    let opened = service.open(everyone()[0], topic(), text(), key).await;

    let expected = Opened::Written(Written::Replayed(stored_response()));
    assert_eq!(Opened::from(opened), expected);
    check_port_calls(service, "replayed");
}

#[tokio::test]
async fn open_maps_key_conflicts_and_repository_failures() {
    let cases: [(fn() -> OpenTicketError, Opened); 4] = [
        (
            || KeyConflict::InUse.into(),
            Opened::Key(KeyConflict::InUse),
        ),
        (
            || KeyConflict::Reused.into(),
            Opened::Key(KeyConflict::Reused),
        ),
        (
            || repository_failure().into(),
            Opened::Unexpected(RepositoryErrorKind::Unexpected),
        ),
        (
            || outage().into(),
            Opened::Unexpected(RepositoryErrorKind::Unavailable),
        ),
    ];
    for (error, expected) in cases {
        let mut repo = MockTicketRepository::new();
        repo.expect_open_ticket()
            .times(1)
            .returning(move |_, _, _, _| Err(error()));
        let service = service(repo);
        let [_, key] = keys::<Ticket>();

        let opened = service.open(everyone()[0], topic(), text(), key).await;

        assert_eq!(Opened::from(opened), expected);
        check_port_calls(service, &format!("{expected:?}"));
    }
}

// ---- get, list ---------------------------------------------------------------------

/// A read's result, comparable with `assert_eq!`.
#[derive(Debug, PartialEq)]
enum Read<T> {
    Found(T),
    NotFound,
    Unexpected(RepositoryErrorKind),
}

impl<T> From<Result<T, ReadTicketError>> for Read<T> {
    fn from(result: Result<T, ReadTicketError>) -> Self {
        match result {
            Ok(found) => Read::Found(found),
            Err(ReadTicketError::NotFound) => Read::NotFound,
            Err(ReadTicketError::Unexpected(e)) => Read::Unexpected(e.kind()),
        }
    }
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

        let expected = Read::Found(ticket(TICKET, AUTHOR, Resolved));
        assert_eq!(Read::from(found), expected, "{who:?}");
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn get_of_an_invisible_ticket_is_not_found_and_failures_are_unexpected() {
    let mut answers = vec![Err(outage()), Ok(None)];
    let mut repo = MockTicketRepository::new();
    repo.expect_find_visible()
        .times(2)
        .returning(move |_, _| answers.pop().unwrap());
    let service = service(repo);
    let who = everyone()[0];

    let missing = service.get(who, ticket_id()).await;
    let failed = service.get(who, ticket_id()).await;

    assert_eq!(Read::from(missing), Read::NotFound);
    let unavailable = Read::Unexpected(RepositoryErrorKind::Unavailable);
    assert_eq!(Read::from(failed), unavailable);
    check_port_calls(service, "get");
}

/// Every filter there is; `author_email` and `assignee` are staff's.
fn every_filter(assignee: AssigneeFilter) -> TicketFilter {
    TicketFilter {
        statuses: vec![Pending, Unresolved],
        priorities: vec![Priority::High, Priority::Urgent],
        author_email: Some("someone.else@post.io".to_owned()),
        assignee: Some(assignee),
        search: SearchQuery::parse("charged twice").unwrap(),
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
async fn list_drops_a_customers_author_and_assignee_filters_and_keeps_those_of_staff() {
    let [customer, staff, superuser] = everyone();
    for assignee in [AssigneeFilter::User(user(STAFF)), AssigneeFilter::Nobody] {
        let asked = every_filter(assignee);
        let own_only = TicketFilter {
            author_email: None,
            assignee: None,
            ..asked.clone()
        };
        let cases = [
            (customer, own_only),
            (staff, asked.clone()),
            (superuser, asked.clone()),
        ];
        for (who, expected) in cases {
            let case = format!("{who:?} asking {assignee:?}");
            let viewer = viewer_of(who);
            let mut repo = MockTicketRepository::new();
            repo.expect_list_visible()
                .withf(move |v, filter, page| {
                    *v == viewer && *filter == expected && *page == created_page()
                })
                .times(1)
                .returning(|_, _, _| Ok(ticket_page()));
            let service = service(repo);

            let listed = service.list(who, asked.clone(), created_page()).await;

            assert_eq!(listed.unwrap(), ticket_page(), "{case}");
            check_port_calls(service, &case);
        }
    }
}

#[tokio::test]
async fn list_passes_repository_failures_on_with_their_kind() {
    let mut repo = MockTicketRepository::new();
    repo.expect_list_visible()
        .times(1)
        .returning(|_, _, _| Err(outage()));
    let service = service(repo);

    let listed = service
        .list(everyone()[1], TicketFilter::default(), created_page())
        .await;

    let kind = listed.map(|_| ()).map_err(|e| e.kind());
    assert_eq!(kind, Err(RepositoryErrorKind::Unavailable));
    check_port_calls(service, "list fails");
}

// ---- messages ----------------------------------------------------------------------

/// A post's result, comparable with `assert_eq!`.
#[derive(Debug, PartialEq)]
enum Posted {
    Written(Written<Message>),
    StaffOnly,
    NotFound,
    TicketCanceled,
    PreconditionFailed,
    Key(KeyConflict),
    Unexpected(RepositoryErrorKind),
}

impl From<Result<Written<Message>, PostMessageError>> for Posted {
    fn from(result: Result<Written<Message>, PostMessageError>) -> Self {
        match result {
            Ok(written) => Posted::Written(written),
            Err(PostMessageError::StaffOnly(StaffOnly)) => Posted::StaffOnly,
            Err(PostMessageError::NotFound) => Posted::NotFound,
            Err(PostMessageError::TicketCanceled) => Posted::TicketCanceled,
            Err(PostMessageError::PreconditionFailed) => Posted::PreconditionFailed,
            Err(PostMessageError::Key(conflict)) => Posted::Key(conflict),
            Err(PostMessageError::Unexpected(e)) => Posted::Unexpected(e.kind()),
        }
    }
}

#[tokio::test]
async fn post_message_writes_the_type_that_the_role_and_internal_ask_for() {
    let [customer, staff, superuser] = everyone();
    let cases = [
        (customer, false, MessageType::Request),
        (staff, false, MessageType::Response),
        (staff, true, MessageType::Note),
        (superuser, false, MessageType::Response),
        (superuser, true, MessageType::Note),
    ];
    for (who, internal, kind) in cases {
        for if_match in [None, precondition(&[SEEN_VERSION])] {
            for key in keys::<Message>() {
                let case = format!(
                    "{who:?}, internal: {internal}, {if_match:?}, key: {:?}",
                    key.as_ref().map(|k| &k.key)
                );
                let expected_if_match = if_match.clone();
                let sent = key.clone();
                let mut repo = MockTicketRepository::new();
                repo.expect_add_message()
                    .withf(move |actor, id, new, p, key| {
                        *actor == who
                            && *id == ticket_id()
                            && new.kind == kind
                            && new.text == text()
                            && *p == expected_if_match
                            && same_key(key, &sent)
                    })
                    .times(1)
                    .returning(|actor, _, new, _, _| {
                        Ok(Written::Fresh(message(actor.id.get(), new.kind)))
                    });
                let service = service(repo);

                let posted = service
                    .post_message(who, ticket_id(), text(), internal, if_match.clone(), key)
                    .await;

                let expected = Written::Fresh(message(who.id.get(), kind));
                assert_eq!(Posted::from(posted), Posted::Written(expected), "{case}");
                check_port_calls(service, &case);
            }
        }
    }
}

#[tokio::test]
async fn a_customers_internal_note_is_refused_before_any_port_call() {
    let customer = caller(AUTHOR, Role::Customer);
    for key in keys::<Message>() {
        let mut repo = MockTicketRepository::new();
        repo.expect_add_message().times(0);
        let service = service(repo);

        let posted = service
            .post_message(customer, ticket_id(), text(), true, None, key)
            .await;

        assert_eq!(Posted::from(posted), Posted::StaffOnly);
        check_port_calls(service, "a customer's note");
    }
}

#[tokio::test]
async fn post_message_passes_a_replayed_response_on() {
    let mut repo = MockTicketRepository::new();
    repo.expect_add_message()
        .times(1)
        .returning(|_, _, _, _, _| Ok(Written::Replayed(stored_response())));
    let service = service(repo);
    let [_, key] = keys::<Message>();

    let posted = service
        .post_message(everyone()[1], ticket_id(), text(), false, None, key)
        .await;

    let expected = Posted::Written(Written::Replayed(stored_response()));
    assert_eq!(Posted::from(posted), expected);
    check_port_calls(service, "replayed");
}

#[tokio::test]
async fn post_message_maps_the_repository_errors() {
    let cases: [(fn() -> AddMessageError, Posted); 10] = [
        (|| AddMessageError::TicketNotFound, Posted::NotFound),
        (
            || AddMessageError::NotAccepted(Canceled),
            Posted::TicketCanceled,
        ),
        // The rules take requests and responses in every other status: a refusal
        // there is a bug, not the client's fault.
        (
            || AddMessageError::NotAccepted(Pending),
            Posted::Unexpected(RepositoryErrorKind::Unexpected),
        ),
        (
            || AddMessageError::NotAccepted(Resolved),
            Posted::Unexpected(RepositoryErrorKind::Unexpected),
        ),
        (
            || AddMessageError::NotAccepted(Unresolved),
            Posted::Unexpected(RepositoryErrorKind::Unexpected),
        ),
        (
            || AddMessageError::PreconditionFailed,
            Posted::PreconditionFailed,
        ),
        (
            || KeyConflict::InUse.into(),
            Posted::Key(KeyConflict::InUse),
        ),
        (
            || KeyConflict::Reused.into(),
            Posted::Key(KeyConflict::Reused),
        ),
        (
            || repository_failure().into(),
            Posted::Unexpected(RepositoryErrorKind::Unexpected),
        ),
        (
            || outage().into(),
            Posted::Unexpected(RepositoryErrorKind::Unavailable),
        ),
    ];
    // A request by a customer, a response by staff.
    for who in [everyone()[0], everyone()[1]] {
        for (error, expected) in &cases {
            let case = format!("{who:?}: {:?}", error());
            let error = *error;
            let mut repo = MockTicketRepository::new();
            repo.expect_add_message()
                .times(1)
                .returning(move |_, _, _, _, _| Err(error()));
            let service = service(repo);

            let posted = service
                .post_message(who, ticket_id(), text(), false, None, None)
                .await;

            assert_eq!(Posted::from(posted), *expected, "{case}");
            check_port_calls(service, &case);
        }
    }
}

fn message_page() -> Page<Message, CreatedKey> {
    Page {
        items: vec![
            message(AUTHOR, MessageType::Request),
            message(STAFF, MessageType::Response),
        ],
        next: None,
    }
}

#[tokio::test]
async fn list_messages_returns_the_page_the_caller_may_see() {
    for who in everyone() {
        let viewer = viewer_of(who);
        let mut repo = MockTicketRepository::new();
        repo.expect_list_messages()
            .withf(move |v, id, p| *v == viewer && *id == ticket_id() && *p == created_page())
            .times(1)
            .return_once(move |_, _, _| Ok(Some(message_page())));
        let service = service(repo);

        let listed = service
            .list_messages(who, ticket_id(), created_page())
            .await;

        assert_eq!(Read::from(listed), Read::Found(message_page()), "{who:?}");
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
    let who = everyone()[0];

    let missing = service
        .list_messages(who, ticket_id(), created_page())
        .await;
    let failed = service
        .list_messages(who, ticket_id(), created_page())
        .await;

    assert_eq!(Read::from(missing), Read::NotFound);
    let unexpected = Read::Unexpected(RepositoryErrorKind::Unexpected);
    assert_eq!(Read::from(failed), unexpected);
    check_port_calls(service, "list_messages");
}

// ---- history -----------------------------------------------------------------------

fn event_id(n: i64) -> EventId {
    EventId::new(n).unwrap()
}

fn events_page_request() -> PageRequest<EventId> {
    PageRequest {
        limit: PageLimit::parse("50").unwrap(),
        after: Some(event_id(900)),
    }
}

fn event_page() -> Page<TicketEvent, EventId> {
    Page {
        items: vec![TicketEvent {
            id: event_id(981),
            ticket_id: ticket_id(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            actor: Some(staff_ref(STAFF)),
            data: EventData::StatusChanged {
                from: Pending,
                to: Resolved,
            },
        }],
        next: Some(event_id(981)),
    }
}

#[tokio::test]
async fn history_returns_the_events_the_caller_may_see() {
    for who in everyone() {
        let viewer = viewer_of(who);
        let mut repo = MockTicketRepository::new();
        repo.expect_list_events()
            .withf(move |v, id, p| {
                *v == viewer && *id == ticket_id() && *p == events_page_request()
            })
            .times(1)
            .return_once(|_, _, _| Ok(Some(event_page())));
        let service = service(repo);

        let history = service
            .history(who, ticket_id(), events_page_request())
            .await;

        assert_eq!(Read::from(history), Read::Found(event_page()), "{who:?}");
        check_port_calls(service, &format!("{who:?}"));
    }
}

#[tokio::test]
async fn history_of_an_invisible_ticket_is_not_found_and_failures_are_unexpected() {
    let mut answers = vec![Err(outage()), Ok(None)];
    let mut repo = MockTicketRepository::new();
    repo.expect_list_events()
        .times(2)
        .returning(move |_, _, _| answers.pop().unwrap());
    let service = service(repo);
    let who = everyone()[0];

    let missing = service
        .history(who, ticket_id(), events_page_request())
        .await;
    let failed = service
        .history(who, ticket_id(), events_page_request())
        .await;

    assert_eq!(Read::from(missing), Read::NotFound);
    let unavailable = Read::Unexpected(RepositoryErrorKind::Unavailable);
    assert_eq!(Read::from(failed), unavailable);
    check_port_calls(service, "history");
}

// ---- the live feed -------------------------------------------------------------------

#[tokio::test]
async fn a_feed_of_one_ticket_needs_a_ticket_the_caller_may_see() {
    for who in everyone() {
        let mut repo = MockTicketRepository::new();
        let viewer = viewer_of(who);
        repo.expect_find_visible()
            .withf(move |v, id| *v == viewer && *id == ticket_id())
            .times(1)
            .returning(|_, _| Ok(None));
        let one = service(repo);
        let refused = one.feed_filter(who, Some(ticket_id())).await;
        assert!(matches!(refused, Err(ReadTicketError::NotFound)), "{who:?}");
        check_port_calls(one, &format!("{who:?} one ticket"));

        // Every ticket needs no lookup.
        let mut repo = MockTicketRepository::new();
        repo.expect_find_visible().times(0);
        let every = service(repo);
        let all = every.feed_filter(who, None).await.ok();
        assert_eq!(
            all,
            Some(FeedFilter {
                viewer: viewer_of(who),
                ticket: None
            })
        );
        check_port_calls(every, &format!("{who:?} all"));
    }
}

#[tokio::test]
async fn catching_up_reads_only_when_something_was_missed() {
    let who = everyone()[0];
    let filter = FeedFilter {
        viewer: viewer_of(who),
        ticket: None,
    };
    let id = |n| EventId::new(n).unwrap();
    let mut repo = MockTicketRepository::new();
    repo.expect_events_between()
        .withf(move |f, after, up_to, limit| {
            *f == filter && *after == Some(id(3)) && *up_to == id(9) && *limit == 50
        })
        .times(1)
        .returning(|_, _, _, _| Ok(Vec::new()));
    let service = service(repo);
    assert_eq!(
        service
            .missed_events(filter, Some(id(9)), id(9), 50)
            .await
            .ok(),
        Some(Vec::new())
    );
    assert_eq!(
        service
            .missed_events(filter, Some(id(12)), id(9), 50)
            .await
            .ok(),
        Some(Vec::new())
    );
    assert!(service
        .missed_events(filter, Some(id(3)), id(9), 50)
        .await
        .is_ok());
    check_port_calls(service, "catch up");
}
