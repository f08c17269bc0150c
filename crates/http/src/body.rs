//! `JsonBody<T>`: the only way a handler reads a request body. It enforces the
//! contract's rules for bodies — JSON or no content type, at most 64 KiB, valid JSON of
//! the right shape — and answers every failure as problem+json.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorKind};

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read(req, payload);
        Box::pin(async move { parse(&body.await?).map(JsonBody) })
    }
}

/// A JSON body as [`JsonBody`] reads it, with its canonical form (keys sorted, no
/// white space), for the writes that an `Idempotency-Key` may guard.
pub struct CanonicalJson<T> {
    pub body: T,
    pub canonical: Vec<u8>,
}

impl<T: DeserializeOwned + 'static> FromRequest for CanonicalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read(req, payload);
        Box::pin(async move {
            let value = parse_object(&body.await?)?;
            let canonical = crate::idempotency::canonical_json(&value);
            Ok(CanonicalJson {
                body: shaped(value)?,
                canonical,
            })
        })
    }
}

/// The body's bytes, once the headers allow it and as long as it stays within the limit.
fn read(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl std::future::Future<Output = Result<Vec<u8>, ApiError>> {
    let checked = check_headers(req);
    let mut payload = payload.take();
    async move {
        checked?;
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::new(
                    ErrorKind::InvalidBody,
                    "The request body could not be read.",
                )
            })?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        "The request body is larger than 64 KiB.",
    )
}

/// Content type and declared length, checked before any byte is read.
fn check_headers(req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(value) = req.headers().get(header::CONTENT_TYPE) {
        let accepted = value.to_str().ok().is_some_and(is_json_media_type);
        if !accepted {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "Send the body as JSON (Content-Type: application/json).",
            ));
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    Ok(())
}

/// `application/json` or any `type/subtype+json`, parameters (charset) allowed.
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    !kind.is_empty() && (essence == "application/json" || subtype.ends_with("+json"))
}

/// Parses in two steps so that errors are told apart reliably: first the JSON itself
/// (`malformed_json`, including junk after the value), then its shape (`invalid_body`).
/// Only objects are accepted: serde would otherwise build a struct from an array by
/// position.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    shaped(parse_object(body)?)
}

/// The body as a JSON object (`malformed_json`, or `invalid_body` for anything but an
/// object).
fn parse_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorKind::InvalidBody,
            "This request needs a JSON body.",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorKind::MalformedJson,
            format!("The body is not valid JSON: {e}."),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            ErrorKind::InvalidBody,
            "The body must be a JSON object.",
        ));
    }
    Ok(value)
}

/// The object in the request type's shape (`invalid_body`).
fn shaped<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidBody,
            format!("The JSON body does not have the expected shape: {e}."),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
            "application/problem+json",
            "text/x+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/xml",
            "json",
            "",
            "application/jsonx",
            "multipart/form-data",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn parse_errors_are_classified() {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            #[allow(dead_code)]
            topic: String,
        }
        let kind = |body: &[u8]| parse::<Body>(body).map(|_| ()).map_err(|e| e.kind());
        assert_eq!(kind(b""), Err(ErrorKind::InvalidBody));
        assert_eq!(kind(b"{"), Err(ErrorKind::MalformedJson));
        assert_eq!(kind(b"{\"topic\": 5}"), Err(ErrorKind::InvalidBody));
        assert_eq!(kind(b"{}"), Err(ErrorKind::InvalidBody));
        assert_eq!(kind(b"[]"), Err(ErrorKind::InvalidBody));
        assert_eq!(kind(b"[\"x\"]"), Err(ErrorKind::InvalidBody));
        assert_eq!(kind(b"{\"a\": 1}}"), Err(ErrorKind::MalformedJson));
        assert_eq!(kind(b"{\"topic\": \"x\", \"extra\": 1}"), Ok(()));
    }
}
