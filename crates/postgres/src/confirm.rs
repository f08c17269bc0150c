//! Confirming a request's caller together with the request's own statements, rather
//! than in a round trip of its own (the contract for
//! [`domain::ports::TicketRepository`]; the SQL function is migration V4's).
//!
//! A read sends a lookup of the caller ([`CURRENT_ROLE`]) and its query together, and
//! fails when the caller is not as claimed, whatever the query found. A write sends
//! [`CONFIRM_CALLER`] first in its transaction: when it fails, the transaction is
//! aborted before any of the write's statements runs, and `COMMIT` rolls back. (A read
//! could use the function too, but a plain indexed lookup costs PostgreSQL less than a
//! PL/pgSQL call, and reads are most requests.)

use domain::ports::Viewer;
use domain::{Caller, RepositoryError, Role};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::rows;

/// Fails with [`SQLSTATE`] unless user `$1` exists, is active, and has the role of the
/// flags `$2` (staff) and `$3` (superuser).
pub(crate) const CONFIRM_CALLER: &str = "SELECT confirm_caller($1, $2, $3)";

/// What `confirm_caller` raises (class TK is not PostgreSQL's own).
pub(crate) const SQLSTATE: &str = "TKC01";

/// The caller's role flags, if they exist and are active: compared in Rust with the
/// claim ([`CallerClaim::matches`]).
pub(crate) const CURRENT_ROLE: &str =
    "SELECT is_staff, is_superuser FROM users WHERE id = $1 AND is_active";

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

    /// The parameter of [`CURRENT_ROLE`].
    pub(crate) fn user_id(&self) -> &i64 {
        &self.user_id
    }

    /// Does [`CURRENT_ROLE`]'s answer (`None`: no such active user) confirm the claim?
    pub(crate) fn matches(&self, current: Option<&Row>) -> Result<bool, RepositoryError> {
        let Some(row) = current else {
            return Ok(false);
        };
        let staff: bool = rows::column(row, "is_staff")?;
        let superuser: bool = rows::column(row, "is_superuser")?;
        Ok(staff == self.staff && superuser == self.superuser)
    }

    /// The parameters of [`CONFIRM_CALLER`].
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.user_id, &self.staff, &self.superuser]
    }
}
