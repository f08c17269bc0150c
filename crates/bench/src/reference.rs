//! The service against its own stack's ceiling (issue 10): `GET /tickets/{id}` as fast
//! as the mix's connections go, on the service and on the bare reference server
//! (`bench bare-server`, [`crate::bare`]) on the same database and CPU, in rounds that
//! alternate between the two, every pair in the other order from the last, so that a
//! drift in the machine's speed falls on both alike. The same requests (tickets,
//! callers, tokens) go to both; the bare server ignores the token.

use std::fmt::Write as _;
use std::path::Path;

use crate::config::Config;
use crate::load;
use crate::mix::Endpoint;
use crate::report::{latency, median_duration, median_f64, thousands, Table};
use crate::server::Server;
use crate::suite::{measured_round, Beside, LoadRound, WORK_DIR};
use crate::Error;

pub struct ReferenceRound {
    pub service: LoadRound,
    pub bare: LoadRound,
}

impl ReferenceRound {
    /// The service's throughput ÷ the bare server's, of two runs back to back.
    pub fn ratio(&self) -> f64 {
        self.service.throughput() / self.bare.throughput().max(f64::MIN_POSITIVE)
    }
}

/// Starts the bare server on the suite's database, warms both up, runs the rounds,
/// stops it.
pub fn run(beside: &Beside<'_>) -> Result<Vec<ReferenceRound>, Error> {
    let Beside {
        config,
        placement,
        runtime,
        service,
        workload,
        database_url,
        dataset,
    } = *beside;
    let log = Path::new(WORK_DIR).join(format!("bare-server-{dataset}.log"));
    let mut bare = Server::start_bare(config, placement, database_url, &log)?;
    runtime.block_on(bare.ready())?;
    println!(
        "bare reference server {} (pid {}) ready; warming both up for {} s each",
        bare.addr,
        bare.pid(),
        config.warmup.as_secs()
    );
    let load = |server: &Server, duration, seed| {
        load::get_ticket(
            server.addr,
            workload.clone(),
            config.connections,
            duration,
            seed,
        )
    };
    runtime.block_on(async {
        load(service, config.warmup, 0).await?;
        load(&bare, config.warmup, 0).await
    })?;

    let mut rounds = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds {
        let seed = round as u64;
        let (service_round, bare_round) = if round % 2 == 1 {
            let first = measured_round(runtime, service, load(service, config.duration, seed))?;
            (
                first,
                measured_round(runtime, &bare, load(&bare, config.duration, seed))?,
            )
        } else {
            let first = measured_round(runtime, &bare, load(&bare, config.duration, seed))?;
            (
                measured_round(runtime, service, load(service, config.duration, seed))?,
                first,
            )
        };
        let result = ReferenceRound {
            service: service_round,
            bare: bare_round,
        };
        println!(
            "round {round}: GET /tickets/{{id}} service {} req/s, bare {} req/s ({:.0}%), \
             {} + {} errors",
            thousands(result.service.throughput()),
            thousands(result.bare.throughput()),
            result.ratio() * 100.0,
            result.service.recorder.failures(),
            result.bare.recorder.failures()
        );
        rounds.push(result);
    }
    bare.stop()?;
    Ok(rounds)
}

/// The median over rounds of the service's share of the bare server's throughput.
pub fn median_ratio(rounds: &[ReferenceRound]) -> f64 {
    median_f64(rounds.iter().map(ReferenceRound::ratio))
}

/// The median over rounds of the service's p99.
pub fn service_p99(rounds: &[ReferenceRound]) -> std::time::Duration {
    median_duration(
        rounds
            .iter()
            .filter_map(|r| r.service.recorder.summary(Endpoint::GetTicket.label()))
            .map(|s| s.p99),
    )
}

/// The report's section.
pub fn section(config: &Config, rounds: &[ReferenceRound]) -> Result<String, Error> {
    let mut out = String::new();
    writeln!(
        out,
        "## `GET /tickets/{{id}}` against the bare reference server\n\n\
         The ceiling of the service's own stack: `bench bare-server` (`crates/bench/src/bare.rs`), \
         actix-web and deadpool-postgres of the workspace's versions with one route that runs \
         the service's `find_visible` statement for a viewer who sees every ticket, prepared \
         once per connection, and answers the row as the service's JSON: no authentication, no \
         middleware. Same pool size ({}) and workers ({}), the same CPU as the service's, and \
         the same requests: {} keep-alive connections, each request for a ticket that its \
         random logged-in caller may see (3 customers to 1 staff), with the caller's token in \
         `Authorization` (the service reads it before the cookie; the bare server ignores \
         it). {} rounds of {} s after {} s of warm-up each, alternating, every pair in the \
         other order from the last; the ratio is the median of the rounds' own ratios.\n",
        config.pool_size,
        match config.workers {
            0 => "actix-web's default: one per CPU the server may use".to_owned(),
            n => n.to_string(),
        },
        config.connections,
        config.rounds,
        config.duration.as_secs(),
        config.warmup.as_secs()
    )?;
    let mut table = Table::new(&["", ">requests/s", ">p50", ">p99", ">server CPU/request"]);
    for (name, side) in [
        (
            "service",
            (|r: &ReferenceRound| &r.service) as fn(&ReferenceRound) -> &LoadRound,
        ),
        ("bare server (ceiling)", |r: &ReferenceRound| &r.bare),
    ] {
        let summaries: Vec<_> = rounds
            .iter()
            .filter_map(|r| side(r).recorder.summary(Endpoint::GetTicket.label()))
            .collect();
        table.row(&[
            name.to_owned(),
            thousands(median_f64(rounds.iter().map(|r| side(r).throughput()))),
            latency(median_duration(summaries.iter().map(|s| s.p50))),
            latency(median_duration(summaries.iter().map(|s| s.p99))),
            format!(
                "{:.0} µs",
                median_duration(rounds.iter().map(|r| side(r).cpu_per_request())).as_secs_f64()
                    * 1e6
            ),
        ]);
    }
    table.row(&[
        "service ÷ bare".to_owned(),
        format!("{:.1}%", median_ratio(rounds) * 100.0),
        String::new(),
        String::new(),
        String::new(),
    ]);
    writeln!(out, "{}", table.finish())?;
    let mut table = Table::new(&[
        ">round",
        "first",
        ">service req/s",
        ">bare req/s",
        ">service ÷ bare",
        ">service p99",
        ">bare p99",
    ]);
    for (i, round) in rounds.iter().enumerate() {
        let p99 = |side: &LoadRound| {
            side.recorder
                .summary(Endpoint::GetTicket.label())
                .map_or_else(String::new, |s| latency(s.p99))
        };
        table.row(&[
            (i + 1).to_string(),
            if i % 2 == 0 { "service" } else { "bare" }.to_owned(),
            thousands(round.service.throughput()),
            thousands(round.bare.throughput()),
            format!("{:.1}%", round.ratio() * 100.0),
            p99(&round.service),
            p99(&round.bare),
        ]);
    }
    writeln!(out, "{}", table.finish())?;
    Ok(out)
}
