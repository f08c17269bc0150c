//! [`TicketRepository`] on PostgreSQL: tickets, their messages and their history.
//!
//! Reads are one statement each and check visibility in their `WHERE` clause (the
//! fragments of [`crate::visibility`]). Writes are transactions ([`Tx`]) of as few
//! round trips as their statements' order allows: the statement that locks and
//! changes the ticket, then the events ([`crate::events`]), the idempotency key
//! ([`crate::idempotency`]) and `COMMIT` together.

use std::sync::LazyLock;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::event::{EventData, TicketEvent};
use domain::feed::{FeedEvent, FeedFilter};
use domain::idempotency::{Idempotency, Written};
use domain::page::{CreatedKey, Page, PageRequest};
use domain::ports::{
    AddMessageError, AssigneeCandidate, ExpectedTicket, NewMessage, OpenTicketError,
    TicketRepository, TicketSnapshot, Viewer,
};
use domain::ticket::{AssigneeFilter, SortOrder, TicketFilter, TicketVersion, VersionPrecondition};
use domain::values::{MessageText, Topic};
use domain::workflow::{self, TicketChanges};
use domain::{
    Caller, EventId, Message, MessageId, MessageType, Priority, RepositoryError, Role, Ticket,
    TicketId, TicketStatus, UserId,
};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::confirm::CallerClaim;
use crate::enums::{self, DbMessageType, DbPriority, DbStatus};
use crate::events::{self, Appended};
use crate::feed::CommitSignal;
use crate::idempotency::{self, Claim, ClaimError, Stored};
use crate::pool::connection;
use crate::tx::Tx;
use crate::visibility::{self, message_visible, ticket_visible};
use crate::{query, rows};

/// The columns `rows::ticket` reads, from a ticket `t` joined with its author `u` and
/// (left) its assignee `a` (see `ticket_joins!`).
macro_rules! ticket_columns {
    () => {
        concat!(
            "t.id, t.created_at, t.updated_at, t.author_id, u.email AS author_email, t.topic, ",
            "t.status, t.priority, t.assignee_id, a.username AS assignee_username, t.version"
        )
    };
}

macro_rules! ticket_joins {
    () => {
        " JOIN users u ON u.id = t.author_id LEFT JOIN users a ON a.id = t.assignee_id"
    };
}

/// The columns a data-modifying CTE on `tickets` returns for `ticket_columns!`.
macro_rules! ticket_returning {
    () => {
        "RETURNING id, created_at, updated_at, author_id, topic, status, priority, assignee_id, version"
    };
}

/// The columns `rows::message` reads, from a message `m` joined with its author `u`.
macro_rules! message_columns {
    () => {
        "m.id, m.ticket_id, m.created_at, m.type, m.text, m.author_id, u.email AS author_email"
    };
}

// Counting the ticket first locks the author's row, so the count and the tickets
// cannot drift apart; a missing author yields no row at all.
const OPEN_TICKET: &str = concat!(
    "WITH u AS (",
    "UPDATE users SET tickets_count = tickets_count + 1 WHERE id = $1 RETURNING id, email",
    "), t AS (",
    "INSERT INTO tickets (author_id, topic, status, priority) ",
    "SELECT u.id, $2, $3, $4 FROM u ",
    ticket_returning!(),
    "), m AS (",
    "INSERT INTO messages (ticket_id, author_id, type, text) ",
    "SELECT t.id, t.author_id, $5, $6 FROM t RETURNING id",
    ") ",
    "SELECT ",
    ticket_columns!(),
    ", m.id AS message_id FROM t JOIN u ON u.id = t.author_id ",
    "LEFT JOIN users a ON a.id = t.assignee_id CROSS JOIN m"
);

const FIND_VISIBLE: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets t",
    ticket_joins!(),
    " WHERE t.id = $1 AND ",
    ticket_visible!("t", "$2", "$3")
);

/// The response label is spelled into the SQL (rather than passed as a parameter) so
/// that the planner can match the partial index `messages_responses_ticket_id_idx`;
/// `response` is the one type that [`MessageType::is_response`].
static TICKET_SNAPSHOT: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            "SELECT ",
            ticket_columns!(),
            ", EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id AND m.type = '{}') ",
            "AS has_response FROM tickets t",
            ticket_joins!(),
            " WHERE t.id = $1 AND ",
            ticket_visible!("t", "$2", "$3")
        ),
        enums::message_type_label(MessageType::Response)
    )
});

// Compare-and-set: the fields change only if those the rules decided on are as they
// were read (`$2`–`$4`) and, for a conditional request, the version too (`$5`, NULL for
// none). `NULL` in `$6` and `$7` leaves the status or priority alone; `$8` says whether
// the assignee changes (to `$9`, which may be NULL).
const UPDATE_IF_UNCHANGED: &str = concat!(
    "WITH t AS (",
    "UPDATE tickets SET status = coalesce($6, status), priority = coalesce($7, priority), ",
    "assignee_id = CASE WHEN $8 THEN $9 ELSE assignee_id END, ",
    "version = version + $10, updated_at = CASE WHEN $10 > 0 THEN now() ELSE updated_at END ",
    "WHERE id = $1 AND status = $2 AND priority = $3 AND assignee_id IS NOT DISTINCT FROM $4 ",
    "AND ($5::int8 IS NULL OR version = $5) ",
    ticket_returning!(),
    ") SELECT ",
    ticket_columns!(),
    " FROM t",
    ticket_joins!()
);

const ASSIGNEE_CANDIDATE: &str =
    "SELECT id, username, is_staff, is_superuser, is_active FROM users WHERE id = $1";

// Updating the ticket row first locks it (so a concurrent cancel happens wholly before
// or after, and the ticket's event ids grow in commit order), checks that the actor may
// see it, that its status takes this type (`$4`, from the domain), and the `If-Match`
// versions (`$5`, NULL for none); it moves `updated_at` and the version only as far as
// the domain says (`$6`, `$7`): a note moves neither.
const ADD_MESSAGE: &str = concat!(
    "WITH t AS (",
    "UPDATE tickets t SET updated_at = CASE WHEN $6 THEN now() ELSE updated_at END, ",
    "version = version + $7 ",
    "WHERE t.id = $1 AND ",
    ticket_visible!("t", "$2", "$3"),
    " AND t.status = ANY ($4) AND ($5::int8[] IS NULL OR t.version = ANY ($5)) ",
    "RETURNING t.id",
    "), m AS (",
    "INSERT INTO messages (ticket_id, author_id, type, text) ",
    "SELECT t.id, $2, $8, $9 FROM t ",
    "RETURNING id, ticket_id, created_at, type, text, author_id",
    ") ",
    "SELECT ",
    message_columns!(),
    " FROM m JOIN users u ON u.id = m.author_id"
);

/// Why `ADD_MESSAGE` added nothing: the visible ticket's state, or no row.
const VISIBLE_STATE: &str = concat!(
    "SELECT t.status, t.version FROM tickets t WHERE t.id = $1 AND ",
    ticket_visible!("t", "$2", "$3")
);

/// The SQL of one page of visible tickets, and its parameters.
///
/// Each combination of the optional parts (visibility, filters, keyset position,
/// order) gets its own statement text, so every statement's generic plan fits the one
/// shape it serves: PostgreSQL switches prepared statements to a generic plan after
/// five runs, and a plan shared between "first page" and "after a key", or between
/// "own tickets" and "all tickets", cannot use the right index for both. Each text is
/// prepared once per connection.
///
/// The statuses and priorities of the filters stay parameters, whose values a generic
/// plan cannot see; PostgreSQL keeps choosing custom plans for them when their shares
/// differ. Checked on the bench dataset with `canceled` cut to 200 of 200,000 rows:
/// after seven runs with mixed statuses the plan was still custom, through
/// `tickets_status_created_at_id_idx`.
///
/// A search is the exception: it is planned for its own words every time (an unnamed
/// statement), and its shape is chosen in SQL as it runs; see [`SearchSql`].
struct TicketListQuery<'a> {
    sql: String,
    params: Vec<&'a (dyn ToSql + Sync)>,
    search: Option<SearchSql>,
}

/// How many matches make a word "common" in a staff search, where both strategies
/// below would be slow on the wrong words:
///
/// - *sparse*: the matching ticket ids from the two text indexes (each table's own),
///   then those tickets sorted. Its cost grows with the number of matches: a common
///   word on 1,000,000 tickets matched 825,000 of them, and sorting those took 3.9 s.
/// - *dense*: the tickets in the list's order, each checked for a match (its topic,
///   or its messages through their `ticket_id` index) until the page is full. Its cost
///   grows with the tickets passed over: a rare word passes over all of them.
///
/// PostgreSQL cannot tell a rare word from a moderately common one (a word outside
/// its few "most common elements" is estimated at 0.5% of the rows whatever it is),
/// so the statement counts: it collects at most this many matches (cheap either
/// way), and runs the sparse branch when it found fewer, the dense one otherwise
/// (each branch behind a one-time filter, so only one runs). At the crossing, each
/// branch handles about this many rows: about √(page × tickets) for the default page
/// on 1,000,000 tickets. Measured in `just bench large` (bench/RESULTS-large.md).
const COMMON_WORD_MATCHES: i64 = 10_000;

/// The pieces of a search, spliced into the list query by [`TicketListQuery::finish`].
struct SearchSql {
    /// The ticket `t` matches: its topic, or one of the messages the viewer may see
    /// (the dense strategy's per-ticket check).
    matches: String,
    /// The ids of matching tickets, from the text indexes, with repeats (the sparse
    /// strategy's source), or `None` where the dense strategy always wins: a customer
    /// lists only their own tickets, through the index on the author.
    hits: Option<String>,
}

impl<'a> TicketListQuery<'a> {
    /// The page is chosen from `tickets` alone, and only its rows are joined with
    /// their authors and assignees (`finish`): joining first made PostgreSQL size the
    /// join for the whole table, so a deep page on a large table cost more than on a
    /// small one.
    fn new() -> Self {
        Self {
            sql: "SELECT t.* FROM tickets t WHERE true".to_owned(),
            params: Vec::new(),
            search: None,
        }
    }

    /// Closes the page query (`ORDER BY … LIMIT`) and joins the page's users.
    ///
    /// The page's rows come through two limits: a literal bound (the row count rounded
    /// up to a power of two), then the count itself as a parameter. With the parameter
    /// alone, a generic plan assumes it keeps a tenth of the table, so PostgreSQL
    /// judged every generic plan dearer than a custom one and planned the list of all
    /// tickets anew at every request (260 µs of planning, the most of any statement in
    /// `just bench compare`, `pg_stat_statements`). The bound makes the generic plan's
    /// estimate as small as the page, and costs at most 11 statement texts per shape.
    fn finish(mut self, direction: &str, limit: &'a i64) -> Self {
        let order = format!("ORDER BY t.created_at {direction}, t.id {direction}");
        let bound = limit.max(&1).unsigned_abs().next_power_of_two();
        let limit = self.bind(limit);
        let page = |condition: &str| {
            format!(
                "SELECT t.* FROM ({}{condition} {order} LIMIT {bound}) t {order} LIMIT {limit}",
                self.sql
            )
        };
        let (with, chosen) = match &self.search {
            None => (String::new(), page("")),
            Some(SearchSql {
                matches,
                hits: None,
            }) => (String::new(), page(&format!(" AND {matches}"))),
            Some(SearchSql {
                matches,
                hits: Some(hits),
            }) => {
                let common = COMMON_WORD_MATCHES;
                let found = "(SELECT count(*) FROM hits)";
                let sparse = page(&format!(
                    " AND {found} < {common} AND t.id IN (SELECT id FROM hits)"
                ));
                let dense = page(&format!(" AND {found} >= {common} AND {matches}"));
                (
                    format!("WITH hits AS MATERIALIZED ({hits} LIMIT {common}) "),
                    format!("({sparse}) UNION ALL ({dense})"),
                )
            }
        };
        self.sql = format!(
            concat!(
                "{}SELECT ",
                ticket_columns!(),
                " FROM ({}) t",
                ticket_joins!(),
                " {}"
            ),
            with, chosen, order
        );
        self
    }

    /// Appends `sql` with each `$?` replaced by the next parameter's placeholder.
    fn push(&mut self, sql: &str, param: &'a (dyn ToSql + Sync)) -> &mut Self {
        self.params.push(param);
        self.sql
            .push_str(&sql.replace("$?", &format!("${}", self.params.len())));
        self
    }

    /// The placeholder of a parameter to use several times.
    fn bind(&mut self, param: &'a (dyn ToSql + Sync)) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// Only tickets whose topic matches, or one of whose messages that the viewer may
    /// see matches. The ticket's own visibility is the list's (`author_id` for a
    /// customer), which every branch keeps.
    fn search(&mut self, params: &'a SearchParams<'a>) {
        let query = self.bind(&params.text);
        let internal = self.bind(&params.internal_types);
        let sees_internal = self.bind(params.sees_internal);
        let tsquery = format!("websearch_to_tsquery('english', {query})");
        let message_visible = format!(
            message_visible!("m", "{internal}", "{sees_internal}"),
            internal = internal,
            sees_internal = sees_internal,
        );
        let matches = format!(
            "(t.search @@ {tsquery} OR EXISTS (SELECT 1 FROM messages m \
             WHERE m.ticket_id = t.id AND m.search @@ {tsquery} AND {message_visible}))"
        );
        // UNION ALL: each branch reads its own text index, and the repeats cost less
        // than removing them from every match of a common word.
        let hits = params.sees_all.then(|| {
            format!(
                "SELECT s.id FROM tickets s WHERE s.search @@ {tsquery} UNION ALL \
                 SELECT m.ticket_id FROM messages m WHERE m.search @@ {tsquery} \
                 AND {message_visible}"
            )
        });
        self.search = Some(SearchSql { matches, hits });
    }
}

/// The parameters of a search, which must outlive the list query.
struct SearchParams<'a> {
    text: &'a str,
    sees_all: bool,
    internal_types: Vec<DbMessageType>,
    sees_internal: &'a bool,
}

// One round trip: no row at all means the ticket is absent or not visible; a single
// row of NULL message columns means a visible ticket without (more) messages to show.
macro_rules! list_messages {
    ($keyset:literal, $limit:literal) => {
        concat!(
            "WITH t AS (SELECT id FROM tickets t WHERE t.id = $1 AND ",
            ticket_visible!("t", "$2", "$3"),
            ") SELECT m.* FROM t LEFT JOIN LATERAL (",
            "SELECT ",
            message_columns!(),
            " FROM messages m JOIN users u ON u.id = m.author_id ",
            "WHERE m.ticket_id = t.id AND ",
            message_visible!("m", "$4", "$5"),
            $keyset,
            " ORDER BY m.created_at, m.id LIMIT ",
            $limit,
            ") m ON true ",
            "ORDER BY m.created_at, m.id"
        )
    };
}

const LIST_MESSAGES_FIRST: &str = list_messages!("", "$6");
const LIST_MESSAGES_AFTER: &str = list_messages!(" AND (m.created_at, m.id) > ($6, $7)", "$8");

/// Tickets and messages in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgTicketRepository {
    pool: Pool,
    /// Tells the process's event tail of each write's commit; without it, each write
    /// notifies the listeners itself (`events::NOTIFY`).
    commits: Option<CommitSignal>,
}

impl PgTicketRepository {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            commits: None,
        }
    }

    /// Tells `commits` of every write's commit instead of notifying the listeners: the
    /// tail that gave the signal announces them (see `feed`).
    #[must_use]
    pub fn signalling(mut self, commits: CommitSignal) -> Self {
        self.commits = Some(commits);
        self
    }

    /// Commits a write: its events, its idempotency key if any, and `COMMIT`, together;
    /// then makes the events known (a write without events has none to announce).
    async fn commit(
        &self,
        tx: Tx,
        appended: &Appended,
        stored: Option<&Stored>,
    ) -> Result<(), RepositoryError> {
        let append = appended.statement();
        let events = appended.params();
        let key = stored.map(Stored::params);
        let mut statements: Vec<(&str, query::Params<'_>)> = Vec::with_capacity(2);
        if let Some(append) = &append {
            statements.push((append, &events));
        }
        if let Some(key) = &key {
            statements.push((idempotency::STORE, key));
        }
        let appends = append.is_some();
        match &self.commits {
            Some(commits) => {
                tx.commit_with(&statements, None).await?;
                if appends {
                    commits.committed();
                }
                Ok(())
            }
            None => {
                let notify = appends.then_some(events::NOTIFY);
                tx.commit_with(&statements, notify).await
            }
        }
    }
}

/// Claims `key` in `tx` when there is one: `Some` answer ends the request (a replay,
/// or a conflict), with the transaction rolled back.
async fn claim_key<T, E>(
    tx: &mut Tx,
    actor: Caller,
    key: Option<&Idempotency<T>>,
) -> Result<Option<Result<Written<T>, E>>, RepositoryError>
where
    E: From<domain::idempotency::KeyConflict>,
{
    let Some(key) = key else {
        return Ok(None);
    };
    match idempotency::claim(tx, actor, key).await {
        Ok(Claim::Free) => Ok(None),
        Ok(Claim::Replay(response)) => Ok(Some(Ok(Written::Replayed(response)))),
        Err(ClaimError::Conflict(conflict)) => Ok(Some(Err(conflict.into()))),
        Err(ClaimError::Repository(e)) => Err(e),
    }
}

#[async_trait]
impl TicketRepository for PgTicketRepository {
    async fn open_ticket(
        &self,
        actor: Caller,
        topic: Topic,
        text: MessageText,
        key: Option<Idempotency<Ticket>>,
    ) -> Result<Written<Ticket>, OpenTicketError> {
        let mut tx = Tx::confirming(connection(&self.pool).await?, CallerClaim::of(actor));
        if let Some(answer) = claim_key(&mut tx, actor, key.as_ref()).await? {
            tx.rollback().await?;
            return answer;
        }
        let opened = tx
            .query(
                OPEN_TICKET,
                &[
                    &actor.id.get(),
                    &topic.as_str(),
                    &DbStatus(TicketStatus::Pending),
                    &DbPriority(Priority::default()),
                    &DbMessageType(MessageType::Request),
                    &text.as_str(),
                ],
            )
            .await?;
        let row = opened.first().ok_or_else(|| {
            RepositoryError::msg(format!("the ticket's author {} does not exist", actor.id))
        })?;
        let ticket = rows::ticket(row)?;
        let message_id = rows::id_of(rows::column(row, "message_id")?, MessageId::new)?;
        let events = [
            EventData::TicketCreated {
                topic: ticket.topic.clone(),
                status: ticket.status,
                priority: ticket.priority,
            },
            EventData::message_posted(message_id, MessageType::Request),
        ];
        let appended = Appended::new(ticket.id, Some(actor), &events);
        let stored = key.as_ref().map(|key| Stored::new(actor, key, &ticket));
        self.commit(tx, &appended, stored.as_ref()).await?;
        Ok(Written::Fresh(ticket))
    }

    async fn find_visible(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<Ticket>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::confirmed(
            &client,
            CallerClaim::of_viewer(&viewer),
            query::optional_row(
                &client,
                FIND_VISIBLE,
                &[&id.get(), &viewer.user_id.get(), &viewer.sees_all],
            ),
        )
        .await?;
        row.as_ref().map(rows::ticket).transpose()
    }

    async fn ticket_snapshot(
        &self,
        viewer: Viewer,
        id: TicketId,
    ) -> Result<Option<TicketSnapshot>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::confirmed(
            &client,
            CallerClaim::of_viewer(&viewer),
            query::optional_row(
                &client,
                &TICKET_SNAPSHOT,
                &[&id.get(), &viewer.user_id.get(), &viewer.sees_all],
            ),
        )
        .await?;
        row.map(|row| {
            Ok(TicketSnapshot {
                ticket: rows::ticket(&row)?,
                has_response: rows::column(&row, "has_response")?,
            })
        })
        .transpose()
    }

    async fn update_if_unchanged(
        &self,
        actor: Caller,
        id: TicketId,
        expected: ExpectedTicket,
        changes: TicketChanges,
    ) -> Result<Option<Ticket>, RepositoryError> {
        let events = changes.events();
        let increment = workflow::version_increment(&events);
        let status = changes.status.map(|change| DbStatus(change.to));
        let priority = changes.priority.map(|change| DbPriority(change.to));
        let assignee = changes.assignee.map(|change| change.to.map(UserId::get));
        let mut tx = Tx::confirming(connection(&self.pool).await?, CallerClaim::of(actor));
        let updated = tx
            .query(
                UPDATE_IF_UNCHANGED,
                &[
                    &id.get(),
                    &DbStatus(expected.status),
                    &DbPriority(expected.priority),
                    &expected.assignee.map(UserId::get),
                    &expected.version.map(TicketVersion::get),
                    &status,
                    &priority,
                    &assignee.is_some(),
                    &assignee.flatten(),
                    &increment,
                ],
            )
            .await?;
        let Some(row) = updated.first() else {
            tx.rollback().await?;
            return Ok(None);
        };
        let ticket = rows::ticket(row)?;
        let appended = Appended::new(id, Some(actor), &events);
        self.commit(tx, &appended, None).await?;
        Ok(Some(ticket))
    }

    async fn assignee_candidate(
        &self,
        id: UserId,
    ) -> Result<Option<AssigneeCandidate>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(&client, ASSIGNEE_CANDIDATE, &[&id.get()]).await?;
        row.map(|row| {
            Ok(AssigneeCandidate {
                user: domain::ticket::UserRef {
                    id: rows::user_id(&row, "id")?,
                    username: rows::column(&row, "username")?,
                },
                role: Role::from_flags(
                    rows::column(&row, "is_staff")?,
                    rows::column(&row, "is_superuser")?,
                ),
                is_active: rows::column(&row, "is_active")?,
            })
        })
        .transpose()
    }

    async fn list_visible(
        &self,
        viewer: Viewer,
        filter: TicketFilter,
        page: PageRequest<CreatedKey>,
    ) -> Result<Page<Ticket, CreatedKey>, RepositoryError> {
        let viewer_id = viewer.user_id.get();
        let statuses: Vec<DbStatus> = filter.statuses.iter().copied().map(DbStatus).collect();
        let priorities: Vec<DbPriority> =
            filter.priorities.iter().copied().map(DbPriority).collect();
        let assignee_id = match filter.assignee {
            Some(AssigneeFilter::User(id)) => Some(id.get()),
            Some(AssigneeFilter::Nobody) | None => None,
        };
        let search = filter.search.as_ref().map(|query| SearchParams {
            text: query.as_str(),
            sees_all: viewer.sees_all,
            internal_types: visibility::internal_message_types(),
            sees_internal: &viewer.sees_internal,
        });
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
        match (&filter.assignee, &assignee_id) {
            (Some(AssigneeFilter::Nobody), _) => {
                query.sql.push_str(" AND t.assignee_id IS NULL");
            }
            (Some(AssigneeFilter::User(_)), Some(id)) => {
                query.push(" AND t.assignee_id = $?", id);
            }
            (Some(AssigneeFilter::User(_)), None) | (None, _) => {}
        }
        if !statuses.is_empty() {
            query.push(" AND t.status = ANY ($?)", &statuses);
        }
        if !priorities.is_empty() {
            query.push(" AND t.priority = ANY ($?)", &priorities);
        }
        if let Some(search) = &search {
            query.search(search);
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
        let caller = CallerClaim::of_viewer(&viewer);
        let fetched = if query.search.is_some() {
            let fetched = query::rows_planned_each_time(&client, &query.sql, &query.params);
            query::confirmed(&client, caller, fetched).await?
        } else {
            let fetched = query::rows(&client, &query.sql, &query.params);
            query::confirmed(&client, caller, fetched).await?
        };
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
            sees_internal: false,
            caller_role: None,
        };
        self.list_visible(own, TicketFilter::default(), page).await
    }

    async fn add_message(
        &self,
        actor: Caller,
        id: TicketId,
        message: NewMessage,
        precondition: Option<VersionPrecondition>,
        key: Option<Idempotency<Message>>,
    ) -> Result<Written<Message>, AddMessageError> {
        let viewer = Viewer::from(actor);
        let kind = message.kind;
        let accepting: Vec<DbStatus> = kind
            .accepting_statuses()
            .into_iter()
            .map(DbStatus)
            .collect();
        let versions: Option<Vec<i64>> = precondition
            .as_ref()
            .map(|p| p.versions.iter().map(|v| v.get()).collect());
        let mut tx = Tx::confirming(connection(&self.pool).await?, CallerClaim::of(actor));
        if let Some(answer) = claim_key(&mut tx, actor, key.as_ref()).await? {
            tx.rollback().await?;
            return answer;
        }
        let added = tx
            .query(
                ADD_MESSAGE,
                &[
                    &id.get(),
                    &viewer.user_id.get(),
                    &viewer.sees_all,
                    &accepting,
                    &versions,
                    &kind.moves_ticket(),
                    &kind.version_increment(),
                    &DbMessageType(kind),
                    &message.text.as_str(),
                ],
            )
            .await?;
        if let Some(row) = added.first() {
            let message = rows::message(row)?;
            let events = [EventData::message_posted(message.id, kind)];
            let appended = Appended::new(id, Some(actor), &events);
            let stored = key.as_ref().map(|key| Stored::new(actor, key, &message));
            self.commit(tx, &appended, stored.as_ref()).await?;
            return Ok(Written::Fresh(message));
        }
        // Nothing was added; find out why, in the same transaction. A canceled ticket
        // stays canceled and versions only grow, so this second look cannot clear a
        // refusal of the first.
        let state = tx
            .query(
                VISIBLE_STATE,
                &[&id.get(), &viewer.user_id.get(), &viewer.sees_all],
            )
            .await?;
        tx.rollback().await?;
        let Some(row) = state.first() else {
            return Err(AddMessageError::TicketNotFound);
        };
        let status = rows::column::<DbStatus>(row, "status")?.0;
        Err(if kind.accepted_in(status) {
            AddMessageError::PreconditionFailed
        } else {
            AddMessageError::NotAccepted(status)
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
        let internal = visibility::internal_message_types();
        let limit = rows::fetch_count(page.limit.get());
        let fetched = query::confirmed(&client, CallerClaim::of_viewer(&viewer), async {
            match page.after {
                None => {
                    query::rows(
                        &client,
                        LIST_MESSAGES_FIRST,
                        &[
                            &id,
                            &viewer_id,
                            &viewer.sees_all,
                            &internal,
                            &viewer.sees_internal,
                            &limit,
                        ],
                    )
                    .await
                }
                Some(key) => {
                    query::rows(
                        &client,
                        LIST_MESSAGES_AFTER,
                        &[
                            &id,
                            &viewer_id,
                            &viewer.sees_all,
                            &internal,
                            &viewer.sees_internal,
                            &key.created_at,
                            &key.id,
                            &limit,
                        ],
                    )
                    .await
                }
            }
        })
        .await?;
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

    async fn list_events(
        &self,
        viewer: Viewer,
        id: TicketId,
        page: PageRequest<EventId>,
    ) -> Result<Option<Page<TicketEvent, EventId>>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let (id, viewer_id) = (id.get(), viewer.user_id.get());
        let limit = rows::fetch_count(page.limit.get());
        let fetched = query::confirmed(&client, CallerClaim::of_viewer(&viewer), async {
            match page.after {
                None => {
                    query::rows(
                        &client,
                        events::LIST_FIRST,
                        &[
                            &id,
                            &viewer_id,
                            &viewer.sees_all,
                            &viewer.sees_internal,
                            &limit,
                        ],
                    )
                    .await
                }
                Some(after) => {
                    query::rows(
                        &client,
                        events::LIST_AFTER,
                        &[
                            &id,
                            &viewer_id,
                            &viewer.sees_all,
                            &viewer.sees_internal,
                            &after.get(),
                            &limit,
                        ],
                    )
                    .await
                }
            }
        })
        .await?;
        if fetched.is_empty() {
            return Ok(None);
        }
        let mut found = Vec::with_capacity(fetched.len());
        for row in &fetched {
            if let Some(event) = events::event(row)? {
                found.push(event);
            }
        }
        Ok(Some(rows::page(found, page.limit.get(), |event| event.id)))
    }

    async fn events_between(
        &self,
        filter: FeedFilter,
        after: Option<EventId>,
        up_to: EventId,
        limit: u16,
    ) -> Result<Vec<FeedEvent>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let viewer = filter.viewer;
        let after = after.map_or(0, EventId::get);
        let (up_to, viewer_id) = (up_to.get(), viewer.user_id.get());
        let limit = i64::from(limit);
        let fetched = query::confirmed(&client, CallerClaim::of_viewer(&viewer), async {
            match filter.ticket {
                None => {
                    query::rows(
                        &client,
                        events::BETWEEN,
                        &[
                            &after,
                            &up_to,
                            &viewer_id,
                            &viewer.sees_all,
                            &viewer.sees_internal,
                            &limit,
                        ],
                    )
                    .await
                }
                Some(ticket) => {
                    query::rows(
                        &client,
                        events::BETWEEN_OF_TICKET,
                        &[
                            &after,
                            &up_to,
                            &viewer_id,
                            &viewer.sees_all,
                            &viewer.sees_internal,
                            &ticket.get(),
                            &limit,
                        ],
                    )
                    .await
                }
            }
        })
        .await?;
        let mut found = Vec::with_capacity(fetched.len());
        for row in &fetched {
            if let Some(event) = events::feed_event(row)? {
                found.push(event);
            }
        }
        Ok(found)
    }

    async fn forget_idempotency_keys(
        &self,
        cutoff: OffsetDateTime,
    ) -> Result<u64, RepositoryError> {
        let client = connection(&self.pool).await?;
        query::delete_in_batches(
            &client,
            idempotency::FORGET,
            cutoff,
            idempotency::FORGET_BATCH,
        )
        .await
    }
}

fn tickets_page(fetched: &[Row], limit: u16) -> Result<Page<Ticket, CreatedKey>, RepositoryError> {
    let tickets = fetched
        .iter()
        .map(rows::ticket)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows::page(tickets, limit, rows::ticket_key))
}
