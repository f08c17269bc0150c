//! `/tickets/{id}/events`: a ticket's history, from the ticket event log.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::{EventId, TicketId};

use super::{path_id, ListQuery};
use crate::auth::ClaimedCaller;
use crate::dto::EventResponse;
use crate::error::ApiError;
use crate::openapi::params::{PageParams, TicketPath};
use crate::openapi::responses::{
    BadRequest, InternalServerError, NotFound, ServiceUnavailable, Unauthorized,
};
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;

/// A ticket's history
///
/// Every change of the ticket, oldest first: `ticket.created` (`data`: `topic`,
/// `status`, `priority`), `message.created` (`message_id`, `type`), `note.created`
/// (`message_id`; staff only), `ticket.status_changed` and `ticket.priority_changed`
/// (`from`, `to`), `ticket.assigned` (`from`, `to`: user ids or `null`). `actor` is
/// `null` for changes that no user made.
#[utoipa::path(
    get,
    path = "/tickets/{id}/events",
    operation_id = "ticket_history",
    tag = "tickets",
    params(TicketPath, PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of the ticket's events.", body = Vec<EventResponse>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) when more rows exist."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn history(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let id = path_id(&path, TicketId::parse)?;
            let query = ListQuery::parse(&req)?;
            let scope = CursorScope::Events(id.get());
            let page = page_request(query.limit.as_deref(), query.cursor.as_deref(), |raw| {
                let id = state.cursors.decode_id(&scope, raw)?;
                EventId::new(id).ok_or_else(|| state.cursors.invalid())
            })?;
            let page = state.tickets.history(caller, id, page).await?;
            let next = page
                .next
                .map(|key| state.cursors.encode_id(&scope, key.get()));
            let events: Vec<EventResponse> =
                page.items.into_iter().map(EventResponse::from).collect();
            Ok(page_response(&req, &events, next))
        })
        .await
}
