//! The connection pool: bounded, with every wait limited, and the session settings
//! every connection needs (see [`startup_options`]).

use std::time::Duration;

use deadpool_postgres::{
    ConfigConnectImpl, Connect, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use domain::RepositoryError;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::query;

/// How to reach the database and how far to wait for it.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// A `postgres://` URL (or a libpq key-value string).
    pub url: String,
    /// The most connections the pool opens.
    pub max_size: usize,
    /// How long a caller waits for a free connection.
    pub wait_timeout: Duration,
    /// How long opening a new connection may take.
    pub create_timeout: Duration,
    /// How long checking a returned connection may take.
    pub recycle_timeout: Duration,
    /// The server-side limit on any one statement (`statement_timeout`); zero turns it
    /// off.
    pub statement_timeout: Duration,
}

/// The settings cannot make a pool. Holds no part of the URL, which may carry a
/// password.
#[derive(Debug, thiserror::Error)]
pub enum PoolSetupError {
    #[error("the database URL is invalid")]
    InvalidUrl(#[source] tokio_postgres::Error),
    #[error("the database pool's maximum size must be at least 1")]
    ZeroMaxSize,
    #[error("the database pool could not be built")]
    Build(#[source] deadpool_postgres::BuildError),
}

/// Builds a pool whose connections live on the runtime that builds it (see
/// [`ConnectOnOwnRuntime`]), for work shared between threads: the background tasks, or
/// a pool that several actix-web workers share. Builds without connecting: connections
/// open on first use, so the server may start before the database is up (readiness
/// reports it until then).
///
/// # Errors
/// When the URL does not parse or the pool settings are unusable.
pub fn create_pool(settings: &PoolSettings) -> Result<Pool, PoolSetupError> {
    build_pool(settings, Handle::try_current().ok())
}

/// Builds a pool for one actix-web worker alone: each connection's socket is driven by
/// the runtime of the task that opened it, the worker's own, so that a request and its
/// statements run on one thread without a hand-off to another for every round trip
/// (measured in issue 10: the hand-offs to the one thread that drove every connection
/// cost more CPU than the statements). The pool dies with its worker, which has then
/// drained its own requests; no other worker may use it (that is what [`create_pool`]
/// is for).
///
/// # Errors
/// As [`create_pool`].
pub fn create_worker_pool(settings: &PoolSettings) -> Result<Pool, PoolSetupError> {
    build_pool(settings, None)
}

fn build_pool(settings: &PoolSettings, runtime: Option<Handle>) -> Result<Pool, PoolSetupError> {
    if settings.max_size == 0 {
        return Err(PoolSetupError::ZeroMaxSize);
    }
    let mut pg_config: tokio_postgres::Config =
        settings.url.parse().map_err(PoolSetupError::InvalidUrl)?;
    let options = startup_options(pg_config.get_options(), settings.statement_timeout);
    pg_config.options(options);
    if pg_config.get_application_name().is_none() {
        pg_config.application_name("tickets");
    }
    let manager = Manager::from_connect(
        pg_config,
        ConnectOnOwnRuntime { runtime },
        ManagerConfig {
            // `Fast` only checks that the socket is open; a connection the server
            // dropped surfaces as one failed query (503) and is then discarded.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.create_timeout))
        .recycle_timeout(Some(settings.recycle_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(PoolSetupError::Build)
}

/// Opens connections on the runtime that created the pool.
///
/// deadpool would otherwise open a connection, and spawn the task that drives its
/// socket, on the runtime of whichever task first asked for it. actix-web gives each
/// worker thread its own runtime, and a worker that finishes draining at shutdown takes
/// its runtime down with it: every pooled connection it had opened then dies under the
/// requests other workers are still running on them (seen as 503s for writes that had
/// committed). The pool is built on the main runtime, which lives until the process
/// ends, so connections opened there survive any one worker.
struct ConnectOnOwnRuntime {
    /// `None` for a worker's pool, or when the pool was built outside a runtime:
    /// connections then open on the caller's runtime, as deadpool does by default.
    runtime: Option<Handle>,
}

impl Connect for ConnectOnOwnRuntime {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>,
    > {
        let Some(runtime) = self.runtime.clone() else {
            return DIRECT.connect(pg_config);
        };
        let pg_config = pg_config.clone();
        Box::pin(async move {
            // deadpool's own connect, in a task of the pool's runtime: the socket and
            // the task that drives it then belong to that runtime.
            let opening = runtime.spawn(async move { DIRECT.connect(&pg_config).await });
            match opening.await {
                Ok(opened) => opened,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // The pool's runtime is shutting down, so the process is ending: wait
                // for the pool's create timeout to answer this caller.
                Err(_) => std::future::pending().await,
            }
        })
    }
}

/// deadpool's default way to connect, on the runtime it runs on.
const DIRECT: ConfigConnectImpl<NoTls> = ConfigConnectImpl { tls: NoTls };

/// The connection's startup options: any the URL sets, then
///
/// - `statement_timeout`, so that no query holds a connection (and its locks) for long.
///   Sub-millisecond values round up, as 0 would turn the limit off.
///
/// Prepared statements keep PostgreSQL's default plan caching: after five runs a
/// statement may run on a generic plan, planned once. The list queries are therefore
/// written as one statement text per shape (see `tickets::TicketListQuery`), so that no
/// generic plan has to serve both an indexed and an unindexed case.
///
/// Startup options (rather than `SET` after connecting) cost no round trip and survive
/// `RESET ALL`.
fn startup_options(existing: Option<&str>, statement_timeout: Duration) -> String {
    let mut millis = statement_timeout.as_millis();
    if millis == 0 && !statement_timeout.is_zero() {
        millis = 1;
    }
    let ours = format!("-c statement_timeout={millis}");
    match existing {
        Some(options) if !options.trim().is_empty() => format!("{options} {ours}"),
        _ => ours,
    }
}

/// Checks that the database answers, for the readiness probe.
///
/// # Errors
/// When no connection can be had or the query fails.
pub async fn ping(pool: &Pool) -> Result<(), RepositoryError> {
    let client = connection(pool).await?;
    query::one_row(&client, "SELECT 1", &[]).await?;
    Ok(())
}

/// A connection from the pool, with pool failures (timeouts, database down) as
/// repository errors.
#[tracing::instrument(level = "debug", name = "db.connection.wait", skip_all)]
pub(crate) async fn connection(pool: &Pool) -> Result<Object, RepositoryError> {
    pool.get().await.map_err(crate::error::pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> PoolSettings {
        PoolSettings {
            url: url.to_owned(),
            max_size: 4,
            wait_timeout: Duration::from_secs(1),
            create_timeout: Duration::from_secs(2),
            recycle_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_millis(1500),
        }
    }

    #[test]
    fn startup_options_follow_the_url_s_own() {
        assert_eq!(
            startup_options(None, Duration::from_secs(5)),
            "-c statement_timeout=5000"
        );
        assert_eq!(
            startup_options(Some("-c search_path=x"), Duration::from_millis(250)),
            "-c search_path=x -c statement_timeout=250"
        );
        assert!(startup_options(None, Duration::from_micros(10)).ends_with("timeout=1"));
        assert!(startup_options(None, Duration::ZERO).ends_with("timeout=0"));
    }

    #[tokio::test]
    async fn building_the_pool_does_not_connect() {
        // Nothing listens on port 1; building must still succeed.
        let pool = create_pool(&settings("postgres://nobody@127.0.0.1:1/none")).expect("pool");
        let status = pool.status();
        assert_eq!(status.max_size, 4);
        assert_eq!(status.size, 0);
        let timeouts = pool.timeouts();
        assert_eq!(timeouts.wait, Some(Duration::from_secs(1)));
        assert_eq!(timeouts.create, Some(Duration::from_secs(2)));
        assert_eq!(timeouts.recycle, Some(Duration::from_secs(3)));
        assert!(ping(&pool).await.is_err());
    }

    #[test]
    fn refuses_a_bad_url_without_echoing_it() {
        let error =
            create_pool(&settings("postgres://u:s3cret@host:notaport/db")).expect_err("bad port");
        assert!(matches!(error, PoolSetupError::InvalidUrl(_)));
        assert!(!error.to_string().contains("s3cret"));
        assert!(matches!(
            create_pool(&PoolSettings {
                max_size: 0,
                ..settings("postgres://u@h/db")
            }),
            Err(PoolSetupError::ZeroMaxSize)
        ));
    }
}
