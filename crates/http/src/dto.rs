//! The JSON shapes of requests and responses, and their conversion from domain types.
//! Field names are the original service's (`isStaff` on registration, snake_case
//! elsewhere), so existing clients keep working.

use domain::{Message, Ticket, User};
use serde::{Deserialize, Serialize};
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

/// Other fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"status": "canceled"}))]
pub struct StatusRequest {
    #[schema(value_type = schemas::TicketStatus)]
    pub status: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"text": "The discount ends on Friday."}))]
pub struct MessageRequest {
    #[schema(schema_with = schemas::message_text)]
    pub text: String,
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

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 10, "created_at": "2026-11-28T11:14:10.516402Z", "updated_at": "2026-11-28T11:20:02.004417Z", "author": "postman33@mpost.io", "topic": "new discount", "status": "pending"}))]
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
