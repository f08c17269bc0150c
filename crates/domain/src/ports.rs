//! The ports: what the use cases need from the outside world. Each method does one
//! atomic thing, and the adapter owns any transaction it needs.

use async_trait::async_trait;

use crate::page::{CreatedKey, Page, PageRequest, UsersKey};
use crate::ticket::TicketFilter;
use crate::values::{Email, MessageText, Password, Topic, Username};
use crate::{
    Caller, Message, MessageType, RepositoryError, Role, Ticket, TicketId, TicketStatus, User,
    UserId,
};

/// Whose tickets a query may return: the viewer's own, or every ticket for staff.
/// Adapters must apply it inside the query itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: UserId,
    pub sees_all: bool,
}

impl From<Caller> for Viewer {
    fn from(caller: Caller) -> Self {
        Viewer {
            user_id: caller.id,
            sees_all: caller.is_staff(),
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

/// A ticket together with what the status rule needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    pub ticket: Ticket,
    pub has_response: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum AddMessageError {
    /// No such ticket, or the viewer may not see it.
    #[error("ticket not found")]
    TicketNotFound,
    #[error("the ticket is canceled")]
    TicketCanceled,
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

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TicketRepository: Send + Sync {
    /// Creates a `pending` ticket and its first message (type `request`) in one
    /// transaction, and counts it in the author's `tickets_count`.
    async fn open_ticket_with_first_message(
        &self,
        author: UserId,
        topic: Topic,
        text: MessageText,
    ) -> Result<Ticket, RepositoryError>;

    /// The ticket, if it exists and the viewer may see it.
    async fn find_visible(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<Ticket>, RepositoryError>;

    /// The ticket and whether it has a response, if the viewer may see it.
    async fn status_snapshot(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<StatusSnapshot>, RepositoryError>;

    /// Sets the status to `new` only if it is still `expected` (compare-and-set in
    /// one statement) and moves `updated_at`. `None` when the status was no longer
    /// `expected`, so the caller decides again on fresh state.
    async fn set_status_if_current(
        &self,
        id: TicketId,
        expected: TicketStatus,
        new: TicketStatus,
    ) -> Result<Option<Ticket>, RepositoryError>;

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

    /// Adds a message and moves the ticket's `updated_at`, in one statement that
    /// checks visibility and that the ticket is not canceled.
    async fn add_message(
        &self,
        viewer: Viewer,
        id: TicketId,
        kind: MessageType,
        text: MessageText,
    ) -> Result<Message, AddMessageError>;

    /// The ticket's messages, oldest first; `None` when the ticket does not exist or
    /// the viewer may not see it.
    async fn list_messages(
        &self,
        viewer: Viewer,
        id: TicketId,
        page: PageRequest<CreatedKey>,
    ) -> Result<Option<Page<Message, CreatedKey>>, RepositoryError>;
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
