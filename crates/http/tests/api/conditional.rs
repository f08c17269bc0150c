//! Conditional requests on tickets: the `ETag` of every response with one ticket,
//! `If-None-Match` on `GET` (`304`), `If-Match` on `PUT`, `PATCH` and
//! `POST /tickets/{id}/messages` (`412`), the order of refusals, and staff racing with
//! the same `If-Match`.

use futures_util::future::join_all;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_problem, check_problem, etag_of, header, id_of, spawn_app, version_of,
    Actor, Failures, TestApp,
};
use crate::workflow::distinct_changes;

/// `If-Match: value` on a request as `actor`.
async fn if_match(
    app: &TestApp,
    actor: &Actor,
    method: Method,
    path: &str,
    value: &str,
    body: &Value,
) -> Response {
    app.send_with_headers(actor, method, path, &[("If-Match", value)], Some(body))
        .await
}

/// `GET /tickets/{id}` with `If-None-Match: value`.
async fn if_none_match(app: &TestApp, actor: &Actor, ticket: i64, value: &str) -> Response {
    let path = format!("/tickets/{ticket}");
    app.send_with_headers(actor, Method::GET, &path, &[("If-None-Match", value)], None)
        .await
}

/// The ticket's current version as the author sees it.
async fn version_now(app: &TestApp, actor: &Actor, ticket: i64) -> i64 {
    version_of(&app.ticket_as(actor, ticket).await)
}

#[tokio::test]
async fn every_response_with_one_ticket_carries_its_etag() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;

    let mut failures = Failures::default();
    let mut check = |what: &str, etag: String, ticket: &Value| {
        let expected = etag_of(version_of(ticket));
        failures.check(etag == expected, || {
            format!("{what}: ETag {etag:?}, the body says {expected}")
        });
    };
    let (etag, opened) = app.open_ticket_with_etag(&customer, "t", "x").await;
    check("POST", etag, &opened);
    let id = id_of(&opened);
    let path = format!("/tickets/{id}");
    for (what, actor, method, body) in [
        ("GET by the author", &customer, Method::GET, None),
        ("GET by staff", &staff, Method::GET, None),
        (
            "PATCH",
            &staff,
            Method::PATCH,
            Some(json!({ "priority": "high" })),
        ),
        (
            "PUT",
            &staff,
            Method::PUT,
            Some(json!({ "status": "unresolved" })),
        ),
        (
            "PATCH no-op",
            &staff,
            Method::PATCH,
            Some(json!({ "priority": "high" })),
        ),
        (
            "PUT no-op",
            &staff,
            Method::PUT,
            Some(json!({ "status": "unresolved" })),
        ),
        ("GET after", &customer, Method::GET, None),
    ] {
        let response = app
            .send_with_headers(actor, method, &path, &[], body.as_ref())
            .await;
        let etag = header(response.headers(), "etag");
        let ticket = assert_json(response, 200).await;
        check(what, etag, &ticket);
    }
    failures.assert_none();
    // The same validator for every caller who may see the ticket.
    let by_customer = app.get_as(&customer, &path).await;
    let by_staff = app.get_as(&staff, &path).await;
    assert_eq!(
        header(by_customer.headers(), "etag"),
        header(by_staff.headers(), "etag")
    );
    assert_eq!(header(by_staff.headers(), "etag"), etag_of(3));
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_304_without_a_body() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let stranger = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.post_message_ok(&staff, ticket, "answer").await;
    let current = etag_of(2);

    let mut failures = Failures::default();
    for (value, not_modified) in [
        ("\"2\"", true),
        ("W/\"2\"", true),
        ("*", true),
        ("\"1\", \"2\"", true),
        ("\"7\",\"2\"", true),
        ("\"1\"", false),
        ("\"3\"", false),
        ("W/\"1\"", false),
        ("2", false),
        ("\"x\"", false),
        ("", false),
    ] {
        for actor in [&customer, &staff] {
            let response = if_none_match(&app, actor, ticket, value).await;
            let status = response.status().as_u16();
            let etag = header(response.headers(), "etag");
            let body = response.bytes().await.expect("a body");
            let expected = if not_modified { 304 } else { 200 };
            failures.check(status == expected && etag == current, || {
                format!("If-None-Match {value:?}: {status} with ETag {etag:?}")
            });
            failures.check(!not_modified || body.is_empty(), || {
                format!("If-None-Match {value:?}: a 304 with a body")
            });
        }
    }
    failures.assert_none();

    // After a change, the old validator no longer matches.
    app.post_message_ok(&customer, ticket, "more").await;
    let response = if_none_match(&app, &customer, ticket, &current).await;
    assert_eq!(header(response.headers(), "etag"), etag_of(3));
    assert_eq!(assert_json(response, 200).await["version"], 3);
    // A ticket the caller may not see is 404, whatever the condition.
    for value in ["*", current.as_str()] {
        let response = if_none_match(&app, &stranger, ticket, value).await;
        assert_problem(response, 404, "ticket_not_found").await;
    }
}

/// Each conditional write, as `(name, method, path, body)` for a ticket, with a body
/// that changes it.
fn conditional_writes(ticket: i64, round: usize) -> Vec<(&'static str, Method, String, Value)> {
    let path = format!("/tickets/{ticket}");
    let messages = format!("/tickets/{ticket}/messages");
    let priority = ["low", "high"][round % 2];
    let status = ["unresolved", "pending"][round % 2];
    vec![
        (
            "PATCH",
            Method::PATCH,
            path.clone(),
            json!({ "priority": priority }),
        ),
        ("PUT", Method::PUT, path, json!({ "status": status })),
        (
            "POST message",
            Method::POST,
            messages.clone(),
            json!({ "text": "reply" }),
        ),
        (
            "POST note",
            Method::POST,
            messages,
            json!({ "text": "note", "internal": true }),
        ),
    ]
}

#[tokio::test]
async fn a_write_with_a_stale_if_match_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.post_message_ok(&customer, ticket, "more").await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for (name, method, path, body) in conditional_writes(ticket, 0) {
        for stale in ["\"1\"", "\"3\"", "\"1\", \"3\""] {
            let response = if_match(&app, &staff, method.clone(), &path, stale, &body).await;
            failures
                .problem(
                    &format!("{name} If-Match {stale}"),
                    response,
                    412,
                    &["precondition_failed"],
                )
                .await;
        }
    }
    // The author's messages too.
    let path = format!("/tickets/{ticket}/messages");
    let response = if_match(
        &app,
        &customer,
        Method::POST,
        &path,
        "\"1\"",
        &json!({ "text": "x" }),
    )
    .await;
    failures
        .problem(
            "the author's message",
            response,
            412,
            &["precondition_failed"],
        )
        .await;
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);

    // The current ETag lets each write through; without If-Match they work as before.
    for round in 0..2 {
        for (name, method, path, body) in conditional_writes(ticket, round) {
            let current = etag_of(version_now(&app, &customer, ticket).await);
            let response = if_match(&app, &staff, method.clone(), &path, &current, &body).await;
            assert!(
                response.status().is_success(),
                "{name}: {}",
                response.status()
            );
            let response = app.send_as(&staff, method, &path, &body).await;
            assert!(response.status().is_success(), "{name} without If-Match");
        }
    }
}

#[tokio::test]
async fn if_match_compares_strongly() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let path = format!("/tickets/{ticket}");

    let mut failures = Failures::default();
    let mut round = 0;
    // `{v}` is the current version.
    for (value, matches) in [
        ("\"{v}\"", true),
        ("*", true),
        ("\"1000\", \"{v}\"", true),
        ("\"{v}\",\"1000\"", true),
        ("W/\"{v}\"", false),
        ("{v}", false),
        ("\"{v}", false),
        ("\"\"", false),
        ("\"x\"", false),
        ("\"0\"", false),
        ("\"-1\"", false),
        ("\"{v}.0\"", false),
        ("\" {v}\"", false),
        ("garbage", false),
    ] {
        let version = version_now(&app, &customer, ticket).await;
        let value = value.replace("{v}", &version.to_string());
        let before = app.snapshot().await;
        let priority = ["low", "high"][round % 2];
        let body = json!({ "priority": priority });
        let response = if_match(&app, &staff, Method::PATCH, &path, &value, &body).await;
        if matches {
            round += 1;
            let status = response.status();
            failures.check(status == 200, || format!("If-Match {value:?}: {status}"));
        } else {
            failures
                .problem(
                    &format!("If-Match {value:?}"),
                    response,
                    412,
                    &["precondition_failed"],
                )
                .await;
            failures.check(app.snapshot().await == before, || {
                format!("If-Match {value:?} changed something")
            });
        }
    }
    // Two header lines are one list.
    let version = version_now(&app, &customer, ticket).await;
    let response = app
        .send_with_headers(
            &staff,
            Method::PATCH,
            &path,
            &[("If-Match", "\"1000\""), ("If-Match", &etag_of(version))],
            Some(&json!({ "priority": "urgent" })),
        )
        .await;
    failures.check(response.status() == 200, || {
        format!("two If-Match lines: {}", response.status())
    });
    failures.assert_none();
    // `*` on a ticket that does not exist matches nothing: 404 comes first.
    let response = if_match(
        &app,
        &staff,
        Method::PATCH,
        &format!("/tickets/{}", i64::MAX),
        "*",
        &json!({ "priority": "low" }),
    )
    .await;
    assert_problem(response, 404, "ticket_not_found").await;
}

#[tokio::test]
async fn a_note_leaves_the_etag_valid() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let etag = etag_of(version_now(&app, &customer, ticket).await);

    app.post_note_ok(&staff, ticket, "one").await;
    let path = format!("/tickets/{ticket}/messages");
    let note = json!({ "text": "two", "internal": true });
    let response = if_match(&app, &staff, Method::POST, &path, &etag, &note).await;
    assert_eq!(assert_json(response, 201).await["type"], "note");
    let response = if_match(
        &app,
        &customer,
        Method::POST,
        &path,
        &etag,
        &json!({ "text": "hi" }),
    )
    .await;
    assert_json(response, 201).await;
    // The request moved the version: the old ETag is stale now.
    let response = if_match(&app, &staff, Method::POST, &path, &etag, &note).await;
    assert_problem(response, 412, "precondition_failed").await;
}

/// A method and a path.
type Target = (Method, String);

#[tokio::test]
async fn refusals_come_in_the_documented_order() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let stranger = app.customer().await;
    let staff = app.staff().await;
    let pending = app.open_ticket_id(&customer).await;
    let canceled = app
        .ticket_with_status(&customer, &staff, "canceled", false)
        .await;
    let missing = i64::MAX;
    let stale = "\"1000\"";
    let patch = |id: i64| (Method::PATCH, format!("/tickets/{id}"));
    let put = |id: i64| (Method::PUT, format!("/tickets/{id}"));
    let post = |id: i64| (Method::POST, format!("/tickets/{id}/messages"));
    let before = app.snapshot().await;

    let cases: Vec<(&str, &Actor, Target, Value, u16, &str)> = vec![
        // Body validation first (400, 403), before the ticket is looked up.
        (
            "malformed body",
            &staff,
            patch(missing),
            json!({ "priority": 1 }),
            400,
            "invalid_body",
        ),
        (
            "unknown status",
            &staff,
            patch(pending),
            json!({ "status": "closed" }),
            400,
            "status_unknown",
        ),
        (
            "unknown priority",
            &staff,
            patch(missing),
            json!({ "priority": "critical" }),
            400,
            "priority_invalid",
        ),
        (
            "a customer's staff field",
            &customer,
            patch(missing),
            json!({ "priority": "high" }),
            403,
            "staff_only",
        ),
        (
            "a status a customer never sets",
            &customer,
            put(pending),
            json!({ "status": "resolved" }),
            400,
            "status_not_allowed",
        ),
        (
            "blank text",
            &staff,
            post(missing),
            json!({ "text": " " }),
            400,
            "text_blank",
        ),
        (
            "a customer's note",
            &customer,
            post(missing),
            json!({ "text": "x", "internal": true }),
            403,
            "staff_only",
        ),
        (
            "an invalid assignee on a missing ticket",
            &staff,
            patch(missing),
            json!({ "assignee_id": customer.id }),
            400,
            "assignee_invalid",
        ),
        // Then 404.
        (
            "missing ticket",
            &staff,
            patch(missing),
            json!({ "priority": "high" }),
            404,
            "ticket_not_found",
        ),
        (
            "someone else's ticket",
            &stranger,
            put(pending),
            json!({ "status": "canceled" }),
            404,
            "ticket_not_found",
        ),
        (
            "message on a missing ticket",
            &staff,
            post(missing),
            json!({ "text": "x" }),
            404,
            "ticket_not_found",
        ),
        (
            "message on someone else's ticket",
            &stranger,
            post(pending),
            json!({ "text": "x" }),
            404,
            "ticket_not_found",
        ),
        // PUT and PATCH: 412 before the rules.
        (
            "status of a canceled ticket",
            &staff,
            patch(canceled),
            json!({ "status": "pending" }),
            412,
            "precondition_failed",
        ),
        (
            "priority of a canceled ticket",
            &staff,
            patch(canceled),
            json!({ "priority": "high" }),
            412,
            "precondition_failed",
        ),
        (
            "resolved without a response",
            &staff,
            put(pending),
            json!({ "status": "resolved" }),
            412,
            "precondition_failed",
        ),
        (
            "staff canceling another's ticket",
            &staff,
            patch(pending),
            json!({ "status": "canceled" }),
            412,
            "precondition_failed",
        ),
        (
            "an invalid assignee",
            &staff,
            patch(pending),
            json!({ "assignee_id": customer.id }),
            400,
            "assignee_invalid",
        ),
        // Messages: 409 for a canceled ticket before 412.
        (
            "message on a canceled ticket",
            &customer,
            post(canceled),
            json!({ "text": "x" }),
            409,
            "ticket_canceled",
        ),
        (
            "note on a canceled ticket",
            &staff,
            post(canceled),
            json!({ "text": "x", "internal": true }),
            412,
            "precondition_failed",
        ),
    ];

    let mut failures = Failures::default();
    for (what, actor, (method, path), body, status, code) in cases {
        let response = if_match(&app, actor, method, &path, stale, &body).await;
        if let Err(e) = check_problem(response, status, &[code]).await {
            failures.record(format!("{what}: {e}"));
        }
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);
}

/// Sends every body of `bodies` as a PATCH of `ticket` at once, each by the member of
/// staff at the same index, all with `If-Match: etag`; returns the responses in order.
async fn race(
    app: &TestApp,
    staff: &[Actor],
    ticket: i64,
    etag: &str,
    bodies: &[Value],
) -> Vec<Response> {
    let path = format!("/tickets/{ticket}");
    let requests = staff
        .iter()
        .zip(bodies)
        .map(|(actor, body)| if_match(app, actor, Method::PATCH, &path, etag, body));
    join_all(requests).await
}

/// Races `bodies` (each a real change from a fresh ticket) with one `If-Match` for
/// `rounds` fresh tickets: exactly one wins, the others get 412 and change nothing.
async fn exactly_one_wins(app: &TestApp, staff: &[Actor], bodies: &[Value], rounds: usize) {
    let customer = app.customer().await;
    for round in 0..rounds {
        let ticket = app.open_ticket_id(&customer).await;
        let etag = etag_of(1);
        let events_before = app.events_of(&staff[0], ticket).await.len();

        let responses = race(app, staff, ticket, &etag, bodies).await;

        let mut winners = Vec::new();
        for (n, response) in responses.into_iter().enumerate() {
            match response.status().as_u16() {
                200 => winners.push((n, assert_json(response, 200).await)),
                412 => {
                    assert_problem(response, 412, "precondition_failed").await;
                }
                other => panic!("round {round}: contender {n} got {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (n, won) = &winners[0];
        let now = app.ticket_as(&staff[0], ticket).await;
        assert_eq!(
            &now, won,
            "round {round}: the winner's answer is the ticket"
        );
        let body = &bodies[*n];
        if let Some(priority) = body.get("priority") {
            assert_eq!(&now["priority"], priority, "round {round}");
        }
        if let Some(status) = body.get("status") {
            assert_eq!(&now["status"], status, "round {round}");
        }
        if let Some(assignee) = body.get("assignee_id") {
            assert_eq!(&now["assignee"]["id"], assignee, "round {round}");
        }
        assert_eq!(now["version"], 2, "round {round}");
        let events = app.events_of(&staff[0], ticket).await;
        assert_eq!(events.len(), events_before + 1, "round {round}");
    }
}

#[tokio::test]
async fn two_staff_patching_with_the_same_if_match_one_wins_one_gets_412() {
    let app = spawn_app().await;
    let staff = app.staff_members(2).await;
    let bodies = [json!({ "priority": "high" }), json!({ "priority": "low" })];

    exactly_one_wins(&app, &staff, &bodies, 10).await;
}

#[tokio::test]
async fn many_staff_patching_with_the_same_if_match_one_wins_the_rest_get_412() {
    let app = spawn_app().await;
    let staff = app.staff_members(6).await;
    let bodies = distinct_changes(&staff);

    exactly_one_wins(&app, &staff, &bodies, 5).await;
}

#[tokio::test]
async fn two_messages_with_the_same_if_match_one_is_written_one_gets_412() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    for round in 0..5 {
        let ticket = app.open_ticket_id(&customer).await;
        let path = format!("/tickets/{ticket}/messages");
        let etag = etag_of(1);
        let (text_a, text_b) = (json!({ "text": "a" }), json!({ "text": "b" }));
        let (a, b) = tokio::join!(
            if_match(&app, &staff, Method::POST, &path, &etag, &text_a),
            if_match(&app, &customer, Method::POST, &path, &etag, &text_b),
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 412], "round {round}");
        let loser = if a.status() == 412 { a } else { b };
        assert_problem(loser, 412, "precondition_failed").await;
        let messages = app.get_json(&staff, &path).await;
        assert_eq!(messages.as_array().map(Vec::len), Some(2), "round {round}");
    }
}

#[tokio::test]
async fn renaming_the_assignee_changes_the_etag() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let assigned = app
        .patch_ticket_ok(&staff, ticket, &json!({ "assignee_id": staff.id }))
        .await;
    let etag = etag_of(version_of(&assigned));

    let renamed = app
        .send_as(
            &staff,
            Method::PATCH,
            &format!("/users/{}", staff.id),
            &json!({ "username": "renamed" }),
        )
        .await;
    assert_json(renamed, 200).await;

    let now = app.ticket_as(&customer, ticket).await;
    assert_eq!(now["assignee"]["username"], "renamed");
    // RFC 9110 §8.8.1: a strong validator changes whenever the representation does.
    let response = if_none_match(&app, &customer, ticket, &etag).await;
    assert_eq!(
        response.status(),
        200,
        "a 304 keeps the client's copy with the old username"
    );
}
