//! `/tickets/{id}/messages`: a ticket's conversation.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::values::MessageText;
use domain::TicketId;

use super::{path_id, ListQuery};
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::dto::{MessageRequest, MessageResponse};
use crate::error::ApiError;
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;

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
