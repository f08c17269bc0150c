//! `/tickets/{id}/messages`: a ticket's conversation.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::values::MessageText;
use domain::TicketId;

use super::{path_id, ListQuery};
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::dto::{MessageRequest, MessageResponse};
use crate::error::ApiError;
use crate::openapi::params::{PageParams, TicketPath};
use crate::openapi::responses::{
    BadRequest, Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, Unauthorized,
    UnsupportedMediaType,
};
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;

/// List a ticket's messages
///
/// Oldest first. `author` appears only for staff callers.
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
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
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
}

/// Write a message
///
/// The type is `response` when the caller is staff, else `request`. The ticket's
/// `updated_at` moves. A canceled ticket takes no more messages (`409`).
#[utoipa::path(
    post,
    path = "/tickets/{id}/messages",
    operation_id = "post_message",
    tag = "messages",
    params(TicketPath),
    request_body = MessageRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The new message.", body = MessageResponse,
            links(("ListMessages" = (operation_id = "list_messages", parameters(("id" = "$request.path.id")))))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn post(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    JsonBody(body): JsonBody<MessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, TicketId::parse)?;
    let text = MessageText::parse(&body.text)?;
    let message = state.tickets.post_message(caller, id, text).await?;
    Ok(HttpResponse::Created().json(MessageResponse::new(message, caller.is_staff())))
}
