//! Helpers of the reports: medians, units, Markdown tables, and writing the file.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dataset::{Seeded, Size};
use crate::machine::Machine;
use crate::recorder::Recorder;
use crate::Error;

pub fn median_f64(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Resamples of [`median_interval`]. With the 24 rounds of a `bench events` run, the
/// bounds then moved by up to 0.3 points from one seed to another (30 seeds, one run's
/// ratios); the median of 24 values takes few distinct values, so the bounds step
/// between neighbouring rounds rather than drift.
const RESAMPLES: usize = 4_000;

/// A 95% interval of the median of `values` (a percentile bootstrap: the median of
/// [`RESAMPLES`] samples of them drawn with replacement, its 2.5th and 97.5th
/// percentiles). It says how far chance among these values may have moved their median;
/// not how far another run on a differently busy machine would land. The same values
/// always give the same interval (a fixed seed).
pub fn median_interval(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mut rng = StdRng::seed_from_u64(95);
    let mut sample = vec![0.0; values.len()];
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            for slot in &mut sample {
                *slot = values[rng.gen_range(0..values.len())];
            }
            median_f64(sample.iter().copied())
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let at = |quantile: f64| medians[((RESAMPLES - 1) as f64 * quantile).round() as usize];
    (at(0.025), at(0.975))
}

/// The verdict on a median against its lower limit, given its [`median_interval`]:
/// settled only when the whole interval is on one side.
pub fn interval_verdict(interval: (f64, f64), at_least: f64) -> &'static str {
    if interval.0 >= at_least {
        "met"
    } else if interval.1 < at_least {
        "**missed**"
    } else {
        "**not settled** (the interval spans the target)"
    }
}

pub fn median_duration(values: impl IntoIterator<Item = Duration>) -> Duration {
    Duration::from_secs_f64(median_f64(values.into_iter().map(|d| d.as_secs_f64())))
}

/// `1.23 ms`, `456 µs`.
pub fn latency(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros >= 1000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

/// `12.3 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}

/// `12,345`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// A Markdown table, built row by row.
pub struct Table {
    text: String,
}

impl Table {
    /// `header` cells starting with `>` are right-aligned (numbers).
    pub fn new(header: &[&str]) -> Self {
        let names: Vec<&str> = header.iter().map(|h| h.trim_start_matches('>')).collect();
        let rules: Vec<&str> = header
            .iter()
            .map(|h| if h.starts_with('>') { "---:" } else { "---" })
            .collect();
        let mut text = format!("| {} |\n", names.join(" | "));
        let _ = writeln!(text, "|{}|", rules.join("|"));
        Self { text }
    }

    pub fn row(&mut self, cells: &[String]) {
        let _ = writeln!(self.text, "| {} |", cells.join(" | "));
    }

    pub fn finish(self) -> String {
        self.text
    }
}

pub fn machine_section(machine: &Machine) -> String {
    let mut table = Table::new(&["", ""]);
    let rows = [
        (
            "CPUs",
            format!("{} online, {}", machine.cpus, machine.cpu_model),
        ),
        ("memory", machine.memory.clone()),
        ("kernel", machine.kernel.clone()),
        ("PostgreSQL", machine.postgres.clone()),
        ("load average at start", machine.load_average.clone()),
        ("placement", machine.placement.clone()),
        ("date", machine.date.clone()),
        ("commit", machine.commit.clone()),
    ];
    for (name, value) in rows {
        table.row(&[name.to_owned(), value]);
    }
    format!("## Machine\n\n{}\n", table.finish())
}

pub fn dataset_section(size: &Size, seeded: &Seeded) -> String {
    format!(
        "## Dataset\n\n{} users ({} staff), {} tickets, {} messages, seeded by \
         `bench/seed.sql` in {:.1} s into `{}`.\n\n",
        thousands(seeded.users as f64),
        seeded.staff,
        thousands(seeded.tickets as f64),
        thousands(seeded.messages as f64),
        seeded.seconds,
        size.database
    )
}

/// The failures of all runs, by what failed and why; `None` when there were none.
pub fn errors_table(recorders: &[&Recorder], pgbench_failed: u64) -> Option<String> {
    let mut all = Recorder::default();
    for recorder in recorders {
        all.add_errors(recorder);
    }
    if all.failures() == 0 && pgbench_failed == 0 {
        return None;
    }
    let mut table = Table::new(&["request", "cause", ">count"]);
    for ((label, cause), count) in &all.errors {
        table.row(&[(*label).to_owned(), cause.clone(), count.to_string()]);
    }
    if pgbench_failed > 0 {
        table.row(&[
            "pgbench".to_owned(),
            "failed transactions".to_owned(),
            pgbench_failed.to_string(),
        ]);
    }
    Some(table.finish())
}

/// The report's "Errors" section: [`errors_table`], or that there were none.
pub fn errors_section(recorders: &[&Recorder], pgbench_failed: u64) -> String {
    match errors_table(recorders, pgbench_failed) {
        Some(table) => format!("## Errors\n\n{table}\n"),
        None => "## Errors\n\nNone: every request of every run answered 2xx.\n\n".to_owned(),
    }
}

/// Prints the report and writes it to `path`.
pub fn publish(path: &Path, text: &str) -> Result<(), Error> {
    println!("\n{text}");
    std::fs::write(path, text)?;
    println!("written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_units() {
        assert_eq!(median_f64([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f64([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median_f64([]), 0.0);
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(latency(Duration::from_micros(1500)), "1.50 ms");
        assert_eq!(latency(Duration::from_micros(87)), "87 µs");
    }

    #[test]
    fn the_median_interval_holds_the_median_and_narrows_with_more_values() {
        let spread: Vec<f64> = (0..24).map(|i| 0.6 + 0.025 * f64::from(i)).collect();
        let (lo, hi) = median_interval(&spread);
        let median = median_f64(spread.iter().copied());
        assert!(lo < median && median < hi, "{lo} < {median} < {hi}");
        assert!(lo >= 0.6 && hi <= 1.2);
        let more: Vec<f64> = spread.iter().cycle().take(24 * 4).copied().collect();
        let (more_lo, more_hi) = median_interval(&more);
        assert!(
            more_hi - more_lo < hi - lo,
            "{more_lo}..{more_hi} vs {lo}..{hi}"
        );
        assert_eq!(
            median_interval(&spread),
            (lo, hi),
            "the same values, the same bounds"
        );
        assert_eq!(median_interval(&[0.9; 5]), (0.9, 0.9));
        assert_eq!(median_interval(&[]), (0.0, 0.0));
    }

    #[test]
    fn a_verdict_is_settled_only_by_the_whole_interval() {
        assert_eq!(interval_verdict((0.91, 0.96), 0.9), "met");
        assert_eq!(interval_verdict((0.80, 0.89), 0.9), "**missed**");
        assert!(interval_verdict((0.88, 0.93), 0.9).contains("not settled"));
    }

    #[test]
    fn tables_align_numbers_right() {
        let mut table = Table::new(&["name", ">n"]);
        table.row(&["a".into(), "1".into()]);
        assert_eq!(table.finish(), "| name | n |\n|---|---:|\n| a | 1 |\n");
    }

    #[test]
    fn errors_are_summed_across_runs() {
        assert!(errors_table(&[&Recorder::default()], 0).is_none());
        let mut a = Recorder::default();
        a.failure("POST /tickets", "HTTP 500".into());
        a.failure("POST /tickets", "HTTP 500".into());
        let mut b = Recorder::default();
        b.failure("POST /tickets", "HTTP 500".into());
        let table = errors_table(&[&a, &b], 2).unwrap();
        assert!(
            table.contains("| POST /tickets | HTTP 500 | 3 |"),
            "{table}"
        );
        assert!(table.contains("| pgbench | failed transactions | 2 |"));
    }
}
