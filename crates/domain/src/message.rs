//! Messages on a ticket and their types.

use time::OffsetDateTime;

use crate::{MessageId, Role, TicketId, UserId};

/// Who wrote a message: a customer (`Request`), staff (`Response`), or the system
/// (`Other`, reserved; the API never writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Request,
    Response,
    Other,
}

impl MessageType {
    /// The type of a message that a user of this role writes.
    pub fn written_by(role: Role) -> Self {
        if role.is_staff() {
            MessageType::Response
        } else {
            MessageType::Request
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Request => "request",
            MessageType::Response => "response",
            MessageType::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            MessageType::Request,
            MessageType::Response,
            MessageType::Other,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub ticket_id: TicketId,
    pub created_at: OffsetDateTime,
    pub kind: MessageType,
    pub text: String,
    pub author_id: UserId,
    /// The author's e-mail; the HTTP layer shows it to staff only.
    pub author_email: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_write_responses_and_customers_requests() {
        assert_eq!(
            MessageType::written_by(Role::Customer),
            MessageType::Request
        );
        assert_eq!(MessageType::written_by(Role::Staff), MessageType::Response);
        assert_eq!(
            MessageType::written_by(Role::Superuser),
            MessageType::Response
        );
        for kind in [
            MessageType::Request,
            MessageType::Response,
            MessageType::Other,
        ] {
            assert_eq!(MessageType::from_name(kind.as_str()), Some(kind));
        }
    }
}
