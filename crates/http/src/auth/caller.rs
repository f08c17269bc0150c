//! The `Authenticated` extractor: finds the token (the `Authorization: Bearer` header
//! first, else the `token` cookie), verifies it, and reads the user's role and activity
//! from the database for this request.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use domain::Caller;
use futures_util::future::LocalBoxFuture;

use crate::error::ApiError;
use crate::state::AppState;

pub const TOKEN_COOKIE: &str = "token";

/// The caller of a request that requires a token.
pub struct Authenticated(pub Caller);

/// The credentials of `Authorization: Bearer <credentials>`, if the header has that form.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
        .filter(|c| !c.is_empty())
}

/// The token the request carries, if any: a malformed `Authorization` header counts as
/// a token (and fails verification) rather than being silently ignored.
pub(crate) fn request_token(req: &HttpRequest) -> Option<String> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return Some(bearer_token(req).unwrap_or_default().to_owned());
    }
    req.cookie(TOKEN_COOKIE).map(|c| c.value().to_owned())
}

impl AppState {
    /// Verifies a token and loads its user afresh.
    pub async fn caller_from_token(&self, token: &str) -> Result<Caller, ApiError> {
        let user_id = self
            .tokens
            .verify(token)
            .map_err(|_| ApiError::invalid_token())?;
        self.users
            .authenticate(user_id)
            .await?
            .ok_or_else(ApiError::invalid_token)
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = request_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = token.ok_or_else(ApiError::unauthenticated)?;
            state.caller_from_token(&token).await.map(Authenticated)
        })
    }
}
