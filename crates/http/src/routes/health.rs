//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::openapi::responses::ServiceUnavailable;
use crate::openapi::schemas::Health;
use crate::state::AppState;

/// Liveness
///
/// `200` while the process runs.
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "health_live",
    tag = "health",
    responses((status = 200, description = "The process runs.", body = Health)),
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness
///
/// `200` when the database answers, else `503` (bounded by the pool's timeouts). Also
/// `503` once the service has begun to stop, so that load balancers send no more.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "health",
    responses(
        (status = 200, description = "The database answers and the service is not stopping.", body = Health),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.is_draining() {
        return Err(ApiError::shutting_down());
    }
    postgres_adapter::ping(&state.pool).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok" })))
}
