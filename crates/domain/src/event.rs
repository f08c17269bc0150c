//! The ticket event log: one event per change, written by the adapter in the same
//! transaction as the change it records. The history route reads it; the live stream
//! and webhooks are fed from it.

use time::OffsetDateTime;

use crate::ticket::UserRef;
use crate::{EventId, MessageId, MessageType, Priority, TicketId, TicketStatus, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    pub id: EventId,
    pub ticket_id: TicketId,
    pub created_at: OffsetDateTime,
    /// Who made the change; `None` for changes that no user made.
    pub actor: Option<UserRef>,
    pub data: EventData,
}

/// What happened, with the data that each type of event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// A ticket was opened (its first message has an event of its own).
    TicketCreated {
        topic: String,
        status: TicketStatus,
        priority: Priority,
    },
    /// A request or response was posted, the ticket's first message included.
    MessageCreated {
        message_id: MessageId,
        kind: MessageType,
    },
    /// An internal note was posted: staff only.
    NoteCreated {
        message_id: MessageId,
    },
    StatusChanged {
        from: TicketStatus,
        to: TicketStatus,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
    },
    /// The assignee changed; `None` is nobody.
    Assigned {
        from: Option<UserId>,
        to: Option<UserId>,
    },
}

impl EventData {
    /// Every event type's name, as `type_name` spells it.
    pub const TYPE_NAMES: [&'static str; 6] = [
        "ticket.created",
        "message.created",
        "note.created",
        "ticket.status_changed",
        "ticket.priority_changed",
        "ticket.assigned",
    ];

    /// The event that posting a message of this type records.
    pub fn message_posted(message_id: MessageId, kind: MessageType) -> Self {
        if kind.is_internal() {
            EventData::NoteCreated { message_id }
        } else {
            EventData::MessageCreated { message_id, kind }
        }
    }

    /// The name clients see (`type` in the history, `event:` in the stream).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventData::TicketCreated { .. } => "ticket.created",
            EventData::MessageCreated { .. } => "message.created",
            EventData::NoteCreated { .. } => "note.created",
            EventData::StatusChanged { .. } => "ticket.status_changed",
            EventData::PriorityChanged { .. } => "ticket.priority_changed",
            EventData::Assigned { .. } => "ticket.assigned",
        }
    }

    /// Only staff may see it: it would reveal an internal note.
    pub fn is_internal(&self) -> bool {
        match self {
            EventData::NoteCreated { .. } => true,
            EventData::TicketCreated { .. }
            | EventData::MessageCreated { .. }
            | EventData::StatusChanged { .. }
            | EventData::PriorityChanged { .. }
            | EventData::Assigned { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<EventData> {
        let id = MessageId::new(7).expect("positive");
        vec![
            EventData::TicketCreated {
                topic: "help".to_owned(),
                status: TicketStatus::Pending,
                priority: Priority::Normal,
            },
            EventData::message_posted(id, MessageType::Request),
            EventData::message_posted(id, MessageType::Note),
            EventData::StatusChanged {
                from: TicketStatus::Pending,
                to: TicketStatus::Resolved,
            },
            EventData::PriorityChanged {
                from: Priority::Normal,
                to: Priority::High,
            },
            EventData::Assigned {
                from: None,
                to: UserId::new(4),
            },
        ]
    }

    #[test]
    fn each_type_has_its_listed_name_and_only_notes_are_internal() {
        let names: Vec<&str> = every_kind().iter().map(EventData::type_name).collect();
        assert_eq!(names, EventData::TYPE_NAMES);
        let internal: Vec<&str> = every_kind()
            .iter()
            .filter(|e| e.is_internal())
            .map(EventData::type_name)
            .collect();
        assert_eq!(internal, ["note.created"]);
    }
}
