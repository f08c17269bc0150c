//! The ticket routes assume the role a token was issued for and have the database
//! confirm it with the request's own statements (`auth::ClaimedCaller`). These tests
//! change users under tokens issued before, and check that every answer is the one
//! the user as they are now gets, and that nothing is written for the user as they
//! were.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_json, assert_problem, claims, send, sign_hs256, spawn_app, Actor};

/// Every ticket route, with a request that would succeed for its ticket's author or
/// for staff; `{t}` is the ticket's id.
const TICKET_ROUTES: [(&str, &str, Option<&str>); 8] = [
    ("GET", "/tickets", None),
    (
        "POST",
        "/tickets",
        Some(r#"{"topic":"another","text":"text"}"#),
    ),
    ("GET", "/tickets/{t}", None),
    ("PUT", "/tickets/{t}", Some(r#"{"status":"canceled"}"#)),
    ("PATCH", "/tickets/{t}", Some(r#"{"status":"canceled"}"#)),
    ("GET", "/tickets/{t}/messages", None),
    ("POST", "/tickets/{t}/messages", Some(r#"{"text":"hello"}"#)),
    ("GET", "/tickets/{t}/events", None),
];

fn request(
    app: &crate::helpers::TestApp,
    actor: &Actor,
    (method, path, body): (&str, &str, Option<&str>),
    ticket: &str,
) -> reqwest::RequestBuilder {
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let request = app.request_as(actor, method, &path.replace("{t}", ticket));
    match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(body.to_owned()),
        None => request,
    }
}

#[tokio::test]
async fn a_deactivated_user_s_token_is_refused_on_every_ticket_route_and_writes_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await.to_string();
    app.execute(
        "UPDATE users SET is_active = false WHERE id = $1",
        customer.id,
    )
    .await;
    let before = app.snapshot().await;

    // Also with a path that names no ticket, and one that is no id at all: the
    // refusal must not be decided on the token's word.
    for target in [ticket.as_str(), "999999", "not-an-id"] {
        for route in TICKET_ROUTES {
            let response = send(request(&app, &customer, route, target)).await;
            let what = format!("{} {} on {target}", route.0, route.1);
            let problem = assert_problem(response, 401, "invalid_token").await;
            assert!(problem["detail"].is_string(), "{what}");
        }
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_promoted_customer_s_old_token_has_staff_rights_at_once() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let other = app.customer().await;
    let theirs = app.open_ticket_id(&other).await;
    assert_problem(
        app.get_as(&customer, &format!("/tickets/{theirs}")).await,
        404,
        "ticket_not_found",
    )
    .await;
    let own = app.open_ticket_id(&customer).await;
    assert_problem(
        app.patch_ticket(&customer, own, &json!({"priority": "high"}))
            .await,
        403,
        "staff_only",
    )
    .await;

    app.execute(
        "UPDATE users SET is_staff = true WHERE id = $1",
        customer.id,
    )
    .await;

    // The token still says "customer".
    let seen = app.get_json(&customer, &format!("/tickets/{theirs}")).await;
    assert_eq!(seen["id"], theirs);
    let changed = app
        .patch_ticket_ok(&customer, own, &json!({"priority": "high"}))
        .await;
    assert_eq!(changed["priority"], "high");
    let note = app.post_note(&customer, theirs, "between us").await;
    let note = assert_json(note, 201).await;
    assert_eq!(note["type"], "note");
    let listed = app.get_json(&customer, "/tickets").await;
    let ids: Vec<_> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert!(ids.contains(&json!(theirs)), "{listed}");
}

#[tokio::test]
async fn a_demoted_staff_token_writes_nothing_as_staff() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.execute(
        "UPDATE users SET is_staff = false, is_superuser = false WHERE id = $1",
        staff.id,
    )
    .await;
    let before = app.snapshot().await;

    // As a customer who is not the ticket's author: not found, or refused before
    // that for what a customer may never send (a note, the status `unresolved`).
    for response in [
        app.post_message(&staff, ticket, "an answer").await,
        app.post_note(&staff, ticket, "a note").await,
        app.set_status(&staff, ticket, "unresolved").await,
    ] {
        let status = response.status().as_u16();
        assert!(
            matches!(status, 400 | 403 | 404),
            "{status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    assert_problem(
        app.patch_ticket(&staff, ticket, &json!({"priority": "urgent"}))
            .await,
        403,
        "staff_only",
    )
    .await;
    assert_eq!(app.snapshot().await, before);

    // Their own tickets are theirs to open, as a customer's: a request, not a response.
    let own = app.open_ticket(&staff, "mine", "text").await;
    let messages = app
        .get_json(&staff, &format!("/tickets/{}/messages", own["id"]))
        .await;
    assert_eq!(messages[0]["type"], "request");
}

#[tokio::test]
async fn a_token_that_names_no_role_is_read_from_the_database() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    // As tokens were before they named a role.
    let roleless = Actor {
        token: sign_hs256(&claims(staff.id, 600)),
        ..staff
    };

    let seen = app.get_json(&roleless, &format!("/tickets/{ticket}")).await;
    assert_eq!(seen["id"], ticket);
    let changed = app
        .patch_ticket_ok(&roleless, ticket, &json!({"priority": "low"}))
        .await;
    assert_eq!(changed["priority"], "low");
}
