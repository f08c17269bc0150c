//! `spawn_app()` and the small vocabulary the tests speak: actors of each role, tickets
//! in a given state, problem+json assertions and direct looks at the database.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http_adapter::settings::Settings;
use http_adapter::shutdown::StopRequest;
use http_adapter::startup::Application;
use postgres_adapter::testing::TestDatabase;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

/// The HS256 key of every test application (40 bytes).
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789-abcdefghijklm";
/// The staff API key of every test application.
pub const STAFF_KEY: &str = "test-staff-key-0123456789";
/// The password of the users that the helpers register.
pub const PASSWORD: &str = "correct horse battery";
pub const ISSUER: &str = "tickets";
pub const AUDIENCE: &str = "tickets-api";

/// Strings that must never reach a client, whatever went wrong.
const LEAKS: [&str; 8] = [
    JWT_SECRET,
    STAFF_KEY,
    "SQLSTATE",
    "duplicate key",
    "constraint",
    "panicked",
    "tokio_postgres",
    "$2b$",
];

/// A running application on its own database. Dropping it checks the database's
/// invariants (see `invariants.rs`) and fails the test if they are broken.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub address: String,
    /// The same for `/metrics` when `server.metrics_port` serves it apart.
    pub metrics_address: Option<String>,
    /// No cookie store, redirects off.
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub staff_key: String,
    actors: AtomicUsize,
    /// What SIGTERM and SIGINT are to the binary.
    stop_requests: mpsc::UnboundedSender<StopRequest>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub email: String,
    pub token: String,
}

/// The application with the test settings: port 0, two workers, cheap bcrypt, a known
/// JWT secret and staff key.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The test settings on the database at `url`.
fn test_settings(url: &str) -> Settings {
    let mut settings = Settings::defaults().expect("the compiled-in settings parse");
    settings.server.host = "127.0.0.1".to_owned();
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.database.url = SecretString::from(url.to_owned());
    settings.auth.jwt_secret = Some(SecretString::from(JWT_SECRET));
    settings.auth.staff_api_key = Some(SecretString::from(STAFF_KEY));
    settings.auth.bcrypt_cost = 4;
    settings
}

/// Another instance of the service on a test app's database, as a second replica
/// behind a load balancer would be. It stops when dropped.
pub struct Replica {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    server: JoinHandle<std::io::Result<()>>,
    _stop_requests: mpsc::UnboundedSender<StopRequest>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// A second instance on this app's database.
    pub async fn replica(&self) -> Replica {
        self.replica_with(|_| {}).await
    }

    /// Like [`TestApp::replica`], with `configure` applied to the settings last.
    pub async fn replica_with(&self, configure: impl FnOnce(&mut Settings)) -> Replica {
        let mut settings = test_settings(self.db.url());
        configure(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the replica builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop_requests, receiver) = mpsc::unbounded_channel();
        Replica {
            address,
            server: tokio::spawn(app.run_until(receiver)),
            _stop_requests: stop_requests,
        }
    }
}

/// Like [`spawn_app`], with `configure` applied to the settings last.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::create().await;
    let mut settings = test_settings(db.url());
    configure(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let (stop_requests, receiver) = mpsc::unbounded_channel();
    let server = tokio::spawn(app.run_until(receiver));
    TestApp {
        address,
        metrics_address,
        client: client_builder().build().expect("an HTTP client"),
        db,
        staff_key: STAFF_KEY.to_owned(),
        actors: AtomicUsize::new(0),
        stop_requests,
        server: Some(server),
    }
}

/// The settings every test client shares: no redirects, no proxy, a generous timeout.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
}

impl TestApp {
    /// Asks the server to stop, as the binary does on SIGTERM (`Drain`) or SIGINT.
    pub fn request_stop(&self, request: StopRequest) {
        self.stop_requests
            .send(request)
            .expect("the server task listens for stop requests");
    }

    /// Waits for the server to have stopped, and returns how it ended.
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        let server = self.server.take().expect("the server was not awaited yet");
        // Generous: a failure here means the server never stops, not that it is slow.
        tokio::time::timeout(std::time::Duration::from_secs(60), server)
            .await
            .expect("the server stops")
            .expect("the server task does not panic")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request carrying the actor's token as `Authorization: Bearer`.
    pub fn request_as(&self, actor: &Actor, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(&actor.token)
    }

    pub async fn get_as(&self, actor: &Actor, path: &str) -> Response {
        send(self.request_as(actor, Method::GET, path)).await
    }

    /// `GET path` as `actor`, asserting `200` and a JSON body.
    pub async fn get_json(&self, actor: &Actor, path: &str) -> Value {
        assert_json(self.get_as(actor, path).await, 200).await
    }

    /// Sends `body` as JSON, with `token` as bearer when given.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut request = self.request(method, path).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    /// Sends `body` as JSON as `actor`.
    pub async fn send_as(
        &self,
        actor: &Actor,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Response {
        self.send_json(method, path, Some(&actor.token), body).await
    }

    /// Sends raw bytes as `actor`, with `content_type` when given.
    pub async fn send_raw(
        &self,
        actor: Option<&Actor>,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self.request(method, path).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(actor) = actor {
            request = request.bearer_auth(&actor.token);
        }
        send(request).await
    }

    // ---- users -------------------------------------------------------------------

    pub async fn register_with(&self, body: &Value, bearer: Option<&str>) -> Response {
        self.send_json(Method::POST, "/users", bearer, body).await
    }

    pub async fn register(&self, email: &str, password: &str, username: &str) -> Response {
        let body = json!({ "email": email, "password": password, "username": username });
        self.register_with(&body, None).await
    }

    /// Registers staff with the staff API key.
    pub async fn register_staff(&self, email: &str, password: &str, username: &str) -> Response {
        let body = json!({
            "email": email, "password": password, "username": username, "isStaff": true,
        });
        self.register_with(&body, Some(&self.staff_key)).await
    }

    pub async fn login_response(&self, email: &str, password: &str) -> Response {
        let body = json!({ "email": email, "password": password });
        self.send_json(Method::POST, "/login", None, &body).await
    }

    /// Logs in and returns the token, asserting success.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let body = assert_json(self.login_response(email, password).await, 200).await;
        str_field(&body, "token").to_owned()
    }

    /// A fresh e-mail address for this app, with `kind` in its local part.
    pub fn unique_email(&self, kind: &str) -> String {
        let n = self.actors.fetch_add(1, Ordering::Relaxed);
        format!("{kind}{n}@example.com")
    }

    async fn actor_from(&self, registered: Response, email: String) -> Actor {
        let user = assert_json(registered, 201).await;
        let token = self.login(&email, PASSWORD).await;
        Actor {
            id: id_of(&user),
            email,
            token,
        }
    }

    /// A newly registered, logged-in customer.
    pub async fn customer(&self) -> Actor {
        let email = self.unique_email("customer");
        let registered = self.register(&email, PASSWORD, "customer").await;
        self.actor_from(registered, email).await
    }

    /// A newly registered (by staff key), logged-in member of staff.
    pub async fn staff(&self) -> Actor {
        let email = self.unique_email("staff");
        let registered = self.register_staff(&email, PASSWORD, "staff").await;
        self.actor_from(registered, email).await
    }

    /// `n` newly registered, logged-in members of staff.
    pub async fn staff_members(&self, n: usize) -> Vec<Actor> {
        let mut staff = Vec::with_capacity(n);
        for _ in 0..n {
            staff.push(self.staff().await);
        }
        staff
    }

    /// A member of staff promoted to superuser in the database.
    pub async fn superuser(&self) -> Actor {
        let actor = self.staff().await;
        self.execute(
            "UPDATE users SET is_staff = true, is_superuser = true WHERE id = $1",
            actor.id,
        )
        .await;
        actor
    }

    // ---- tickets and messages ------------------------------------------------------

    /// Opens a ticket as `actor`, asserting `201`; returns the ticket object.
    pub async fn open_ticket(&self, actor: &Actor, topic: &str, text: &str) -> Value {
        self.open_ticket_with_etag(actor, topic, text).await.1
    }

    /// Opens a ticket as `actor`, asserting `201`; returns the response's `ETag` and
    /// the ticket object.
    pub async fn open_ticket_with_etag(
        &self,
        actor: &Actor,
        topic: &str,
        text: &str,
    ) -> (String, Value) {
        let body = json!({ "topic": topic, "text": text });
        let response = self.send_as(actor, Method::POST, "/tickets", &body).await;
        let etag = header(response.headers(), "etag");
        (etag, assert_json(response, 201).await)
    }

    /// Opens a ticket and returns its id.
    pub async fn open_ticket_id(&self, actor: &Actor) -> i64 {
        id_of(&self.open_ticket(actor, "help", "it does not work").await)
    }

    /// Opens `n` tickets as `actor`, one after the other (so that creation order is id
    /// order); returns their ids, oldest first.
    pub async fn open_tickets(&self, actor: &Actor, n: usize) -> Vec<i64> {
        let mut opened = Vec::with_capacity(n);
        for _ in 0..n {
            opened.push(self.open_ticket_id(actor).await);
        }
        opened
    }

    /// A fresh ticket by `author` brought into `status`: `staff` respond first when
    /// `with_response` (which `resolved` needs) and set staff statuses; the author
    /// cancels.
    pub async fn ticket_with_status(
        &self,
        author: &Actor,
        staff: &Actor,
        status: &str,
        with_response: bool,
    ) -> i64 {
        let ticket = self.open_ticket_id(author).await;
        if with_response || status == "resolved" {
            self.post_message_ok(staff, ticket, "a response").await;
        }
        match status {
            "pending" => {}
            "canceled" => {
                self.set_status_ok(author, ticket, status).await;
            }
            _ => {
                self.set_status_ok(staff, ticket, status).await;
            }
        }
        assert_eq!(self.ticket_row(ticket).await.0, status);
        ticket
    }

    pub async fn post_message(&self, actor: &Actor, ticket: i64, text: &str) -> Response {
        let path = format!("/tickets/{ticket}/messages");
        self.send_as(actor, Method::POST, &path, &json!({ "text": text }))
            .await
    }

    /// Posts a message, asserting `201`; returns the message object.
    pub async fn post_message_ok(&self, actor: &Actor, ticket: i64, text: &str) -> Value {
        assert_json(self.post_message(actor, ticket, text).await, 201).await
    }

    /// `PATCH /tickets/{id}` with `{"status": status}`.
    pub async fn set_status(&self, actor: &Actor, ticket: i64, status: &str) -> Response {
        self.change_status(Method::PATCH, actor, ticket, status)
            .await
    }

    /// Sets the status, asserting `200`; returns the ticket object.
    pub async fn set_status_ok(&self, actor: &Actor, ticket: i64, status: &str) -> Value {
        assert_json(self.set_status(actor, ticket, status).await, 200).await
    }

    pub async fn change_status(
        &self,
        method: Method,
        actor: &Actor,
        ticket: i64,
        status: &str,
    ) -> Response {
        let path = format!("/tickets/{ticket}");
        self.send_as(actor, method, &path, &json!({ "status": status }))
            .await
    }

    // ---- workflow: priority, assignment, notes, history ------------------------------

    /// `PATCH /tickets/{id}` with any `body`.
    pub async fn patch_ticket(&self, actor: &Actor, ticket: i64, body: &Value) -> Response {
        self.send_as(actor, Method::PATCH, &format!("/tickets/{ticket}"), body)
            .await
    }

    /// Patches, asserting `200`; returns the ticket object.
    pub async fn patch_ticket_ok(&self, actor: &Actor, ticket: i64, body: &Value) -> Value {
        assert_json(self.patch_ticket(actor, ticket, body).await, 200).await
    }

    /// Posts an internal note (`"internal": true`).
    pub async fn post_note(&self, actor: &Actor, ticket: i64, text: &str) -> Response {
        let path = format!("/tickets/{ticket}/messages");
        let body = json!({ "text": text, "internal": true });
        self.send_as(actor, Method::POST, &path, &body).await
    }

    /// Posts an internal note, asserting `201`; returns the message object.
    pub async fn post_note_ok(&self, actor: &Actor, ticket: i64, text: &str) -> Value {
        assert_json(self.post_note(actor, ticket, text).await, 201).await
    }

    /// `GET /tickets/{id}` as `actor`, asserting `200`; returns the ticket object.
    pub async fn ticket_as(&self, actor: &Actor, ticket: i64) -> Value {
        self.get_json(actor, &format!("/tickets/{ticket}")).await
    }

    /// The ticket's history as `actor` sees it, every page (following `Link`).
    pub async fn events_of(&self, actor: &Actor, ticket: i64) -> Vec<Value> {
        let path = format!("/tickets/{ticket}/events?limit=1000");
        self.collect_pages(actor, &path, Value::clone).await.0
    }

    /// Sends a request as `actor` with extra `headers` (repeated names are sent
    /// repeatedly) and, when given, a JSON body.
    pub async fn send_with_headers(
        &self,
        actor: &Actor,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.request_as(actor, method, path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    // ---- the database, directly ------------------------------------------------------

    /// Runs a statement with one `i64` parameter.
    pub async fn execute(&self, sql: &str, id: i64) -> u64 {
        let client = self.db.pool().get().await.expect("a database connection");
        client
            .execute(sql, &[&id])
            .await
            .expect("the statement runs")
    }

    /// Runs a query returning one `i64` (e.g. a count).
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let client = self.db.pool().get().await.expect("a database connection");
        let row = client.query_one(sql, &[]).await.expect("the query runs");
        row.get(0)
    }

    /// The number of rows of `users`, `tickets` and `messages`.
    pub async fn row_counts(&self) -> [i64; 3] {
        let client = self.db.pool().get().await.expect("a database connection");
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tickets), \
                 (SELECT count(*) FROM messages)",
                &[],
            )
            .await
            .expect("the counts");
        [row.get(0), row.get(1), row.get(2)]
    }

    /// Everything a refused write could have changed, for before/after comparisons:
    /// users, tickets, messages, ticket events and idempotency keys, in that order,
    /// separated by `" | "`.
    pub async fn snapshot(&self) -> String {
        let client = self.db.pool().get().await.expect("a database connection");
        let row = client
            .query_one(
                "SELECT concat_ws(' | ', \
                   (SELECT coalesce(string_agg(concat_ws(',', id, email, username, password_hash, \
                      is_staff, is_superuser, is_active, tickets_count), ';' ORDER BY id), '') \
                      FROM users), \
                   (SELECT coalesce(string_agg(concat_ws(',', id, updated_at, author_id, topic, \
                      status, priority, assignee_id, version), ';' ORDER BY id), '') FROM tickets), \
                   (SELECT coalesce(string_agg(concat_ws(',', id, ticket_id, author_id, type, \
                      text), ';' ORDER BY id), '') FROM messages), \
                   (SELECT coalesce(string_agg(concat_ws(',', id, ticket_id, actor_id, type, \
                      internal, data), ';' ORDER BY id), '') FROM ticket_events), \
                   (SELECT coalesce(string_agg(concat_ws(',', user_id, key, created_at), ';' \
                      ORDER BY user_id, key), '') FROM idempotency_keys))",
                &[],
            )
            .await
            .expect("the snapshot");
        row.get(0)
    }

    /// The ticket's status and `updated_at` (in microseconds) as stored.
    pub async fn ticket_row(&self, ticket: i64) -> (String, i64) {
        let client = self.db.pool().get().await.expect("a database connection");
        let row = client
            .query_one(
                "SELECT status::text, (extract(epoch FROM updated_at) * 1000000)::int8 \
                 FROM tickets WHERE id = $1",
                &[&ticket],
            )
            .await
            .expect("the ticket exists");
        (row.get(0), row.get(1))
    }
}

/// The method of that name.
pub fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("a method name")
}

/// Sends a request; a transport error fails the test.
pub async fn send(request: RequestBuilder) -> Response {
    request
        .send()
        .await
        .expect("the request reaches the server")
}

/// Asserts the status and a JSON body (`application/json`); returns the body.
pub async fn assert_json(response: Response, status: u16) -> Value {
    let actual = response.status();
    let content_type = header(response.headers(), "content-type");
    let text = response.text().await.expect("a response body");
    assert_eq!(actual.as_u16(), status, "unexpected status; body: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "Content-Type {content_type:?} is not application/json; body: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"))
}

/// Asserts an RFC 9457 problem: the status, `application/problem+json`, the fields
/// `type`, `title`, `status`, `detail` and `code`, and nothing secret in the body.
/// Returns the body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_problem_any(response, status, &[code]).await
}

/// Like [`assert_problem`], accepting any of `codes`.
pub async fn assert_problem_any(response: Response, status: u16, codes: &[&str]) -> Value {
    check_problem(response, status, codes)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// What [`assert_problem_any`] asserts, as a `Result` with the reason it fails. No
/// `codes` accepts any code.
pub async fn check_problem(
    response: Response,
    status: u16,
    codes: &[&str],
) -> Result<Value, String> {
    let actual = response.status();
    let content_type = header(response.headers(), "content-type");
    let text = response.text().await.map_err(|e| format!("no body: {e}"))?;
    let fail = |what: String| Err(format!("{what}; body: {text}"));
    if actual.as_u16() != status {
        return fail(format!("status {actual}, expected {status}"));
    }
    if !content_type.starts_with("application/problem+json") {
        return fail(format!(
            "Content-Type {content_type:?}, not application/problem+json"
        ));
    }
    if let Some(leak) = LEAKS.iter().find(|leak| text.contains(*leak)) {
        return fail(format!("the error body leaks {leak:?}"));
    }
    let Ok(body) = serde_json::from_str::<Value>(&text) else {
        return fail("invalid JSON".to_owned());
    };
    // For `about:blank`, RFC 9457 wants the status's reason phrase as the title
    // (413 has two names: RFC 7231's and RFC 9110's).
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    let title = body["title"].as_str().unwrap_or_default();
    let code = body["code"].as_str().unwrap_or_default();
    if !body["type"].is_string() {
        return fail("no `type`".to_owned());
    }
    if title != reason && !(status == 413 && title == "Content Too Large") {
        return fail(format!("`title` {title:?} is not {reason:?}"));
    }
    if body["status"] != status {
        return fail("`status` differs from the status".to_owned());
    }
    if body["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
        return fail("no `detail` sentence".to_owned());
    }
    if !is_snake_case(code) {
        return fail("no snake_case `code`".to_owned());
    }
    if !codes.is_empty() && !codes.contains(&code) {
        return fail(format!("code {code:?}, expected one of {codes:?}"));
    }
    Ok(body)
}

/// Like [`check_problem`], accepting any of several `(status, code)` pairs.
pub async fn check_problem_among(
    response: Response,
    allowed: &[(u16, &str)],
) -> Result<Value, String> {
    let status = response.status().as_u16();
    let codes: Vec<&str> = allowed
        .iter()
        .filter(|(s, _)| *s == status)
        .map(|(_, c)| *c)
        .collect();
    if codes.is_empty() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!(
            "status {status}, expected {allowed:?}; body: {text}"
        ));
    }
    check_problem(response, status, &codes).await
}

/// Collects failed expectations of a table-driven test so that one run reports every
/// row that fails, not only the first.
#[derive(Debug, Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Records `what` unless the response is the problem described (any of `codes`).
    pub async fn problem(&mut self, what: &str, response: Response, status: u16, codes: &[&str]) {
        if let Err(e) = check_problem(response, status, codes).await {
            self.record(format!("{what}: {e}"));
        }
    }

    /// Records `path` unless `GET path` as `actor` is the problem described.
    pub async fn get_problem(
        &mut self,
        app: &TestApp,
        actor: &Actor,
        path: &str,
        status: u16,
        codes: &[&str],
    ) {
        let response = app.get_as(actor, path).await;
        self.problem(path, response, status, codes).await;
    }

    pub fn record(&mut self, failure: String) {
        self.0.push(failure);
    }

    /// Records `what` unless `ok` holds.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    pub fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} failures:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

fn is_snake_case(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Asserts that a validation problem names `field` in its `errors`.
pub fn assert_names_field(problem: &Value, field: &str) {
    let errors = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no `errors` array in {problem}"));
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == field && e["message"].is_string()),
        "`errors` does not name {field:?}: {problem}"
    );
}

/// Asserts the headers every API response carries, errors included:
/// `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.
pub fn assert_not_cached_or_sniffed(headers: &HeaderMap, what: &str) {
    let cache_control = header(headers, "cache-control");
    assert!(
        cache_control
            .split(',')
            .any(|d| d.trim().eq_ignore_ascii_case("no-store")),
        "{what}: Cache-Control {cache_control:?}"
    );
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
}

/// The priorities of the contract, lowest first.
pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

/// The strong entity tag of a ticket at `version`: `"<version>"`.
pub fn etag_of(version: i64) -> String {
    format!("\"{version}\"")
}

/// A ticket object's `version`.
pub fn version_of(ticket: &Value) -> i64 {
    ticket["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer `version` in {ticket}"))
}

/// The `type`s of a list of events, in order.
pub fn event_types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| str_field(e, "type")).collect()
}

/// A header's value as text, `""` when absent.
pub fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The `id` of a JSON object.
pub fn id_of(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer `id` in {value}"))
}

/// The ids of a JSON array of objects, in order.
pub fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(id_of)
        .collect()
}

pub fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{field}` in {value}"))
}

/// Asserts an RFC 3339 UTC timestamp: `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`.
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp {value} is not a string"));
    assert!(
        is_utc_timestamp(text),
        "{text:?} is not an RFC 3339 UTC timestamp"
    );
    timestamp(text);
}

fn is_utc_timestamp(text: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let bytes = text.as_bytes();
    let Some((b'Z', body)) = bytes.split_last() else {
        return false;
    };
    if body.len() < SHAPE.len() {
        return false;
    }
    let (fixed, fraction) = body.split_at(SHAPE.len());
    let fixed_ok = SHAPE.iter().zip(fixed).all(|(shape, c)| {
        if *shape == b'd' {
            c.is_ascii_digit()
        } else {
            shape == c
        }
    });
    let fraction_ok = match fraction.split_first() {
        None => true,
        Some((b'.', digits)) => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    fixed_ok && fraction_ok
}

/// Parses an RFC 3339 timestamp.
pub fn timestamp(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

/// Parses a JSON timestamp field.
pub fn timestamp_field(value: &Value, field: &str) -> time::OffsetDateTime {
    timestamp(str_field(value, field))
}

/// The target of a `Link: <…>; rel="next"` header as a path (or absolute URL).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(links)
        .find(|(_, params)| {
            params
                .split(';')
                .any(|param| param.trim().replace(' ', "") == "rel=\"next\"")
        })
        .map(|(target, _)| target)
}

/// The `cursor` of a response's `Link: rel="next"`.
pub fn next_cursor(response: &Response) -> String {
    let link = next_link(response.headers()).expect("a Link rel=next");
    link.split(['?', '&'])
        .find_map(|p| p.strip_prefix("cursor="))
        .expect("a cursor in the link")
        .to_owned()
}

/// The `(target, parameters)` pairs of a `Link` header value. Targets may hold commas
/// (`status=pending,resolved`), so links are split at `<`, not at `,`.
fn links(value: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(length) = rest[start..].find('>') else {
            break;
        };
        let target = &rest[start + 1..start + length];
        let after = &rest[start + length + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        found.push((target.to_owned(), after[..params_end].to_owned()));
        rest = &after[params_end..];
    }
    found
}

impl TestApp {
    /// Follows `rel="next"` links from `first_path` as `actor`, collecting every page's
    /// rows (`rows` picks the array out of a page body). Returns the rows and the number
    /// of pages.
    pub async fn collect_pages(
        &self,
        actor: &Actor,
        first_path: &str,
        rows: impl Fn(&Value) -> Value,
    ) -> (Vec<Value>, usize) {
        let mut all = Vec::new();
        let mut pages = 0;
        let mut next = Some(first_path.to_owned());
        while let Some(target) = next {
            pages += 1;
            assert!(pages <= 10_000, "the Link chain does not end");
            let url = if target.starts_with('/') {
                self.url(&target)
            } else {
                target
            };
            let response = send(self.client.get(url).bearer_auth(&actor.token)).await;
            next = next_link(response.headers());
            let body = assert_json(response, 200).await;
            let page = rows(&body);
            let page = page
                .as_array()
                .unwrap_or_else(|| panic!("a page is not an array: {page}"));
            assert!(
                next.is_none() || !page.is_empty(),
                "an empty page must not link to a next one"
            );
            all.extend(page.iter().cloned());
        }
        (all, pages)
    }
}

// ---- tokens ------------------------------------------------------------------------

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The standard claims of a token for `user_id`, valid for `ttl` seconds from now.
pub fn claims(user_id: i64, ttl: i64) -> Value {
    let now = now_secs();
    json!({
        "sub": user_id.to_string(),
        "iat": now,
        "exp": now + ttl,
        "iss": ISSUER,
        "aud": AUDIENCE,
    })
}

/// Signs `claims` with `alg` and `secret`.
pub fn sign(claims: &Value, alg: jsonwebtoken::Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("the token encodes")
}

/// An HS256 token signed with the application's own key.
pub fn sign_hs256(claims: &Value) -> String {
    sign(
        claims,
        jsonwebtoken::Algorithm::HS256,
        JWT_SECRET.as_bytes(),
    )
}

/// An unsigned token (`alg: none`) with an empty signature.
pub fn unsigned_token(claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT" });
    format!("{}.", token_body(&header, claims))
}

/// A token with any `header`, signed with HMAC-SHA256 and the application's key
/// whatever the header claims: the forgery of an attacker who knows the key's use but
/// not the key would be weaker still.
pub fn hs256_signed_with_header(header: &Value, claims: &Value) -> String {
    let body = token_body(header, claims);
    let signature = jsonwebtoken::crypto::sign(
        body.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .expect("HMAC signs anything");
    format!("{body}.{signature}")
}

/// `base64url(header).base64url(claims)`, the part of a JWT that is signed.
fn token_body(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    )
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Asserts the shape of a user object: its fields and types, no password hash, and
/// `is_superuser` exactly when the caller is staff.
pub fn assert_user_object(user: &Value, seen_by_staff: bool) {
    id_of(user);
    assert_timestamp(&user["created_at"]);
    for field in ["username", "email"] {
        str_field(user, field);
    }
    for field in ["is_staff", "is_active"] {
        assert!(user[field].is_boolean(), "no boolean `{field}` in {user}");
    }
    assert!(
        user["tickets_count"].is_i64(),
        "no integer `tickets_count` in {user}"
    );
    assert_eq!(
        user["is_superuser"].is_boolean(),
        seen_by_staff,
        "`is_superuser` must appear exactly for staff callers: {user}"
    );
    let object = user
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {user}"));
    for key in object.keys() {
        assert!(
            !key.contains("password"),
            "a user object holds `{key}`: {user}"
        );
    }
    assert!(
        !user.to_string().contains("$2"),
        "a user object holds a hash: {user}"
    );
}

/// Asserts the shape of a ticket object; `author` appears exactly for staff callers.
/// `assignee` is `null` or `{"id", "username"}`, whoever asks.
pub fn assert_ticket_object(ticket: &Value, seen_by_staff: bool) {
    id_of(ticket);
    assert_timestamp(&ticket["created_at"]);
    assert_timestamp(&ticket["updated_at"]);
    str_field(ticket, "topic");
    str_field(ticket, "status");
    assert!(
        PRIORITIES.contains(&str_field(ticket, "priority")),
        "an unknown priority in {ticket}"
    );
    let assignee = &ticket["assignee"];
    assert!(
        assignee.is_null() || (assignee["id"].is_i64() && assignee["username"].is_string()),
        "`assignee` is neither null nor {{id, username}}: {ticket}"
    );
    assert!(
        ticket["version"].as_i64().is_some_and(|v| v >= 1),
        "no positive integer `version` in {ticket}"
    );
    assert_eq!(
        ticket["author"].is_string(),
        seen_by_staff,
        "`author` must appear exactly for staff callers: {ticket}"
    );
}

/// Asserts the shape of a message object; `author` appears exactly for staff callers.
pub fn assert_message_object(message: &Value, seen_by_staff: bool) {
    id_of(message);
    assert_timestamp(&message["created_at"]);
    str_field(message, "type");
    str_field(message, "text");
    assert_eq!(
        message["author"].is_string(),
        seen_by_staff,
        "`author` must appear exactly for staff callers: {message}"
    );
}

// ---- locks: holding a request at a known point ------------------------------------

/// Waits until a backend of this database other than `ours` waits for a lock; `false`
/// when `done` is set first, or when nobody waits after a long while (10 s). A condition
/// to hold a request at a known point, not a delay.
pub async fn someone_waits(observer: &Client, ours: &[i32], done: &AtomicBool) -> bool {
    for _ in 0..500 {
        if done.load(Ordering::SeqCst) {
            return false;
        }
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND pid <> ALL ($1)",
                &[&ours],
            )
            .await
            .expect("the waiting backends")
            .get(0);
        if waiting > 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// The id of the backend serving `client`.
pub async fn backend_pid(client: &Client) -> i32 {
    let row = client.query_one("SELECT pg_backend_pid()", &[]).await;
    row.expect("a pid").get(0)
}

/// Waits until the backend `pid` waits for a lock.
pub async fn waits(observer: &Client, pid: i32) {
    for _ in 0..500 {
        let row = observer
            .query_one(
                "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity \
                 WHERE pid = $1",
                &[&pid],
            )
            .await
            .expect("the backend's state");
        if row.get::<_, bool>(0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("backend {pid} never waited");
}
