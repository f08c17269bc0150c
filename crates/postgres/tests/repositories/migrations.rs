//! The migrations, the pool settings and the test databases themselves.

use std::time::Duration;

use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{create_pool, ping, run_migrations, Pool, PoolSettings};

/// The migration files in the repository.
fn migration_files() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let count = std::fs::read_dir(dir)
        .expect("migrations directory")
        .filter(|entry| {
            entry
                .as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count();
    i64::try_from(count).expect("few migrations")
}

/// A pool of its own on `url`, generous but for the statement timeout.
fn pool(url: &str, max_size: usize, statement_timeout: Duration) -> Pool {
    create_pool(&PoolSettings {
        url: url.to_owned(),
        max_size,
        wait_timeout: Duration::from_secs(30),
        create_timeout: Duration::from_secs(30),
        recycle_timeout: Duration::from_secs(30),
        statement_timeout,
    })
    .expect("pool")
}

async fn count(db: &TestDatabase, sql: &str) -> i64 {
    let client = db.pool().get().await.expect("connection");
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_apply_each_migration_once() {
    let db = TestDatabase::create_empty().await;
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' \
                  AND tablename IN ('users', 'tickets', 'messages')";
    assert_eq!(count(&db, tables).await, 0, "starts empty");

    // Separate pools, as separate replicas would have.
    let runs = (0..4).map(|_| {
        let pool = pool(db.url(), 1, Duration::from_secs(30));
        tokio::spawn(async move { run_migrations(&pool).await })
    });
    for run in futures_util::future::join_all(runs).await {
        run.expect("task").expect("migrations");
    }

    assert_eq!(count(&db, tables).await, 3);
    let history = "SELECT count(*) FROM refinery_schema_history";
    assert_eq!(count(&db, history).await, migration_files());
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT version) FROM refinery_schema_history"
        )
        .await,
        migration_files()
    );

    // Once more on an up-to-date database: nothing to do, and no error.
    run_migrations(db.pool()).await.expect("migrations again");
    assert_eq!(count(&db, history).await, migration_files());
    // The migration lock is not left behind.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn test_databases_are_migrated_separate_and_dropped() {
    let first = TestDatabase::create().await;
    let second = TestDatabase::create().await;
    assert_ne!(first.url(), second.url());
    assert_eq!(
        count(&first, "SELECT count(*) FROM refinery_schema_history").await,
        migration_files()
    );
    let client = first.pool().get().await.expect("connection");
    client
        .execute(
            "INSERT INTO users (email, username, password_hash) VALUES ('a@b.c', 'a', 'h')",
            &[],
        )
        .await
        .expect("insert");
    drop(client);
    assert_eq!(count(&first, "SELECT count(*) FROM users").await, 1);
    assert_eq!(count(&second, "SELECT count(*) FROM users").await, 0);

    let name = first.name().to_owned();
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
    assert_eq!(count(&second, &exists).await, 1);
    drop(first);
    assert_eq!(count(&second, &exists).await, 0, "dropped with its guard");
}

#[tokio::test]
async fn pool_connections_carry_their_session_settings() {
    let db = TestDatabase::create().await;
    let pool = pool(db.url(), 2, Duration::from_millis(250));
    ping(&pool).await.expect("ping");
    let client = pool.get().await.expect("connection");
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(timeout, "250ms");
    let plan_cache_mode: String = client
        .query_one("SHOW plan_cache_mode", &[])
        .await
        .expect("show")
        .get(0);
    // Default plan caching: the list queries are one text per shape instead.
    assert_eq!(plan_cache_mode, "auto");
    let slow = client.execute("SELECT pg_sleep(5)", &[]).await;
    let code = slow.expect_err("cancelled by the timeout").code().cloned();
    assert_eq!(code, Some(tokio_postgres::error::SqlState::QUERY_CANCELED));
}

/// actix-web runs each worker on its own runtime and stops them one by one at shutdown.
/// A connection first opened by a worker must survive that worker's runtime, or the
/// requests other workers run on it fail mid-flight.
#[tokio::test]
async fn pooled_connections_outlive_the_runtime_that_first_asked_for_them() {
    let db = TestDatabase::create().await;
    // Built on this test's runtime, as the service's pool is on the main one.
    let pool = db.pool();

    let worker_pool = pool.clone();
    // On the blocking pool, so that this test's own runtime (the pool's) keeps running.
    let worker_backend = tokio::task::spawn_blocking(move || {
        let worker = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("worker runtime");
        worker.block_on(async {
            let client = worker_pool.get().await.expect("connection");
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .expect("query")
                .get(0);
            pid
        })
        // The worker's runtime is dropped here, as at a worker's shutdown.
    })
    .await
    .expect("worker thread");

    let client = pool.get().await.expect("a connection");
    let backend: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("the connection works")
        .get(0);
    assert_eq!(
        backend, worker_backend,
        "the worker's connection died with its runtime and was replaced"
    );
}
