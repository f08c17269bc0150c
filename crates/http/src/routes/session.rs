//! `POST /login` and `POST /logout`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use time::OffsetDateTime;

use crate::auth::TOKEN_COOKIE;
use crate::body::JsonBody;
use crate::dto::{LoginRequest, LoginResponse};
use crate::error::ApiError;
use crate::openapi::responses::{
    BadRequest, PayloadTooLarge, ServiceUnavailable, TooManyRequests, Unauthorized,
    UnsupportedMediaType,
};
use crate::state::AppState;
use domain::values::reject_nul;

fn session_cookie(value: String, max_age_secs: i64, secure: bool) -> Cookie<'static> {
    Cookie::build(TOKEN_COOKIE, value)
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(CookieDuration::seconds(max_age_secs))
        .secure(secure)
        .finish()
}

/// Log in
///
/// Returns a JWT and sets it as the `token` cookie. An unknown e-mail, a wrong password
/// and a deactivated account get the same `401`.
#[utoipa::path(
    post,
    path = "/login",
    operation_id = "login",
    tag = "session",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in.", body = LoginResponse,
            headers(("Set-Cookie" = String,
                description = "`token=<jwt>; HttpOnly; SameSite=Lax; Path=/; Max-Age=<ttl>`, plus `Secure` over HTTPS."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    )
)]
// Unknown e-mail, wrong password and deactivated account take the same time too (the
// domain verifies a dummy hash for unknown accounts).
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    reject_nul("email", &body.email)?;
    reject_nul("password", &body.password)?;
    // The TCP peer: behind a proxy, the proxy's address (see the README).
    let address = req.peer_addr().map(|a| a.ip());
    let caller = state
        .throttle
        .login(
            &state.users,
            &body.email,
            body.password,
            address,
            OffsetDateTime::now_utc(),
        )
        .await?;
    let token = state.tokens.issue(caller).map_err(ApiError::internal)?;
    let ttl = state.tokens.ttl().as_secs();
    let cookie = session_cookie(
        token.clone(),
        i64::try_from(ttl).unwrap_or(i64::MAX),
        state.secure_cookies,
    );
    Ok(HttpResponse::Ok().cookie(cookie).json(LoginResponse {
        token,
        token_type: "Bearer",
        expires_in: ttl,
    }))
}

/// Log out
///
/// Clears the `token` cookie. Tokens are stateless: one sent as a Bearer token stays
/// valid until it expires.
#[utoipa::path(
    post,
    path = "/logout",
    operation_id = "logout",
    tag = "session",
    responses(
        (status = 204, description = "The cookie is cleared.",
            headers(("Set-Cookie" = String, description = "`token=` with `Max-Age=0`."))),
    )
)]
pub async fn logout(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::NoContent()
        .cookie(session_cookie(String::new(), 0, state.secure_cookies))
        .finish()
}
