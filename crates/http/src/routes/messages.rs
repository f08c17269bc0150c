//! `/tickets/{id}/messages`: a ticket's conversation.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::idempotency::{StoredResponse, Written};
use domain::values::MessageText;
use domain::{Message, TicketId};

use super::{path_id, ListQuery};
use crate::auth::ClaimedCaller;
use crate::body::CanonicalJson;
use crate::conditional;
use crate::dto::{MessageRequest, MessageResponse};
use crate::error::ApiError;
use crate::idempotency;
use crate::openapi::params::{IdempotencyKeyHeader, IfMatchHeader, PageParams, TicketPath};
use crate::openapi::responses::{
    BadRequest, Conflict, Forbidden, InternalServerError, NotFound, PayloadTooLarge,
    PreconditionFailed, ServiceUnavailable, Unauthorized, UnprocessableContent,
    UnsupportedMediaType,
};
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;

/// List a ticket's messages
///
/// Oldest first. `author` appears only for staff callers, and so do internal notes.
#[utoipa::path(
    get,
    path = "/tickets/{id}/messages",
    operation_id = "list_messages",
    tag = "messages",
    params(TicketPath, PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of messages.", body = Vec<MessageResponse>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) when more rows exist."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let id = path_id(&path, TicketId::parse)?;
            let query = ListQuery::parse(&req)?;
            let scope = CursorScope::Messages(id.get());
            let page = page_request(query.limit.as_deref(), query.cursor.as_deref(), |raw| {
                state.cursors.decode_created(&scope, raw)
            })?;
            let page = state.tickets.list_messages(caller, id, page).await?;
            let next = page
                .next
                .map(|key| state.cursors.encode_created(&scope, key));
            let messages: Vec<MessageResponse> = page
                .items
                .into_iter()
                .map(|m| MessageResponse::new(m, caller.is_staff()))
                .collect();
            Ok(page_response(&req, &messages, next))
        })
        .await
}

/// The response to a new message: `201` and the message as the caller sees it. Also
/// what a repeat with the same `Idempotency-Key` gets again.
fn created(message: &Message, caller_is_staff: bool) -> StoredResponse {
    idempotency::stored_json(
        StatusCode::CREATED,
        None,
        None,
        &MessageResponse::new(message.clone(), caller_is_staff),
    )
}

/// Write a message
///
/// The type is `response` when the caller is staff, else `request`; with
/// `"internal": true`, staff write an internal note (type `note`), which customers never
/// see anywhere and which moves neither the ticket's `updated_at` nor its `version`. A
/// canceled ticket takes notes only (`409` otherwise). `If-Match` makes the post depend
/// on the ticket's `ETag` (`412`); with an `Idempotency-Key`, a repeat of the same
/// request gets the first response again and writes nothing.
#[utoipa::path(
    post,
    path = "/tickets/{id}/messages",
    operation_id = "post_message",
    tag = "messages",
    params(TicketPath, IfMatchHeader, IdempotencyKeyHeader),
    request_body = MessageRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The new message (or, for a repeat, the first response again).", body = MessageResponse,
            headers(("Idempotent-Replayed" = String, description = "`true` on a repeat of a request with the same `Idempotency-Key`.")),
            links(("ListMessages" = (operation_id = "list_messages", parameters(("id" = "$request.path.id")))))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
    path: web::Path<String>,
    body: CanonicalJson<MessageRequest>,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let id = path_id(&path, TicketId::parse)?;
            let text = MessageText::parse(&body.body.text)?;
            let internal = body.body.internal.unwrap_or(false);
            let staff = caller.is_staff();
            let key = idempotency::guard(&req, &body.canonical, move |message: &Message| {
                created(message, staff)
            })?;
            let written = state
                .tickets
                .post_message(caller, id, text, internal, conditional::if_match(&req), key)
                .await?;
            Ok(match written {
                Written::Fresh(message) => idempotency::respond(created(&message, staff), false),
                Written::Replayed(first) => idempotency::respond(first, true),
            })
        })
        .await
}
