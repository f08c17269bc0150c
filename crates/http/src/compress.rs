//! Response compression (`gzip`, `br`, `zstd`) as the request's `Accept-Encoding`
//! allows, with actix-http's encoder (the one actix-web's `Compress` uses) under a
//! policy of our own, which `Compress` has no setting for:
//!
//! - only bodies of at least [`MIN_BYTES`] whose length is known: a small body gains
//!   nothing worth the CPU, and a stream (an event stream) must reach the client as it
//!   is written, not when a compressor's buffer fills;
//! - never a response with an `ETag`: a strong validator names one representation, so a
//!   compressed one would need its own tag (RFC 9110 §8.8.3). Those are single tickets,
//!   far below the threshold anyway, so nothing is lost;
//! - a client that accepts none of our codings, not even `identity`, gets the body
//!   uncompressed rather than `406` (RFC 9110 §12.5.3 allows either; a usable answer
//!   serves better than a refusal).
//!
//! Responses that could have been compressed carry `Vary: Accept-Encoding`, compressed
//! or not, so that a cache does not hand one client's coding to another.

use actix_http::encoding::Encoder;
use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, AcceptEncoding, ContentEncoding, Encoding, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

/// The smallest body that is compressed (the contract's "larger than 1 KiB").
pub const MIN_BYTES: u64 = 1024;

/// What we can send, `identity` included (so that negotiation can choose it).
const SUPPORTED: [Encoding; 4] = [
    Encoding::identity(),
    Encoding::brotli(),
    Encoding::zstd(),
    Encoding::gzip(),
];

/// The coding the client prefers among ours; `identity` when it sent no preference or
/// accepts none of them.
fn negotiate(req: &ServiceRequest) -> ContentEncoding {
    let chosen = req
        .get_header::<AcceptEncoding>()
        .and_then(|accepted| accepted.negotiate(SUPPORTED.iter()));
    match chosen {
        Some(Encoding::Known(encoding)) => encoding,
        Some(Encoding::Unknown(_)) | None => ContentEncoding::Identity,
    }
}

/// Whether this response's coding may depend on `Accept-Encoding` (see the module doc).
fn compressible(head: &actix_web::dev::ResponseHead, size: BodySize) -> bool {
    let large = matches!(size, BodySize::Sized(n) if n >= MIN_BYTES);
    large
        && !head.headers().contains_key(header::CONTENT_ENCODING)
        && !head.headers().contains_key(header::ETAG)
}

pub async fn compress(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let encoding = negotiate(&req);
    let response = next.call(req).await?;
    Ok(response.map_body(move |head, body| {
        if !compressible(head, body.size()) {
            return EitherBody::left(body);
        }
        if encoding == ContentEncoding::Identity {
            // The encoder adds `Vary` itself when it compresses.
            head.headers_mut()
                .append(header::VARY, HeaderValue::from_static("accept-encoding"));
            return EitherBody::left(body);
        }
        EitherBody::right(Encoder::response(encoding, head, body))
    }))
}
