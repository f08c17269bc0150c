//! The one place where the domain's enums meet the database's enum types
//! (`ticket_status`, `ticket_priority`, `message_type`, `webhook_delivery_state`): their labels, and `ToSql`/`FromSql` wrappers so
//! that parameters are sent as the enum type itself.
//!
//! Typed parameters matter to the planner: `status = ANY($1::text[]::ticket_status[])`
//! is not folded into a constant (enum input is not immutable), so it could not use
//! the status index or its statistics; `status = ANY($1)` with a `ticket_status[]`
//! parameter can.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use domain::webhook::retry::DeliveryState;
use domain::{MessageType, Priority, TicketStatus};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, Kind, ToSql, Type};

/// The `ticket_status` label of a status.
pub(crate) fn status_label(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Pending => "pending",
        TicketStatus::Resolved => "resolved",
        TicketStatus::Unresolved => "unresolved",
        TicketStatus::Canceled => "canceled",
    }
}

fn parse_status(label: &str) -> Option<TicketStatus> {
    TicketStatus::ALL
        .into_iter()
        .find(|status| status_label(*status) == label)
}

/// The `ticket_priority` label of a priority.
pub(crate) fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

fn parse_priority(label: &str) -> Option<Priority> {
    Priority::ALL
        .into_iter()
        .find(|priority| priority_label(*priority) == label)
}

/// The `message_type` label of a message type.
pub(crate) fn message_type_label(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Request => "request",
        MessageType::Response => "response",
        MessageType::Note => "note",
        MessageType::Other => "other",
    }
}

fn parse_message_type(label: &str) -> Option<MessageType> {
    MessageType::ALL
        .into_iter()
        .find(|kind| message_type_label(*kind) == label)
}

/// The `webhook_delivery_state` label of a delivery's state.
pub(crate) fn delivery_state_label(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
    }
}

fn parse_delivery_state(label: &str) -> Option<DeliveryState> {
    DeliveryState::ALL
        .into_iter()
        .find(|state| delivery_state_label(*state) == label)
}

/// Declares a wrapper that reads and writes a domain enum as a PostgreSQL enum type.
/// An enum's binary wire format is its label.
macro_rules! db_enum {
    ($(#[$doc:meta])* $wrapper:ident($domain:ty), $pg_name:literal, $label:path, $parse:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) struct $wrapper(pub(crate) $domain);

        impl ToSql for $wrapper {
            fn to_sql(
                &self,
                _ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
                out.put_slice($label(self.0).as_bytes());
                Ok(IsNull::No)
            }

            fn accepts(ty: &Type) -> bool {
                ty.name() == $pg_name && matches!(ty.kind(), Kind::Enum(_))
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $wrapper {
            fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
                let label = std::str::from_utf8(raw)?;
                $parse(label).map($wrapper).ok_or_else(|| {
                    format!(concat!("unknown ", $pg_name, " label {:?}"), label).into()
                })
            }

            fn accepts(ty: &Type) -> bool {
                <Self as ToSql>::accepts(ty)
            }
        }
    };
}

db_enum!(
    /// A ticket status as a `ticket_status` value.
    DbStatus(TicketStatus),
    "ticket_status",
    status_label,
    parse_status
);

db_enum!(
    /// A priority as a `ticket_priority` value.
    DbPriority(Priority),
    "ticket_priority",
    priority_label,
    parse_priority
);

db_enum!(
    /// A message type as a `message_type` value.
    DbMessageType(MessageType),
    "message_type",
    message_type_label,
    parse_message_type
);

db_enum!(
    /// A webhook delivery's state as a `webhook_delivery_state` value.
    DbDeliveryState(DeliveryState),
    "webhook_delivery_state",
    delivery_state_label,
    parse_delivery_state
);

#[cfg(test)]
mod tests {
    use super::*;

    fn enum_type(name: &str, labels: &[&str]) -> Type {
        Type::new(
            name.to_owned(),
            0,
            Kind::Enum(labels.iter().map(|l| (*l).to_owned()).collect()),
            "public".to_owned(),
        )
    }

    #[test]
    fn labels_round_trip_and_match_the_migration() {
        let migrations = concat!(
            include_str!("../../../migrations/V1__initial_schema.sql"),
            include_str!("../../../migrations/V2__workflow_and_event_log.sql"),
            include_str!("../../../migrations/V3__webhooks_and_shared_throttle.sql"),
        );
        for status in TicketStatus::ALL {
            assert_eq!(parse_status(status_label(status)), Some(status));
            assert!(migrations.contains(&format!("'{}'", status_label(status))));
        }
        for priority in Priority::ALL {
            assert_eq!(parse_priority(priority_label(priority)), Some(priority));
            assert!(migrations.contains(&format!("'{}'", priority_label(priority))));
        }
        for kind in MessageType::ALL {
            assert_eq!(parse_message_type(message_type_label(kind)), Some(kind));
            assert!(migrations.contains(&format!("'{}'", message_type_label(kind))));
        }
        for state in DeliveryState::ALL {
            assert_eq!(
                parse_delivery_state(delivery_state_label(state)),
                Some(state)
            );
            assert!(migrations.contains(&format!("'{}'", delivery_state_label(state))));
        }
        assert_eq!(parse_status("Pending"), None);
        assert_eq!(parse_message_type(""), None);
    }

    #[test]
    fn wrappers_write_and_read_the_label_of_their_own_type_only() {
        let ticket_status = enum_type("ticket_status", &["pending"]);
        let message_type = enum_type("message_type", &["request"]);
        assert!(<DbStatus as ToSql>::accepts(&ticket_status));
        assert!(!<DbStatus as ToSql>::accepts(&message_type));
        assert!(!<DbStatus as ToSql>::accepts(&Type::TEXT));
        assert!(<DbMessageType as FromSql>::accepts(&message_type));

        let mut out = BytesMut::new();
        DbStatus(TicketStatus::Unresolved)
            .to_sql(&ticket_status, &mut out)
            .expect("encode");
        assert_eq!(&out[..], b"unresolved");
        let read = DbStatus::from_sql(&ticket_status, b"canceled").expect("decode");
        assert_eq!(read, DbStatus(TicketStatus::Canceled));
        assert!(DbStatus::from_sql(&ticket_status, b"open").is_err());
        assert!(DbMessageType::from_sql(&message_type, b"\xff").is_err());
    }
}
