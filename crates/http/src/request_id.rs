//! Gives every request an id — the client's `X-Request-Id` when it is sensible, else a
//! new UUID — puts it on every log line of the request (a tracing span) and on the
//! response, and logs one line per request with its status and duration.
//!
//! The span is the request's root: it carries the id, the method, the route template
//! (`/tickets/{id}`, or `unmatched`) and, once answered, the status, and the spans of
//! the use cases and of each database statement nest inside it (see
//! `docs/operations.md`). Why not `tracing-actix-web`: its request id is always a new
//! UUID, and the contract echoes the client's.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Ids longer than this, or with characters outside visible ASCII, are replaced: they
/// end up in logs, where a client must not be able to forge lines.
const MAX_ID_LEN: usize = 128;

fn client_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(X_REQUEST_ID)?.to_str().ok()?;
    let sensible = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value.bytes().all(|b| b.is_ascii_graphic());
    sensible.then(|| value.to_owned())
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = client_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Before routing, actix-web finds the pattern from the path alone.
    let route = req.match_pattern();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = route.as_deref().unwrap_or(crate::metrics::UNMATCHED_ROUTE),
        path = %req.path(),
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    span.record("status", response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request served"
        );
    });
    Ok(response)
}
