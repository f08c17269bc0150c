//! The workflow rule against an oracle written independently from the contract's text,
//! over every (caller, status, response, requested status, priority, assignee) case.

use time::OffsetDateTime;

use super::*;
use crate::ticket::{TicketVersion, UserRef};
use crate::{Ticket, TicketId};

const AUTHOR: i64 = 1;
const STAFF: i64 = 2;
const OTHER_STAFF: i64 = 3;

fn user(id: i64) -> UserId {
    UserId::new(id).expect("positive")
}

fn snapshot(status: TicketStatus, has_response: bool, assignee: Option<i64>) -> TicketSnapshot {
    TicketSnapshot {
        ticket: Ticket {
            id: TicketId::new(10).expect("positive"),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            author_id: user(AUTHOR),
            author_email: "a@post.io".to_owned(),
            topic: "help".to_owned(),
            status,
            priority: Priority::Normal,
            assignee: assignee.map(|id| UserRef {
                id: user(id),
                username: format!("staff{id}"),
            }),
            version: TicketVersion::FIRST,
        },
        has_response,
    }
}

/// The contract, read directly: statuses by the table; priority and assignee by staff
/// only (403 before anything else), unchanged values change nothing, a canceled ticket
/// changes no more; all or nothing.
fn oracle(
    caller: Caller,
    status: TicketStatus,
    has_response: bool,
    assignee: Option<i64>,
    update: &TicketUpdate,
) -> Result<TicketChanges, UpdateRefused> {
    use TicketStatus::*;
    let staff = caller.role != Role::Customer;
    let author = caller.id == user(AUTHOR);
    if (update.priority.is_some() || update.assignee.is_some()) && !staff {
        return Err(UpdateRefused::StaffOnly(StaffOnly));
    }
    let mut changes = TicketChanges::default();
    if let Some(to) = update.status {
        let allowed = if to == Canceled { author } else { staff };
        if !allowed {
            return Err(TransitionError::NotPermitted(to).into());
        }
        if to != status {
            if status == Canceled {
                return Err(TransitionError::TicketCanceled.into());
            }
            if to == Canceled && status == Resolved {
                return Err(TransitionError::CannotCancelResolved.into());
            }
            if to == Resolved && !has_response {
                return Err(TransitionError::ResponseRequired.into());
            }
            changes.status = Some(Change { from: status, to });
        }
    }
    if let Some(to) = update.priority {
        if to != Priority::Normal {
            changes.priority = Some(Change {
                from: Priority::Normal,
                to,
            });
        }
    }
    if let Some(to) = update.assignee {
        let from = assignee.map(user);
        if to != from {
            changes.assignee = Some(Change { from, to });
        }
    }
    if (changes.priority.is_some() || changes.assignee.is_some()) && status == Canceled {
        return Err(UpdateRefused::TicketCanceled);
    }
    Ok(changes)
}

fn updates() -> Vec<TicketUpdate> {
    let statuses = std::iter::once(None).chain(TicketStatus::ALL.map(Some));
    let mut all = Vec::new();
    for status in statuses {
        for priority in [None, Some(Priority::Normal), Some(Priority::Urgent)] {
            for assignee in [
                None,
                Some(None),
                Some(Some(user(STAFF))),
                Some(Some(user(OTHER_STAFF))),
            ] {
                all.push(TicketUpdate {
                    status,
                    priority,
                    assignee,
                });
            }
        }
    }
    all
}

#[test]
fn every_case_follows_the_contract() {
    let callers = [
        Caller {
            id: user(AUTHOR),
            role: Role::Customer,
        },
        Caller {
            id: user(AUTHOR),
            role: Role::Staff,
        },
        Caller {
            id: user(STAFF),
            role: Role::Staff,
        },
        Caller {
            id: user(OTHER_STAFF),
            role: Role::Superuser,
        },
        Caller {
            id: user(99),
            role: Role::Customer,
        },
    ];
    let mut checked = 0;
    for caller in callers {
        for status in TicketStatus::ALL {
            for has_response in [false, true] {
                for assignee in [None, Some(STAFF)] {
                    let snapshot = snapshot(status, has_response, assignee);
                    for update in updates() {
                        assert_eq!(
                            decide(caller, &snapshot, &update),
                            oracle(caller, status, has_response, assignee, &update),
                            "{caller:?} on {status} (response: {has_response}, assignee: \
                             {assignee:?}) asking {update:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 5 * 4 * 2 * 2 * 5 * 3 * 4);
}

#[test]
fn refusals_without_a_ticket_are_those_of_the_request_alone() {
    let customer_status = TicketUpdate {
        status: Some(TicketStatus::Resolved),
        ..TicketUpdate::default()
    };
    assert_eq!(
        check_request(Role::Customer, &customer_status),
        Err(TransitionError::NotPermitted(TicketStatus::Resolved).into())
    );
    let unassign = TicketUpdate {
        assignee: Some(None),
        ..TicketUpdate::default()
    };
    assert_eq!(
        check_request(Role::Customer, &unassign),
        Err(UpdateRefused::StaffOnly(StaffOnly))
    );
    assert_eq!(check_request(Role::Staff, &unassign), Ok(()));
    // Staff may cancel their own tickets, so `canceled` waits for the ticket.
    let cancel = TicketUpdate {
        status: Some(TicketStatus::Canceled),
        ..TicketUpdate::default()
    };
    assert_eq!(check_request(Role::Staff, &cancel), Ok(()));
}

#[test]
fn only_active_staff_may_be_assigned() {
    for role in [Role::Customer, Role::Staff, Role::Superuser] {
        for active in [false, true] {
            assert_eq!(
                assignable(role, active),
                active && role != Role::Customer,
                "{role:?} active: {active}"
            );
        }
    }
}

#[test]
fn events_follow_the_changes_and_the_version_counts_visible_ones() {
    let changes = TicketChanges {
        status: Some(Change {
            from: TicketStatus::Pending,
            to: TicketStatus::Unresolved,
        }),
        priority: None,
        assignee: Some(Change {
            from: None,
            to: Some(user(STAFF)),
        }),
    };
    let events = changes.events();
    let names: Vec<&str> = events.iter().map(EventData::type_name).collect();
    assert_eq!(names, ["ticket.status_changed", "ticket.assigned"]);
    assert_eq!(version_increment(&events), 2);
    let note = EventData::NoteCreated {
        message_id: crate::MessageId::new(1).expect("positive"),
    };
    assert_eq!(version_increment(&[note]), 0);
    assert!(TicketChanges::default().events().is_empty());
}
