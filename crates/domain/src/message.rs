//! Messages on a ticket, their types, and the rules that depend on the type: who writes
//! which type, which tickets take it, and what posting it changes.

use time::OffsetDateTime;

use crate::workflow::StaffOnly;
use crate::{MessageId, Role, TicketId, TicketStatus, UserId};

/// Who wrote a message: a customer (`Request`), staff answering (`Response`), staff
/// writing to each other (`Note`, internal: never shown to customers), or the system
/// (`Other`, reserved; the API never writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Request,
    Response,
    Note,
    Other,
}

impl MessageType {
    pub const ALL: [MessageType; 4] = [
        MessageType::Request,
        MessageType::Response,
        MessageType::Note,
        MessageType::Other,
    ];

    /// The type of a message that a user of this role writes; `internal` asks for a
    /// note, which only staff may write.
    pub fn written_by(role: Role, internal: bool) -> Result<Self, StaffOnly> {
        match (role, internal) {
            (Role::Customer, false) => Ok(MessageType::Request),
            (Role::Customer, true) => Err(StaffOnly),
            (Role::Staff | Role::Superuser, false) => Ok(MessageType::Response),
            (Role::Staff | Role::Superuser, true) => Ok(MessageType::Note),
        }
    }

    /// Only staff may see it, anywhere (messages, history, search, events).
    pub fn is_internal(self) -> bool {
        match self {
            MessageType::Note => true,
            MessageType::Request | MessageType::Response | MessageType::Other => false,
        }
    }

    /// Whether a ticket in `status` takes a message of this type. A canceled ticket's
    /// conversation is over, but staff may still note things on it.
    pub fn accepted_in(self, status: TicketStatus) -> bool {
        match (self, status) {
            (MessageType::Note, _) => true,
            (MessageType::Request | MessageType::Response | MessageType::Other, status) => {
                match status {
                    TicketStatus::Pending | TicketStatus::Resolved | TicketStatus::Unresolved => {
                        true
                    }
                    TicketStatus::Canceled => false,
                }
            }
        }
    }

    /// The statuses in which a ticket takes a message of this type, for adapters that
    /// check it in the statement that writes.
    pub fn accepting_statuses(self) -> Vec<TicketStatus> {
        TicketStatus::ALL
            .into_iter()
            .filter(|status| self.accepted_in(*status))
            .collect()
    }

    /// Whether posting it moves the ticket's `updated_at` and `version`: only what
    /// customers can see does, or those two would tell them that a note was written.
    pub fn moves_ticket(self) -> bool {
        !self.is_internal()
    }

    /// How much posting it grows the ticket's version: one for the visible event it
    /// records, none for a note's (the rule of [`crate::workflow::version_increment`]).
    pub fn version_increment(self) -> i64 {
        i64::from(self.moves_ticket())
    }

    /// Whether it is an answer by staff, which `resolved` needs. A note is not.
    pub fn is_response(self) -> bool {
        match self {
            MessageType::Response => true,
            MessageType::Request | MessageType::Note | MessageType::Other => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Request => "request",
            MessageType::Response => "response",
            MessageType::Note => "note",
            MessageType::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
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
    use TicketStatus::{Canceled, Pending, Resolved, Unresolved};

    #[test]
    fn staff_write_responses_and_notes_customers_requests_only() {
        use MessageType::{Note, Request, Response};
        assert_eq!(MessageType::written_by(Role::Customer, false), Ok(Request));
        assert_eq!(
            MessageType::written_by(Role::Customer, true),
            Err(StaffOnly)
        );
        for staff in [Role::Staff, Role::Superuser] {
            assert_eq!(MessageType::written_by(staff, false), Ok(Response));
            assert_eq!(MessageType::written_by(staff, true), Ok(Note));
        }
        for kind in MessageType::ALL {
            assert_eq!(MessageType::from_name(kind.as_str()), Some(kind));
        }
    }

    /// Written out independently of `accepted_in`: a canceled ticket takes notes only.
    #[test]
    fn canceled_tickets_take_notes_only() {
        for kind in MessageType::ALL {
            for status in TicketStatus::ALL {
                let expected = status != Canceled || kind == MessageType::Note;
                assert_eq!(kind.accepted_in(status), expected, "{kind:?} in {status}");
            }
        }
        assert_eq!(
            MessageType::Request.accepting_statuses(),
            [Pending, Resolved, Unresolved]
        );
        assert_eq!(MessageType::Note.accepting_statuses(), TicketStatus::ALL);
    }

    #[test]
    fn posting_grows_the_version_as_its_event_does() {
        let id = crate::MessageId::new(1).expect("positive");
        for kind in MessageType::ALL {
            let event = crate::event::EventData::message_posted(id, kind);
            assert_eq!(
                kind.version_increment(),
                crate::workflow::version_increment(&[event]),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_note_is_internal_moves_nothing_and_is_no_response() {
        let note = MessageType::Note;
        assert!(note.is_internal() && !note.moves_ticket() && !note.is_response());
        assert!(MessageType::Response.is_response() && MessageType::Response.moves_ticket());
        assert!(!MessageType::Request.is_response() && !MessageType::Request.is_internal());
    }
}
