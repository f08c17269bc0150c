//! `bench scaling`: the p50 of the first and of a deep page of `GET /tickets` (staff)
//! and `GET /users`, with 10,000 tickets and with 1,000,000; the target is that
//! the large dataset stays within 1.5× of the small one.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::config::Config;
use crate::dataset::{self, Hashes, Seeded, Size, LARGE, SMALL};
use crate::machine::Machine;
use crate::pages::{self, ListPages, PageLatency};
use crate::placement::Placement;
use crate::report::{latency, machine_section, publish, thousands, verdict, Table};
use crate::server::Server;
use crate::suite::WORK_DIR;
use crate::suite_report::ratio;
use crate::{sessions, Error};

const MAX_SLOWDOWN: f64 = 1.5;
const SAMPLES: usize = 200;

pub fn run(config: &Config, placement: &Placement) -> Result<(), Error> {
    let started = Instant::now();
    std::fs::create_dir_all(WORK_DIR)?;
    let machine = Machine::describe(&dataset::admin(config)?, placement)?;
    let hashes = Hashes::new(config.bcrypt_cost)?;
    let small_seeded = dataset::seed(config, &SMALL, &hashes)?;
    let large_seeded = dataset::seed(config, &LARGE, &hashes)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Both servers run at once (on the same CPU when pinned) and their pages are timed
    // in turn, so that the machine's noise cannot favour one dataset.
    let mut small_server = start(config, placement, &SMALL)?;
    let mut large_server = start(config, placement, &LARGE)?;
    let staff = [dataset::database(config, &SMALL)?
        .value("SELECT email FROM users WHERE is_staff ORDER BY id LIMIT 1")?];
    let measured = runtime.block_on(async {
        let mut lists = Vec::new();
        for (server, seeded) in [
            (&mut small_server, &small_seeded),
            (&mut large_server, &large_seeded),
        ] {
            server.ready().await?;
            // Both datasets begin with the same staff accounts.
            let sessions = sessions::open(server.addr, &staff, &[]).await?;
            let token = sessions.staff.first().ok_or("no staff session")?.clone();
            for (list, rows) in [("/tickets", seeded.tickets), ("/users", seeded.users)] {
                let depth = u64::try_from(rows / 2)?;
                lists.push(ListPages::open(server.addr, token.clone(), list, depth).await?);
            }
        }
        pages::measure(&mut lists, config.rounds, SAMPLES).await
    })?;
    small_server.stop()?;
    large_server.stop()?;
    let (small, large) = measured.split_at(measured.len() / 2);
    let text = render(
        config,
        &machine,
        started,
        [
            (&SMALL, &small_seeded, small),
            (&LARGE, &large_seeded, large),
        ],
    )?;
    publish(Path::new("bench/RESULTS-scaling.md"), &text)
}

fn start(config: &Config, placement: &Placement, size: &Size) -> Result<Server, Error> {
    let db = dataset::database(config, size)?;
    let log = Path::new(WORK_DIR).join(format!("server-{}.log", size.name));
    Server::start(config, placement, db.url(), &log)
}

type Measured<'a> = (&'a Size, &'a Seeded, &'a [PageLatency]);

fn render(
    config: &Config,
    machine: &Machine,
    started: Instant,
    [small, large]: [Measured<'_>; 2],
) -> Result<String, Error> {
    let mut out = String::new();
    writeln!(
        out,
        "# Benchmark results: pagination scaling\n\n\
         Written by `just bench scaling` in {:.1} minutes. Two servers, one on each dataset, \
         answer one request at a time in turn, as staff, `limit=20`; the deep page follows the \
         `Link` cursors (1,000 rows a page) to the middle of the list. p50: median of {} \
         rounds of {SAMPLES} requests per page.\n",
        started.elapsed().as_secs_f64() / 60.0,
        config.rounds
    )?;
    out.push_str(&machine_section(machine));
    let mut table = Table::new(&["dataset", ">users", ">tickets", ">messages", ">seeded in"]);
    for (size, seeded, _) in [small, large] {
        table.row(&[
            format!("{} (`{}`)", size.name, size.database),
            thousands(seeded.users as f64),
            thousands(seeded.tickets as f64),
            thousands(seeded.messages as f64),
            format!("{:.1} s", seeded.seconds),
        ]);
    }
    writeln!(out, "## Datasets\n\n{}", table.finish())?;

    let mut table = Table::new(&[
        "page",
        ">p50, 10,000 tickets",
        ">p50, 1,000,000 tickets",
        ">large ÷ small",
        "verdict (≤ 1.5×)",
    ]);
    let mut all_met = true;
    for (s, l) in small.2.iter().zip(large.2) {
        for (name, small_p50, large_p50, depth) in [
            ("first page", s.first, l.first, None),
            ("deep page", s.deep, l.deep, Some((s.depth, l.depth))),
        ] {
            let slowdown = ratio(large_p50, small_p50);
            all_met &= slowdown <= MAX_SLOWDOWN;
            let label = match depth {
                Some((small_depth, large_depth)) => format!(
                    "`GET {}`, {name} (after row {} / {})",
                    s.list,
                    thousands(small_depth as f64),
                    thousands(large_depth as f64)
                ),
                None => format!("`GET {}`, {name}", s.list),
            };
            table.row(&[
                label,
                latency(small_p50),
                latency(large_p50),
                format!("{slowdown:.2}×"),
                verdict(slowdown <= MAX_SLOWDOWN).to_owned(),
            ]);
        }
    }
    writeln!(
        out,
        "## Pages\n\n{}\nTarget: {}.",
        table.finish(),
        verdict(all_met)
    )?;
    Ok(out)
}
