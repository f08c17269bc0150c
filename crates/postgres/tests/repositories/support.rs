//! Shared set-up: a fresh database with both repositories, and users to act as.

use domain::ports::{NewUser, UserRepository, Viewer};
use domain::values::{Email, MessageText, Topic, Username};
use domain::{Caller, Role, User};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{PgTicketRepository, PgUserRepository};
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

    /// One value that a query returns, read straight from the database.
    pub async fn scalar<T>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> T
    where
        T: for<'a> FromSql<'a>,
    {
        let client = self.db.pool().get().await.expect("connection");
        client.query_one(sql, params).await.expect(sql).get(0)
    }

    /// Runs a statement straight on the database.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> u64 {
        let client = self.db.pool().get().await.expect("connection");
        client.execute(sql, params).await.expect(sql)
    }
}

pub fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: Email::parse(email).expect("valid email"),
        username: Username::parse("someone").expect("valid username"),
        password_hash: format!("hash-of-{email}"),
        role,
    }
}

pub fn viewer(user: &User) -> Viewer {
    Viewer::from(Caller {
        id: user.id,
        role: user.role,
    })
}

pub fn topic(raw: &str) -> Topic {
    Topic::parse(raw).expect("valid topic")
}

pub fn text(raw: &str) -> MessageText {
    MessageText::parse(raw).expect("valid text")
}
