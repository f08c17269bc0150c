//! The report of `bench default` / `bench large`: bench/RESULTS.md.

use std::fmt::Write as _;
use std::time::Duration;

use crate::mix::{self, Endpoint};
use crate::pgbench;
use crate::report::{
    dataset_section, errors_section, latency, machine_section, median_duration, median_f64,
    thousands, verdict, Table,
};
use crate::suite::{all_recorders, login_rate, SuiteResults};
use crate::Error;
use crate::{overheads, reference, statements};

/// Issue 3's targets.
const MIN_CEILING_SHARE: f64 = 0.5;
const MAX_LOGIN_SLOWDOWN: f64 = 3.0;
const MAX_RSS_BYTES: u64 = 64 * 1024 * 1024;
/// Issue 10's.
const MIN_REFERENCE_SHARE: f64 = 0.85;
const MIN_CEILING_SHARE_ISSUE_10: f64 = 0.9;
const MAX_P99: Duration = Duration::from_millis(10);
const MAX_METRICS_COST: f64 = 0.03;

pub fn render(r: &SuiteResults<'_>) -> Result<String, Error> {
    let c = r.config;
    let mut out = String::new();
    writeln!(
        out,
        "# Benchmark results ({} dataset)\n\n\
         Written by `just bench{}` in {:.1} minutes. Medians of {} rounds; the machine may \
         have been busy with other work (see the load average and the CPU use per round).\n",
        r.size.name,
        if r.size.name == "default" {
            String::new()
        } else {
            format!(" {}", r.size.name)
        },
        r.elapsed.as_secs_f64() / 60.0,
        c.rounds
    )?;
    out.push_str(&machine_section(&r.machine));
    out.push_str(&dataset_section(r.size, &r.seeded));

    let http_rps = median_f64(r.mixed.iter().map(|m| m.throughput()));
    let pg_tps = median_f64(r.pgbench.iter().map(|p| p.tps));
    let share = if pg_tps > 0.0 { http_rps / pg_tps } else { 0.0 };
    let overall = r
        .mixed
        .iter()
        .map(|m| m.recorder.overall())
        .collect::<Result<Vec<_>, _>>()?;
    let pg_overall = r
        .pgbench
        .iter()
        .map(|p| p.latencies.overall())
        .collect::<Result<Vec<_>, _>>()?;
    writeln!(
        out,
        "## Mixed workload\n\n\
         {} rounds of {} s after {} s of warm-up. HTTP: {} keep-alive connections from \
         `crates/bench` (hyper), each request by a random logged-in user ({} customers, {} \
         staff). Ceiling: {} running the same statements in the same mix, each transaction \
         being the caller's confirmation pipelined with the endpoint's statement, and for a \
         write its events and `COMMIT`, in the service's round trips (`bench/pgbench/`); its latencies are from a 10% sample of transactions.\n",
        c.rounds,
        c.duration.as_secs(),
        c.warmup.as_secs(),
        c.connections,
        c.customers,
        r.seeded.staff,
        r.pgbench_command
    )?;
    let mut table = Table::new(&["", ">requests/s", ">p50", ">p99"]);
    table.row(&[
        "HTTP service".to_owned(),
        thousands(http_rps),
        latency(median_duration(overall.iter().map(|s| s.p50))),
        latency(median_duration(overall.iter().map(|s| s.p99))),
    ]);
    table.row(&[
        "pgbench, same statements (ceiling)".to_owned(),
        thousands(pg_tps),
        latency(median_duration(pg_overall.iter().map(|s| s.p50))),
        latency(median_duration(pg_overall.iter().map(|s| s.p99))),
    ]);
    table.row(&[
        "service ÷ ceiling".to_owned(),
        format!("{:.0}%", share * 100.0),
        String::new(),
        String::new(),
    ]);
    writeln!(out, "{}", table.finish())?;

    let pg_endpoints = pgbench::endpoint_medians(&r.pgbench);
    let mut table = Table::new(&[
        "endpoint",
        ">share",
        ">HTTP p50",
        ">HTTP p99",
        ">pgbench p50",
        ">pgbench p99",
    ]);
    for endpoint in Endpoint::ALL {
        let http: Vec<_> = r
            .mixed
            .iter()
            .filter_map(|m| m.recorder.summary(endpoint.label()))
            .collect();
        let (pg50, pg99) = pg_endpoints
            .get(endpoint.label())
            .map_or((String::new(), String::new()), |(p50, p99)| {
                (latency(*p50), latency(*p99))
            });
        table.row(&[
            format!("`{}`", endpoint.label()),
            format!("{:.0}%", mix::percent(endpoint)),
            latency(median_duration(http.iter().map(|s| s.p50))),
            latency(median_duration(http.iter().map(|s| s.p99))),
            pg50,
            pg99,
        ]);
    }
    writeln!(out, "{}", table.finish())?;
    let cpu_per_request = median_duration(r.mixed.iter().map(|m| m.cpu_per_request()));
    let bench_cpu = median_f64(
        r.mixed
            .iter()
            .map(|m| m.bench_cpu.as_secs_f64() / m.seconds),
    );
    let busy = median_f64(r.mixed.iter().map(|m| m.machine_busy));
    writeln!(
        out,
        "Server process: {:.0} µs of CPU (user + system) per request; peak RSS (VmHWM) {:.1} MiB \
         after the rounds. Load generator: {:.0}% of one CPU. All CPUs of the machine: {:.0}% \
         busy during the rounds.\n",
        cpu_per_request.as_secs_f64() * 1e6,
        r.peak_rss as f64 / 1024.0 / 1024.0,
        bench_cpu * 100.0,
        busy * 100.0
    )?;

    out.push_str(&reference::section(c, &r.reference)?);
    out.push_str(&overheads::section(c, &r.overheads)?);
    out.push_str(&statements::section(&r.statements)?);

    writeln!(
        out,
        "## Pages\n\nOne request at a time, as staff, `limit=20`; the deep page follows the \
         `Link` cursors (1,000 rows a page) to the middle of the list. p50 over {} rounds of \
         100 requests each.\n",
        c.rounds
    )?;
    let mut table = Table::new(&[
        "list",
        ">first page p50",
        ">deep page p50",
        ">rows before it",
    ]);
    for page in &r.pages {
        table.row(&[
            format!("`GET {}`", page.list),
            latency(page.first),
            latency(page.deep),
            thousands(page.depth as f64),
        ]);
    }
    writeln!(
        out,
        "{}\nThe scaling target (10,000 against 1,000,000 tickets) is `just bench scaling`'s \
         (bench/RESULTS-scaling.md).\n",
        table.finish()
    )?;

    let login_rate_median = median_f64(r.logins.iter().map(login_rate));
    let limit = r.server_cores as f64 / r.hash_time.as_secs_f64();
    writeln!(
        out,
        "## Logins\n\n{} clients logging in for {} s per round, as accounts whose hash has \
         the server's cost ({}). The limit is the server's CPUs ÷ one verification's time.\n",
        c.login_clients,
        c.login_duration.as_secs(),
        c.bcrypt_cost
    )?;
    let mut table = Table::new(&[
        ">logins/s measured",
        ">limit",
        ">one verification",
        ">server CPUs",
    ]);
    table.row(&[
        format!("{login_rate_median:.1}"),
        format!("{limit:.1}"),
        latency(r.hash_time),
        r.server_cores.to_string(),
    ]);
    writeln!(out, "{}", table.finish())?;

    let quiet: Vec<_> = r
        .interference
        .iter()
        .filter_map(|i| i.quiet_get())
        .collect();
    let loaded: Vec<_> = r
        .interference
        .iter()
        .filter_map(|i| i.loaded_get())
        .collect();
    let quiet_p99 = median_duration(quiet.iter().map(|s| s.p99));
    let loaded_p99 = median_duration(loaded.iter().map(|s| s.p99));
    let slowdown = ratio(loaded_p99, quiet_p99);
    writeln!(
        out,
        "## `GET /tickets/{{id}}` while logins saturate bcrypt\n\n\
         {} requests/s, paced, on 8 connections for {} s; then the same while {} clients log \
         in without pause.\n",
        c.probe_rate,
        c.login_duration.as_secs(),
        c.login_clients
    )?;
    let mut table = Table::new(&["", ">p50", ">p99"]);
    table.row(&[
        "no login load".to_owned(),
        latency(median_duration(quiet.iter().map(|s| s.p50))),
        latency(quiet_p99),
    ]);
    table.row(&[
        "while logging in".to_owned(),
        latency(median_duration(loaded.iter().map(|s| s.p50))),
        latency(loaded_p99),
    ]);
    writeln!(out, "{}", table.finish())?;

    if let Some(search) = &r.search {
        out.push_str(&crate::search_report::section(search, c.rounds)?);
    }

    let recorders = all_recorders(r);
    let pg_failed: u64 = r.pgbench.iter().map(|p| p.failed).sum();
    let failures: u64 = recorders.iter().map(|rec| rec.failures()).sum::<u64>() + pg_failed;
    writeln!(out, "## Targets (issue 3)\n")?;
    let mut table = Table::new(&["target", "measured", "verdict"]);
    table.row(&[
        "mixed throughput ≥ 50% of pgbench's".to_owned(),
        format!("{:.0}%", share * 100.0),
        verdict(share >= MIN_CEILING_SHARE).to_owned(),
    ]);
    table.row(&[
        "p50 of first and deep pages with 1,000,000 tickets ≤ 1.5× with 10,000".to_owned(),
        "see bench/RESULTS-scaling.md".to_owned(),
        "`just bench scaling`".to_owned(),
    ]);
    table.row(&[
        "p99 of `GET /tickets/{id}` during logins ≤ 3× without".to_owned(),
        format!("{slowdown:.2}×"),
        verdict(slowdown <= MAX_LOGIN_SLOWDOWN).to_owned(),
    ]);
    table.row(&[
        "peak RSS under the mixed load ≤ 64 MiB".to_owned(),
        format!("{:.1} MiB", r.peak_rss as f64 / 1024.0 / 1024.0),
        verdict(r.peak_rss <= MAX_RSS_BYTES).to_owned(),
    ]);
    table.row(&[
        "no errors (non-2xx)".to_owned(),
        failures.to_string(),
        verdict(failures == 0).to_owned(),
    ]);
    writeln!(out, "{}", table.finish())?;
    let reference_share = reference::median_ratio(&r.reference);
    let reference_p99 = reference::service_p99(&r.reference);
    let mixed_p99 = median_duration(overall.iter().map(|s| s.p99));
    writeln!(out, "## Targets (issue 10)\n")?;
    let mut table = Table::new(&["target", "measured", "verdict"]);
    table.row(&[
        "`GET /tickets/{id}` ≥ 85% of the bare reference server's throughput".to_owned(),
        format!("{:.1}%", reference_share * 100.0),
        verdict(reference_share >= MIN_REFERENCE_SHARE).to_owned(),
    ]);
    table.row(&[
        format!(
            "p99 of `GET /tickets/{{id}}` at {} connections ≤ 10 ms",
            c.connections
        ),
        latency(reference_p99),
        verdict(reference_p99 <= MAX_P99).to_owned(),
    ]);
    table.row(&[
        "mixed throughput ≥ 90% of pgbench's".to_owned(),
        format!("{:.0}%", share * 100.0),
        verdict(share >= MIN_CEILING_SHARE_ISSUE_10).to_owned(),
    ]);
    table.row(&[
        format!(
            "p99 of the mixed workload at {} connections ≤ 10 ms",
            c.connections
        ),
        latency(mixed_p99),
        verdict(mixed_p99 <= MAX_P99).to_owned(),
    ]);
    let metrics_cost = overheads::metrics_cost(&r.overheads);
    table.row(&[
        "metrics cost ≤ 3% of the mixed workload's throughput (the server CPU they add per \
         request beside it)"
            .to_owned(),
        format!(
            "{:.1}% (CPU/request {:+.1}%)",
            metrics_cost * 100.0,
            overheads::metrics_cpu_cost(&r.overheads) * 100.0
        ),
        verdict(metrics_cost <= MAX_METRICS_COST).to_owned(),
    ]);
    table.row(&[
        "peak RSS under the mixed load ≤ 64 MiB".to_owned(),
        format!("{:.1} MiB", r.peak_rss as f64 / 1024.0 / 1024.0),
        verdict(r.peak_rss <= MAX_RSS_BYTES).to_owned(),
    ]);
    writeln!(out, "{}", table.finish())?;
    out.push_str(&errors_section(&recorders, pg_failed));

    writeln!(out, "## Rounds\n")?;
    let mut table = Table::new(&[
        ">round",
        ">HTTP req/s",
        ">HTTP p50",
        ">HTTP p99",
        ">server CPU/request",
        ">all CPUs busy",
        ">pgbench tps",
        ">pgbench p50",
        ">pgbench p99",
    ]);
    for (i, (m, p)) in r.mixed.iter().zip(&r.pgbench).enumerate() {
        let http = m.recorder.overall()?;
        let pg = p.latencies.overall()?;
        table.row(&[
            (i + 1).to_string(),
            thousands(m.throughput()),
            latency(http.p50),
            latency(http.p99),
            format!("{:.0} µs", m.cpu_per_request().as_secs_f64() * 1e6),
            format!("{:.0}%", m.machine_busy * 100.0),
            thousands(p.tps),
            latency(pg.p50),
            latency(pg.p99),
        ]);
    }
    out.push_str(&table.finish());
    Ok(out)
}

pub fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        return f64::INFINITY;
    }
    a.as_secs_f64() / b.as_secs_f64()
}
