//! Statements and round trips to PostgreSQL per HTTP request (issue 10), for the mixed
//! workload, for `GET /tickets/{id}` as the bare server's comparison sends it, for each
//! share of the mix alone, and for the bare server itself (one of each, or the counter
//! is wrong).
//!
//! `pg_stat_statements` would count them inside PostgreSQL, but it only loads with
//! `shared_preload_libraries`, at PostgreSQL's start; a benchmark does not restart a
//! shared server. So a second server of this build, and a second bare server, connect
//! through [`CountingProxy`]s that count what they send ([`crate::wire`]). When
//! `pg_stat_statements` is loaded after all, its count of the same passes is shown
//! beside.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::bare::FIND_VISIBLE;
use crate::config::Config;
use crate::load::{self, Workload};
use crate::mix;
use crate::placement::Placement;
use crate::psql::{self, Psql};
use crate::recorder::Recorder;
use crate::server::Server;
use crate::suite::WORK_DIR;
use crate::wire::{CountingProxy, Counts};
use crate::Error;

/// After a pass, the time for what its writes set off (the event tail reads the log
/// after each write's notification) to be counted with it.
const SETTLE: Duration = Duration::from_millis(300);

/// One pass: a load for a while, and what its server sent meanwhile.
pub struct Pass {
    pub label: String,
    pub requests: u64,
    pub failures: u64,
    pub wire: Counts,
    /// `pg_stat_statements`' statements in the database meanwhile, when it is loaded.
    pub pg_stat_statements: Option<u64>,
}

impl Pass {
    pub fn per_request(&self, count: u64) -> f64 {
        count as f64 / self.requests.max(1) as f64
    }
}

pub struct Counted {
    /// On the service: the mixed workload, `GET /tickets/{id}`, then each share alone.
    pub service: Vec<Pass>,
    /// `GET /tickets/{id}` on the bare server.
    pub bare: Pass,
    /// Whether the service prepared the bare server's statement, to the letter.
    pub same_statement: bool,
    /// Why `pg_stat_statements` could not count, when it could not.
    pub pg_stat_statements: Result<(), String>,
    pub seconds: Duration,
}

/// Counts the passes on servers started for it (logs in [`WORK_DIR`]); the tokens of
/// `workload` are valid on them (same signing key).
pub fn count(
    config: &Config,
    placement: &Placement,
    runtime: &tokio::runtime::Runtime,
    db: &Psql,
    workload: &Arc<Workload>,
) -> Result<Counted, Error> {
    let postgres = psql::server_address(db.url())?;
    let service_proxy = CountingProxy::start(postgres)?;
    let bare_proxy = CountingProxy::start(postgres)?;
    let work = Path::new(WORK_DIR);
    let mut service = Server::start(
        config,
        placement,
        &psql::with_address(db.url(), service_proxy.addr)?,
        &work.join("server-counting.log"),
    )?;
    let mut bare = Server::start_bare(
        config,
        placement,
        &psql::with_address(db.url(), bare_proxy.addr)?,
        &work.join("bare-server-counting.log"),
    )?;
    runtime.block_on(async {
        service.ready().await?;
        bare.ready().await
    })?;
    let pg_stat_statements = PgStatStatements::open(db);
    let counter = pg_stat_statements.as_ref().ok();

    let secs = config.count_duration;
    let connections = config.connections;
    // Unrecorded first, so that every connection of the pool has prepared the
    // statements it keeps: what is left is the steady state.
    runtime.block_on(async {
        load::mixed(service.addr, workload.clone(), connections, secs, 0).await?;
        load::get_ticket(bare.addr, workload.clone(), connections, secs, 0).await
    })?;

    let mut loads: Vec<(String, &'static [mix::Share])> = vec![
        ("mixed workload".to_owned(), &mix::MIX[..]),
        (
            format!(
                "`{}` (as against the bare server)",
                mix::Endpoint::GetTicket.label()
            ),
            &mix::PROBE[..],
        ),
    ];
    for index in 0..mix::MIX.len() {
        let share = &mix::MIX[index];
        loads.push((
            format!("`{}`, {} only", share.endpoint.label(), share.role.label()),
            &mix::MIX[index..=index],
        ));
    }
    let mut passes = Vec::with_capacity(loads.len());
    for (seed, (label, shares)) in (1..).zip(loads) {
        let load = load::closed_loop(
            service.addr,
            workload.clone(),
            connections,
            secs,
            seed,
            shares,
        );
        passes.push(pass(runtime, &service_proxy, counter, label, load)?);
    }
    let bare_load = load::get_ticket(bare.addr, workload.clone(), connections, secs, 1);
    let bare_pass = pass(
        runtime,
        &bare_proxy,
        counter,
        "bare server".to_owned(),
        bare_load,
    )?;
    let same_statement = service_proxy.prepared(FIND_VISIBLE);
    service.stop()?;
    bare.stop()?;
    Ok(Counted {
        service: passes,
        bare: bare_pass,
        same_statement,
        pg_stat_statements: pg_stat_statements.map(drop),
        seconds: secs,
    })
}

fn pass(
    runtime: &tokio::runtime::Runtime,
    proxy: &CountingProxy,
    counter: Option<&PgStatStatements>,
    label: String,
    load: impl Future<Output = Result<Recorder, Error>>,
) -> Result<Pass, Error> {
    let calls_before = counter.map(PgStatStatements::calls).transpose()?;
    let before = proxy.counts();
    let recorder = runtime.block_on(async {
        let recorder = load.await?;
        tokio::time::sleep(SETTLE).await;
        Ok::<_, Error>(recorder)
    })?;
    let wire = proxy.counts().since(before);
    let calls_after = counter.map(PgStatStatements::calls).transpose()?;
    let pass = Pass {
        label,
        requests: recorder.successes() + recorder.failures(),
        failures: recorder.failures(),
        wire,
        // The first reading is itself a statement of the database's, counted by the
        // second.
        pg_stat_statements: calls_before
            .zip(calls_after)
            .map(|(before, after)| after.saturating_sub(before).saturating_sub(1)),
    };
    println!(
        "statements: {}: {:.2} statements and {:.2} round trips per request ({} requests)",
        pass.label,
        pass.per_request(pass.wire.statements()),
        pass.per_request(pass.wire.round_trips),
        pass.requests
    );
    Ok(pass)
}

/// `pg_stat_statements` in the benchmark's database, when PostgreSQL loaded it.
struct PgStatStatements<'a> {
    db: &'a Psql,
}

impl<'a> PgStatStatements<'a> {
    fn open(db: &'a Psql) -> Result<Self, String> {
        // Quoted, so that an empty setting is still a value.
        let quoted = db
            .value("SELECT quote_literal(current_setting('shared_preload_libraries'))")
            .map_err(|e| e.to_string())?;
        let loaded = quoted.trim_matches('\'');
        if !loaded
            .split(',')
            .any(|library| library.trim() == "pg_stat_statements")
        {
            return Err(format!(
                "not loaded (`shared_preload_libraries` is {quoted}; loading it takes a \
                 restart of PostgreSQL), so the proxy's count is the only one"
            ));
        }
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .map_err(|e| e.to_string())?;
        let counter = Self { db };
        counter.calls().map_err(|e| e.to_string())?;
        Ok(counter)
    }

    /// Statements run in this database so far (those `pg_stat_statements` still holds).
    fn calls(&self) -> Result<u64, Error> {
        Ok(self
            .db
            .value(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )?
            .parse()?)
    }
}

/// The report's section.
pub fn section(counted: &Result<Counted, String>) -> Result<String, Error> {
    use std::fmt::Write as _;

    use crate::report::{thousands, Table};

    let mut out = String::from("## Statements per request\n\n");
    let counted = match counted {
        Ok(counted) => counted,
        Err(e) => {
            writeln!(out, "Not counted: {e}.\n")?;
            return Ok(out);
        }
    };
    let by_pg_stat_statements = counted.pg_stat_statements.is_ok();
    writeln!(
        out,
        "What each server sent PostgreSQL, counted by the bench's own counter: a second \
         server of this build and a second bare server, each connecting to PostgreSQL \
         through a proxy in the bench that reads the messages of PostgreSQL's wire protocol \
         (`crates/bench/src/wire.rs`). A statement is an `Execute` or a simple `Query`; a \
         round trip is each time the server sends again after PostgreSQL has answered \
         (statements pipelined together make one); a prepare is a `Parse` (a statement's \
         first use on a connection, or one planned for its parameters every time). Each \
         pass is {} s of load on the mix's connections after a warm-up; the servers' own \
         background statements (the event tail's and the webhook worker's polls, each once \
         a second) are counted with it. `pg_stat_statements`: {}.\n",
        counted.seconds.as_secs(),
        match &counted.pg_stat_statements {
            Ok(()) => "loaded, and its count of the same passes is in the last column \
                       (every statement in the benchmark's database meanwhile)"
                .to_owned(),
            Err(why) => why.clone(),
        }
    )?;
    let mut header = vec![
        "load",
        ">requests",
        ">statements/request",
        ">round trips/request",
        ">prepares/request",
    ];
    if by_pg_stat_statements {
        header.push(">pg_stat_statements/request");
    }
    let mut table = Table::new(&header);
    for (server, pass) in counted
        .service
        .iter()
        .map(|pass| ("service", pass))
        .chain([("bare server", &counted.bare)])
    {
        let mut row = vec![
            if server == "service" {
                pass.label.clone()
            } else {
                format!("`GET /tickets/{{id}}` on the {server}")
            },
            thousands(pass.requests as f64),
            format!("{:.2}", pass.per_request(pass.wire.statements())),
            format!("{:.2}", pass.per_request(pass.wire.round_trips)),
            format!("{:.3}", pass.per_request(pass.wire.parses)),
        ];
        if by_pg_stat_statements {
            row.push(pass.pg_stat_statements.map_or_else(String::new, |calls| {
                format!("{:.2}", pass.per_request(calls))
            }));
        }
        table.row(&row);
    }
    writeln!(out, "{}", table.finish())?;
    let failures: u64 = counted
        .service
        .iter()
        .chain([&counted.bare])
        .map(|pass| pass.failures)
        .sum();
    writeln!(
        out,
        "The bare server's statement {} among those the service prepared (`bench/data/` \
         holds the counting servers' logs). Non-2xx answers during the passes: {failures}.\n",
        if counted.same_statement {
            "is, to the letter,"
        } else {
            "is **not**"
        }
    )?;
    Ok(out)
}
