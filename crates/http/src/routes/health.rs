//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `200` while the process runs.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `200` when the database answers, else `503` (bounded by the pool's timeouts).
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    postgres_adapter::ping(&state.pool).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok" })))
}
