//! [`LoginFailureRepository`] on PostgreSQL: one row per scope and key in
//! `login_failures` (migration V3), shared by every replica. Each operation is one
//! statement; counting is an `INSERT … ON CONFLICT DO UPDATE`, atomic per key, so that
//! concurrent failures on any replicas are all counted.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::throttle::{FailureWindow, Failures, LoginFailureRepository, ThrottleKeys};
use domain::RepositoryError;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::pool::connection;
use crate::{query, rows};

/// The windows of an account (`$1`) and an address (`$2`, NULL for none).
const FAILURES: &str = concat!(
    "SELECT scope, window_start, failures FROM login_failures ",
    "WHERE (scope, key) IN (('account', $1::text), ('address', $2::text))"
);

/// Counts a failure of the account (`$1`) and the address (`$2`, NULL for none) at `$3`:
/// a window that started at or before `$4` has ended and starts again. The SET
/// expressions all see the row as it was. The account's row is locked before the
/// address's, in every statement, so that two never wait for each other. The count
/// stops growing at the largest integer (a count that high throttles anyway).
const RECORD_FAILURE: &str = concat!(
    "INSERT INTO login_failures AS f (scope, key, window_start, failures) ",
    "SELECT scope, key, $3::timestamptz, 1 FROM (VALUES ('account', $1::text), ('address', $2::text)) ",
    "AS k (scope, key) WHERE key IS NOT NULL ORDER BY scope ",
    "ON CONFLICT (scope, key) DO UPDATE SET ",
    "window_start = CASE WHEN f.window_start <= $4::timestamptz THEN EXCLUDED.window_start ",
    "ELSE f.window_start END, ",
    "failures = CASE WHEN f.window_start <= $4 THEN 1 ",
    "ELSE least(f.failures, 2147483646) + 1 END"
);

const FORGIVE_ACCOUNT: &str = "DELETE FROM login_failures WHERE scope = 'account' AND key = $1";

/// Deletes a batch of windows that started at or before `$1` (served by the index on
/// `window_start`). A row counted again meanwhile has a new version, which the `ctid`
/// no longer names, and the repeated condition keeps it anyway.
const FORGET_WINDOWS: &str = concat!(
    "DELETE FROM login_failures WHERE ctid = ANY (ARRAY(",
    "SELECT ctid FROM login_failures WHERE window_start <= $1 LIMIT $2)) ",
    "AND window_start <= $1"
);
const FORGET_BATCH: i64 = 10_000;

/// Login failures in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgLoginFailureRepository {
    pool: Pool,
}

impl PgLoginFailureRepository {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl LoginFailureRepository for PgLoginFailureRepository {
    async fn failures(&self, keys: &ThrottleKeys) -> Result<Failures, RepositoryError> {
        let client = connection(&self.pool).await?;
        let found = query::rows(&client, FAILURES, &[&keys.account(), &keys.address()]).await?;
        let mut failures = Failures::default();
        for row in &found {
            let window = Some(failure_window(row)?);
            match rows::column::<&str>(row, "scope")? {
                "account" => failures.account = window,
                "address" => failures.address = window,
                other => return Err(RepositoryError::msg(format!("throttle scope {other:?}"))),
            }
        }
        Ok(failures)
    }

    async fn record_failure(
        &self,
        keys: &ThrottleKeys,
        now: OffsetDateTime,
        ended: OffsetDateTime,
    ) -> Result<(), RepositoryError> {
        let client = connection(&self.pool).await?;
        let params: query::Params<'_> = &[&keys.account(), &keys.address(), &now, &ended];
        query::rows(&client, RECORD_FAILURE, params).await?;
        Ok(())
    }

    async fn forgive_account(&self, account: &str) -> Result<(), RepositoryError> {
        let client = connection(&self.pool).await?;
        query::rows(&client, FORGIVE_ACCOUNT, &[&account]).await?;
        Ok(())
    }

    async fn forget_windows(&self, ended: OffsetDateTime) -> Result<u64, RepositoryError> {
        let client = connection(&self.pool).await?;
        query::delete_in_batches(&client, FORGET_WINDOWS, ended, FORGET_BATCH).await
    }
}

fn failure_window(row: &Row) -> Result<FailureWindow, RepositoryError> {
    let failures: i32 = rows::column(row, "failures")?;
    Ok(FailureWindow {
        started: rows::column(row, "window_start")?,
        failures: u32::try_from(failures)
            .map_err(|_| RepositoryError::msg(format!("negative failure count {failures}")))?,
    })
}
