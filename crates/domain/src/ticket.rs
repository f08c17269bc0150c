//! Tickets as stored and shown.

use time::OffsetDateTime;

use crate::{TicketId, TicketStatus, UserId};

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
}

/// Which tickets a list returns, beyond what the caller may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// Only tickets in one of these statuses; empty means all.
    pub statuses: Vec<TicketStatus>,
    /// Only tickets by the author with this e-mail (compared without regard to case).
    pub author_email: Option<String>,
    pub order: SortOrder,
}

/// Order by creation time, then id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}
