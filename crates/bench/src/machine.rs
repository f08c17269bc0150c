//! What the results were measured on, and how busy the machine was.

use std::process::Command;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::placement::Placement;
use crate::psql::Psql;
use crate::Error;

pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub postgres: String,
    pub date: String,
    pub commit: String,
    pub load_average: String,
    pub placement: String,
}

impl Machine {
    pub fn describe(admin: &Psql, placement: &Placement) -> Result<Self, Error> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(
                || "unknown".to_owned(),
                |(_, model)| model.trim().to_owned(),
            );
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let settings = admin.rows(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), \
             current_setting('max_connections')",
        )?;
        let postgres = match settings.first().map(Vec::as_slice) {
            Some([version, buffers, connections]) => {
                format!("{version} (shared_buffers {buffers}, max_connections {connections})")
            }
            _ => "unknown".to_owned(),
        };
        Ok(Self {
            cpus: placement.online.len(),
            cpu_model,
            memory,
            kernel: first_line("/proc/sys/kernel/osrelease"),
            postgres,
            date: OffsetDateTime::now_utc().format(&Rfc3339)?,
            commit: commit(),
            load_average: first_line("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            placement: placement.describe(),
        })
    }
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match (
        git(&["rev-parse", "--short", "HEAD"]),
        git(&["status", "--porcelain", "--untracked-files=no"]),
    ) {
        (Some(head), Some(changes)) if !changes.is_empty() => {
            format!("{head} (with uncommitted changes)")
        }
        (Some(head), _) => head,
        (None, _) => "unknown".to_owned(),
    }
}

/// The machine-wide CPU counters of /proc/stat, to tell how busy all CPUs were.
#[derive(Clone, Copy)]
pub struct CpuCounters {
    busy: u64,
    total: u64,
}

impl CpuCounters {
    pub fn read() -> Result<Self, Error> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let line = stat.lines().next().ok_or("empty /proc/stat")?;
        let values = line
            .split_whitespace()
            .skip(1)
            .map(str::parse::<u64>)
            .collect::<Result<Vec<_>, _>>()?;
        let total: u64 = values.iter().take(8).sum();
        // idle and iowait are the 4th and 5th counters.
        let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
        Ok(Self {
            busy: total.saturating_sub(idle),
            total,
        })
    }

    /// Fraction of all CPUs' time that was busy since `earlier`.
    pub fn busy_since(self, earlier: CpuCounters) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}
