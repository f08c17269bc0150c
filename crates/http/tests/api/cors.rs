//! CORS: configured origins get the CORS headers and successful preflights (`204`);
//! other origins, and everyone when the setting is empty, get none.

use reqwest::header::HeaderMap;
use reqwest::{Method, Response};

use crate::helpers::{assert_problem, header, send, spawn_app, spawn_app_with, TestApp};

const DESK: &str = "https://desk.example.com";
const LOCAL: &str = "http://localhost:3000";
const ELSEWHERE: &str = "https://evil.example.net";

async fn cors_app() -> TestApp {
    spawn_app_with(|settings| settings.server.cors_origins = format!("{DESK}, {LOCAL}")).await
}

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// A header's comma-separated values, lower case, across all its lines.
fn listed(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

async fn preflight(app: &TestApp, origin: &str, method: &str, headers: &str) -> Response {
    send(
        app.request(Method::OPTIONS, "/tickets/1")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", headers),
    )
    .await
}

#[tokio::test]
async fn an_allowed_origin_gets_cors_headers_on_answers_and_errors() {
    let app = cors_app().await;
    let customer = app.customer().await;

    for origin in [DESK, LOCAL] {
        let response = send(
            app.request_as(&customer, Method::GET, "/users/me")
                .header("Origin", origin),
        )
        .await;
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(header(headers, "access-control-allow-origin"), origin);
        assert_eq!(header(headers, "access-control-allow-credentials"), "true");
        assert!(listed(headers, "vary").contains(&"origin".to_owned()));
        let exposed = listed(headers, "access-control-expose-headers");
        for name in [
            "etag",
            "link",
            "location",
            "retry-after",
            "idempotent-replayed",
            "x-request-id",
        ] {
            assert!(exposed.contains(&name.to_owned()), "{name}: {exposed:?}");
        }
    }

    // A page must be able to read a problem too.
    let refused = send(app.request(Method::GET, "/users/me").header("Origin", DESK)).await;
    assert_eq!(
        header(refused.headers(), "access-control-allow-origin"),
        DESK
    );
    assert_problem(refused, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_204_with_what_may_be_sent() {
    let app = cors_app().await;

    let response = preflight(
        &app,
        DESK,
        "PATCH",
        "authorization, content-type, if-match, if-none-match, idempotency-key, \
         last-event-id, x-request-id",
    )
    .await;

    assert_eq!(response.status(), 204);
    let headers = response.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), DESK);
    assert_eq!(header(headers, "access-control-allow-credentials"), "true");
    assert!(listed(headers, "vary").contains(&"origin".to_owned()));
    let methods = listed(headers, "access-control-allow-methods");
    for method in ["get", "head", "post", "put", "patch", "delete"] {
        assert!(
            methods.contains(&method.to_owned()),
            "{method}: {methods:?}"
        );
    }
    let allowed = listed(headers, "access-control-allow-headers");
    for name in [
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
        "last-event-id",
        "x-request-id",
    ] {
        assert!(allowed.contains(&name.to_owned()), "{name}: {allowed:?}");
    }
    assert!(response.bytes().await.expect("an answer").is_empty());
}

#[tokio::test]
async fn a_preflight_asking_for_more_than_allowed_is_refused_as_a_problem() {
    let app = cors_app().await;

    let response = preflight(&app, DESK, "PATCH", "x-forged-role").await;

    assert!(cors_headers(response.headers()).is_empty());
    assert_problem(response, 403, "cors_preflight_refused").await;
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = cors_app().await;
    let customer = app.customer().await;

    // Not listed, listed with another scheme, port or a trailing slash: exact only.
    for origin in [
        ELSEWHERE,
        "http://desk.example.com",
        "http://localhost:3001",
        "https://desk.example.com/",
        "null",
    ] {
        let response = send(
            app.request_as(&customer, Method::GET, "/users/me")
                .header("Origin", origin),
        )
        .await;
        assert_eq!(response.status(), 200, "{origin}");
        assert_eq!(
            cors_headers(response.headers()),
            Vec::<String>::new(),
            "{origin}"
        );
        assert!(listed(response.headers(), "vary").contains(&"origin".to_owned()));

        // Its preflight is not a preflight to us: OPTIONS is not a method of the path.
        let preflight = preflight(&app, origin, "PATCH", "authorization").await;
        assert!(cors_headers(preflight.headers()).is_empty(), "{origin}");
        assert_problem(preflight, 405, "method_not_allowed").await;
    }

    let no_origin = send(app.request_as(&customer, Method::GET, "/users/me")).await;
    assert!(cors_headers(no_origin.headers()).is_empty());
}

#[tokio::test]
async fn without_configured_origins_nobody_gets_cors_headers() {
    let app = spawn_app().await;

    let response = send(
        app.request(Method::GET, "/health/live")
            .header("Origin", DESK),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(cors_headers(response.headers()).is_empty());

    let preflight = preflight(&app, DESK, "GET", "authorization").await;
    assert!(cors_headers(preflight.headers()).is_empty());
    assert_problem(preflight, 405, "method_not_allowed").await;
}
