//! Logging: `RUST_LOG` filters (default `info`), `RUST_LOG_FORMAT=json` switches to
//! JSON lines for log collectors.
//!
//! When the filter enables `debug` anywhere (e.g.
//! `RUST_LOG=info,domain=debug,postgres_adapter=debug`), every span also logs a line
//! when it closes, with the time it was busy and idle: the use cases' and the
//! statements' spans then show where a slow request spent its time
//! (`docs/operations.md`). At `info` they stay off, so that each request logs one line,
//! not two.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let span_events = if filter.max_level_hint() >= Some(LevelFilter::DEBUG) {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    let json = std::env::var("RUST_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(span_events)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
