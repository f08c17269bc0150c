//! The release server as a child process: started on a free port with a fixed secret
//! and `RUST_LOG=warn` (unless told otherwise), pinned when the machine allows, watched
//! through /proc, and stopped with SIGINT (SIGKILL if it lingers) when dropped: nothing
//! sits in front of it that a SIGTERM's drain would serve.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use crate::client::Client;
use crate::config::Config;
use crate::placement::Placement;
use crate::Error;

/// The server's signing key during a run: fixed, so runs are alike; never a real secret.
const JWT_SECRET: &str = "bench-only-jwt-secret-0123456789abcdef0123456789";

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// What [`Server::ready`] asks for until it answers.
    ready_path: &'static str,
}

/// How a server runs beyond its database: what it logs (the `RUST_LOG` filter, and
/// whether as JSON lines, which a program can read back), a statement timeout other
/// than its configuration's, and any further settings.
pub struct Options {
    pub log_filter: &'static str,
    pub log_json: bool,
    pub statement_timeout: Option<Duration>,
    pub settings: &'static [(&'static str, &'static str)],
}

/// Warnings and errors as text, and the configured timeout: every measured run's.
pub const MEASURED: Options = Options {
    log_filter: "warn",
    log_json: false,
    statement_timeout: None,
    settings: &[],
};

impl Server {
    pub fn start(
        config: &Config,
        placement: &Placement,
        database_url: &str,
        log: &Path,
    ) -> Result<Self, Error> {
        Self::start_with(config, placement, database_url, log, &MEASURED)
    }

    pub fn start_with(
        config: &Config,
        placement: &Placement,
        database_url: &str,
        log: &Path,
        options: &Options,
    ) -> Result<Self, Error> {
        let mut command = pinned(placement, &config.server_binary);
        if let Some(timeout) = options.statement_timeout {
            command.env(
                "TICKETS__DATABASE__STATEMENT_TIMEOUT_MS",
                timeout.as_millis().to_string(),
            );
        }
        command
            .arg("serve")
            .env("TICKETS__AUTH__JWT_SECRET", JWT_SECRET)
            .env("TICKETS__AUTH__BCRYPT_COST", config.bcrypt_cost.to_string())
            .env("RUST_LOG", options.log_filter)
            .env(
                "RUST_LOG_FORMAT",
                if options.log_json { "json" } else { "text" },
            )
            .envs(options.settings.iter().copied());
        Self::spawn(command, config, database_url, log, "/health/ready")
    }

    /// The bare reference server (`bench bare-server`, this very binary), with the
    /// service's pool size and workers, on the same CPU as the service.
    pub fn start_bare(
        config: &Config,
        placement: &Placement,
        database_url: &str,
        log: &Path,
    ) -> Result<Self, Error> {
        let mut command = pinned(placement, &std::env::current_exe()?);
        command.arg("bare-server");
        // Its one route: a 404 for a missing ticket shows the database answering too.
        Self::spawn(command, config, database_url, log, "/tickets/1")
    }

    /// Starts `command` on a free port with the settings both servers share.
    fn spawn(
        mut command: Command,
        config: &Config,
        database_url: &str,
        log: &Path,
        ready_path: &'static str,
    ) -> Result<Self, Error> {
        let port = free_port()?;
        let log = File::create(log)?;
        let program = format!("{:?}", command.get_program());
        let child = command
            .env("DATABASE_URL", database_url)
            .env("TICKETS__SERVER__HOST", "127.0.0.1")
            .env("TICKETS__SERVER__PORT", port.to_string())
            .env(
                "TICKETS__DATABASE__POOL_MAX_SIZE",
                config.pool_size.to_string(),
            )
            .env("TICKETS__SERVER__WORKERS", config.workers.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        Ok(Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ready_path,
        })
    }

    /// Waits until the server answers its readiness request with 2xx (or, for the
    /// bare server, 404).
    pub async fn ready(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("the server exited early ({status}); see its log").into());
            }
            if let Ok(mut client) = Client::connect(self.addr).await {
                if let Ok(reply) = client.send(Method::GET, self.ready_path, None, None).await {
                    if reply.status.is_success() || reply.status == StatusCode::NOT_FOUND {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err("the server was not ready within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The pid of the server itself: `taskset` execs it, keeping its own pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the server has used so far.
    pub fn cpu_time(&self) -> Result<Duration, Error> {
        process_cpu_time(&format!("/proc/{}/stat", self.pid()))
    }

    /// Peak resident set size (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Result<u64, Error> {
        self.status_bytes("VmHWM")
    }

    /// Resident set size now (`VmRSS`), in bytes.
    pub fn rss(&self) -> Result<u64, Error> {
        self.status_bytes("VmRSS")
    }

    /// A `kB` field of the server's `/proc/<pid>/status`, in bytes.
    fn status_bytes(&self, field: &str) -> Result<u64, Error> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status_kib(&status, field)
            .map(|kib| kib * 1024)
            .ok_or_else(|| format!("no {field} in /proc/<pid>/status").into())
    }

    pub fn stop(mut self) -> Result<(), Error> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<(), Error> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// CPU time of a process from its `/proc/<pid>/stat` (`utime` + `stime`).
pub fn process_cpu_time(stat_path: &str) -> Result<Duration, Error> {
    let stat = std::fs::read_to_string(stat_path)?;
    cpu_time_of(&stat, clock_ticks()?)
}

fn cpu_time_of(stat: &str, ticks_per_second: u64) -> Result<Duration, Error> {
    // The command name may hold spaces and parentheses; the fields follow its last `)`.
    let after_name = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); the first after the name is field 3.
    let ticks: u64 = match (fields.get(11), fields.get(12)) {
        (Some(user), Some(system)) => user.parse::<u64>()? + system.parse::<u64>()?,
        _ => return Err("short /proc stat".into()),
    };
    Ok(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second as f64,
    ))
}

fn clock_ticks() -> Result<u64, Error> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

/// `program`, under `taskset` on the server's CPU when the machine allows: `taskset`
/// execs it, so the child's pid is the server's.
fn pinned(placement: &Placement, program: &Path) -> Command {
    match placement.server_cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.arg("-c").arg(cpu.to_string()).arg(program);
            taskset
        }
        None => Command::new(program),
    }
}

fn free_port() -> Result<u16, Error> {
    // The port is free when this returns; nothing else on a benchmark machine should
    // grab it in the moment before the server binds it.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks() {
        let stat = "42 (tick (s)) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 5 0";
        assert_eq!(cpu_time_of(stat, 100).unwrap(), Duration::from_secs(3));
        assert!(cpu_time_of("42 (x) S 1", 100).is_err());
    }

    #[test]
    fn reads_memory_fields_of_status() {
        let status = "Name:\ttickets\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(10240));
        assert_eq!(status_kib(status, "VmHWM"), Some(20480));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }
}
