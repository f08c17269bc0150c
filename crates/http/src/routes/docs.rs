//! The OpenAPI document (`/openapi.json`) and a page that renders it for people
//! (`/docs`). The page's files are compiled in, so it works offline, and its
//! `Content-Security-Policy` lets it load nothing but this service's own files.

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::openapi;

/// Nothing but this origin's own scripts, styles and `fetch`; no framing, no forms.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The OpenAPI document
///
/// OpenAPI 3.1, generated from the code; `docs/openapi.json` in the repository is a copy.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_document",
    tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object,
        content_type = "application/json")),
)]
pub async fn openapi_json() -> HttpResponse {
    asset("application/json", openapi::pretty_json())
}

/// The API reference page
///
/// A page that renders `/openapi.json` for people; it loads nothing from other origins.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs_page",
    tag = "docs",
    responses((status = 200, description = "An HTML page.", body = String,
        content_type = "text/html")),
)]
pub async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", include_str!("docs/index.html"))
}

pub async fn script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("docs/docs.js"),
    )
}

pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("docs/docs.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
        .body(body)
}
