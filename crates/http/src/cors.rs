//! CORS for browser clients on the origins of `server.cors_origins`, with `actix-cors`
//! doing the work, behind a gate that keeps the contract's promises `actix-cors` alone
//! does not:
//!
//! - a request from any other origin (or with no `Origin`) never reaches `actix-cors`,
//!   which would add `Access-Control-Allow-Credentials` and `-Expose-Headers` to it: it
//!   is served as if CORS were off (a preflight then gets `405`, as `OPTIONS` does
//!   anywhere), with only `Vary: Origin`, since the answer depends on the origin;
//! - a successful preflight is `204 No Content` (`actix-cors` says `200`);
//! - a preflight from an allowed origin asking for a method or header we do not allow
//!   is `403` problem+json (`cors_preflight_refused`), not `actix-cors`' plain text.

use std::collections::HashSet;
use std::rc::Rc;

use actix_cors::{Cors, CorsError, CorsMiddleware};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, ResponseError};
use futures_util::future::LocalBoxFuture;

use crate::error::ApiError;

/// How long a browser may cache a preflight's answer. Browsers cap it (Chromium at two
/// hours); an hour spares most preflights and lets a change of policy through the same day.
const PREFLIGHT_MAX_AGE_SECS: usize = 3600;

/// The methods that a page on an allowed origin may send (`DELETE` for webhooks).
const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The request headers that a page may send, as the contract lists them.
fn request_headers() -> [HeaderName; 7] {
    [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        HeaderName::from_static("idempotency-key"),
        HeaderName::from_static("last-event-id"),
        HeaderName::from_static("x-request-id"),
    ]
}

/// The response headers that a page may read beyond the CORS-safelisted ones.
fn exposed_headers() -> [HeaderName; 6] {
    [
        header::ETAG,
        header::LINK,
        header::LOCATION,
        header::RETRY_AFTER,
        HeaderName::from_static("idempotent-replayed"),
        HeaderName::from_static("x-request-id"),
    ]
}

/// The CORS middleware for `origins` (exact origins such as `https://desk.example.com`,
/// checked by the settings). Built per worker: `actix-cors` is not `Send`.
pub struct CorsPolicy {
    origins: Rc<HashSet<HeaderValue>>,
    cors: Cors,
}

impl CorsPolicy {
    pub fn new(origins: &[String]) -> Self {
        let mut cors = Cors::default()
            .allowed_methods(METHODS)
            .allowed_headers(request_headers())
            .expose_headers(exposed_headers())
            .supports_credentials()
            .max_age(PREFLIGHT_MAX_AGE_SECS);
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
        let origins = origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect();
        Self {
            origins: Rc::new(origins),
            cors,
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for CorsPolicy
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type InitError = ();
    type Transform = CorsGate<S>;
    type Future = LocalBoxFuture<'static, Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        // The same inner service behind `actix-cors` and beside it, for the requests
        // that must not meet it.
        let service = Rc::new(service);
        let cors = self.cors.new_transform(Rc::clone(&service));
        let origins = Rc::clone(&self.origins);
        Box::pin(async move {
            Ok(CorsGate {
                service,
                cors: cors.await?,
                origins,
            })
        })
    }
}

pub struct CorsGate<S> {
    service: Rc<S>,
    cors: CorsMiddleware<Rc<S>>,
    origins: Rc<HashSet<HeaderValue>>,
}

impl<S, B> Service<ServiceRequest> for CorsGate<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let allowed = req
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|origin| self.origins.contains(origin));
        if !allowed {
            let answer = self.service.call(req);
            return Box::pin(async move {
                let mut response = answer.await?;
                response
                    .headers_mut()
                    .append(header::VARY, HeaderValue::from_static("Origin"));
                Ok(response.map_into_left_body())
            });
        }
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let answer = self.cors.call(req);
        Box::pin(async move {
            let response = answer.await?;
            Ok(if preflight {
                preflight_answer(response)
            } else {
                response
            })
        })
    }
}

/// `204` for a preflight that `actix-cors` accepted, problem+json for one it refused.
fn preflight_answer<B>(
    mut response: ServiceResponse<EitherBody<B>>,
) -> ServiceResponse<EitherBody<B>> {
    if response.status() == StatusCode::OK {
        *response.response_mut().status_mut() = StatusCode::NO_CONTENT;
        return response;
    }
    let refusal = response
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(|e| ApiError::cors_preflight_refused(e.to_string()));
    match refusal {
        Some(problem) => response
            .into_response(problem.error_response())
            .map_into_right_body(),
        None => response,
    }
}
