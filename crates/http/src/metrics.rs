//! Prometheus metrics, served at `GET /metrics` (text format) by actix-web: the
//! `metrics` crate's handles, kept and rendered by `metrics-exporter-prometheus`.
//! Names and labels follow the contract and, where one exists, the OpenTelemetry
//! semantic conventions (`http.server.request.duration` → `http_server_request_duration_seconds`);
//! `docs/operations.md` explains each series.
//!
//! Each [`Metrics`] has its own registry instead of the process-wide recorder of the
//! `metrics::counter!` macros, so that the tests, which run many applications in one
//! process, count each one's requests apart, and no global state is needed. Those
//! macros therefore record nothing here: call the methods of [`Metrics`] (held by
//! `AppState`).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;
use metrics::{Counter, Gauge, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use postgres_adapter::{Pool, TailReconnections, WeakPool};

use crate::auth::HashingLoad;
use crate::error::{ApiError, ProblemCode};
use crate::state::AppState;

pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
pub const PROBLEMS: &str = "http_server_problems_total";
pub const DB_CONNECTIONS: &str = "db_client_connection_count";
pub const DB_CONNECTIONS_MAX: &str = "db_client_connection_max";
pub const DB_PENDING_REQUESTS: &str = "db_client_connection_pending_requests";
pub const HASHES_RUNNING: &str = "password_hashes_running";
pub const HASHES_WAITING: &str = "password_hashes_waiting";
pub const SSE_STREAMS_OPEN: &str = "sse_streams_open";
pub const WEBHOOK_DELIVERIES_PENDING: &str = "webhook_deliveries_pending";
pub const WEBHOOK_DELIVERIES_FAILED: &str = "webhook_deliveries_failed";
pub const EVENT_TAIL_RECONNECTIONS: &str = "event_tail_reconnections_total";

/// The `http_route` of a request that matched no route: a fixed value, so that
/// scanners trying random paths cannot grow the number of series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds of the request duration buckets, in seconds: OpenTelemetry's advice
/// for `http.server.request.duration`, with 1 ms and 2.5 ms added because the p99 this
/// service aims at is 10 ms.
pub const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histograms are folded into their buckets when nobody scrapes: until then
/// the exporter keeps every sample.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Every pool of the process (the workers' and the background one), held weakly:
    /// a worker that ends takes its pool with it.
    pools: Mutex<Vec<WeakPool>>,
    hashing: HashingLoad,
    db_idle: Gauge,
    db_used: Gauge,
    db_max: Gauge,
    db_pending: Gauge,
    hashes_running: Gauge,
    hashes_waiting: Gauge,
    sse_streams_open: Gauge,
    webhook_deliveries_pending: Gauge,
    webhook_deliveries_failed: Gauge,
    event_tail_reconnections: Counter,
}

impl Metrics {
    /// The metrics of one application, sampling `pool` (and those [`Self::watch_pool`]
    /// adds) and `hashing` at each scrape.
    pub fn new(pool: &Pool, hashing: HashingLoad) -> Self {
        let recorder = match PrometheusBuilder::new().set_buckets_for_metric(
            Matcher::Full(REQUEST_DURATION.to_owned()),
            &DURATION_BUCKETS,
        ) {
            Ok(builder) => builder,
            // Only an empty bucket list is refused, and ours is not empty.
            Err(_) => PrometheusBuilder::new(),
        }
        .build_recorder();
        describe(&recorder);
        let gauge = |name: &'static str, labels: Vec<Label>| {
            recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
        };
        let state = |value: &'static str| vec![Label::new("state", value)];
        Self {
            db_idle: gauge(DB_CONNECTIONS, state("idle")),
            db_used: gauge(DB_CONNECTIONS, state("used")),
            db_max: gauge(DB_CONNECTIONS_MAX, vec![]),
            db_pending: gauge(DB_PENDING_REQUESTS, vec![]),
            hashes_running: gauge(HASHES_RUNNING, vec![]),
            hashes_waiting: gauge(HASHES_WAITING, vec![]),
            sse_streams_open: gauge(SSE_STREAMS_OPEN, vec![]),
            webhook_deliveries_pending: gauge(WEBHOOK_DELIVERIES_PENDING, vec![]),
            webhook_deliveries_failed: gauge(WEBHOOK_DELIVERIES_FAILED, vec![]),
            event_tail_reconnections: recorder
                .register_counter(&Key::from_name(EVENT_TAIL_RECONNECTIONS), &METADATA),
            handle: recorder.handle(),
            recorder,
            pools: Mutex::new(vec![pool.weak()]),
            hashing,
        }
    }

    /// Every series in the Prometheus text format, with the pool, the hashing queue and
    /// the event tail's `reconnections` sampled now.
    pub fn render(&self, reconnections: TailReconnections) -> String {
        let (mut idle, mut used, mut max, mut waiting) = (0, 0, 0, 0);
        {
            let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
            pools.retain(|weak| match weak.upgrade() {
                Some(pool) => {
                    let status = pool.status();
                    idle += status.available;
                    used += status.size.saturating_sub(status.available);
                    max += status.max_size;
                    waiting += status.waiting;
                    true
                }
                None => false,
            });
        }
        self.db_idle.set(idle as f64);
        self.db_used.set(used as f64);
        self.db_max.set(max as f64);
        self.db_pending.set(waiting as f64);
        self.hashes_running.set(self.hashing.running() as f64);
        self.hashes_waiting.set(self.hashing.waiting() as f64);
        self.event_tail_reconnections.absolute(reconnections.count);
        self.handle.render()
    }

    /// Counts `pool` in the connection gauges too, for as long as it lives.
    pub fn watch_pool(&self, pool: &Pool) {
        self.pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pool.weak());
    }

    /// Folds recorded durations into their buckets (see [`UPKEEP_INTERVAL`]).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Records one answered request; `problem` is the response's problem `code`.
    pub fn request_served(
        &self,
        method: &Method,
        route: Option<String>,
        status: StatusCode,
        elapsed: Duration,
        problem: Option<&'static str>,
    ) {
        let method = Label::new("http_request_method", method_label(method));
        let route = Label::new(
            "http_route",
            route.map_or(SharedString::const_str(UNMATCHED_ROUTE), SharedString::from),
        );
        let status_code = Label::new("http_response_status_code", status.as_u16().to_string());
        if let Some(code) = problem {
            let labels = vec![Label::new("code", code), status_code.clone()];
            self.recorder
                .register_counter(&Key::from_parts(PROBLEMS, labels), &METADATA)
                .increment(1);
        }
        let labels = vec![method, route, status_code];
        self.recorder
            .register_histogram(&Key::from_parts(REQUEST_DURATION, labels), &METADATA)
            .record(elapsed.as_secs_f64());
    }

    /// Counts an open event stream (`GET /events`) until the guard is dropped.
    pub fn sse_stream_opened(&self) -> OpenStream {
        self.sse_streams_open.increment(1.0);
        OpenStream(self.sse_streams_open.clone())
    }

    /// Webhook deliveries waiting for an attempt, and given up, as counted in the
    /// shared outbox (so every replica shows the same values).
    pub fn set_webhook_deliveries(&self, pending: u64, failed: u64) {
        self.webhook_deliveries_pending.set(pending as f64);
        self.webhook_deliveries_failed.set(failed as f64);
    }
}

/// One open event stream, counted in `sse_streams_open` while it lives.
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The HELP and unit lines of each series.
fn describe(recorder: &PrometheusRecorder) {
    let histogram = |name, unit, text: &'static str| {
        recorder.describe_histogram(KeyName::from_const_str(name), Some(unit), text.into())
    };
    let gauge = |name, text: &'static str| {
        recorder.describe_gauge(KeyName::from_const_str(name), None, text.into())
    };
    histogram(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response's headers, by method, route template \
         and status.",
    );
    recorder.describe_counter(
        KeyName::from_const_str(PROBLEMS),
        None,
        "Problem (error) responses, by problem code and status.".into(),
    );
    gauge(
        DB_CONNECTIONS,
        "Database connections in the pool, by state (idle, used).",
    );
    gauge(DB_CONNECTIONS_MAX, "The most connections the pool opens.");
    gauge(
        DB_PENDING_REQUESTS,
        "Requests waiting for a database connection.",
    );
    gauge(HASHES_RUNNING, "Password hashes (bcrypt) being computed.");
    gauge(
        HASHES_WAITING,
        "Logins and registrations waiting for their turn to hash.",
    );
    gauge(SSE_STREAMS_OPEN, "Server-Sent Events streams open.");
    gauge(
        WEBHOOK_DELIVERIES_PENDING,
        "Webhook deliveries waiting for an attempt, in the outbox all replicas share.",
    );
    gauge(
        WEBHOOK_DELIVERIES_FAILED,
        "Webhook deliveries given up, in the outbox all replicas share.",
    );
    recorder.describe_counter(
        KeyName::from_const_str(EVENT_TAIL_RECONNECTIONS),
        None,
        "Times this replica's event tail lost PostgreSQL and reconnected (or tried); live \
         streams wait meanwhile."
            .into(),
    );
}

/// The method as OpenTelemetry names it: the standard ones, and `_OTHER` for any
/// other, so that made-up methods cannot grow the number of series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// Middleware: records each request's duration, route template and status, and its
/// problem `code` (which `ApiError` leaves in the response's extensions). The route
/// is the pattern that matched (`/tickets/{id}`), never the raw path.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let answer = next.call(req).await;
    let elapsed = started.elapsed();
    match &answer {
        Ok(response) => {
            let problem = response
                .response()
                .extensions()
                .get::<ProblemCode>()
                .map(|code| code.0);
            state.metrics.request_served(
                &method,
                response.request().match_pattern(),
                response.status(),
                elapsed,
                problem,
            );
        }
        // Errors are rendered further out; count them as they will be answered.
        Err(error) => state.metrics.request_served(
            &method,
            None,
            error.as_response_error().status_code(),
            elapsed,
            error.as_error::<ApiError>().map(|e| e.kind().code()),
        ),
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&made_up), "_OTHER");
    }

    #[test]
    fn the_buckets_rise() {
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(DURATION_BUCKETS.last(), Some(&10.0));
    }
}
