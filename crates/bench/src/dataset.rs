//! The benchmark's datasets: their sizes, and seeding one into a fresh database with
//! the service's own migrations and `bench/seed.sql` (the configured build's, see
//! [`Config::seed_file`]).

use std::process::Command;
use std::time::Instant;

use crate::config::Config;
use crate::psql::{with_database, Psql};
use crate::Error;

/// The one password of every seeded user.
pub const PASSWORD: &str = "bench-password-1";

pub struct Size {
    pub name: &'static str,
    pub database: &'static str,
    pub users: i64,
    pub staff: i64,
    pub tickets: i64,
    /// The last customers, whose hash has the server's cost: the login benchmark's.
    pub login_users: i64,
    /// Whether `just bench` measures search on it (the target is the large
    /// dataset's; the smaller ones would only make the run longer).
    pub search: bool,
}

impl Size {
    pub fn customers(&self) -> i64 {
        self.users - self.staff
    }

    /// This dataset with `tickets` tickets instead (`BENCH_TICKETS`, for smoke runs),
    /// 20 for each user as in the default, and enough users for the logged-in
    /// customers; the database keeps its name.
    pub fn resized(&self, tickets: Option<i64>) -> Result<Size, Error> {
        let Some(tickets) = tickets else {
            return Ok(Size { ..*self });
        };
        if tickets < 1_000 {
            return Err(format!("BENCH_TICKETS={tickets}: at least 1000, please").into());
        }
        Ok(Size {
            tickets,
            users: (tickets / 20).max(500),
            ..*self
        })
    }
}

/// The scaling check's baseline.
pub const SMALL: Size = Size {
    name: "small",
    database: "tickets_bench_small",
    users: 500,
    staff: 20,
    tickets: 10_000,
    login_users: 50,
    search: false,
};

pub const DEFAULT: Size = Size {
    name: "default",
    database: "tickets_bench",
    users: 10_000,
    staff: 20,
    tickets: 200_000,
    login_users: 50,
    search: false,
};

/// `bench compare`'s copy of the default dataset, seeded by the baseline's migrations
/// and seed into a database of its own.
pub const BASELINE: Size = Size {
    name: "baseline",
    database: "tickets_bench_baseline",
    ..DEFAULT
};

/// Users grow with the tickets (20 tickets per user, as in the default) so that
/// `GET /users` scales too.
pub const LARGE: Size = Size {
    name: "large",
    database: "tickets_bench_large",
    users: 50_000,
    staff: 20,
    tickets: 1_000_000,
    login_users: 50,
    search: true,
};

/// The two bcrypt hashes of [`PASSWORD`] that seeded users carry.
pub struct Hashes {
    /// Cost 4: logging in hundreds of users before a run takes a moment.
    pub fast: String,
    /// The server's cost, for the login benchmark.
    pub slow: String,
}

impl Hashes {
    pub fn new(cost: u32) -> Result<Self, Error> {
        Ok(Self {
            fast: bcrypt::hash(PASSWORD, 4)?,
            slow: bcrypt::hash(PASSWORD, cost)?,
        })
    }
}

pub struct Seeded {
    pub seconds: f64,
    pub users: i64,
    pub staff: i64,
    pub tickets: i64,
    pub messages: i64,
}

pub fn admin(config: &Config) -> Result<Psql, Error> {
    Ok(Psql::new(with_database(&config.database_url, "postgres")?))
}

pub fn database(config: &Config, size: &Size) -> Result<Psql, Error> {
    Ok(Psql::new(with_database(
        &config.database_url,
        size.database,
    )?))
}

/// Drops and recreates the dataset's database, migrates it with the server binary, and
/// fills it.
pub fn seed(config: &Config, size: &Size, hashes: &Hashes) -> Result<Seeded, Error> {
    let started = Instant::now();
    println!(
        "seeding {} ({} users, {} tickets) into {}",
        size.name, size.users, size.tickets, size.database
    );
    let admin = admin(config)?;
    admin.execute(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        size.database
    ))?;
    admin.execute(&format!("CREATE DATABASE {}", size.database))?;
    let db = database(config, size)?;
    migrate(config, db.url())?;
    db.file(
        &config.seed_file,
        &[
            ("users", size.users.to_string()),
            ("staff", size.staff.to_string()),
            ("tickets", size.tickets.to_string()),
            ("login_users", size.login_users.to_string()),
            ("fast_hash", hashes.fast.clone()),
            ("slow_hash", hashes.slow.clone()),
        ],
    )?;
    // The seed's writes (about a gigabyte of WAL with the default dataset) start
    // checkpoints that would otherwise still be flushing, spread over minutes, while the
    // first rounds run. Flushed now, every run's rounds start from the same state. It
    // takes a superuser or `pg_checkpoint`: without, the run goes on as before.
    if let Err(e) = admin.execute("CHECKPOINT") {
        println!(
            "no CHECKPOINT after seeding ({e}); the first rounds may share the machine with it"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let counts = db.rows(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM users WHERE is_staff), \
         (SELECT count(*) FROM tickets), (SELECT count(*) FROM messages)",
    )?;
    let count = |i: usize| -> Result<i64, Error> {
        Ok(counts
            .first()
            .and_then(|row| row.get(i))
            .ok_or("no row counts")?
            .parse()?)
    };
    let seeded = Seeded {
        seconds,
        users: count(0)?,
        staff: count(1)?,
        tickets: count(2)?,
        messages: count(3)?,
    };
    println!(
        "seeded {} users ({} staff), {} tickets, {} messages in {seconds:.1} s",
        seeded.users, seeded.staff, seeded.tickets, seeded.messages
    );
    Ok(seeded)
}

fn migrate(config: &Config, url: &str) -> Result<(), Error> {
    let output = Command::new(&config.server_binary)
        .arg("migrate")
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", config.server_binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "tickets migrate failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// `bench clean`: drops every benchmark database.
pub fn drop_all(config: &Config) -> Result<(), Error> {
    let admin = admin(config)?;
    for size in [&SMALL, &DEFAULT, &LARGE, &BASELINE] {
        admin.execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            size.database
        ))?;
        println!("dropped {} (if it existed)", size.database);
    }
    Ok(())
}
