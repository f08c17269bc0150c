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
use crate::auth::{bearer_token, Authenticated, TOKEN_COOKIE};
use crate::body::JsonBody;
use crate::dto::{
    RegisterRequest, TicketResponse, UpdateUserRequest, UserDetailResponse, UserResponse,
};
use crate::error::ApiError;
use crate::pagination::{next_link, page_request, page_response, CursorScope};
use crate::state::AppState;
use domain::values::reject_nul;

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
    let presented = bearer_token(req)
        .map(str::to_owned)
        .or_else(|| req.cookie(TOKEN_COOKIE).map(|c| c.value().to_owned()));
    let Some(presented) = presented else {
        return Ok(RegistrationAuthority::Anonymous);
    };
    if let Some(key) = &state.staff_api_key {
        if secrets_equal(presented.as_bytes(), key.expose_secret().as_bytes()) {
            return Ok(RegistrationAuthority::StaffKey);
        }
    }
    match state.caller_from_token(&presented).await {
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
