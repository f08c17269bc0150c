//! The schema migrations (the SQL files in the repository's `migrations/`, embedded at
//! compile time) and how they are applied when several replicas start at once.

use deadpool_postgres::{Object, Pool};
use tokio_postgres::Client;

mod embedded {
    // The macro's generated `runner()` unwraps the parsing of files it has already
    // validated at compile time.
    #![allow(clippy::unwrap_used)]
    refinery::embed_migrations!("../../migrations");
}

/// The advisory lock that serialises migrating a database. Advisory locks are scoped to
/// the current database, so replicas of other databases never wait for each other.
/// ("tickets" in ASCII, so that it is recognisable in `pg_locks`.)
const MIGRATION_LOCK_KEY: i64 = 0x0074_6963_6b65_7473;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("no database connection for migrating")]
    Connection(#[source] deadpool_postgres::PoolError),
    /// Preparing the migration session, or taking or releasing its lock, failed.
    #[error("the migration session failed")]
    Session(#[source] tokio_postgres::Error),
    #[error("applying the migrations failed")]
    Apply(#[source] refinery::Error),
}

/// Applies the pending migrations, each exactly once even when several processes call
/// this at the same time: they queue on a PostgreSQL advisory lock, and each finds the
/// ones before it already applied.
///
/// # Errors
/// When the database is unreachable or a migration fails; the failed migration's
/// transaction is rolled back.
pub async fn run_migrations(pool: &Pool) -> Result<(), MigrationError> {
    let mut connection = pool.get().await.map_err(MigrationError::Connection)?;
    let result = migrate_locked(&mut connection).await;
    // The session was changed (no statement timeout) and, after a failure, may still
    // hold the lock; closing it rather than returning it to the pool undoes both.
    drop(Object::take(connection));
    result
}

/// Applies the migrations on one connection, holding the migration lock meanwhile.
pub(crate) async fn migrate_locked(client: &mut Client) -> Result<(), MigrationError> {
    // Waiting for another replica's migration, and the migrations themselves, may well
    // take longer than the statement timeout meant for requests. The wait for the lock
    // is therefore unbounded: a replica waits as long as another one migrates.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .map_err(MigrationError::Session)?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(MigrationError::Session)?;
    let applied = embedded::migrations::runner().run_async(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    let report = applied.map_err(MigrationError::Apply)?;
    unlocked.map_err(MigrationError::Session)?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied database migration");
    }
    Ok(())
}

/// A short fingerprint of the embedded migrations (names, versions and contents), so
/// that test templates built from different migrations never mix.
#[cfg(feature = "test-support")]
pub(crate) fn migrations_fingerprint() -> String {
    // FNV-1a over refinery's own checksums: stable across builds and processes, unlike
    // `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in embedded::migrations::runner().get_migrations() {
        for byte in u64::from(migration.version())
            .to_le_bytes()
            .into_iter()
            .chain(migration.checksum().to_le_bytes())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{:012x}", hash >> 16)
}
