//! The live feed of ticket events (`GET /events`): who may see which event, and what a
//! stream starts from. The fan-out itself is infrastructure (every replica tails the
//! event log); the rules are here.

use crate::event::TicketEvent;
use crate::ports::Viewer;
use crate::{EventId, TicketId, UserId};

/// An event with what deciding who may see it needs: its ticket's author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    pub event: TicketEvent,
    pub ticket_author: UserId,
}

impl Viewer {
    /// The rule of the history, applied to one event: the ticket must be the viewer's
    /// (or the viewer staff), and an internal event needs a viewer who sees internal
    /// things. Adapters that read the log apply the same rule in SQL.
    pub fn may_see(&self, event: &FeedEvent) -> bool {
        let ticket_visible = self.sees_all || event.ticket_author == self.user_id;
        let kind_visible = !event.event.data.is_internal() || self.sees_internal;
        ticket_visible && kind_visible
    }
}

/// Which events a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedFilter {
    pub viewer: Viewer,
    /// Only this ticket's events (`?ticket_id=`).
    pub ticket: Option<TicketId>,
}

impl FeedFilter {
    pub fn admits(&self, event: &FeedEvent) -> bool {
        self.viewer.may_see(event) && self.ticket.is_none_or(|id| id == event.event.ticket_id)
    }

    /// The one author on whose tickets lie all the events this filter admits, when
    /// there is one: a viewer who does not see every ticket sees only their own. A
    /// fan-out may then hand the stream that author's tickets' events alone, since it
    /// would drop every other (the filter still decides on each one it gets).
    pub fn only_author(&self) -> Option<UserId> {
        (!self.viewer.sees_all).then_some(self.viewer.user_id)
    }
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStart {
    /// After this event (`Last-Event-ID`): everything since, then live ones.
    After(EventId),
    /// From the log's first event (`Last-Event-ID: 0`).
    FromStart,
    /// With the events written from now on.
    Now,
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::event::EventData;
    use crate::{MessageId, MessageType};

    fn user(id: i64) -> UserId {
        UserId::new(id).expect("positive")
    }

    fn feed_event(author: i64, kind: MessageType) -> FeedEvent {
        FeedEvent {
            event: TicketEvent {
                id: EventId::new(9).expect("positive"),
                ticket_id: TicketId::new(3).expect("positive"),
                created_at: OffsetDateTime::UNIX_EPOCH,
                actor: None,
                data: EventData::message_posted(MessageId::new(1).expect("positive"), kind),
            },
            ticket_author: user(author),
        }
    }

    #[test]
    fn customers_see_their_own_tickets_visible_events_and_staff_see_all() {
        let customer = Viewer {
            user_id: user(1),
            sees_all: false,
            sees_internal: false,
            caller_role: None,
        };
        let staff = Viewer {
            user_id: user(2),
            sees_all: true,
            sees_internal: true,
            caller_role: None,
        };
        let own = feed_event(1, MessageType::Request);
        let foreign = feed_event(5, MessageType::Request);
        let note = feed_event(1, MessageType::Note);
        assert!(customer.may_see(&own));
        assert!(!customer.may_see(&foreign));
        assert!(!customer.may_see(&note));
        assert!(staff.may_see(&own) && staff.may_see(&foreign) && staff.may_see(&note));

        let one_ticket = FeedFilter {
            viewer: staff,
            ticket: TicketId::new(3),
        };
        let other_ticket = FeedFilter {
            viewer: staff,
            ticket: TicketId::new(4),
        };
        assert!(one_ticket.admits(&foreign));
        assert!(!other_ticket.admits(&foreign));
    }

    /// Over every kind of viewer and event: whatever a filter admits lies on its
    /// `only_author`'s tickets, so that a fan-out by author loses nothing.
    #[test]
    fn a_filter_admits_only_events_of_its_only_author() {
        let kinds = [
            MessageType::Request,
            MessageType::Response,
            MessageType::Note,
        ];
        for sees_all in [false, true] {
            for sees_internal in [false, true] {
                for ticket in [None, TicketId::new(3), TicketId::new(4)] {
                    let filter = FeedFilter {
                        viewer: Viewer {
                            user_id: user(1),
                            sees_all,
                            sees_internal,
                            caller_role: None,
                        },
                        ticket,
                    };
                    assert_eq!(filter.only_author().is_some(), !sees_all);
                    for author in [1, 2] {
                        for kind in kinds {
                            let event = feed_event(author, kind);
                            if let Some(only) = filter.only_author() {
                                assert!(
                                    !filter.admits(&event) || event.ticket_author == only,
                                    "{filter:?} admits {event:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
