//! The knobs of a run: `BENCH_*` environment variables, with defaults that keep the
//! default run under ten minutes on a 2-core machine.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

#[derive(Clone)]
pub struct Config {
    /// Measured rounds of each kind; the report gives their medians.
    pub rounds: usize,
    /// Length of one measured round of the mixed workload and of pgbench.
    pub duration: Duration,
    /// Unrecorded load before the first round (connections, statement caches, buffers).
    pub warmup: Duration,
    /// Concurrent HTTP connections of the mixed workload.
    pub connections: usize,
    /// pgbench clients: the service's pool size, so both keep as many statements in
    /// flight.
    pub pg_clients: usize,
    /// Customers logged in for the mixed workload (all staff are, too).
    pub customers: usize,
    /// The server's bcrypt cost, and the cost of the login benchmark's hashes.
    pub bcrypt_cost: u32,
    /// Length of one login round, and of each half of a login-interference round.
    pub login_duration: Duration,
    /// Concurrent clients that log in, enough to keep every hashing permit busy.
    pub login_clients: usize,
    /// Requests per second of `GET /tickets/{id}` while measuring login interference.
    pub probe_rate: u32,
    /// Length of `bench soak`'s uninterrupted mixed workload.
    pub soak_duration: Duration,
    /// The service's pool size and worker threads (0: one per CPU it may use), passed to
    /// it and to the bare reference server alike.
    pub pool_size: usize,
    pub workers: usize,
    /// Length of each pass that counts the statements per request.
    pub count_duration: Duration,
    /// `bench events`: open event streams, the pace and length of the writes whose
    /// events they time, and the events written for the webhook.
    pub streams: usize,
    pub stream_writes_per_sec: u32,
    pub stream_write_duration: Duration,
    pub webhook_events: usize,
    /// `bench events`' rounds of the mixed workload's parts, and each part's length:
    /// more and shorter than the other modes' (see [`Config::for_events`]).
    pub events_rounds: usize,
    pub events_duration: Duration,
    /// Tickets of the dataset instead of its own number (users follow, 20 tickets
    /// each): small smoke runs of the default and events modes.
    pub tickets: Option<i64>,
    /// Where PostgreSQL is: the server's `DATABASE_URL`, whose database name the
    /// benchmark replaces with its own.
    pub database_url: String,
    /// The service to measure: its server binary (which also migrates a database) and
    /// the seed that fits its schema. `bench compare` swaps both for the baseline's.
    pub server_binary: PathBuf,
    pub seed_file: PathBuf,
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        Ok(Self {
            rounds: var("BENCH_ROUNDS", 3)?,
            duration: Duration::from_secs(var("BENCH_SECS", 20)?),
            warmup: Duration::from_secs(var("BENCH_WARMUP_SECS", 5)?),
            connections: var("BENCH_CONNECTIONS", 32)?,
            pg_clients: var(
                "BENCH_PG_CLIENTS",
                var("TICKETS__DATABASE__POOL_MAX_SIZE", 16)?,
            )?,
            customers: var("BENCH_CUSTOMERS", 200)?,
            bcrypt_cost: var("BENCH_BCRYPT_COST", 12)?,
            login_duration: Duration::from_secs(var("BENCH_LOGIN_SECS", 10)?),
            login_clients: var("BENCH_LOGIN_CLIENTS", 4)?,
            probe_rate: var("BENCH_PROBE_RATE", 200)?,
            soak_duration: Duration::from_secs(var("BENCH_SOAK_SECS", 600)?),
            pool_size: var("TICKETS__DATABASE__POOL_MAX_SIZE", 16)?,
            workers: var("TICKETS__SERVER__WORKERS", 0)?,
            count_duration: Duration::from_secs(var("BENCH_COUNT_SECS", 2)?),
            streams: var("BENCH_STREAMS", 1000)?,
            stream_writes_per_sec: var("BENCH_STREAM_WRITES_PER_SEC", 20)?,
            stream_write_duration: Duration::from_secs(var("BENCH_STREAM_WRITE_SECS", 10)?),
            webhook_events: var("BENCH_WEBHOOK_EVENTS", 2000)?,
            events_rounds: var("BENCH_EVENTS_ROUNDS", 24)?,
            events_duration: Duration::from_secs(var("BENCH_EVENTS_SECS", 4)?),
            tickets: match var("BENCH_TICKETS", 0i64)? {
                0 => None,
                n => Some(n),
            },
            database_url: var(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/tickets".to_owned(),
            )?,
            server_binary: var("BENCH_SERVER_BIN", PathBuf::from("target/release/tickets"))?,
            seed_file: PathBuf::from("bench/seed.sql"),
        })
    }

    /// The knobs of `bench events`, whose rounds are [`Self::events_rounds`] of
    /// [`Self::events_duration`]. What it compares, the mixed workload with and without
    /// a thousand streams, differs by a tenth or two, while this machine's throughput
    /// moved by as much as half from one 20-second part to the next with nothing else
    /// running on it (presumably other tenants of the host, and where the scheduler puts
    /// PostgreSQL's processes beside the pinned server): three rounds left the ratio to
    /// chance, and more of them, shorter, keep the run's length.
    pub fn for_events(&self) -> Self {
        Self {
            rounds: self.events_rounds,
            duration: self.events_duration,
            ..self.clone()
        }
    }
}

pub fn var<T: FromStr>(name: &str, default: T) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|e| format!("{name}={raw:?}: {e}").into()),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(default),
        Err(e) => Err(format!("{name}: {e}").into()),
    }
}
