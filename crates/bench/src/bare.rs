//! `bench bare-server`: the ceiling of the service's own stack for `GET /tickets/{id}`
//! (issue 10). actix-web and deadpool-postgres, the workspace's versions, one route
//! that runs the statement the service runs for a ticket by id, prepared once per
//! connection, for a viewer who sees every ticket, and answers the row as the service's
//! JSON. No authentication, no middleware, no logging of requests: whatever the service
//! does beyond this is what the comparison measures.
//!
//! It reads the service's own settings, so that the bench configures both alike:
//! `DATABASE_URL`, `TICKETS__SERVER__HOST` and `TICKETS__SERVER__PORT`,
//! `TICKETS__DATABASE__POOL_MAX_SIZE` (16, as config/default.toml) and
//! `TICKETS__SERVER__WORKERS` (0: actix-web's default, one worker per CPU the process
//! may run on, as the service does).

use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpResponse, HttpServer};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::NoTls;

use crate::config::var;
use crate::Error;

/// `FIND_VISIBLE` of crates/postgres/src/tickets.rs as the service sends it (its
/// `concat!` spelled out). The statement count checks whether the service still
/// prepares this very text (see `statements::Counted::same_statement`).
pub const FIND_VISIBLE: &str = "SELECT t.id, t.created_at, t.updated_at, t.author_id, \
     u.email AS author_email, t.topic, t.status, t.priority, t.assignee_id, \
     a.username AS assignee_username, t.version FROM tickets t \
     JOIN users u ON u.id = t.author_id LEFT JOIN users a ON a.id = t.assignee_id \
     WHERE t.id = $1 AND (t.author_id = $2 OR $3)";

/// The viewer's id and `sees_all`: no user, and every ticket (staff's view).
const NOBODY: i64 = 0;
const SEES_ALL: bool = true;

struct Settings {
    database_url: String,
    host: String,
    port: u16,
    pool_size: usize,
    workers: usize,
}

impl Settings {
    fn from_env() -> Result<Self, Error> {
        Ok(Self {
            database_url: var(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/tickets".to_owned(),
            )?,
            host: var("TICKETS__SERVER__HOST", "127.0.0.1".to_owned())?,
            port: var("TICKETS__SERVER__PORT", 8080)?,
            pool_size: var("TICKETS__DATABASE__POOL_MAX_SIZE", 16)?,
            workers: var("TICKETS__SERVER__WORKERS", 0)?,
        })
    }
}

/// Serves until SIGINT or SIGTERM (actix-web's own handling).
pub fn serve() -> Result<(), Error> {
    let settings = Settings::from_env()?;
    actix_web::rt::System::new().block_on(run(settings))
}

async fn run(settings: Settings) -> Result<(), Error> {
    let pool = web::Data::new(pool(&settings)?);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(pool.clone())
            .route("/tickets/{id}", web::get().to(ticket))
    })
    .bind((settings.host.as_str(), settings.port))?;
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    server.run().await?;
    Ok(())
}

/// Connections open on first use, on the runtime of the worker that asks (deadpool's
/// default): the plain way to use the stack.
fn pool(settings: &Settings) -> Result<Pool, Error> {
    let mut pg_config: tokio_postgres::Config = settings.database_url.parse()?;
    pg_config.application_name("bench-bare-server");
    let manager = Manager::from_config(
        pg_config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(settings.pool_size.max(1))
        .build()?)
}

async fn ticket(pool: web::Data<Pool>, id: web::Path<i64>) -> HttpResponse {
    match find(&pool, id.into_inner()).await {
        Ok(Some(body)) => HttpResponse::Ok()
            .insert_header(ContentType::json())
            .body(body),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => {
            // The bench counts the non-2xx answers; the log says why, with the causes
            // (tokio-postgres says only "db error" at the top).
            let mut line = format!("bare-server: {e}");
            let mut cause = e.source();
            while let Some(inner) = cause {
                line.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            eprintln!("{line}");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}

/// The ticket as the service's JSON (`TicketResponse` for staff), if it exists.
async fn find(pool: &Pool, id: i64) -> Result<Option<Vec<u8>>, Error> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(FIND_VISIBLE).await?;
    let Some(row) = client
        .query_opt(&statement, &[&id, &NOBODY, &SEES_ALL])
        .await?
    else {
        return Ok(None);
    };
    let assignee = match (
        row.try_get::<_, Option<i64>>("assignee_id")?,
        row.try_get::<_, Option<&str>>("assignee_username")?,
    ) {
        (Some(id), Some(username)) => Some(UserRef { id, username }),
        _ => None,
    };
    let ticket = TicketJson {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        author: row.try_get("author_email")?,
        topic: row.try_get("topic")?,
        status: row.try_get::<_, Label<'_>>("status")?.0,
        priority: row.try_get::<_, Label<'_>>("priority")?.0,
        assignee,
        version: row.try_get("version")?,
    };
    Ok(Some(serde_json::to_vec(&ticket)?))
}

/// The service's `TicketResponse`, borrowed from the row.
#[derive(Serialize)]
struct TicketJson<'a> {
    id: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    author: &'a str,
    topic: &'a str,
    status: &'a str,
    priority: &'a str,
    assignee: Option<UserRef<'a>>,
    version: i64,
}

#[derive(Serialize)]
struct UserRef<'a> {
    id: i64,
    username: &'a str,
}

/// A PostgreSQL enum's label (`ticket_status`, `ticket_priority`): its binary form is
/// the label's text, which tokio-postgres reads into no standard type.
struct Label<'a>(&'a str);

impl<'a> FromSql<'a> for Label<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(std::str::from_utf8(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pgbench fragment holds the same statement with pgbench's variables: both
    /// copies of the service's SQL must agree.
    #[test]
    fn the_statement_is_the_pgbench_fragments() {
        let fragment = include_str!("../../../bench/pgbench/find_visible.sql");
        let sql: String = fragment
            .lines()
            .filter(|line| !line.starts_with("--"))
            .collect::<Vec<_>>()
            .join(" ")
            .replace(":t", "$1")
            .replace(":uid", "$2")
            .replace(":sees_all", "$3");
        assert_eq!(sql.trim_end_matches(';'), FIND_VISIBLE);
    }
}
