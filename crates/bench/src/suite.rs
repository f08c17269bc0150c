//! `bench default` and `bench large`: seed, start the server, then the mixed workload
//! against pgbench's ceiling (rounds interleaved, so that noise hits both alike), pages,
//! logins, `GET /tickets/{id}` under login load, and (large) search with its plans;
//! report.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::dataset::{self, Hashes, Seeded, Size};
use crate::explain::{self, Plan};
use crate::fixtures::Fixtures;
use crate::load::{self, Workload, LOGIN};
use crate::machine::{CpuCounters, Machine};
use crate::mix::Endpoint;
use crate::overheads::{self, OverheadRound};
use crate::pages::{self, ListPages, PageLatency};
use crate::pgbench::{self, Pgbench};
use crate::placement::Placement;
use crate::recorder::{Recorder, Summary};
use crate::reference::{self, ReferenceRound};
use crate::search::{self, Searched};
use crate::server::{self, process_cpu_time, Server};
use crate::statements::{self, Counted};
use crate::{sessions, suite_report, Error};

/// Where logs and composed scripts go (ignored by git).
pub const WORK_DIR: &str = "bench/data";
/// Connections of the `GET /tickets/{id}` probe.
const PROBE_CONNECTIONS: usize = 8;
/// Requests per page and round when timing pages.
const PAGE_SAMPLES: usize = 100;

/// A measured round of load on one server: the mixed workload, or `GET /tickets/{id}`.
pub struct LoadRound {
    pub recorder: Recorder,
    pub seconds: f64,
    pub server_cpu: Duration,
    pub bench_cpu: Duration,
    /// Fraction of all CPUs busy during the round (everything on the machine).
    pub machine_busy: f64,
}

impl LoadRound {
    pub fn throughput(&self) -> f64 {
        self.recorder.successes() as f64 / self.seconds
    }

    pub fn cpu_per_request(&self) -> Duration {
        self.server_cpu
            .checked_div(
                u32::try_from(self.recorder.successes())
                    .unwrap_or(u32::MAX)
                    .max(1),
            )
            .unwrap_or_default()
    }
}

pub struct LoginRound {
    pub recorder: Recorder,
    pub seconds: f64,
}

pub struct InterferenceRound {
    pub quiet: Recorder,
    pub loaded: Recorder,
    pub logins: Recorder,
}

impl InterferenceRound {
    pub fn quiet_get(&self) -> Option<Summary> {
        self.quiet.summary(Endpoint::GetTicket.label())
    }

    pub fn loaded_get(&self) -> Option<Summary> {
        self.loaded.summary(Endpoint::GetTicket.label())
    }
}

pub struct SearchResults {
    pub searched: Searched,
    /// The plans, or why they could not be captured.
    pub plans: Result<Vec<Plan>, String>,
}

pub struct SuiteResults<'a> {
    pub config: &'a Config,
    pub size: &'a Size,
    pub machine: Machine,
    pub seeded: Seeded,
    pub server_cores: usize,
    pub pgbench_command: String,
    pub warmup: Recorder,
    pub mixed: Vec<LoadRound>,
    pub pgbench: Vec<pgbench::Round>,
    pub peak_rss: u64,
    /// `GET /tickets/{id}` on the service and on the bare reference server.
    pub reference: Vec<ReferenceRound>,
    /// The mixed workload without metrics, and compressing.
    pub overheads: Vec<OverheadRound>,
    /// Statements per request, or why they could not be counted.
    pub statements: Result<Counted, String>,
    pub pages: Vec<PageLatency>,
    pub hash_time: Duration,
    pub logins: Vec<LoginRound>,
    pub interference: Vec<InterferenceRound>,
    pub search: Option<SearchResults>,
    pub elapsed: Duration,
}

pub fn run(config: &Config, placement: &Placement, size: &Size) -> Result<(), Error> {
    let started = Instant::now();
    let work = Path::new(WORK_DIR);
    std::fs::create_dir_all(work)?;
    let machine = Machine::describe(&dataset::admin(config)?, placement)?;
    println!("placement: {}", machine.placement);
    let hashes = Hashes::new(config.bcrypt_cost)?;
    let hash_time = time_verify(&hashes.slow)?;
    println!(
        "one bcrypt verification at cost {}: {:.1} ms",
        config.bcrypt_cost,
        hash_time.as_secs_f64() * 1e3
    );
    let Launched {
        seeded,
        runtime,
        server,
        workload,
        login_emails,
    } = launch(config, placement, size, &hashes)?;
    let addr = server.addr;
    let pgbench = Pgbench::prepare(
        size,
        dataset::database(config, size)?.url(),
        config.pg_clients,
        work,
    )?;

    println!("warming up for {} s each", config.warmup.as_secs());
    pgbench.run(config.warmup, false)?;
    let warmup = runtime.block_on(load::mixed(
        addr,
        workload.clone(),
        config.connections,
        config.warmup,
        0,
    ))?;

    let mut mixed = Vec::with_capacity(config.rounds);
    let mut pg_rounds = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds {
        let pg = pgbench.run(config.duration, true)?;
        println!(
            "round {round}: pgbench {} tps ({} failed)",
            crate::report::thousands(pg.tps),
            pg.failed
        );
        pg_rounds.push(pg);
        let result = mixed_round(&runtime, &server, &workload, config, round as u64)?;
        println!(
            "round {round}: HTTP {} req/s, p99 {}, {} errors, server CPU {:.0} µs/request",
            crate::report::thousands(result.throughput()),
            crate::report::latency(result.recorder.overall()?.p99),
            result.recorder.failures(),
            result.cpu_per_request().as_secs_f64() * 1e6
        );
        mixed.push(result);
    }
    let peak_rss = server.peak_rss()?;
    let db = dataset::database(config, size)?;
    let beside = Beside {
        config,
        placement,
        runtime: &runtime,
        service: &server,
        workload: &workload,
        database_url: db.url(),
        dataset: size.name,
    };
    let reference = reference::run(&beside)?;
    let overheads = overheads::run(&beside)?;

    let staff = workload
        .sessions
        .staff
        .first()
        .ok_or("no staff session")?
        .clone();
    let page_results = runtime.block_on(async {
        let mut lists = Vec::new();
        for (list, rows) in [("/tickets", seeded.tickets), ("/users", seeded.users)] {
            let depth = u64::try_from(rows / 2)?;
            lists.push(ListPages::open(addr, staff.clone(), list, depth).await?);
        }
        pages::measure(&mut lists, config.rounds, PAGE_SAMPLES).await
    })?;
    for pages in &page_results {
        println!(
            "GET {}: first page p50 {}, page after row {} p50 {}",
            pages.list,
            crate::report::latency(pages.first),
            pages.depth,
            crate::report::latency(pages.deep)
        );
    }

    let mut logins = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds {
        let begun = Instant::now();
        let recorder = runtime.block_on(load::logins(
            addr,
            login_emails.clone(),
            config.login_clients,
            config.login_duration,
        ))?;
        let seconds = begun.elapsed().as_secs_f64();
        println!(
            "round {round}: {:.1} logins/s",
            recorder.successes() as f64 / seconds
        );
        logins.push(LoginRound { recorder, seconds });
    }

    let mut interference = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds {
        let result =
            runtime.block_on(interference_round(addr, &workload, &login_emails, config))?;
        if let (Some(quiet), Some(loaded)) = (result.quiet_get(), result.loaded_get()) {
            println!(
                "round {round}: GET /tickets/{{id}} p99 {} alone, {} while logging in",
                crate::report::latency(quiet.p99),
                crate::report::latency(loaded.p99)
            );
        }
        interference.push(result);
    }
    let search = if size.search {
        Some(search_round(
            config, placement, &runtime, &server, &workload, &db,
        )?)
    } else {
        None
    };
    server.stop()?;
    // On servers of their own, after everything measured; the count is reported, not
    // needed, so a failure to count does not lose the run.
    println!("counting statements per request");
    let statements =
        statements::count(config, placement, &runtime, &db, &workload).map_err(|e| e.to_string());
    if let Err(e) = &statements {
        println!("statements not counted: {e}");
    }

    let results = SuiteResults {
        config,
        size,
        machine,
        seeded,
        server_cores: placement.server_cores(),
        pgbench_command: pgbench.describe(),
        warmup,
        mixed,
        pgbench: pg_rounds,
        peak_rss,
        reference,
        overheads,
        statements,
        pages: page_results,
        hash_time,
        logins,
        interference,
        search,
        elapsed: started.elapsed(),
    };
    let file = match size.name {
        "default" => "bench/RESULTS.md".to_owned(),
        other => format!("bench/RESULTS-{other}.md"),
    };
    crate::report::publish(Path::new(&file), &suite_report::render(&results)?)
}

/// What a comparison with another server beside the suite's needs: the suite's
/// server, its load and its database.
pub struct Beside<'a> {
    pub config: &'a Config,
    pub placement: &'a Placement,
    pub runtime: &'a tokio::runtime::Runtime,
    pub service: &'a Server,
    pub workload: &'a Arc<Workload>,
    pub database_url: &'a str,
    /// The dataset's name, for the other server's log.
    pub dataset: &'a str,
}

/// A seeded dataset and the release server on it, its users logged in.
pub struct Launched {
    pub seeded: Seeded,
    pub runtime: tokio::runtime::Runtime,
    pub server: Server,
    pub workload: Arc<Workload>,
    /// Accounts whose hash has the server's cost, for the login benchmark.
    pub login_emails: Arc<Vec<String>>,
}

/// Seeds `size`, starts the server on it (log in [`WORK_DIR`]) and logs in all staff
/// and `config.customers` customers: what every run against one dataset begins with.
pub fn launch(
    config: &Config,
    placement: &Placement,
    size: &Size,
    hashes: &Hashes,
) -> Result<Launched, Error> {
    launch_with(config, placement, size, hashes, &server::MEASURED)
}

/// [`launch`] with the server's `options`.
pub fn launch_with(
    config: &Config,
    placement: &Placement,
    size: &Size,
    hashes: &Hashes,
    options: &server::Options,
) -> Result<Launched, Error> {
    let seeded = dataset::seed(config, size, hashes)?;
    let db = dataset::database(config, size)?;
    let fixtures = Fixtures::load(&db, size, config.customers)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let log = Path::new(WORK_DIR).join(format!("server-{}.log", size.name));
    let mut server = Server::start_with(config, placement, db.url(), &log, options)?;
    runtime.block_on(server.ready())?;
    println!(
        "server {} (pid {}) ready; logging in {} staff and {} customers",
        server.addr,
        server.pid(),
        fixtures.staff.len(),
        fixtures.customers.len()
    );
    let sessions = runtime.block_on(sessions::open(
        server.addr,
        &fixtures.staff,
        &fixtures.customers,
    ))?;
    let login_emails = Arc::new(fixtures.login.clone());
    Ok(Launched {
        seeded,
        runtime,
        server,
        workload: Arc::new(Workload { fixtures, sessions }),
        login_emails,
    })
}

pub fn mixed_round(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    workload: &Arc<Workload>,
    config: &Config,
    seed: u64,
) -> Result<LoadRound, Error> {
    measured_round(
        runtime,
        server,
        load::mixed(
            server.addr,
            workload.clone(),
            config.connections,
            config.duration,
            seed,
        ),
    )
}

/// Runs `load` against `server` and measures the round: its length, and the CPU time of
/// the server, of this process and of the machine meanwhile.
pub fn measured_round(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    load: impl Future<Output = Result<Recorder, Error>>,
) -> Result<LoadRound, Error> {
    let cpu_before = server.cpu_time()?;
    let bench_before = process_cpu_time("/proc/self/stat")?;
    let machine_before = CpuCounters::read()?;
    let begun = Instant::now();
    let recorder = runtime.block_on(load)?;
    let seconds = begun.elapsed().as_secs_f64();
    Ok(LoadRound {
        recorder,
        seconds,
        server_cpu: server.cpu_time()?.saturating_sub(cpu_before),
        bench_cpu: process_cpu_time("/proc/self/stat")?.saturating_sub(bench_before),
        machine_busy: CpuCounters::read()?.busy_since(machine_before),
    })
}

/// Search latencies on `server`, then the plans of its statements (a second server, on
/// the same database, explains them); a failure to capture the plans is reported, not
/// fatal.
fn search_round(
    config: &Config,
    placement: &Placement,
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    workload: &Workload,
    db: &crate::psql::Psql,
) -> Result<SearchResults, Error> {
    println!("search: a rare and a common word, as staff and as a customer");
    let searched = runtime.block_on(search::measure(server.addr, workload, config.rounds))?;
    for (case, requests) in &searched.samples {
        if let Some(s) = searched.recorder.summary(case.label()) {
            println!(
                "search, {}: p50 {}, p99 {} ({requests} requests)",
                case.label(),
                crate::report::latency(s.p50),
                crate::report::latency(s.p99)
            );
        }
    }
    let plans =
        explain::capture(config, placement, runtime, db.url(), workload).map_err(|e| e.to_string());
    match &plans {
        Ok(_) => println!("search plans written to {WORK_DIR}/explain/"),
        Err(e) => println!("search plans not captured: {e}"),
    }
    Ok(SearchResults { searched, plans })
}

/// The probe alone, then the probe while logins keep every hashing permit busy (they
/// start a second earlier and stop a second later).
async fn interference_round(
    addr: std::net::SocketAddr,
    workload: &Arc<Workload>,
    login_emails: &Arc<Vec<String>>,
    config: &Config,
) -> Result<InterferenceRound, Error> {
    let duration = config.login_duration;
    let quiet = load::probe(
        addr,
        workload.clone(),
        PROBE_CONNECTIONS,
        config.probe_rate,
        duration,
    )
    .await?;
    let lead = Duration::from_secs(1);
    let (logins, loaded) = tokio::join!(
        load::logins(
            addr,
            login_emails.clone(),
            config.login_clients,
            duration + 2 * lead,
        ),
        async {
            tokio::time::sleep(lead).await;
            load::probe(
                addr,
                workload.clone(),
                PROBE_CONNECTIONS,
                config.probe_rate,
                duration,
            )
            .await
        }
    );
    Ok(InterferenceRound {
        quiet,
        loaded: loaded?,
        logins: logins?,
    })
}

/// The time of one bcrypt verification of `hash` on this process's CPU: the fastest of
/// a few, since other work on a busy machine only ever adds to it.
fn time_verify(hash: &str) -> Result<Duration, Error> {
    let mut fastest = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        if !bcrypt::verify(dataset::PASSWORD, hash)? {
            return Err("the seeded hash does not verify".into());
        }
        fastest = fastest.min(started.elapsed());
    }
    Ok(fastest)
}

/// Every recorder of the run: the report lists their failures.
pub fn all_recorders<'r>(results: &'r SuiteResults<'_>) -> Vec<&'r Recorder> {
    let mut all = vec![&results.warmup];
    all.extend(results.mixed.iter().map(|r| &r.recorder));
    for round in &results.reference {
        all.extend([&round.service.recorder, &round.bare.recorder]);
    }
    for round in &results.overheads {
        all.extend([
            &round.measured.recorder,
            &round.without_metrics.recorder,
            &round.compressing.recorder,
        ]);
    }
    all.extend(results.logins.iter().map(|r| &r.recorder));
    for round in &results.interference {
        all.extend([&round.quiet, &round.loaded, &round.logins]);
    }
    all
}

/// Logins per second of a login round.
pub fn login_rate(round: &LoginRound) -> f64 {
    round
        .recorder
        .summary(LOGIN)
        .map_or(0.0, |s| s.count as f64 / round.seconds)
}
