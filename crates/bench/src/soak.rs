//! `bench soak`: the default suite's mixed workload without pause for `BENCH_SOAK_SECS`
//! while the server's resident memory is sampled; the targets (issue 4 §5) are
//! no failed request and memory that stays flat once warmed up.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::dataset::{self, Hashes, DEFAULT};
use crate::load;
use crate::machine::{CpuCounters, Machine};
use crate::mix::Endpoint;
use crate::placement::Placement;
use crate::recorder::Recorder;
use crate::report::{
    dataset_section, errors_table, latency, machine_section, mib, publish, thousands, verdict,
    Table,
};
use crate::server::Server;
use crate::suite::{launch, Launched, WORK_DIR};
use crate::Error;

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Memory may grow while caches, pools and buffers fill: samples before the warm-up's
/// end do not count (60 s, or 20% of a shorter run).
const MAX_WARMUP: Duration = Duration::from_secs(60);
const WARMUP_SHARE: f64 = 0.2;
/// The largest sample after warm-up may exceed the smallest by this factor at most.
const MAX_GROWTH: f64 = 1.10;

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since the workload began.
    pub at: Duration,
    /// `VmRSS`, in bytes.
    pub rss: u64,
}

/// The least and the most memory among the samples after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
    pub samples: usize,
}

impl Range {
    pub fn growth(&self) -> f64 {
        self.max as f64 / self.min.max(1) as f64
    }
}

pub fn warmup(run: Duration) -> Duration {
    MAX_WARMUP.min(run.mul_f64(WARMUP_SHARE))
}

/// The samples taken at or after `warmup`; `None` with fewer than two, since one sample
/// cannot show a trend.
pub fn after_warmup(samples: &[Sample], warmup: Duration) -> Option<Range> {
    let kept: Vec<u64> = samples
        .iter()
        .filter(|s| s.at >= warmup)
        .map(|s| s.rss)
        .collect();
    match (kept.iter().min(), kept.iter().max()) {
        (Some(&min), Some(&max)) if kept.len() >= 2 => Some(Range {
            min,
            max,
            samples: kept.len(),
        }),
        _ => None,
    }
}

/// The verdict: flat when the largest sample after warm-up is at most [`MAX_GROWTH`]
/// times the smallest; not flat when there is too little to judge.
pub fn is_flat(range: Option<Range>) -> bool {
    range.is_some_and(|r| r.max as f64 <= MAX_GROWTH * r.min as f64)
}

struct SoakResults {
    machine: Machine,
    seeded: dataset::Seeded,
    recorder: Recorder,
    seconds: f64,
    samples: Vec<Sample>,
    warmup: Duration,
    machine_busy: f64,
    elapsed: Duration,
}

pub fn run(config: &Config, placement: &Placement) -> Result<(), Error> {
    let started = Instant::now();
    std::fs::create_dir_all(WORK_DIR)?;
    let machine = Machine::describe(&dataset::admin(config)?, placement)?;
    println!("placement: {}", machine.placement);
    let hashes = Hashes::new(config.bcrypt_cost)?;
    let Launched {
        seeded,
        runtime,
        server,
        workload,
        ..
    } = launch(config, placement, &DEFAULT, &hashes)?;
    let duration = config.soak_duration;
    println!(
        "soak: mixed workload on {} connections for {} s, VmRSS every {} s",
        config.connections,
        duration.as_secs(),
        SAMPLE_EVERY.as_secs()
    );
    let machine_before = CpuCounters::read()?;
    let begun = Instant::now();
    let (recorder, samples) = runtime.block_on(async {
        tokio::join!(
            load::mixed(server.addr, workload, config.connections, duration, 0),
            sample_rss(&server, begun, duration)
        )
    });
    let seconds = begun.elapsed().as_secs_f64();
    let machine_busy = CpuCounters::read()?.busy_since(machine_before);
    server.stop()?;
    let results = SoakResults {
        machine,
        seeded,
        recorder: recorder?,
        seconds,
        samples: samples?,
        warmup: warmup(duration),
        machine_busy,
        elapsed: started.elapsed(),
    };
    publish(
        Path::new("bench/RESULTS-soak.md"),
        &render(config, &results)?,
    )?;
    let failures = results.recorder.failures();
    let range = after_warmup(&results.samples, results.warmup);
    match (failures, is_flat(range)) {
        (0, true) => Ok(()),
        (0, false) => Err("the server's memory did not stay flat (see the report)".into()),
        (n, _) => Err(format!("{n} requests failed (see the report)").into()),
    }
}

/// `VmRSS` now and every [`SAMPLE_EVERY`] until `duration` after `begun`.
async fn sample_rss(
    server: &Server,
    begun: Instant,
    duration: Duration,
) -> Result<Vec<Sample>, Error> {
    let mut samples = Vec::new();
    loop {
        let at = begun.elapsed();
        let rss = server.rss()?;
        println!("{:>5} s: VmRSS {}", at.as_secs(), mib(rss));
        samples.push(Sample { at, rss });
        let Some(left) = duration.checked_sub(begun.elapsed()) else {
            return Ok(samples);
        };
        if left.is_zero() {
            return Ok(samples);
        }
        tokio::time::sleep(left.min(SAMPLE_EVERY)).await;
    }
}

fn render(config: &Config, r: &SoakResults) -> Result<String, Error> {
    let mut out = String::new();
    writeln!(
        out,
        "# Soak results (default dataset)\n\n\
         Written by `just bench soak` in {:.1} minutes. One uninterrupted run; the machine \
         may have been busy with other work (see the load average, and how busy its CPUs \
         were below).\n",
        r.elapsed.as_secs_f64() / 60.0
    )?;
    out.push_str(&machine_section(&r.machine));
    out.push_str(&dataset_section(&DEFAULT, &r.seeded));

    let requests = r.recorder.successes() + r.recorder.failures();
    let overall = r.recorder.overall()?;
    writeln!(
        out,
        "## Sustained mixed workload\n\n\
         {:.0} s without pause of `just bench`'s mixed workload: {} keep-alive connections, \
         each request by a random logged-in user ({} customers, {} staff). All CPUs of the \
         machine were {:.0}% busy meanwhile.\n",
        r.seconds,
        config.connections,
        config.customers,
        r.seeded.staff,
        r.machine_busy * 100.0
    )?;
    let mut table = Table::new(&[">requests", ">requests/s", ">errors", ">p50", ">p99"]);
    table.row(&[
        thousands(requests as f64),
        thousands(r.recorder.successes() as f64 / r.seconds),
        r.recorder.failures().to_string(),
        latency(overall.p50),
        latency(overall.p99),
    ]);
    writeln!(out, "{}", table.finish())?;
    let mut table = Table::new(&["endpoint", ">requests", ">p50", ">p99"]);
    for endpoint in Endpoint::ALL {
        if let Some(s) = r.recorder.summary(endpoint.label()) {
            table.row(&[
                format!("`{}`", endpoint.label()),
                thousands(s.count as f64),
                latency(s.p50),
                latency(s.p99),
            ]);
        }
    }
    writeln!(out, "{}", table.finish())?;

    writeln!(
        out,
        "## Resident memory\n\n\
         The server's `VmRSS` (`/proc/<pid>/status`) every {} s; samples before {} s are \
         the warm-up's.\n",
        SAMPLE_EVERY.as_secs(),
        r.warmup.as_secs()
    )?;
    let mut table = Table::new(&[">at", ">VmRSS", ""]);
    for sample in &r.samples {
        table.row(&[
            format!("{} s", sample.at.as_secs()),
            mib(sample.rss),
            if sample.at < r.warmup {
                "warm-up".to_owned()
            } else {
                String::new()
            },
        ]);
    }
    writeln!(out, "{}", table.finish())?;

    let failures = r.recorder.failures();
    match errors_table(&[&r.recorder], 0) {
        Some(table) => writeln!(out, "## Errors\n\n{table}")?,
        None => writeln!(out, "## Errors\n\nNone: every request answered 2xx.\n")?,
    }

    let range = after_warmup(&r.samples, r.warmup);
    let measured = range.map_or_else(
        || "too few samples after warm-up".to_owned(),
        |range| {
            format!(
                "min {}, max {} (×{:.3}, {} samples)",
                mib(range.min),
                mib(range.max),
                range.growth(),
                range.samples
            )
        },
    );
    let mut table = Table::new(&["target", "measured", "verdict"]);
    table.row(&[
        "no failed request".to_owned(),
        failures.to_string(),
        verdict(failures == 0).to_owned(),
    ]);
    table.row(&[
        format!("VmRSS flat after warm-up: max ≤ {MAX_GROWTH:.2} × min"),
        measured,
        verdict(is_flat(range)).to_owned(),
    ]);
    writeln!(out, "## Targets (issue 4)\n\n{}", table.finish())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn samples(rss_mib: &[u64]) -> Vec<Sample> {
        rss_mib
            .iter()
            .zip(0u64..)
            .map(|(&rss, i)| Sample {
                at: SAMPLE_EVERY * u32::try_from(i).unwrap(),
                rss: rss * MIB,
            })
            .collect()
    }

    #[test]
    fn warmup_is_a_minute_or_a_fifth_of_a_short_run() {
        assert_eq!(warmup(Duration::from_secs(600)), Duration::from_secs(60));
        assert_eq!(warmup(Duration::from_secs(100)), Duration::from_secs(20));
    }

    #[test]
    fn growth_during_warmup_does_not_count() {
        let run = samples(&[5, 12, 18, 19, 20, 20, 20, 20, 20]);
        let range = after_warmup(&run, Duration::from_secs(30)).unwrap();
        assert_eq!(
            (range.min, range.max, range.samples),
            (19 * MIB, 20 * MIB, 6)
        );
        assert!(is_flat(Some(range)));
    }

    #[test]
    fn growth_beyond_ten_percent_after_warmup_is_not_flat() {
        let exactly = samples(&[10, 10, 11]);
        assert!(is_flat(after_warmup(&exactly, Duration::ZERO)));
        let leaking = samples(&[20, 20, 21, 22, 23]);
        assert!(!is_flat(after_warmup(&leaking, Duration::from_secs(10))));
    }

    #[test]
    fn too_few_samples_after_warmup_are_not_flat() {
        let run = samples(&[10, 10, 10]);
        assert_eq!(
            after_warmup(&run, Duration::from_secs(20)).map(|r| r.samples),
            None
        );
        assert!(!is_flat(after_warmup(&run, Duration::from_secs(20))));
        assert!(!is_flat(after_warmup(&[], Duration::ZERO)));
    }
}
