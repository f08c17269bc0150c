//! Who may see what, written once as SQL fragments that every statement splices in
//! (`concat!`), with the placeholders of its own parameters. The outcomes come from
//! the domain's [`domain::ports::Viewer`]: `sees_all` (staff see every ticket) and
//! `sees_internal` (staff see internal notes and their events).

/// The ticket `$t` is visible to the viewer `$viewer` (an id) given `$sees_all`.
macro_rules! ticket_visible {
    ($t:literal, $viewer:literal, $sees_all:literal) => {
        concat!("(", $t, ".author_id = ", $viewer, " OR ", $sees_all, ")")
    };
}

/// The message `$m` is visible given `$internal_types` (the types only staff see) and
/// `$sees_internal`.
macro_rules! message_visible {
    ($m:literal, $internal_types:literal, $sees_internal:literal) => {
        concat!(
            "(",
            $m,
            ".type <> ALL (",
            $internal_types,
            ") OR ",
            $sees_internal,
            ")"
        )
    };
}

/// The event `$e` is visible given `$sees_internal`.
macro_rules! event_visible {
    ($e:literal, $sees_internal:literal) => {
        concat!("(NOT ", $e, ".internal OR ", $sees_internal, ")")
    };
}

pub(crate) use {event_visible, message_visible, ticket_visible};

/// The message types that only staff see, as the domain decides, for the
/// `$internal_types` of [`message_visible!`].
pub(crate) fn internal_message_types() -> Vec<crate::enums::DbMessageType> {
    domain::MessageType::ALL
        .into_iter()
        .filter(|kind| kind.is_internal())
        .map(crate::enums::DbMessageType)
        .collect()
}
