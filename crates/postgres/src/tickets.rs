//! [`TicketRepository`] on PostgreSQL: tickets and their messages.
//!
//! Each method is one statement where it can be (data-modifying CTEs make "insert
//! this and update that" atomic without a transaction's extra round trips), and every
//! read checks visibility in its `WHERE` clause: `(t.author_id = $viewer OR $sees_all)`.

use std::sync::LazyLock;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::page::{CreatedKey, Page, PageRequest};
use domain::ports::{AddMessageError, StatusSnapshot, TicketRepository, Viewer};
use domain::ticket::{SortOrder, TicketFilter};
use domain::values::{MessageText, Topic};
use domain::{Message, MessageType, RepositoryError, Ticket, TicketId, TicketStatus, UserId};
use tokio_postgres::types::ToSql;

use crate::enums::{self, DbMessageType, DbStatus};
use crate::pool::connection;
use crate::{query, rows};

/// The columns `rows::ticket` reads, from a ticket `t` joined with its author `u`.
macro_rules! ticket_columns {
    () => {
        "t.id, t.created_at, t.updated_at, t.author_id, u.email AS author_email, t.topic, t.status"
    };
}

/// The columns `rows::message` reads, from a message `m` joined with its author `u`.
macro_rules! message_columns {
    () => {
        "m.id, m.ticket_id, m.created_at, m.type, m.text, m.author_id, u.email AS author_email"
    };
}

/// The columns a data-modifying CTE on `tickets` returns for `ticket_columns!`.
macro_rules! ticket_returning {
    () => {
        "RETURNING id, created_at, updated_at, author_id, topic, status"
    };
}

// Counting the ticket first locks the author's row, so the count and the tickets
// cannot drift apart; a missing author yields no row at all.
const OPEN_TICKET: &str = concat!(
    "WITH u AS (",
    "UPDATE users SET tickets_count = tickets_count + 1 WHERE id = $1 RETURNING id, email",
    "), t AS (",
    "INSERT INTO tickets (author_id, topic, status) ",
    "SELECT u.id, $2, $3::ticket_status FROM u ",
    ticket_returning!(),
    "), first_message AS (",
    "INSERT INTO messages (ticket_id, author_id, type, text) ",
    "SELECT t.id, t.author_id, $4::message_type, $5 FROM t",
    ") ",
    "SELECT ",
    ticket_columns!(),
    " FROM t JOIN u ON u.id = t.author_id"
);

const FIND_VISIBLE: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets t JOIN users u ON u.id = t.author_id ",
    "WHERE t.id = $1 AND (t.author_id = $2 OR $3)"
);

/// The response label is spelled into the SQL (rather than passed as a parameter) so
/// that the planner can match the partial index `messages_responses_ticket_id_idx`.
static STATUS_SNAPSHOT: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            "SELECT ",
            ticket_columns!(),
            ", EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id AND m.type = '{}') ",
            "AS has_response ",
            "FROM tickets t JOIN users u ON u.id = t.author_id ",
            "WHERE t.id = $1 AND (t.author_id = $2 OR $3)"
        ),
        enums::message_type_label(MessageType::Response)
    )
});

// Compare-and-set: the status changes only if nobody changed it since it was read.
const SET_STATUS_IF_CURRENT: &str = concat!(
    "WITH t AS (",
    "UPDATE tickets SET status = $3::ticket_status, updated_at = now() ",
    "WHERE id = $1 AND status = $2::ticket_status ",
    ticket_returning!(),
    ") ",
    "SELECT ",
    ticket_columns!(),
    " FROM t JOIN users u ON u.id = t.author_id"
);

// Updating the ticket row first both moves `updated_at` and locks the row, so a
// concurrent cancel either happens before (and no message is added) or after.
const ADD_MESSAGE: &str = concat!(
    "WITH t AS (",
    "UPDATE tickets SET updated_at = now() ",
    "WHERE id = $1 AND (author_id = $2 OR $3) AND status <> $4::ticket_status ",
    "RETURNING id",
    "), m AS (",
    "INSERT INTO messages (ticket_id, author_id, type, text) ",
    "SELECT t.id, $2, $5::message_type, $6 FROM t ",
    "RETURNING id, ticket_id, created_at, type, text, author_id",
    ") ",
    "SELECT ",
    message_columns!(),
    " FROM m JOIN users u ON u.id = m.author_id"
);

/// Why `ADD_MESSAGE` added nothing: the visible ticket's status, or no row.
const VISIBLE_STATUS: &str =
    "SELECT t.status FROM tickets t WHERE t.id = $1 AND (t.author_id = $2 OR $3)";

/// The SQL of one page of visible tickets, and its parameters.
///
/// Each combination of the optional parts (visibility, author filter, status filter,
/// keyset position, order) gets its own statement text, so every statement's generic
/// plan fits the one shape it serves: PostgreSQL switches prepared statements to a
/// generic plan after five runs, and a plan shared between "first page" and "after a
/// key", or between "own tickets" and "all tickets", cannot use the right index for
/// both. At most 24 texts exist; each is prepared once per connection.
///
/// The statuses of the filter stay a parameter, whose values a generic plan cannot
/// see; PostgreSQL keeps choosing custom plans for them when the statuses' shares
/// differ. Checked on the bench dataset with `canceled` cut to 200 of 200,000 rows:
/// after seven runs with mixed statuses the plan was still custom, through
/// `tickets_status_created_at_id_idx`.
struct TicketListQuery<'a> {
    sql: String,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> TicketListQuery<'a> {
    /// The page is chosen from `tickets` alone, and only its rows are joined with
    /// their authors (`finish`): joining first made PostgreSQL size the join for the
    /// whole table, so a deep page on a large table cost more than on a small one.
    fn new() -> Self {
        Self {
            sql: "SELECT t.* FROM tickets t WHERE true".to_owned(),
            params: Vec::new(),
        }
    }

    /// Closes the page query (`ORDER BY … LIMIT`) and joins the page's authors.
    fn finish(mut self, direction: &str, limit: &'a (dyn ToSql + Sync)) -> Self {
        let order = format!("ORDER BY t.created_at {direction}, t.id {direction}");
        self.push(&format!(" {order} LIMIT $?"), limit);
        self.sql = format!(
            concat!(
                "SELECT ",
                ticket_columns!(),
                " FROM ({}) t JOIN users u ON u.id = t.author_id {}"
            ),
            self.sql, order
        );
        self
    }

    /// Appends `sql` with `$?` replaced by the next parameter's placeholder.
    fn push(&mut self, sql: &str, param: &'a (dyn ToSql + Sync)) -> &mut Self {
        self.params.push(param);
        self.sql
            .push_str(&sql.replace("$?", &format!("${}", self.params.len())));
        self
    }
}

// One round trip: no row at all means the ticket is absent or not visible; a single
// row of NULL message columns means a visible ticket without (more) messages.
macro_rules! list_messages {
    ($keyset:literal, $limit:literal) => {
        concat!(
            "WITH t AS (SELECT id FROM tickets WHERE id = $1 AND (author_id = $2 OR $3)) ",
            "SELECT m.* FROM t LEFT JOIN LATERAL (",
            "SELECT ",
            message_columns!(),
            " FROM messages m JOIN users u ON u.id = m.author_id ",
            "WHERE m.ticket_id = t.id ",
            $keyset,
            "ORDER BY m.created_at, m.id LIMIT ",
            $limit,
            ") m ON true ",
            "ORDER BY m.created_at, m.id"
        )
    };
}

const LIST_MESSAGES_FIRST: &str = list_messages!("", "$4");
const LIST_MESSAGES_AFTER: &str = list_messages!("AND (m.created_at, m.id) > ($4, $5) ", "$6");

/// Tickets and messages in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgTicketRepository {
    pool: Pool,
}

impl PgTicketRepository {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl TicketRepository for PgTicketRepository {
    async fn open_ticket_with_first_message(
        &self,
        author: UserId,
        topic: Topic,
        text: MessageText,
    ) -> Result<Ticket, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(
            &client,
            OPEN_TICKET,
            &[
                &author.get(),
                &topic.as_str(),
                &DbStatus(TicketStatus::Pending),
                &DbMessageType(MessageType::Request),
                &text.as_str(),
            ],
        )
        .await?
        .ok_or_else(|| {
            RepositoryError::msg(format!("the ticket's author {author} does not exist"))
        })?;
        rows::ticket(&row)
    }

    async fn find_visible(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<Ticket>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(
            &client,
            FIND_VISIBLE,
            &[&id.get(), &viewer.user_id.get(), &viewer.sees_all],
        )
        .await?;
        row.as_ref().map(rows::ticket).transpose()
    }

    async fn status_snapshot(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<StatusSnapshot>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(
            &client,
            &STATUS_SNAPSHOT,
            &[&id.get(), &viewer.user_id.get(), &viewer.sees_all],
        )
        .await?;
        row.map(|row| {
            Ok(StatusSnapshot {
                ticket: rows::ticket(&row)?,
                has_response: rows::column(&row, "has_response")?,
            })
        })
        .transpose()
    }

    async fn set_status_if_current(
        &self,
        id: TicketId,
        expected: TicketStatus,
        new: TicketStatus,
    ) -> Result<Option<Ticket>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(
            &client,
            SET_STATUS_IF_CURRENT,
            &[&id.get(), &DbStatus(expected), &DbStatus(new)],
        )
        .await?;
        row.as_ref().map(rows::ticket).transpose()
    }

    async fn list_visible(
        &self,
        viewer: Viewer,
        filter: TicketFilter,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Ticket, CreatedKey>, RepositoryError> {
        let viewer_id = viewer.user_id.get();
        let statuses: Vec<DbStatus> = filter.statuses.iter().copied().map(DbStatus).collect();
        let limit = rows::fetch_count(page.limit.get());
        let (comparison, direction) = match filter.order {
            SortOrder::Ascending => (">", "ASC"),
            SortOrder::Descending => ("<", "DESC"),
        };

        let mut query = TicketListQuery::new();
        if !viewer.sees_all {
            query.push(" AND t.author_id = $?", &viewer_id);
        }
        if let Some(email) = &filter.author_email {
            // The author's id first, through the unique index on lower(email); an
            // unknown address gives NULL and so no rows.
            query.push(
                " AND t.author_id = (SELECT id FROM users WHERE lower(email) = lower($?))",
                email,
            );
        }
        if !statuses.is_empty() {
            query.push(" AND t.status = ANY ($?)", &statuses);
        }
        if let Some(key) = &page.after {
            query
                .push(
                    &format!(" AND (t.created_at, t.id) {comparison} ($?"),
                    &key.created_at,
                )
                .push(", $?)", &key.id);
        }
        let query = query.finish(direction, &limit);

        let client = connection(&self.pool).await?;
        let fetched = query::rows(&client, &query.sql, &query.params).await?;
        tickets_page(&fetched, page.limit.get())
    }

    async fn list_by_author(
        &self,
        author: UserId,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Ticket, CreatedKey>, RepositoryError> {
        // What the author sees of their own tickets, oldest first: the same statement.
        let own = Viewer {
            user_id: author,
            sees_all: false,
        };
        self.list_visible(own, TicketFilter::default(), page).await
    }

    async fn add_message(
        &self,
        viewer: Viewer,
        id: TicketId,
        kind: MessageType,
        text: MessageText,
    ) -> Result<Message, AddMessageError> {
        let client = connection(&self.pool).await?;
        let added = query::optional_row(
            &client,
            ADD_MESSAGE,
            &[
                &id.get(),
                &viewer.user_id.get(),
                &viewer.sees_all,
                &DbStatus(TicketStatus::Canceled),
                &DbMessageType(kind),
                &text.as_str(),
            ],
        )
        .await?;
        if let Some(row) = added {
            return Ok(rows::message(&row)?);
        }
        // Nothing was added; find out why. A canceled ticket stays canceled, so this
        // second look cannot contradict the first.
        let visible = query::optional_row(
            &client,
            VISIBLE_STATUS,
            &[&id.get(), &viewer.user_id.get(), &viewer.sees_all],
        )
        .await?;
        let status = match &visible {
            Some(row) => Some(rows::column::<DbStatus>(row, "status")?.0),
            None => None,
        };
        Err(match status {
            Some(TicketStatus::Canceled) => AddMessageError::TicketCanceled,
            // Absent or invisible; or (only with a ticket created in between) absent
            // when the message was tried, which is the answer that counts.
            Some(TicketStatus::Pending | TicketStatus::Resolved | TicketStatus::Unresolved)
            | None => AddMessageError::TicketNotFound,
        })
    }

    async fn list_messages(
        &self,
        viewer: Viewer,
        id: TicketId,
        page: PageRequest<CreatedKey>,
    ) -> Result<Option<Page<Message, CreatedKey>>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let (id, viewer_id) = (id.get(), viewer.user_id.get());
        let limit = rows::fetch_count(page.limit.get());
        let fetched = match page.after {
            None => {
                query::rows(
                    &client,
                    LIST_MESSAGES_FIRST,
                    &[&id, &viewer_id, &viewer.sees_all, &limit],
                )
                .await?
            }
            Some(key) => {
                query::rows(
                    &client,
                    LIST_MESSAGES_AFTER,
                    &[
                        &id,
                        &viewer_id,
                        &viewer.sees_all,
                        &key.created_at,
                        &key.id,
                        &limit,
                    ],
                )
                .await?
            }
        };
        if fetched.is_empty() {
            return Ok(None);
        }
        let mut messages = Vec::with_capacity(fetched.len());
        for row in &fetched {
            if rows::column::<Option<i64>>(row, "id")?.is_some() {
                messages.push(rows::message(row)?);
            }
        }
        Ok(Some(rows::page(
            messages,
            page.limit.get(),
            rows::message_key,
        )))
    }
}

fn tickets_page(
    fetched: &[tokio_postgres::Row],
    limit: u16,
) -> Result<Page<Ticket, CreatedKey>, RepositoryError> {
    let tickets = fetched
        .iter()
        .map(rows::ticket)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows::page(tickets, limit, rows::ticket_key))
}
