//! `/tickets` and `/tickets/{id}`: open, list, read, and change the status.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::ticket::{SortOrder, TicketFilter};
use domain::values::{reject_nul, MessageText, Topic};
use domain::{TicketId, TicketStatus};

use super::{path_id, ListQuery};
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::dto::{OpenTicketRequest, StatusRequest, TicketResponse};
use crate::error::{ApiError, ErrorKind};
use crate::openapi::params::{PageParams, TicketFilterParams, TicketPath};
use crate::openapi::responses::{
    BadRequest, Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, Unauthorized,
    UnsupportedMediaType,
};
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;

/// Open a ticket
///
/// Creates the ticket with status `pending` and, in the same transaction, its first
/// message (type `request`) holding `text`. Staff may open tickets too.
#[utoipa::path(
    post,
    path = "/tickets",
    operation_id = "open_ticket",
    tag = "tickets",
    request_body = OpenTicketRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The new ticket.", body = TicketResponse,
            headers(("Location" = String, description = "`/tickets/{id}` of the new ticket.")),
            links(
                ("GetTicket" = (operation_id = "get_ticket", parameters(("id" = "$response.body#/id")))),
                ("ChangeStatus" = (operation_id = "change_ticket_status", parameters(("id" = "$response.body#/id")))),
                ("ListMessages" = (operation_id = "list_messages", parameters(("id" = "$response.body#/id")))),
                ("PostMessage" = (operation_id = "post_message", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn open(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<OpenTicketRequest>,
) -> Result<HttpResponse, ApiError> {
    let topic = Topic::parse(&body.topic)?;
    let text = MessageText::parse(&body.text)?;
    let ticket = state.tickets.open(caller, topic, text).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/tickets/{}", ticket.id)))
        .json(TicketResponse::new(ticket, caller.is_staff())))
}

fn parse_status(raw: &str) -> Result<TicketStatus, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            ErrorKind::StatusUnknown,
            "The status must be one of pending, resolved, unresolved, canceled.",
        )
    })
}

fn parse_filter(query: &ListQuery) -> Result<TicketFilter, ApiError> {
    let statuses = match query.status.as_deref() {
        Some(list) => list
            .split(',')
            .map(|s| parse_status(s.trim()))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let order = match query.order.as_deref() {
        None | Some("asc") => SortOrder::Ascending,
        Some("desc") => SortOrder::Descending,
        Some(_) => {
            return Err(ApiError::new(
                ErrorKind::OrderInvalid,
                "The parameter `order` must be `asc` or `desc`.",
            ))
        }
    };
    if let Some(author) = query.author.as_deref() {
        reject_nul("author", author)?;
    }
    let author_email = query
        .author
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    Ok(TicketFilter {
        statuses,
        author_email,
        order,
    })
}

/// List tickets
///
/// A customer gets their own tickets; staff get every ticket, with `author`.
#[utoipa::path(
    get,
    path = "/tickets",
    operation_id = "list_tickets",
    tag = "tickets",
    params(PageParams, TicketFilterParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of tickets.", body = Vec<TicketResponse>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) when more rows exist."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let query = ListQuery::parse(&req)?;
    let filter = parse_filter(&query)?;
    let scope = match filter.order {
        SortOrder::Ascending => CursorScope::TicketsAscending,
        SortOrder::Descending => CursorScope::TicketsDescending,
    };
    let page = page_request(query.limit.as_deref(), query.cursor.as_deref(), |raw| {
        state.cursors.decode_created(&scope, raw)
    })?;
    let page = state.tickets.list(caller, filter, page).await?;
    let next = page
        .next
        .map(|key| state.cursors.encode_created(&scope, key));
    let tickets = TicketResponse::list(page.items, caller.is_staff());
    Ok(page_response(&req, &tickets, next))
}

/// Read a ticket
#[utoipa::path(
    get,
    path = "/tickets/{id}",
    operation_id = "get_ticket",
    tag = "tickets",
    params(TicketPath),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The ticket.", body = TicketResponse),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, TicketId::parse)?;
    let ticket = state.tickets.get(caller, id).await?;
    Ok(HttpResponse::Ok().json(TicketResponse::new(ticket, caller.is_staff())))
}

/// Change a ticket's status
///
/// `PUT` and `PATCH` behave the same: only `status` is read. The ticket's author (any
/// role) may set `canceled` from `pending` or `unresolved`; staff may set `pending`,
/// `resolved` and `unresolved` from any of those. `resolved` needs a staff response on
/// the ticket; `canceled` is final. Setting the status the ticket has changes nothing.
/// `400` for a status this caller may never set, `409` for a transition the rules
/// forbid now.
#[utoipa::path(
    method(put, patch),
    path = "/tickets/{id}",
    operation_id = "change_ticket_status",
    tag = "tickets",
    params(TicketPath),
    request_body = StatusRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The ticket after the change.", body = TicketResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn change_status(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    JsonBody(body): JsonBody<StatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, TicketId::parse)?;
    let target = parse_status(&body.status)?;
    let ticket = state.tickets.change_status(caller, id, target).await?;
    Ok(HttpResponse::Ok().json(TicketResponse::new(ticket, caller.is_staff())))
}
