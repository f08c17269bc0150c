//! `GET /openapi.json` and the API reference page `GET /docs`.

use reqwest::Method;

use crate::helpers::{assert_json, assert_problem, send, spawn_app};

#[tokio::test]
async fn openapi_json_is_the_3_1_document_of_every_route() {
    let app = spawn_app().await;

    let document = assert_json(send(app.request(Method::GET, "/openapi.json")).await, 200).await;

    assert!(document["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/users",
        "/users/{id}",
        "/login",
        "/logout",
        "/tickets",
        "/tickets/{id}",
        "/tickets/{id}/messages",
        "/health/live",
        "/health/ready",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "token");
}

#[tokio::test]
async fn docs_page_is_html_that_may_load_only_this_origin() {
    let app = spawn_app().await;

    let response = send(app.request(Method::GET, "/docs")).await;

    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("http"),
        "no other origin may be allowed: {csp}"
    );
    let page = response.text().await.expect("body");
    for asset in ["/docs/docs.js", "/docs/docs.css"] {
        assert!(page.contains(asset), "the page loads {asset}");
        let asset_response = send(app.request(Method::GET, asset)).await;
        assert_eq!(asset_response.status(), 200, "{asset}");
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page must not load anything from another origin"
    );
}

#[tokio::test]
async fn docs_routes_refuse_other_methods() {
    let app = spawn_app().await;

    for path in ["/openapi.json", "/docs"] {
        let response = send(app.request(Method::POST, path)).await;
        let allow = response.headers().get("allow").cloned();
        assert_problem(response, 405, "method_not_allowed").await;
        assert_eq!(
            allow.as_ref().and_then(|v| v.to_str().ok()),
            Some("GET, HEAD"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn docs_script_renders_without_other_origins() {
    let app = spawn_app().await;

    let script = send(app.request(Method::GET, "/docs/docs.js"))
        .await
        .text()
        .await
        .expect("body");

    assert!(script.contains("fetch(\"/openapi.json\""));
    assert!(
        !script.contains("innerHTML"),
        "text of the document must never be parsed as HTML"
    );
    assert!(!script.contains("http://") && !script.contains("https://"));
}
