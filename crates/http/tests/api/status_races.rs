//! Concurrent status changes on one ticket by its author and staff: every response is
//! 200 or 409, and together they must have a serial explanation under the contract's
//! rules — at most one of two conflicting transitions wins, and the final state is legal.

use futures_util::future::join_all;
use reqwest::Method;

use crate::helpers::{assert_json, assert_problem_any, spawn_app, str_field, Actor, TestApp};

/// Who races on a ticket: its author (who may cancel) or staff (who set the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Racer {
    Author,
    Staff,
}

/// What one racing request got: the status it set (200) or the problem's code (409).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Set(String),
    Refused(String),
}

/// Whether a serial order of the requests explains every outcome and the final status,
/// under the contract's rules from `pending` with a staff response (or without one, when
/// nobody asks for `resolved`). Refusals coded `concurrent_update` change nothing and
/// are explained anywhere.
fn serial_explanation(outcomes: &[(Racer, &str, Got)], last: &str) -> Result<(), String> {
    let set = |racer: Racer, statuses: &[&str]| {
        outcomes.iter().any(|(r, _, got)| {
            *r == racer && matches!(got, Got::Set(s) if statuses.contains(&s.as_str()))
        })
    };
    let refused = |racer: Racer, code: &str| {
        outcomes
            .iter()
            .any(|(r, _, got)| *r == racer && *got == Got::Refused(code.to_owned()))
    };
    for (racer, target, got) in outcomes {
        let fine = match (racer, got) {
            (_, Got::Set(status)) => status == target,
            (_, Got::Refused(code)) if code == "concurrent_update" => true,
            // Cancel is refused only while resolved; staff only once canceled.
            (Racer::Author, Got::Refused(code)) => code == "cannot_cancel_resolved",
            (Racer::Staff, Got::Refused(code)) => code == "ticket_canceled",
        };
        if !fine {
            return Err(format!("{racer:?} asking for {target} got {got:?}"));
        }
    }
    let canceled = set(Racer::Author, &["canceled"]);
    let resolved = set(Racer::Staff, &["resolved"]);
    let unresolved = set(Racer::Staff, &["pending", "unresolved"]);
    if canceled != (last == "canceled") {
        return Err(format!(
            "a cancel won: {canceled}, but the ticket is {last}"
        ));
    }
    if refused(Racer::Author, "cannot_cancel_resolved") && !resolved {
        return Err("a cancel saw `resolved` that nobody set".to_owned());
    }
    if canceled {
        // Resolved tickets cannot be canceled: a resolve that won came before the
        // cancel, so something must have un-resolved the ticket in between.
        if resolved && !unresolved {
            return Err("both a resolve and a later cancel won, with nothing between".to_owned());
        }
    } else {
        if refused(Racer::Staff, "ticket_canceled") {
            return Err(format!("staff saw a cancel, but the ticket is {last}"));
        }
        if !set(Racer::Staff, &[last]) {
            return Err(format!("nobody's change left the ticket {last}"));
        }
    }
    Ok(())
}

#[test]
fn the_serial_explanation_refuses_impossible_outcomes() {
    use Racer::{Author, Staff};
    let set = |s: &str| Got::Set(s.to_owned());
    let refused = |c: &str| Got::Refused(c.to_owned());
    let possible = [
        (Staff, "resolved", set("resolved")),
        (Author, "canceled", refused("cannot_cancel_resolved")),
        (Staff, "unresolved", set("unresolved")),
        (Author, "canceled", set("canceled")),
        (Author, "canceled", set("canceled")),
        (Staff, "resolved", refused("ticket_canceled")),
    ];
    assert_eq!(serial_explanation(&possible, "canceled"), Ok(()));
    let impossible: [&[(Racer, &str, Got)]; 5] = [
        &[
            (Author, "canceled", set("canceled")),
            (Staff, "resolved", set("resolved")),
        ],
        &[(Author, "canceled", refused("cannot_cancel_resolved"))],
        &[
            (Staff, "unresolved", set("unresolved")),
            (Staff, "resolved", refused("ticket_canceled")),
        ],
        &[(Staff, "resolved", set("pending"))],
        &[(Author, "canceled", refused("ticket_canceled"))],
    ];
    for outcomes in impossible {
        for last in ["pending", "resolved", "unresolved", "canceled"] {
            assert!(
                serial_explanation(outcomes, last).is_err(),
                "{outcomes:?} ending {last} was explained"
            );
        }
    }
}

/// Sends every request of `plan` on `ticket` at once, PATCH and PUT alternately, and
/// returns what each got. Anything but 200 or 409 fails the test.
async fn race(
    app: &TestApp,
    author: &Actor,
    staff: &Actor,
    ticket: i64,
    plan: &[(Racer, &'static str)],
) -> Vec<(Racer, &'static str, Got)> {
    let requests = plan.iter().enumerate().map(|(n, &(racer, target))| {
        let actor = match racer {
            Racer::Author => author,
            Racer::Staff => staff,
        };
        let method = if n % 2 == 0 {
            Method::PATCH
        } else {
            Method::PUT
        };
        async move {
            let response = app.change_status(method, actor, ticket, target).await;
            (racer, target, response)
        }
    });
    let mut outcomes = Vec::new();
    for (racer, target, response) in join_all(requests).await {
        let got = match response.status().as_u16() {
            200 => Got::Set(str_field(&assert_json(response, 200).await, "status").to_owned()),
            409 => {
                let problem = assert_problem_any(response, 409, &[]).await;
                Got::Refused(str_field(&problem, "code").to_owned())
            }
            other => panic!("{racer:?} asking for {target} got {other}"),
        };
        outcomes.push((racer, target, got));
    }
    outcomes
}

/// Races `plan` on `tickets` fresh tickets in turn (each with a staff response first
/// when `responded`), checks that each race has a serial explanation and wrote no
/// message, and returns each ticket's final status.
async fn race_on_fresh_tickets(
    tickets: usize,
    responded: bool,
    plan: &[(Racer, &'static str)],
) -> Vec<String> {
    let app = spawn_app().await;
    let author = app.customer().await;
    let staff = app.staff().await;
    let mut finals = Vec::new();
    for round in 0..tickets {
        let ticket = app.open_ticket_id(&author).await;
        if responded {
            app.post_message_ok(&staff, ticket, "a response").await;
        }
        let messages_before = app.row_counts().await[2];

        let outcomes = race(&app, &author, &staff, ticket, plan).await;

        let (last, _) = app.ticket_row(ticket).await;
        if let Err(e) = serial_explanation(&outcomes, &last) {
            panic!("round {round}: {e}; final status {last}; outcomes {outcomes:?}");
        }
        assert_eq!(app.row_counts().await[2], messages_before, "round {round}");
        finals.push(last);
    }
    finals
}

/// `n` requests cycling through `pattern`.
fn plan(n: usize, pattern: &[(Racer, &'static str)]) -> Vec<(Racer, &'static str)> {
    pattern.iter().copied().cycle().take(n).collect()
}

#[tokio::test]
async fn a_cancel_and_a_resolve_never_both_win() {
    let plan = plan(
        24,
        &[(Racer::Author, "canceled"), (Racer::Staff, "resolved")],
    );

    // Without an un-resolve in the race, the serial explanation allows one winner only.
    race_on_fresh_tickets(5, true, &plan).await;
}

#[tokio::test]
async fn staff_status_changes_racing_a_cancel_leave_it_canceled() {
    let plan = plan(
        24,
        &[
            (Racer::Author, "canceled"),
            (Racer::Staff, "unresolved"),
            (Racer::Staff, "pending"),
        ],
    );

    let finals = race_on_fresh_tickets(3, false, &plan).await;

    // Nothing here can refuse the author's cancel from pending or unresolved.
    assert!(finals.iter().all(|s| s == "canceled"), "{finals:?}");
}

#[tokio::test]
async fn author_and_staff_racing_on_status_have_a_serial_explanation() {
    // Two cancels, two resolves, one un-resolve in every five.
    let plan = plan(
        20,
        &[
            (Racer::Author, "canceled"),
            (Racer::Staff, "resolved"),
            (Racer::Staff, "unresolved"),
            (Racer::Author, "canceled"),
            (Racer::Staff, "resolved"),
        ],
    );

    race_on_fresh_tickets(6, true, &plan).await;
}
