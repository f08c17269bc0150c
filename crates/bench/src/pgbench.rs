//! The database's ceiling: pgbench running the service's statements in the service's
//! mix, one script per share of [`mix::MIX`], composed from the fragments in
//! bench/pgbench/ (see its README).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::dataset::Size;
use crate::mix::{self, Endpoint, Role};
use crate::recorder::{Recorder, Summary};
use crate::Error;

macro_rules! fragment {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../bench/pgbench/", $name)),
        )
    };
}

/// The fragments, built into the binary so that a script always matches its build.
const FRAGMENTS: [(&str, &str); 13] = [
    fragment!("random_ticket.sql"),
    fragment!("ticket_author.sql"),
    fragment!("staff.sql"),
    fragment!("skip_canceled.sql"),
    fragment!("auth.sql"),
    fragment!("confirm.sql"),
    fragment!("find_visible.sql"),
    fragment!("list_own.sql"),
    fragment!("list_all.sql"),
    fragment!("list_messages.sql"),
    fragment!("add_message.sql"),
    fragment!("open_ticket.sql"),
    fragment!("append_events.sql"),
];

/// The scripts' constant parameters, `-D name=value` each.
const CONSTANTS: [(&str, &str); 17] = [
    // The service fetches one row more than the page to know whether another page
    // follows: `limit=20`, and the default limit of 100 for messages.
    ("fetch_tickets", "21"),
    ("fetch_messages", "101"),
    ("topic", "Bench ticket"),
    (
        "text",
        "Any news about this? The parcel has still not arrived.",
    ),
    ("pending", "pending"),
    ("canceled", "canceled"),
    ("normal", "normal"),
    ("request", "request"),
    ("response", "response"),
    // What the domain binds for a request or a response: the statuses that take it,
    // that it moves the ticket by one version, and the message types only staff see.
    ("accepting", "{pending,resolved,unresolved}"),
    ("moves", "true"),
    ("increment", "1"),
    ("internal_types", "{note}"),
    // The events' types and internal flags of each write (see `events_of`).
    ("message_events", "{message.created}"),
    ("message_events_internal", "{f}"),
    ("open_events", "{ticket.created,message.created}"),
    ("open_events_internal", "{f,f}"),
];

/// Fraction of transactions pgbench logs: enough for percentiles, little to write.
const SAMPLING_RATE: f64 = 0.1;

pub struct Pgbench {
    binary: PathBuf,
    url: String,
    clients: usize,
    /// Script path, weight and the endpoint it stands for, in `-f` order.
    scripts: Vec<(PathBuf, u32, Endpoint)>,
    defines: Vec<(&'static str, String)>,
    logs: PathBuf,
}

pub struct Round {
    pub tps: f64,
    pub failed: u64,
    /// Latencies of the sampled transactions, by endpoint label.
    pub latencies: Recorder,
}

impl Round {
    pub fn endpoint(&self, endpoint: Endpoint) -> Option<Summary> {
        self.latencies.summary(endpoint.label())
    }
}

impl Pgbench {
    /// Writes the composed scripts under `work`.
    pub fn prepare(size: &Size, url: &str, clients: usize, work: &Path) -> Result<Self, Error> {
        let dir = work.join("pgbench");
        std::fs::create_dir_all(&dir)?;
        let mut scripts = Vec::new();
        for share in &mix::MIX {
            let script = compose(share.endpoint, share.role)?;
            let path = dir.join(format!(
                "{}_{}.sql",
                share
                    .endpoint
                    .statement_file(share.role)
                    .trim_end_matches(".sql"),
                share.role.label()
            ));
            std::fs::write(&path, script)?;
            scripts.push((path, share.weight, share.endpoint));
        }
        let mut defines = vec![
            ("tickets", size.tickets.to_string()),
            ("staff", size.staff.to_string()),
            ("customers", size.customers().to_string()),
        ];
        defines.extend(
            CONSTANTS
                .iter()
                .map(|&(name, value)| (name, value.to_owned())),
        );
        Ok(Self {
            binary: find_binary()?,
            url: url.to_owned(),
            clients,
            scripts,
            defines,
            logs: dir.join("logs"),
        })
    }

    /// One run of `duration`; `record` keeps a sample of per-transaction latencies.
    pub fn run(&self, duration: Duration, record: bool) -> Result<Round, Error> {
        if self.logs.exists() {
            std::fs::remove_dir_all(&self.logs)?;
        }
        std::fs::create_dir_all(&self.logs)?;
        let mut command = Command::new(&self.binary);
        command
            .args(["-n", "-M", "prepared", "-j", "1"])
            .arg("-c")
            .arg(self.clients.to_string())
            .arg("-T")
            .arg(duration.as_secs().max(1).to_string());
        if record {
            command
                .arg("--log")
                .arg(format!("--sampling-rate={SAMPLING_RATE}"))
                .arg(format!("--log-prefix={}", self.logs.join("tx").display()));
        }
        for (name, value) in &self.defines {
            command.arg("-D").arg(format!("{name}={value}"));
        }
        for (path, weight, _) in &self.scripts {
            command
                .arg("-f")
                .arg(format!("{}@{weight}", path.display()));
        }
        let output = command.arg(&self.url).output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!(
                "pgbench failed ({}): {}\n{}",
                output.status,
                stderr.trim(),
                stdout.trim()
            )
            .into());
        }
        let tps = field(&stdout, "tps = ")?;
        // pgbench 15 and later count failed transactions; earlier ones abort instead.
        let failed = field(&stdout, "number of failed transactions: ").unwrap_or(0.0);
        let latencies = if record {
            self.read_logs()?
        } else {
            Recorder::default()
        };
        Ok(Round {
            tps,
            failed: failed as u64,
            latencies,
        })
    }

    /// Per-transaction log lines: `client tx latency_us script_no epoch epoch_us …`.
    fn read_logs(&self) -> Result<Recorder, Error> {
        let mut recorder = Recorder::default();
        for entry in std::fs::read_dir(&self.logs)? {
            let text = std::fs::read_to_string(entry?.path())?;
            for line in text.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(micros), Some(script)) = (fields.get(2), fields.get(3)) else {
                    continue;
                };
                let micros: u64 = micros.parse()?;
                let script: usize = script.parse()?;
                let (_, _, endpoint) = self
                    .scripts
                    .get(script)
                    .ok_or_else(|| format!("pgbench logged unknown script {script}"))?;
                recorder.success(endpoint.label(), Duration::from_micros(micros))?;
            }
        }
        Ok(recorder)
    }

    pub fn describe(&self) -> String {
        format!(
            "pgbench -n -M prepared -c {} -j 1 -T <secs> with {} scripts ({})",
            self.clients,
            self.scripts.len(),
            self.binary.display()
        )
    }
}

/// What a write appends to the event log, as the placeholders of `append_events.sql`
/// and their values: the ticket, and its events' types, internal flags and data (the
/// adapter's `EventData`, encoded as in crates/postgres/src/events.rs). `None` for
/// reads.
fn events_of(endpoint: Endpoint) -> Option<[(&'static str, &'static str); 4]> {
    let (ticket, types, internal, data) = match endpoint {
        Endpoint::GetTicket | Endpoint::ListTickets | Endpoint::ListMessages => return None,
        Endpoint::PostMessage => (
            ":t",
            ":message_events",
            ":message_events_internal",
            "ARRAY[jsonb_build_object('message_id', currval('messages_id_seq'), \
             'type', :kind::text)]",
        ),
        Endpoint::OpenTicket => (
            "currval('tickets_id_seq')",
            ":open_events",
            ":open_events_internal",
            "ARRAY[jsonb_build_object('topic', :topic::text, 'status', :pending::text, \
             'priority', :normal::text), \
             jsonb_build_object('message_id', currval('messages_id_seq'), \
             'type', :request::text)]",
        ),
    };
    Some([
        (":event_ticket", ticket),
        (":event_types", types),
        (":event_internal", internal),
        (":event_data", data),
    ])
}

/// One transaction of the mix: who and which ticket, then the caller's confirmation
/// and the endpoint's statement in one round trip; for a write, its events and
/// `COMMIT` after it.
fn compose(endpoint: Endpoint, role: Role) -> Result<String, Error> {
    let mut parts: Vec<&str> = match role {
        Role::Customer => vec!["random_ticket.sql"],
        Role::Staff => vec!["staff.sql"],
    };
    if endpoint == Endpoint::PostMessage {
        parts.push("skip_canceled.sql");
    }
    if role == Role::Customer {
        // After skipping a canceled ticket, so that the author is the new ticket's.
        parts.push("ticket_author.sql");
    }
    let events = events_of(endpoint);
    let write = events.is_some();
    let mut script = String::new();
    for part in parts {
        script.push_str(fragment_text(part)?);
        script.push('\n');
    }
    // The confirmation and the endpoint's statement travel in one round trip, as the
    // adapter sends them (`query::confirmed`, `Tx::confirming`); a write's statement
    // file ends the pipeline itself, after which its events go with COMMIT.
    script.push_str(if write {
        "\\startpipeline\nBEGIN;\n"
    } else {
        "\\startpipeline\n"
    });
    let confirmation = if write { "confirm.sql" } else { "auth.sql" };
    for part in [confirmation, endpoint.statement_file(role)] {
        script.push_str(fragment_text(part)?);
        script.push('\n');
    }
    if write {
        script.push_str(fragment_text("append_events.sql")?);
    } else {
        script.push_str("\\endpipeline\n");
    }
    for (placeholder, value) in events.into_iter().flatten() {
        script = script.replace(placeholder, value);
    }
    // A message's type follows the role, and pgbench cannot `\set` a string.
    let kind = match role {
        Role::Customer => ":request",
        Role::Staff => ":response",
    };
    Ok(script.replace(":kind", kind))
}

fn fragment_text(name: &str) -> Result<&'static str, Error> {
    FRAGMENTS
        .iter()
        .find(|(fragment, _)| *fragment == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| format!("no pgbench fragment {name}").into())
}

/// The number after `prefix` on pgbench's summary line.
fn field(stdout: &str, prefix: &str) -> Result<f64, Error> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| format!("no {prefix:?} in pgbench's output:\n{stdout}"))?
        .parse()
        .map_err(|e| format!("{prefix:?} in pgbench's output: {e}").into())
}

/// `pgbench` on the PATH, else in Debian's versioned directory (the newest).
fn find_binary() -> Result<PathBuf, Error> {
    if Command::new("pgbench")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(PathBuf::from("pgbench"));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    let path = entry.path().join("bin/pgbench");
                    path.exists().then_some((version, path))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().map(|(_, path)| path).ok_or_else(|| {
        "pgbench not found: install it with PostgreSQL's client tools \
         (Debian: apt-get install postgresql-client)"
            .into()
    })
}

/// Medians of the per-endpoint p50/p99 across rounds, by endpoint label.
pub fn endpoint_medians(rounds: &[Round]) -> BTreeMap<&'static str, (Duration, Duration)> {
    let mut medians = BTreeMap::new();
    for endpoint in Endpoint::ALL {
        let summaries: Vec<Summary> = rounds.iter().filter_map(|r| r.endpoint(endpoint)).collect();
        if !summaries.is_empty() {
            medians.insert(
                endpoint.label(),
                (
                    crate::report::median_duration(summaries.iter().map(|s| s.p50)),
                    crate::report::median_duration(summaries.iter().map(|s| s.p99)),
                ),
            );
        }
    }
    medians
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_confirm_the_caller_with_the_statement() {
        let reply = compose(Endpoint::PostMessage, Role::Staff).unwrap();
        let skip = reply.find("% 10 = 7").unwrap();
        let confirm = reply.find("SELECT confirm_caller(:uid").unwrap();
        let insert = reply.find("INSERT INTO messages").unwrap();
        assert!(skip < confirm && confirm < insert);
        assert!(reply.contains(":response::message_type"));
        assert!(!reply.contains(":kind"));

        let read = compose(Endpoint::GetTicket, Role::Customer).unwrap();
        let at = |needle: &str| read.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("\\set uid") < at("\\startpipeline"));
        assert!(at("\\startpipeline") < at("AND is_active"));
        assert!(at("AND is_active") < at("FROM tickets t"));
        assert!(!read.contains("confirm_caller"));
        assert!(at("FROM tickets t") < at("\\endpipeline"));
        assert!(!read.contains("% 10 = 7"));
        assert!(!read.contains("BEGIN") && !read.contains("ticket_events"));
    }

    #[test]
    fn writes_are_a_transaction_that_appends_their_events() {
        for (endpoint, role, ticket) in [
            (Endpoint::PostMessage, Role::Customer, "SELECT :t, :uid"),
            (
                Endpoint::OpenTicket,
                Role::Customer,
                "SELECT currval('tickets_id_seq'), :uid",
            ),
        ] {
            let script = compose(endpoint, role).unwrap();
            let at = |needle: &str| script.find(needle).unwrap_or_else(|| panic!("{needle}"));
            assert!(at("BEGIN;") < at("confirm_caller"));
            assert!(at("confirm_caller") < at("INSERT INTO messages"));
            assert!(at("INSERT INTO messages") < at("INSERT INTO ticket_events"));
            assert!(at("INSERT INTO ticket_events") < at("COMMIT;"));
            assert!(script.contains(ticket), "{script}");
            assert!(script.contains("currval('messages_id_seq')"));
            assert!(!script.contains(":event_"), "{script}");
            assert_eq!(script.matches("\\startpipeline").count(), 2);
            assert_eq!(script.matches("\\endpipeline").count(), 2);
        }
    }

    #[test]
    fn reads_summary_fields() {
        let out = "number of transactions actually processed: 1234\n\
                   number of failed transactions: 0 (0.000%)\n\
                   tps = 61.700000 (without initial connection time)\n";
        assert_eq!(field(out, "tps = ").unwrap(), 61.7);
        assert_eq!(
            field(out, "number of transactions actually processed: ").unwrap(),
            1234.0
        );
        assert_eq!(field(out, "number of failed transactions: ").unwrap(), 0.0);
        assert!(field(out, "latency average = ").is_err());
    }
}
