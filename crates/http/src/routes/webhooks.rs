//! `/webhooks`, `/webhooks/{id}` and `/webhooks/{id}/deliveries`: superusers manage
//! subscriptions and read their attempts. Everyone else gets `403`, before anything in
//! the request is looked at.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::ports::{NewWebhook, WebhookChanges};
use domain::webhook::{EventSelection, WebhookDescription, WebhookUrl};
use domain::webhooks::WebhookService;
use domain::{AttemptId, Caller, WebhookId};

use super::{path_id, ListQuery};
use crate::auth::Authenticated;
use crate::body::JsonBody;
use crate::dto::{
    AttemptResponse, CreateWebhookRequest, CreatedWebhookResponse, UpdateWebhookRequest,
    WebhookResponse,
};
use crate::error::ApiError;
use crate::openapi::params::{PageParams, WebhookPath};
use crate::openapi::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, ServiceUnavailable, Unauthorized,
    UnsupportedMediaType,
};
use crate::pagination::{page_request, page_response, CursorScope};
use crate::state::AppState;
use crate::webhooks::signing;

/// A superuser, or `403`.
fn superuser(caller: Caller) -> Result<Caller, ApiError> {
    WebhookService::authorize(caller)?;
    Ok(caller)
}

fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    path_id(raw, WebhookId::parse)
}

/// Create a webhook (superusers only)
///
/// Every event of the chosen types (internal notes included) is then POSTed to `url`
/// as its History object, signed with the Standard Webhooks scheme: headers
/// `webhook-id` (the same on every retry of one event to one webhook),
/// `webhook-timestamp` and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body`, keyed with the base64-decoded part of the secret after
/// `whsec_`). A `2xx` within 10 s delivers; anything else is retried after the
/// configured delays, then given up; `410` deactivates the webhook. The answer holds
/// the secret, which is never shown again.
#[utoipa::path(
    post,
    path = "/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    request_body = CreateWebhookRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The new webhook, with its secret.", body = CreatedWebhookResponse,
            headers(("Location" = String, description = "`/webhooks/{id}` of the new webhook."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = superuser(caller)?;
    let secret = signing::new_secret();
    let new = NewWebhook {
        url: WebhookUrl::parse(&body.url)?,
        events: EventSelection::parse(&body.events)?,
        description: WebhookDescription::parse(body.description.as_deref().unwrap_or(""))?,
        secret: secret.clone(),
    };
    let webhook = state.webhooks.create(caller, new).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/webhooks/{}", webhook.id)))
        .json(CreatedWebhookResponse::new(webhook, &secret)))
}

/// List webhooks (superusers only)
///
/// Oldest first. Secrets are not shown.
#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    params(PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of webhooks.", body = Vec<WebhookResponse>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) when more rows exist."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let caller = superuser(caller)?;
    let query = ListQuery::parse(&req)?;
    let scope = CursorScope::Webhooks;
    let page = page_request(query.limit.as_deref(), query.cursor.as_deref(), |raw| {
        let id = state.cursors.decode_id(&scope, raw)?;
        WebhookId::new(id).ok_or_else(|| state.cursors.invalid())
    })?;
    let page = state.webhooks.list(caller, page).await?;
    let next = page
        .next
        .map(|key| state.cursors.encode_id(&scope, key.get()));
    let webhooks: Vec<WebhookResponse> =
        page.items.into_iter().map(WebhookResponse::from).collect();
    Ok(page_response(&req, &webhooks, next))
}

/// Read a webhook (superusers only)
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    operation_id = "get_webhook",
    tag = "webhooks",
    params(WebhookPath),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The webhook, without its secret.", body = WebhookResponse),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = superuser(caller)?;
    let id = webhook_id(&path)?;
    let webhook = state.webhooks.get(caller, id).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(webhook)))
}

/// Change a webhook (superusers only)
///
/// Any of `url`, `events`, `description` and `active`. A deactivated webhook receives
/// nothing, not even deliveries that were due; reactivated, it receives the events
/// written from then on.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    operation_id = "update_webhook",
    tag = "webhooks",
    params(WebhookPath),
    request_body = UpdateWebhookRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The changed webhook.", body = WebhookResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = superuser(caller)?;
    let id = webhook_id(&path)?;
    let changes = WebhookChanges {
        url: body.url.as_deref().map(WebhookUrl::parse).transpose()?,
        events: body
            .events
            .as_deref()
            .map(EventSelection::parse)
            .transpose()?,
        description: body
            .description
            .as_deref()
            .map(WebhookDescription::parse)
            .transpose()?,
        active: body.active,
    };
    let webhook = state.webhooks.update(caller, id, changes).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(webhook)))
}

/// Delete a webhook (superusers only)
///
/// With its deliveries and their attempts; an attempt under way records nothing.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(WebhookPath),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = superuser(caller)?;
    let id = webhook_id(&path)?;
    state.webhooks.delete(caller, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook's delivery attempts (superusers only)
///
/// Newest first: each attempt's HTTP status (`null` when no answer came, and `error`
/// says why: a timeout, a refused connection, a refused private target), its duration,
/// and when the next attempt is due (`null` when none is).
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(WebhookPath, PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of attempts.", body = Vec<AttemptResponse>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) when more rows exist."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn deliveries(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = superuser(caller)?;
    let id = webhook_id(&path)?;
    let query = ListQuery::parse(&req)?;
    let scope = CursorScope::Attempts(id.get());
    let page = page_request(query.limit.as_deref(), query.cursor.as_deref(), |raw| {
        let id = state.cursors.decode_id(&scope, raw)?;
        AttemptId::new(id).ok_or_else(|| state.cursors.invalid())
    })?;
    let page = state.webhooks.attempts(caller, id, page).await?;
    let next = page
        .next
        .map(|key| state.cursors.encode_id(&scope, key.get()));
    let attempts: Vec<AttemptResponse> =
        page.items.into_iter().map(AttemptResponse::from).collect();
    Ok(page_response(&req, &attempts, next))
}
