//! Use cases about tickets and their messages.

use std::sync::Arc;

use crate::page::{CreatedKey, Page, PageRequest};
use crate::ports::{AddMessageError, TicketRepository, Viewer};
use crate::status::{self, Standing, Transition, TransitionError};
use crate::ticket::TicketFilter;
use crate::values::{MessageText, Topic};
use crate::{Caller, Message, MessageType, RepositoryError, Ticket, TicketId, TicketStatus};

/// How often a status change re-reads the ticket when a concurrent change won the
/// race, before it gives up with `Conflict`.
const STATUS_CHANGE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ReadTicketError {
    /// No such ticket, or the caller may not see it (the two are not told apart).
    #[error("ticket not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeStatusError {
    #[error("ticket not found")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] TransitionError),
    /// Concurrent changes kept winning the race; the client may retry.
    #[error("the ticket changed concurrently")]
    Conflict,
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum PostMessageError {
    #[error("ticket not found")]
    NotFound,
    #[error("the ticket is canceled")]
    TicketCanceled,
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

    pub async fn open(
        &self,
        caller: Caller,
        topic: Topic,
        text: MessageText,
    ) -> Result<Ticket, RepositoryError> {
        self.tickets
            .open_ticket_with_first_message(caller.id, topic, text)
            .await
    }

    /// A customer lists their own tickets (an `author` filter is ignored for them);
    /// staff list all.
    pub async fn list(
        &self,
        caller: Caller,
        mut filter: TicketFilter,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Ticket, CreatedKey>, RepositoryError> {
        if !caller.is_staff() {
            filter.author_email = None;
        }
        self.tickets.list_visible(caller.into(), filter, page).await
    }

    pub async fn get(&self, caller: Caller, id: TicketId) -> Result<Ticket, ReadTicketError> {
        self.tickets
            .find_visible(caller.into(), id)
            .await?
            .ok_or(ReadTicketError::NotFound)
    }

    /// Applies the status rule to the ticket's current state and writes the change
    /// with a compare-and-set, so that two concurrent requests can never both pass a
    /// rule that only one of them may pass: the loser re-reads and decides again.
    pub async fn change_status(
        &self,
        caller: Caller,
        id: TicketId,
        target: TicketStatus,
    ) -> Result<Ticket, ChangeStatusError> {
        // Only authors may cancel, and customers may do nothing else: a customer
        // asking for another status is refused before any database work.
        if !caller.is_staff() && target != TicketStatus::Canceled {
            return Err(TransitionError::NotPermitted(target).into());
        }
        let viewer = Viewer::from(caller);
        for _ in 0..STATUS_CHANGE_ATTEMPTS {
            let snapshot = self
                .tickets
                .status_snapshot(viewer, id)
                .await?
                .ok_or(ChangeStatusError::NotFound)?;
            let standing = Standing {
                is_author: snapshot.ticket.author_id == caller.id,
                is_staff: caller.is_staff(),
            };
            let from = snapshot.ticket.status;
            match status::decide(standing, from, target, snapshot.has_response)? {
                Transition::Unchanged => return Ok(snapshot.ticket),
                Transition::Change => {
                    if let Some(ticket) =
                        self.tickets.set_status_if_current(id, from, target).await?
                    {
                        return Ok(ticket);
                    }
                }
            }
        }
        Err(ChangeStatusError::Conflict)
    }

    pub async fn post_message(
        &self,
        caller: Caller,
        id: TicketId,
        text: MessageText,
    ) -> Result<Message, PostMessageError> {
        let kind = MessageType::written_by(caller.role);
        self.tickets
            .add_message(caller.into(), id, kind, text)
            .await
            .map_err(|e| match e {
                AddMessageError::TicketNotFound => PostMessageError::NotFound,
                AddMessageError::TicketCanceled => PostMessageError::TicketCanceled,
                AddMessageError::Repository(e) => PostMessageError::Unexpected(e),
            })
    }

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
}

#[cfg(test)]
mod tests;
