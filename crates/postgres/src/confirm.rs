//! Confirming a request's caller together with the request's own statements, rather
//! than in a round trip of its own (the contract for
//! [`domain::ports::TicketRepository`]; the SQL function is migration V4's).
//!
//! A read sends the confirmation and its query together and fails when the
//! confirmation does, whatever the query found. A write sends it first in its
//! transaction: when it fails, the transaction is aborted before any of the write's
//! statements runs, and `COMMIT` rolls back.

use domain::ports::Viewer;
use domain::{Caller, Role};
use tokio_postgres::types::ToSql;

/// Fails with [`SQLSTATE`] unless user `$1` exists, is active, and has the role of the
/// flags `$2` (staff) and `$3` (superuser).
pub(crate) const CONFIRM_CALLER: &str = "SELECT confirm_caller($1, $2, $3)";

/// What `confirm_caller` raises (class TK is not PostgreSQL's own).
pub(crate) const SQLSTATE: &str = "TKC01";

/// A caller as the request assumes them, to confirm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallerClaim {
    user_id: i64,
    staff: bool,
    superuser: bool,
}

impl CallerClaim {
    pub(crate) fn of(caller: Caller) -> Self {
        Self::new(caller.id.get(), caller.role)
    }

    /// `None` for a viewer that is not the request's caller.
    pub(crate) fn of_viewer(viewer: &Viewer) -> Option<Self> {
        viewer
            .caller_role
            .map(|role| Self::new(viewer.user_id.get(), role))
    }

    fn new(user_id: i64, role: Role) -> Self {
        Self {
            user_id,
            staff: role.is_staff(),
            superuser: role.is_superuser(),
        }
    }

    /// The parameters of [`CONFIRM_CALLER`].
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.user_id, &self.staff, &self.superuser]
    }
}
