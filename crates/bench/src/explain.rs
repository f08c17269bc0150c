//! The plans of the search statements as the service runs them. A second server on
//! the same database opens its connections with auto_explain loaded and set to explain
//! every statement (ANALYZE, BUFFERS) into a notice; tokio-postgres logs the notices it
//! receives, and the server's log, as JSON lines, holds them. Nothing is copied from
//! the adapter's SQL, so each plan is that of the statement, the parameters and the
//! planning (unprepared: for its own words) that the service really uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Method;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::client::Client;
use crate::config::Config;
use crate::load::Workload;
use crate::placement::Placement;
use crate::search::{Case, CASES};
use crate::server::{Options, Server};
use crate::suite::WORK_DIR;
use crate::{sessions, Error};

/// Session settings of the explaining server's connections. Loading a library per
/// session takes a superuser, which the benchmark's default `postgres` role is.
const AUTO_EXPLAIN: [(&str, &str); 5] = [
    ("session_preload_libraries", "auto_explain"),
    ("auto_explain.log_min_duration", "0"),
    ("auto_explain.log_analyze", "on"),
    ("auto_explain.log_buffers", "on"),
    // To the client (the server), not into PostgreSQL's own log.
    ("auto_explain.log_level", "notice"),
];

/// tokio-postgres logs a notice at `info`. A statement that the service's timeout
/// cancels never reaches auto_explain, so the explaining server waits longer.
const EXPLAINING: Options = Options {
    log_filter: "warn,tokio_postgres=info",
    log_json: true,
    statement_timeout: Some(Duration::from_secs(120)),
    settings: &[],
};

/// Only search statements call it.
const SEARCH_MARK: &str = "websearch_to_tsquery";

pub struct Plan {
    pub case: Case,
    /// auto_explain's text: the duration, the query, then the plan.
    pub text: String,
    pub file: PathBuf,
}

impl Plan {
    /// The indexes the plan reads, and the tables it scans whole, in plan order.
    pub fn access_paths(&self) -> Vec<String> {
        access_paths(&self.text)
    }

    /// The statement's time as auto_explain measured it.
    pub fn duration(&self) -> Option<Duration> {
        let after = self.text.split_once("duration: ")?.1;
        let millis: f64 = after.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_secs_f64(millis / 1e3))
    }
}

/// Runs each search case twice on an explaining server and keeps the second run's
/// plan (warm caches, as in the measurement), written to `bench/data/explain/`.
pub fn capture(
    config: &Config,
    placement: &Placement,
    runtime: &tokio::runtime::Runtime,
    database_url: &str,
    workload: &Workload,
) -> Result<Vec<Plan>, Error> {
    let url = with_options(database_url)?;
    let log = Path::new(WORK_DIR).join("server-explain.log");
    let mut server = Server::start_with(config, placement, &url, &log, &EXPLAINING)?;
    // The measurement's requests, by one member of staff and one customer.
    let mut fixtures = workload.fixtures.clone();
    fixtures.staff.truncate(1);
    fixtures.customers.truncate(1);
    fixtures.owned.retain(|owned| owned.customer == 0);
    let dir = Path::new(WORK_DIR).join("explain");
    std::fs::create_dir_all(&dir)?;
    let plans = runtime.block_on(async {
        server.ready().await?;
        let sessions = sessions::open(server.addr, &fixtures.staff, &fixtures.customers).await?;
        let explained = Workload { fixtures, sessions };
        let mut client = Client::connect(server.addr).await?;
        let mut plans = Vec::with_capacity(CASES.len());
        for case in CASES {
            let query = case.query(&explained, &mut StdRng::seed_from_u64(17));
            // The same request twice; the notice is logged before the answer comes.
            for _ in 0..2 {
                let reply = client
                    .send(Method::GET, &query.path, Some(&query.token), None)
                    .await?;
                if !reply.status.is_success() {
                    return Err(format!("GET {} answered {}", query.path, reply.status).into());
                }
            }
            let logged = logged_plans(&std::fs::read_to_string(&log)?);
            let expected = 2 * (plans.len() + 1);
            if logged.len() != expected {
                return Err(format!(
                    "{} holds {} search plans after {expected} searches \
                     (may the database role load auto_explain?)",
                    log.display(),
                    logged.len()
                )
                .into());
            }
            let text = logged.last().cloned().unwrap_or_default();
            let file = dir.join(format!("search-{}.txt", case.label().replace(", ", "-")));
            std::fs::write(
                &file,
                format!("-- GET {} as {}\n{text}\n", query.path, case.role.label()),
            )?;
            plans.push(Plan { case, text, file });
        }
        Ok::<_, Error>(plans)
    });
    server.stop()?;
    plans
}

/// `url` with auto_explain in its startup options.
fn with_options(url: &str) -> Result<String, Error> {
    if url.contains("options=") {
        return Err("DATABASE_URL sets options; the search plans need their own".into());
    }
    let options: Vec<String> = AUTO_EXPLAIN
        .iter()
        .map(|(name, value)| format!("-c%20{name}%3D{value}"))
        .collect();
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}options={}", options.join("%20")))
}

/// The search statements' plans in a JSON-lines log, in the order they ran.
fn logged_plans(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|event| {
            event
                .get("message")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .filter(|message| message.contains(SEARCH_MARK))
        .map(|message| {
            message
                .strip_prefix("NOTICE: ")
                .unwrap_or(&message)
                .to_owned()
        })
        .collect()
}

fn access_paths(plan: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in plan.lines() {
        let path = [
            ("Bitmap Index Scan on ", ""),
            ("Index Only Scan using ", ""),
            ("Index Scan Backward using ", ""),
            ("Index Scan using ", ""),
            ("Seq Scan on ", "whole table "),
        ]
        .iter()
        .find_map(|(marker, prefix)| {
            let name = line.split_once(marker)?.1.split_whitespace().next()?;
            Some(format!("{prefix}{name}"))
        });
        if let Some(path) = path {
            if !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_options_to_the_url() {
        let url = with_options("postgres://p@h:5432/db").unwrap();
        assert!(url.starts_with(
            "postgres://p@h:5432/db?options=-c%20session_preload_libraries%3Dauto_explain%20-c%20"
        ));
        assert!(with_options("postgres://h/db?sslmode=disable")
            .unwrap()
            .contains("disable&options="));
        assert!(with_options("postgres://h/db?options=-c%20x%3D1").is_err());
    }

    #[test]
    fn finds_the_search_plans_and_what_they_read() {
        let log = concat!(
            r#"{"level":"INFO","message":"NOTICE: duration: 0.1 ms  plan:\nQuery Text: SELECT id FROM users\nIndex Scan using users_pkey on users"}"#,
            "\n",
            r#"{"level":"INFO","message":"NOTICE: duration: 12.5 ms  plan:\nQuery Text: SELECT … websearch_to_tsquery('english', $1) …\nLimit\n  ->  Bitmap Index Scan on messages_search_idx  (cost=…)\n  ->  Index Scan using tickets_pkey on tickets s\n  ->  Seq Scan on users u\n  ->  Bitmap Index Scan on messages_search_idx"}"#,
            "\nnot json\n"
        );
        let plans = logged_plans(log);
        assert_eq!(plans.len(), 1);
        let plan = Plan {
            case: CASES[0],
            text: plans[0].clone(),
            file: PathBuf::new(),
        };
        assert_eq!(
            plan.access_paths(),
            vec!["messages_search_idx", "tickets_pkey", "whole table users"]
        );
        assert_eq!(plan.duration(), Some(Duration::from_micros(12_500)));
    }
}
