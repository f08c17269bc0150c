//! Where the processes run. With two or more CPUs the server gets the first one and the
//! load generator (this process, and the pgbench and psql it starts) the second, by
//! `taskset`; PostgreSQL is shared and runs wherever the kernel puts it. With one CPU
//! nothing is pinned.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::Error;

/// Set on the re-executed, pinned process, so that it does not re-execute again.
const PINNED_ENV: &str = "BENCH_PINNED_TO";

pub struct Placement {
    /// CPUs online on the machine, whatever this process's affinity.
    pub online: Vec<u32>,
    pub server_cpu: Option<u32>,
    pub bench_cpu: Option<u32>,
}

impl Placement {
    /// Re-executes this process under `taskset` on the load generator's CPU when the
    /// machine has a second one (and returns only in the pinned process), else goes on
    /// unpinned.
    pub fn pin_self() -> Result<Self, Error> {
        let online = online_cpus()?;
        let (server_cpu, bench_cpu) = match online.as_slice() {
            [server, bench, ..] if has_taskset() => (*server, *bench),
            _ => {
                return Ok(Self {
                    online,
                    server_cpu: None,
                    bench_cpu: None,
                })
            }
        };
        if std::env::var_os(PINNED_ENV).is_none() {
            let error = Command::new("taskset")
                .arg("-c")
                .arg(bench_cpu.to_string())
                .arg(std::env::current_exe()?)
                .args(std::env::args_os().skip(1))
                .env(PINNED_ENV, bench_cpu.to_string())
                .exec();
            return Err(format!("cannot re-run the benchmark under taskset: {error}").into());
        }
        Ok(Self {
            online,
            server_cpu: Some(server_cpu),
            bench_cpu: Some(bench_cpu),
        })
    }

    /// CPUs the server may use: its own, or all of them.
    pub fn server_cores(&self) -> usize {
        if self.server_cpu.is_some() {
            1
        } else {
            self.online.len()
        }
    }

    pub fn describe(&self) -> String {
        match (self.server_cpu, self.bench_cpu) {
            (Some(server), Some(bench)) => format!(
                "server pinned to CPU {server}; load generator, pgbench and psql pinned to \
                 CPU {bench}; PostgreSQL unpinned (shared by all)"
            ),
            _ => "nothing pinned (one CPU, or no taskset): server, load generator, pgbench \
                  and PostgreSQL share every CPU"
                .to_owned(),
        }
    }
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .output()
        .is_ok_and(|out| out.status.success())
}

fn online_cpus() -> Result<Vec<u32>, Error> {
    let raw = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    parse_cpu_list(raw.trim())
}

/// `0-3,6` → `[0, 1, 2, 3, 6]`.
fn parse_cpu_list(list: &str) -> Result<Vec<u32>, Error> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<u32>()?..=last.parse::<u32>()?),
            None => cpus.push(part.parse()?),
        }
    }
    if cpus.is_empty() {
        return Err(format!("no CPU in the online list {list:?}").into());
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(parse_cpu_list("0-1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("3").unwrap(), vec![3]);
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("a-b").is_err());
    }
}
