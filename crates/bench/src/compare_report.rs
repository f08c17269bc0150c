//! The report of `bench compare`: bench/RESULTS-compare.md.

use std::fmt::Write as _;
use std::time::Duration;

use crate::compare::{CompareResults, Side};
use crate::events::Part;
use crate::mix::{self, Endpoint};
use crate::recorder::Summary;
use crate::report::{
    errors_table, latency, machine_section, median_duration, median_f64, mib, thousands, verdict,
    Table,
};
use crate::suite::LoadRound;
use crate::Error;

/// The target: the current throughput at least 90% of the baseline's.
const MIN_RATIO: f64 = 0.9;

type Quantile = fn(&Summary) -> Duration;

const QUANTILES: [(&str, Quantile); 2] = [("p50", |s| s.p50), ("p99", |s| s.p99)];

pub fn render(r: &CompareResults<'_>) -> Result<String, Error> {
    let c = r.config;
    let (old, new) = (&r.baseline, &r.current);
    let mut out = String::new();
    writeln!(
        out,
        "# Benchmark results: `{}` against the working tree\n\n\
         Written by `just bench compare {}` in {:.1} minutes. `just bench`'s mixed workload \
         (default dataset sizes) against two release servers at once: `{}`, built by \
         bench/run.sh from a git worktree, its database migrated by its own binary and \
         seeded by its own `bench/seed.sql`; and the working tree's (the commit below), \
         likewise. {} rounds of {} s each after {} s of warm-up each; the rounds alternate \
         between the two, every pair in the other order from the last. Same load \
         generator, {} keep-alive connections, same mix and the same random requests \
         (ticket ids, users) for both. Medians of the rounds; the throughput ratio is the \
         median of the rounds' own ratios, each of two runs back to back, so that a change \
         in the machine's speed between rounds does not enter it.\n",
        old.name,
        old.name,
        r.elapsed.as_secs_f64() / 60.0,
        old.name,
        c.rounds,
        c.duration.as_secs(),
        c.warmup.as_secs(),
        c.connections
    )?;
    if let Part::With(_) = r.part {
        writeln!(
            out,
            "Every round of both servers ran with {} `GET /events` streams open, as in \
             `just bench events`' {} part (`BENCH_COMPARE_STREAMS`), opened before the round \
             and closed after it. The ratio therefore compares the two builds with the \
             streams open.\n",
            c.streams,
            r.part.name()
        )?;
    }
    out.push_str(&machine_section(&r.machine));

    let mut table = Table::new(&["build", ">users", ">tickets", ">messages", ">seeded in"]);
    for side in [old, new] {
        table.row(&[
            format!("`{}`", side.name),
            thousands(side.seeded.users as f64),
            thousands(side.seeded.tickets as f64),
            thousands(side.seeded.messages as f64),
            format!("{:.1} s", side.seeded.seconds),
        ]);
    }
    writeln!(out, "## Datasets\n\n{}", table.finish())?;

    let ratio = median_f64(
        old.rounds
            .iter()
            .zip(&new.rounds)
            .map(|(a, b)| paired(a, b)),
    );
    writeln!(out, "## Mixed workload\n")?;
    let mut table = Table::new(&[
        "",
        &format!(">`{}`", old.name),
        ">current",
        ">current ÷ baseline",
    ]);
    table.row(&[
        "requests/s".to_owned(),
        thousands(throughput(old)),
        thousands(throughput(new)),
        format!("{:.1}%", ratio * 100.0),
    ]);
    for (name, quantile) in QUANTILES {
        let (a, b) = (overall(old, quantile)?, overall(new, quantile)?);
        table.row(&[
            name.to_owned(),
            latency(a),
            latency(b),
            format!("{:.2}×", b.as_secs_f64() / a.as_secs_f64().max(1e-9)),
        ]);
    }
    // Where a request's CPU time goes: the server's own (from /proc), and everything
    // else the machine did meanwhile (PostgreSQL, the load generator, anything else).
    let cpus = r.machine.cpus as f64;
    let server = |side: &Side| {
        median_f64(
            side.rounds
                .iter()
                .map(|m| m.cpu_per_request().as_secs_f64()),
        )
    };
    let all = |side: &Side| {
        median_f64(
            side.rounds
                .iter()
                .map(|m| m.machine_busy * cpus / m.throughput().max(f64::MIN_POSITIVE)),
        )
    };
    let rest = |side: &Side| all(side) - server(side);
    for (name, cpu) in [
        ("CPU per request, all CPUs", &all as &dyn Fn(&Side) -> f64),
        ("… of which the server", &server),
        ("… of which the rest (PostgreSQL, load generator)", &rest),
    ] {
        table.row(&[
            name.to_owned(),
            format!("{:.0} µs", cpu(old) * 1e6),
            format!("{:.0} µs", cpu(new) * 1e6),
            format!("{:.2}×", cpu(new) / cpu(old).max(1e-12)),
        ]);
    }
    table.row(&[
        "peak RSS (VmHWM)".to_owned(),
        mib(old.peak_rss),
        mib(new.peak_rss),
        String::new(),
    ]);
    writeln!(out, "{}", table.finish())?;

    let mut table = Table::new(&[
        "endpoint",
        ">share",
        &format!(">`{}` p50", old.name),
        ">current p50",
        &format!(">`{}` p99", old.name),
        ">current p99",
    ]);
    for endpoint in Endpoint::ALL {
        let [p50_old, p99_old] = endpoint_latencies(old, endpoint);
        let [p50_new, p99_new] = endpoint_latencies(new, endpoint);
        table.row(&[
            format!("`{}`", endpoint.label()),
            format!("{:.0}%", mix::percent(endpoint)),
            p50_old,
            p50_new,
            p99_old,
            p99_new,
        ]);
    }
    writeln!(out, "{}", table.finish())?;

    writeln!(
        out,
        "## Database work per request\n\n\
         From `pg_stat_database` for each build's own database over all its measured \
         rounds (read {} s after the load stops, when every backend has reported), and the \
         WAL written during its rounds (the whole cluster's, so anything else writing \
         meanwhile counts too). A statement outside `BEGIN` is a transaction of its own, \
         so the baseline's transactions are its statements; the current build runs each \
         write as one transaction (`BEGIN`, the caller's confirmation and the write's \
         statement in one round trip, then the event `INSERT` with `COMMIT`: 2 round \
         trips, as the baseline's auth lookup and write). Statements themselves are not \
         counted: that needs `pg_stat_statements` in `shared_preload_libraries`, a \
         restart of PostgreSQL (scripts/profile/README.md shows how).\n",
        crate::compare::STATS_SETTLE.as_secs()
    )?;
    let mut table = Table::new(&[
        "build",
        ">transactions",
        ">rows inserted",
        ">rows updated",
        ">WAL bytes",
    ]);
    for side in [old, new] {
        table.row(&[
            format!("`{}`", side.name),
            format!("{:.2}", side.per_request.transactions),
            format!("{:.3}", side.per_request.inserted),
            format!("{:.3}", side.per_request.updated),
            format!("{:.0}", side.wal_per_request()),
        ]);
    }
    writeln!(out, "{}", table.finish())?;

    let failures: u64 = [old, new]
        .iter()
        .flat_map(|side| side.recorders())
        .map(|rec| rec.failures())
        .sum();
    let mut table = Table::new(&["target (issue 8)", "measured", "verdict"]);
    table.row(&[
        "mixed throughput within 10% of the baseline's (current ÷ baseline ≥ 90%)".to_owned(),
        format!("{:.1}%", ratio * 100.0),
        verdict(ratio >= MIN_RATIO).to_owned(),
    ]);
    table.row(&[
        "no errors (non-2xx), both builds".to_owned(),
        failures.to_string(),
        verdict(failures == 0).to_owned(),
    ]);
    writeln!(out, "## Target\n\n{}", table.finish())?;
    for side in [old, new] {
        if let Some(errors) = errors_table(&side.recorders(), 0) {
            writeln!(out, "Errors of `{}`:\n\n{errors}", side.name)?;
        }
    }

    writeln!(out, "## Rounds\n")?;
    let mut table = Table::new(&[
        ">round",
        "first",
        &format!(">`{}` req/s", old.name),
        ">current req/s",
        ">current ÷ baseline",
        ">all CPUs busy",
    ]);
    for (i, (a, b)) in old.rounds.iter().zip(&new.rounds).enumerate() {
        table.row(&[
            (i + 1).to_string(),
            if i % 2 == 0 { "baseline" } else { "current" }.to_owned(),
            thousands(a.throughput()),
            thousands(b.throughput()),
            format!("{:.1}%", 100.0 * paired(a, b)),
            format!(
                "{:.0}% / {:.0}%",
                a.machine_busy * 100.0,
                b.machine_busy * 100.0
            ),
        ]);
    }
    out.push_str(&table.finish());
    Ok(out)
}

/// A round's current throughput ÷ the baseline's.
fn paired(baseline: &LoadRound, current: &LoadRound) -> f64 {
    current.throughput() / baseline.throughput().max(f64::MIN_POSITIVE)
}

fn throughput(side: &Side) -> f64 {
    median_f64(side.rounds.iter().map(|m| m.throughput()))
}

/// The median over rounds of a quantile of all requests' latencies.
fn overall(side: &Side, quantile: Quantile) -> Result<Duration, Error> {
    let summaries = side
        .rounds
        .iter()
        .map(|m| m.recorder.overall())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(median_duration(summaries.iter().map(quantile)))
}

/// The medians over rounds of an endpoint's p50 and p99, formatted.
fn endpoint_latencies(side: &Side, endpoint: Endpoint) -> [String; 2] {
    let summaries: Vec<_> = side
        .rounds
        .iter()
        .filter_map(|m| m.recorder.summary(endpoint.label()))
        .collect();
    [
        latency(median_duration(summaries.iter().map(|s| s.p50))),
        latency(median_duration(summaries.iter().map(|s| s.p99))),
    ]
}
