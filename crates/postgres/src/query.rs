//! Running statements that are prepared once per connection: the first use on a
//! connection parses and plans the SQL, later uses send only the parameters.

use deadpool_postgres::ClientWrapper;
use domain::RepositoryError;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// All rows of `sql`.
pub(crate) async fn rows(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, RepositoryError> {
    let statement = client.prepare_cached(sql).await.map_err(error::db)?;
    client.query(&statement, params).await.map_err(error::db)
}

/// All rows of `sql`, planned for these parameters: an unnamed statement, parsed and
/// planned on every run (one more round trip), for queries whose best plan depends on
/// the values (see `tickets::TicketListQuery`).
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
