//! The workflow rules beyond the status table (which is [`crate::status`]): who may set
//! a ticket's priority and assignee, who may be assigned, and what one request to change
//! a ticket amounts to. All of them are pure functions written as exhaustive matches;
//! adapters apply their outcomes.

use crate::event::EventData;
use crate::ports::TicketSnapshot;
use crate::status::{self, Standing, Transition, TransitionError};
use crate::{Caller, Priority, Role, TicketStatus, UserId};

/// The request needs a staff member: a customer sent a staff-only field (`priority`,
/// `assignee_id`, `internal: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only staff may do this")]
pub struct StaffOnly;

/// One request to change a ticket (`PATCH /tickets/{id}`); `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketUpdate {
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    /// `Some(None)` unassigns the ticket.
    pub assignee: Option<Option<UserId>>,
}

impl TicketUpdate {
    /// Sets a field that only staff may set.
    fn sets_staff_fields(&self) -> bool {
        self.priority.is_some() || self.assignee.is_some()
    }
}

/// One field's move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

/// What a permitted request changes: only the fields whose value differs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketChanges {
    pub status: Option<Change<TicketStatus>>,
    pub priority: Option<Change<Priority>>,
    pub assignee: Option<Change<Option<UserId>>>,
}

impl TicketChanges {
    pub fn is_empty(&self) -> bool {
        self == &TicketChanges::default()
    }

    /// The events that record the changes, one per changed field.
    pub fn events(&self) -> Vec<EventData> {
        let mut events = Vec::with_capacity(3);
        if let Some(Change { from, to }) = self.status {
            events.push(EventData::StatusChanged { from, to });
        }
        if let Some(Change { from, to }) = self.priority {
            events.push(EventData::PriorityChanged { from, to });
        }
        if let Some(Change { from, to }) = self.assignee {
            events.push(EventData::Assigned { from, to });
        }
        events
    }
}

/// How much a ticket's version grows for a write that records `events`: one per event
/// that customers may see, so a ticket's version is always its visible events' count
/// less one (opening writes two, at version 1), and internal notes leave it alone.
pub fn version_increment(events: &[EventData]) -> i64 {
    let visible = events.iter().filter(|event| !event.is_internal()).count();
    i64::try_from(visible).unwrap_or(i64::MAX)
}

/// Why a change request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpdateRefused {
    /// A customer sent `priority` or `assignee_id` (403).
    #[error(transparent)]
    StaffOnly(#[from] StaffOnly),
    /// The status table refuses (400 or 409).
    #[error(transparent)]
    Status(#[from] TransitionError),
    /// A canceled ticket's priority and assignee no longer change (409).
    #[error("the ticket is canceled; it no longer changes")]
    TicketCanceled,
}

/// Who may set priority and assignee: staff, superusers included.
pub fn may_triage(role: Role) -> bool {
    match role {
        Role::Customer => false,
        Role::Staff | Role::Superuser => true,
    }
}

/// Who may be assigned a ticket: an active member of staff (superusers are staff).
pub fn assignable(role: Role, is_active: bool) -> bool {
    match (role, is_active) {
        (Role::Staff | Role::Superuser, true) => true,
        (Role::Customer, _) | (Role::Staff | Role::Superuser, false) => false,
    }
}

/// Whether a ticket in `status` may still change priority and assignee. `canceled` is
/// final; a resolved ticket may be reopened, so it may still be triaged.
pub fn triage_open(status: TicketStatus) -> bool {
    match status {
        TicketStatus::Pending | TicketStatus::Resolved | TicketStatus::Unresolved => true,
        TicketStatus::Canceled => false,
    }
}

/// The refusals that need no ticket, checked before any database work so that the
/// answer reveals nothing about which tickets exist: a customer sending a staff field,
/// or asking for a status that only staff set.
pub fn check_request(role: Role, update: &TicketUpdate) -> Result<(), UpdateRefused> {
    if update.sets_staff_fields() && !may_triage(role) {
        return Err(StaffOnly.into());
    }
    if let Some(target) = update.status {
        // What the caller may set if they are the author: anything they may set at all.
        let best_case = Standing {
            is_author: true,
            is_staff: role.is_staff(),
        };
        if !status::may_set(best_case, target) {
            return Err(TransitionError::NotPermitted(target).into());
        }
    }
    Ok(())
}

/// The whole rule for one request: it changes all of its fields or none. A field set
/// to the value it has changes nothing.
pub fn decide(
    caller: Caller,
    snapshot: &TicketSnapshot,
    update: &TicketUpdate,
) -> Result<TicketChanges, UpdateRefused> {
    check_request(caller.role, update)?;
    let ticket = &snapshot.ticket;
    let standing = Standing {
        is_author: ticket.author_id == caller.id,
        is_staff: caller.is_staff(),
    };
    let status = match update.status {
        None => None,
        Some(to) => match status::decide(standing, ticket.status, to, snapshot.has_response)? {
            Transition::Unchanged => None,
            Transition::Change => Some(Change {
                from: ticket.status,
                to,
            }),
        },
    };
    let priority = update
        .priority
        .filter(|to| *to != ticket.priority)
        .map(|to| Change {
            from: ticket.priority,
            to,
        });
    let current_assignee = ticket.assignee.as_ref().map(|a| a.id);
    let assignee = update
        .assignee
        .filter(|to| *to != current_assignee)
        .map(|to| Change {
            from: current_assignee,
            to,
        });
    if (priority.is_some() || assignee.is_some()) && !triage_open(ticket.status) {
        return Err(UpdateRefused::TicketCanceled);
    }
    Ok(TicketChanges {
        status,
        priority,
        assignee,
    })
}

#[cfg(test)]
mod tests;
