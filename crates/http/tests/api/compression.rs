//! Responses of at least 1 KiB are compressed when `Accept-Encoding` allows (gzip, br,
//! zstd); smaller ones, streams and responses with an `ETag` are not; the setting turns
//! it off.

use std::io::Read;

use reqwest::{Method, Response};
use serde_json::Value;

use crate::helpers::{header, send, spawn_app, spawn_app_with, Actor, TestApp};

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .expect("a gzip body");
    plain
}

async fn get(app: &TestApp, actor: Option<&Actor>, path: &str, accept: Option<&str>) -> Response {
    let mut request = app.request(Method::GET, path);
    if let Some(actor) = actor {
        request = request.bearer_auth(&actor.token);
    }
    if let Some(accept) = accept {
        request = request.header("Accept-Encoding", accept);
    }
    send(request).await
}

fn varies_by_encoding(response: &Response) -> bool {
    response
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("accept-encoding"))
}

#[tokio::test]
async fn a_large_document_is_compressed_as_the_client_prefers() {
    let app = spawn_app().await;
    let plain = get(&app, None, "/openapi.json", None).await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(
        varies_by_encoding(&plain),
        "a cache must tell codings apart"
    );
    let plain = plain.bytes().await.expect("a body");
    assert!(plain.len() > 10 * 1024, "the document is large");

    let gzip = get(&app, None, "/openapi.json", Some("gzip")).await;
    assert_eq!(header(gzip.headers(), "content-encoding"), "gzip");
    assert!(varies_by_encoding(&gzip));
    let compressed = gzip.bytes().await.expect("a body");
    assert!(compressed.len() < plain.len() / 3, "{}", compressed.len());
    assert_eq!(gunzip(&compressed), plain);

    for (accept, coding) in [
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip;q=0.5, br;q=1.0", "br"),
        ("identity", ""),
        ("compress", ""),
    ] {
        let response = get(&app, None, "/openapi.json", Some(accept)).await;
        assert_eq!(response.status(), 200, "{accept}");
        assert_eq!(
            header(response.headers(), "content-encoding"),
            coding,
            "{accept}"
        );
    }
    let browser = get(&app, None, "/openapi.json", Some("gzip, deflate, br, zstd")).await;
    assert!(
        ["br", "zstd", "gzip"].contains(&header(browser.headers(), "content-encoding").as_str())
    );

    // Nothing acceptable at all: the body as it is, rather than 406.
    let refused = get(&app, None, "/openapi.json", Some("identity;q=0, compress")).await;
    assert_eq!(refused.status(), 200);
    assert_eq!(refused.bytes().await.expect("a body"), plain);
}

#[tokio::test]
async fn lists_are_compressed_but_small_answers_and_tickets_are_not() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let tickets = app.open_tickets(&staff, 8).await;

    let list = get(&app, Some(&staff), "/tickets", Some("gzip")).await;
    assert_eq!(header(list.headers(), "content-encoding"), "gzip");
    let list: Value =
        serde_json::from_slice(&gunzip(&list.bytes().await.expect("a body"))).expect("a JSON list");
    assert_eq!(list.as_array().map(Vec::len), Some(8));

    let small = get(&app, None, "/health/live", Some("gzip")).await;
    assert!(small.headers().get("content-encoding").is_none());
    assert!(!varies_by_encoding(&small));

    // One ticket carries a strong ETag, which names the uncompressed representation:
    // it stays uncompressed (and is far below the threshold anyway).
    let path = format!("/tickets/{}", tickets[0]);
    let one = get(&app, Some(&staff), &path, Some("gzip, br, zstd")).await;
    assert_eq!(header(one.headers(), "etag"), "\"1\"");
    assert!(one.headers().get("content-encoding").is_none());
    assert!(one.bytes().await.expect("a body").len() < 1024);

    let problem = get(&app, None, "/tickets", Some("gzip")).await;
    assert_eq!(problem.status(), 401);
    assert!(problem.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn head_sends_the_compressed_get_s_headers() {
    let app = spawn_app().await;
    let request = |method| {
        app.request(method, "/openapi.json")
            .header("Accept-Encoding", "gzip")
    };
    let get = send(request(Method::GET)).await;
    let head = send(request(Method::HEAD)).await;
    for name in ["content-encoding", "content-type", "vary", "content-length"] {
        assert_eq!(
            header(head.headers(), name),
            header(get.headers(), name),
            "{name}"
        );
    }
    assert_eq!(header(head.headers(), "content-encoding"), "gzip");
    assert!(head.bytes().await.expect("an answer").is_empty());
}

#[tokio::test]
async fn compression_can_be_turned_off() {
    let app = spawn_app_with(|settings| settings.server.compression = false).await;
    let response = get(&app, None, "/openapi.json", Some("gzip, br")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
}
