//! The error responses that operations share, as reusable components: each is a
//! `Problem` body (`application/problem+json`) with an example from the contract, plus
//! the headers that go with its status.

use serde_json::{json, Value};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::ToResponse;

use crate::error::PROBLEM_JSON;

fn problem(description: &str, example: Value) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .example(Some(example))
            .build(),
    )
}

fn example(status: u16, title: &str, detail: &str, code: &str) -> Value {
    json!({"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code})
}

fn header(description: &str, schema_type: Type) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(schema_type))
        .description(Some(description))
        .build()
}

/// Declares a reusable response: its component name, description and example, and a
/// function that adds what is particular to it.
macro_rules! problem_response {
    ($name:ident, $status:literal, $title:literal, $description:literal, $detail:literal, $code:literal) => {
        problem_response!($name, $status, $title, $description, $detail, $code, |r| r);
    };
    ($name:ident, $status:literal, $title:literal, $description:literal, $detail:literal, $code:literal, $extra:expr) => {
        #[doc = $description]
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let extra: fn(ResponseBuilder) -> ResponseBuilder = $extra;
                let base = problem($description, example($status, $title, $detail, $code));
                (stringify!($name), extra(base).build().into())
            }
        }
    };
}

problem_response!(
    BadRequest,
    400,
    "Bad Request",
    "The request is invalid: malformed JSON, a wrong type, a missing or refused field \
     (`errors` names it), a NUL character, or a bad query parameter.",
    "Password must be at least 8 characters.",
    "password_too_short"
);

problem_response!(
    Unauthorized,
    401,
    "Unauthorized",
    "No token, or a token that is malformed, badly signed, expired, or of a user who no \
     longer exists or is deactivated.",
    "This request needs a token: log in and send it as a Bearer token or the `token` cookie.",
    "unauthenticated",
    |r| r.header("WWW-Authenticate", header("`Bearer`.", Type::String))
);

problem_response!(
    Forbidden,
    403,
    "Forbidden",
    "The caller is authenticated but their role does not allow this request (`staff_only`: \
     a customer sent `priority`, `assignee_id` or `\"internal\": true`).",
    "Your role does not allow this request.",
    "forbidden"
);

problem_response!(
    NotFound,
    404,
    "Not Found",
    "Nothing at this path, an id that is not a positive 64-bit integer, or a resource \
     the caller may not see.",
    "No such ticket.",
    "ticket_not_found"
);

problem_response!(
    Conflict,
    409,
    "Conflict",
    "The request conflicts with the current state, or a request with the same \
     `Idempotency-Key` is still running (`idempotency_key_in_use`).",
    "A ticket can be resolved only after staff have responded to it.",
    "response_required"
);

problem_response!(
    PreconditionFailed,
    412,
    "Precondition Failed",
    "`If-Match` does not hold the ticket's current `ETag`: the ticket changed since it \
     was read. Nothing changed.",
    "The ticket has changed since the version in If-Match; read it again.",
    "precondition_failed"
);

problem_response!(
    PayloadTooLarge,
    413,
    "Payload Too Large",
    "The body is larger than 64 KiB.",
    "The request body is larger than 64 KiB.",
    "payload_too_large"
);

problem_response!(
    UnsupportedMediaType,
    415,
    "Unsupported Media Type",
    "The body is not JSON: send `Content-Type: application/json` (or any `*/*+json`), \
     or no `Content-Type` at all.",
    "Send the body as JSON (Content-Type: application/json).",
    "unsupported_media_type"
);

problem_response!(
    UnprocessableContent,
    422,
    "Unprocessable Entity",
    "The `Idempotency-Key` was first used for another request (another method, path or \
     body).",
    "This Idempotency-Key was used for another request (another method, path or body); use a new key for a new request.",
    "idempotency_key_reused"
);

problem_response!(
    TooManyRequests,
    429,
    "Too Many Requests",
    "Too many failed logins for this account or from this address.",
    "Too many failed logins; try again later.",
    "too_many_attempts",
    |r| r.header(
        "Retry-After",
        header("Seconds to wait before trying again.", Type::Integer)
    )
);

problem_response!(
    InternalServerError,
    500,
    "Internal Server Error",
    "A bug: the cause is logged (with the request id), never sent.",
    "An unexpected error occurred.",
    "internal_error"
);

problem_response!(
    ServiceUnavailable,
    503,
    "Service Unavailable",
    "The database is unavailable, password hashing is saturated, or the service is stopping; retry shortly.",
    "The service is temporarily unavailable; try again shortly.",
    "service_unavailable"
);

/// `304 Not Modified`: `If-None-Match` holds the ticket's current `ETag`; no body.
pub struct NotModified;

impl<'r> ToResponse<'r> for NotModified {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = ResponseBuilder::new()
            .description(
                "`If-None-Match` holds the ticket's current `ETag`: the copy the client has \
                 is current. No body.",
            )
            .header("ETag", header("`\"<version>\"`.", Type::String))
            .build();
        ("NotModified", response.into())
    }
}
