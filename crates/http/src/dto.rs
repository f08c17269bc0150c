//! The JSON shapes of requests and responses, and their conversion from domain types.
//! Field names are the original service's (`isStaff` on registration, snake_case
//! elsewhere), so existing clients keep working.

use domain::{Message, Ticket, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub username: String,
    #[serde(rename = "isStaff", default)]
    pub is_staff: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
pub struct UpdateUserRequest {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub current_password: Option<String>,
    #[serde(default)]
    pub is_staff: Option<bool>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct OpenTicketRequest {
    pub topic: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct StatusRequest {
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct MessageRequest {
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

#[derive(Debug, Serialize)]
pub struct UserResponse {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub username: String,
    pub email: String,
    pub is_staff: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_superuser: Option<bool>,
    pub is_active: bool,
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

#[derive(Debug, Serialize)]
pub struct UserDetailResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    pub tickets: Vec<TicketResponse>,
}

#[derive(Debug, Serialize)]
pub struct TicketResponse {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub topic: String,
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

#[derive(Debug, Serialize)]
pub struct MessageResponse {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
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
