//! Use cases about tickets, their messages and their history.

use std::sync::Arc;

use crate::event::TicketEvent;
use crate::feed::{FeedEvent, FeedFilter};
use time::OffsetDateTime;

use crate::idempotency::{self, Idempotency, KeyConflict, Written};
use crate::page::{CreatedKey, Page, PageRequest};
use crate::ports::{
    AddMessageError, ExpectedTicket, NewMessage, OpenTicketError, TicketRepository, Viewer,
};
use crate::status::TransitionError;
use crate::ticket::{TicketFilter, VersionPrecondition};
use crate::values::{MessageText, Topic};
use crate::workflow::{self, StaffOnly, TicketUpdate, UpdateRefused};
use crate::{
    Caller, EventId, Message, MessageType, RepositoryError, Ticket, TicketId, TicketStatus,
};

/// How often a change re-reads the ticket when a concurrent change won the race,
/// before it gives up with `Conflict`.
const UPDATE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ReadTicketError {
    /// No such ticket, or the caller may not see it (the two are not told apart).
    #[error("ticket not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Key(#[from] KeyConflict),
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateTicketError {
    #[error("ticket not found")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] UpdateRefused),
    /// `assignee_id` names no active member of staff.
    #[error("the assignee is not an active member of staff")]
    AssigneeInvalid,
    /// The ticket's version is not one that `If-Match` admits.
    #[error("the ticket's version does not match")]
    PreconditionFailed,
    /// Concurrent changes kept winning the race; the client may retry.
    #[error("the ticket changed concurrently")]
    Conflict,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

impl From<TransitionError> for UpdateTicketError {
    fn from(e: TransitionError) -> Self {
        UpdateTicketError::Refused(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PostMessageError {
    #[error(transparent)]
    StaffOnly(#[from] StaffOnly),
    #[error("ticket not found")]
    NotFound,
    #[error("the ticket is canceled")]
    TicketCanceled,
    #[error("the ticket's version does not match")]
    PreconditionFailed,
    #[error(transparent)]
    Key(#[from] KeyConflict),
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Clone)]
pub struct TicketService {
    tickets: Arc<dyn TicketRepository>,
}

impl TicketService {
    pub fn new(tickets: Arc<dyn TicketRepository>) -> Self {
        Self { tickets }
    }

    #[tracing::instrument(level = "debug", name = "tickets.open", skip_all, fields(caller.id = %caller.id))]
    pub async fn open(
        &self,
        caller: Caller,
        topic: Topic,
        text: MessageText,
        key: Option<Idempotency<Ticket>>,
    ) -> Result<Written<Ticket>, OpenError> {
        self.tickets
            .open_ticket(caller, topic, text, key)
            .await
            .map_err(|e| match e {
                OpenTicketError::Key(conflict) => OpenError::Key(conflict),
                OpenTicketError::Repository(e) => OpenError::Unexpected(e),
            })
    }

    /// A customer lists their own tickets; `author` and `assignee` filters are staff's
    /// and are ignored for customers.
    #[tracing::instrument(level = "debug", name = "tickets.list", skip_all, fields(caller.id = %caller.id))]
    pub async fn list(
        &self,
        caller: Caller,
        mut filter: TicketFilter,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Ticket, CreatedKey>, RepositoryError> {
        if !workflow::may_triage(caller.role) {
            filter.author_email = None;
            filter.assignee = None;
        }
        self.tickets.list_visible(caller.into(), filter, page).await
    }

    #[tracing::instrument(level = "debug", name = "tickets.get", skip_all, fields(caller.id = %caller.id, ticket.id = %id))]
    pub async fn get(&self, caller: Caller, id: TicketId) -> Result<Ticket, ReadTicketError> {
        self.tickets
            .find_visible(caller.into(), id)
            .await?
            .ok_or(ReadTicketError::NotFound)
    }

    /// Applies the workflow rules to the ticket's current state and writes the changes
    /// with a compare-and-set on what the rules decided on (status, priority,
    /// assignee), so that two concurrent requests can never both pass a rule that only
    /// one of them may pass: the loser re-reads and decides again. With `If-Match` the
    /// version is compared too (one that the precondition admits), and a ticket that
    /// moved past it fails the precondition instead. (Whether staff have responded
    /// matters to the rules as well, but it only ever becomes true, which can turn a
    /// refusal into a permission, never the reverse.)
    #[tracing::instrument(level = "debug", name = "tickets.update", skip_all, fields(caller.id = %caller.id, ticket.id = %id))]
    pub async fn update(
        &self,
        caller: Caller,
        id: TicketId,
        update: TicketUpdate,
        precondition: Option<VersionPrecondition>,
    ) -> Result<Ticket, UpdateTicketError> {
        workflow::check_request(caller.role, &update)?;
        if let Some(Some(assignee)) = update.assignee {
            self.check_assignable(assignee).await?;
        }
        let viewer = Viewer::from(caller);
        for _ in 0..UPDATE_ATTEMPTS {
            let snapshot = self
                .tickets
                .ticket_snapshot(viewer, id)
                .await?
                .ok_or(UpdateTicketError::NotFound)?;
            let version = snapshot.ticket.version;
            if precondition.as_ref().is_some_and(|p| !p.admits(version)) {
                return Err(UpdateTicketError::PreconditionFailed);
            }
            let changes = workflow::decide(caller, &snapshot, &update)?;
            if changes.is_empty() {
                return Ok(snapshot.ticket);
            }
            let expected = ExpectedTicket::of(&snapshot.ticket, precondition.is_some());
            if let Some(ticket) = self
                .tickets
                .update_if_unchanged(caller, id, expected, changes)
                .await?
            {
                return Ok(ticket);
            }
        }
        Err(UpdateTicketError::Conflict)
    }

    /// Checked once, before the compare-and-set loop: a member of staff deactivated
    /// between this check and the write is assigned anyway, as if the deactivation had
    /// come just after (deactivation does not unassign tickets either).
    async fn check_assignable(&self, id: crate::UserId) -> Result<(), UpdateTicketError> {
        match self.tickets.assignee_candidate(id).await? {
            Some(candidate) if workflow::assignable(candidate.role, candidate.is_active) => Ok(()),
            Some(_) | None => Err(UpdateTicketError::AssigneeInvalid),
        }
    }

    /// Posts a request (customers), a response (staff) or, with `internal`, a note
    /// (staff only).
    #[tracing::instrument(level = "debug", name = "tickets.post_message", skip_all, fields(caller.id = %caller.id, ticket.id = %id))]
    pub async fn post_message(
        &self,
        caller: Caller,
        id: TicketId,
        text: MessageText,
        internal: bool,
        precondition: Option<VersionPrecondition>,
        key: Option<Idempotency<Message>>,
    ) -> Result<Written<Message>, PostMessageError> {
        let kind = MessageType::written_by(caller.role, internal)?;
        let message = NewMessage { kind, text };
        self.tickets
            .add_message(caller, id, message, precondition, key)
            .await
            .map_err(|e| match e {
                AddMessageError::TicketNotFound => PostMessageError::NotFound,
                // Only a canceled ticket refuses anything, and only what the rule says it
                // refuses; any other refusal is the adapter's bug.
                AddMessageError::NotAccepted(status) if kind.accepted_in(status) => {
                    PostMessageError::Unexpected(RepositoryError::msg(format!(
                        "a {status} ticket refused a {} message, which the rules accept",
                        kind.as_str()
                    )))
                }
                AddMessageError::NotAccepted(status) => match status {
                    TicketStatus::Canceled => PostMessageError::TicketCanceled,
                    TicketStatus::Pending | TicketStatus::Resolved | TicketStatus::Unresolved => {
                        PostMessageError::Unexpected(RepositoryError::msg(format!(
                            "a {status} ticket refused a {} message",
                            kind.as_str()
                        )))
                    }
                },
                AddMessageError::PreconditionFailed => PostMessageError::PreconditionFailed,
                AddMessageError::Key(conflict) => PostMessageError::Key(conflict),
                AddMessageError::Repository(e) => PostMessageError::Unexpected(e),
            })
    }

    #[tracing::instrument(level = "debug", name = "tickets.list_messages", skip_all, fields(caller.id = %caller.id, ticket.id = %id))]
    pub async fn list_messages(
        &self,
        caller: Caller,
        id: TicketId,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Message, CreatedKey>, ReadTicketError> {
        self.tickets
            .list_messages(caller.into(), id, page)
            .await?
            .ok_or(ReadTicketError::NotFound)
    }

    /// What a stream of events for `caller` carries: what they may see, of one ticket
    /// when `ticket` names one, which they must be able to see.
    pub async fn feed_filter(
        &self,
        caller: Caller,
        ticket: Option<TicketId>,
    ) -> Result<FeedFilter, ReadTicketError> {
        if let Some(id) = ticket {
            self.get(caller, id).await?;
        }
        Ok(FeedFilter {
            viewer: caller.into(),
            ticket,
        })
    }

    /// The events a resuming stream missed: after `after` (from the first when `None`),
    /// up to `up_to`, at most `limit`, oldest first.
    pub async fn missed_events(
        &self,
        filter: FeedFilter,
        after: Option<EventId>,
        up_to: EventId,
        limit: u16,
    ) -> Result<Vec<FeedEvent>, RepositoryError> {
        if after.is_some_and(|after| after >= up_to) {
            return Ok(Vec::new());
        }
        self.tickets
            .events_between(filter, after, up_to, limit)
            .await
    }

    /// Forgets the idempotency keys older than their retention; returns how many.
    #[tracing::instrument(level = "debug", name = "tickets.forget_expired_keys", skip_all)]
    pub async fn forget_expired_keys(&self, now: OffsetDateTime) -> Result<u64, RepositoryError> {
        self.tickets
            .forget_idempotency_keys(now - idempotency::RETENTION)
            .await
    }

    /// The ticket's history as the caller may see it.
    #[tracing::instrument(level = "debug", name = "tickets.history", skip_all, fields(caller.id = %caller.id, ticket.id = %id))]
    pub async fn history(
        &self,
        caller: Caller,
        id: TicketId,
        page: PageRequest<EventId>,
    ) -> Result<Page<TicketEvent, EventId>, ReadTicketError> {
        self.tickets
            .list_events(caller.into(), id, page)
            .await?
            .ok_or(ReadTicketError::NotFound)
    }
}

#[cfg(test)]
mod tests;
