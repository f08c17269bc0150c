//! Mapping between database rows and domain values. Enum columns go through the
//! wrappers in [`crate::enums`].

use domain::page::{CreatedKey, Page};
use domain::ticket::{TicketVersion, UserRef};
use domain::{Message, MessageId, RepositoryError, Role, Ticket, TicketId, User, UserId};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::enums::{DbMessageType, DbPriority, DbStatus};

/// The `(is_staff, is_superuser)` columns of a role.
pub(crate) fn role_flags(role: Role) -> (bool, bool) {
    match role {
        Role::Customer => (false, false),
        Role::Staff => (true, false),
        Role::Superuser => (true, true),
    }
}

/// Reads a column without panicking on a schema mismatch.
pub(crate) fn column<'a, T: FromSql<'a>>(row: &'a Row, name: &str) -> Result<T, RepositoryError> {
    row.try_get(name).map_err(RepositoryError::unexpected)
}

pub(crate) fn id_of<T>(value: i64, new: fn(i64) -> Option<T>) -> Result<T, RepositoryError> {
    new(value).ok_or_else(|| RepositoryError::msg(format!("non-positive id {value} in database")))
}

pub(crate) fn user_id(row: &Row, name: &str) -> Result<UserId, RepositoryError> {
    id_of(column(row, name)?, UserId::new)
}

/// A row of the user columns (see `users::user_columns!`).
pub(crate) fn user(row: &Row) -> Result<User, RepositoryError> {
    Ok(User {
        id: user_id(row, "id")?,
        created_at: column(row, "created_at")?,
        username: column(row, "username")?,
        email: column(row, "email")?,
        role: Role::from_flags(column(row, "is_staff")?, column(row, "is_superuser")?),
        is_active: column(row, "is_active")?,
        tickets_count: column(row, "tickets_count")?,
    })
}

/// A user named by the columns `<id>` and `<username>`, both NULL for nobody.
pub(crate) fn user_ref(
    row: &Row,
    id: &str,
    username: &str,
) -> Result<Option<UserRef>, RepositoryError> {
    let Some(raw_id) = column::<Option<i64>>(row, id)? else {
        return Ok(None);
    };
    Ok(Some(UserRef {
        id: id_of(raw_id, UserId::new)?,
        username: column(row, username)?,
    }))
}

/// A row of the ticket columns (see `tickets::ticket_columns!`).
pub(crate) fn ticket(row: &Row) -> Result<Ticket, RepositoryError> {
    Ok(Ticket {
        id: id_of(column(row, "id")?, TicketId::new)?,
        created_at: column(row, "created_at")?,
        updated_at: column(row, "updated_at")?,
        author_id: user_id(row, "author_id")?,
        author_email: column(row, "author_email")?,
        topic: column(row, "topic")?,
        status: column::<DbStatus>(row, "status")?.0,
        priority: column::<DbPriority>(row, "priority")?.0,
        assignee: user_ref(row, "assignee_id", "assignee_username")?,
        version: id_of(column(row, "version")?, TicketVersion::new)?,
    })
}

/// A row of the message columns (see `tickets::message_columns!`).
pub(crate) fn message(row: &Row) -> Result<Message, RepositoryError> {
    Ok(Message {
        id: id_of(column(row, "id")?, MessageId::new)?,
        ticket_id: id_of(column(row, "ticket_id")?, TicketId::new)?,
        created_at: column(row, "created_at")?,
        kind: column::<DbMessageType>(row, "type")?.0,
        text: column(row, "text")?,
        author_id: user_id(row, "author_id")?,
        author_email: column(row, "author_email")?,
    })
}

/// Turns `limit + 1` fetched rows into a page: the extra row only says that another
/// page exists, and the next page starts after the last row returned.
pub(crate) fn page<T, K>(mut items: Vec<T>, limit: u16, key: impl Fn(&T) -> K) -> Page<T, K> {
    let limit = usize::from(limit);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

/// The keyset key of a ticket.
pub(crate) fn ticket_key(ticket: &Ticket) -> CreatedKey {
    CreatedKey {
        created_at: ticket.created_at,
        id: ticket.id.get(),
    }
}

/// The keyset key of a message.
pub(crate) fn message_key(message: &Message) -> CreatedKey {
    CreatedKey {
        created_at: message.created_at,
        id: message.id.get(),
    }
}

/// How many rows to fetch for a page of `limit`: one more, to learn whether a next
/// page exists without counting.
pub(crate) fn fetch_count(limit: u16) -> i64 {
    i64::from(limit) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_flags_round_trip() {
        for role in [Role::Customer, Role::Staff, Role::Superuser] {
            let (is_staff, is_superuser) = role_flags(role);
            assert_eq!(Role::from_flags(is_staff, is_superuser), role);
            assert!(
                is_staff || !is_superuser,
                "violates users_superuser_is_staff"
            );
        }
    }

    #[test]
    fn a_page_has_a_next_key_only_when_an_extra_row_came_back() {
        let full = page(vec![1, 2, 3, 4], 3, |n| *n * 10);
        assert_eq!(full.items, vec![1, 2, 3]);
        assert_eq!(full.next, Some(30));
        let last = page(vec![1, 2, 3], 3, |n| *n * 10);
        assert_eq!(last.items, vec![1, 2, 3]);
        assert_eq!(last.next, None);
        let empty = page(Vec::<i32>::new(), 3, |n| *n);
        assert!(empty.items.is_empty() && empty.next.is_none());
        assert_eq!(fetch_count(1000), 1001);
    }
}
