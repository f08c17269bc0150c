//! `bench`: the reproducible benchmark behind `just bench` (see bench/README.md).
//!
//! `bench [default|large]` seeds a dataset, drives the release server with the mixed
//! workload and pgbench with the same statements, measures logins, and writes
//! `bench/RESULTS.md` (`RESULTS-large.md`); `bench scaling` compares page latencies on
//! 10,000 and 1,000,000 tickets (`RESULTS-scaling.md`); `bench soak` keeps the mixed
//! workload going and watches the server's memory (`RESULTS-soak.md`); `bench compare`
//! runs the mixed workload against a baseline build and this one, side by side
//! (`RESULTS-compare.md`); `bench events` measures live event streams and webhook
//! deliveries (`RESULTS-events.md`); `bench clean` drops the benchmark databases.
//! `bench bare-server` is the bare reference server that `bench default` compares the
//! service with (see [`bare`]).

mod background;
mod bare;
mod client;
mod compare;
mod compare_report;
mod config;
mod dataset;
mod events;
mod events_report;
mod explain;
mod fixtures;
mod load;
mod machine;
mod mix;
mod overheads;
mod pages;
mod pgbench;
mod placement;
mod psql;
mod recorder;
mod reference;
mod report;
mod scaling;
mod search;
mod search_report;
mod server;
mod sessions;
mod soak;
mod statements;
mod streams;
mod suite;
mod suite_report;
mod webhooks;
mod wire;

use std::process::ExitCode;

/// Every failure ends the run with its message: a benchmark has no caller to recover.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "default".to_owned());
    if mode == "bare-server" {
        // Started by the benchmark itself, already on the server's CPU.
        return bare::serve();
    }
    let placement = placement::Placement::pin_self()?;
    let config = config::Config::from_env()?;
    match mode.as_str() {
        "default" => suite::run(
            &config,
            &placement,
            &dataset::DEFAULT.resized(config.tickets)?,
        ),
        "large" => suite::run(&config, &placement, &dataset::LARGE),
        "events" => events::run(
            &config,
            &placement,
            &dataset::DEFAULT.resized(config.tickets)?,
        ),
        "scaling" => scaling::run(&config, &placement),
        "soak" => soak::run(&config, &placement),
        "compare" => compare::run(&config, &placement),
        "clean" => dataset::drop_all(&config),
        other => Err(format!(
            "unknown mode {other:?}: use default, large, scaling, soak, compare, events or clean"
        )
        .into()),
    }
}
