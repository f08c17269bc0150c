//! [`UserRepository`] on PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::page::{Page, PageRequest, UsersKey};
use domain::ports::{CreateUserError, Credentials, NewUser, UserChanges, UserRepository};
use domain::{Caller, RepositoryError, Role, User, UserId};
use tokio_postgres::error::SqlState;

use crate::pool::connection;
use crate::{query, rows};

/// The unique index that makes e-mails unique without regard to case.
const EMAIL_UNIQUE_INDEX: &str = "users_email_lower_key";

/// The columns `rows::user` reads.
macro_rules! user_columns {
    () => {
        "id, created_at, username, email, is_staff, is_superuser, is_active, tickets_count"
    };
}

const CREATE_USER: &str = concat!(
    "INSERT INTO users (email, username, password_hash, is_staff, is_superuser) ",
    "VALUES ($1, $2, $3, $4, $5) ",
    "RETURNING ",
    user_columns!()
);

// The conflict target names the expression of `users_email_lower_key`, so an existing
// address in another case is promoted rather than duplicated.
const UPSERT_SUPERUSER: &str = concat!(
    "INSERT INTO users (email, username, password_hash, is_staff, is_superuser) ",
    "VALUES ($1, $2, $3, true, true) ",
    "ON CONFLICT ((lower(email))) DO UPDATE SET ",
    "username = EXCLUDED.username, password_hash = EXCLUDED.password_hash, ",
    "is_staff = true, is_superuser = true, is_active = true ",
    "RETURNING ",
    user_columns!()
);

const FIND_CREDENTIALS: &str = "SELECT id, password_hash, is_active, is_staff, is_superuser \
     FROM users WHERE lower(email) = lower($1)";

const FIND_ACTIVE_CALLER: &str =
    "SELECT id, is_staff, is_superuser FROM users WHERE id = $1 AND is_active";

const FIND_USER: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");

const FIND_PASSWORD_HASH: &str = "SELECT password_hash FROM users WHERE id = $1";

const LIST_USERS_FIRST: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users ORDER BY tickets_count DESC, id ASC LIMIT $1"
);

// Ticket count descending, then id ascending: the directions differ, so no row
// comparison can express "after ($1, $2)". Its two halves, the rest of the key's
// ticket-count group and the groups below it, are each one range of
// `users_tickets_count_id_idx`, so a deep page costs what the first one does.
const LIST_USERS_AFTER: &str = concat!(
    "(SELECT ",
    user_columns!(),
    " FROM users WHERE tickets_count = $1 AND id > $2 ",
    "ORDER BY tickets_count DESC, id ASC LIMIT $3) ",
    "UNION ALL ",
    "(SELECT ",
    user_columns!(),
    " FROM users WHERE tickets_count < $1 ",
    "ORDER BY tickets_count DESC, id ASC LIMIT $3) ",
    "ORDER BY tickets_count DESC, id ASC LIMIT $3"
);

// `NULL` leaves a column as it is. Taking staff rights away also takes superuser
// rights, which `users_superuser_is_staff` requires anyway.
// A rename changes how every ticket assigned to the user is shown (`assignee.username`),
// so it grows those tickets' versions, which are their ETags. The CTEs all see the rows
// as they were before the statement, so `before` holds the old username.
const UPDATE_USER: &str = concat!(
    "WITH before AS (SELECT username FROM users WHERE id = $1), ",
    "u AS (",
    "UPDATE users SET ",
    "username = COALESCE($2, username), ",
    "password_hash = COALESCE($3, password_hash), ",
    "is_staff = COALESCE($4, is_staff), ",
    "is_superuser = is_superuser AND COALESCE($4, true), ",
    "is_active = COALESCE($5, is_active) ",
    "WHERE id = $1 ",
    "RETURNING ",
    user_columns!(),
    "), renamed AS (",
    "UPDATE tickets SET version = version + 1 WHERE assignee_id = $1 ",
    "AND EXISTS (SELECT 1 FROM before, u WHERE before.username <> u.username)",
    ") SELECT * FROM u"
);

/// Users in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgUserRepository {
    pool: Pool,
}

impl PgUserRepository {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

/// Is this the unique violation of the case-insensitive e-mail index?
fn is_email_taken(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && error
            .as_db_error()
            .and_then(|db| db.constraint())
            .is_some_and(|name| name == EMAIL_UNIQUE_INDEX)
}

#[async_trait]
impl UserRepository for PgUserRepository {
    async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError> {
        let client = connection(&self.pool).await?;
        let (is_staff, is_superuser) = rows::role_flags(user.role);
        let row = query::raw_optional_row(
            &client,
            CREATE_USER,
            &[
                &user.email.as_str(),
                &user.username.as_str(),
                &user.password_hash,
                &is_staff,
                &is_superuser,
            ],
        )
        .await
        .map_err(|e| {
            if is_email_taken(&e) {
                CreateUserError::EmailTaken
            } else {
                CreateUserError::Repository(crate::error::db(e))
            }
        })?
        .ok_or_else(|| RepositoryError::msg("INSERT … RETURNING returned no row"))?;
        Ok(rows::user(&row)?)
    }

    async fn upsert_superuser(&self, user: NewUser) -> Result<User, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::one_row(
            &client,
            UPSERT_SUPERUSER,
            &[
                &user.email.as_str(),
                &user.username.as_str(),
                &user.password_hash,
            ],
        )
        .await?;
        rows::user(&row)
    }

    async fn find_credentials(&self, email: &str) -> Result<Option<Credentials>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(&client, FIND_CREDENTIALS, &[&email]).await?;
        row.map(|row| {
            Ok(Credentials {
                user_id: rows::user_id(&row, "id")?,
                password_hash: rows::column(&row, "password_hash")?,
                is_active: rows::column(&row, "is_active")?,
                role: Role::from_flags(
                    rows::column(&row, "is_staff")?,
                    rows::column(&row, "is_superuser")?,
                ),
            })
        })
        .transpose()
    }

    async fn find_active_caller(&self, id: UserId) -> Result<Option<Caller>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(&client, FIND_ACTIVE_CALLER, &[&id.get()]).await?;
        row.map(|row| {
            Ok(Caller {
                id: rows::user_id(&row, "id")?,
                role: Role::from_flags(
                    rows::column(&row, "is_staff")?,
                    rows::column(&row, "is_superuser")?,
                ),
            })
        })
        .transpose()
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(&client, FIND_USER, &[&id.get()]).await?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn find_password_hash(&self, id: UserId) -> Result<Option<String>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(&client, FIND_PASSWORD_HASH, &[&id.get()]).await?;
        row.map(|row| rows::column(&row, "password_hash"))
            .transpose()
    }

    async fn list_users(
        &self,
        page: PageRequest<UsersKey>,
    ) -> Result<Page<User, UsersKey>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let fetch = rows::fetch_count(page.limit.get());
        let fetched = match page.after {
            None => query::rows(&client, LIST_USERS_FIRST, &[&fetch]).await?,
            Some(after) => {
                query::rows(
                    &client,
                    LIST_USERS_AFTER,
                    &[&after.tickets_count, &after.id, &fetch],
                )
                .await?
            }
        };
        let users = fetched
            .iter()
            .map(rows::user)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows::page(users, page.limit.get(), |user| UsersKey {
            tickets_count: user.tickets_count,
            id: user.id.get(),
        }))
    }

    async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
    ) -> Result<Option<User>, RepositoryError> {
        let client = connection(&self.pool).await?;
        let row = query::optional_row(
            &client,
            UPDATE_USER,
            &[
                &id.get(),
                &changes.username.as_ref().map(|name| name.as_str()),
                &changes.password_hash,
                &changes.is_staff,
                &changes.is_active,
            ],
        )
        .await?;
        row.as_ref().map(rows::user).transpose()
    }
}
