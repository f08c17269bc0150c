//! Running statements that are prepared once per connection: the first use on a
//! connection parses and plans the SQL, later uses send only the parameters.
//!
//! Each runs in a `db.query` span (at `debug`) naming its statement, so that the logs
//! show the time each statement of a request took (`docs/operations.md`).

use std::future::Future;

use deadpool_postgres::ClientWrapper;
use domain::RepositoryError;
use futures_util::future::join;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::confirm::{CallerClaim, CURRENT_ROLE};
use crate::error;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// All rows of `sql`.
#[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(sql = %summary(sql)))]
pub(crate) async fn rows(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, RepositoryError> {
    let statement = client.prepare_cached(sql).await.map_err(error::db)?;
    client.query(&statement, params).await.map_err(error::db)
}

/// `work`'s result once `caller`, if any, is confirmed (see `confirm`): the
/// confirmation is sent first and `work`'s statement right behind it, so both travel
/// in one round trip (tokio-postgres sends a request when its future is first polled,
/// and `join` polls in order). `work` must be the only statement on `client` meanwhile.
#[tracing::instrument(level = "debug", name = "db.confirm_caller", skip_all, fields(confirming = caller.is_some()))]
pub(crate) async fn confirmed<T>(
    client: &ClientWrapper,
    caller: Option<CallerClaim>,
    work: impl Future<Output = Result<T, RepositoryError>>,
) -> Result<T, RepositoryError> {
    let Some(caller) = caller else {
        return work.await;
    };
    let lookup = client
        .prepare_cached(CURRENT_ROLE)
        .await
        .map_err(error::db)?;
    let (current, result) = join(client.query_opt(&lookup, &[caller.user_id()]), work).await;
    let current = current.map_err(error::db)?;
    if !caller.matches(current.as_ref())? {
        return Err(RepositoryError::caller_changed(
            "the caller is not as the request assumed",
        ));
    }
    result
}

/// All rows of `sql`, planned for these parameters: an unnamed statement, parsed and
/// planned on every run (one more round trip), for queries whose best plan depends on
/// the values (see `tickets::TicketListQuery`).
#[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(sql = %summary(sql)))]
pub(crate) async fn rows_planned_each_time(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, RepositoryError> {
    client.query(sql, params).await.map_err(error::db)
}

/// The one row of `sql`, if any (more than one is an error).
pub(crate) async fn optional_row(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, RepositoryError> {
    raw_optional_row(client, sql, params)
        .await
        .map_err(error::db)
}

/// Like [`optional_row`], keeping the driver's error for callers that translate
/// particular SQLSTATEs into domain errors.
#[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(sql = %summary(sql)))]
pub(crate) async fn raw_optional_row(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query_opt(&statement, params).await
}

/// The one row that `sql` always returns.
pub(crate) async fn one_row(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, RepositoryError> {
    optional_row(client, sql, params)
        .await?
        .ok_or_else(|| RepositoryError::msg("a statement that returns a row returned none"))
}

/// Runs `sql`, a DELETE of at most `$2` rows older than `$1`, until a run deletes fewer
/// than `batch`, so that no statement holds many row locks or runs for long; returns
/// how many rows it deleted.
#[tracing::instrument(level = "debug", name = "db.query", skip_all, fields(sql = %summary(sql)))]
pub(crate) async fn delete_in_batches(
    client: &ClientWrapper,
    sql: &str,
    cutoff: OffsetDateTime,
    batch: i64,
) -> Result<u64, RepositoryError> {
    let statement = client.prepare_cached(sql).await.map_err(error::db)?;
    let mut deleted = 0;
    loop {
        let run = client
            .execute(&statement, &[&cutoff, &batch])
            .await
            .map_err(error::db)?;
        deleted += run;
        if run < batch.unsigned_abs() {
            return Ok(deleted);
        }
    }
}

/// The start of `sql`, white space collapsed: enough to recognise a statement in the
/// logs, short enough for every line.
pub(crate) fn summary(sql: &str) -> String {
    const LONGEST: usize = 80;
    let mut summary = String::with_capacity(LONGEST + 3);
    for word in sql.split_whitespace() {
        if summary.len() + word.len() + 1 > LONGEST {
            summary.push_str(" …");
            break;
        }
        if !summary.is_empty() {
            summary.push(' ');
        }
        summary.push_str(word);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn a_summary_is_the_statement_s_start_on_one_line() {
        assert_eq!(summary("SELECT 1"), "SELECT 1");
        assert_eq!(
            summary("  SELECT id,\n       topic\n  FROM tickets "),
            "SELECT id, topic FROM tickets"
        );
        let long = format!("SELECT {} FROM t", "column_name, ".repeat(20));
        let cut = summary(&long);
        assert!(cut.len() <= 85 && cut.ends_with(" …"), "{cut}");
    }
}
