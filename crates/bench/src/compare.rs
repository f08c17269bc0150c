//! `bench compare`: the mixed workload against the service as it was at a baseline
//! revision and as it is now, side by side in one run. bench/run.sh builds the
//! baseline's server from a git worktree; each build migrates and seeds a database of
//! its own with its own `bench/seed.sql` (the default dataset's sizes), both servers
//! run at once, and the measured rounds alternate between them, each pair in the other
//! order from the last, so that a drift in the machine's speed falls on both alike.
//! Same load generator, connections, mix and round length for both.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::config::{self, Config};
use crate::dataset::{self, Hashes, Seeded, BASELINE, DEFAULT};
use crate::events::{run_part, Part};
use crate::load;
use crate::machine::Machine;
use crate::placement::Placement;
use crate::psql::Psql;
use crate::recorder::Recorder;
use crate::report::{publish, thousands};
use crate::suite::{launch, Launched, LoadRound};
use crate::Error;

/// How long PostgreSQL's backends may keep their statistics before reporting them
/// (PostgreSQL 15: at most 10 s after going idle), plus a margin.
pub const STATS_SETTLE: Duration = Duration::from_secs(11);

/// What one database did, from `pg_stat_database` and the WAL position.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counters {
    /// Committed and rolled-back transactions: each statement outside `BEGIN` is one.
    pub transactions: f64,
    pub inserted: f64,
    pub updated: f64,
}

impl Counters {
    fn read(admin: &Psql, database: &str) -> Result<Self, Error> {
        let rows = admin.rows(&format!(
            "SELECT xact_commit + xact_rollback, tup_inserted, tup_updated \
             FROM pg_stat_database WHERE datname = '{database}'"
        ))?;
        match rows.first().map(Vec::as_slice) {
            Some([transactions, inserted, updated]) => Ok(Self {
                transactions: transactions.parse()?,
                inserted: inserted.parse()?,
                updated: updated.parse()?,
            }),
            _ => Err(format!("no statistics for database {database}").into()),
        }
    }

    /// What happened since `before`, per request.
    pub fn per_request(self, before: Counters, requests: u64) -> Counters {
        let n = requests.max(1) as f64;
        Counters {
            transactions: (self.transactions - before.transactions) / n,
            inserted: (self.inserted - before.inserted) / n,
            updated: (self.updated - before.updated) / n,
        }
    }
}

/// One side of the comparison: a build of the service on its own dataset.
pub struct Side {
    pub name: String,
    pub seeded: Seeded,
    pub rounds: Vec<LoadRound>,
    /// WAL written during each round (the whole cluster's), in bytes.
    pub wal: Vec<f64>,
    pub per_request: Counters,
    pub peak_rss: u64,
}

impl Side {
    pub fn requests(&self) -> u64 {
        self.rounds
            .iter()
            .map(|r| r.recorder.successes() + r.recorder.failures())
            .sum()
    }

    pub fn wal_per_request(&self) -> f64 {
        self.wal.iter().sum::<f64>() / self.requests().max(1) as f64
    }

    pub fn recorders(&self) -> Vec<&Recorder> {
        self.rounds.iter().map(|r| &r.recorder).collect()
    }
}

pub struct CompareResults<'a> {
    pub config: &'a Config,
    pub machine: Machine,
    pub baseline: Side,
    pub current: Side,
    pub elapsed: Duration,
    /// The part of `bench events` every round ran (`BENCH_COMPARE_STREAMS`).
    pub part: Part,
}

/// The baseline's build, as bench/run.sh passes it.
fn baseline_config(config: &Config) -> Result<(String, Config), Error> {
    let required = |name: &str| -> Result<PathBuf, Error> {
        let value: String = config::var(name, String::new())?;
        if value.is_empty() {
            return Err(format!(
                "{name} is not set: run `just bench compare [REV]`, which builds the baseline"
            )
            .into());
        }
        Ok(PathBuf::from(value))
    };
    let mut baseline = config.clone();
    baseline.server_binary = required("BENCH_BASELINE_BIN")?;
    baseline.seed_file = required("BENCH_BASELINE_DIR")?.join("bench/seed.sql");
    let rev = config::var("BENCH_BASELINE_REV", "baseline".to_owned())?;
    Ok((rev, baseline))
}

pub fn run(config: &Config, placement: &Placement) -> Result<(), Error> {
    let started = Instant::now();
    let part = compared_part()?;
    std::fs::create_dir_all(crate::suite::WORK_DIR)?;
    let (rev, baseline_config) = baseline_config(config)?;
    let admin = dataset::admin(config)?;
    let machine = Machine::describe(&admin, placement)?;
    println!("placement: {}", machine.placement);
    let hashes = Hashes::new(config.bcrypt_cost)?;
    let old = launch(&baseline_config, placement, &BASELINE, &hashes)?;
    let new = launch(config, placement, &DEFAULT, &hashes)?;
    // Both loads run on one runtime: the other's only held the logins.
    let runtime = &new.runtime;
    let sides = [(&old, rev.as_str()), (&new, "current")];

    println!("warming up for {} s each", config.warmup.as_secs());
    for (launched, _) in sides {
        runtime.block_on(load::mixed(
            launched.server.addr,
            launched.workload.clone(),
            config.connections,
            config.warmup,
            0,
        ))?;
    }
    sleep(STATS_SETTLE);
    let before = [
        Counters::read(&admin, BASELINE.database)?,
        Counters::read(&admin, DEFAULT.database)?,
    ];

    let databases = [
        dataset::database(config, &BASELINE)?,
        dataset::database(config, &DEFAULT)?,
    ];
    let mut rounds: [Vec<LoadRound>; 2] = [Vec::new(), Vec::new()];
    let mut wal: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=config.rounds {
        let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        for side in order {
            let (launched, name) = sides[side];
            let wal_before = wal_position(&admin)?;
            let (result, delivered) = run_part(
                config,
                runtime,
                &launched.server,
                &launched.workload,
                &databases[side],
                part,
                round as u64,
            )?;
            if let Some(ended) = delivered.map(|d| d.ended).filter(|e| !e.is_empty()) {
                println!("round {round}, {name}: streams ended early: {ended:?}");
            }
            wal[side].push(wal_position(&admin)? - wal_before);
            println!(
                "round {round}, {name}: {} req/s, {} errors",
                thousands(result.throughput()),
                result.recorder.failures()
            );
            rounds[side].push(result);
        }
    }
    sleep(STATS_SETTLE);
    let after = [
        Counters::read(&admin, BASELINE.database)?,
        Counters::read(&admin, DEFAULT.database)?,
    ];

    let [old_rounds, new_rounds] = rounds;
    let [old_wal, new_wal] = wal;
    let baseline = finish(old, rev, old_rounds, old_wal, [before[0], after[0]])?;
    let current = finish(
        new,
        "current".to_owned(),
        new_rounds,
        new_wal,
        [before[1], after[1]],
    )?;
    let results = CompareResults {
        config,
        machine,
        baseline,
        current,
        elapsed: started.elapsed(),
        part,
    };
    publish(
        Path::new("bench/RESULTS-compare.md"),
        &crate::compare_report::render(&results)?,
    )
}

/// The part of `bench events` each round runs: the mixed workload alone, or with
/// `BENCH_COMPARE_STREAMS=console` (or `staff`) the `BENCH_STREAMS` streams of that
/// part open too, so that the ratio compares the two builds' cost of streams side by
/// side; the spread between separate `bench events` runs hides differences of a few
/// points.
fn compared_part() -> Result<Part, Error> {
    let raw: String = config::var("BENCH_COMPARE_STREAMS", String::new())?;
    match raw.trim() {
        "" | "none" => Ok(Part::Without),
        name => Part::from_name(name).ok_or_else(|| {
            format!(
                "BENCH_COMPARE_STREAMS: {name:?} is none of none, {}",
                Part::NAMES
            )
            .into()
        }),
    }
}

/// Stops a side's server and keeps what the report needs; `counters` are its
/// database's before and after the rounds.
fn finish(
    launched: Launched,
    name: String,
    rounds: Vec<LoadRound>,
    wal: Vec<f64>,
    [before, after]: [Counters; 2],
) -> Result<Side, Error> {
    let peak_rss = launched.server.peak_rss()?;
    launched.server.stop()?;
    let mut side = Side {
        name,
        seeded: launched.seeded,
        rounds,
        wal,
        per_request: Counters::default(),
        peak_rss,
    };
    side.per_request = after.per_request(before, side.requests());
    Ok(side)
}

/// The cluster's WAL position, in bytes.
fn wal_position(admin: &Psql) -> Result<f64, Error> {
    Ok(admin
        .value("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")?
        .parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_divided_by_the_requests() {
        let before = Counters {
            transactions: 100.0,
            inserted: 10.0,
            updated: 5.0,
        };
        let after = Counters {
            transactions: 300.0,
            inserted: 30.0,
            updated: 25.0,
        };
        assert_eq!(
            after.per_request(before, 100),
            Counters {
                transactions: 2.0,
                inserted: 0.2,
                updated: 0.2,
            }
        );
        assert_eq!(after.per_request(after, 0), Counters::default());
    }
}
