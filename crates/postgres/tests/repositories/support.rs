//! Shared set-up: a fresh database with both repositories, users to act as, and the
//! writes and reads that many tests repeat.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use domain::event::TicketEvent;
use domain::idempotency::{
    Idempotency, IdempotencyKey, RequestFingerprint, StoredResponse, Written,
};
use domain::page::{CreatedKey, Page, PageLimit, PageRequest};
use domain::ports::{
    AddMessageError, ExpectedTicket, NewMessage, NewUser, TicketRepository, UserRepository, Viewer,
};
use domain::ticket::{AssigneeFilter, TicketFilter, TicketVersion, VersionPrecondition};
use domain::values::{Email, MessageText, Topic, Username};
use domain::workflow::{Change, TicketChanges};
use domain::{
    Caller, Message, MessageType, Priority, Role, Ticket, TicketId, TicketStatus, User, UserId,
};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{create_pool, PgTicketRepository, PgUserRepository, Pool, PoolSettings};
use tokio_postgres::types::{FromSql, ToSql};

pub struct Fixture {
    pub db: TestDatabase,
    pub users: PgUserRepository,
    pub tickets: PgTicketRepository,
}

impl Fixture {
    pub async fn new() -> Self {
        let db = TestDatabase::create().await;
        Fixture {
            users: PgUserRepository::new(db.pool().clone()),
            tickets: PgTicketRepository::new(db.pool().clone()),
            db,
        }
    }

    /// Creates a user with this e-mail and role.
    pub async fn user(&self, email: &str, role: Role) -> User {
        self.users
            .create_user(new_user(email, role))
            .await
            .expect("create user")
    }

    /// The two users most tests act as: a customer who writes tickets, and staff.
    pub async fn author_and_staff(&self) -> (User, User) {
        (
            self.user("author@post.io", Role::Customer).await,
            self.user("staff@post.io", Role::Staff).await,
        )
    }

    /// One value that a query returns, read straight from the database.
    pub async fn scalar<T>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> T
    where
        T: for<'a> FromSql<'a>,
    {
        let client = self.db.pool().get().await.expect("connection");
        client.query_one(sql, params).await.expect(sql).get(0)
    }

    /// The first column of every row a query returns, read straight from the database.
    pub async fn column<T>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<T>
    where
        T: for<'a> FromSql<'a>,
    {
        let client = self.db.pool().get().await.expect("connection");
        client
            .query(sql, params)
            .await
            .expect(sql)
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// Runs a statement straight on the database.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> u64 {
        let client = self.db.pool().get().await.expect("connection");
        client.execute(sql, params).await.expect(sql)
    }

    /// Opens a ticket by `author` whose first message is "text".
    pub async fn open(&self, author: &User, name: &str) -> Ticket {
        self.open_with(author, name, "text").await
    }

    /// Opens a ticket by `author` with this first message.
    pub async fn open_with(&self, author: &User, name: &str, first: &str) -> Ticket {
        fresh(
            self.tickets
                .open_ticket(caller(author), topic(name), text(first), None)
                .await
                .expect("open"),
        )
    }

    /// Posts a message of `kind` without precondition or key, which must be written.
    pub async fn post(&self, actor: &User, id: TicketId, kind: MessageType, body: &str) -> Message {
        fresh(
            self.try_post(actor, id, kind, body)
                .await
                .expect("add message"),
        )
    }

    /// Tries to post a message of `kind` without precondition or key.
    pub async fn try_post(
        &self,
        actor: &User,
        id: TicketId,
        kind: MessageType,
        body: &str,
    ) -> Result<Written<Message>, AddMessageError> {
        post_on(&self.tickets, actor, id, kind, body, None).await
    }

    /// The ticket as `who` sees it; it must be visible to them.
    pub async fn ticket_as(&self, who: &User, id: TicketId) -> Ticket {
        self.tickets
            .find_visible(viewer(who), id)
            .await
            .expect("query")
            .expect("visible")
    }

    /// The ticket's version as stored.
    pub async fn version(&self, id: TicketId) -> TicketVersion {
        let stored: i64 = self
            .scalar("SELECT version FROM tickets WHERE id = $1", &[&id.get()])
            .await;
        TicketVersion::new(stored).expect("a stored version is positive")
    }

    /// Applies `changes` to the ticket as it is now, which must still hold.
    pub async fn change(&self, actor: &User, id: TicketId, changes: TicketChanges) -> Ticket {
        let staff = Viewer {
            user_id: actor.id,
            sees_all: true,
            sees_internal: true,
            caller_role: None,
        };
        let now = self
            .tickets
            .ticket_snapshot(staff, id)
            .await
            .expect("snapshot")
            .expect("the ticket exists");
        self.tickets
            .update_if_unchanged(
                caller(actor),
                id,
                ExpectedTicket::of(&now.ticket, true),
                changes,
            )
            .await
            .expect("update")
            .expect("the ticket just read")
    }

    /// Moves a ticket from `pending` to `status` (nothing for `pending` itself).
    pub async fn set_status(&self, actor: &User, id: TicketId, status: TicketStatus) {
        if status != TicketStatus::Pending {
            self.change(actor, id, status_change(TicketStatus::Pending, status))
                .await;
        }
    }

    /// Gives the `n`-th ticket of a series a priority, an assignee and a status, so
    /// that the series covers every combination: the priority cycles through the four,
    /// the assignee through `assignees`, and one in five is resolved and one in five
    /// unresolved.
    pub async fn vary(
        &self,
        by: &User,
        ticket: Ticket,
        n: usize,
        assignees: [Option<UserId>; 3],
    ) -> Ticket {
        let priority = Priority::ALL[n % 4];
        let status = match n % 5 {
            3 => TicketStatus::Resolved,
            4 => TicketStatus::Unresolved,
            _ => TicketStatus::Pending,
        };
        let changes = TicketChanges {
            status: (status != ticket.status).then_some(Change {
                from: ticket.status,
                to: status,
            }),
            priority: (priority != ticket.priority).then_some(Change {
                from: ticket.priority,
                to: priority,
            }),
            assignee: assignees[n % 3].map(|id| Change {
                from: None,
                to: Some(id),
            }),
        };
        if changes.is_empty() {
            ticket
        } else {
            self.change(by, ticket.id, changes).await
        }
    }

    /// A series of `count` tickets by the cast, the `n`-th opened with the topic and
    /// first message `first(n)` and then varied by Ann (see [`Fixture::vary`]).
    pub async fn series(
        &self,
        cast: &Cast,
        count: usize,
        first: impl Fn(usize) -> (String, &'static str),
    ) -> Vec<Ticket> {
        let mut tickets = Vec::with_capacity(count);
        for n in 0..count {
            let (name, text) = first(n);
            let ticket = self.open_with(cast.author_of(n), &name, text).await;
            tickets.push(self.vary(&cast.ann, ticket, n, cast.assignees()).await);
        }
        tickets
    }

    /// Every event of the ticket that `viewer` may see, oldest first, in one page.
    pub async fn events(&self, viewer: Viewer, id: TicketId) -> Vec<TicketEvent> {
        let page = self
            .tickets
            .list_events(viewer, id, PageRequest::first(limit(PageLimit::MAX)))
            .await
            .expect("list events")
            .expect("visible");
        assert_eq!(page.next, None, "one page holds every event");
        page.items
    }

    /// How many rows a table holds.
    pub async fn rows_in(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {table}"), &[])
            .await
    }

    /// The ticket's version and the number of its events that customers may see.
    pub async fn version_and_visible_events(&self, id: TicketId) -> (i64, i64) {
        let client = self.db.pool().get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT t.version, (SELECT count(*) FROM ticket_events e \
                 WHERE e.ticket_id = t.id AND NOT e.internal) FROM tickets t WHERE t.id = $1",
                &[&id.get()],
            )
            .await
            .expect("the ticket exists");
        (row.get(0), row.get(1))
    }

    /// The invariant of the event log: a ticket's version is its visible events' count
    /// less one (opening writes two events at version 1).
    pub async fn assert_version_counts_visible_events(&self, id: TicketId) {
        let (version, visible) = self.version_and_visible_events(id).await;
        assert_eq!(
            version,
            visible - 1,
            "ticket {id}: version and visible events"
        );
    }

    /// A pool of its own on this test's database, so that a test can watch its size.
    pub fn own_pool(&self, max_size: usize) -> Pool {
        pool_on(self.db.url(), max_size, Duration::from_secs(60))
    }
}

/// The people of the list tests: two customers and two members of staff.
pub struct Cast {
    pub alice: User,
    pub bob: User,
    pub ann: User,
    pub ben: User,
}

impl Cast {
    pub async fn new(fx: &Fixture) -> Self {
        Cast {
            alice: fx.user("alice@post.io", Role::Customer).await,
            bob: fx.user("bob@post.io", Role::Customer).await,
            ann: fx.user("ann@post.io", Role::Staff).await,
            ben: fx.user("ben@post.io", Role::Staff).await,
        }
    }

    /// Alice writes the even tickets of a series, Bob the odd ones.
    pub fn author_of(&self, n: usize) -> &User {
        if n % 2 == 0 {
            &self.alice
        } else {
            &self.bob
        }
    }

    /// The assignees that [`Fixture::vary`] cycles through: nobody, Ann, Ben.
    pub fn assignees(&self) -> [Option<UserId>; 3] {
        [None, Some(self.ann.id), Some(self.ben.id)]
    }
}

/// A pool of its own on `url`, generous but for the statement timeout.
pub fn pool_on(url: &str, max_size: usize, statement_timeout: Duration) -> Pool {
    create_pool(&PoolSettings {
        url: url.to_owned(),
        max_size,
        wait_timeout: Duration::from_secs(30),
        create_timeout: Duration::from_secs(30),
        recycle_timeout: Duration::from_secs(30),
        statement_timeout,
    })
    .expect("pool")
}

/// Tries to post a message of `kind` through `tickets`, under `precondition`, without
/// key.
pub async fn post_on(
    tickets: &PgTicketRepository,
    actor: &User,
    id: TicketId,
    kind: MessageType,
    body: &str,
    precondition: Option<VersionPrecondition>,
) -> Result<Written<Message>, AddMessageError> {
    tickets
        .add_message(
            caller(actor),
            id,
            new_message(kind, body),
            precondition,
            None,
        )
        .await
}

pub fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: Email::parse(email).expect("valid email"),
        username: Username::parse("someone").expect("valid username"),
        password_hash: format!("hash-of-{email}"),
        role,
    }
}

pub fn caller(user: &User) -> Caller {
    Caller {
        id: user.id,
        role: user.role,
    }
}

pub fn viewer(user: &User) -> Viewer {
    Viewer::from(caller(user))
}

pub fn topic(raw: &str) -> Topic {
    Topic::parse(raw).expect("valid topic")
}

pub fn text(raw: &str) -> MessageText {
    MessageText::parse(raw).expect("valid text")
}

pub fn new_message(kind: MessageType, body: &str) -> NewMessage {
    NewMessage {
        kind,
        text: text(body),
    }
}

pub fn limit(n: u16) -> PageLimit {
    PageLimit::parse(&n.to_string()).expect("valid limit")
}

/// What a write wrote now; a replay is a failed test here.
pub fn fresh<T: Debug>(written: Written<T>) -> T {
    match written {
        Written::Fresh(value) => value,
        Written::Replayed(response) => {
            panic!("expected a fresh write, got a replay of {response:?}")
        }
    }
}

pub fn status_change(from: TicketStatus, to: TicketStatus) -> TicketChanges {
    TicketChanges {
        status: Some(Change { from, to }),
        ..TicketChanges::default()
    }
}

/// What a conditional compare-and-set requires of a `normal`, unassigned ticket in
/// `status` at `version`.
pub fn expecting(status: TicketStatus, version: TicketVersion) -> ExpectedTicket {
    ExpectedTicket {
        status,
        priority: Priority::Normal,
        assignee: None,
        version: Some(version),
    }
}

pub fn version(n: i64) -> TicketVersion {
    TicketVersion::new(n).expect("a positive version")
}

/// A key guarding a write, whose response names what was written (`what`) and carries
/// the fingerprint's first byte in its body, so that replays can be told apart.
pub fn key<T: 'static>(raw: &str, fingerprint: u8, what: fn(&T) -> String) -> Idempotency<T> {
    Idempotency {
        key: IdempotencyKey::parse(raw).expect("valid key"),
        fingerprint: RequestFingerprint([fingerprint; 32]),
        render: Arc::new(move |written: &T| StoredResponse {
            status: 201,
            location: Some(what(written)),
            etag: Some(format!("\"{fingerprint}\"")),
            body: format!(
                "{{\"for\":\"{}\",\"fingerprint\":{fingerprint}}}",
                what(written)
            )
            .into_bytes(),
        }),
    }
}

/// The response path of a ticket, for [`key`].
pub fn ticket_location(ticket: &Ticket) -> String {
    format!("/tickets/{}", ticket.id)
}

/// The response path of a message, for [`key`].
pub fn message_location(message: &Message) -> String {
    format!("/tickets/{}/messages/{}", message.ticket_id, message.id)
}

/// Follows `next` from the first page to the end, calling `between` after each page.
pub async fn all_tickets(
    fx: &Fixture,
    viewer: Viewer,
    filter: &TicketFilter,
    page_size: u16,
    mut between: impl AsyncFnMut(usize),
) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut request = PageRequest::first(limit(page_size));
    for page_number in 0.. {
        let page: Page<Ticket, CreatedKey> = fx
            .tickets
            .list_visible(viewer, filter.clone(), request)
            .await
            .expect("list");
        assert!(page.items.len() <= usize::from(page_size));
        seen.extend(page.items.iter().map(|t| t.id.get()));
        between(page_number).await;
        match page.next {
            Some(next) => {
                let last = page.items.last().expect("a page with a next key has rows");
                assert_eq!(
                    next,
                    CreatedKey {
                        created_at: last.created_at,
                        id: last.id.get()
                    }
                );
                request.after = Some(next);
            }
            None => break,
        }
    }
    seen
}

/// Whether `ticket` belongs in the list `filter` asks `viewer` for, written from the
/// contract rather than from the adapter's SQL; all but the search, which only the
/// test knows how its texts match.
pub fn listed(viewer: Viewer, filter: &TicketFilter, ticket: &Ticket) -> bool {
    let visible = viewer.sees_all || ticket.author_id == viewer.user_id;
    let status = filter.statuses.is_empty() || filter.statuses.contains(&ticket.status);
    let priority = filter.priorities.is_empty() || filter.priorities.contains(&ticket.priority);
    let author = filter
        .author_email
        .as_ref()
        .is_none_or(|email| email.eq_ignore_ascii_case(&ticket.author_email));
    let assignee = match filter.assignee {
        None => true,
        Some(AssigneeFilter::Nobody) => ticket.assignee.is_none(),
        Some(AssigneeFilter::User(id)) => ticket.assignee.as_ref().map(|a| a.id) == Some(id),
    };
    visible && status && priority && author && assignee
}
