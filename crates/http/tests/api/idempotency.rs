//! `Idempotency-Key` on `POST /tickets` and `POST /tickets/{id}/messages`: a repeat gets
//! the first response again and writes nothing; the key is the caller's, bound to its
//! first request, remembered for 24 hours, and only for successful requests; identical
//! requests at once write once.

use std::sync::atomic::AtomicBool;

use futures_util::future::join_all;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, backend_pid, etag_of, header, id_of, send, someone_waits, spawn_app, Actor,
    Failures, TestApp,
};

const KEY: &str = "Idempotency-Key";

/// What a client can tell about a response to a guarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: String,
    location: String,
    etag: String,
    replayed: String,
    body: Vec<u8>,
}

impl Answer {
    async fn of(response: Response) -> Self {
        let headers = response.headers().clone();
        Answer {
            status: response.status().as_u16(),
            content_type: header(&headers, "content-type"),
            location: header(&headers, "location"),
            etag: header(&headers, "etag"),
            replayed: header(&headers, "idempotent-replayed"),
            body: response.bytes().await.expect("a body").to_vec(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// A replay is marked `Idempotent-Replayed: true`; a first answer is not.
    fn is_replay(&self) -> bool {
        self.replayed == "true"
    }

    /// The same response, marked as a replay.
    fn replayed(&self) -> Self {
        Answer {
            replayed: "true".to_owned(),
            ..self.clone()
        }
    }
}

/// `POST path` as `actor` with `Idempotency-Key: key` and a JSON body.
async fn post_with_key(
    app: &TestApp,
    actor: &Actor,
    path: &str,
    key: &str,
    body: &Value,
) -> Answer {
    let response = app
        .send_with_headers(actor, Method::POST, path, &[(KEY, key)], Some(body))
        .await;
    Answer::of(response).await
}

/// `POST path` as `actor` with `Idempotency-Key: key` and `raw` bytes as JSON.
async fn post_raw_with_key(
    app: &TestApp,
    actor: &Actor,
    path: &str,
    key: &str,
    raw: &str,
) -> Answer {
    let request = app
        .request_as(actor, Method::POST, path)
        .header(KEY, key)
        .header(CONTENT_TYPE, "application/json")
        .body(raw.to_owned());
    Answer::of(send(request).await).await
}

#[tokio::test]
async fn a_repeated_open_gets_the_first_response_again() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let body = json!({ "topic": "refund", "text": "charged twice" });

    let first = post_with_key(&app, &customer, "/tickets", "open-1", &body).await;
    assert_eq!(first.status, 201);
    assert!(!first.is_replay(), "a first response is no replay");
    let ticket = first.json();
    assert_eq!(first.location, format!("/tickets/{}", id_of(&ticket)));
    assert_eq!(first.etag, etag_of(1));
    // The ticket moves on; a repeat still gets what the first request got.
    app.patch_ticket_ok(&staff, id_of(&ticket), &json!({ "priority": "high" }))
        .await;
    let before = app.snapshot().await;

    for _ in 0..2 {
        let again = post_with_key(&app, &customer, "/tickets", "open-1", &body).await;
        assert_eq!(again, first.replayed());
    }

    assert_eq!(app.snapshot().await, before, "a repeat wrote something");
    assert_eq!(app.row_counts().await[1], 1);
    assert_eq!(
        app.get_json(&customer, "/users/me").await["tickets_count"],
        1
    );
}

#[tokio::test]
async fn a_repeated_message_or_note_gets_the_first_response_again() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let path = format!("/tickets/{ticket}/messages");
    let cases = [
        (&customer, json!({ "text": "any news?" })),
        (&staff, json!({ "text": "yes" })),
        (&staff, json!({ "text": "between us", "internal": true })),
    ];

    for (n, (actor, body)) in cases.into_iter().enumerate() {
        let key = format!("post-{n}");
        let first = post_with_key(&app, actor, &path, &key, &body).await;
        assert_eq!(first.status, 201, "{body}");
        assert!(!first.is_replay());
        assert_eq!(first.location, "", "messages have no Location");
        let version = app.ticket_as(&customer, ticket).await["version"].clone();
        let before = app.snapshot().await;

        let again = post_with_key(&app, actor, &path, &key, &body).await;

        assert_eq!(again, first.replayed(), "{body}");
        assert_eq!(
            app.snapshot().await,
            before,
            "{body}: a repeat wrote something"
        );
        assert_eq!(app.ticket_as(&customer, ticket).await["version"], version);
    }
    // A repeat is answered even once the ticket takes no more messages.
    let body = json!({ "text": "last words" });
    let first = post_with_key(&app, &customer, &path, "post-last", &body).await;
    app.set_status_ok(&customer, ticket, "canceled").await;
    let again = post_with_key(&app, &customer, &path, "post-last", &body).await;
    assert_eq!(again, first.replayed());
    let messages = app.get_json(&staff, &path).await;
    assert_eq!(messages.as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn the_body_is_compared_as_json_not_as_bytes() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    let messages = format!("/tickets/{ticket}/messages");

    for (path, raw, same) in [
        (
            "/tickets",
            r#"{"topic":"a","text":"b"}"#,
            "{ \"text\" : \"b\",\n  \"topic\": \"a\" }\n",
        ),
        (
            messages.as_str(),
            r#"{"text":"hello"}"#,
            "  {\"text\":   \"hello\"}  ",
        ),
    ] {
        let first = post_raw_with_key(&app, &customer, path, "json-1", raw).await;
        assert_eq!(first.status, 201, "{path}");
        let before = app.snapshot().await;
        let again = post_raw_with_key(&app, &customer, path, "json-1", same).await;
        assert_eq!(again, first.replayed(), "{path}");
        assert_eq!(app.snapshot().await, before);
        // Keys are per caller, not per path: the next path needs its own.
        app.execute(
            "DELETE FROM idempotency_keys WHERE user_id = $1",
            customer.id,
        )
        .await;
    }
}

#[tokio::test]
async fn the_same_key_for_another_request_is_422() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let other = app.open_ticket_id(&customer).await;
    let path = format!("/tickets/{ticket}/messages");
    let open = json!({ "topic": "refund", "text": "charged twice" });
    let opened = post_with_key(&app, &customer, "/tickets", "k-open", &open).await;
    let posted = post_with_key(&app, &customer, &path, "k-post", &json!({ "text": "hi" })).await;
    let noted = post_with_key(
        &app,
        &staff,
        &path,
        "k-note",
        &json!({ "text": "n", "internal": true }),
    )
    .await;
    assert_eq!([opened.status, posted.status, noted.status], [201; 3]);
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    let cases = [
        (
            &customer,
            "k-open",
            "/tickets".to_owned(),
            json!({ "topic": "refund", "text": "x" }),
        ),
        (
            &customer,
            "k-open",
            "/tickets".to_owned(),
            json!({ "topic": "other", "text": "charged twice" }),
        ),
        (
            &customer,
            "k-open",
            "/tickets".to_owned(),
            json!({ "topic": "refund", "text": "charged twice", "extra": 1 }),
        ),
        (
            &customer,
            "k-open",
            path.clone(),
            json!({ "text": "charged twice" }),
        ),
        (&customer, "k-post", path.clone(), json!({ "text": "hi!" })),
        (
            &customer,
            "k-post",
            format!("/tickets/{other}/messages"),
            json!({ "text": "hi" }),
        ),
        (
            &customer,
            "k-post",
            "/tickets".to_owned(),
            json!({ "topic": "t", "text": "hi" }),
        ),
        (&staff, "k-note", path.clone(), json!({ "text": "n" })),
        (
            &staff,
            "k-note",
            path.clone(),
            json!({ "text": "n", "internal": false }),
        ),
    ];
    for (actor, key, path, body) in cases {
        let response = app
            .send_with_headers(actor, Method::POST, &path, &[(KEY, key)], Some(&body))
            .await;
        let what = format!("{key} on {path} with {body}");
        failures
            .problem(&what, response, 422, &["idempotency_key_reused"])
            .await;
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);
    // The keys still answer their own requests.
    let again = post_with_key(&app, &customer, "/tickets", "k-open", &open).await;
    assert_eq!(again, opened.replayed());
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let app = spawn_app().await;
    let alice = app.customer().await;
    let bob = app.customer().await;
    let body = json!({ "topic": "same", "text": "same" });

    let hers = post_with_key(&app, &alice, "/tickets", "shared", &body).await;
    let his = post_with_key(&app, &bob, "/tickets", "shared", &body).await;

    for answer in [&hers, &his] {
        assert_eq!(answer.status, 201);
        assert!(!answer.is_replay());
    }
    assert_ne!(id_of(&hers.json()), id_of(&his.json()));
    assert_eq!(app.row_counts().await[1], 2);
    assert_eq!(
        post_with_key(&app, &alice, "/tickets", "shared", &body).await,
        hers.replayed()
    );
    assert_eq!(
        post_with_key(&app, &bob, "/tickets", "shared", &body).await,
        his.replayed()
    );
    // Bob's key is bound to his request, whatever the ticket of another one.
    let path = format!("/tickets/{}/messages", id_of(&hers.json()));
    let response = app
        .send_with_headers(
            &bob,
            Method::POST,
            &path,
            &[(KEY, "shared")],
            Some(&json!({ "text": "x" })),
        )
        .await;
    assert_problem(response, 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn invalid_keys_are_400_and_change_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    let messages = format!("/tickets/{ticket}/messages");
    let too_long = "k".repeat(256);
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    let writes = [
        ("/tickets", json!({ "topic": "t", "text": "x" })),
        (messages.as_str(), json!({ "text": "x" })),
    ];
    for (path, body) in &writes {
        for (what, keys) in [
            ("empty", vec![""]),
            ("256 characters", vec![too_long.as_str()]),
            ("a space", vec!["two words"]),
            ("a tab", vec!["tab\there"]),
            ("not ASCII", vec!["clé"]),
            ("two headers", vec!["one", "two"]),
            ("two equal headers", vec!["same", "same"]),
        ] {
            let headers: Vec<(&str, &str)> = keys.iter().map(|k| (KEY, *k)).collect();
            let response = app
                .send_with_headers(&customer, Method::POST, path, &headers, Some(body))
                .await;
            failures
                .problem(
                    &format!("{path}: {what}"),
                    response,
                    400,
                    &["idempotency_key_invalid"],
                )
                .await;
        }
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);

    for (path, body) in &writes {
        for key in [
            "k".repeat(255),
            "!#$%&'*+-.^_`|~0123456789azAZ\"(),/:;<=>?@[]{}".to_owned(),
        ] {
            let answer = post_with_key(&app, &customer, path, &key, body).await;
            assert_eq!(answer.status, 201, "{path} with key {key:?}");
            app.execute(
                "DELETE FROM idempotency_keys WHERE user_id = $1",
                customer.id,
            )
            .await;
        }
    }
}

#[tokio::test]
async fn a_failed_request_may_be_retried_with_the_same_key() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let stranger = app.customer().await;
    let staff = app.staff().await;

    // 400, then the corrected request.
    let bad = post_with_key(
        &app,
        &customer,
        "/tickets",
        "retry-1",
        &json!({ "topic": "", "text": "x" }),
    )
    .await;
    assert_eq!(bad.status, 400);
    let body = json!({ "topic": "fixed", "text": "x" });
    let good = post_with_key(&app, &customer, "/tickets", "retry-1", &body).await;
    assert!(good.status == 201 && !good.is_replay(), "{good:?}");
    assert_eq!(
        post_with_key(&app, &customer, "/tickets", "retry-1", &body).await,
        good.replayed()
    );

    // 404 (missing, then invisible), 409 and 412 on messages, then success.
    let ticket = id_of(&good.json());
    let foreign = app.open_ticket_id(&stranger).await;
    let canceled = app
        .ticket_with_status(&customer, &staff, "canceled", false)
        .await;
    let text = json!({ "text": "hello" });
    for (path, status) in [
        (format!("/tickets/{}/messages", i64::MAX), 404),
        (format!("/tickets/{foreign}/messages"), 404),
        (format!("/tickets/{canceled}/messages"), 409),
    ] {
        let failed = post_with_key(&app, &customer, &path, "retry-2", &text).await;
        assert_eq!(failed.status, status, "{path}");
    }
    let path = format!("/tickets/{ticket}/messages");
    let stale = app
        .send_with_headers(
            &customer,
            Method::POST,
            &path,
            &[(KEY, "retry-2"), ("If-Match", "\"7\"")],
            Some(&text),
        )
        .await;
    assert_problem(stale, 412, "precondition_failed").await;
    let current = etag_of(1);
    let posted = app
        .send_with_headers(
            &customer,
            Method::POST,
            &path,
            &[(KEY, "retry-2"), ("If-Match", &current)],
            Some(&text),
        )
        .await;
    let posted = Answer::of(posted).await;
    assert!(posted.status == 201 && !posted.is_replay(), "{posted:?}");
    // If-Match is not part of the request a key is bound to: the repeat is a replay.
    let repeat = app
        .send_with_headers(
            &customer,
            Method::POST,
            &path,
            &[(KEY, "retry-2"), ("If-Match", &current)],
            Some(&text),
        )
        .await;
    assert_eq!(Answer::of(repeat).await, posted.replayed());

    // 403, then an allowed request.
    let note = post_with_key(
        &app,
        &customer,
        &path,
        "retry-3",
        &json!({ "text": "n", "internal": true }),
    )
    .await;
    assert_eq!(note.status, 403);
    let allowed = post_with_key(&app, &customer, &path, "retry-3", &json!({ "text": "n" })).await;
    assert!(allowed.status == 201 && !allowed.is_replay(), "{allowed:?}");
    let keys = app
        .query_i64(&format!(
            "SELECT count(*) FROM idempotency_keys WHERE user_id = {}",
            customer.id
        ))
        .await;
    assert_eq!(keys, 3, "only the successful requests' keys are stored");
}

#[tokio::test]
async fn keys_are_remembered_for_24_hours() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let body = json!({ "topic": "day", "text": "one" });
    let age = |hours: i64| {
        format!(
            "UPDATE idempotency_keys SET created_at = now() - interval '{hours} hours' \
             WHERE user_id = $1"
        )
    };

    let first = post_with_key(&app, &customer, "/tickets", "daily", &body).await;
    app.execute(&age(23), customer.id).await;
    assert_eq!(
        post_with_key(&app, &customer, "/tickets", "daily", &body).await,
        first.replayed()
    );
    assert_eq!(app.row_counts().await[1], 1);

    // Older keys are forgotten: the request is new, and the key is bound to it.
    app.execute(&age(25), customer.id).await;
    let second = post_with_key(&app, &customer, "/tickets", "daily", &body).await;
    assert!(second.status == 201 && !second.is_replay(), "{second:?}");
    assert_ne!(id_of(&second.json()), id_of(&first.json()));
    assert_eq!(
        post_with_key(&app, &customer, "/tickets", "daily", &body).await,
        second.replayed()
    );
    // An expired key may guard another request altogether.
    app.execute(&age(25), customer.id).await;
    let other = json!({ "topic": "day", "text": "two" });
    let third = post_with_key(&app, &customer, "/tickets", "daily", &other).await;
    assert!(third.status == 201 && !third.is_replay(), "{third:?}");
    assert_eq!(app.row_counts().await[1], 3);
}

/// Sends `n` identical requests at once; checks that exactly one was written fresh, that
/// every other answer is a replay of it or `409 idempotency_key_in_use`, and returns
/// the fresh answer.
async fn identical_at_once(
    app: &TestApp,
    actor: &Actor,
    path: &str,
    key: &str,
    body: &Value,
    n: usize,
) -> Answer {
    let requests = (0..n).map(|_| async {
        app.send_with_headers(actor, Method::POST, path, &[(KEY, key)], Some(body))
            .await
    });
    let mut fresh = Vec::new();
    let mut replays = Vec::new();
    for response in join_all(requests).await {
        match response.status().as_u16() {
            201 => {
                let answer = Answer::of(response).await;
                if !answer.is_replay() {
                    fresh.push(answer);
                } else {
                    replays.push(answer);
                }
            }
            409 => {
                assert_problem(response, 409, "idempotency_key_in_use").await;
            }
            other => {
                let text = response.text().await.unwrap_or_default();
                panic!("{path} with {key}: {other} {text}");
            }
        }
    }
    assert_eq!(fresh.len(), 1, "{path} with {key}: {fresh:?}");
    let fresh = fresh.remove(0);
    for replay in replays {
        assert_eq!(replay, fresh.replayed(), "{path} with {key}");
    }
    fresh
}

#[tokio::test]
async fn eight_identical_opens_at_once_open_one_ticket() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for round in 0..5_i64 {
        let body = json!({ "topic": "race", "text": format!("round {round}") });
        let key = format!("race-{round}");
        let fresh = identical_at_once(&app, &customer, "/tickets", &key, &body, 8).await;

        let count = app
            .query_i64(&format!(
                "SELECT count(*) FROM tickets t JOIN messages m ON m.ticket_id = t.id \
                 WHERE t.author_id = {} AND m.text = 'round {round}'",
                customer.id
            ))
            .await;
        assert_eq!(count, 1, "round {round}");
        assert_eq!(app.row_counts().await[1], round + 1);
        assert_eq!(
            post_with_key(&app, &customer, "/tickets", &key, &body).await,
            fresh.replayed()
        );
    }
    assert_eq!(
        app.get_json(&customer, "/users/me").await["tickets_count"],
        5
    );
}

#[tokio::test]
async fn eight_identical_messages_at_once_post_one_message() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let path = format!("/tickets/{ticket}/messages");

    for round in 0..5 {
        let (actor, body) = match round % 3 {
            0 => (&customer, json!({ "text": format!("round {round}") })),
            1 => (&staff, json!({ "text": format!("round {round}") })),
            _ => (
                &staff,
                json!({ "text": format!("round {round}"), "internal": true }),
            ),
        };
        let key = format!("race-{round}");
        let fresh = identical_at_once(&app, actor, &path, &key, &body, 8).await;

        let count = app
            .query_i64(&format!(
                "SELECT count(*) FROM messages WHERE ticket_id = {ticket} AND text = 'round {round}'"
            ))
            .await;
        assert_eq!(count, 1, "round {round}");
        assert_eq!(
            post_with_key(&app, actor, &path, &key, &body).await,
            fresh.replayed()
        );
    }
    // Four requests and responses moved the version; the note did not.
    assert_eq!(app.ticket_as(&customer, ticket).await["version"], 5);
}

/// Runs `write` while the row that `lock` selects is held `FOR UPDATE`, so that
/// `write` waits for it (holding its idempotency key, which it claims first); then runs
/// `during`, then releases the row. Returns both outcomes.
async fn while_a_write_waits<A, T>(
    app: &TestApp,
    lock: &str,
    write: impl std::future::Future<Output = A>,
    during: impl std::future::Future<Output = T>,
) -> (A, T) {
    let blocker = app.db.pool().get().await.expect("a database connection");
    let observer = app.db.pool().get().await.expect("a database connection");
    let ours = [backend_pid(&blocker).await, backend_pid(&observer).await];
    blocker
        .batch_execute(&format!("BEGIN; {lock} FOR UPDATE"))
        .await
        .expect("the row is locked");
    let then = async {
        let never = AtomicBool::new(false);
        let waits = someone_waits(&observer, &ours, &never).await;
        assert!(waits, "the first request never waited for the locked row");
        let outcome = during.await;
        blocker
            .batch_execute("COMMIT")
            .await
            .expect("the row is released");
        outcome
    };
    tokio::join!(write, then)
}

#[tokio::test]
async fn a_repeat_while_the_first_request_runs_is_409_in_use() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    let cases = [
        (
            "/tickets".to_owned(),
            json!({ "topic": "slow", "text": "x" }),
            format!("SELECT 1 FROM users WHERE id = {}", customer.id),
        ),
        (
            format!("/tickets/{ticket}/messages"),
            json!({ "text": "slow" }),
            format!("SELECT 1 FROM tickets WHERE id = {ticket}"),
        ),
    ];

    for (path, body, lock) in cases {
        let first = post_with_key(&app, &customer, &path, "slow", &body);
        let repeat = async {
            let response = app
                .send_with_headers(
                    &customer,
                    Method::POST,
                    &path,
                    &[(KEY, "slow")],
                    Some(&body),
                )
                .await;
            assert_problem(response, 409, "idempotency_key_in_use").await;
        };
        let (first, ()) = while_a_write_waits(&app, &lock, first, repeat).await;

        assert!(
            first.status == 201 && !first.is_replay(),
            "{path}: {first:?}"
        );
        let again = post_with_key(&app, &customer, &path, "slow", &body).await;
        assert_eq!(again, first.replayed(), "{path}");
        app.execute(
            "DELETE FROM idempotency_keys WHERE user_id = $1",
            customer.id,
        )
        .await;
    }
}
