//! Every route of the API, in one table. Each resource answers `405` with an `Allow`
//! header for methods it does not support; unknown paths get `404`. Handlers live in
//! the submodule named after their resource; the OpenAPI document lists them.

pub(crate) mod docs;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod messages;
pub(crate) mod metrics;
pub(crate) mod session;
pub(crate) mod stream;
pub(crate) mod tickets;
pub(crate) mod users;
pub(crate) mod webhooks;

use actix_web::web;

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/users", "GET, POST")
            .route(web::get().to(users::list))
            .route(web::post().to(users::register)),
    )
    .service(
        resource("/users/{id}", "GET, PATCH")
            .route(web::get().to(users::get))
            .route(web::patch().to(users::update)),
    )
    .service(resource("/login", "POST").route(web::post().to(session::login)))
    .service(resource("/logout", "POST").route(web::post().to(session::logout)))
    .service(
        resource("/tickets", "GET, POST")
            .route(web::get().to(tickets::list))
            .route(web::post().to(tickets::open)),
    )
    .service(
        resource("/tickets/{id}", "GET, PUT, PATCH")
            .route(web::get().to(tickets::get))
            .route(web::put().to(tickets::set_status))
            .route(web::patch().to(tickets::update)),
    )
    .service(
        resource("/tickets/{id}/messages", "GET, POST")
            .route(web::get().to(messages::list))
            .route(web::post().to(messages::post)),
    )
    .service(resource("/tickets/{id}/events", "GET").route(web::get().to(events::history)))
    .service(resource("/events", "GET").route(web::get().to(stream::events)))
    .service(
        resource("/webhooks", "GET, POST")
            .route(web::get().to(webhooks::list))
            .route(web::post().to(webhooks::create)),
    )
    .service(
        resource("/webhooks/{id}", "GET, PATCH, DELETE")
            .route(web::get().to(webhooks::get))
            .route(web::patch().to(webhooks::update))
            .route(web::delete().to(webhooks::delete)),
    )
    .service(
        resource("/webhooks/{id}/deliveries", "GET").route(web::get().to(webhooks::deliveries)),
    )
    .service(resource("/health/live", "GET").route(web::get().to(health::live)))
    .service(resource("/health/ready", "GET").route(web::get().to(health::ready)))
    .service(resource("/openapi.json", "GET").route(web::get().to(docs::openapi_json)))
    .service(resource("/docs", "GET").route(web::get().to(docs::page)))
    .service(resource("/docs/docs.js", "GET").route(web::get().to(docs::script)))
    .service(resource("/docs/docs.css", "GET").route(web::get().to(docs::style)));
}

/// `GET /metrics`, on the main port unless `server.metrics_port` serves it apart.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics", "GET").route(web::get().to(metrics::scrape)));
}

/// A resource whose unsupported methods get `405` listing `allow`, plus `HEAD` where
/// `allow` has `GET` (the `head` middleware answers it).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    let allow = with_head(allow);
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<actix_web::HttpResponse, _>(ApiError::method_not_allowed(allow)) }
    }))
}

/// `allow` with `HEAD` after `GET`, e.g. `GET, HEAD, POST`.
fn with_head(allow: &'static str) -> std::borrow::Cow<'static, str> {
    let listed = |method: &str| allow.split(',').any(|m| m.trim() == method);
    if listed("GET") && !listed("HEAD") {
        allow.replacen("GET", "GET, HEAD", 1).into()
    } else {
        allow.into()
    }
}

/// The app's fallback: `404` for any unknown path.
pub async fn unknown_path() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

/// A path id: anything but a positive 64-bit integer is `404`, as for a missing row.
fn path_id<T>(raw: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, ApiError> {
    parse(raw).ok_or_else(ApiError::not_found)
}

/// The query parameters of list routes; unknown ones are ignored.
#[derive(Debug, Default, serde::Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    order: Option<String>,
    author: Option<String>,
    assignee: Option<String>,
    priority: Option<String>,
    q: Option<String>,
}

impl ListQuery {
    fn parse(req: &actix_web::HttpRequest) -> Result<Self, ApiError> {
        web::Query::<ListQuery>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .map_err(|e| {
                ApiError::new(
                    crate::error::ErrorKind::InvalidQuery,
                    format!("The query string is invalid: {e}."),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::with_head;

    #[test]
    fn head_is_allowed_wherever_get_is() {
        assert_eq!(with_head("GET"), "GET, HEAD");
        assert_eq!(with_head("GET, POST"), "GET, HEAD, POST");
        assert_eq!(with_head("GET, PUT, PATCH"), "GET, HEAD, PUT, PATCH");
        assert_eq!(with_head("POST"), "POST");
        assert_eq!(with_head("GET, HEAD"), "GET, HEAD");
    }
}
