//! The JSON shapes of requests and responses, and their conversion from domain types.
//! Field names are the original service's (`isStaff` on registration, snake_case
//! elsewhere), so existing clients keep working.

use domain::event::{EventData, TicketEvent};
use domain::ticket::UserRef;
use domain::webhook::{Attempt, Webhook, WebhookSecret};
use domain::{Message, Ticket, User};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::openapi::schemas;

/// Registers a customer, or staff with `isStaff: true` (see the operation).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "user@post.io", "password": "correct horse", "username": "michelle"}))]
pub struct RegisterRequest {
    #[schema(schema_with = schemas::email)]
    pub email: String,
    #[schema(schema_with = schemas::new_password)]
    pub password: String,
    #[schema(schema_with = schemas::username)]
    pub username: String,
    /// `true` registers staff: that needs the staff API key (or a superuser's token)
    /// as `Authorization: Bearer`.
    #[serde(rename = "isStaff", default)]
    #[schema(default = false)]
    pub is_staff: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "user@post.io", "password": "correct horse"}))]
pub struct LoginRequest {
    /// Compared without regard to case; not otherwise validated.
    #[schema(schema_with = schemas::credential)]
    pub email: String,
    #[schema(schema_with = schemas::credential)]
    pub password: String,
}

/// Every field is optional; who may change what is described on the operation.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "michelle"}))]
pub struct UpdateUserRequest {
    #[serde(default)]
    #[schema(schema_with = schemas::optional_username)]
    pub username: Option<String>,
    /// Only the user themself, and only with `current_password`.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_new_password)]
    pub password: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_credential)]
    pub current_password: Option<String>,
    /// Superusers only, for anyone but themself.
    #[serde(default)]
    pub is_staff: Option<bool>,
    /// Superusers only, for anyone but themself.
    #[serde(default)]
    pub is_active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"topic": "new discount", "text": "Is the discount still on?"}))]
pub struct OpenTicketRequest {
    #[schema(schema_with = schemas::topic)]
    pub topic: String,
    /// The ticket's first message.
    #[schema(schema_with = schemas::message_text)]
    pub text: String,
}

/// `PUT`'s body. Other fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"status": "canceled"}))]
pub struct StatusRequest {
    #[schema(value_type = schemas::TicketStatus)]
    pub status: String,
}

/// `PATCH`'s body: any of the fields, alone or together; a request changes all of them
/// or none. Other fields are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"status": "pending", "priority": "high", "assignee_id": 4}))]
pub struct PatchTicketRequest {
    #[serde(default)]
    #[schema(schema_with = schemas::optional_status)]
    pub status: Option<String>,
    /// Staff only.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_priority)]
    pub priority: Option<String>,
    /// Staff only: an active member of staff's id, or `null` to unassign.
    #[serde(default, deserialize_with = "present_integer")]
    #[schema(schema_with = schemas::assignee_id)]
    pub assignee_id: Option<Option<i64>>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or an integer. As in JSON
/// Schema, `7.0` is the integer 7; `7.5` and anything beyond 64 bits are refused.
fn present_integer<'de, D>(deserializer: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: Deserializer<'de>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(Some(None));
    };
    let integer = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
            .map(|f| f as i64)
    });
    integer
        .map(|n| Some(Some(n)))
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a 64-bit integer")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"text": "The discount ends on Friday."}))]
pub struct MessageRequest {
    #[schema(schema_with = schemas::message_text)]
    pub text: String,
    /// `true` writes an internal note (type `note`), which only staff may write and
    /// only staff see.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_flag)]
    pub internal: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJl", "token_type": "Bearer", "expires_in": 1800}))]
pub struct LoginResponse {
    /// A JWT (HS256), also set as the `token` cookie.
    pub token: String,
    #[schema(value_type = schemas::BearerTokenType)]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// A user; never a password hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 2, "created_at": "2026-11-28T11:14:10.516402Z", "username": "michelle", "email": "user@post.io", "is_staff": false, "is_active": true, "tickets_count": 3}))]
pub struct UserResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub username: String,
    pub email: String,
    pub is_staff: bool,
    /// Present only when the caller is staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub is_superuser: Option<bool>,
    pub is_active: bool,
    #[schema(minimum = 0)]
    pub tickets_count: i64,
}

impl UserResponse {
    /// `is_superuser` is shown to staff callers only.
    pub fn new(user: User, caller_is_staff: bool) -> Self {
        Self {
            id: user.id.get(),
            created_at: utc(user.created_at),
            username: user.username,
            email: user.email,
            is_staff: user.role.is_staff(),
            is_superuser: caller_is_staff.then_some(user.role.is_superuser()),
            is_active: user.is_active,
            tickets_count: user.tickets_count,
        }
    }
}

/// Its schema is written out in `openapi.rs`: the derive would describe `flatten` as
/// an `allOf` that a closed user object refuses.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetailResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    pub tickets: Vec<TicketResponse>,
}

/// A user as other records name them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 4, "username": "bob"}))]
pub struct UserRefResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    pub username: String,
}

impl From<UserRef> for UserRefResponse {
    fn from(user: UserRef) -> Self {
        Self {
            id: user.id.get(),
            username: user.username,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 10, "created_at": "2026-11-28T11:14:10.516402Z", "updated_at": "2026-11-28T11:20:02.004417Z", "author": "postman33@mpost.io", "topic": "new discount", "status": "pending", "priority": "normal", "assignee": {"id": 4, "username": "bob"}, "version": 3}))]
pub struct TicketResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The author's e-mail address; present only when the caller is staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub author: Option<String>,
    pub topic: String,
    #[schema(value_type = schemas::TicketStatus)]
    pub status: &'static str,
    #[schema(value_type = schemas::Priority)]
    pub priority: &'static str,
    /// The member of staff the ticket is assigned to; `null` for nobody.
    pub assignee: Option<UserRefResponse>,
    /// Grows whenever anything in this representation changes; the `ETag` is
    /// `"<version>"`.
    #[schema(minimum = 1)]
    pub version: i64,
}

impl TicketResponse {
    /// `author` is shown to staff callers only.
    pub fn new(ticket: Ticket, caller_is_staff: bool) -> Self {
        Self {
            id: ticket.id.get(),
            created_at: utc(ticket.created_at),
            updated_at: utc(ticket.updated_at),
            author: caller_is_staff.then_some(ticket.author_email),
            topic: ticket.topic,
            status: ticket.status.as_str(),
            priority: ticket.priority.as_str(),
            assignee: ticket.assignee.map(UserRefResponse::from),
            version: ticket.version.get(),
        }
    }

    pub fn list(tickets: Vec<Ticket>, caller_is_staff: bool) -> Vec<Self> {
        tickets
            .into_iter()
            .map(|t| Self::new(t, caller_is_staff))
            .collect()
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "created_at": "2026-11-28T11:14:10.516402Z", "type": "request", "text": "Is the discount still on?", "author": "user@post.io"}))]
pub struct MessageResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(rename = "type")]
    #[schema(value_type = schemas::MessageType)]
    pub kind: &'static str,
    pub text: String,
    /// The author's e-mail address; present only when the caller is staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub author: Option<String>,
}

impl MessageResponse {
    /// `author` is shown to staff callers only.
    pub fn new(message: Message, caller_is_staff: bool) -> Self {
        Self {
            id: message.id.get(),
            created_at: utc(message.created_at),
            kind: message.kind.as_str(),
            text: message.text,
            author: caller_is_staff.then_some(message.author_email),
        }
    }
}

/// An event of a ticket's history.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 981, "ticket_id": 10, "type": "ticket.status_changed", "created_at": "2026-11-28T11:14:10.516402Z", "actor": {"id": 4, "username": "bob"}, "data": {"from": "pending", "to": "resolved"}}))]
pub struct EventResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    #[schema(minimum = 1)]
    pub ticket_id: i64,
    #[serde(rename = "type")]
    #[schema(value_type = schemas::EventType)]
    pub kind: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who made the change; `null` for changes that no user made.
    pub actor: Option<UserRefResponse>,
    /// What changed; its fields depend on `type` (see the operation).
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<TicketEvent> for EventResponse {
    fn from(event: TicketEvent) -> Self {
        Self {
            id: event.id.get(),
            ticket_id: event.ticket_id.get(),
            kind: event.data.type_name(),
            created_at: utc(event.created_at),
            actor: event.actor.map(UserRefResponse::from),
            data: event_data(&event.data),
        }
    }
}

/// An event's `data`, as the contract's "History" table gives it.
fn event_data(data: &EventData) -> Value {
    match data {
        EventData::TicketCreated {
            topic,
            status,
            priority,
        } => json!({"topic": topic, "status": status.as_str(), "priority": priority.as_str()}),
        EventData::MessageCreated { message_id, kind } => {
            json!({"message_id": message_id.get(), "type": kind.as_str()})
        }
        EventData::NoteCreated { message_id } => json!({"message_id": message_id.get()}),
        EventData::StatusChanged { from, to } => json!({"from": from.as_str(), "to": to.as_str()}),
        EventData::PriorityChanged { from, to } => {
            json!({"from": from.as_str(), "to": to.as_str()})
        }
        EventData::Assigned { from, to } => json!({
            "from": from.map(domain::UserId::get),
            "to": to.map(domain::UserId::get),
        }),
    }
}

/// `POST /webhooks`: a subscription to create.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.com/tickets", "events": ["ticket.status_changed"], "description": "Our CRM"}))]
pub struct CreateWebhookRequest {
    #[schema(schema_with = schemas::webhook_url)]
    pub url: String,
    #[schema(value_type = schemas::WebhookEvents)]
    pub events: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_webhook_description)]
    pub description: Option<String>,
}

/// `PATCH /webhooks/{id}`: any of the fields; absent or `null` ones stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"active": true}))]
pub struct UpdateWebhookRequest {
    #[serde(default)]
    #[schema(schema_with = schemas::optional_webhook_url)]
    pub url: Option<String>,
    /// As on creation.
    #[serde(default)]
    #[schema(value_type = Option<schemas::WebhookEvents>)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_webhook_description)]
    pub description: Option<String>,
    /// `false` stops deliveries (those due too); `true` resumes them for new events.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A webhook subscription. Its secret is shown only when it is created.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "url": "https://hooks.example.com/tickets", "events": ["ticket.status_changed"], "description": "Our CRM", "active": true, "created_at": "2026-11-28T11:14:10.516402Z"}))]
pub struct WebhookResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    pub url: String,
    #[schema(value_type = schemas::WebhookEvents)]
    pub events: Vec<&'static str>,
    pub description: String,
    /// `false` once deactivated by `PATCH` or by a receiver's `410`.
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Webhook> for WebhookResponse {
    fn from(webhook: Webhook) -> Self {
        Self {
            id: webhook.id.get(),
            url: webhook.url.as_str().to_owned(),
            events: webhook.events.names(),
            description: webhook.description.as_str().to_owned(),
            active: webhook.active,
            created_at: utc(webhook.created_at),
        }
    }
}

// The fields are spelled out rather than `#[serde(flatten)]`ed, because the derive
// would describe a flattened object as `allOf`, which cannot be closed to other fields
// (see `openapi::BodyRules`).
/// The answer of `POST /webhooks`: the subscription with its signing secret, which no
/// other answer shows.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "url": "https://hooks.example.com/tickets", "events": ["ticket.status_changed"], "description": "Our CRM", "active": true, "created_at": "2026-11-28T11:14:10.516402Z", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))]
pub struct CreatedWebhookResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    pub url: String,
    #[schema(value_type = schemas::WebhookEvents)]
    pub events: Vec<&'static str>,
    pub description: String,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The signing key (`whsec_` and base64): keep it now, it is never shown again.
    pub secret: String,
}

impl CreatedWebhookResponse {
    pub fn new(webhook: Webhook, secret: &WebhookSecret) -> Self {
        let shown = WebhookResponse::from(webhook);
        Self {
            id: shown.id,
            url: shown.url,
            events: shown.events,
            description: shown.description,
            active: shown.active,
            created_at: shown.created_at,
            secret: secret.expose().to_owned(),
        }
    }
}

/// One attempt to deliver an event to a webhook.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "event_id": 981, "webhook_id": 1, "attempt": 2, "status_code": 503, "error": null, "duration_ms": 84, "created_at": "2026-11-28T11:14:15.601220Z", "next_attempt_at": "2026-11-28T11:19:15.601220Z"}))]
pub struct AttemptResponse {
    #[schema(minimum = 1)]
    pub id: i64,
    #[schema(minimum = 1)]
    pub event_id: i64,
    #[schema(minimum = 1)]
    pub webhook_id: i64,
    /// 1 for the first attempt of the event's delivery, 2 for its first retry, …
    #[schema(minimum = 1)]
    pub attempt: u32,
    /// The receiver's status; `null` when no HTTP answer came.
    pub status_code: Option<u16>,
    /// Why no answer came; `null` when one did.
    pub error: Option<String>,
    #[schema(minimum = 0)]
    pub duration_ms: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the next attempt is due; `null` when none is (delivered, given up, or the
    /// webhook disabled).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<Attempt> for AttemptResponse {
    fn from(attempt: Attempt) -> Self {
        Self {
            id: attempt.id.get(),
            event_id: attempt.event_id.get(),
            webhook_id: attempt.webhook_id.get(),
            attempt: attempt.attempt,
            status_code: attempt.status_code,
            error: attempt.error,
            duration_ms: u64::try_from(attempt.duration.as_millis()).unwrap_or(u64::MAX),
            created_at: utc(attempt.created_at),
            next_attempt_at: attempt.next_attempt_at.map(utc),
        }
    }
}

/// The contract's timestamps are UTC with a `Z` suffix.
fn utc(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(time::UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Role, UserId};
    use time::macros::datetime;

    #[test]
    fn an_assignee_id_is_absent_null_or_an_integer_as_json_schema_counts_them() {
        let assignee = |body: &str| {
            serde_json::from_str::<PatchTicketRequest>(body)
                .map(|r| r.assignee_id)
                .map_err(|_| ())
        };
        assert_eq!(assignee("{}"), Ok(None));
        assert_eq!(assignee(r#"{"assignee_id": null}"#), Ok(Some(None)));
        assert_eq!(assignee(r#"{"assignee_id": 7}"#), Ok(Some(Some(7))));
        assert_eq!(assignee(r#"{"assignee_id": 7.0}"#), Ok(Some(Some(7))));
        assert_eq!(assignee(r#"{"assignee_id": -3}"#), Ok(Some(Some(-3))));
        for bad in ["7.5", "\"7\"", "1e300", "true", "[7]"] {
            assert_eq!(
                assignee(&format!(r#"{{"assignee_id": {bad}}}"#)),
                Err(()),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_z_and_superuser_flag_is_for_staff() {
        let user = User {
            id: UserId::new(2).expect("positive"),
            created_at: datetime!(2026-11-28 12:14:10.516402 +01:00),
            username: "michelle".into(),
            email: "user@post.io".into(),
            role: Role::Customer,
            is_active: true,
            tickets_count: 3,
        };
        let json = serde_json::to_value(UserResponse::new(user.clone(), false)).expect("json");
        assert_eq!(json["created_at"], "2026-11-28T11:14:10.516402Z");
        assert!(json.get("is_superuser").is_none());
        assert!(json.get("password_hash").is_none());
        let json = serde_json::to_value(UserResponse::new(user, true)).expect("json");
        assert_eq!(json["is_superuser"], false);
    }
}
