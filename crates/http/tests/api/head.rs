//! `HEAD` on every `GET` route answers with the headers `GET` would send and no body
//! (RFC 9110 §9.3.2); `Allow` lists `HEAD` wherever it lists `GET`.

use reqwest::header::HeaderMap;
use reqwest::{Method, Response};

use crate::helpers::{header, send, spawn_app, Actor, TestApp};

/// Headers that legitimately differ between two responses to the same request.
const PER_RESPONSE: [&str; 2] = ["date", "x-request-id"];

fn comparable(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !PER_RESPONSE.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("<binary>").to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

async fn as_actor(app: &TestApp, actor: &Actor, method: Method, path: &str) -> Response {
    send(app.request_as(actor, method, path)).await
}

/// GET then HEAD of `path`: same status, same headers, and no body for HEAD.
async fn assert_head_mirrors_get(app: &TestApp, actor: &Actor, path: &str) -> HeaderMap {
    let get = as_actor(app, actor, Method::GET, path).await;
    let head = as_actor(app, actor, Method::HEAD, path).await;
    assert_eq!(head.status(), get.status(), "HEAD {path}");
    let headers = head.headers().clone();
    assert_eq!(
        comparable(&headers),
        comparable(get.headers()),
        "HEAD {path} sends the headers GET sends"
    );
    let get_body = get.bytes().await.expect("a GET body");
    let head_body = head.bytes().await.expect("a HEAD answer");
    assert!(head_body.is_empty(), "HEAD {path} sent a body");
    if let Some(length) = headers.get("content-length") {
        assert_eq!(
            length.to_str().ok(),
            Some(get_body.len().to_string().as_str()),
            "HEAD {path}: Content-Length is the GET body's"
        );
    }
    headers
}

#[tokio::test]
async fn head_answers_every_get_route_with_get_s_headers_and_no_body() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let tickets = app.open_tickets(&staff, 2).await;
    let ticket = tickets[0];

    let paths = [
        "/users".to_owned(),
        "/users/me".to_owned(),
        format!("/users/{}", staff.id),
        "/tickets".to_owned(),
        format!("/tickets/{ticket}"),
        format!("/tickets/{ticket}/messages"),
        format!("/tickets/{ticket}/events"),
        "/health/live".to_owned(),
        "/health/ready".to_owned(),
        "/openapi.json".to_owned(),
        "/docs".to_owned(),
        "/docs/docs.js".to_owned(),
        "/docs/docs.css".to_owned(),
    ];
    for path in &paths {
        let headers = assert_head_mirrors_get(&app, &staff, path).await;
        assert!(headers.contains_key("content-length"), "HEAD {path}");
    }

    // Each request changes what /metrics says, so only its kind of answer can match.
    let scrape = as_actor(&app, &staff, Method::HEAD, "/metrics").await;
    assert_eq!(scrape.status(), 200);
    assert!(header(scrape.headers(), "content-type").starts_with("text/plain"));
    assert!(scrape.headers().contains_key("content-length"));
    assert!(scrape.bytes().await.expect("an answer").is_empty());

    // The headers that only some GETs send: ETag on a ticket, Link on a page.
    let one = assert_head_mirrors_get(&app, &staff, &format!("/tickets/{ticket}")).await;
    assert_eq!(header(&one, "etag"), "\"1\"");
    let page = assert_head_mirrors_get(&app, &staff, "/tickets?limit=1").await;
    assert!(header(&page, "link").contains("rel=\"next\""));
}

#[tokio::test]
async fn head_takes_conditions_and_errors_like_get() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&staff).await;
    let path = format!("/tickets/{ticket}");

    // A ticket the caller may not see, an unknown path, no token: the same problem
    // headers, without the problem's body.
    assert_head_mirrors_get(&app, &customer, &path).await;
    assert_head_mirrors_get(&app, &customer, "/nowhere").await;
    let anonymous = send(app.request(Method::HEAD, "/users/me")).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(header(anonymous.headers(), "www-authenticate"), "Bearer");
    assert_eq!(
        header(anonymous.headers(), "content-type"),
        "application/problem+json"
    );

    let unchanged = send(
        app.request_as(&staff, Method::HEAD, &path)
            .header("If-None-Match", "\"1\""),
    )
    .await;
    assert_eq!(unchanged.status(), 304);
    assert_eq!(header(unchanged.headers(), "etag"), "\"1\"");
}

#[tokio::test]
async fn allow_lists_head_wherever_it_lists_get() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&staff).await;

    let cases = [
        ("/health/live", "GET, HEAD"),
        ("/users", "GET, HEAD, POST"),
        (
            &format!("/tickets/{ticket}") as &str,
            "GET, HEAD, PUT, PATCH",
        ),
        ("/login", "POST"),
    ];
    for (path, allow) in cases {
        let response = send(app.request_as(&staff, Method::DELETE, path)).await;
        assert_eq!(response.status(), 405, "DELETE {path}");
        assert_eq!(header(response.headers(), "allow"), allow, "{path}");
    }

    // HEAD where GET is not allowed is not allowed either.
    let response = send(app.request(Method::HEAD, "/login")).await;
    assert_eq!(response.status(), 405);
    assert_eq!(header(response.headers(), "allow"), "POST");
    assert!(response.bytes().await.expect("an answer").is_empty());
}
