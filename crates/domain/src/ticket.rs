//! Tickets as stored and shown, and the filters of the ticket list.

use time::OffsetDateTime;

use crate::values::SearchQuery;
use crate::{Priority, TicketId, TicketStatus, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub author_id: UserId,
    /// The author's e-mail; the HTTP layer shows it to staff only.
    pub author_email: String,
    pub topic: String,
    pub status: TicketStatus,
    pub priority: Priority,
    /// The member of staff the ticket is assigned to.
    pub assignee: Option<UserRef>,
    pub version: TicketVersion,
}

/// A user as other records name them: id and username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: UserId,
    pub username: String,
}

/// The optimistic-concurrency token of a ticket: it grows whenever anything a customer
/// can see of the ticket changes (status, priority, assignee, `updated_at`), and only
/// then, so that it reveals nothing about internal notes. Writes compare it in the
/// statement that writes (compare-and-set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketVersion(i64);

impl TicketVersion {
    /// Every ticket starts at this version.
    pub const FIRST: TicketVersion = TicketVersion(1);

    pub fn new(value: i64) -> Option<Self> {
        (value >= 1).then_some(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// An `If-Match` precondition: the versions the client accepts to write over. Empty
/// means no version matches (a weak or malformed validator, for instance).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionPrecondition {
    pub versions: Vec<TicketVersion>,
}

impl VersionPrecondition {
    pub fn admits(&self, version: TicketVersion) -> bool {
        self.versions.contains(&version)
    }
}

/// Whose tickets an `assignee` filter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Tickets assigned to nobody.
    Nobody,
    /// Tickets assigned to this user.
    User(UserId),
}

/// Which tickets a list returns, beyond what the caller may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// Only tickets in one of these statuses; empty means all.
    pub statuses: Vec<TicketStatus>,
    /// Only tickets of one of these priorities; empty means all.
    pub priorities: Vec<Priority>,
    /// Only tickets by the author with this e-mail (compared without regard to case).
    /// Staff only: the use case drops it for customers.
    pub author_email: Option<String>,
    /// Staff only: the use case drops it for customers.
    pub assignee: Option<AssigneeFilter>,
    /// Only tickets whose topic or any message (that the viewer may see) matches.
    pub search: Option<SearchQuery>,
    pub order: SortOrder,
}

/// Order by creation time, then id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}
