//! Headers every response carries: `X-Request-Id`, and on API responses
//! `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_not_cached_or_sniffed, header, send, spawn_app, TestApp, PASSWORD};

/// A variety of requests: successes, client errors, routing errors, health.
fn requests(app: &TestApp, token: &str, email: &str) -> Vec<(String, reqwest::RequestBuilder)> {
    let login = json!({ "email": "nobody@x.io", "password": PASSWORD });
    vec![
        (
            "GET /users/me".to_owned(),
            app.request(Method::GET, "/users/me").bearer_auth(token),
        ),
        (
            "GET /tickets".to_owned(),
            app.request(Method::GET, "/tickets").bearer_auth(token),
        ),
        (
            "POST /tickets".to_owned(),
            app.request(Method::POST, "/tickets")
                .bearer_auth(token)
                .json(&json!({ "topic": "t", "text": "x" })),
        ),
        (
            "GET /tickets (401)".to_owned(),
            app.request(Method::GET, "/tickets"),
        ),
        (
            "GET /users (403)".to_owned(),
            app.request(Method::GET, "/users").bearer_auth(token),
        ),
        (
            "POST /login (401)".to_owned(),
            app.request(Method::POST, "/login").json(&login),
        ),
        (
            "POST /tickets (400)".to_owned(),
            app.request(Method::POST, "/tickets")
                .bearer_auth(token)
                .body("{"),
        ),
        (
            "GET /tickets/abc (404)".to_owned(),
            app.request(Method::GET, "/tickets/abc").bearer_auth(token),
        ),
        (
            "GET /nope (404)".to_owned(),
            app.request(Method::GET, "/nope"),
        ),
        (
            "DELETE /tickets (405)".to_owned(),
            app.request(Method::DELETE, "/tickets"),
        ),
        (
            "POST /users (409)".to_owned(),
            app.request(Method::POST, "/users").json(&json!({
                "email": email, "password": PASSWORD, "username": "again",
            })),
        ),
        (
            "POST /tickets (413)".to_owned(),
            app.request(Method::POST, "/tickets")
                .bearer_auth(token)
                .json(&json!({ "topic": "t", "text": "x".repeat(70 * 1024) })),
        ),
        (
            "PATCH /tickets/{id} (400)".to_owned(),
            app.request(Method::PATCH, "/tickets/1")
                .bearer_auth(token)
                .json(&json!({ "status": "closed" })),
        ),
        (
            "POST /logout".to_owned(),
            app.request(Method::POST, "/logout"),
        ),
        (
            "POST /tickets (415)".to_owned(),
            app.request(Method::POST, "/tickets")
                .bearer_auth(token)
                .header("content-type", "text/plain")
                .body("x"),
        ),
    ]
}

#[tokio::test]
async fn every_response_has_a_request_id_and_echoes_the_callers() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut seen = std::collections::HashSet::new();

    let mut all = requests(&app, &customer.token, &customer.email);
    all.push((
        "GET /health/live".to_owned(),
        app.request(Method::GET, "/health/live"),
    ));
    all.push((
        "GET /health/ready".to_owned(),
        app.request(Method::GET, "/health/ready"),
    ));
    for (what, request) in all {
        let echoed = request.try_clone().expect("a cloneable request");
        let response = send(request).await;
        let id = header(response.headers(), "x-request-id");
        assert!(!id.is_empty(), "{what}: no X-Request-Id");
        assert!(seen.insert(id.clone()), "{what}: X-Request-Id {id} repeats");

        let mine = format!("test-{}", seen.len());
        let response = send(echoed.header("x-request-id", &mine)).await;
        assert_eq!(
            header(response.headers(), "x-request-id"),
            mine,
            "{what}: not echoed"
        );
    }
}

#[tokio::test]
async fn api_responses_are_not_cached_or_sniffed() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for (what, request) in requests(&app, &customer.token, &customer.email) {
        let response = send(request).await;
        assert_not_cached_or_sniffed(response.headers(), &what);
    }
}

#[tokio::test]
async fn login_responses_are_not_cached() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let response = app.login_response(&customer.email, PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_not_cached_or_sniffed(response.headers(), "POST /login");
}

#[tokio::test]
async fn successful_responses_are_json() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;

    for path in [
        "/users/me".to_owned(),
        "/tickets".to_owned(),
        format!("/tickets/{ticket}"),
        format!("/tickets/{ticket}/messages"),
    ] {
        let response = app.get_as(&customer, &path).await;
        let content_type = header(response.headers(), "content-type");
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
    }
}
