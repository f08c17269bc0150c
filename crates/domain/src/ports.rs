//! The ports: what the use cases need from the outside world. Each method does one
//! atomic thing, and the adapter owns any transaction it needs.

mod webhooks;

pub use webhooks::*;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::TicketEvent;
use crate::feed::{FeedEvent, FeedFilter};
use crate::idempotency::{Idempotency, KeyConflict, Written};
use crate::page::{CreatedKey, Page, PageRequest, UsersKey};
use crate::ticket::{TicketFilter, TicketVersion, UserRef, VersionPrecondition};
use crate::values::{Email, MessageText, Password, Topic, Username};
use crate::workflow::TicketChanges;
use crate::{
    Caller, EventId, Message, MessageType, Priority, RepositoryError, Role, Ticket, TicketId,
    TicketStatus, User, UserId,
};

/// What a query may return to whom: the viewer's own tickets, or every ticket for
/// staff; internal notes (and their events) for staff only. Adapters must apply it
/// inside the query itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: UserId,
    pub sees_all: bool,
    pub sees_internal: bool,
    /// `Some` when the viewer is the request's caller: the role the rights above come
    /// from, which the adapter confirms (see [`TicketRepository`]). `None` for a view
    /// on someone's behalf (a user's tickets as they would see them).
    pub caller_role: Option<Role>,
}

impl From<Caller> for Viewer {
    fn from(caller: Caller) -> Self {
        let staff = match caller.role {
            Role::Customer => false,
            Role::Staff | Role::Superuser => true,
        };
        Viewer {
            user_id: caller.id,
            sees_all: staff,
            sees_internal: staff,
            caller_role: Some(caller.role),
        }
    }
}

/// A user to create. The password is already hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: Email,
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
}

/// What login needs to know of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: UserId,
    pub password_hash: String,
    pub is_active: bool,
    pub role: Role,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub username: Option<Username>,
    pub password_hash: Option<String>,
    /// `Some(false)` also takes away superuser rights.
    pub is_staff: Option<bool>,
    pub is_active: Option<bool>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self == &UserChanges::default()
    }
}

/// A ticket together with what the rules need to know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSnapshot {
    pub ticket: Ticket,
    /// Staff have responded (a note is no response).
    pub has_response: bool,
}

/// What a compare-and-set requires of a ticket when it writes: the fields that the
/// rules decided on and, when the client made the write conditional (`If-Match`), the
/// version too. Without a precondition the version is left out, so that a message
/// posted meanwhile (which moves the version) does not make a status change retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedTicket {
    pub status: TicketStatus,
    pub priority: Priority,
    pub assignee: Option<UserId>,
    pub version: Option<TicketVersion>,
}

impl ExpectedTicket {
    /// The ticket's fields as they are in `ticket`, and its version if `with_version`.
    pub fn of(ticket: &Ticket, with_version: bool) -> Self {
        Self {
            status: ticket.status,
            priority: ticket.priority,
            assignee: ticket.assignee.as_ref().map(|a| a.id),
            version: with_version.then_some(ticket.version),
        }
    }
}

/// A user that a ticket may be assigned to, as the rule needs to know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssigneeCandidate {
    pub user: UserRef,
    pub role: Role,
    pub is_active: bool,
}

/// A message to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub kind: MessageType,
    pub text: MessageText,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum OpenTicketError {
    #[error(transparent)]
    Key(#[from] KeyConflict),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum AddMessageError {
    /// No such ticket, or the viewer may not see it.
    #[error("ticket not found")]
    TicketNotFound,
    /// The ticket's status does not take this type of message
    /// ([`MessageType::accepted_in`]).
    #[error("a {0} ticket does not take this message")]
    NotAccepted(TicketStatus),
    /// The ticket's version is not one that the precondition admits.
    #[error("the ticket's version does not match")]
    PreconditionFailed,
    #[error(transparent)]
    Key(#[from] KeyConflict),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// # Errors
    /// `EmailTaken` when an address equal without regard to case exists.
    async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError>;

    /// Creates a superuser, or promotes (and reactivates) the user with that e-mail.
    async fn upsert_superuser(&self, user: NewUser) -> Result<User, RepositoryError>;

    /// Looks an account up by e-mail without regard to case.
    async fn find_credentials(&self, email: &str) -> Result<Option<Credentials>, RepositoryError>;

    /// The caller behind a token: `None` when the user no longer exists or is
    /// deactivated.
    async fn find_active_caller(&self, id: UserId) -> Result<Option<Caller>, RepositoryError>;

    async fn find_user(&self, id: UserId) -> Result<Option<User>, RepositoryError>;

    async fn find_password_hash(&self, id: UserId) -> Result<Option<String>, RepositoryError>;

    /// Users by ticket count descending, then id ascending.
    async fn list_users(
        &self,
        page: PageRequest<UsersKey>,
    ) -> Result<Page<User, UsersKey>, RepositoryError>;

    /// Applies the changes; `None` when the user does not exist.
    async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
    ) -> Result<Option<User>, RepositoryError>;
}

/// Tickets, their messages and their history. Every write runs as one transaction that
/// changes the rows and appends the events that record the change (see
/// [`crate::event`]), and, when guarded by an idempotency key, stores the key with its
/// response; none of the three happens without the others.
///
/// Confirming the caller: a request's caller comes from its token, which says who the
/// user was when it was issued, while the rules must see the user as they are now.
/// Every method given a [`Caller`], or a [`Viewer`] with a `caller_role`, therefore
/// confirms that this user still exists, is active and has that role, together with
/// its own statements (in the same transaction, before anything is written), and
/// fails with [`crate::RepositoryErrorKind::CallerChanged`], having changed nothing,
/// when not. The caller's use case can then be decided again for the user as they are.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TicketRepository: Send + Sync {
    /// Creates a `pending`, `normal` ticket by `actor` and its first message (type
    /// `request`), counts it in the author's `tickets_count`, and records
    /// `ticket.created` and `message.created`.
    ///
    /// # Errors
    /// `Key` when `key` is in use by a running request or was used for another one.
    async fn open_ticket(
        &self,
        actor: Caller,
        topic: Topic,
        text: MessageText,
        key: Option<Idempotency<Ticket>>,
    ) -> Result<Written<Ticket>, OpenTicketError>;

    /// The ticket, if it exists and the viewer may see it.
    async fn find_visible(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<Ticket>, RepositoryError>;

    /// The ticket and whether it has a response, if the viewer may see it.
    async fn ticket_snapshot(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<TicketSnapshot>, RepositoryError>;

    /// Applies `changes` only if the ticket is still as `expected` (compare-and-set in
    /// the statement that writes), moves `updated_at`, grows the version by
    /// [`crate::workflow::version_increment`] of the changes' events, and records those
    /// events as made by `actor`. `None` when the ticket had changed, so that the caller
    /// decides again on fresh state.
    async fn update_if_unchanged(
        &self,
        actor: Caller,
        id: TicketId,
        expected: ExpectedTicket,
        changes: TicketChanges,
    ) -> Result<Option<Ticket>, RepositoryError>;

    /// The user with this id, as the assignment rule needs to know them.
    async fn assignee_candidate(
        &self,
        id: UserId,
    ) -> Result<Option<AssigneeCandidate>, RepositoryError>;

    /// Tickets the viewer may see that match the filter, in the filter's order.
    async fn list_visible(
        &self,
        viewer: Viewer,
        filter: TicketFilter,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Ticket, CreatedKey>, RepositoryError>;

    /// Tickets written by `author`, oldest first.
    async fn list_by_author(
        &self,
        author: UserId,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Ticket, CreatedKey>, RepositoryError>;

    /// Adds a message by `actor` to a ticket that `actor` may see, whose status takes
    /// the message's type ([`MessageType::accepted_in`]) and, with a precondition, whose
    /// version it admits; all checked in the statement that locks the ticket. Moves the
    /// ticket's `updated_at` and version when the type moves them
    /// ([`MessageType::moves_ticket`]) and records the message's event.
    ///
    /// A key stored by an earlier request is replayed before anything else is checked:
    /// a repeat gets the first response even if the ticket has changed since.
    ///
    /// # Errors
    /// `Key`; then `TicketNotFound`, `NotAccepted`, `PreconditionFailed`, in this order
    /// of precedence.
    async fn add_message(
        &self,
        actor: Caller,
        id: TicketId,
        message: NewMessage,
        precondition: Option<VersionPrecondition>,
        key: Option<Idempotency<Message>>,
    ) -> Result<Written<Message>, AddMessageError>;

    /// The ticket's messages that the viewer may see, oldest first; `None` when the
    /// ticket does not exist or the viewer may not see it.
    async fn list_messages(
        &self,
        viewer: Viewer,
        id: TicketId,
        page: PageRequest<CreatedKey>,
    ) -> Result<Option<Page<Message, CreatedKey>>, RepositoryError>;

    /// The ticket's events that the viewer may see, oldest first; `None` when the
    /// ticket does not exist or the viewer may not see it.
    async fn list_events(
        &self,
        viewer: Viewer,
        id: TicketId,
        page: PageRequest<EventId>,
    ) -> Result<Option<Page<TicketEvent, EventId>>, RepositoryError>;

    /// The events after `after` (from the first when `None`) up to `up_to`, oldest
    /// first, at most `limit`, that `filter` admits: how a resuming stream catches up.
    async fn events_between(
        &self,
        filter: FeedFilter,
        after: Option<EventId>,
        up_to: EventId,
        limit: u16,
    ) -> Result<Vec<FeedEvent>, RepositoryError>;

    /// Forgets the idempotency keys stored before `cutoff`; returns how many.
    async fn forget_idempotency_keys(&self, cutoff: OffsetDateTime)
        -> Result<u64, RepositoryError>;
}

/// Password hashing. Implementations must keep the slow work off async workers.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: Password) -> Result<String, RepositoryError>;

    /// Checks `password` against `hash`. With `None` it checks against a dummy hash
    /// of the same cost and returns `false`, so that an unknown account takes as
    /// long as a known one.
    async fn verify(&self, password: String, hash: Option<String>)
        -> Result<bool, RepositoryError>;
}
