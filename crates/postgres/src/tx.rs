//! Write transactions on a pooled connection, with as few round trips as the order of
//! the statements allows: `BEGIN` travels with the first statement, and the last
//! statements travel with `COMMIT`.
//!
//! Each round trip runs in a `db.transaction.*` span (at `debug`) naming its first
//! statement, like `query`'s.
//!
//! A transaction that is dropped while open (a request cancelled between two round
//! trips) takes its connection out of the pool and closes it, which makes PostgreSQL
//! roll it back; an open transaction never goes back into the pool.

use deadpool_postgres::Object;
use domain::RepositoryError;
use futures_util::future::{join, join_all};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::confirm::{CallerClaim, CONFIRM_CALLER};
use crate::error;
use crate::query::Params;

pub(crate) struct Tx {
    client: Option<Object>,
    begun: bool,
    /// `BEGIN` was sent and no `COMMIT` or `ROLLBACK` has answered since.
    open: bool,
    /// The caller to confirm first thing in the transaction, in its first round trip.
    confirm: Option<CallerClaim>,
}

impl Tx {
    /// A transaction on `client`; `BEGIN` is sent with the first statement.
    pub(crate) fn new(client: Object) -> Self {
        Self {
            client: Some(client),
            begun: false,
            open: false,
            confirm: None,
        }
    }

    /// A transaction that confirms `caller` before its first statement, in the same
    /// round trip (see `confirm`): when the caller is not as claimed, that round trip
    /// fails with `CallerChanged` and nothing after the confirmation runs.
    pub(crate) fn confirming(client: Object, caller: CallerClaim) -> Self {
        let mut tx = Self::new(client);
        tx.confirm = Some(caller);
        tx
    }

    fn client(&self) -> Result<&Object, RepositoryError> {
        self.client
            .as_ref()
            .ok_or_else(|| RepositoryError::msg("a finished transaction was used"))
    }

    /// Runs statements in order, in one round trip (with `BEGIN` before them if the
    /// transaction has not begun). Every statement runs; the first failure is returned
    /// after all have answered.
    #[tracing::instrument(level = "debug", name = "db.transaction.run", skip_all, fields(sql = %summary(statements), statements = statements.len()))]
    pub(crate) async fn run(
        &mut self,
        statements: &[(&str, Params<'_>)],
    ) -> Result<Vec<Vec<Row>>, RepositoryError> {
        let begin = !self.begun;
        if begin {
            self.open = true;
        }
        let confirm = self.confirm.take().filter(|_| begin);
        let confirm_params = confirm.as_ref().map(CallerClaim::params);
        let statements = with_confirmation(confirm_params.as_ref(), statements);
        let client = self.client()?;
        let prepared = prepare(client, &statements).await?;
        let queries = pipeline(client, &prepared, &statements);
        let results = if begin {
            let (begun, results) = join(client.batch_execute("BEGIN"), queries).await;
            begun.map_err(error::db)?;
            results
        } else {
            queries.await
        };
        self.begun = true;
        // The confirmation's failure comes first: it is why the rest failed too.
        let mut results = results
            .into_iter()
            .map(|rows| rows.map_err(error::db))
            .collect::<Result<Vec<_>, _>>()?;
        if confirm_params.is_some() {
            results.remove(0);
        }
        Ok(results)
    }

    /// Runs one statement and returns its rows.
    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, RepositoryError> {
        let mut results = self.run(&[(sql, params)]).await?;
        results
            .pop()
            .ok_or_else(|| RepositoryError::msg("a statement returned no result"))
    }

    /// Runs the last statements and `COMMIT` in one round trip (with `BEGIN` first if
    /// nothing ran before). When a statement fails, PostgreSQL answers `COMMIT` with a
    /// rollback, and the statement's error is returned.
    ///
    /// `after_commit` runs in the same round trip, after the `COMMIT` and outside the
    /// transaction. It is a courtesy to others (a notification): the write's outcome
    /// is settled by then, so its failure is logged, not returned.
    // The span's `async move` block hides from rustc that `Drop` reads `self.open`.
    #[allow(unused_assignments)]
    #[tracing::instrument(level = "debug", name = "db.transaction.commit", skip_all, fields(sql = %summary(statements), statements = statements.len()))]
    pub(crate) async fn commit_with(
        mut self,
        statements: &[(&str, Params<'_>)],
        after_commit: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let begin = !self.begun;
        self.open = true;
        let confirm = self.confirm.take().filter(|_| begin);
        let confirm_params = confirm.as_ref().map(CallerClaim::params);
        let statements = with_confirmation(confirm_params.as_ref(), statements);
        let statements = statements.as_slice();
        let client = self.client()?;
        let prepared = prepare(client, statements).await?;
        // Each request is sent when its future is first polled, and `join` polls in
        // order: BEGIN, the statements, COMMIT, then the after-commit statement.
        let begun = async {
            if begin {
                client.batch_execute("BEGIN").await
            } else {
                Ok(())
            }
        };
        let queries = pipeline(client, &prepared, statements);
        let after = async {
            match after_commit {
                Some(sql) => client.batch_execute(sql).await,
                None => Ok(()),
            }
        };
        let (((begun, results), committed), after) = join(
            join(join(begun, queries), client.batch_execute("COMMIT")),
            after,
        )
        .await;
        begun.map_err(error::db)?;
        committed.map_err(error::db)?;
        // COMMIT answered: the transaction is over, committed or rolled back.
        self.open = false;
        for result in results {
            result.map_err(error::db)?;
        }
        if let Err(failure) = after {
            tracing::warn!(error = %failure, "the statement after a commit failed");
        }
        Ok(())
    }

    /// Ends the transaction without writing, keeping the connection for the pool.
    // The span's `async move` block hides from rustc that `Drop` reads `self.open`.
    #[allow(unused_assignments)]
    #[tracing::instrument(level = "debug", name = "db.transaction.rollback", skip_all)]
    pub(crate) async fn rollback(mut self) -> Result<(), RepositoryError> {
        if !self.open {
            return Ok(());
        }
        let client = self.client()?;
        client.batch_execute("ROLLBACK").await.map_err(error::db)?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            if let Some(client) = self.client.take() {
                // Closing the connection rolls the transaction back.
                drop(Object::take(client));
            }
        }
    }
}

/// `statements`, after the confirmation of a caller when there is one (its parameters).
fn with_confirmation<'a>(
    confirm: Option<&'a [&'a (dyn ToSql + Sync); 3]>,
    statements: &[(&'a str, Params<'a>)],
) -> Vec<(&'a str, Params<'a>)> {
    let mut all = Vec::with_capacity(statements.len() + 1);
    if let Some(params) = confirm {
        all.push((CONFIRM_CALLER, &params[..]));
    }
    all.extend_from_slice(statements);
    all
}

/// The statements' queries, joined: polling sends each one's request in order before
/// any answer is awaited (tokio-postgres sends a request when its future is first
/// polled).
fn pipeline<'a>(
    client: &'a Object,
    prepared: &'a [tokio_postgres::Statement],
    statements: &'a [(&'a str, Params<'a>)],
) -> impl std::future::Future<Output = Vec<Result<Vec<Row>, tokio_postgres::Error>>> + 'a {
    join_all(
        prepared
            .iter()
            .zip(statements)
            .map(|(statement, (_, params))| client.query(statement, params)),
    )
}

/// Prepares (or finds in the connection's cache) every statement before any is sent,
/// so that a pipeline never waits on a `Parse` between two of its statements (which
/// would let a later `COMMIT` overtake them).
async fn prepare(
    client: &Object,
    statements: &[(&str, Params<'_>)],
) -> Result<Vec<tokio_postgres::Statement>, RepositoryError> {
    let mut prepared = Vec::with_capacity(statements.len());
    for (sql, _) in statements {
        prepared.push(client.prepare_cached(sql).await.map_err(error::db)?);
    }
    Ok(prepared)
}

/// The first statement's summary (see `query::summary`), for the span.
fn summary(statements: &[(&str, Params<'_>)]) -> String {
    statements.first().map_or_else(
        || "COMMIT".to_owned(),
        |(sql, _)| crate::query::summary(sql),
    )
}
