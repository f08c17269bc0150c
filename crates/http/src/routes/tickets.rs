//! `/tickets` and `/tickets/{id}`: open, list and search, read, and change (status,
//! priority, assignee), with `ETag`s, `If-None-Match`, `If-Match` and
//! `Idempotency-Key`.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use domain::idempotency::{StoredResponse, Written};
use domain::ticket::{AssigneeFilter, SortOrder, TicketFilter};
use domain::values::{reject_nul, MessageText, SearchQuery, Topic};
use domain::workflow::{self, StaffOnly, TicketUpdate};
use domain::{Priority, Ticket, TicketId, TicketStatus, UserId};

use super::{path_id, ListQuery};
use crate::auth::ClaimedCaller;
use crate::body::{CanonicalJson, JsonBody};
use crate::conditional::{self, etag};
use crate::dto::{OpenTicketRequest, PatchTicketRequest, StatusRequest, TicketResponse};
use crate::error::{ApiError, ErrorKind};
use crate::idempotency;
use crate::openapi::params::{
    IdempotencyKeyHeader, IfMatchHeader, IfNoneMatchHeader, PageParams, TicketFilterParams,
    TicketPath,
};
use crate::openapi::responses::{
    BadRequest, Conflict, Forbidden, InternalServerError, NotFound, NotModified, PayloadTooLarge,
    PreconditionFailed, ServiceUnavailable, Unauthorized, UnprocessableContent,
    UnsupportedMediaType,
};
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;

/// The response to a new ticket: `201`, `Location`, `ETag` and the ticket as the caller
/// sees it. Also what a repeat with the same `Idempotency-Key` gets again.
fn created(ticket: &Ticket, caller_is_staff: bool) -> StoredResponse {
    idempotency::stored_json(
        StatusCode::CREATED,
        Some(format!("/tickets/{}", ticket.id)),
        Some(etag(ticket.version)),
        &TicketResponse::new(ticket.clone(), caller_is_staff),
    )
}

/// `200` with one ticket and its `ETag`.
fn one_ticket(ticket: Ticket, caller_is_staff: bool) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(ticket.version)))
        .json(TicketResponse::new(ticket, caller_is_staff))
}

/// Open a ticket
///
/// Creates the ticket with status `pending` and priority `normal` and, in the same
/// transaction, its first message (type `request`) holding `text`. Staff may open
/// tickets too. With an `Idempotency-Key`, a repeat of the same request gets the first
/// response again (with `Idempotent-Replayed: true`) and opens nothing.
#[utoipa::path(
    post,
    path = "/tickets",
    operation_id = "open_ticket",
    tag = "tickets",
    params(IdempotencyKeyHeader),
    request_body = OpenTicketRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The new ticket (or, for a repeat, the first response again).", body = TicketResponse,
            headers(
                ("Location" = String, description = "`/tickets/{id}` of the new ticket."),
                ("ETag" = String, description = "`\"<version>\"`."),
                ("Idempotent-Replayed" = String, description = "`true` on a repeat of a request with the same `Idempotency-Key`."),
            ),
            links(
                ("GetTicket" = (operation_id = "get_ticket", parameters(("id" = "$response.body#/id")))),
                ("ChangeStatus" = (operation_id = "change_ticket_status", parameters(("id" = "$response.body#/id")))),
                ("ListMessages" = (operation_id = "list_messages", parameters(("id" = "$response.body#/id")))),
                ("PostMessage" = (operation_id = "post_message", parameters(("id" = "$response.body#/id")))),
                ("History" = (operation_id = "ticket_history", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn open(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
    body: CanonicalJson<OpenTicketRequest>,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let topic = Topic::parse(&body.body.topic)?;
            let text = MessageText::parse(&body.body.text)?;
            let staff = caller.is_staff();
            let key = idempotency::guard(&req, &body.canonical, move |ticket: &Ticket| {
                created(ticket, staff)
            })?;
            Ok(match state.tickets.open(caller, topic, text, key).await? {
                Written::Fresh(ticket) => idempotency::respond(created(&ticket, staff), false),
                Written::Replayed(first) => idempotency::respond(first, true),
            })
        })
        .await
}

fn parse_status(raw: &str) -> Result<TicketStatus, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            ErrorKind::StatusUnknown,
            "The status must be one of pending, resolved, unresolved, canceled.",
        )
    })
}

fn parse_priority(raw: &str) -> Result<Priority, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            ErrorKind::PriorityInvalid,
            "The priority must be one of low, normal, high, urgent.",
        )
    })
}

/// A comma-separated list of names.
fn parse_list<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    match raw {
        Some(list) => list.split(',').map(|s| parse(s.trim())).collect(),
        None => Ok(Vec::new()),
    }
}

/// `me`, `none`, or a user id.
fn parse_assignee(raw: &str, caller: UserId) -> Result<AssigneeFilter, ApiError> {
    match raw.trim() {
        "me" => Ok(AssigneeFilter::User(caller)),
        "none" => Ok(AssigneeFilter::Nobody),
        id => UserId::parse(id).map(AssigneeFilter::User).ok_or_else(|| {
            ApiError::new(
                ErrorKind::AssigneeFilterInvalid,
                "The parameter `assignee` must be `me`, `none` or a user id.",
            )
        }),
    }
}

fn parse_filter(query: &ListQuery, caller: UserId) -> Result<TicketFilter, ApiError> {
    let statuses = parse_list(query.status.as_deref(), parse_status)?;
    let priorities = parse_list(query.priority.as_deref(), parse_priority)?;
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
    let assignee = query
        .assignee
        .as_deref()
        .map(|raw| parse_assignee(raw, caller))
        .transpose()?;
    let search = match query.q.as_deref() {
        Some(raw) => SearchQuery::parse(raw)?,
        None => None,
    };
    Ok(TicketFilter {
        statuses,
        priorities,
        author_email,
        assignee,
        search,
        order,
    })
}

/// List and search tickets
///
/// A customer gets their own tickets; staff get every ticket, with `author`. `q`
/// searches the topic and the messages' texts (English stemming; quoted phrases, `or`
/// and `-word` as in PostgreSQL's `websearch_to_tsquery`); a customer's search never
/// matches an internal note. Every filter combines with the others and with paging.
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
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let query = ListQuery::parse(&req)?;
            let filter = parse_filter(&query, caller.id)?;
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
        })
        .await
}

/// Read a ticket
///
/// With `If-None-Match` holding the ticket's current `ETag`, `304` and no body.
#[utoipa::path(
    get,
    path = "/tickets/{id}",
    operation_id = "get_ticket",
    tag = "tickets",
    params(TicketPath, IfNoneMatchHeader),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The ticket.", body = TicketResponse,
            headers(("ETag" = String, description = "`\"<version>\"`."))),
        (status = 304, response = NotModified),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let id = path_id(&path, TicketId::parse)?;
            let ticket = state.tickets.get(caller, id).await?;
            if conditional::none_match(&req, ticket.version) {
                return Ok(HttpResponse::NotModified()
                    .insert_header((header::ETAG, etag(ticket.version)))
                    .finish());
            }
            Ok(one_ticket(ticket, caller.is_staff()))
        })
        .await
}

/// Set a ticket's status
///
/// Only `status` is read. The ticket's author (any role) may set `canceled` from
/// `pending` or `unresolved`; staff may set `pending`, `resolved` and `unresolved` from
/// any of those. `resolved` needs a staff response on the ticket; `canceled` is final.
/// Setting the status the ticket has changes nothing. `400` for a status this caller
/// may never set, `409` for a transition the rules forbid now, `412` when `If-Match`
/// does not hold the ticket's current `ETag`.
#[utoipa::path(
    put,
    path = "/tickets/{id}",
    operation_id = "change_ticket_status",
    tag = "tickets",
    params(TicketPath, IfMatchHeader),
    request_body = StatusRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The ticket after the change.", body = TicketResponse,
            headers(("ETag" = String, description = "`\"<version>\"`."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn set_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<StatusRequest>,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let id = path_id(&path, TicketId::parse)?;
            let update = TicketUpdate {
                status: Some(parse_status(&body.status)?),
                ..TicketUpdate::default()
            };
            let ticket = state
                .tickets
                .update(caller, id, update, conditional::if_match(&req))
                .await?;
            Ok(one_ticket(ticket, caller.is_staff()))
        })
        .await
}

/// Change a ticket
///
/// Any of `status` (by the same rules as `PUT`), `priority` and `assignee_id`, alone
/// or together: a request changes all of its fields or none, and a field set to the
/// value it has changes nothing. Only staff may send `priority` and `assignee_id`
/// (`403` `staff_only` otherwise); an assignee must be an active member of staff
/// (`400` `assignee_invalid`). A canceled ticket changes no more (`409`). `412` when
/// `If-Match` does not hold the ticket's current `ETag`.
#[utoipa::path(
    patch,
    path = "/tickets/{id}",
    operation_id = "patch_ticket",
    tag = "tickets",
    params(TicketPath, IfMatchHeader),
    request_body = PatchTicketRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The ticket after the change.", body = TicketResponse,
            headers(("ETag" = String, description = "`\"<version>\"`."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    claimed: ClaimedCaller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<PatchTicketRequest>,
) -> Result<HttpResponse, ApiError> {
    claimed
        .run(&state, async |caller| {
            let id = path_id(&path, TicketId::parse)?;
            // Who may send the staff fields comes before what they hold: a customer sending
            // either gets 403, whatever its value.
            let sends_staff_fields = body.priority.is_some() || body.assignee_id.is_some();
            if sends_staff_fields && !workflow::may_triage(caller.role) {
                return Err(StaffOnly.into());
            }
            let assignee = match body.assignee_id {
                None => None,
                Some(None) => Some(None),
                // An id that no user can have is no active member of staff either.
                Some(Some(raw)) => Some(Some(UserId::new(raw).ok_or_else(|| {
                    ApiError::from(domain::tickets::UpdateTicketError::AssigneeInvalid)
                })?)),
            };
            let update = TicketUpdate {
                status: body.status.as_deref().map(parse_status).transpose()?,
                priority: body.priority.as_deref().map(parse_priority).transpose()?,
                assignee,
            };
            if update == TicketUpdate::default() {
                // As before `priority` and `assignee_id` existed, a body without a field to
                // change is refused: it is most likely a misspelt field, which would be ignored.
                return Err(ApiError::new(
                    ErrorKind::InvalidBody,
                    "The body must set at least one of `status`, `priority` and `assignee_id`.",
                ));
            }
            let ticket = state
                .tickets
                .update(caller, id, update, conditional::if_match(&req))
                .await?;
            Ok(one_ticket(ticket, caller.is_staff()))
        })
        .await
}
