//! The one place that chooses HTTP status codes: every failure becomes an [`ApiError`],
//! answered as `application/problem+json` (RFC 9457) with a stable `code`. Causes are
//! logged, never sent.

use std::borrow::Cow;
use std::error::Error as StdError;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use domain::idempotency::KeyConflict;
use domain::status::TransitionError;
use domain::tickets::{OpenError, PostMessageError, ReadTicketError, UpdateTicketError};
use domain::users::{LoginError, ReadUserError, RegisterError, UpdateUserError};
use domain::webhooks::WebhookError;
use domain::workflow::{StaffOnly, UpdateRefused};
use domain::{RepositoryError, RepositoryErrorKind, ValidationError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The error table: each kind's status and stable code, declared once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    MalformedJson,
    InvalidBody,
    InvalidQuery,
    /// A value type refused a field; the code comes from the domain's `ValidationError`.
    Validation(&'static str),
    StatusUnknown,
    StatusNotAllowed,
    PriorityInvalid,
    AssigneeInvalid,
    AssigneeFilterInvalid,
    CursorInvalid,
    OrderInvalid,
    CurrentPasswordRequired,
    CurrentPasswordIncorrect,
    Unauthenticated,
    InvalidToken,
    InvalidCredentials,
    StaffKeyRequired,
    Forbidden,
    StaffOnly,
    CorsPreflightRefused,
    NotFound,
    TicketNotFound,
    UserNotFound,
    WebhookNotFound,
    MethodNotAllowed,
    EmailTaken,
    TicketCanceled,
    CannotCancelResolved,
    ResponseRequired,
    ConcurrentUpdate,
    IdempotencyKeyInUse,
    PreconditionFailed,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyAttempts,
    ServiceUnavailable,
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        use ErrorKind::*;
        match self {
            MalformedJson
            | InvalidBody
            | InvalidQuery
            | Validation(_)
            | StatusUnknown
            | StatusNotAllowed
            | PriorityInvalid
            | AssigneeInvalid
            | AssigneeFilterInvalid
            | CursorInvalid
            | OrderInvalid
            | CurrentPasswordRequired
            | CurrentPasswordIncorrect => StatusCode::BAD_REQUEST,
            Unauthenticated | InvalidToken | InvalidCredentials | StaffKeyRequired => {
                StatusCode::UNAUTHORIZED
            }
            Forbidden | StaffOnly | CorsPreflightRefused => StatusCode::FORBIDDEN,
            NotFound | TicketNotFound | UserNotFound | WebhookNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            EmailTaken | TicketCanceled | CannotCancelResolved | ResponseRequired
            | ConcurrentUpdate | IdempotencyKeyInUse => StatusCode::CONFLICT,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(self) -> &'static str {
        use ErrorKind::*;
        match self {
            MalformedJson => "malformed_json",
            InvalidBody => "invalid_body",
            InvalidQuery => "invalid_query",
            Validation(code) => code,
            StatusUnknown => "status_unknown",
            StatusNotAllowed => "status_not_allowed",
            PriorityInvalid => "priority_invalid",
            AssigneeInvalid => "assignee_invalid",
            AssigneeFilterInvalid => "assignee_filter_invalid",
            CursorInvalid => "cursor_invalid",
            OrderInvalid => "order_invalid",
            CurrentPasswordRequired => "current_password_required",
            CurrentPasswordIncorrect => "current_password_incorrect",
            Unauthenticated => "unauthenticated",
            InvalidToken => "invalid_token",
            InvalidCredentials => "invalid_credentials",
            StaffKeyRequired => "staff_key_required",
            Forbidden => "forbidden",
            StaffOnly => "staff_only",
            CorsPreflightRefused => "cors_preflight_refused",
            NotFound => "not_found",
            TicketNotFound => "ticket_not_found",
            UserNotFound => "user_not_found",
            WebhookNotFound => "webhook_not_found",
            MethodNotAllowed => "method_not_allowed",
            EmailTaken => "email_taken",
            TicketCanceled => "ticket_canceled",
            CannotCancelResolved => "cannot_cancel_resolved",
            ResponseRequired => "response_required",
            ConcurrentUpdate => "concurrent_update",
            IdempotencyKeyInUse => "idempotency_key_in_use",
            PreconditionFailed => "precondition_failed",
            IdempotencyKeyReused => "idempotency_key_reused",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            TooManyAttempts => "too_many_attempts",
            ServiceUnavailable => "service_unavailable",
            Internal => "internal_error",
        }
    }
}

/// One refused field of a validation error.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    #[schema(examples("topic"))]
    pub field: &'static str,
    #[schema(examples("The field `topic` must hold 1 to 20 characters."))]
    pub message: String,
}

/// An error answer: kind, a sentence for people, and what the response needs beyond
/// the body (headers). `source` is for the logs only.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    detail: Cow<'static, str>,
    field_errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    /// Boxed, to keep `ApiError` (returned everywhere) small.
    allow: Option<Box<str>>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.kind.code())?;
        if let Some(source) = &self.source {
            write!(f, ": {}", crate::startup::error_chain(source.as_ref()))?;
        }
        Ok(())
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            field_errors: Vec::new(),
            retry_after_secs: None,
            allow: None,
            source: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A refusal of the request as sent (`4xx`), rather than a failure to serve it.
    pub fn is_refusal(&self) -> bool {
        self.kind.status().is_client_error()
    }

    /// The adapter could not confirm the caller the request assumed (answered `401`
    /// unless `ClaimedCaller::run` decides the request again).
    pub fn caller_changed(&self) -> bool {
        self.source
            .as_deref()
            .and_then(|source| source.downcast_ref::<RepositoryError>())
            .is_some_and(|e| e.kind() == RepositoryErrorKind::CallerChanged)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            "This request needs a token: log in and send it as a Bearer token or the `token` cookie.",
        )
    }

    pub fn invalid_token() -> Self {
        Self::new(
            ErrorKind::InvalidToken,
            "The token is invalid or expired, or its user no longer exists or is deactivated.",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            ErrorKind::Forbidden,
            "Your role does not allow this request.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound, "There is nothing at this path.")
    }

    pub fn ticket_not_found() -> Self {
        Self::new(ErrorKind::TicketNotFound, "No such ticket.")
    }

    pub fn method_not_allowed(allow: impl Into<String>) -> Self {
        let allow = allow.into().into_boxed_str();
        let mut error = Self::new(
            ErrorKind::MethodNotAllowed,
            format!("This path supports only: {allow}."),
        );
        error.allow = Some(allow);
        error
    }

    /// A preflight from an allowed origin that asks for a method or header we do not
    /// allow; `reason` is actix-cors' sentence, which names no secret.
    pub fn cors_preflight_refused(reason: String) -> Self {
        Self::new(
            ErrorKind::CorsPreflightRefused,
            format!("This cross-origin request is not allowed: {reason}."),
        )
    }

    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            ErrorKind::TooManyAttempts,
            "Too many failed logins; try again later.",
        );
        error.retry_after_secs = Some(retry_after_secs.max(1));
        error
    }

    /// The database (or another dependency) failed: 503, cause logged.
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let mut error = Self::new(
            ErrorKind::ServiceUnavailable,
            "The service is temporarily unavailable; try again shortly.",
        );
        error.source = Some(source.into());
        error
    }

    /// The service is stopping (readiness during the drain).
    pub fn shutting_down() -> Self {
        Self::new(
            ErrorKind::ServiceUnavailable,
            "The service is shutting down; send requests to another instance.",
        )
    }

    pub fn internal(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let mut error = Self::new(ErrorKind::Internal, "An unexpected error occurred.");
        error.source = Some(source.into());
        error
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let mut error = Self::new(ErrorKind::Validation(e.code), e.message.clone());
        error.field_errors.push(FieldError {
            field: e.field,
            message: e.message,
        });
        error
    }
}

/// An outage is a `503` to retry; a caller the adapter could not confirm is a `401`;
/// anything else is a bug, a `500` to fix.
impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        match e.kind() {
            RepositoryErrorKind::Unavailable => ApiError::unavailable(e),
            RepositoryErrorKind::Unexpected => ApiError::internal(e),
            // Outside `ClaimedCaller::run`: the user was deactivated (or their role
            // changed) while the request ran.
            RepositoryErrorKind::CallerChanged => {
                let mut error = ApiError::invalid_token();
                error.source = Some(e.into());
                error
            }
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::SuperuserOnly => {
                ApiError::new(ErrorKind::Forbidden, "Only superusers manage webhooks.")
            }
            WebhookError::NotFound => ApiError::new(ErrorKind::WebhookNotFound, "No such webhook."),
            WebhookError::Unexpected(e) => e.into(),
        }
    }
}

impl From<StaffOnly> for ApiError {
    fn from(_: StaffOnly) -> Self {
        ApiError::new(
            ErrorKind::StaffOnly,
            "Only staff may send this (`priority`, `assignee_id`, `internal`).",
        )
    }
}

impl From<KeyConflict> for ApiError {
    fn from(e: KeyConflict) -> Self {
        match e {
            KeyConflict::InUse => ApiError::new(
                ErrorKind::IdempotencyKeyInUse,
                "A request with this Idempotency-Key is still running; retry after it ends.",
            ),
            KeyConflict::Reused => ApiError::new(
                ErrorKind::IdempotencyKeyReused,
                "This Idempotency-Key was used for another request (another method, path \
                 or body); use a new key for a new request.",
            ),
        }
    }
}

pub fn precondition_failed() -> ApiError {
    ApiError::new(
        ErrorKind::PreconditionFailed,
        "The ticket has changed since the version in If-Match; read it again.",
    )
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        let kind = match e {
            TransitionError::NotPermitted(_) => ErrorKind::StatusNotAllowed,
            TransitionError::TicketCanceled => ErrorKind::TicketCanceled,
            TransitionError::CannotCancelResolved => ErrorKind::CannotCancelResolved,
            TransitionError::ResponseRequired => ErrorKind::ResponseRequired,
        };
        let detail = match e {
            TransitionError::NotPermitted(status) => {
                format!("You may not set the status `{status}` on this ticket.")
            }
            TransitionError::TicketCanceled => {
                "The ticket is canceled; its status can no longer change.".to_owned()
            }
            TransitionError::CannotCancelResolved => {
                "A resolved ticket cannot be canceled.".to_owned()
            }
            TransitionError::ResponseRequired => {
                "A ticket can be resolved only after staff have responded to it.".to_owned()
            }
        };
        ApiError::new(kind, detail)
    }
}

impl From<UpdateRefused> for ApiError {
    fn from(e: UpdateRefused) -> Self {
        match e {
            UpdateRefused::StaffOnly(e) => e.into(),
            UpdateRefused::Status(rule) => rule.into(),
            UpdateRefused::TicketCanceled => ApiError::new(
                ErrorKind::TicketCanceled,
                "The ticket is canceled; it can no longer change.",
            ),
        }
    }
}

impl From<UpdateTicketError> for ApiError {
    fn from(e: UpdateTicketError) -> Self {
        match e {
            UpdateTicketError::NotFound => ApiError::ticket_not_found(),
            UpdateTicketError::Refused(rule) => rule.into(),
            UpdateTicketError::AssigneeInvalid => ApiError::new(
                ErrorKind::AssigneeInvalid,
                "`assignee_id` must be the id of an active member of staff, or null.",
            ),
            UpdateTicketError::PreconditionFailed => precondition_failed(),
            UpdateTicketError::Conflict => ApiError::new(
                ErrorKind::ConcurrentUpdate,
                "The ticket kept changing concurrently; retry the request.",
            ),
            UpdateTicketError::Unexpected(e) => e.into(),
        }
    }
}

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Key(conflict) => conflict.into(),
            OpenError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ReadTicketError> for ApiError {
    fn from(e: ReadTicketError) -> Self {
        match e {
            ReadTicketError::NotFound => ApiError::ticket_not_found(),
            ReadTicketError::Unexpected(e) => e.into(),
        }
    }
}

impl From<PostMessageError> for ApiError {
    fn from(e: PostMessageError) -> Self {
        match e {
            PostMessageError::StaffOnly(e) => e.into(),
            PostMessageError::NotFound => ApiError::ticket_not_found(),
            PostMessageError::TicketCanceled => ApiError::new(
                ErrorKind::TicketCanceled,
                "The ticket is canceled; it takes no more messages, only internal notes.",
            ),
            PostMessageError::PreconditionFailed => precondition_failed(),
            PostMessageError::Key(conflict) => conflict.into(),
            PostMessageError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::StaffAuthorizationRequired => ApiError::new(
                ErrorKind::StaffKeyRequired,
                "Registering staff needs the staff API key (or a superuser's token) as a Bearer token.",
            ),
            RegisterError::EmailTaken => ApiError::new(
                ErrorKind::EmailTaken,
                "This e-mail address is already registered.",
            ),
            RegisterError::Unexpected(e) => e.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::InvalidCredentials => ApiError::new(
                ErrorKind::InvalidCredentials,
                "The e-mail address or the password is wrong.",
            ),
            LoginError::TooManyFailures(throttled) => {
                ApiError::too_many_attempts(throttled.retry_after_secs)
            }
            LoginError::Unexpected(e) => e.into(),
        }
    }
}

fn user_not_found() -> ApiError {
    ApiError::new(ErrorKind::UserNotFound, "No such user.")
}

impl From<ReadUserError> for ApiError {
    fn from(e: ReadUserError) -> Self {
        match e {
            ReadUserError::Forbidden => ApiError::forbidden(),
            ReadUserError::NotFound => user_not_found(),
            ReadUserError::Unexpected(e) => e.into(),
        }
    }
}

impl From<UpdateUserError> for ApiError {
    fn from(e: UpdateUserError) -> Self {
        match e {
            UpdateUserError::Forbidden => ApiError::forbidden(),
            UpdateUserError::NotFound => user_not_found(),
            UpdateUserError::CurrentPasswordRequired => ApiError::new(
                ErrorKind::CurrentPasswordRequired,
                "Changing the password needs `current_password`.",
            ),
            UpdateUserError::CurrentPasswordIncorrect => ApiError::new(
                ErrorKind::CurrentPasswordIncorrect,
                "`current_password` is wrong.",
            ),
            UpdateUserError::Unexpected(e) => e.into(),
        }
    }
}

/// The `code` of a problem response, in its extensions for the metrics middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCode(pub &'static str);

/// The body of every error (RFC 9457 problem details, `application/problem+json`).
#[derive(Serialize, ToSchema)]
#[schema(as = Problem, example = json!({"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "Password must be at least 8 characters.", "code": "password_too_short", "errors": [{"field": "password", "message": "Password must be at least 8 characters."}]}))]
pub(crate) struct ProblemBody<'a> {
    /// Always `about:blank`: the status and `code` say what happened.
    #[serde(rename = "type")]
    #[schema(examples("about:blank"))]
    kind: &'static str,
    /// The status's reason phrase.
    #[schema(examples("Bad Request"))]
    title: &'a str,
    #[schema(minimum = 400, maximum = 599, examples(400))]
    status: u16,
    /// A sentence for people.
    #[schema(examples("Password must be at least 8 characters."))]
    detail: &'a str,
    /// A stable snake_case identifier for programs.
    #[schema(pattern = "^[a-z0-9_]+$", examples("password_too_short"))]
    code: &'static str,
    /// The refused fields of a validation error; absent otherwise.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(value_type = Vec<FieldError>, required = false)]
    errors: &'a [FieldError],
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let body = ProblemBody {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: &self.detail,
            code: self.kind.code(),
            errors: &self.field_errors,
        };
        let mut response = HttpResponse::build(status);
        // For the metrics, which count problems by code where the response leaves.
        response
            .extensions_mut()
            .insert(ProblemCode(self.kind.code()));
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if self.kind == ErrorKind::Unauthenticated || self.kind == ErrorKind::InvalidToken {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            response.insert_header((header::ALLOW, allow));
        }
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        match serde_json::to_vec(&body) {
            Ok(bytes) => response.body(bytes),
            // Serializing a struct of strings and numbers cannot fail; answer plainly if it does.
            Err(_) => HttpResponse::InternalServerError().finish(),
        }
    }
}
