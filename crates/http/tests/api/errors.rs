//! Routing errors: unknown paths, unsupported methods and ids that are not ids, all as
//! problem+json and never as a 5xx.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    assert_problem, check_problem, header, method, send, spawn_app, Actor, Failures, TestApp,
};

/// The methods of an `Allow` header, upper-cased.
fn allowed(response: &reqwest::Response) -> BTreeSet<String> {
    header(response.headers(), "allow")
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect()
}

#[tokio::test]
async fn unknown_paths_are_404_problems() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;

    for path in [
        "/".to_owned(),
        "/nope".to_owned(),
        "/health".to_owned(),
        "/api/tickets".to_owned(),
        "/users/me/tickets".to_owned(),
        format!("/tickets/{ticket}/nope"),
        format!("/tickets/{ticket}/messages/1"),
        "/tickets/1/messages/1/x".to_owned(),
    ] {
        let anonymous = send(app.request(Method::GET, &path)).await;
        assert_problem(anonymous, 404, "not_found").await;
        let authenticated = app.get_as(&customer, &path).await;
        assert_problem(authenticated, 404, "not_found").await;
    }
}

#[tokio::test]
async fn unsupported_methods_are_405_with_allow() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&staff).await;
    let before = app.snapshot().await;
    let ticket_path = format!("/tickets/{ticket}");
    let messages_path = format!("/tickets/{ticket}/messages");
    let user_path = format!("/users/{}", staff.id);
    let cases: [(&str, &str, &[&str]); 14] = [
        ("DELETE", "/users", &["GET", "POST"]),
        ("PUT", "/users", &["GET", "POST"]),
        ("DELETE", &user_path, &["GET", "PATCH"]),
        ("PUT", &user_path, &["GET", "PATCH"]),
        ("POST", &user_path, &["GET", "PATCH"]),
        ("GET", "/login", &["POST"]),
        ("DELETE", "/login", &["POST"]),
        ("GET", "/logout", &["POST"]),
        ("DELETE", "/tickets", &["GET", "POST"]),
        ("DELETE", &ticket_path, &["GET", "PUT", "PATCH"]),
        ("POST", &ticket_path, &["GET", "PUT", "PATCH"]),
        ("DELETE", &messages_path, &["GET", "POST"]),
        ("POST", "/health/live", &["GET"]),
        ("DELETE", "/health/ready", &["GET"]),
    ];

    for (name, path, expected) in cases {
        let request = app.request_as(&staff, method(name), path).json(&json!({}));
        let response = send(request).await;
        let allow = allowed(&response);
        for m in expected {
            assert!(
                allow.contains(*m),
                "{name} {path}: Allow {allow:?} lacks {m}"
            );
        }
        assert!(
            !allow.contains(name),
            "{name} {path}: Allow {allow:?} lists {name}"
        );
        assert_problem(response, 405, "method_not_allowed").await;
    }

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn unsupported_methods_are_405_without_a_token_too() {
    let app = spawn_app().await;

    let response = send(app.request(Method::DELETE, "/tickets/1")).await;

    assert!(allowed(&response).contains("GET"));
    assert_problem(response, 405, "method_not_allowed").await;
}

/// Path ids that are not positive 64-bit integers.
const BAD_IDS: [&str; 11] = [
    "0",
    "-1",
    "abc",
    "99999999999999999999",
    "9223372036854775808",
    "1.5",
    "+1",
    "1e3",
    "%201",
    "0x10",
    "-0",
];

/// Sends every id route with `id` as `actor`.
async fn id_routes(app: &TestApp, actor: &Actor, id: &str) -> Vec<(String, reqwest::Response)> {
    let routes = [
        (Method::GET, format!("/tickets/{id}"), None),
        (
            Method::PUT,
            format!("/tickets/{id}"),
            Some(json!({ "status": "pending" })),
        ),
        (
            Method::PATCH,
            format!("/tickets/{id}"),
            Some(json!({ "status": "pending" })),
        ),
        (Method::GET, format!("/tickets/{id}/messages"), None),
        (
            Method::POST,
            format!("/tickets/{id}/messages"),
            Some(json!({ "text": "x" })),
        ),
        (Method::GET, format!("/users/{id}"), None),
        (
            Method::PATCH,
            format!("/users/{id}"),
            Some(json!({ "username": "x" })),
        ),
    ];
    let mut responses = Vec::new();
    for (method, path, body) in routes {
        let mut request = app.request_as(actor, method.clone(), &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        responses.push((format!("{method} {path}"), send(request).await));
    }
    responses
}

#[tokio::test]
async fn ids_that_are_not_positive_64_bit_integers_are_404() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    app.open_ticket_id(&customer).await;
    let before = app.snapshot().await;

    for actor in [&customer, &staff] {
        for id in BAD_IDS {
            for (what, response) in id_routes(&app, actor, id).await {
                assert_eq!(response.status(), 404, "{what}");
                assert_problem(response, 404, "not_found").await;
            }
        }
    }

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn the_largest_id_is_an_id_that_does_not_exist() {
    let app = spawn_app().await;
    let staff = app.staff().await;

    for (what, response) in id_routes(&app, &staff, "9223372036854775807").await {
        let code = if what.contains("/users/") {
            "user_not_found"
        } else {
            "ticket_not_found"
        };
        assert_eq!(response.status(), 404, "{what}");
        assert_problem(response, 404, code).await;
    }
}

#[tokio::test]
async fn odd_query_strings_are_answered_without_a_server_error() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&staff).await;
    let mut failures = Failures::default();

    for query in [
        "limit=%FF",
        "limit=%",
        "cursor=%ZZ",
        "status=%00",
        "limit=1&limit=2",
        "status=pending&status=resolved",
        "author=%E2%28%A1",
        "order[]=asc",
        "&&&",
        "=",
    ] {
        for path in [
            "/tickets",
            "/users",
            "/users/me",
            &format!("/tickets/{ticket}/messages"),
        ] {
            let response = app.get_as(&staff, &format!("{path}?{query}")).await;
            let status = response.status();
            let what = format!("GET {path}?{query}");
            if status.is_client_error() {
                if let Err(e) = check_problem(response, status.as_u16(), &[]).await {
                    failures.record(format!("{what}: {e}"));
                }
            } else {
                failures.check(status.is_success(), || format!("{what}: {status}"));
            }
        }
    }

    failures.assert_none();
}
