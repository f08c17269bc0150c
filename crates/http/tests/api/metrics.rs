//! `GET /metrics`: the series' names and labels are part of the contract. After known
//! requests, the scrape shows them by method, route template and status, problems by
//! code, the pool, the hashing queue, open event streams, the event tail's reconnections
//! and webhook deliveries (counted in the outbox that every replica shares). Nothing is measured by time: only names,
//! labels and counts.

use std::collections::BTreeMap;

use reqwest::Method;

use crate::helpers::{assert_problem, header, send, spawn_app, spawn_app_with, TestApp};
use crate::webhooks::{create, delivery_states, eventually, id_field, wait_for_attempts, Receiver};

/// One sample line: `name{label="value",…} number`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap_or(rest)),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().map(|s| s.value)
}

async fn scrape(app: &TestApp, base: &str) -> Vec<Sample> {
    let response = send(app.client.get(format!("{base}/metrics"))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&response.text().await.expect("a body"))
}

const DURATION: &str = "http_server_request_duration_seconds";

fn requests(samples: &[Sample], method: &str, route: &str, status: &str) -> Option<f64> {
    value(
        samples,
        &format!("{DURATION}_count"),
        &[
            ("http_request_method", method),
            ("http_route", route),
            ("http_response_status_code", status),
        ],
    )
}

#[tokio::test]
async fn requests_are_counted_by_method_route_template_and_status() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&staff).await;

    for _ in 0..2 {
        send(app.request(Method::GET, "/health/live")).await;
    }
    send(app.request(Method::HEAD, "/health/live")).await;
    app.get_as(&staff, &format!("/tickets/{ticket}")).await;
    let missing = app.get_as(&staff, "/tickets/987654321").await;
    assert_problem(missing, 404, "ticket_not_found").await;
    send(app.request(Method::GET, "/no/such/path/4242")).await;
    send(app.request(Method::DELETE, "/health/live")).await;
    send(app.request(
        Method::from_bytes(b"BREW").expect("a method"),
        "/health/live",
    ))
    .await;

    let samples = scrape(&app, &app.address).await;

    assert_eq!(requests(&samples, "GET", "/health/live", "200"), Some(2.0));
    assert_eq!(requests(&samples, "HEAD", "/health/live", "200"), Some(1.0));
    assert_eq!(requests(&samples, "GET", "/tickets/{id}", "200"), Some(1.0));
    assert_eq!(requests(&samples, "GET", "/tickets/{id}", "404"), Some(1.0));
    assert_eq!(requests(&samples, "POST", "/tickets", "201"), Some(1.0));
    assert_eq!(requests(&samples, "GET", "unmatched", "404"), Some(1.0));
    assert_eq!(
        requests(&samples, "DELETE", "/health/live", "405"),
        Some(1.0)
    );
    assert_eq!(
        requests(&samples, "_OTHER", "/health/live", "405"),
        Some(1.0)
    );
    // Raw paths never become labels.
    for sample in &samples {
        let route = sample.labels.get("http_route").map(String::as_str);
        assert!(
            !route.is_some_and(|r| r.contains("987654321") || r.contains("4242")),
            "{sample:?}"
        );
    }

    // A histogram: explicit buckets from 1 ms to 10 s, cumulative, and a sum.
    let labels = [
        ("http_request_method", "GET"),
        ("http_route", "/health/live"),
        ("http_response_status_code", "200"),
    ];
    let bucket = |le: &str| {
        let mut with_le = labels.to_vec();
        with_le.push(("le", le));
        value(&samples, &format!("{DURATION}_bucket"), &with_le)
    };
    for le in ["0.001", "0.005", "0.01", "0.1", "1", "10"] {
        assert!(bucket(le).is_some(), "le={le}");
    }
    assert_eq!(bucket("+Inf"), Some(2.0));
    assert!(value(&samples, &format!("{DURATION}_sum"), &labels).is_some_and(|s| s > 0.0));
}

#[tokio::test]
async fn problems_are_counted_by_code_and_status() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for _ in 0..3 {
        send(app.request(Method::GET, "/users/me")).await;
    }
    let staff_only = app.get_as(&customer, "/users").await;
    assert_problem(staff_only, 403, "forbidden").await;
    send(app.request(Method::GET, "/nowhere")).await;

    let samples = scrape(&app, &app.address).await;
    let problems = |code: &str, status: &str| {
        value(
            &samples,
            "http_server_problems_total",
            &[("code", code), ("http_response_status_code", status)],
        )
    };
    assert_eq!(problems("unauthenticated", "401"), Some(3.0));
    assert_eq!(problems("forbidden", "403"), Some(1.0));
    assert_eq!(problems("not_found", "404"), Some(1.0));
    assert_eq!(problems("internal_error", "500"), None);
}

#[tokio::test]
async fn the_pool_the_hashing_queue_streams_and_webhooks_are_shown() {
    let app = spawn_app().await;
    app.customer().await;

    let samples = scrape(&app, &app.address).await;

    let connections = |state| value(&samples, "db_client_connection_count", &[("state", state)]);
    let idle = connections("idle").expect("idle connections");
    let used = connections("used").expect("used connections");
    assert!(idle + used >= 1.0, "the requests above opened a connection");
    // The two workers' pools split `pool_max_size` (16); the background pool has 4.
    assert_eq!(value(&samples, "db_client_connection_max", &[]), Some(20.0));
    assert_eq!(
        value(&samples, "db_client_connection_pending_requests", &[]),
        Some(0.0)
    );
    // At rest: nothing hashes, nothing waits.
    assert_eq!(value(&samples, "password_hashes_running", &[]), Some(0.0));
    assert_eq!(value(&samples, "password_hashes_waiting", &[]), Some(0.0));
    for gauge in [
        "sse_streams_open",
        "webhook_deliveries_pending",
        "webhook_deliveries_failed",
    ] {
        assert_eq!(value(&samples, gauge, &[]), Some(0.0), "{gauge}");
    }
    assert_eq!(
        value(&samples, "event_tail_reconnections_total", &[]),
        Some(0.0),
        "a tail that never lost PostgreSQL"
    );
}

#[tokio::test]
async fn the_event_tails_reconnections_are_counted() {
    let app = spawn_app().await;
    let reconnections = |samples: Vec<Sample>| {
        value(&samples, "event_tail_reconnections_total", &[])
            .expect("event_tail_reconnections_total")
    };
    assert_eq!(reconnections(scrape(&app, &app.address).await), 0.0);

    // The tail's connection, by the application name it gives itself.
    let ended: bool = app
        .db
        .pool()
        .get()
        .await
        .expect("a database connection")
        .query_one(
            "SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'tickets-event-tail'",
            &[],
        )
        .await
        .expect("the tail's backend is ended")
        .get(0);
    assert!(ended, "the tail had a connection to end");

    eventually(|| async { (reconnections(scrape(&app, &app.address).await) == 1.0).then_some(()) })
        .await;
}

#[tokio::test]
async fn metrics_need_no_token_and_can_move_to_a_port_of_their_own() {
    let app = spawn_app_with(|settings| settings.server.metrics_port = Some(0)).await;
    let apart = app
        .metrics_address
        .clone()
        .expect("a metrics port was bound");

    let on_main = send(app.request(Method::GET, "/metrics")).await;
    assert_problem(on_main, 404, "not_found").await;
    send(app.request(Method::GET, "/health/live")).await;

    let samples = scrape(&app, &apart).await;
    assert_eq!(requests(&samples, "GET", "/health/live", "200"), Some(1.0));
    assert_eq!(requests(&samples, "GET", "unmatched", "404"), Some(1.0));

    let elsewhere = send(app.client.get(format!("{apart}/tickets"))).await;
    assert_problem(elsewhere, 404, "not_found").await;
    let head = send(app.client.head(format!("{apart}/metrics"))).await;
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.expect("an answer").is_empty());
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = spawn_app_with(|settings| settings.server.metrics = false).await;

    let health = send(app.request(Method::GET, "/health/live")).await;
    assert_eq!(health.status(), 200);
    let metrics = send(app.request(Method::GET, "/metrics")).await;
    assert_problem(metrics, 404, "not_found").await;
}

/// `webhook_deliveries_pending` and `webhook_deliveries_failed` as a scrape of `base`
/// shows them.
async fn outbox_gauges(app: &TestApp, base: &str) -> (f64, f64) {
    let samples = scrape(app, base).await;
    let gauge = |name| value(&samples, name, &[]).unwrap_or_else(|| panic!("no {name}"));
    (
        gauge("webhook_deliveries_pending"),
        gauge("webhook_deliveries_failed"),
    )
}

/// Scrapes `base` until the outbox gauges read `wanted`: they are refreshed every
/// `webhooks.count_interval_secs`, not at each scrape.
async fn until_outbox_gauges(app: &TestApp, base: &str, wanted: (f64, f64)) {
    eventually(|| async { (outbox_gauges(app, base).await == wanted).then_some(()) }).await;
}

#[tokio::test]
async fn webhook_deliveries_pending_and_failed_are_counted_in_the_shared_outbox() {
    // One retry, an hour after the first attempt: a delivery whose first attempt fails
    // stays pending for the whole test.
    let app = spawn_app_with(|settings| {
        settings.webhooks.retry_delays_secs = "3600".to_owned();
        settings.webhooks.allow_private_targets = true;
        settings.webhooks.poll_interval_ms = 20;
        settings.webhooks.count_interval_secs = 1;
    })
    .await;
    // A replica that delivers nothing reports the same outbox.
    let replica = app
        .replica_with(|settings| {
            settings.webhooks.concurrency = 0;
            settings.webhooks.count_interval_secs = 1;
        })
        .await;
    let root = app.superuser().await;
    let failing = Receiver::start(|_| (500, None)).await;
    let gone = Receiver::start(|_| (410, None)).await;
    let retried = id_field(&create(&app, &root, &failing.url("127.0.0.1"), &["*"]).await);
    let given_up = id_field(&create(&app, &root, &gone.url("127.0.0.1"), &["*"]).await);
    let customer = app.customer().await;
    app.open_ticket_id(&customer).await;
    app.open_ticket_id(&customer).await;

    // Four events each: every delivery to the first has had its attempt and waits for
    // its retry; `410` gave up the second's first, and disabled it, which ends its
    // others without an attempt.
    wait_for_attempts(&app, &root, retried, 4).await;
    eventually(|| async {
        let states = delivery_states(&app, given_up).await;
        (states.len() == 4 && states.iter().all(|s| s == "failed")).then_some(())
    })
    .await;
    assert_eq!(delivery_states(&app, retried).await, vec!["pending"; 4]);
    until_outbox_gauges(&app, &app.address, (4.0, 4.0)).await;
    until_outbox_gauges(&app, &replica.address, (4.0, 4.0)).await;

    // Deleting a subscription takes its deliveries along, failed ones included.
    let deleted =
        send(app.request_as(&root, Method::DELETE, &format!("/webhooks/{given_up}"))).await;
    assert_eq!(deleted.status(), 204);
    until_outbox_gauges(&app, &app.address, (4.0, 0.0)).await;
    until_outbox_gauges(&app, &replica.address, (4.0, 0.0)).await;
}
