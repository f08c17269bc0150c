//! `bench events`: live event streams and webhooks on one server process (issue 9).
//!
//! 1. Memory per idle stream: the server's `VmRSS` with `BENCH_STREAMS` streams open
//!    (staff's, who receive every event) less before, per stream.
//! 2. Commit to event on the wire: staff replies written through the API at a modest
//!    pace while the streams are open; for each reply and each stream, the time from
//!    the reply's HTTP answer (its commit is done by then) to its event's arrival.
//! 3. The mixed workload with the streams open against without, in rounds that turn
//!    the order of three: without streams, with every stream a staff member's (the
//!    worst case: every event to every stream), and with the streams of an agent
//!    console's users ([`CONSOLE_STAFF_PER_MILLE`] staff, the rest customers, who
//!    receive the events of their own tickets).
//! 4. Webhook deliveries per second to a receiver in this process, from the first
//!    arrival to the last, every signature checked.
//!
//! Writes `bench/RESULTS-events.md`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::MissedTickBehavior;

use crate::client::Client;
use crate::config::Config;
use crate::dataset::{self, Hashes, Seeded, Size};
use crate::load::{self, Workload};
use crate::machine::Machine;
use crate::placement::Placement;
use crate::psql::Psql;
use crate::recorder::Recorder;
use crate::report::{latency, mib, publish, thousands};
use crate::server::{Options, Server, MEASURED};
use crate::streams::{self, Reading, StreamLog, Streams};
use crate::suite::{launch_with, mixed_round, Launched, LoadRound, WORK_DIR};
use crate::webhooks::{self, Receiver};
use crate::Error;

/// The server may deliver webhooks to the receiver on 127.0.0.1.
const WEBHOOKS_TO_LOOPBACK: Options = Options {
    settings: &[("TICKETS__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")],
    ..MEASURED
};
/// The label of the writes, and of the latencies from a write's answer to its event.
pub const WRITE: &str = "POST /tickets/{id}/messages (staff)";
pub const TO_STREAM: &str = "answer → event on a stream";
pub const TO_RECEIVER: &str = "answer → webhook delivery";
const REPLY: &[u8] = br#"{"text":"Checked with the courier: it ships today."}"#;
/// Of 1,000 streams in the console round, how many are staff's (the rest are customers').
pub const CONSOLE_STAFF_PER_MILLE: usize = 50;
/// How long events may take to reach every stream, or deliveries the receiver, after
/// the last write, before the missing ones count as missing.
const STREAM_GRACE: Duration = Duration::from_secs(5);
const DELIVERY_PATIENCE: Duration = Duration::from_secs(30);
/// Connections writing the webhook's events: enough that the writes outpace the
/// deliveries, so that the deliveries' rate is the worker's.
pub const WEBHOOK_WRITERS: usize = 8;
/// How long the server may take to count streams opened.
const OPEN_PATIENCE: Duration = Duration::from_secs(30);
/// How long it may take to let closed streams go: it notices that a client has gone
/// only when a write to it fails, and an idle stream writes only its keep-alive comment
/// (`events.keep_alive_secs`, 15 s): the second one after the close, at the latest.
const RELEASE_PATIENCE: Duration = Duration::from_secs(60);
/// Descriptors the load generator needs besides the streams' (its load's connections,
/// psql, logs), with a margin.
const OTHER_FILES: u64 = 256;

pub struct Memory {
    pub streams: usize,
    pub before: u64,
    pub open: u64,
}

impl Memory {
    /// Bytes per stream (negative if the server's memory shrank meanwhile).
    pub fn per_stream(&self) -> f64 {
        (self.open as f64 - self.before as f64) / self.streams.max(1) as f64
    }
}

/// Staff replies and when each reached each stream.
pub struct StreamLatency {
    pub writes: Recorder,
    pub written: usize,
    pub streams: usize,
    /// From each write's answer to its event on each stream.
    pub latencies: Recorder,
    pub arrived: u64,
    /// Events that reached a stream before their write's answer reached the writer
    /// (counted as 0).
    pub early: u64,
    pub ended: BTreeMap<String, usize>,
    pub seconds: f64,
    pub bench_cpu: Duration,
    /// How long the server took to let the closed streams go.
    pub released: Duration,
}

impl StreamLatency {
    pub fn expected(&self) -> u64 {
        (self.written * self.streams) as u64
    }
}

/// What the streams of a round with streams received.
pub struct Delivered {
    /// Events committed during the round (every stream should receive each).
    pub written: u64,
    pub fewest: u64,
    pub most: u64,
    /// Streams that ended before they were closed, by why.
    pub ended: BTreeMap<String, usize>,
    /// How long the server took to let the closed streams go.
    pub released: Duration,
}

pub struct StreamsRound {
    pub without: LoadRound,
    /// With every stream a staff member's.
    pub with: LoadRound,
    pub delivered: Delivered,
    /// With the console's streams, mostly customers'.
    pub console: LoadRound,
    pub console_delivered: Delivered,
    /// Which ran first: 0 without, 1 staff's, 2 the console's.
    pub first: usize,
}

impl StreamsRound {
    /// Throughput with the staff's streams open ÷ without, in one round.
    pub fn ratio(&self) -> f64 {
        self.with.throughput() / self.without.throughput().max(f64::MIN_POSITIVE)
    }

    /// Throughput with the console's streams open ÷ without, in one round.
    pub fn console_ratio(&self) -> f64 {
        self.console.throughput() / self.without.throughput().max(f64::MIN_POSITIVE)
    }
}

/// Whose streams a round opens.
#[derive(Clone, Copy)]
pub enum Audience {
    Staff,
    Console,
}

impl Audience {
    /// The token of each stream to open.
    fn tokens(self, workload: &Workload, count: usize) -> Vec<HeaderValue> {
        let staff = &workload.sessions.staff;
        let customers = &workload.sessions.customers;
        let staff_streams = match self {
            Self::Staff => count,
            Self::Console => (count * CONSOLE_STAFF_PER_MILLE).div_ceil(1000),
        };
        (0..count)
            .map(|i| {
                if i < staff_streams || customers.is_empty() {
                    staff[i % staff.len().max(1)].clone()
                } else {
                    customers[(i - staff_streams) % customers.len()].clone()
                }
            })
            .collect()
    }
}

pub struct WebhookResults {
    pub writes: Recorder,
    pub written: usize,
    pub write_seconds: f64,
    /// Requests the receiver answered, and their distinct `webhook-id`s.
    pub deliveries: usize,
    pub distinct: usize,
    /// Written messages whose event was delivered.
    pub matched: usize,
    pub first_to_last: Duration,
    /// From the last write's answer to the last delivery.
    pub after_writes: Duration,
    pub latencies: Recorder,
    pub signed: usize,
    pub unsigned: usize,
    /// Whether the subscription was deleted afterwards.
    pub deleted: Result<(), String>,
}

impl WebhookResults {
    pub fn per_second(&self) -> f64 {
        let seconds = self.first_to_last.as_secs_f64();
        if self.distinct < 2 || seconds <= 0.0 {
            return 0.0;
        }
        (self.distinct - 1) as f64 / seconds
    }
}

pub struct EventsResults<'a> {
    pub config: &'a Config,
    pub size: &'a Size,
    pub machine: Machine,
    pub seeded: Seeded,
    pub warmup: Recorder,
    pub memory: Memory,
    pub latency: StreamLatency,
    pub rounds: Vec<StreamsRound>,
    pub webhooks: WebhookResults,
    pub peak_rss: u64,
    pub elapsed: Duration,
}

pub fn run(config: &Config, placement: &Placement, size: &Size) -> Result<(), Error> {
    let started = Instant::now();
    let config = &config.for_events();
    std::fs::create_dir_all(WORK_DIR)?;
    let needed = config.streams as u64 + config.connections as u64 + OTHER_FILES;
    check_open_files(needed)?;
    let machine = Machine::describe(&dataset::admin(config)?, placement)?;
    println!("placement: {}", machine.placement);
    let hashes = Hashes::new(config.bcrypt_cost)?;
    let Launched {
        seeded,
        runtime,
        server,
        workload,
        ..
    } = launch_with(config, placement, size, &hashes, &WEBHOOKS_TO_LOOPBACK)?;
    let db = dataset::database(config, size)?;
    let addr = server.addr;

    println!("warming up for {} s", config.warmup.as_secs());
    let warmup = runtime.block_on(load::mixed(
        addr,
        workload.clone(),
        config.connections,
        config.warmup,
        0,
    ))?;

    if let Some(parts) = only_parts()? {
        parts_alone(config, &runtime, &server, &workload, &db, &parts)?;
        return server.stop();
    }

    let (memory, to_streams) = runtime.block_on(idle_then_timed(config, &server, &workload))?;
    println!(
        "{} streams: {} of server memory each; commit to event p99 {} ({} of {} arrived)",
        memory.streams,
        kib(memory.per_stream()),
        to_streams
            .latencies
            .summary(TO_STREAM)
            .map_or_else(|| "-".to_owned(), |s| latency(s.p99)),
        to_streams.arrived,
        to_streams.expected()
    );

    let mut rounds = Vec::with_capacity(config.rounds);
    for round in 1..=config.rounds {
        // The order turns by one every round.
        let first = (round - 1) % 3;
        let (mut without, mut staff, mut console) = (None, None, None);
        for index in (0..3).map(|k| (first + k) % 3) {
            let part = Part::ALL[index];
            let seed = part_seed(round, index);
            let (measured, delivered) =
                run_part(config, &runtime, &server, &workload, &db, part, seed)?;
            match (part, delivered) {
                (Part::Without, _) => without = Some(measured),
                (Part::With(Audience::Staff), Some(got)) => staff = Some((measured, got)),
                (Part::With(Audience::Console), Some(got)) => console = Some((measured, got)),
                (Part::With(_), None) => {}
            }
        }
        let (Some(without), Some((with, delivered)), Some((console, console_delivered))) =
            (without, staff, console)
        else {
            return Err("a part of the round did not run".into());
        };
        let result = StreamsRound {
            without,
            with,
            delivered,
            console,
            console_delivered,
            first,
        };
        println!(
            "round {round}: mixed {} req/s without streams, {} with staff's ({:.1}%), {} with \
             the console's ({:.1}%); each staff stream received {}..{} of {} events",
            thousands(result.without.throughput()),
            thousands(result.with.throughput()),
            result.ratio() * 100.0,
            thousands(result.console.throughput()),
            result.console_ratio() * 100.0,
            result.delivered.fewest,
            result.delivered.most,
            result.delivered.written
        );
        rounds.push(result);
    }

    let receiver = Receiver::start()?;
    let webhooks = runtime.block_on(webhook_throughput(
        addr,
        &workload,
        &receiver,
        config.webhook_events,
    ))?;
    println!(
        "webhooks: {} deliveries/s ({} of {} delivered, {} signatures checked, {} bad)",
        thousands(webhooks.per_second()),
        webhooks.matched,
        webhooks.written,
        webhooks.signed + webhooks.unsigned,
        webhooks.unsigned
    );
    let peak_rss = server.peak_rss()?;
    server.stop()?;

    let results = EventsResults {
        config,
        size,
        machine,
        seeded,
        warmup,
        memory,
        latency: to_streams,
        rounds,
        webhooks,
        peak_rss,
        elapsed: started.elapsed(),
    };
    publish(
        Path::new("bench/RESULTS-events.md"),
        &crate::events_report::render(&results)?,
    )
}

/// The seed of the requests of one part of a round: each part its own. With one seed
/// for the round, the part that ran second asked for the tickets the first had just
/// brought into PostgreSQL's buffers: in a run of six rounds of two parts, the second
/// part's throughput was about 10% higher relative to the first's, whichever it was.
fn part_seed(round: usize, part: usize) -> u64 {
    (round * 3 + part) as u64
}

/// `BENCH_EVENTS_PARTS`: the mixed workload's parts to run alone, comma-separated
/// (`without`, `staff`, `console`), for a profile of one part or a closer look at two;
/// unset, the whole benchmark.
fn only_parts() -> Result<Option<Vec<Part>>, Error> {
    let raw: String = crate::config::var("BENCH_EVENTS_PARTS", String::new())?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    raw.split(',')
        .map(|name| {
            Part::from_name(name.trim()).ok_or_else(|| {
                format!("BENCH_EVENTS_PARTS: {name:?} is none of {}", Part::NAMES).into()
            })
        })
        .collect::<Result<Vec<_>, Error>>()
        .map(Some)
}

/// One part of a round: the mixed workload without streams, or with an audience's.
#[derive(Clone, Copy)]
pub enum Part {
    Without,
    With(Audience),
}

impl Part {
    /// The parts of a full round, in the order of [`StreamsRound::first`].
    const ALL: [Part; 3] = [
        Part::Without,
        Part::With(Audience::Staff),
        Part::With(Audience::Console),
    ];

    /// The names the `BENCH_EVENTS_PARTS` and `BENCH_COMPARE_STREAMS` settings take.
    pub const NAMES: &'static str = "without, staff, console";

    /// The part a setting names (see [`Self::NAMES`]).
    pub fn from_name(name: &str) -> Option<Part> {
        match name {
            "without" => Some(Part::Without),
            "staff" => Some(Part::With(Audience::Staff)),
            "console" => Some(Part::With(Audience::Console)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Part::Without => "without",
            Part::With(Audience::Staff) => "staff's",
            Part::With(Audience::Console) => "console's",
        }
    }
}

/// Runs one part: its round of the mixed workload and, for a part with streams, what
/// the streams received.
pub fn run_part(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    workload: &Arc<Workload>,
    db: &Psql,
    part: Part,
    seed: u64,
) -> Result<(LoadRound, Option<Delivered>), Error> {
    Ok(match part {
        Part::Without => (mixed_round(runtime, server, workload, config, seed)?, None),
        Part::With(audience) => {
            let (measured, delivered) =
                round_with_streams(config, runtime, server, workload, db, seed, audience)?;
            (measured, Some(delivered))
        }
    })
}

/// Runs `parts` in `BENCH_EVENTS_ROUNDS` rounds, their order turned every round, and prints
/// each part's throughput, latency and CPU; writes no report.
fn parts_alone(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    workload: &Arc<Workload>,
    db: &Psql,
    parts: &[Part],
) -> Result<(), Error> {
    for round in 1..=config.rounds {
        for k in 0..parts.len() {
            let index = (round - 1 + k) % parts.len();
            let part = parts[index];
            let seed = part_seed(round, index);
            let (measured, _) = run_part(config, runtime, server, workload, db, part, seed)?;
            let name = part.name();
            let p99 = latency(measured.recorder.overall()?.p99);
            println!(
                "round {round} {name}: {} req/s, p99 {p99}, server CPU/request {} µs, \
                 load generator CPU {:.0}%",
                thousands(measured.throughput()),
                measured.cpu_per_request().as_micros(),
                measured.bench_cpu.as_secs_f64() / measured.seconds * 100.0
            );
        }
    }
    Ok(())
}

/// Opens the streams, measures the server's memory with them idle, then times the
/// events of paced writes to every stream, and closes them.
async fn idle_then_timed(
    config: &Config,
    server: &Server,
    workload: &Arc<Workload>,
) -> Result<(Memory, StreamLatency), Error> {
    let addr = server.addr;
    let before = server.rss()?;
    println!("opening {} event streams as staff", config.streams);
    let streams = Streams::open(
        addr,
        &workload.sessions.staff,
        config.streams,
        Reading::Time,
    )
    .await?;
    streams::until_open_on_server(addr, config.streams as u64, OPEN_PATIENCE).await?;
    // What opening left behind (buffers, tasks) settles before the reading.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory = Memory {
        streams: streams.len(),
        before,
        open: server.rss()?,
    };

    let rate = config.stream_writes_per_sec.max(1);
    let total = (f64::from(rate) * config.stream_write_duration.as_secs_f64()).ceil() as usize;
    println!("writing {total} staff replies at {rate}/s and timing their events on every stream");
    let bench_before = crate::server::process_cpu_time("/proc/self/stat")?;
    let begun = Instant::now();
    let (written, writes) = post_messages(
        addr,
        workload.clone(),
        1,
        total,
        Some(Duration::from_secs_f64(1.0 / f64::from(rate))),
        u64::from(rate),
    )
    .await?;
    until_received(&streams, (written.len() * streams.len()) as u64).await;
    let seconds = begun.elapsed().as_secs_f64();
    let bench_cpu =
        crate::server::process_cpu_time("/proc/self/stat")?.saturating_sub(bench_before);
    let stream_count = streams.len();
    let logs = streams.close().await?;
    let released = released(addr).await?;
    let mut latency = StreamLatency {
        writes,
        written: written.len(),
        streams: stream_count,
        latencies: Recorder::default(),
        arrived: 0,
        early: 0,
        ended: ended(&logs),
        seconds,
        bench_cpu,
        released,
    };
    let answered: HashMap<i64, Instant> = written.into_iter().collect();
    for log in &logs {
        for (message, at) in &log.arrivals {
            let Some(answer) = answered.get(message) else {
                continue;
            };
            latency.arrived += 1;
            if at < answer {
                latency.early += 1;
            }
            latency
                .latencies
                .success(TO_STREAM, at.saturating_duration_since(*answer))?;
        }
    }
    Ok((memory, latency))
}

/// Opens the streams of `audience`, runs a round of the mixed workload, lets the last
/// events reach the streams (for staff's, every stream every event, or [`STREAM_GRACE`]
/// after the round, whichever comes first; for the console's, whose customers receive
/// only their own tickets' events, one second), closes them and waits until the server
/// has let them go.
fn round_with_streams(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    workload: &Arc<Workload>,
    db: &Psql,
    seed: u64,
    audience: Audience,
) -> Result<(LoadRound, Delivered), Error> {
    let last_event: i64 = db
        .value("SELECT coalesce(max(id), 0) FROM ticket_events")?
        .parse()?;
    let streams = runtime.block_on(async {
        let streams = Streams::open(
            server.addr,
            &audience.tokens(workload, config.streams),
            config.streams,
            Reading::Count,
        )
        .await?;
        streams::until_open_on_server(server.addr, config.streams as u64, OPEN_PATIENCE).await?;
        Ok::<_, Error>(streams)
    })?;
    let round = mixed_round(runtime, server, workload, config, seed)?;
    let written: u64 = db
        .value(&format!(
            "SELECT count(*) FROM ticket_events WHERE id > {last_event}"
        ))?
        .parse()?;
    let (logs, released) = runtime.block_on(async {
        // The events of the round's last writes are on their way: a server that fell
        // behind its streams during the round still has a backlog to write.
        match audience {
            Audience::Staff => until_received(&streams, written * streams.len() as u64).await,
            Audience::Console => tokio::time::sleep(Duration::from_secs(1)).await,
        }
        let logs = streams.close().await?;
        Ok::<_, Error>((logs, released(server.addr).await?))
    })?;
    let delivered = Delivered {
        written,
        fewest: logs.iter().map(|log| log.events).min().unwrap_or(0),
        most: logs.iter().map(|log| log.events).max().unwrap_or(0),
        ended: ended(&logs),
        released,
    };
    Ok((round, delivered))
}

/// Waits until the streams have received `expected` events in all, at most
/// [`STREAM_GRACE`].
async fn until_received(streams: &Streams, expected: u64) {
    let waiting = Instant::now();
    while streams.received() < expected && waiting.elapsed() < STREAM_GRACE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server has let every closed stream go, and says how long it took:
/// the next round must not share the server with them.
async fn released(addr: SocketAddr) -> Result<Duration, Error> {
    let waited = streams::until_open_on_server(addr, 0, RELEASE_PATIENCE).await?;
    println!(
        "the server let the closed streams go after {:.1} s",
        waited.as_secs_f64()
    );
    Ok(waited)
}

/// Streams that ended before they were closed, by why.
fn ended(logs: &[StreamLog]) -> BTreeMap<String, usize> {
    let mut ended = BTreeMap::new();
    for reason in logs.iter().filter_map(|log| log.ended.as_ref()) {
        *ended.entry(reason.clone()).or_default() += 1;
    }
    ended
}

/// Subscribes the receiver to every event as the seed's superuser, writes `count`
/// events as fast as [`WEBHOOK_WRITERS`] connections go, waits for their deliveries,
/// deletes the subscription, and checks what came.
async fn webhook_throughput(
    addr: SocketAddr,
    workload: &Arc<Workload>,
    receiver: &Receiver,
    count: usize,
) -> Result<WebhookResults, Error> {
    // bench/seed.sql makes user 1, the first member of staff, a superuser.
    let superuser = workload
        .sessions
        .staff
        .first()
        .ok_or("no staff session")?
        .clone();
    let mut client = Client::connect(addr).await?;
    let subscription = serde_json::json!({
        "url": format!("http://{}/bench-webhook", receiver.addr),
        "events": ["*"],
        "description": "just bench events",
    });
    let reply = client
        .send(
            Method::POST,
            "/webhooks",
            Some(&superuser),
            Some(Bytes::from(subscription.to_string())),
        )
        .await?;
    if reply.status.as_u16() != 201 {
        return Err(format!(
            "POST /webhooks as the seed's superuser answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )
        .into());
    }
    let created: serde_json::Value = serde_json::from_slice(&reply.body)?;
    let (Some(webhook), Some(secret)) = (
        created.get("id").and_then(serde_json::Value::as_i64),
        created.get("secret").and_then(serde_json::Value::as_str),
    ) else {
        return Err("POST /webhooks answered no id or secret".into());
    };
    println!(
        "webhook {webhook} to {}: writing {count} events on {WEBHOOK_WRITERS} connections",
        receiver.addr
    );

    let begun = Instant::now();
    let (written, writes) =
        post_messages(addr, workload.clone(), WEBHOOK_WRITERS, count, None, 7).await?;
    let writes_done = Instant::now();
    let write_seconds = writes_done.duration_since(begun).as_secs_f64();
    let mut seen = receiver.distinct();
    let mut progress = Instant::now();
    while seen < written.len() && progress.elapsed() < DELIVERY_PATIENCE {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = receiver.distinct();
        if now > seen {
            seen = now;
            progress = Instant::now();
        }
    }
    // On a connection of its own: the first has been idle for longer than the server
    // keeps connections.
    let mut client = Client::connect(addr).await?;
    let deleted = match client
        .send(
            Method::DELETE,
            &format!("/webhooks/{webhook}"),
            Some(&superuser),
            None,
        )
        .await
    {
        Ok(reply) if reply.status.is_success() => Ok(()),
        Ok(reply) => Err(format!(
            "DELETE /webhooks/{webhook} answered {}",
            reply.status
        )),
        Err(e) => Err(format!("DELETE /webhooks/{webhook}: {e}")),
    };

    let deliveries = receiver.take();
    let answered: HashMap<i64, Instant> = written.iter().copied().collect();
    let mut first_arrival: HashMap<&str, &webhooks::Delivery> = HashMap::new();
    for delivery in &deliveries {
        first_arrival
            .entry(delivery.id.as_str())
            .or_insert(delivery);
    }
    let mut latencies = Recorder::default();
    let mut matched = 0;
    for delivery in first_arrival.values() {
        if let Some(answer) = webhooks::message_id(delivery).and_then(|m| answered.get(&m)) {
            matched += 1;
            latencies.success(TO_RECEIVER, delivery.at.saturating_duration_since(*answer))?;
        }
    }
    let signed = deliveries
        .iter()
        .filter(|delivery| webhooks::signed_by(secret, delivery))
        .count();
    let first = deliveries.iter().map(|d| d.at).min();
    let last = deliveries.iter().map(|d| d.at).max();
    Ok(WebhookResults {
        writes,
        written: written.len(),
        write_seconds,
        deliveries: deliveries.len(),
        distinct: first_arrival.len(),
        matched,
        first_to_last: first
            .zip(last)
            .map_or(Duration::ZERO, |(first, last)| last.duration_since(first)),
        after_writes: last.map_or(Duration::ZERO, |last| {
            last.saturating_duration_since(writes_done)
        }),
        latencies,
        signed,
        unsigned: deliveries.len() - signed,
        deleted,
    })
}

/// Posts `total` staff replies to open tickets on `connections` connections, as fast
/// as they go or one per `period` on each; returns each written message's id with the
/// moment its answer came, and the writes' latencies and failures.
async fn post_messages(
    addr: SocketAddr,
    workload: Arc<Workload>,
    connections: usize,
    total: usize,
    period: Option<Duration>,
    seed: u64,
) -> Result<(Vec<(i64, Instant)>, Recorder), Error> {
    let connections = connections.max(1);
    let tasks: Vec<_> = (0..connections)
        .map(|index| {
            let workload = workload.clone();
            // The first connections take one more when `total` does not divide.
            let share = total / connections + usize::from(index < total % connections);
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(7_919) + index as u64);
                let mut client = Client::connect(addr).await?;
                let mut recorder = Recorder::default();
                let mut written = Vec::with_capacity(share);
                let mut ticks = period.map(|period| {
                    let mut ticks = tokio::time::interval(period);
                    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    ticks
                });
                for _ in 0..share {
                    if let Some(ticks) = ticks.as_mut() {
                        ticks.tick().await;
                    }
                    let staff = &workload.sessions.staff;
                    let token = &staff[rng.gen_range(0..staff.len())];
                    let tickets = &workload.fixtures.staff_open;
                    let ticket = tickets[rng.gen_range(0..tickets.len())];
                    let started = Instant::now();
                    let reply = client
                        .send(
                            Method::POST,
                            &format!("/tickets/{ticket}/messages"),
                            Some(token),
                            Some(Bytes::from_static(REPLY)),
                        )
                        .await;
                    let answered = Instant::now();
                    match reply {
                        Ok(reply) if reply.status.is_success() => {
                            recorder.success(WRITE, answered.duration_since(started))?;
                            let message: serde_json::Value = serde_json::from_slice(&reply.body)?;
                            let id = message
                                .get("id")
                                .and_then(serde_json::Value::as_i64)
                                .ok_or("a written message without an id")?;
                            written.push((id, answered));
                        }
                        Ok(reply) => {
                            recorder.failure(WRITE, format!("HTTP {}", reply.status.as_u16()));
                        }
                        Err(e) => {
                            recorder.failure(WRITE, format!("transport: {e}"));
                            client.reconnect().await?;
                        }
                    }
                }
                Ok::<_, Error>((written, recorder))
            })
        })
        .collect();
    let mut written = Vec::with_capacity(total);
    let mut recorder = Recorder::default();
    for task in tasks {
        let (theirs, their_recorder) = task.await??;
        written.extend(theirs);
        recorder.merge(their_recorder)?;
    }
    Ok((written, recorder))
}

/// Fails early when this process may not open enough files for the streams (the
/// server, started by it, inherits the same limit).
fn check_open_files(needed: u64) -> Result<(), Error> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|value| value.parse::<u64>().ok());
    match soft {
        Some(soft) if soft < needed => Err(format!(
            "this process may open {soft} files and needs about {needed} for the streams: \
             raise the limit (`ulimit -n {needed}`), as bench/run.sh does"
        )
        .into()),
        _ => Ok(()),
    }
}

/// `12.3 KiB`.
pub fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// For the report: the server's memory, as the other reports write it.
pub fn memory_line(memory: &Memory) -> String {
    format!(
        "{} before, {} with {} streams open",
        mib(memory.before),
        mib(memory.open),
        memory.streams
    )
}

#[cfg(test)]
mod tests {
    use super::Part;

    #[test]
    fn every_listed_part_name_is_understood_and_no_other() {
        for name in Part::NAMES.split(", ") {
            assert!(Part::from_name(name).is_some(), "{name}");
        }
        assert!(Part::from_name("none").is_none());
        assert!(Part::from_name("console's").is_none());
    }
}
