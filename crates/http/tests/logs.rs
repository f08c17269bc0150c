//! The `tickets` binary's JSON logs, read as a log collector would: every line of a
//! request carries its request id and route template, and with `debug` on for the
//! domain and the adapter, the spans of the use case and of each statement nest inside
//! the request's, each with the time it took (`docs/operations.md`).

// A test that cannot go on should stop with a reason. `allow-expect-in-tests` covers
// only `#[test]` functions, not the helpers they share.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use postgres_adapter::testing::TestDatabase;
use serde_json::{json, Value};

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tickets serve` on a free port with JSON logs at `rust_log`, in an empty directory
/// (no `config/`, an empty `.env`), and its log lines as they come.
fn serve(database_url: &str, rust_log: &str) -> (Server, mpsc::Receiver<Value>) {
    let directory =
        std::env::temp_dir().join(format!("tickets-logs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&directory).expect("a working directory");
    std::fs::write(directory.join(".env"), "").expect("an empty .env");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickets"));
    command
        .arg("serve")
        .current_dir(&directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TICKETS") {
            command.env_remove(key);
        }
    }
    command
        .env("DATABASE_URL", database_url)
        .env("TICKETS__SERVER__PORT", "0")
        .env("TICKETS__SERVER__WORKERS", "1")
        .env("TICKETS__AUTH__BCRYPT_COST", "4")
        .env("TICKETS__DATABASE__STARTUP_TIMEOUT_SECS", "10")
        .env("RUST_LOG", rust_log)
        .env("RUST_LOG_FORMAT", "json");
    let mut child = command.spawn().expect("the tickets binary starts");
    let stderr = child.stderr.take().expect("a piped stderr");
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Every line is one JSON object; anything else fails the test below.
            let parsed =
                serde_json::from_str(&line).unwrap_or_else(|_| json!({ "not_json": line }));
            if lines.send(parsed).is_err() {
                break;
            }
        }
    });
    // Best effort: the directory only holds an empty .env.
    let _ = std::fs::remove_dir_all(&directory);
    (Server(child), receiver)
}

/// Lines until `wanted` matches one (which is returned with those before it), within
/// a generous bound.
fn lines_until(lines: &mpsc::Receiver<Value>, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no matching log line ({e}); saw {seen:#?}"));
        assert!(line.get("not_json").is_none(), "not JSON: {line}");
        let found = wanted(&line);
        seen.push(line);
        if found {
            return seen;
        }
    }
}

/// The port of the server's `listening` line.
fn listening_port(lines: &mpsc::Receiver<Value>) -> u64 {
    let started = lines_until(lines, |line| text(line, "message") == "listening");
    started
        .last()
        .and_then(|line| line.get("port"))
        .and_then(Value::as_u64)
        .expect("the listening line names the port")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The spans a line was logged in, outermost first.
fn spans(line: &Value) -> Vec<&Value> {
    line.get("spans")
        .and_then(Value::as_array)
        .map(|spans| spans.iter().collect())
        .unwrap_or_default()
}

fn is_request(span: &Value, request_id: &str) -> bool {
    text(span, "name") == "request" && text(span, "request_id") == request_id
}

async fn register(port: u64, request_id: &str) -> u16 {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
        .post(format!("http://127.0.0.1:{port}/users"))
        .header("X-Request-Id", request_id)
        .json(&json!({
            "email": "logs@example.com",
            "password": "correct horse battery",
            "username": "logs",
        }))
        .send()
        .await
        .expect("the server answers");
    response.status().as_u16()
}

#[tokio::test]
async fn a_request_s_lines_carry_its_id_and_route_and_nest_its_statements() {
    let db = TestDatabase::create().await;
    let (_server, lines) = serve(db.url(), "info,domain=debug,postgres_adapter=debug");
    let port = listening_port(&lines);

    let request_id = format!("logs-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(register(port, &request_id).await, 201);

    let served = lines_until(&lines, |line| {
        text(line, "message") == "request served"
            && line
                .get("span")
                .is_some_and(|span| is_request(span, &request_id))
    });
    let last = served.last().expect("the served line");
    let span = &last["span"];
    assert_eq!(text(span, "method"), "POST");
    assert_eq!(text(span, "route"), "/users");
    assert_eq!(span["status"], 201);
    assert_eq!(last["status"], 201);
    assert!(last["elapsed_us"].is_u64());

    // Every line logged inside the request carries its id and route …
    let inside: Vec<&Value> = served
        .iter()
        .filter(|line| {
            spans(line)
                .iter()
                .any(|span| text(span, "name") == "request")
        })
        .collect();
    for line in &inside {
        let root = spans(line)[0];
        if text(root, "request_id") == request_id {
            assert_eq!(text(root, "route"), "/users", "{line}");
        }
    }
    let ours: Vec<&&Value> = inside
        .iter()
        .filter(|line| is_request(spans(line)[0], &request_id))
        .collect();

    // … and the use case's and each statement's span close with their timings, nested
    // request → use case → statement.
    let closed = |name: &str| {
        ours.iter()
            .filter(|line| text(line, "message") == "close" && text(&line["span"], "name") == name)
            .count()
    };
    assert_eq!(closed("users.register"), 1, "{ours:#?}");
    let statements = ours
        .iter()
        .filter(|line| {
            text(line, "message") == "close" && text(&line["span"], "name").starts_with("db.")
        })
        .collect::<Vec<_>>();
    assert!(!statements.is_empty(), "{ours:#?}");
    for statement in statements {
        let names: Vec<&str> = spans(statement).iter().map(|s| text(s, "name")).collect();
        assert_eq!(names[..2], ["request", "users.register"], "{statement}");
        assert!(statement.get("time.busy").is_some(), "{statement}");
    }
}

#[tokio::test]
async fn at_info_a_request_logs_one_line() {
    let db = TestDatabase::create().await;
    let (_server, lines) = serve(db.url(), "info");
    let port = listening_port(&lines);

    let request_id = format!("logs-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(register(port, &request_id).await, 201);

    let served = lines_until(&lines, |line| text(line, "message") == "request served");
    let ours: Vec<&Value> = served
        .iter()
        .filter(|line| {
            spans(line)
                .first()
                .is_some_and(|root| is_request(root, &request_id))
        })
        .collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(text(&ours[0]["span"], "route"), "/users");
}
