//! Database failures as the domain sees them: [`RepositoryError::unavailable`] for what
//! a retry may cure (the database unreachable, restarting, out of connections, a
//! statement cancelled by its timeout, a lost serialization race), answered with 503;
//! [`RepositoryError::unexpected`] for everything else (a refused statement, a row
//! that does not decode), a bug answered with 500, so that bugs are not disguised as
//! outages; and [`RepositoryError::caller_changed`] for a caller that
//! `confirm_caller` did not confirm (see `confirm`).

use deadpool_postgres::PoolError;
use domain::RepositoryError;
use tokio_postgres::error::SqlState;

/// Classifies a driver error.
pub(crate) fn db(error: tokio_postgres::Error) -> RepositoryError {
    if error.code().map(SqlState::code) == Some(crate::confirm::SQLSTATE) {
        RepositoryError::caller_changed(error)
    } else if is_transient(&error) {
        RepositoryError::unavailable(error)
    } else {
        RepositoryError::unexpected(error)
    }
}

/// Classifies a pool error: waiting or connecting timed out, connecting failed, or the
/// pool is closed (the process is stopping). Whatever makes connecting fail (refused,
/// the database missing or not accepting connections, too many clients, a password
/// rotated under the service) is an outage, not a bug in this request.
pub(crate) fn pool(error: PoolError) -> RepositoryError {
    match error {
        PoolError::Backend(e) => RepositoryError::unavailable(e),
        PoolError::Timeout(_) | PoolError::Closed => RepositoryError::unavailable(error),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            RepositoryError::unexpected(error)
        }
    }
}

fn is_transient(error: &tokio_postgres::Error) -> bool {
    if let Some(code) = error.code() {
        return is_transient_sqlstate(code.code());
    }
    if error.is_closed() || has_io_cause(error) {
        return true;
    }
    // The driver's connection-level kinds have no SQLSTATE and no public kind; their
    // texts are stable (tokio-postgres' `error/mod.rs`).
    matches!(
        error.to_string().as_str(),
        "error connecting to server"
            | "timeout waiting for server"
            | "error communicating with the server"
    )
}

fn has_io_cause(error: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if inner.is::<std::io::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// SQLSTATEs worth a retry: connection exceptions (08), insufficient resources (53:
/// too many connections, out of memory or disk), the server shutting down or starting
/// (57P01–57P05), a statement cancelled by `statement_timeout` (57014), serialization
/// failures and deadlocks (40001, 40P01), a lock not available (55P03), and system
/// errors (58).
fn is_transient_sqlstate(code: &str) -> bool {
    let class = code.get(..2).unwrap_or_default();
    matches!(class, "08" | "53" | "58")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P04" | "57P05" | "57014" | "40001" | "40P01" | "55P03"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_transient_and_bugs_are_not() {
        for code in [
            "08006", "08001", "53300", "53100", "57P01", "57P03", "57014", "40001", "40P01",
            "58030",
        ] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in [
            "23505", "23503", "42601", "42P01", "22P02", "XX000", "P0001", "",
        ] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn pool_timeouts_are_unavailable() {
        use domain::RepositoryErrorKind::{Unavailable, Unexpected};
        let timeout = pool(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait));
        assert_eq!(timeout.kind(), Unavailable);
        assert_eq!(pool(PoolError::Closed).kind(), Unavailable);
        assert_eq!(pool(PoolError::NoRuntimeSpecified).kind(), Unexpected);
    }
}
