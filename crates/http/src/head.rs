//! `HEAD` on every `GET` route (RFC 9110 §9.3.2): the request is routed as a `GET`, so
//! the handler, the conditional checks and every middleware inside this one produce
//! exactly the headers a `GET` gets (`ETag`, `Link`, `Content-Type`, `Content-Length`),
//! and the body is dropped before it is sent.
//!
//! A middleware rather than a `HEAD` route beside each `GET`: no route can forget it,
//! and `Allow` lists `HEAD` wherever it lists `GET` (see `routes::resource`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Bytes;

/// Routes `HEAD` as `GET` and answers with the `GET` response's headers only.
///
/// Must run before anything else holds a clone of the request: changing the method
/// needs the only reference to it (as actix-web's own `NormalizePath` does for the
/// path). Middleware outside this one still sees `HEAD` (the metrics and logs say what
/// the client sent).
pub async fn answer_head(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() != Method::HEAD {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    req.head_mut().method = Method::GET;
    let response = next.call(req).await?;
    Ok(response.map_body(|_, body| EitherBody::right(HeadersOnly(body.size()))))
}

/// A body that declares the size of the body it replaces and yields nothing: the
/// HTTP/1 encoder writes `Content-Length` (or `Transfer-Encoding: chunked` for a stream)
/// from the size and, for a `HEAD` request, never writes body bytes. Dropping the real
/// body also ends a stream (such as a long-lived event stream) at once.
struct HeadersOnly(BodySize);

impl MessageBody for HeadersOnly {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        self.0
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(None)
    }
}
