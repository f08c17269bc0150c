//! The report of `bench events`: bench/RESULTS-events.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::events::{
    kib, memory_line, EventsResults, StreamsRound, CONSOLE_STAFF_PER_MILLE, TO_RECEIVER, TO_STREAM,
    WEBHOOK_WRITERS, WRITE,
};
use crate::recorder::Recorder;
use crate::report::{
    dataset_section, errors_section, interval_verdict, latency, machine_section, median_duration,
    median_f64, median_interval, mib, thousands, verdict, Table,
};
use crate::streams::OPENING_AT_ONCE;
use crate::suite::LoadRound;
use crate::Error;

/// Issue 9's targets.
const MAX_STREAM_P99: Duration = Duration::from_millis(100);
const MIN_THROUGHPUT_WITH_STREAMS: f64 = 0.9;
/// A load generator this busy may be what limits the figures.
const BUSY_LOAD_GENERATOR: f64 = 0.9;

pub fn render(r: &EventsResults<'_>) -> Result<String, Error> {
    let c = r.config;
    let mut out = String::new();
    writeln!(
        out,
        "# Benchmark results: live events and webhooks\n\n\
         Written by `just bench events` in {:.1} minutes, on one server process with \
         `TICKETS__WEBHOOKS__ALLOW_PRIVATE_TARGETS=true` (the receiver is on 127.0.0.1). \
         Medians of {} rounds where there are rounds; the machine may have been busy with \
         other work (see the load average and the CPU use).\n",
        r.elapsed.as_secs_f64() / 60.0,
        c.rounds
    )?;
    out.push_str(&machine_section(&r.machine));
    out.push_str(&dataset_section(r.size, &r.seeded));

    let m = &r.memory;
    writeln!(
        out,
        "## Idle streams\n\n\
         {} `GET /events` streams opened on the server, {} at a time, as the {} members of \
         staff in turn (staff receive every event); each is its own keep-alive connection \
         read by its own task in the load generator, on a thread of the streams' own. The \
         server's `VmRSS` after {} s of the \
         mixed workload's warm-up, then with the streams open and idle (once the server \
         counts them all in `sse_streams_open`, and a second later): {}.\n",
        m.streams,
        OPENING_AT_ONCE,
        r.seeded.staff,
        c.warmup.as_secs(),
        memory_line(m)
    )?;
    let mut table = Table::new(&[">streams", ">VmRSS before", ">VmRSS open", ">per stream"]);
    table.row(&[
        thousands(m.streams as f64),
        mib(m.before),
        mib(m.open),
        kib(m.per_stream()),
    ]);
    writeln!(out, "{}", table.finish())?;

    let l = &r.latency;
    let to_stream = l.latencies.summary(TO_STREAM);
    let stream_p99 = to_stream.map_or(Duration::MAX, |s| s.p99);
    writeln!(
        out,
        "## Commit to event on the wire\n\n\
         While the {} streams are open: {} staff replies (`POST /tickets/{{id}}/messages` on \
         open tickets) at {}/s on one connection; for each reply and each stream, the time \
         from the reply's HTTP answer (the write has committed by then) to the arrival of its \
         `message.created` event on that stream, read as the bytes come. An event that \
         arrived before its answer counts as 0 ({} did). The load generator used {:.0}% of \
         one CPU meanwhile.\n",
        l.streams,
        l.written,
        c.stream_writes_per_sec,
        l.early,
        100.0 * l.bench_cpu.as_secs_f64() / l.seconds.max(f64::MIN_POSITIVE)
    )?;
    let mut table = Table::new(&[
        ">events expected",
        ">arrived",
        ">p50",
        ">p99",
        ">max",
        ">write p50",
    ]);
    table.row(&[
        thousands(l.expected() as f64),
        thousands(l.arrived as f64),
        to_stream.map_or_else(String::new, |s| latency(s.p50)),
        to_stream.map_or_else(String::new, |s| latency(s.p99)),
        l.latencies.max(TO_STREAM).map_or_else(String::new, latency),
        l.writes
            .summary(WRITE)
            .map_or_else(String::new, |s| latency(s.p50)),
    ]);
    writeln!(out, "{}", table.finish())?;
    if let Some(text) = ended_text(&l.ended) {
        writeln!(out, "Streams that ended before they were closed: {text}.\n")?;
    }

    let ratios: Vec<f64> = r.rounds.iter().map(StreamsRound::ratio).collect();
    let console_ratios: Vec<f64> = r.rounds.iter().map(StreamsRound::console_ratio).collect();
    let ratio = median_f64(ratios.iter().copied());
    let console_ratio = median_f64(console_ratios.iter().copied());
    let interval = median_interval(&ratios);
    let console_interval = median_interval(&console_ratios);
    let console_staff = (c.streams * CONSOLE_STAFF_PER_MILLE).div_ceil(1000);
    writeln!(
        out,
        "## Mixed workload with the streams open\n\n\
         `just bench`'s mixed workload ({} connections, {} s a part after the warm-up, each \
         part its own random requests) in three parts per round, their order turned every \
         round: without streams; with {} \
         staff streams open, so that every event of the round goes to every stream (the \
         worst case; the streams also test that the server keeps up: each should receive \
         every event committed during its round); and with the {} streams of an agent \
         console's users: {} staff's and {} customers' (the mix's 200 logged-in customers, \
         several streams each, as tabs and devices), who receive the events of their own \
         tickets. Streams are opened before their part and closed after it; the next part \
         starts once the server's count has gone back to 0. Each ratio is the median of the \
         rounds' own ratios: this machine's throughput moves by more than the ratios' \
         distance from 100% from one part to the next, so the rounds are many and short, \
         and every round is in the table at the end. Beside each ratio, its 95% interval \
         (bootstrap: the median of 4,000 resamples of the rounds' ratios): how far chance \
         among these rounds may have moved it, not how far a run on a differently busy \
         machine may land.\n",
        c.connections,
        c.duration.as_secs(),
        c.streams,
        c.streams,
        console_staff,
        c.streams - console_staff
    )?;
    let with: Vec<&LoadRound> = r.rounds.iter().map(|round| &round.with).collect();
    let console: Vec<&LoadRound> = r.rounds.iter().map(|round| &round.console).collect();
    let without: Vec<&LoadRound> = r.rounds.iter().map(|round| &round.without).collect();
    let mut table = Table::new(&[
        "",
        ">requests/s",
        ">p50",
        ">p99",
        ">server CPU/request",
        ">load generator CPU",
    ]);
    for (name, side) in [
        ("without streams", &without),
        ("with the staff's streams", &with),
        ("with the console's streams", &console),
    ] {
        let overall = side
            .iter()
            .map(|round| round.recorder.overall())
            .collect::<Result<Vec<_>, _>>()?;
        table.row(&[
            name.to_owned(),
            thousands(median_f64(side.iter().map(|round| round.throughput()))),
            latency(median_duration(overall.iter().map(|s| s.p50))),
            latency(median_duration(overall.iter().map(|s| s.p99))),
            format!(
                "{:.0} µs",
                median_duration(side.iter().map(|round| round.cpu_per_request())).as_secs_f64()
                    * 1e6
            ),
            format!(
                "{:.0}%",
                100.0 * median_f64(side.iter().map(|r| bench_share(r)))
            ),
        ]);
    }
    for (name, share, interval) in [
        ("staff's ÷ without", ratio, interval),
        ("console's ÷ without", console_ratio, console_interval),
    ] {
        table.row(&[
            name.to_owned(),
            with_interval(share, interval),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    writeln!(out, "{}", table.finish())?;
    let releases: Vec<Duration> = std::iter::once(l.released)
        .chain(
            r.rounds
                .iter()
                .flat_map(|round| [round.delivered.released, round.console_delivered.released]),
        )
        .collect();
    writeln!(
        out,
        "Closing: the server let the load generator's closed streams go (`sse_streams_open` \
         back to 0) after {} at the median of the {} closings (longest {}). The load \
         generator closes them as a crashed client does, with a reset (`SO_LINGER` 0), \
         which the server hears of at once. After an orderly close it would notice that the \
         client has gone only when a write to it fails, which for an idle stream is its \
         second keep-alive comment after the close (up to 30 s); until then the gone \
         client's stream holds its task and buffers.\n",
        secs(median_duration(releases.iter().copied())),
        releases.len(),
        secs(releases.iter().copied().max().unwrap_or_default())
    )?;
    let busiest = with
        .iter()
        .chain(&console)
        .map(|round| bench_share(round))
        .fold(0.0, f64::max);
    if busiest >= BUSY_LOAD_GENERATOR {
        writeln!(
            out,
            "**The load generator was {:.0}% busy in a round with streams**: reading the \
             streams may have held the workload back, and the ratio is then a lower bound.\n",
            busiest * 100.0
        )?;
    }

    let w = &r.webhooks;
    let to_receiver = w.latencies.summary(TO_RECEIVER);
    writeln!(
        out,
        "## Webhook deliveries\n\n\
         A receiver in the load generator (hyper, on its own thread) answers every delivery \
         200 at once. The seed's superuser subscribes it to every event (`[\"*\"]`), then {} \
         staff replies are written as fast as {} connections go ({:.1} s, {} writes/s), and \
         the deliveries are timed from the first arrival to the last. The worker runs as \
         configured: concurrency {}, poll interval in ms {}. Every delivery's signature is \
         checked afterwards (Standard Webhooks: HMAC-SHA256 of `id.timestamp.body` with the \
         secret's key). The subscription is deleted at the end ({}).\n",
        w.written,
        WEBHOOK_WRITERS,
        w.write_seconds,
        thousands(w.written as f64 / w.write_seconds.max(f64::MIN_POSITIVE)),
        webhook_setting("concurrency"),
        webhook_setting("poll_interval_ms"),
        match &w.deleted {
            Ok(()) => "done".to_owned(),
            Err(e) => format!("**failed**: {e}"),
        }
    )?;
    let mut table = Table::new(&[
        ">events written",
        ">delivered",
        ">deliveries/s",
        ">first to last",
        ">last after the writes",
        ">answer → delivery p50",
        ">p99",
        ">duplicates",
        ">bad signatures",
    ]);
    table.row(&[
        thousands(w.written as f64),
        thousands(w.matched as f64),
        format!("{:.0}", w.per_second()),
        format!("{:.2} s", w.first_to_last.as_secs_f64()),
        format!("{:.2} s", w.after_writes.as_secs_f64()),
        to_receiver.map_or_else(String::new, |s| latency(s.p50)),
        to_receiver.map_or_else(String::new, |s| latency(s.p99)),
        (w.deliveries - w.distinct).to_string(),
        w.unsigned.to_string(),
    ]);
    writeln!(out, "{}", table.finish())?;
    writeln!(
        out,
        "Server: peak RSS (VmHWM) {} over the whole run.\n",
        mib(r.peak_rss)
    )?;

    let mut recorders: Vec<&Recorder> = vec![&r.warmup, &l.writes, &w.writes];
    for round in &r.rounds {
        recorders.extend([
            &round.without.recorder,
            &round.with.recorder,
            &round.console.recorder,
        ]);
    }
    let failures: u64 = recorders.iter().map(|rec| rec.failures()).sum();
    let streams_short = r
        .rounds
        .iter()
        .filter(|round| {
            round.delivered.fewest < round.delivered.written || !round.delivered.ended.is_empty()
        })
        .count();
    writeln!(out, "## Targets (issue 9)\n")?;
    let mut table = Table::new(&["target", "measured", "verdict"]);
    table.row(&[
        format!(
            "p99 from commit to the event on the wire, {} streams, ≤ 100 ms",
            l.streams
        ),
        latency(stream_p99),
        verdict(stream_p99 <= MAX_STREAM_P99).to_owned(),
    ]);
    table.row(&[
        "every event on every stream".to_owned(),
        format!(
            "{} of {} while timing; {} of {} rounds short",
            thousands(l.arrived as f64),
            thousands(l.expected() as f64),
            streams_short,
            r.rounds.len()
        ),
        verdict(l.arrived == l.expected() && streams_short == 0).to_owned(),
    ]);
    table.row(&[
        format!(
            "mixed throughput with the console's {} streams open within 10% of without",
            c.streams
        ),
        with_interval(console_ratio, console_interval),
        interval_verdict(console_interval, MIN_THROUGHPUT_WITH_STREAMS).to_owned(),
    ]);
    table.row(&[
        format!(
            "the same with {} staff streams, every event to every stream (worst case, \
             measured, no target: see bench/README.md)",
            c.streams
        ),
        with_interval(ratio, interval),
        String::new(),
    ]);
    table.row(&[
        "memory per idle stream (measured, no target)".to_owned(),
        kib(m.per_stream()),
        String::new(),
    ]);
    table.row(&[
        "webhook deliveries per second (measured, no target)".to_owned(),
        format!("{:.0}", w.per_second()),
        String::new(),
    ]);
    table.row(&[
        "every webhook delivered, every signature valid".to_owned(),
        format!(
            "{} of {} delivered, {} bad signatures",
            w.matched, w.written, w.unsigned
        ),
        verdict(w.matched == w.written && w.unsigned == 0).to_owned(),
    ]);
    table.row(&[
        "no errors (non-2xx)".to_owned(),
        failures.to_string(),
        verdict(failures == 0).to_owned(),
    ]);
    writeln!(out, "{}", table.finish())?;
    out.push_str(&errors_section(&recorders, 0));

    writeln!(out, "## Rounds\n")?;
    let mut table = Table::new(&[
        ">round",
        "first",
        ">without req/s",
        ">with staff's req/s",
        ">staff's ÷ without",
        ">staff's p99",
        ">with the console's req/s",
        ">console's ÷ without",
        ">events committed",
        ">received per staff stream",
        "streams ended early",
        ">released after",
    ]);
    for (i, round) in r.rounds.iter().enumerate() {
        let d = &round.delivered;
        table.row(&[
            (i + 1).to_string(),
            ["without", "staff's", "console's"][round.first % 3].to_owned(),
            thousands(round.without.throughput()),
            thousands(round.with.throughput()),
            format!("{:.1}%", round.ratio() * 100.0),
            round
                .with
                .recorder
                .overall()
                .map_or_else(|_| String::new(), |s| latency(s.p99)),
            thousands(round.console.throughput()),
            format!("{:.1}%", round.console_ratio() * 100.0),
            thousands(d.written as f64),
            if d.fewest == d.most {
                thousands(d.fewest as f64)
            } else {
                format!(
                    "{} to {}",
                    thousands(d.fewest as f64),
                    thousands(d.most as f64)
                )
            },
            ended_text(&d.ended).unwrap_or_else(|| "none".to_owned()),
            secs(d.released),
        ]);
    }
    out.push_str(&table.finish());
    Ok(out)
}

/// `12.3 s`.
fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The load generator's share of one CPU during a round.
fn bench_share(round: &LoadRound) -> f64 {
    round.bench_cpu.as_secs_f64() / round.seconds.max(f64::MIN_POSITIVE)
}

/// `3 closed by the server, 1 transport: …`, or `None` when no stream ended early.
fn ended_text(ended: &BTreeMap<String, usize>) -> Option<String> {
    (!ended.is_empty()).then(|| {
        ended
            .iter()
            .map(|(why, count)| format!("{count} {why}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// A `[webhooks]` setting as the server gets it: `TICKETS__WEBHOOKS__<KEY>` from the
/// environment, else config/default.toml's (the bench runs from the repository's root).
fn webhook_setting(key: &str) -> String {
    let variable = format!("TICKETS__WEBHOOKS__{}", key.to_uppercase());
    if let Some(value) = std::env::var(&variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
    {
        return format!("{value} (`{variable}`)");
    }
    std::fs::read_to_string("config/default.toml")
        .ok()
        .and_then(|toml| section_value(&toml, "webhooks", key))
        .map_or_else(
            || "unknown".to_owned(),
            |value| format!("{value} (config/default.toml)"),
        )
}

/// `key = value` in `[section]` of a flat TOML file.
fn section_value(toml: &str, section: &str, key: &str) -> Option<String> {
    let header = format!("[{section}]");
    toml.lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .find_map(|line| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == key).then(|| value.trim().to_owned())
        })
}

/// `88.7% (86.1-91.0%)`: a ratio and its [`median_interval`].
fn with_interval(ratio: f64, (lo, hi): (f64, f64)) -> String {
    format!(
        "{:.1}% ({:.1}-{:.1}%)",
        ratio * 100.0,
        lo * 100.0,
        hi * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_setting_of_a_section() {
        let toml = "[server]\nconcurrency = 1\n[webhooks]\n# note\nconcurrency = 16\n\
                    poll_interval_ms = 1000\n[other]\nlease_secs = 60\n";
        assert_eq!(
            section_value(toml, "webhooks", "concurrency").as_deref(),
            Some("16")
        );
        assert_eq!(
            section_value(toml, "webhooks", "poll_interval_ms").as_deref(),
            Some("1000")
        );
        assert_eq!(section_value(toml, "webhooks", "lease_secs"), None);
    }
}
