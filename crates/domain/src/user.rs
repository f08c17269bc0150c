//! Users, their roles, and the caller of a request.

use time::OffsetDateTime;

use crate::UserId;

/// What a user may do. A superuser can do all that staff can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Staff,
    Superuser,
}

impl Role {
    pub fn from_flags(is_staff: bool, is_superuser: bool) -> Self {
        match (is_staff, is_superuser) {
            (_, true) => Role::Superuser,
            (true, false) => Role::Staff,
            (false, false) => Role::Customer,
        }
    }

    pub fn is_staff(self) -> bool {
        match self {
            Role::Customer => false,
            Role::Staff | Role::Superuser => true,
        }
    }

    pub fn is_superuser(self) -> bool {
        match self {
            Role::Customer | Role::Staff => false,
            Role::Superuser => true,
        }
    }
}

/// The authenticated user making a request, as read from the database for that
/// request (so a demotion or deactivation takes effect at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub id: UserId,
    pub role: Role,
}

impl Caller {
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }
}

/// A user as the API shows it. Never holds a password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub created_at: OffsetDateTime,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub is_active: bool,
    pub tickets_count: i64,
}
