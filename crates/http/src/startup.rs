//! Building the application from settings: the pool, migrations, the adapters wired
//! into the domain's services, and the HTTP server. `main` and the tests both start the
//! service through [`Application::build`].

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use domain::ports::PasswordHasher;
use domain::ports::WebhookRepository;
use domain::throttle::{LoginThrottle, ThrottlePolicy};
use domain::tickets::TicketService;
use domain::users::UserService;
use domain::webhooks::{DeliveryPolicy, DeliveryService, WebhookService};
use domain::{RepositoryError, RepositoryErrorKind};
use postgres_adapter::{
    CommitSignal, EventTail, PgLoginFailureRepository, PgTicketRepository, PgUserRepository,
    PgWebhookRepository, Pool, TailSettings,
};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use crate::auth::{BcryptHasher, Tokens};
use crate::cors::CorsPolicy;
use crate::metrics::Metrics;
use crate::pagination::CursorCodec;
use crate::settings::{DatabaseSettings, Settings, WebhookSettings};
use crate::shutdown::{self, Draining, StopRequest};
use crate::state::AppState;
use crate::webhooks::sender::HttpSender;
use crate::webhooks::worker::WorkerSettings;
use crate::{compress, head, metrics, request_id, routes, webhooks};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot set up the database pool: {0}")]
    Pool(#[from] postgres_adapter::PoolSetupError),
    #[error(
        "PostgreSQL did not become ready within {waited_secs} s (last error: {last_error}); \
         check DATABASE_URL and that the server runs"
    )]
    DatabaseUnavailable {
        waited_secs: u64,
        last_error: String,
    },
    #[error("cannot start the event tail: {0}")]
    EventTail(#[source] postgres_adapter::PoolSetupError),
    #[error("cannot set up the webhook client: {0}")]
    WebhookClient(#[source] reqwest::Error),
    #[error("invalid webhook settings: {0}")]
    WebhookSettings(#[source] crate::settings::SettingsError),
    #[error("cannot start password hashing: {0}")]
    Hasher(#[source] domain::RepositoryError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    draining: Draining,
    drain: Duration,
    /// Background upkeep, ended with the application.
    upkeep: [AbortOnDrop; 2],
    /// The webhook worker; it stops claiming when the service starts stopping. `None`
    /// when this replica delivers nothing (`webhooks.concurrency` 0).
    deliveries: Option<AbortOnDrop>,
    /// `/metrics` on a port of its own (`server.metrics_port`), and the fold of its
    /// histograms.
    metrics_server: Option<(Server, u16)>,
    metrics_upkeep: AbortOnDrop,
    /// The count of the webhook outbox for its gauges; `None` with metrics off.
    outbox_count: Option<AbortOnDrop>,
}

impl Application {
    /// Connects (retrying while PostgreSQL starts), applies pending migrations, and
    /// binds the listener. The server runs once [`Application::run_until`] is
    /// awaited.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = connect_and_migrate(&settings.database).await?;
        let hasher = Arc::new(
            BcryptHasher::new(
                settings.auth.bcrypt_cost,
                hashing_permits(settings.auth.max_concurrent_hashes),
                Duration::from_millis(settings.auth.hash_wait_timeout_ms),
            )
            .await
            .map_err(StartupError::Hasher)?,
        );
        let hashing = hasher.load();
        let auth = &settings.auth;
        let throttle_policy = ThrottlePolicy::new(
            auth.login_max_failures_per_account,
            auth.login_max_failures_per_address,
            Duration::from_secs(auth.login_failure_window_secs),
        );
        let feed = EventTail::start(TailSettings {
            url: settings.database.url.expose_secret().to_owned(),
            buffer: settings.events.buffer,
            poll_interval: Duration::from_millis(settings.events.poll_interval_ms.max(1)),
        })
        .map_err(StartupError::EventTail)?;
        let commits = feed.commit_signal();
        let RequestServices {
            users,
            tickets,
            webhooks: webhook_service,
            throttle,
        } = RequestServices::on(&pool, hasher.clone(), throttle_policy, &commits);
        let upkeep = upkeep(&settings, &tickets, &throttle);
        let secret = jwt_secret(settings.auth.jwt_secret.as_ref());
        let draining = Draining::default();
        let webhooks: Arc<dyn WebhookRepository> = Arc::new(PgWebhookRepository::new(pool.clone()));
        // Built (and its settings checked) even when this replica delivers nothing.
        let delivery = delivery_service(&settings.webhooks, webhooks.clone())?;
        let deliveries = if settings.webhooks.concurrency == 0 {
            tracing::info!(
                "TICKETS__WEBHOOKS__CONCURRENCY is 0: this replica delivers no webhooks"
            );
            None
        } else {
            Some(AbortOnDrop(tokio::spawn(webhooks::worker::run(
                delivery,
                WorkerSettings {
                    concurrency: settings.webhooks.concurrency,
                    poll_interval: Duration::from_millis(settings.webhooks.poll_interval_ms.max(1)),
                },
                draining.clone(),
                feed.commits(),
            ))))
        };
        // The background work's state; each worker gets its own copy on a pool of its
        // own (`WorkerStates`).
        let state = web::Data::new(AppState {
            users,
            tickets,
            webhooks: webhook_service,
            tokens: Arc::new(Tokens::new(
                secret.expose_secret().as_bytes(),
                &auth.issuer,
                &auth.audience,
                Duration::from_secs(auth.token_ttl_secs),
            )),
            throttle,
            cursors: Arc::new(CursorCodec::new(secret.expose_secret().as_bytes())),
            staff_api_key: auth.staff_api_key.clone(),
            secure_cookies: settings.server.https,
            metrics: Arc::new(Metrics::new(&pool, hashing)),
            pool,
            draining: draining.clone(),
            feed: Arc::new(feed),
            events: settings.events.clone(),
        });
        let metrics_upkeep = AbortOnDrop(tokio::spawn(fold_metrics(state.clone())));
        let metrics_apart = settings.server.metrics_port.is_some();
        let metrics_on = settings.server.metrics;
        let outbox_count = metrics_on.then(|| {
            AbortOnDrop(tokio::spawn(count_outbox(
                state.clone(),
                Duration::from_secs(settings.webhooks.count_interval_secs),
            )))
        });
        let compression = settings.server.compression;
        let cors_origins = settings.server.cors_origins();

        let (listener, port) = bind(&settings.server.host, settings.server.port)?;
        let metrics_server = match settings.server.metrics_port {
            Some(metrics_port) => Some(metrics_server(
                &settings.server.host,
                metrics_port,
                state.clone(),
            )?),
            None => None,
        };
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            configured => configured,
        };
        let worker_states = Arc::new(WorkerStates {
            template: AppState::clone(&state),
            hasher,
            throttle_policy,
            pool_sizes: settings.database.worker_pool_sizes(workers),
            database: settings.database.clone(),
            started: AtomicUsize::new(0),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(worker_states.next())
                .wrap(
                    DefaultHeaders::new()
                        .add(("Cache-Control", "no-store"))
                        .add(("X-Content-Type-Options", "nosniff")),
                )
                // The HTTP conventions, innermost first: HEAD is answered as GET (and
                // must see the request before anything clones it), compression sees
                // what HEAD keeps of the body, CORS decorates the final response.
                .wrap(from_fn(head::answer_head))
                .wrap(Condition::new(compression, from_fn(compress::compress)))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    CorsPolicy::new(&cors_origins),
                ))
                .wrap(from_fn(shutdown::close_connections_while_draining))
                .wrap(Condition::new(metrics_on, from_fn(metrics::record)))
                .wrap(from_fn(request_id::request_id))
                .configure(routes::configure)
                .configure(|cfg| {
                    if metrics_on && !metrics_apart {
                        routes::configure_metrics(cfg);
                    }
                })
                .default_service(web::to(routes::unknown_path))
        })
        // Stopping is ours (see `shutdown`): the drain comes first and takes its part
        // of the shutdown timeout.
        .disable_signals()
        .shutdown_timeout(settings.server.graceful_stop_secs())
        .workers(workers);
        let server = server.listen(listener).map_err(listen_failed(port))?.run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            draining,
            drain: Duration::from_secs(settings.server.drain_secs),
            upkeep,
            deliveries,
            metrics_server,
            metrics_upkeep,
            outbox_count,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when it has one of its own (`server.metrics_port`).
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// Serves until the first stop request, then stops:
    /// - [`StopRequest::Drain`] (SIGTERM) drains for `server.drain_secs` first (see
    ///   [`shutdown`]); a repeated one is ignored, a [`StopRequest::Now`] ends the drain;
    /// - then no new connections are accepted and requests in flight get the rest of
    ///   the shutdown timeout; a [`StopRequest::Now`] meanwhile returns at once, leaving
    ///   them unanswered (the process is expected to exit).
    ///
    /// Readiness answers 503 and responses close their connections from the first
    /// request on. Serves on if the sender is dropped without asking.
    pub async fn run_until(
        self,
        mut stop_requests: mpsc::UnboundedReceiver<StopRequest>,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let _upkeep = self.upkeep;
        let _deliveries = self.deliveries;
        let _metrics_upkeep = self.metrics_upkeep;
        let _outbox_count = self.outbox_count;
        // Scrapes are answered until the API stops, drain included.
        let metrics_server = self.metrics_server.map(|(server, _)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let stopping = async move {
            let first = next_stop_request(&mut stop_requests).await;
            self.draining.start();
            if first == StopRequest::Drain && !self.drain.is_zero() {
                tracing::info!(
                    drain_secs = self.drain.as_secs(),
                    "draining: readiness answers 503 and connections close after each \
                     response; SIGINT ends the drain"
                );
                let drain = tokio::time::sleep(self.drain);
                if interrupted(drain, &mut stop_requests, "already draining").await {
                    tracing::info!("drain cut short");
                }
            }
            tracing::info!(
                "stopping: no new connections; requests in flight may finish; SIGINT \
                 stops at once"
            );
            if interrupted(handle.stop(true), &mut stop_requests, "already stopping").await {
                tracing::warn!("stopping at once: requests in flight are dropped");
                return Ok(());
            }
            // Stopped: the server future ends now.
            std::future::pending().await
        };
        let outcome = tokio::select! {
            served = self.server => served,
            forced = stopping => forced,
        };
        if let Some((handle, served)) = metrics_server {
            handle.stop(false).await;
            // Its outcome matters no more than a scrape that fails: the API's is returned.
            let _ = served.await;
        }
        outcome
    }
}

/// A listener on `host:port`, and the port it got (`0` asks for any free one).
fn bind(host: &str, port: u16) -> Result<(TcpListener, u16), StartupError> {
    let address = format!("{host}:{port}");
    let bound = TcpListener::bind(&address).and_then(|listener| {
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    });
    bound.map_err(|source| StartupError::Bind { address, source })
}

fn listen_failed(port: u16) -> impl FnOnce(std::io::Error) -> StartupError {
    move |source| StartupError::Bind {
        address: format!("port {port}"),
        source,
    }
}

/// A server of `/metrics` alone (and `404` for anything else) on `host:port`: one
/// worker is plenty for a scraper.
fn metrics_server(
    host: &str,
    port: u16,
    state: web::Data<AppState>,
) -> Result<(Server, u16), StartupError> {
    let (listener, port) = bind(host, port)?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(head::answer_head))
            .wrap(from_fn(request_id::request_id))
            .configure(routes::configure_metrics)
            .default_service(web::to(routes::unknown_path))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(listen_failed(port))?
    .run();
    tracing::info!(port, "serving /metrics apart");
    Ok((server, port))
}

/// Folds the recorded request durations into their buckets now and then, so that
/// memory stays flat when nobody scrapes.
async fn fold_metrics(state: web::Data<AppState>) {
    let mut turns = tokio::time::interval(metrics::UPKEEP_INTERVAL);
    turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        turns.tick().await;
        state.metrics.run_upkeep();
    }
}

/// Sets the webhook outbox's gauges every `interval` (at least a second). The outbox is
/// shared, so every replica reports the same counts; the statement is cheap (partial
/// indexes), so each replica may run it. A failed count leaves the gauges as they were:
/// dropping them to 0 would look like an emptied outbox.
async fn count_outbox(state: web::Data<AppState>, interval: Duration) {
    let mut turns = tokio::time::interval(interval.max(Duration::from_secs(1)));
    turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        turns.tick().await;
        match state.webhooks.delivery_counts().await {
            Ok(counts) => state
                .metrics
                .set_webhook_deliveries(counts.pending, counts.failed),
            // An outage, which readiness and the requests report already: not worth a
            // warning at every turn.
            Err(e) if e.kind() == RepositoryErrorKind::Unavailable => tracing::debug!(
                error = %error_chain(&e),
                "could not count the webhook outbox; its gauges keep their values"
            ),
            Err(e) => tracing::warn!(
                error = %error_chain(&e),
                "could not count the webhook outbox; its gauges keep their values"
            ),
        }
    }
}

/// Ends a background task when the value is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Delivering the outbox as the settings say.
fn delivery_service(
    settings: &WebhookSettings,
    webhooks: Arc<dyn WebhookRepository>,
) -> Result<DeliveryService, StartupError> {
    let sender =
        HttpSender::new(settings.allow_private_targets).map_err(StartupError::WebhookClient)?;
    if settings.allow_private_targets {
        tracing::warn!(
            "TICKETS__WEBHOOKS__ALLOW_PRIVATE_TARGETS is true: webhooks may reach loopback \
             and private addresses"
        );
    }
    Ok(DeliveryService::new(
        webhooks,
        Arc::new(sender),
        DeliveryPolicy {
            retry_delays: settings
                .retry_delays()
                .map_err(StartupError::WebhookSettings)?,
            lease: Duration::from_secs(settings.lease_secs),
        },
    ))
}

/// The background tasks that keep tables from growing with rows that are ignored
/// anyway: expired idempotency keys every `database.idempotency_sweep_interval_secs`,
/// and ended login-failure windows every window length (so a window is forgotten at
/// most two window lengths after it started).
fn upkeep(
    settings: &Settings,
    tickets: &TicketService,
    throttle: &LoginThrottle,
) -> [AbortOnDrop; 2] {
    let tickets = tickets.clone();
    let keys_every = Duration::from_secs(settings.database.idempotency_sweep_interval_secs);
    let keys = forget_every(keys_every, "expired idempotency keys", move |now| {
        let tickets = tickets.clone();
        async move { tickets.forget_expired_keys(now).await }
    });
    let throttle = throttle.clone();
    let windows_every = Duration::from_secs(settings.auth.login_failure_window_secs);
    let windows = forget_every(windows_every, "ended login-failure windows", move |now| {
        let throttle = throttle.clone();
        async move { throttle.forget_ended_windows(now).await }
    });
    [
        AbortOnDrop(tokio::spawn(keys)),
        AbortOnDrop(tokio::spawn(windows)),
    ]
}

/// Runs `forget` with the time every `interval` (at least a second). A failure is
/// logged and retried at the next turn.
async fn forget_every<F, Fut>(interval: Duration, what: &'static str, forget: F)
where
    F: Fn(time::OffsetDateTime) -> Fut,
    Fut: std::future::Future<Output = Result<u64, RepositoryError>>,
{
    let mut turns = tokio::time::interval(interval.max(Duration::from_secs(1)));
    turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        turns.tick().await;
        match forget(time::OffsetDateTime::now_utc()).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "forgot {what}"),
            Err(e) => tracing::warn!(
                error = %error_chain(&e),
                "could not forget {what}; will retry"
            ),
        }
    }
}

/// Waits for `phase`; true if a [`StopRequest::Now`] came first. Repeated
/// [`StopRequest::Drain`]s are logged as `repeated` and change nothing.
async fn interrupted(
    phase: impl std::future::Future<Output = ()>,
    stop_requests: &mut mpsc::UnboundedReceiver<StopRequest>,
    repeated: &'static str,
) -> bool {
    tokio::pin!(phase);
    loop {
        tokio::select! {
            () = &mut phase => return false,
            request = next_stop_request(stop_requests) => match request {
                StopRequest::Drain => tracing::info!("{repeated}"),
                StopRequest::Now => return true,
            },
        }
    }
}

/// The next stop request; none ever, once nobody can send one.
async fn next_stop_request(requests: &mut mpsc::UnboundedReceiver<StopRequest>) -> StopRequest {
    match requests.recv().await {
        Some(request) => request,
        None => std::future::pending().await,
    }
}

/// `configured`, or for 0 one less than the CPUs this process may run on (at least 1):
/// bcrypt takes a core for a quarter of a second per hash at cost 12.
fn hashing_permits(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.saturating_sub(1).max(1)
}

/// Makes each actix-web worker's state: the shared parts of `template`, and services
/// on a pool of the worker's own, whose connections its thread drives (see
/// `postgres_adapter::create_worker_pool`): a request's statements then never wait for
/// another thread. The pools split `database.pool_max_size` among the workers.
struct WorkerStates {
    template: AppState,
    hasher: Arc<BcryptHasher>,
    throttle_policy: ThrottlePolicy,
    /// Each worker's share of the connections, in the order the workers start.
    pool_sizes: Vec<usize>,
    database: DatabaseSettings,
    /// Workers started so far; one that actix-web restarts (after a panic) counts again.
    started: AtomicUsize,
}

impl WorkerStates {
    /// Called once by each worker, on its own thread, as it starts.
    fn next(&self) -> web::Data<AppState> {
        let started = self.started.fetch_add(1, Ordering::Relaxed);
        // A restarted worker takes the smallest share, so that the total stays within
        // `pool_max_size` plus the restarted workers' shares.
        let size = self
            .pool_sizes
            .get(started)
            .or(self.pool_sizes.last())
            .copied()
            .unwrap_or(1);
        let mut state = self.template.clone();
        match postgres_adapter::create_worker_pool(&self.database.worker_pool_settings(size)) {
            Ok(pool) => {
                let services = RequestServices::on(
                    &pool,
                    self.hasher.clone(),
                    self.throttle_policy,
                    &self.template.feed.commit_signal(),
                );
                state.users = services.users;
                state.tickets = services.tickets;
                state.webhooks = services.webhooks;
                state.throttle = services.throttle;
                state.metrics.watch_pool(&pool);
                state.pool = pool;
            }
            // The same settings made the background pool, so this does not happen; if
            // it did, the worker would serve on the background pool, whose connections
            // outlive every worker.
            Err(e) => tracing::error!(
                error = %error_chain(&e),
                "cannot build a worker's pool; it shares the background pool"
            ),
        }
        web::Data::new(state)
    }
}

/// The services the requests use, on one pool: the background state's and each
/// worker's are made alike.
struct RequestServices {
    users: UserService,
    tickets: TicketService,
    webhooks: WebhookService,
    throttle: LoginThrottle,
}

impl RequestServices {
    /// `commits`: the signal of the process's event tail, given after every write.
    fn on(
        pool: &Pool,
        hasher: Arc<BcryptHasher>,
        throttle_policy: ThrottlePolicy,
        commits: &CommitSignal,
    ) -> Self {
        let tickets = Arc::new(PgTicketRepository::new(pool.clone()).signalling(commits.clone()));
        let (users, tickets) = services_on(pool, tickets, hasher);
        Self {
            users,
            tickets,
            webhooks: WebhookService::new(Arc::new(PgWebhookRepository::new(pool.clone()))),
            throttle: LoginThrottle::new(
                Arc::new(PgLoginFailureRepository::new(pool.clone())),
                throttle_policy,
            ),
        }
    }
}

/// The domain's services on the PostgreSQL adapter.
pub fn services(pool: &Pool, hasher: Arc<dyn PasswordHasher>) -> (UserService, TicketService) {
    services_on(
        pool,
        Arc::new(PgTicketRepository::new(pool.clone())),
        hasher,
    )
}

fn services_on(
    pool: &Pool,
    tickets: Arc<PgTicketRepository>,
    hasher: Arc<dyn PasswordHasher>,
) -> (UserService, TicketService) {
    let users = Arc::new(PgUserRepository::new(pool.clone()));
    (
        UserService::new(users, tickets.clone(), hasher),
        TicketService::new(tickets),
    )
}

/// Creates the pool and applies migrations, retrying with backoff while PostgreSQL is
/// not reachable yet (e.g. starting beside the service), up to the startup timeout.
pub async fn connect_and_migrate(database: &DatabaseSettings) -> Result<Pool, StartupError> {
    let pool = postgres_adapter::create_pool(&database.pool_settings())?;
    let started = Instant::now();
    let limit = Duration::from_secs(database.startup_timeout_secs);
    let mut backoff = Duration::from_millis(250);
    loop {
        match postgres_adapter::run_migrations(&pool).await {
            Ok(()) => return Ok(pool),
            Err(e) if started.elapsed() + backoff < limit => {
                tracing::warn!(
                    error = %error_chain(&e),
                    retry_in_ms = backoff.as_millis() as u64,
                    "PostgreSQL is not ready; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(StartupError::DatabaseUnavailable {
                    waited_secs: started.elapsed().as_secs(),
                    last_error: error_chain(&e),
                })
            }
        }
    }
}

/// An error and its causes, `: `-separated, for log lines and exit messages. A cause
/// that its parent already printed (deadpool's errors do) is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.ends_with(&format!(": {inner_text}")) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// The configured secret, or in development (settings validation allows `None` only
/// there) a random one: tokens then do not survive a restart.
fn jwt_secret(configured: Option<&SecretString>) -> SecretString {
    match configured {
        Some(secret) => secret.clone(),
        None => {
            tracing::warn!(
                "TICKETS__AUTH__JWT_SECRET is not set: using a random secret for this \
                 development run; tokens will not survive a restart"
            );
            let mut bytes = [0u8; 48];
            rand::thread_rng().fill_bytes(&mut bytes);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            SecretString::from(hex)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that prints `message`, and its source's text after it when `inline`.
    #[derive(Debug)]
    struct Layer {
        message: &'static str,
        inline: bool,
        source: Option<Box<Layer>>,
    }

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.message)?;
            match &self.source {
                Some(source) if self.inline => write!(f, ": {source}"),
                _ => Ok(()),
            }
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.as_deref().map(|s| s as _)
        }
    }

    fn layer(message: &'static str, inline: bool, source: Option<Layer>) -> Layer {
        Layer {
            message,
            inline,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn the_chain_names_each_cause_once() {
        // The shape of a refused connection through deadpool and tokio-postgres.
        let refused = layer("connection refused", false, None);
        let connect = layer("error connecting to server", false, Some(refused));
        let pool = layer("cannot create a connection", true, Some(connect));
        let migrate = layer("no database connection for migrating", false, Some(pool));

        assert_eq!(
            error_chain(&migrate),
            "no database connection for migrating: cannot create a connection: \
             error connecting to server: connection refused"
        );
    }
}
