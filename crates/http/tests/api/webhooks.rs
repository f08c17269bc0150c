//! Webhooks, end to end: superusers manage subscriptions, whose secret is shown once;
//! every matching event reaches a real HTTP receiver in the test, signed so that an
//! independent implementation (the `standardwebhooks` crate) verifies it; failures are
//! retried after the configured delays with the same `webhook-id`, then given up; `410`
//! disables; redirects are not followed; private targets are refused unless allowed;
//! and the attempts are listed newest first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_problem, header, ids, next_link, send, spawn_app_with, Actor, TestApp,
};

/// Generous: a failure means a delivery never came, not that it was slow.
const PATIENCE: Duration = Duration::from_secs(60);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn id(&self) -> String {
        header(&self.headers, "webhook-id")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What the receiver answers to its `n`-th request (0-based): a status, and a
/// `Location` for redirects.
type Script = Arc<dyn Fn(usize) -> (u16, Option<String>) + Send + Sync>;

/// A real HTTP server on a loopback port that records every request.
pub(crate) struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub(crate) async fn start(
        script: impl Fn(usize) -> (u16, Option<String>) + Send + Sync + 'static,
    ) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let state = (received.clone(), script);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("the receiver binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            port,
            received,
            server: handle,
        }
    }

    /// `http://<host>:<port>/hook`.
    pub(crate) fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/hook", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("the receiver's lock").clone()
    }

    /// Waits until the receiver has got `n` requests, and returns them.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(|| async {
            let received = self.received();
            (received.len() >= n).then_some(received)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Stopping is asynchronous; the test does not wait for it.
        drop(self.server.stop(false));
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<(Arc<Mutex<Vec<Received>>>, Script)>,
) -> HttpResponse {
    let mut headers = HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let n = {
        let mut received = state.0.lock().expect("the receiver's lock");
        received.push(Received {
            path: req.path().to_owned(),
            headers,
            body: body.to_vec(),
        });
        received.len() - 1
    };
    let (status, location) = (state.1)(n);
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a valid status"));
    if let Some(location) = location {
        response.insert_header(("Location", location));
    }
    response.finish()
}

/// Polls `check` until it gives a value, for at most [`PATIENCE`].
pub(crate) async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An app whose worker looks often, with these retry delays and private targets
/// allowed or not.
async fn app(retry_delays: &str, allow_private: bool) -> TestApp {
    let delays = retry_delays.to_owned();
    spawn_app_with(move |settings| {
        settings.webhooks.retry_delays_secs = delays;
        settings.webhooks.allow_private_targets = allow_private;
        settings.webhooks.poll_interval_ms = 20;
    })
    .await
}

/// Creates a webhook as `root`, asserting `201`; returns the answer (with `secret`).
pub(crate) async fn create(app: &TestApp, root: &Actor, url: &str, events: &[&str]) -> Value {
    let response = app
        .send_as(
            root,
            Method::POST,
            "/webhooks",
            &json!({"url": url, "events": events, "description": "test receiver"}),
        )
        .await;
    let location = header(response.headers(), "location");
    let created = assert_json(response, 201).await;
    assert_eq!(location, format!("/webhooks/{}", id_field(&created)));
    created
}

/// The webhook's attempts, newest first (one page).
async fn attempts(app: &TestApp, root: &Actor, webhook: i64) -> Vec<Value> {
    let list = app
        .get_json(root, &format!("/webhooks/{webhook}/deliveries?limit=1000"))
        .await;
    list.as_array().expect("a list").clone()
}

/// Waits until the webhook has `n` attempts listed, and returns them (newest first).
pub(crate) async fn wait_for_attempts(
    app: &TestApp,
    root: &Actor,
    webhook: i64,
    n: usize,
) -> Vec<Value> {
    eventually(|| async {
        let listed = attempts(app, root, webhook).await;
        (listed.len() >= n).then_some(listed)
    })
    .await
}

/// The state of every delivery of the webhook, oldest first.
pub(crate) async fn delivery_states(app: &TestApp, webhook: i64) -> Vec<String> {
    let client = app.db.pool().get().await.expect("a connection");
    client
        .query(
            "SELECT state::text FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id",
            &[&webhook],
        )
        .await
        .expect("the deliveries")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Waits until no delivery of the webhook is pending any more.
async fn settled(app: &TestApp, webhook: i64) -> Vec<String> {
    eventually(|| async {
        let states = delivery_states(app, webhook).await;
        (!states.is_empty() && states.iter().all(|s| s != "pending")).then_some(states)
    })
    .await
}

fn verify(secret: &str, delivery: &Received) {
    let verifier = standardwebhooks::Webhook::new(secret).expect("the secret is well-formed");
    verifier
        .verify(&delivery.body, &delivery.headers)
        .unwrap_or_else(|e| panic!("the signature of {delivery:?} does not verify: {e:?}"));
}

pub(crate) fn id_field(value: &Value) -> i64 {
    value["id"].as_i64().expect("an id")
}

#[tokio::test]
async fn only_superusers_manage_webhooks() {
    let app = app("", false).await;
    let root = app.superuser().await;
    let webhook = id_field(&create(&app, &root, "https://example.com/hook", &["*"]).await);
    let body = json!({"url": "https://example.com/other", "events": ["*"]});
    let routes = [
        (Method::POST, "/webhooks".to_owned()),
        (Method::GET, "/webhooks".to_owned()),
        (Method::GET, format!("/webhooks/{webhook}")),
        (Method::PATCH, format!("/webhooks/{webhook}")),
        (Method::DELETE, format!("/webhooks/{webhook}")),
        (Method::GET, format!("/webhooks/{webhook}/deliveries")),
    ];
    let customer = app.customer().await;
    let staff = app.staff().await;
    for (method, path) in &routes {
        for actor in [&customer, &staff] {
            let response = send(app.request_as(actor, method.clone(), path).json(&body)).await;
            assert_problem(response, 403, "forbidden").await;
        }
        let anonymous = send(app.request(method.clone(), path).json(&body)).await;
        assert_problem(anonymous, 401, "unauthenticated").await;
    }
    // Nothing was created, changed or deleted by them.
    let listed = app.get_json(&root, "/webhooks").await;
    assert_eq!(ids(&listed), vec![webhook]);
    let shown = app.get_json(&root, &format!("/webhooks/{webhook}")).await;
    assert_eq!(shown["url"], "https://example.com/hook");
}

#[tokio::test]
async fn the_secret_is_shown_once_and_subscriptions_are_managed() {
    let app = app("", false).await;
    let root = app.superuser().await;
    let created = create(
        &app,
        &root,
        " HTTPS://Example.COM/hook?a=1 ",
        &["ticket.status_changed", "note.created"],
    )
    .await;
    let id = id_field(&created);
    let secret = created["secret"].as_str().expect("a secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created["url"], "https://example.com/hook?a=1");
    assert_eq!(
        created["events"],
        json!(["ticket.status_changed", "note.created"])
    );
    assert_eq!(created["description"], "test receiver");
    assert_eq!(created["active"], true);
    crate::helpers::assert_timestamp(&created["created_at"]);

    let other = create(&app, &root, "http://example.org/", &["*"]).await;
    assert_ne!(
        other["secret"], created["secret"],
        "each webhook has its own"
    );

    // No other answer shows it.
    let shown = app.get_json(&root, &format!("/webhooks/{id}")).await;
    let mut expected = created.clone();
    expected
        .as_object_mut()
        .expect("an object")
        .remove("secret");
    assert_eq!(shown, expected);
    let page = send(app.request_as(&root, Method::GET, "/webhooks?limit=1")).await;
    let link = next_link(page.headers()).expect("a second page");
    let first = assert_json(page, 200).await;
    assert_eq!(first, json!([expected]));
    let rest = app.get_json(&root, &link).await;
    assert_eq!(ids(&rest), vec![id_field(&other)]);
    for body in [&first, &rest] {
        assert!(!body.to_string().contains("whsec_"), "{body}");
    }

    let patched = app
        .send_as(
            &root,
            Method::PATCH,
            &format!("/webhooks/{id}"),
            &json!({"events": ["*"], "active": false, "description": null}),
        )
        .await;
    let patched = assert_json(patched, 200).await;
    assert_eq!(patched["events"], json!(["*"]));
    assert_eq!(patched["active"], false);
    assert_eq!(patched["description"], "test receiver", "null leaves it");
    assert_eq!(patched["url"], created["url"]);
    assert!(patched.get("secret").is_none());

    let deleted = send(app.request_as(&root, Method::DELETE, &format!("/webhooks/{id}"))).await;
    assert_eq!(deleted.status(), 204);
    for (method, path) in [
        (Method::GET, format!("/webhooks/{id}")),
        (Method::DELETE, format!("/webhooks/{id}")),
        (Method::GET, format!("/webhooks/{id}/deliveries")),
    ] {
        let response = send(app.request_as(&root, method, &path)).await;
        assert_problem(response, 404, "webhook_not_found").await;
    }
    let missing = app
        .send_as(
            &root,
            Method::PATCH,
            &format!("/webhooks/{id}"),
            &json!({"active": true}),
        )
        .await;
    assert_problem(missing, 404, "webhook_not_found").await;
    let not_an_id = send(app.request_as(&root, Method::GET, "/webhooks/abc")).await;
    assert_problem(not_an_id, 404, "not_found").await;
}

#[tokio::test]
async fn invalid_subscriptions_are_refused() {
    let app = app("", false).await;
    let root = app.superuser().await;
    let cases = [
        (
            json!({"url": "ftp://example.com/", "events": ["*"]}),
            "url_scheme_unsupported",
        ),
        (
            json!({"url": "file:///etc/passwd", "events": ["*"]}),
            "url_scheme_unsupported",
        ),
        (
            json!({"url": "example.com/hook", "events": ["*"]}),
            "url_invalid",
        ),
        (
            json!({"url": "https://user:pw@example.com/", "events": ["*"]}),
            "url_invalid",
        ),
        // A host that no URL parser takes, and one that the WHATWG parser takes
        // (127.0.0.1) but the published pattern does not.
        (
            json!({"url": "https://exa mple.com/", "events": ["*"]}),
            "url_invalid",
        ),
        (
            json!({"url": "http://2130706433/", "events": ["*"]}),
            "url_invalid",
        ),
        (
            json!({"url": "https://example.com/", "events": []}),
            "events_invalid",
        ),
        (
            json!({"url": "https://example.com/", "events": ["ticket.deleted"]}),
            "events_invalid",
        ),
        (
            json!({"url": "https://example.com/", "events": ["*", "note.created"]}),
            "events_invalid",
        ),
    ];
    for (body, code) in cases {
        let response = app.send_as(&root, Method::POST, "/webhooks", &body).await;
        let problem = assert_problem(response, 400, code).await;
        assert!(problem["errors"].is_array(), "{body}: {problem}");
    }
    let no_url = app
        .send_as(&root, Method::POST, "/webhooks", &json!({"events": ["*"]}))
        .await;
    assert_eq!(no_url.status(), 400);
    let listed = app.get_json(&root, "/webhooks").await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn every_matching_event_is_delivered_signed_as_its_history_object() {
    let app = app("", true).await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (204, None)).await;
    let all = create(&app, &root, &receiver.url("127.0.0.1"), &["*"]).await;
    let secret = all["secret"].as_str().expect("a secret").to_owned();
    let notes = create(&app, &root, &receiver.url("localhost"), &["note.created"]).await;

    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.post_note_ok(&staff, ticket, "internal").await;
    app.patch_ticket_ok(&staff, ticket, &json!({"priority": "high"}))
        .await;

    let history = app.events_of(&staff, ticket).await;
    assert_eq!(history.len(), 4);
    // Four events to the first webhook, one to the second.
    let received = receiver.wait_for(5).await;
    let (to_all, to_notes): (Vec<_>, Vec<_>) = received
        .iter()
        .partition(|r| header(&r.headers, "host").starts_with("127.0.0.1"));
    let mut bodies: Vec<Value> = to_all.iter().map(|r| r.json()).collect();
    bodies.sort_by_key(id_field);
    assert_eq!(bodies, history, "each event as the History shows it");
    for delivery in &to_all {
        assert_eq!(delivery.path, "/hook");
        assert_eq!(
            header(&delivery.headers, "content-type"),
            "application/json"
        );
        verify(&secret, delivery);
        let timestamp: i64 = header(&delivery.headers, "webhook-timestamp")
            .parse()
            .expect("Unix seconds");
        assert!(timestamp > 1_700_000_000);
    }
    let mut ids: Vec<String> = received.iter().map(Received::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "one webhook-id per event and webhook");

    assert_eq!(to_notes.len(), 1);
    assert_eq!(to_notes[0].json()["type"], "note.created");
    verify(notes["secret"].as_str().expect("a secret"), to_notes[0]);
    // Signed with its own secret, not the other's.
    let other = standardwebhooks::Webhook::new(&secret).expect("a secret");
    assert!(other
        .verify(&to_notes[0].body, &to_notes[0].headers)
        .is_err());

    let listed = wait_for_attempts(&app, &root, id_field(&all), 4).await;
    let mut event_ids: Vec<i64> = listed
        .iter()
        .map(|a| a["event_id"].as_i64().expect("an event id"))
        .collect();
    event_ids.sort_unstable();
    assert_eq!(event_ids, history.iter().map(id_field).collect::<Vec<_>>());
    let attempt_ids: Vec<i64> = listed.iter().map(id_field).collect();
    let mut newest_first = attempt_ids.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(attempt_ids, newest_first, "newest first");
    for attempt in &listed {
        assert_eq!(attempt["webhook_id"], all["id"]);
        assert_eq!(attempt["attempt"], 1);
        assert_eq!(attempt["status_code"], 204);
        assert_eq!(attempt["error"], Value::Null);
        assert_eq!(attempt["next_attempt_at"], Value::Null);
        assert!(attempt["duration_ms"].as_u64().is_some());
        crate::helpers::assert_timestamp(&attempt["created_at"]);
        assert!(!attempt.to_string().contains(&secret));
    }
    assert_eq!(settled(&app, id_field(&all)).await, vec!["delivered"; 4]);
}

#[tokio::test]
async fn failures_are_retried_with_the_same_id_then_given_up() {
    let app = app("0,0", true).await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (500, None)).await;
    let webhook = create(&app, &root, &receiver.url("127.0.0.1"), &["ticket.created"]).await;
    let id = id_field(&webhook);
    let customer = app.customer().await;
    app.open_ticket_id(&customer).await;

    assert_eq!(settled(&app, id).await, vec!["failed"]);
    let received = receiver.received();
    assert_eq!(received.len(), 3, "the first attempt and one per delay");
    let first_id = received[0].id();
    for delivery in &received {
        assert_eq!(delivery.id(), first_id, "every retry carries the same id");
        verify(webhook["secret"].as_str().expect("a secret"), delivery);
    }

    let listed = attempts(&app, &root, id).await;
    let numbers: Vec<i64> = listed
        .iter()
        .map(|a| a["attempt"].as_i64().expect("a number"))
        .collect();
    assert_eq!(numbers, vec![3, 2, 1], "newest first");
    for attempt in &listed {
        assert_eq!(attempt["status_code"], 500);
        assert_eq!(attempt["error"], Value::Null);
    }
    assert_eq!(listed[0]["next_attempt_at"], Value::Null, "given up");
    for retried in &listed[1..] {
        crate::helpers::assert_timestamp(&retried["next_attempt_at"]);
    }

    // Pages of one, by the Link header.
    let page = send(app.request_as(
        &root,
        Method::GET,
        &format!("/webhooks/{id}/deliveries?limit=1"),
    ))
    .await;
    let link = next_link(page.headers()).expect("a second page");
    let first = assert_json(page, 200).await;
    assert_eq!(first[0], listed[0]);
    let second = app.get_json(&root, &link).await;
    assert_eq!(second[0], listed[1]);
}

#[tokio::test]
async fn a_later_success_ends_the_retries() {
    let app = app("0,0,0", true).await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|n| if n == 0 { (503, None) } else { (200, None) }).await;
    let webhook = create(&app, &root, &receiver.url("127.0.0.1"), &["ticket.created"]).await;
    let customer = app.customer().await;
    app.open_ticket_id(&customer).await;

    assert_eq!(settled(&app, id_field(&webhook)).await, vec!["delivered"]);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].id(), received[1].id());
    let listed = attempts(&app, &root, id_field(&webhook)).await;
    assert_eq!(listed[0]["status_code"], 200);
    assert_eq!(listed[0]["attempt"], 2);
    assert_eq!(listed[1]["status_code"], 503);
}

#[tokio::test]
async fn gone_disables_the_webhook() {
    let app = app("0,0", true).await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (410, None)).await;
    let webhook = create(&app, &root, &receiver.url("127.0.0.1"), &["ticket.created"]).await;
    let id = id_field(&webhook);
    let customer = app.customer().await;
    app.open_ticket_id(&customer).await;

    assert_eq!(settled(&app, id).await, vec!["failed"]);
    assert_eq!(receiver.received().len(), 1, "no retry after 410");
    let shown = app.get_json(&root, &format!("/webhooks/{id}")).await;
    assert_eq!(shown["active"], false);
    let listed = attempts(&app, &root, id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status_code"], 410);
    assert_eq!(listed[0]["next_attempt_at"], Value::Null);

    // A disabled webhook gets nothing more.
    app.open_ticket_id(&customer).await;
    assert_eq!(delivery_states(&app, id).await, vec!["failed"]);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = app("", true).await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (307, Some("/elsewhere".to_owned()))).await;
    let webhook = create(&app, &root, &receiver.url("127.0.0.1"), &["ticket.created"]).await;
    let customer = app.customer().await;
    app.open_ticket_id(&customer).await;

    assert_eq!(settled(&app, id_field(&webhook)).await, vec!["failed"]);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/hook", "never /elsewhere");
    let listed = attempts(&app, &root, id_field(&webhook)).await;
    assert_eq!(listed[0]["status_code"], 307);
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let app = app("", false).await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (200, None)).await;
    // An address in the URL, and a name that resolves to loopback addresses.
    let literal = create(&app, &root, &receiver.url("127.0.0.1"), &["ticket.created"]).await;
    let named = create(&app, &root, &receiver.url("localhost"), &["ticket.created"]).await;
    let ipv6 = create(
        &app,
        &root,
        &format!("http://[::1]:{}/hook", receiver.port),
        &["ticket.created"],
    )
    .await;
    let customer = app.customer().await;
    app.open_ticket_id(&customer).await;

    for webhook in [&literal, &named, &ipv6] {
        let id = id_field(webhook);
        assert_eq!(settled(&app, id).await, vec!["failed"]);
        let listed = attempts(&app, &root, id).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["status_code"], Value::Null, "no HTTP answer");
        let error = listed[0]["error"].as_str().expect("why");
        assert!(error.contains("loopback"), "{error}");
        assert!(
            !error.contains(receiver.port.to_string().as_str()),
            "no URL: {error}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn replicas_share_the_outbox_and_deliver_each_event_once() {
    let app = app("", true).await;
    let replica = app
        .replica_with(|settings| {
            settings.webhooks.allow_private_targets = true;
            settings.webhooks.poll_interval_ms = 20;
        })
        .await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (200, None)).await;
    let webhook = create(&app, &root, &receiver.url("127.0.0.1"), &["*"]).await;
    let customer = app.customer().await;
    for _ in 0..10 {
        app.open_ticket_id(&customer).await;
    }

    assert_eq!(
        settled(&app, id_field(&webhook)).await,
        vec!["delivered"; 20]
    );
    let received = receiver.received();
    let mut ids: Vec<String> = received.iter().map(Received::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    assert_eq!(received.len(), 20, "no delivery made twice");
    drop(replica);
}

#[tokio::test]
async fn a_delivery_starts_when_its_event_commits_not_at_the_next_poll() {
    // The worker looks at the outbox on its own at start, before anything is queued,
    // then once every ten minutes.
    let app = spawn_app_with(|settings| {
        settings.webhooks.allow_private_targets = true;
        settings.webhooks.poll_interval_ms = 600_000;
    })
    .await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (204, None)).await;
    create(&app, &root, &receiver.url("127.0.0.1"), &["ticket.created"]).await;
    let customer = app.customer().await;

    let ticket = app.open_ticket_id(&customer).await;
    // Far below the poll interval, and far above what a delivery takes: only the
    // commit's notification can bring it in time.
    let deadline = Duration::from_secs(20);
    let delivered = tokio::time::timeout(deadline, receiver.wait_for(1))
        .await
        .expect("the delivery came long before the next poll");
    assert_eq!(delivered[0].json()["ticket_id"], ticket);
}

#[tokio::test]
async fn a_replica_with_no_concurrency_delivers_nothing() {
    let app = spawn_app_with(|settings| {
        settings.webhooks.allow_private_targets = true;
        settings.webhooks.poll_interval_ms = 20;
        settings.webhooks.concurrency = 0;
    })
    .await;
    let root = app.superuser().await;
    let receiver = Receiver::start(|_| (204, None)).await;
    let webhook = create(&app, &root, &receiver.url("127.0.0.1"), &["*"]).await;
    let customer = app.customer().await;
    app.open_ticket_id(&customer).await;

    // Nothing can prove a negative in time; many polls and the commit's notification
    // have passed by then.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.received().is_empty());
    assert_eq!(
        delivery_states(&app, id_field(&webhook)).await,
        ["pending", "pending"]
    );
}
