//! The extractors of a request's caller: both find the token (the `Authorization:
//! Bearer` header first, else the `token` cookie) and verify it; `Authenticated` then
//! reads the user's role and activity from the database, and `ClaimedCaller` leaves
//! that to the request's own statements.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use domain::{Caller, UserId};
use futures_util::future::LocalBoxFuture;

use crate::auth::TokenSubject;
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
        let subject = self.token_subject(token)?;
        self.current_caller(subject.user).await
    }

    /// Whom a valid token was issued for; `401` for any other token.
    fn token_subject(&self, token: &str) -> Result<TokenSubject, ApiError> {
        self.tokens
            .verify(token)
            .map_err(|_| ApiError::invalid_token())
    }

    /// The user as they are now, if they may still call.
    async fn current_caller(&self, id: UserId) -> Result<Caller, ApiError> {
        self.users
            .authenticate(id)
            .await?
            .ok_or_else(ApiError::invalid_token)
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_and_token(req);
        Box::pin(async move {
            let (state, token) = found?;
            state.caller_from_token(&token).await.map(Authenticated)
        })
    }
}

/// The application's state and the request's token, which every caller needs.
fn state_and_token(req: &HttpRequest) -> Result<(web::Data<AppState>, String), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let token = request_token(req).ok_or_else(ApiError::unauthenticated)?;
    Ok((state, token))
}

/// The caller of a request that requires a token, as the token describes them: the
/// routes of tickets, messages and history take this instead of [`Authenticated`], to
/// spare a round trip to PostgreSQL.
///
/// The contract has the caller's role and activity read on every request. Rather than
/// reading them in a round trip of their own before the request's statements, these
/// routes assume the role the token was issued for, and the adapter confirms it in the
/// same round trip as the request's first statement (`TicketRepository`'s contract).
/// [`ClaimedCaller::run`] deals with the few requests whose token no longer tells the
/// truth. A token that names no role (issued before tokens did) is checked up front,
/// as [`Authenticated`] does.
pub struct ClaimedCaller {
    caller: Caller,
    /// The caller was read from the database already.
    confirmed: bool,
}

/// How often a request is decided again for a caller whose role keeps changing under
/// it, before it gives up with 503.
const CALLER_ATTEMPTS: usize = 3;

impl ClaimedCaller {
    /// Runs the request's work (`handle`, all of it after the extractors) for the
    /// caller, and makes its answer the one the caller as they are now gets:
    ///
    /// - a success went through the adapter, which confirmed the caller;
    /// - a refusal (any `4xx`) may have been decided on the claimed role alone (`403`
    ///   for a customer who is staff by now), and the adapter reports a caller it could
    ///   not confirm (having written nothing): both read the caller afresh, answer
    ///   `401` when they may no longer call, and run `handle` again when their role
    ///   changed;
    /// - an outage or a bug (`5xx`) is answered as it is.
    ///
    /// `handle` must not write anything that the adapter has not confirmed the caller
    /// for (every ticket port does), since a refusal may make it run again.
    pub async fn run<T>(
        self,
        state: &AppState,
        handle: impl AsyncFn(Caller) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut caller = self.caller;
        let mut confirmed = self.confirmed;
        for _ in 0..CALLER_ATTEMPTS {
            let refusal = match handle(caller).await {
                Ok(answer) => return Ok(answer),
                Err(e) if e.caller_changed() => None,
                Err(e) if confirmed || !e.is_refusal() => return Err(e),
                Err(e) => Some(e),
            };
            let now = state.current_caller(caller.id).await?;
            confirmed = true;
            match refusal {
                Some(refusal) if now == caller => return Err(refusal),
                Some(_) | None => caller = now,
            }
        }
        Err(ApiError::unavailable(
            "the caller's role kept changing while the request ran",
        ))
    }
}

impl FromRequest for ClaimedCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = state_and_token(req);
        Box::pin(async move {
            let (state, token) = found?;
            let subject = state.token_subject(&token)?;
            Ok(match subject.role {
                Some(role) => ClaimedCaller {
                    caller: Caller {
                        id: subject.user,
                        role,
                    },
                    confirmed: false,
                },
                None => ClaimedCaller {
                    caller: state.current_caller(subject.user).await?,
                    confirmed: true,
                },
            })
        })
    }
}
