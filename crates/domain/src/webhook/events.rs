use crate::event::EventData;
use crate::values::reject_nul;
use crate::ValidationError;

/// The event types a subscription receives: all of them (`["*"]`, including types
/// added later), or some of the History types, each once, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelection {
    All,
    Only(Vec<&'static str>),
}

impl EventSelection {
    /// The wildcard: every type.
    pub const ALL: &'static str = "*";

    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(invalid(
                "The field `events` must list at least one event type, or be [\"*\"].",
            ));
        }
        for name in raw {
            reject_nul("events", name.as_ref())?;
        }
        if raw.iter().any(|name| name.as_ref() == Self::ALL) {
            return if raw.iter().all(|name| name.as_ref() == Self::ALL) {
                Ok(EventSelection::All)
            } else {
                Err(invalid(
                    "In the field `events`, \"*\" (every type) stands alone: [\"*\"].",
                ))
            };
        }
        let mut types: Vec<&'static str> = Vec::with_capacity(raw.len());
        for name in raw {
            let known = EventData::TYPE_NAMES
                .into_iter()
                .find(|known| *known == name.as_ref())
                .ok_or_else(|| {
                    invalid(
                        "The field `events` holds an unknown event type; the types are \
                         ticket.created, message.created, note.created, \
                         ticket.status_changed, ticket.priority_changed and ticket.assigned.",
                    )
                })?;
            if !types.contains(&known) {
                types.push(known);
            }
        }
        Ok(EventSelection::Only(types))
    }

    /// The selection as stored and shown: `["*"]` or the type names.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            EventSelection::All => vec![Self::ALL],
            EventSelection::Only(types) => types.clone(),
        }
    }

    /// Whether an event of this type is delivered.
    pub fn selects(&self, type_name: &str) -> bool {
        match self {
            EventSelection::All => true,
            EventSelection::Only(types) => types.contains(&type_name),
        }
    }
}

fn invalid(message: &str) -> ValidationError {
    ValidationError::new("events", "events_invalid", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[&str]) -> Result<EventSelection, &'static str> {
        EventSelection::parse(raw).map_err(|e| e.code)
    }

    #[test]
    fn the_wildcard_alone_selects_every_type() {
        assert_eq!(parse(&["*"]), Ok(EventSelection::All));
        assert_eq!(parse(&["*", "*"]), Ok(EventSelection::All));
        let all = parse(&["*"]).expect("valid");
        for name in EventData::TYPE_NAMES {
            assert!(all.selects(name));
        }
        assert_eq!(all.names(), ["*"]);
    }

    #[test]
    fn a_list_selects_its_types_once_each_in_order() {
        let some = parse(&["ticket.assigned", "note.created", "ticket.assigned"]).expect("valid");
        assert_eq!(some.names(), ["ticket.assigned", "note.created"]);
        assert!(some.selects("note.created"));
        assert!(!some.selects("ticket.created"));
        let every = parse(&EventData::TYPE_NAMES).expect("valid");
        assert_eq!(every.names(), EventData::TYPE_NAMES);
    }

    #[test]
    fn refuses_empty_unknown_and_mixed_lists() {
        for raw in [
            &[][..],
            &["ticket.deleted"],
            &["Ticket.Created"],
            &[""],
            &["*", "ticket.created"],
            &["ticket.created", "all"],
        ] {
            assert_eq!(parse(raw), Err("events_invalid"), "{raw:?}");
        }
        assert_eq!(parse(&["ticket.created\0"]), Err("nul_character"));
    }
}
