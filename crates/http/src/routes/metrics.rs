//! `GET /metrics`: the Prometheus scrape target (see `crate::metrics`).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::state::AppState;

/// The Prometheus text exposition format, version 0.0.4.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metrics
///
/// No token. Request durations by method, route template and status; problems by
/// `code`; database pool connections and waiting requests; the password-hash queue;
/// open event streams, the event tail's reconnections, and webhook deliveries. On
/// `TICKETS__SERVER__METRICS_PORT` instead when that is set (this port then answers
/// `404`). `docs/operations.md` in the repository describes each series.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Every series, in the Prometheus text format.",
        body = String, content_type = "text/plain; version=0.0.4")),
)]
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, PROMETHEUS_TEXT))
        .body(state.metrics.render(state.feed.reconnections()))
}
