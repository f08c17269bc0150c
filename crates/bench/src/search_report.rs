//! The search section of `bench large`'s report: latencies per case, the target
//! for a rare word, and what each case's plan read.

use std::fmt::Write as _;

use crate::explain::Plan;
use crate::report::{errors_table, latency, thousands, verdict, Table};
use crate::search::{Case, Word, COMMON_WORD, RARE_P50_TARGET};
use crate::suite::SearchResults;
use crate::Error;

pub fn section(search: &SearchResults, rounds: usize) -> Result<String, Error> {
    let recorder = &search.searched.recorder;
    let mut out = String::new();
    writeln!(
        out,
        "## Search\n\n\
         `GET /tickets?q=…` with the default limit (100), one request at a time, the cases' \
         requests shuffled together in each of {rounds} rounds. The rare word is an order \
         number, which only one ticket's messages hold: any ticket's for staff, one of the \
         customer's own for a customer (each answer must be exactly that ticket). The common \
         word is \"{COMMON_WORD}\", in every response and in one topic of eight (a \
         customer's tickets may hold none). Each request is by a random logged-in user; a \
         slow case gets fewer requests (at least 10 a round). p50 and p99 over all of a \
         case's requests.\n"
    )?;
    let plans = search.plans.as_ref().ok();
    let mut table = Table::new(&[
        "case",
        "q",
        ">requests",
        ">p50",
        ">p99",
        ">errors",
        "plan reads",
        ">plan's time",
    ]);
    for &(case, requests) in &search.searched.samples {
        let summary = recorder.summary(case.label());
        let failed: u64 = recorder
            .errors
            .iter()
            .filter(|((label, _), _)| *label == case.label())
            .map(|(_, n)| n)
            .sum();
        let plan = plans.and_then(|plans| plans.iter().find(|p| p.case == case));
        table.row(&[
            case.label().to_owned(),
            case.shown_query().to_owned(),
            thousands(requests as f64),
            summary.map_or_else(|| "–".to_owned(), |s| latency(s.p50)),
            summary.map_or_else(|| "–".to_owned(), |s| latency(s.p99)),
            failed.to_string(),
            plan.map_or_else(String::new, |p| code_list(&p.access_paths())),
            plan.and_then(Plan::duration)
                .map_or_else(String::new, latency),
        ]);
    }
    writeln!(out, "{}", table.finish())?;

    let rare: Vec<(Case, Option<std::time::Duration>)> = search
        .searched
        .samples
        .iter()
        .filter(|(case, _)| case.word == Word::Rare)
        .map(|&(case, _)| (case, recorder.summary(case.label()).map(|s| s.p50)))
        .collect();
    let met = rare
        .iter()
        .all(|(_, p50)| p50.is_some_and(|p50| p50 <= RARE_P50_TARGET));
    let measured: Vec<String> = rare
        .iter()
        .map(|(case, p50)| {
            format!(
                "{}: {}",
                case.role.label(),
                p50.map_or_else(|| "no answer".to_owned(), latency)
            )
        })
        .collect();
    let mut table = Table::new(&["target (issue 8)", "measured", "verdict"]);
    table.row(&[
        format!(
            "p50 of a rare word's search ≤ {} ms",
            RARE_P50_TARGET.as_millis()
        ),
        measured.join(", "),
        verdict(met).to_owned(),
    ]);
    writeln!(out, "{}", table.finish())?;

    match &search.plans {
        Ok(plans) => writeln!(
            out,
            "The plans are PostgreSQL's own for the statements and parameters the service \
             sent (auto_explain with ANALYZE and BUFFERS, on a second server whose \
             connections load it; the second of two identical requests), in \
             `bench/data/explain/` (not committed): {}. \"Plan's time\" is the statement's \
             execution as auto_explain timed it, with its instrumentation.\n",
            code_list(
                &plans
                    .iter()
                    .filter_map(|p| p.file.file_name())
                    .map(|name| name.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            )
        )?,
        Err(e) => writeln!(out, "The plans could not be captured: {e}.\n")?,
    }
    if let Some(errors) = errors_table(&[recorder], 0) {
        writeln!(out, "Failed searches:\n\n{errors}")?;
    }
    Ok(out)
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
