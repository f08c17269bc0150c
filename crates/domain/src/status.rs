//! Ticket statuses and the one rule that says who may move a ticket from which status
//! to which. The rule is a pure function written as exhaustive matches (no `_` arm),
//! so adding a status does not compile until every transition is decided.

use std::fmt;
use std::str::FromStr;

/// The status of a ticket. New tickets are `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    Pending,
    Resolved,
    Unresolved,
    Canceled,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] = [
        TicketStatus::Pending,
        TicketStatus::Resolved,
        TicketStatus::Unresolved,
        TicketStatus::Canceled,
    ];

    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Pending => "pending",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Unresolved => "unresolved",
            TicketStatus::Canceled => "canceled",
        }
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the four status names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ticket status")]
pub struct UnknownStatus;

impl FromStr for TicketStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TicketStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// How the caller stands to the ticket, which is all the rule needs to know of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The caller wrote the ticket.
    pub is_author: bool,
    /// The caller is staff or a superuser.
    pub is_staff: bool,
}

/// Why a status change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// This caller may never set this status, whatever the ticket's state (400).
    #[error("this caller may not set the status `{0}`")]
    NotPermitted(TicketStatus),
    /// A canceled ticket is final (409).
    #[error("the ticket is canceled; its status cannot change")]
    TicketCanceled,
    /// Only pending or unresolved tickets can be canceled (409).
    #[error("a resolved ticket cannot be canceled")]
    CannotCancelResolved,
    /// `resolved` needs at least one response message (409).
    #[error("a ticket can be resolved only after staff have responded")]
    ResponseRequired,
}

/// What a permitted request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The ticket already has the requested status: nothing changes.
    Unchanged,
    /// The status moves to the requested one.
    Change,
}

/// May a caller of this standing set `target` at all (whatever the ticket's state)?
///
/// The author (any role) may cancel; staff may set pending, resolved and unresolved.
pub fn may_set(standing: Standing, target: TicketStatus) -> bool {
    match target {
        TicketStatus::Canceled => standing.is_author,
        TicketStatus::Pending | TicketStatus::Resolved | TicketStatus::Unresolved => {
            standing.is_staff
        }
    }
}

/// The status rule of the contract: may a caller of this `standing` move a ticket
/// from `from` to `target`, given whether the ticket `has_response`?
pub fn decide(
    standing: Standing,
    from: TicketStatus,
    target: TicketStatus,
    has_response: bool,
) -> Result<Transition, TransitionError> {
    if !may_set(standing, target) {
        return Err(TransitionError::NotPermitted(target));
    }
    if from == target {
        return Ok(Transition::Unchanged);
    }
    match (from, target) {
        (TicketStatus::Canceled, TicketStatus::Pending)
        | (TicketStatus::Canceled, TicketStatus::Resolved)
        | (TicketStatus::Canceled, TicketStatus::Unresolved)
        | (TicketStatus::Canceled, TicketStatus::Canceled) => Err(TransitionError::TicketCanceled),
        (TicketStatus::Resolved, TicketStatus::Canceled) => {
            Err(TransitionError::CannotCancelResolved)
        }
        (TicketStatus::Pending, TicketStatus::Canceled)
        | (TicketStatus::Unresolved, TicketStatus::Canceled) => Ok(Transition::Change),
        (TicketStatus::Pending, TicketStatus::Resolved)
        | (TicketStatus::Unresolved, TicketStatus::Resolved)
        | (TicketStatus::Resolved, TicketStatus::Resolved) => {
            if has_response {
                Ok(Transition::Change)
            } else {
                Err(TransitionError::ResponseRequired)
            }
        }
        (TicketStatus::Pending, TicketStatus::Pending)
        | (TicketStatus::Pending, TicketStatus::Unresolved)
        | (TicketStatus::Resolved, TicketStatus::Pending)
        | (TicketStatus::Resolved, TicketStatus::Unresolved)
        | (TicketStatus::Unresolved, TicketStatus::Pending)
        | (TicketStatus::Unresolved, TicketStatus::Unresolved) => Ok(Transition::Change),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus::{Canceled, Pending, Resolved, Unresolved};
    use TransitionError::*;

    const CUSTOMER_AUTHOR: Standing = Standing {
        is_author: true,
        is_staff: false,
    };
    const STAFF: Standing = Standing {
        is_author: false,
        is_staff: true,
    };
    const STAFF_AUTHOR: Standing = Standing {
        is_author: true,
        is_staff: true,
    };
    const STRANGER: Standing = Standing {
        is_author: false,
        is_staff: false,
    };

    /// The contract's table, written out independently of `decide`: every
    /// (standing, from, to) triple, with and without a response on the ticket.
    fn expected(
        standing: Standing,
        from: TicketStatus,
        to: TicketStatus,
        has_response: bool,
    ) -> Result<Transition, TransitionError> {
        let author_may = standing.is_author && to == Canceled;
        let staff_may = standing.is_staff && to != Canceled;
        if !author_may && !staff_may {
            return Err(NotPermitted(to));
        }
        if from == to {
            return Ok(Transition::Unchanged);
        }
        if from == Canceled {
            return Err(TicketCanceled);
        }
        if to == Canceled && from == Resolved {
            return Err(CannotCancelResolved);
        }
        if to == Resolved && !has_response {
            return Err(ResponseRequired);
        }
        Ok(Transition::Change)
    }

    #[test]
    fn every_triple_follows_the_contract_table() {
        let mut checked = 0;
        for standing in [CUSTOMER_AUTHOR, STAFF, STAFF_AUTHOR, STRANGER] {
            for from in TicketStatus::ALL {
                for to in TicketStatus::ALL {
                    for has_response in [false, true] {
                        assert_eq!(
                            decide(standing, from, to, has_response),
                            expected(standing, from, to, has_response),
                            "{standing:?} {from} -> {to}, response: {has_response}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 4 * 4 * 2);
    }

    #[test]
    fn spot_checks_of_the_table() {
        assert_eq!(
            decide(CUSTOMER_AUTHOR, Pending, Canceled, false),
            Ok(Transition::Change)
        );
        assert_eq!(
            decide(CUSTOMER_AUTHOR, Unresolved, Canceled, false),
            Ok(Transition::Change)
        );
        assert_eq!(
            decide(CUSTOMER_AUTHOR, Resolved, Canceled, true),
            Err(CannotCancelResolved)
        );
        assert_eq!(
            decide(CUSTOMER_AUTHOR, Pending, Resolved, true),
            Err(NotPermitted(Resolved))
        );
        assert_eq!(
            decide(CUSTOMER_AUTHOR, Canceled, Canceled, false),
            Ok(Transition::Unchanged)
        );
        assert_eq!(
            decide(STAFF, Pending, Canceled, true),
            Err(NotPermitted(Canceled))
        );
        assert_eq!(
            decide(STAFF, Pending, Resolved, false),
            Err(ResponseRequired)
        );
        assert_eq!(
            decide(STAFF, Pending, Resolved, true),
            Ok(Transition::Change)
        );
        assert_eq!(
            decide(STAFF, Resolved, Pending, true),
            Ok(Transition::Change)
        );
        assert_eq!(decide(STAFF, Canceled, Pending, true), Err(TicketCanceled));
        assert_eq!(
            decide(STAFF, Resolved, Resolved, false),
            Ok(Transition::Unchanged)
        );
        assert_eq!(
            decide(STAFF_AUTHOR, Pending, Canceled, false),
            Ok(Transition::Change)
        );
        assert_eq!(
            decide(STRANGER, Pending, Pending, false),
            Err(NotPermitted(Pending))
        );
    }

    #[test]
    fn status_names_round_trip() {
        for status in TicketStatus::ALL {
            assert_eq!(status.as_str().parse::<TicketStatus>(), Ok(status));
        }
        assert_eq!("Pending".parse::<TicketStatus>(), Err(UnknownStatus));
        assert_eq!("".parse::<TicketStatus>(), Err(UnknownStatus));
    }
}
