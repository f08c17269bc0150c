//! Fresh databases for tests (feature `test-support`).
//!
//! The migrations run once, into a template database named after a fingerprint of
//! the migrations; each test then clones it with `CREATE DATABASE … TEMPLATE` and drops
//! its clone when done. Test threads of one process and several test processes may do
//! this at the same time.
//!
//! Measured on PostgreSQL 15: a clone takes about 0.1 s with the default `WAL_LOG`
//! strategy and about 1 s with `FILE_COPY` (which checkpoints), so the default is kept.
//! `DROP DATABASE` forces a checkpoint, 0.1–1 s depending on how much the whole cluster
//! has written; that, not the tests, dominates the suite's run time.

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::migrate::{migrate_locked, migrations_fingerprint};
use crate::pool::{create_pool, PoolSettings};

type BoxError = Box<dyn Error + Send + Sync>;

/// The server used when neither `TEST_DATABASE_URL` nor `DATABASE_URL` is set.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Serialises building templates across test processes (on the admin database, whose
/// advisory locks every process shares).
const TEMPLATE_LOCK_KEY: i64 = 0x0074_6963_6b65_7401;

/// Prefix of the per-test databases: `tickets_test_<pid>_<uuid>`. The pid lets a later
/// run tell the leftovers of killed processes from the databases of live ones.
const TEST_DATABASE_PREFIX: &str = "tickets_test_";

/// The template of this process's migrations, built (or found) once per process.
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// A database of its own for one test, migrated, dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: Pool,
}

impl TestDatabase {
    /// Creates a fresh, migrated database.
    ///
    /// # Panics
    /// When PostgreSQL is unreachable or refuses (this is for tests only). The server
    /// comes from `TEST_DATABASE_URL`, else from `DATABASE_URL` (database `postgres`),
    /// else `postgres://postgres@127.0.0.1:5432/postgres`.
    pub async fn create() -> TestDatabase {
        let admin_url = admin_url();
        let template = TEMPLATE
            .get_or_try_init(|| prepare_template(&admin_url))
            .await
            .unwrap_or_else(|e| fail("could not prepare the migrated template database", &*e));
        Self::clone_of(admin_url, template).await
    }

    /// Creates a fresh database without any migrations, for tests of the migrations
    /// themselves.
    ///
    /// # Panics
    /// Like [`TestDatabase::create`].
    pub async fn create_empty() -> TestDatabase {
        Self::clone_of(admin_url(), "template0").await
    }

    async fn clone_of(admin_url: String, template: &str) -> TestDatabase {
        let name = format!(
            "{TEST_DATABASE_PREFIX}{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let created = async {
            let (admin, connection) = connect(&admin_url).await?;
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {} TEMPLATE {}",
                    quoted(&name),
                    quoted(template)
                ))
                .await?;
            close(admin, connection).await;
            Ok::<_, BoxError>(())
        };
        created
            .await
            .unwrap_or_else(|e| fail("could not create the test database", &*e));
        let url = with_database(&admin_url, &name);
        let pool = create_pool(&PoolSettings {
            url: url.clone(),
            max_size: 8,
            // Generous: a loaded CI machine is slow, and a test should fail on its
            // assertions rather than on a timeout.
            wait_timeout: Duration::from_secs(30),
            create_timeout: Duration::from_secs(30),
            recycle_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(60),
        })
        .unwrap_or_else(|e| fail("could not build the test database's pool", &e));
        TestDatabase {
            name,
            url,
            admin_url,
            pool,
        }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A small pool on this test's database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The name of this test's database.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    /// Drops the database. This may run inside a test's runtime, where blocking on
    /// async work would panic, so the work runs on a thread with a runtime of its own.
    fn drop(&mut self) {
        self.pool.close();
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || -> Result<(), BoxError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (admin, connection) = connect(&admin_url).await?;
                // FORCE ends the connections that the test's pool may still hold.
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quoted(&name)
                    ))
                    .await?;
                close(admin, connection).await;
                Ok(())
            })
        })
        .join();
        // Never panic here: this may run while a failed test unwinds. A database left
        // behind is swept by the next run.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("TestDatabase: could not drop {}: {e}", self.name),
            Err(_) => eprintln!("TestDatabase: dropping {} panicked", self.name),
        }
    }
}

/// Finds or builds the template for this build's migrations, then sweeps leftovers of
/// dead test processes. Returns the template's name.
async fn prepare_template(admin_url: &str) -> Result<String, BoxError> {
    let template = format!("tickets_tpl_{}", migrations_fingerprint());
    let (admin, connection) = connect(admin_url).await?;
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await?;
    let built = build_template_unless_present(&admin, admin_url, &template).await;
    let unlocked = admin
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await;
    built?;
    unlocked?;
    sweep_dead_processes_databases(&admin).await;
    close(admin, connection).await;
    Ok(template)
}

/// Builds the template under a temporary name and renames it when complete, so that
/// a template under the final name is always fully migrated, even if a builder was
/// killed half-way. Runs under the template lock.
async fn build_template_unless_present(
    admin: &Client,
    admin_url: &str,
    template: &str,
) -> Result<(), BoxError> {
    let present = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await?
        .is_some();
    if present {
        return Ok(());
    }
    let building = format!("{template}_building");
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quoted(&building)
        ))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quoted(&building)))
        .await?;
    let (mut client, connection) = connect(&with_database(admin_url, &building)).await?;
    migrate_locked(&mut client).await?;
    // Renaming needs every connection to the database gone.
    close(client, connection).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} RENAME TO {}",
            quoted(&building),
            quoted(template)
        ))
        .await?;
    // Cloning needs the template free of connections; refusing them keeps it so.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            quoted(template)
        ))
        .await?;
    Ok(())
}

/// Drops the test databases of processes that no longer run (killed before their
/// `Drop` ran). Databases of live processes, including this one, are left alone.
/// Best effort: a failure here only leaves a database behind.
async fn sweep_dead_processes_databases(admin: &Client) {
    // Without /proc (not Linux) liveness cannot be told, so nothing is swept.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let names = match admin
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            &[&TEST_DATABASE_PREFIX],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("TestDatabase: could not list leftover test databases: {e}");
            return;
        }
    };
    for row in names {
        let Ok(name) = row.try_get::<_, String>("datname") else {
            continue;
        };
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(&name));
        if let Err(e) = admin.batch_execute(&sql).await {
            eprintln!("TestDatabase: could not drop leftover {name}: {e}");
        }
    }
}

/// The pid in `tickets_test_<pid>_<uuid>`.
fn owner_pid(database: &str) -> Option<u32> {
    let rest = database.strip_prefix(TEST_DATABASE_PREFIX)?;
    let (pid, _) = rest.split_once('_')?;
    pid.parse().ok()
}

/// `TEST_DATABASE_URL`, else `DATABASE_URL` pointed at the `postgres` database, else the
/// local default.
fn admin_url() -> String {
    let set = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(url) = set("TEST_DATABASE_URL") {
        url
    } else if let Some(url) = set("DATABASE_URL") {
        with_database(&url, "postgres")
    } else {
        DEFAULT_ADMIN_URL.to_owned()
    }
}

/// The same connection string naming another database.
fn with_database(url: &str, database: &str) -> String {
    let scheme_end = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|scheme| url.starts_with(scheme))
        .map(str::len);
    let Some(scheme_end) = scheme_end else {
        // A libpq key-value string: a later key overrides an earlier one.
        return format!("{url} dbname={database}");
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[authority_end..]
        .find('?')
        .map_or("", |at| &rest[authority_end + at..]);
    format!(
        "{}{}/{database}{query}",
        &url[..scheme_end],
        &rest[..authority_end]
    )
}

/// Connects without TLS, giving up after a few seconds so that a missing server fails
/// the test quickly, and returns the task that drives the connection.
async fn connect(url: &str) -> Result<(Client, JoinHandle<()>), BoxError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        // The connection's end is all that matters; its error, if any, also reaches
        // the client's pending queries.
        let _ = connection.await;
    });
    Ok((client, driver))
}

/// Closes a connection and waits until the socket is closed.
async fn close(client: Client, driver: JoinHandle<()>) {
    drop(client);
    let _ = driver.await;
}

/// A double-quoted SQL identifier.
fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn fail(what: &str, error: &dyn Error) -> ! {
    let mut message = format!("TestDatabase: {what}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    panic!(
        "{message}\n(PostgreSQL for tests comes from TEST_DATABASE_URL, else DATABASE_URL \
         with database `postgres`, else {DEFAULT_ADMIN_URL}; is it running?)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/tickets", "postgres"),
            "postgres://u:p@h:5432/postgres"
        );
        assert_eq!(
            with_database("postgresql://h/tickets?sslmode=disable&x=1", "t1"),
            "postgresql://h/t1?sslmode=disable&x=1"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(
            with_database("postgres://h?x=1", "t1"),
            "postgres://h/t1?x=1"
        );
        assert_eq!(
            with_database("host=h user=u dbname=a", "b"),
            "host=h user=u dbname=a dbname=b"
        );
    }

    #[test]
    fn owner_pid_reads_only_test_database_names() {
        assert_eq!(owner_pid("tickets_test_4242_0123abcd"), Some(4242));
        assert_eq!(owner_pid("tickets_test_x_0123abcd"), None);
        assert_eq!(owner_pid("tickets_tpl_0123abcd"), None);
        assert_eq!(owner_pid("tickets"), None);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
