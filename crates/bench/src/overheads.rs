//! What two of the service's features cost on the mixed workload (issue 10): recording
//! request metrics, and compressing responses. Rounds of the mixed load in three
//! variants, their order turned by one every round so that a drift in the machine's
//! speed falls on each alike:
//!
//! - as measured: the suite's server (metrics on), its clients accepting no coding, so
//!   nothing is compressed;
//! - without metrics: a second server of the same build on the same database and CPU,
//!   with `TICKETS__SERVER__METRICS=false`, and the same clients;
//! - compressing: the suite's server, every request accepting [`ACCEPTED`] (what
//!   `curl --compressed` sends), so that every response of 1 KiB or more (ticket lists,
//!   message pages) is compressed.
//!
//! Each cost is the median of the rounds' own costs, in throughput and in the server's
//! CPU time per request. The second is the steadier: the mixed workload's throughput is
//! bound by PostgreSQL and the machine as much as by the server, and moves by more from
//! round to round than a few percent of the server's CPU.

use std::fmt::Write as _;
use std::path::Path;

use crate::config::Config;
use crate::load;
use crate::report::{latency, median_duration, median_f64, thousands, Table};
use crate::server::{Options, Server, MEASURED};
use crate::suite::{measured_round, Beside, LoadRound, WORK_DIR};
use crate::Error;

/// The `Accept-Encoding` of the compressing variant.
pub const ACCEPTED: &str = "deflate, gzip, br, zstd";

const WITHOUT_METRICS: Options = Options {
    settings: &[("TICKETS__SERVER__METRICS", "false")],
    ..MEASURED
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Measured,
    WithoutMetrics,
    Compressing,
}

impl Variant {
    const ALL: [Self; 3] = [Self::Measured, Self::WithoutMetrics, Self::Compressing];

    fn name(self) -> &'static str {
        match self {
            Self::Measured => "as measured (metrics on, nothing compressed)",
            Self::WithoutMetrics => "metrics off",
            Self::Compressing => "compressing (clients accept gzip, br, zstd)",
        }
    }
}

pub struct OverheadRound {
    pub measured: LoadRound,
    pub without_metrics: LoadRound,
    pub compressing: LoadRound,
    /// The variant that ran first.
    first: Variant,
}

impl OverheadRound {
    fn of(&self, variant: Variant) -> &LoadRound {
        match variant {
            Variant::Measured => &self.measured,
            Variant::WithoutMetrics => &self.without_metrics,
            Variant::Compressing => &self.compressing,
        }
    }

    /// The share of throughput that recording metrics costs: 1 − with ÷ without.
    pub fn metrics_cost(&self) -> f64 {
        cost(&self.measured, &self.without_metrics)
    }

    /// The share of throughput that compressing costs: 1 − compressing ÷ not.
    pub fn compression_cost(&self) -> f64 {
        cost(&self.compressing, &self.measured)
    }

    /// The server CPU per request that recording metrics adds: with ÷ without − 1.
    pub fn metrics_cpu_cost(&self) -> f64 {
        cpu_cost(&self.measured, &self.without_metrics)
    }

    /// The server CPU per request that compressing adds: compressing ÷ not − 1.
    pub fn compression_cpu_cost(&self) -> f64 {
        cpu_cost(&self.compressing, &self.measured)
    }
}

fn cost(with: &LoadRound, without: &LoadRound) -> f64 {
    1.0 - with.throughput() / without.throughput().max(f64::MIN_POSITIVE)
}

fn cpu_cost(with: &LoadRound, without: &LoadRound) -> f64 {
    with.cpu_per_request().as_secs_f64()
        / without
            .cpu_per_request()
            .as_secs_f64()
            .max(f64::MIN_POSITIVE)
        - 1.0
}

/// Starts the server without metrics on the suite's database, warms it up, runs the
/// rounds, stops it.
pub fn run(beside: &Beside<'_>) -> Result<Vec<OverheadRound>, Error> {
    let (config, runtime, service, workload) = (
        beside.config,
        beside.runtime,
        beside.service,
        beside.workload,
    );
    let log = Path::new(WORK_DIR).join(format!("server-without-metrics-{}.log", beside.dataset));
    let mut plain = Server::start_with(
        config,
        beside.placement,
        beside.database_url,
        &log,
        &WITHOUT_METRICS,
    )?;
    runtime.block_on(plain.ready())?;
    println!(
        "server without metrics {} (pid {}) ready; warming it up for {} s",
        plain.addr,
        plain.pid(),
        config.warmup.as_secs()
    );
    let load = |variant: Variant, duration, seed| {
        let (server, accepted) = match variant {
            Variant::Measured => (service, None),
            Variant::WithoutMetrics => (&plain, None),
            Variant::Compressing => (service, Some(ACCEPTED)),
        };
        let workload = workload.clone();
        let connections = config.connections;
        let addr = server.addr;
        let recorded = async move {
            match accepted {
                Some(accepted) => {
                    load::mixed_accepting(addr, workload, connections, duration, seed, accepted)
                        .await
                }
                None => load::mixed(addr, workload, connections, duration, seed).await,
            }
        };
        (server, recorded)
    };
    let (server, warmup) = load(Variant::WithoutMetrics, config.warmup, 0);
    measured_round(runtime, server, warmup)?;

    let mut rounds = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds {
        let seed = 100 + round as u64;
        let mut order = Variant::ALL;
        order.rotate_left((round - 1) % Variant::ALL.len());
        let mut measured = Vec::with_capacity(order.len());
        for variant in order {
            let (server, recorded) = load(variant, config.duration, seed);
            measured.push((variant, measured_round(runtime, server, recorded)?));
        }
        let mut take = |wanted: Variant| {
            measured
                .iter()
                .position(|(variant, _)| *variant == wanted)
                .map(|at| measured.swap_remove(at).1)
                .ok_or("a variant did not run")
        };
        let result = OverheadRound {
            measured: take(Variant::Measured)?,
            without_metrics: take(Variant::WithoutMetrics)?,
            compressing: take(Variant::Compressing)?,
            first: order[0],
        };
        println!(
            "round {round}: mixed {} req/s as measured, {} without metrics ({:+.1}%), {} \
             compressing ({:+.1}%)",
            thousands(result.measured.throughput()),
            thousands(result.without_metrics.throughput()),
            result.metrics_cost() * 100.0,
            thousands(result.compressing.throughput()),
            result.compression_cost() * 100.0
        );
        rounds.push(result);
    }
    plain.stop()?;
    Ok(rounds)
}

/// The median over rounds of what metrics cost in throughput.
pub fn metrics_cost(rounds: &[OverheadRound]) -> f64 {
    median_f64(rounds.iter().map(OverheadRound::metrics_cost))
}

/// The median over rounds of what metrics cost in server CPU per request.
pub fn metrics_cpu_cost(rounds: &[OverheadRound]) -> f64 {
    median_f64(rounds.iter().map(OverheadRound::metrics_cpu_cost))
}

/// The report's section.
pub fn section(config: &Config, rounds: &[OverheadRound]) -> Result<String, Error> {
    let mut out = String::new();
    writeln!(
        out,
        "## Metrics and compression\n\n\
         What recording request metrics and compressing responses cost on the mixed \
         workload (`crates/bench/src/overheads.rs`): {} rounds of {} s of the mix on {} \
         connections in three variants, their order turned every round. *As measured* is \
         the server above, whose clients accept no coding; *metrics off* is a second \
         server of this build on the same database and CPU with \
         `TICKETS__SERVER__METRICS=false`; *compressing* is the server above with every \
         request sending `Accept-Encoding: {ACCEPTED}`, so that each response of 1 KiB or \
         more (ticket lists, message pages) is compressed. A cost is the share of \
         throughput lost, or of server CPU per request added, the median of the rounds' \
         own; the second is the steadier, as the mix's throughput depends on PostgreSQL \
         and the whole machine as much as on the server.\n",
        config.rounds,
        config.duration.as_secs(),
        config.connections
    )?;
    let mut table = Table::new(&["", ">requests/s", ">p50", ">p99", ">server CPU/request"]);
    for variant in Variant::ALL {
        let summaries = rounds
            .iter()
            .map(|r| r.of(variant).recorder.overall())
            .collect::<Result<Vec<_>, _>>()?;
        table.row(&[
            variant.name().to_owned(),
            thousands(median_f64(
                rounds.iter().map(|r| r.of(variant).throughput()),
            )),
            latency(median_duration(summaries.iter().map(|s| s.p50))),
            latency(median_duration(summaries.iter().map(|s| s.p99))),
            format!(
                "{:.0} µs",
                median_duration(rounds.iter().map(|r| r.of(variant).cpu_per_request()))
                    .as_secs_f64()
                    * 1e6
            ),
        ]);
    }
    writeln!(out, "{}", table.finish())?;
    let mut table = Table::new(&[
        ">round",
        "first",
        ">metrics: throughput",
        ">metrics: CPU/request",
        ">compression: throughput",
        ">compression: CPU/request",
    ]);
    for (i, round) in rounds.iter().enumerate() {
        table.row(&[
            (i + 1).to_string(),
            round.first.name().to_owned(),
            format!("{:.1}%", round.metrics_cost() * 100.0),
            format!("{:+.1}%", round.metrics_cpu_cost() * 100.0),
            format!("{:.1}%", round.compression_cost() * 100.0),
            format!("{:+.1}%", round.compression_cpu_cost() * 100.0),
        ]);
    }
    writeln!(out, "{}", table.finish())?;
    writeln!(
        out,
        "Metrics cost {:.1}% of the mixed workload's throughput and add {:+.1}% to the \
         server's CPU per request (the target is in \"Targets (issue 10)\" below); \
         compression, for clients that accept it, costs {:.1}% of the throughput and adds \
         {:+.1}% to the CPU per request. A negative cost is a gain within the rounds' \
         noise.\n",
        metrics_cost(rounds) * 100.0,
        metrics_cpu_cost(rounds) * 100.0,
        median_f64(rounds.iter().map(OverheadRound::compression_cost)) * 100.0,
        median_f64(rounds.iter().map(OverheadRound::compression_cpu_cost)) * 100.0
    )?;
    Ok(out)
}
