//! Typed ids, so that a ticket id can never be passed where a user id is expected.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            /// Accepts only positive ids, as the database's identity columns produce.
            pub fn new(value: i64) -> Option<Self> {
                (value > 0).then_some(Self(value))
            }

            /// Parses a path segment: anything but a positive 64-bit integer is `None`.
            pub fn parse(segment: &str) -> Option<Self> {
                if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                segment.parse::<i64>().ok().and_then(Self::new)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies a user.
    UserId
);
id_type!(
    /// Identifies a ticket.
    TicketId
);
id_type!(
    /// Identifies a message.
    MessageId
);
id_type!(
    /// Identifies an event of the ticket event log. Ids grow in commit order per ticket
    /// and are unique across the service.
    EventId
);
id_type!(
    /// Identifies a webhook subscription.
    WebhookId
);
id_type!(
    /// Identifies the delivery of one event to one webhook (all its attempts).
    DeliveryId
);
id_type!(
    /// Identifies one attempt of a delivery.
    AttemptId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_positive_64_bit_integers() {
        assert_eq!(TicketId::parse("42").map(TicketId::get), Some(42));
        assert_eq!(
            TicketId::parse("9223372036854775807").map(TicketId::get),
            Some(i64::MAX)
        );
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "abc",
            "9223372036854775808",
            "1e3",
        ] {
            assert_eq!(TicketId::parse(bad), None, "{bad:?} must not parse");
        }
    }
}
