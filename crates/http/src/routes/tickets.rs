//! `/tickets` and `/tickets/{id}`: open, list, read, and change the status.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::ticket::{SortOrder, TicketFilter};
use domain::values::{MessageText, Topic};
use domain::{TicketId, TicketStatus};

use super::{path_id, ListQuery};
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::dto::{OpenTicketRequest, StatusRequest, TicketResponse};
use crate::error::{ApiError, ErrorKind};
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;

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

pub async fn get(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, TicketId::parse)?;
    let ticket = state.tickets.get(caller, id).await?;
    Ok(HttpResponse::Ok().json(TicketResponse::new(ticket, caller.is_staff())))
}

/// `PUT` and `PATCH` behave the same: only `status` is read.
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
