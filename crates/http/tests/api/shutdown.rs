//! Stopping (what SIGTERM and SIGINT do to the binary): the drain, then the stop. Under
//! load and with real signals, `just faults sigterm` covers the rest.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use http_adapter::shutdown::StopRequest;
use reqwest::header::CONNECTION;
use reqwest::{Method, Response};
use serde_json::json;

use crate::helpers::{assert_problem, send, spawn_app_with, TestApp};

/// Readiness, asked until it fails: the stop request reaches the server asynchronously.
async fn readiness_once_draining(app: &TestApp) -> Response {
    for _ in 0..500 {
        let response = send(app.request(Method::GET, "/health/ready")).await;
        if response.status() != 200 {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("readiness stayed 200 after the stop request");
}

/// Sends one keep-alive request on a connection of its own and reads until the server
/// closes it: the text read, or a failure if it stays open.
async fn exchange_until_closed(app: &TestApp, path: &str) -> String {
    let address = app.address.trim_start_matches("http://").to_owned();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).expect("a connection");
        // Generous: failing here means the connection stayed open.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        stream
            .write_all(request.as_bytes())
            .expect("the request is sent");
        let mut text = String::new();
        stream
            .read_to_string(&mut text)
            .expect("the server closes the connection after its response");
        text
    })
    .await
    .expect("the exchange's thread does not panic")
}

fn closes_connection(response: &Response) -> bool {
    response
        .headers()
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// An application that drains for an hour: it stops within `stopped`'s minute only if
/// the drain is cut short or skipped.
async fn app_with_an_hour_of_drain() -> TestApp {
    spawn_app_with(|settings| {
        settings.server.drain_secs = 3600;
        settings.server.shutdown_timeout_secs = 3610;
    })
    .await
}

#[tokio::test]
async fn a_drain_keeps_serving_but_fails_readiness_and_closes_connections() {
    let mut app = app_with_an_hour_of_drain().await;
    let customer = app.customer().await;
    let before = send(app.request(Method::GET, "/health/ready")).await;
    assert_eq!(before.status(), 200);
    assert!(!closes_connection(&before), "keep-alive before the drain");

    app.request_stop(StopRequest::Drain);

    let ready = readiness_once_draining(&app).await;
    assert!(closes_connection(&ready), "the readiness answer closes too");
    assert_problem(ready, 503, "service_unavailable").await;
    let created = send(
        app.request_as(&customer, Method::POST, "/tickets")
            .json(&json!({ "topic": "late", "text": "sent while draining" })),
    )
    .await;
    assert_eq!(
        created.status(),
        201,
        "writes are still served while draining"
    );
    assert!(
        closes_connection(&created),
        "every response closes its connection"
    );
    let exchanged = exchange_until_closed(&app, "/health/live").await;
    assert!(
        exchanged.starts_with("HTTP/1.1 200") && exchanged.contains("connection: close"),
        "{exchanged}"
    );

    // SIGINT ends the drain.
    app.request_stop(StopRequest::Now);
    app.stopped().await.expect("the server stops cleanly");
    let after = app.request(Method::GET, "/health/live").send().await;
    assert!(after.is_err(), "no connections after the stop: {after:?}");
    assert_eq!(
        app.query_i64("SELECT count(*) FROM tickets WHERE topic = 'late'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_drain_ends_by_itself_and_the_server_stops() {
    let mut app = spawn_app_with(|settings| {
        settings.server.drain_secs = 1;
        settings.server.shutdown_timeout_secs = 10;
    })
    .await;

    app.request_stop(StopRequest::Drain);

    app.stopped().await.expect("the server stops cleanly");
}

#[tokio::test]
async fn a_repeated_sigterm_does_not_cut_the_drain_short() {
    let mut app = app_with_an_hour_of_drain().await;
    let customer = app.customer().await;

    app.request_stop(StopRequest::Drain);
    assert_problem(
        readiness_once_draining(&app).await,
        503,
        "service_unavailable",
    )
    .await;
    app.request_stop(StopRequest::Drain);
    // Were the second request taken as a stop, new connections would be refused by
    // now; this can only pass wrongly (on a slow machine), not fail wrongly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = app.get_as(&customer, "/tickets").await;

    assert_eq!(served.status(), 200, "still serving");
    app.request_stop(StopRequest::Now);
    app.stopped().await.expect("the server stops cleanly");
}

#[tokio::test]
async fn an_interrupt_skips_the_drain() {
    let mut app = app_with_an_hour_of_drain().await;
    let customer = app.customer().await;
    let before = app.get_as(&customer, "/tickets").await;
    assert_eq!(before.status(), 200);

    app.request_stop(StopRequest::Now);

    app.stopped().await.expect("the server stops cleanly");
}
