//! `Idempotency-Key` at the HTTP edge: the key header, the fingerprint that binds a key
//! to its first request (method, path and body), and the response that a repeat gets
//! again (`Idempotent-Replayed: true`). Storing and replaying happen in the adapter,
//! in the transaction of the write (see `domain::idempotency`).

use std::sync::Arc;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use domain::idempotency::{Idempotency, IdempotencyKey, RequestFingerprint, StoredResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The request's key, if it sent one; `400` for a key that is not 1 to 255 visible
/// ASCII characters, or for several keys.
pub fn key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let text = if values.next().is_some() {
        // Two keys name no one request.
        ""
    } else {
        value.to_str().unwrap_or_default()
    };
    Ok(Some(IdempotencyKey::parse(text)?))
}

/// What binds a key to its first request: the method, the path and the body. The body
/// is compared as JSON (`canonical`: keys sorted, no white space), so that a client
/// that re-encodes the same object is not refused.
pub fn fingerprint(req: &HttpRequest, canonical_body: &[u8]) -> RequestFingerprint {
    let mut hash = Sha256::new();
    hash.update(req.method().as_str().as_bytes());
    hash.update([0]);
    hash.update(req.path().as_bytes());
    hash.update([0]);
    hash.update(canonical_body);
    RequestFingerprint(hash.finalize().into())
}

/// A write's guard when the request carries a key: `render` makes the response the
/// write answers, which is also what a repeat will get.
pub fn guard<T>(
    req: &HttpRequest,
    canonical_body: &[u8],
    render: impl Fn(&T) -> StoredResponse + Send + Sync + 'static,
) -> Result<Option<Idempotency<T>>, ApiError> {
    Ok(key(req)?.map(|key| Idempotency {
        key,
        fingerprint: fingerprint(req, canonical_body),
        render: Arc::new(render),
    }))
}

/// A `2xx` JSON response to remember (and to send the first time).
pub fn stored_json(
    status: StatusCode,
    location: Option<String>,
    etag: Option<String>,
    body: &impl Serialize,
) -> StoredResponse {
    // Serializing the API's own response types (strings, numbers, maps) cannot fail.
    #[allow(clippy::expect_used)]
    let body = serde_json::to_vec(body).expect("a response body serializes");
    StoredResponse {
        status: status.as_u16(),
        location,
        etag,
        body,
    }
}

/// The response for a stored (or just made) one; `replayed` marks a repeat.
pub fn respond(stored: StoredResponse, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.content_type(mime_json());
    if let Some(location) = stored.location {
        response.insert_header((header::LOCATION, location));
    }
    if let Some(etag) = stored.etag {
        response.insert_header((header::ETAG, etag));
    }
    if replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    }
    response.body(stored.body)
}

fn mime_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

/// `value` as canonical JSON: object keys sorted, no white space.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (n, (key, item)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_same_object_in_another_order_or_spacing_has_the_same_fingerprint() {
        let req = TestRequest::post().uri("/tickets").to_http_request();
        let a = canonical_json(&json!({"topic": "x", "text": "y", "n": [1, {"b": 2, "a": 1}]}));
        let b: serde_json::Value = serde_json::from_str(
            "{ \"n\": [1, {\"a\": 1, \"b\": 2}], \"text\": \"y\", \"topic\": \"x\" }",
        )
        .expect("json");
        assert_eq!(a, canonical_json(&b));
        assert_eq!(
            fingerprint(&req, &a),
            fingerprint(&req, &canonical_json(&b))
        );
        let other = canonical_json(&json!({"topic": "x", "text": "z"}));
        assert_ne!(fingerprint(&req, &a), fingerprint(&req, &other));
        let put = TestRequest::put().uri("/tickets").to_http_request();
        assert_ne!(fingerprint(&req, &a), fingerprint(&put, &a));
        let elsewhere = TestRequest::post()
            .uri("/tickets/1/messages")
            .to_http_request();
        assert_ne!(fingerprint(&req, &a), fingerprint(&elsewhere, &a));
    }

    #[test]
    fn keys_are_read_once_and_checked() {
        let req = |values: &[&str]| {
            let mut req = TestRequest::post();
            for value in values {
                req = req.append_header((IDEMPOTENCY_KEY, *value));
            }
            key(&req.to_http_request()).map(|k| k.map(|k| k.as_str().to_owned()))
        };
        assert_eq!(req(&[]).ok(), Some(None));
        assert_eq!(req(&["abc-123"]).ok(), Some(Some("abc-123".to_owned())));
        assert!(req(&["a b"]).is_err());
        assert!(req(&["a", "b"]).is_err());
    }
}
