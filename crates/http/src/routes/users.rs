//! `/users` and `/users/{id}`: registration, the staff list, reading and updating.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::users::{Registration, RegistrationAuthority, UserUpdate};
use domain::values::{Email, Password, Username};
use domain::UserId;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{path_id, ListQuery};
use crate::auth::{bearer_token, request_token, Authenticated};
use crate::body::JsonBody;
use crate::dto::{
    RegisterRequest, TicketResponse, UpdateUserRequest, UserDetailResponse, UserResponse,
};
use crate::error::ApiError;
use crate::openapi::params::{PageParams, UserPath};
use crate::openapi::responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, ServiceUnavailable, Unauthorized,
    UnsupportedMediaType,
};
use crate::pagination::{next_link, page_request, page_response, CursorScope};
use crate::state::AppState;
use domain::values::reject_nul;

/// Register a user
///
/// Anyone may register a customer. `"isStaff": true` registers staff: that needs the
/// staff API key as `Authorization: Bearer <key>` (compared in constant time), or the
/// token of a logged-in superuser; without either the answer is `401`. `is_superuser`
/// appears in the answer only when a staff member's token vouched for it.
#[utoipa::path(
    post,
    path = "/users",
    operation_id = "register_user",
    tag = "users",
    request_body = RegisterRequest,
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The new user.", body = UserResponse,
            headers(("Location" = String, description = "`/users/{id}` of the new user.")),
            links(
                ("GetUser" = (operation_id = "get_user", parameters(("id" = "$response.body#/id")),
                    description = "Read the new user (staff, or the user themself).")),
                ("UpdateUser" = (operation_id = "update_user", parameters(("id" = "$response.body#/id")),
                    description = "Change the new user (staff, or the user themself).")),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let registration = Registration {
        email: Email::parse(&body.email)?,
        password: Password::parse(&body.password)?,
        username: Username::parse(&body.username)?,
        is_staff: body.is_staff.unwrap_or(false),
    };
    let authority = if registration.is_staff {
        registration_authority(&req, &state).await?
    } else {
        RegistrationAuthority::Anonymous
    };
    let caller_is_staff = matches!(authority, RegistrationAuthority::User(c) if c.is_staff());
    let user = state.users.register(registration, authority).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/users/{}", user.id)))
        .json(UserResponse::new(user, caller_is_staff)))
}

/// Who vouches for a staff registration: the staff key as a Bearer token (compared in
/// constant time), or the token of a logged-in user (the domain requires a superuser).
async fn registration_authority(
    req: &HttpRequest,
    state: &AppState,
) -> Result<RegistrationAuthority, ApiError> {
    let bearer = bearer_token(req);
    if let (Some(presented), Some(key)) = (bearer, &state.staff_api_key) {
        if secrets_equal(presented.as_bytes(), key.expose_secret().as_bytes()) {
            return Ok(RegistrationAuthority::StaffKey);
        }
    }
    // The key is accepted only as a Bearer token; a cookie can only carry a JWT.
    let Some(token) = request_token(req) else {
        return Ok(RegistrationAuthority::Anonymous);
    };
    match state.caller_from_token(&token).await {
        Ok(caller) => Ok(RegistrationAuthority::User(caller)),
        Err(e) if e.kind().status().is_server_error() => Err(e),
        Err(_) => Ok(RegistrationAuthority::Anonymous),
    }
}

/// Compares digests so that neither the content nor the length of the key leaks
/// through timing.
fn secrets_equal(presented: &[u8], expected: &[u8]) -> bool {
    let presented = Sha256::digest(presented);
    let expected = Sha256::digest(expected);
    presented.ct_eq(&expected).into()
}

/// List users (staff only)
///
/// Each with `tickets_count`, ordered by `tickets_count` descending, then `id`.
#[utoipa::path(
    get,
    path = "/users",
    operation_id = "list_users",
    tag = "users",
    params(PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of users.", body = Vec<UserResponse>,
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
    let query = ListQuery::parse(&req)?;
    let page = page_request(query.limit.as_deref(), query.cursor.as_deref(), |raw| {
        state.cursors.decode_users(raw)
    })?;
    let page = state.users.list_users(caller, page).await?;
    let next = page.next.map(|key| state.cursors.encode_users(key));
    let users: Vec<UserResponse> = page
        .items
        .into_iter()
        .map(|u| UserResponse::new(u, caller.is_staff()))
        .collect();
    Ok(page_response(&req, &users, next))
}

/// `/users/me` is the caller; anything else must be a positive id.
fn target_user(raw: &str, caller: domain::Caller) -> Result<UserId, ApiError> {
    if raw == "me" {
        return Ok(caller.id);
    }
    path_id(raw, UserId::parse)
}

/// Read a user (staff, or the user themself)
///
/// The user with their tickets, oldest first; `limit` and `cursor` page through the
/// tickets. `/users/me` is the caller.
#[utoipa::path(
    get,
    path = "/users/{id}",
    operation_id = "get_user",
    tag = "users",
    params(UserPath, PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The user and one page of their tickets.", body = UserDetailResponse,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when the user has more tickets."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = target_user(&path, caller)?;
    let query = ListQuery::parse(&req)?;
    let scope = CursorScope::UserTickets(id.get());
    let tickets = page_request(query.limit.as_deref(), query.cursor.as_deref(), |raw| {
        state.cursors.decode_created(&scope, raw)
    })?;
    let found = state.users.get_user(caller, id, tickets).await?;
    let next = found
        .tickets
        .next
        .map(|key| state.cursors.encode_created(&scope, key));
    let detail = UserDetailResponse {
        user: UserResponse::new(found.user, caller.is_staff()),
        tickets: TicketResponse::list(found.tickets.items, caller.is_staff()),
    };
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = next {
        response.insert_header(next_link(&req, &cursor));
    }
    Ok(response.json(detail))
}

/// Change a user
///
/// The user themself may change `username`, and `password` with `current_password`.
/// Staff may change the `username` of any customer. A superuser may also change
/// `is_staff` and `is_active` of anyone but themself. Anything else is `403`.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    operation_id = "update_user",
    tag = "users",
    params(UserPath),
    request_body = UpdateUserRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The updated user.", body = UserResponse),
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
    JsonBody(body): JsonBody<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = target_user(&path, caller)?;
    if let Some(current) = &body.current_password {
        reject_nul("current_password", current)?;
    }
    let update = UserUpdate {
        username: body.username.as_deref().map(Username::parse).transpose()?,
        password: body.password.as_deref().map(Password::parse).transpose()?,
        current_password: body.current_password,
        is_staff: body.is_staff,
        is_active: body.is_active,
    };
    let user = state.users.update_user(caller, id, update).await?;
    Ok(HttpResponse::Ok().json(UserResponse::new(user, caller.is_staff())))
}
