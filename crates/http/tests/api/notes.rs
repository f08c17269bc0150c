//! Internal notes: staff write them with `"internal": true`; customers never see them
//! anywhere — not in messages, history or search, and not through the ticket's
//! `updated_at`, `version` or `ETag` — and a note is not a response.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_message_object, assert_problem, event_types, header, id_of, ids, spawn_app,
    str_field, Actor, Failures, TestApp,
};

#[tokio::test]
async fn staff_write_internal_notes() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let root = app.superuser().await;
    let ticket = app.open_ticket_id(&customer).await;

    let note = app.post_note_ok(&staff, ticket, "check the logs").await;
    let super_note = app.post_note_ok(&root, ticket, "escalated").await;

    for (message, author) in [(&note, &staff), (&super_note, &root)] {
        assert_message_object(message, true);
        assert_eq!(message["type"], "note");
        assert_eq!(message["author"], author.email.as_str());
    }
    assert_eq!(note["text"], "check the logs");
    let listed = app
        .get_json(&staff, &format!("/tickets/{ticket}/messages"))
        .await;
    let types: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| str_field(m, "type"))
        .collect();
    assert_eq!(types, ["request", "note", "note"]);
    assert_eq!(ids(&listed)[1..], [id_of(&note), id_of(&super_note)]);
    let stored = app
        .query_i64(&format!(
            "SELECT count(*) FROM messages WHERE ticket_id = {ticket} AND type = 'note'"
        ))
        .await;
    assert_eq!(stored, 2);
    // `"internal": false` is an ordinary response.
    let path = format!("/tickets/{ticket}/messages");
    let body = json!({ "text": "public", "internal": false });
    let response = app.send_as(&staff, Method::POST, &path, &body).await;
    assert_eq!(assert_json(response, 201).await["type"], "response");
}

#[tokio::test]
async fn a_customer_asking_for_a_note_gets_403_before_any_lookup() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let other = app.customer().await;
    let own = app.open_ticket_id(&customer).await;
    let foreign = app.open_ticket_id(&other).await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for (target, id) in [("own", own), ("foreign", foreign), ("missing", i64::MAX)] {
        let response = app.post_note(&customer, id, "let me whisper").await;
        failures
            .problem(&format!("{target} ticket"), response, 403, &["staff_only"])
            .await;
    }
    let path = format!("/tickets/{own}/messages");
    for body in [
        json!({ "text": "x", "internal": "yes" }),
        json!({ "text": "x", "internal": 1 }),
    ] {
        let response = app.send_as(&customer, Method::POST, &path, &body).await;
        failures
            .problem(&body.to_string(), response, 400, &["invalid_body"])
            .await;
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);
    // Without `internal` (or with false), a customer's message is a request.
    let body = json!({ "text": "out loud", "internal": false });
    let response = app.send_as(&customer, Method::POST, &path, &body).await;
    assert_eq!(assert_json(response, 201).await["type"], "request");
}

/// Everything a customer can learn about their ticket: the ticket and its `ETag`, its
/// entry in the list, its messages, its history, their own record (with their
/// tickets), and searches for `words`.
#[derive(Debug, PartialEq)]
struct CustomerView {
    etag: String,
    seen: Vec<Value>,
}

async fn customer_view(
    app: &TestApp,
    customer: &Actor,
    ticket: i64,
    words: &[&str],
) -> CustomerView {
    let response = app.get_as(customer, &format!("/tickets/{ticket}")).await;
    let etag = header(response.headers(), "etag");
    let mut seen = vec![
        assert_json(response, 200).await,
        app.get_json(customer, "/tickets").await,
        app.get_json(customer, &format!("/tickets/{ticket}/messages"))
            .await,
        Value::Array(app.events_of(customer, ticket).await),
        app.get_json(customer, "/users/me").await,
    ];
    for word in words {
        seen.push(app.get_json(customer, &format!("/tickets?q={word}")).await);
    }
    CustomerView { etag, seen }
}

#[tokio::test]
async fn a_customer_never_sees_a_note_anywhere() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket(&customer, "printer", "it jams").await;
    let id = id_of(&ticket);
    app.post_message_ok(&staff, id, "which model?").await;
    let words = ["zanzibar", "printer"];
    let before = customer_view(&app, &customer, id, &words).await;
    assert_eq!(ids(&before.seen[6]), [id], "the topic is found");
    let staff_ticket = app.ticket_as(&staff, id).await;
    let row = app.ticket_row(id).await;

    let note = app
        .post_note_ok(&staff, id, "zanzibar: the customer is on an old firmware")
        .await;

    assert_eq!(customer_view(&app, &customer, id, &words).await, before);
    assert_eq!(before.seen[5], json!([]), "nobody wrote zanzibar before");
    // Nor through a conditional GET: the ETag from before still matches.
    let etag = before.etag.clone();
    let conditional = app
        .send_with_headers(
            &customer,
            Method::GET,
            &format!("/tickets/{id}"),
            &[("If-None-Match", &etag)],
            None,
        )
        .await;
    assert_eq!(conditional.status(), 304);
    // The ticket did not move for staff either: one representation for everyone.
    assert_eq!(app.ticket_as(&staff, id).await, staff_ticket);
    assert_eq!(app.ticket_row(id).await, row);
    // Staff see the note everywhere.
    let messages = app
        .get_json(&staff, &format!("/tickets/{id}/messages"))
        .await;
    assert!(ids(&messages).contains(&id_of(&note)));
    let events = app.events_of(&staff, id).await;
    let last = events.last().expect("events");
    assert_eq!(last["type"], "note.created");
    assert_eq!(last["data"], json!({ "message_id": id_of(&note) }));
    let found = app.get_json(&staff, "/tickets?q=zanzibar").await;
    assert_eq!(ids(&found), [id]);
}

#[tokio::test]
async fn customers_page_through_messages_and_history_without_notes() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let mut public = vec![];
    for n in 0..5 {
        app.post_note_ok(&staff, ticket, &format!("note {n}")).await;
        let reply = app
            .post_message_ok(&staff, ticket, &format!("reply {n}"))
            .await;
        public.push(id_of(&reply));
        app.post_note_ok(&staff, ticket, &format!("note {n}b"))
            .await;
    }

    let path = format!("/tickets/{ticket}/messages?limit=2");
    let (seen, _) = app.collect_pages(&customer, &path, Value::clone).await;
    let seen: Vec<i64> = seen.iter().map(id_of).collect();
    assert_eq!(seen[1..], public);
    let (all, _) = app.collect_pages(&staff, &path, Value::clone).await;
    assert_eq!(all.len(), 16);

    let (history, _) = app
        .collect_pages(
            &customer,
            &format!("/tickets/{ticket}/events?limit=2"),
            Value::clone,
        )
        .await;
    let types = event_types(&history);
    assert_eq!(types.len(), 7, "{types:?}");
    assert!(!types.contains(&"note.created"), "{types:?}");
    let staff_history = app.events_of(&staff, ticket).await;
    let notes = event_types(&staff_history)
        .iter()
        .filter(|t| **t == "note.created")
        .count();
    assert_eq!(notes, 10);
}

#[tokio::test]
async fn a_note_is_not_a_response() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.post_note_ok(&staff, ticket, "looked into it").await;

    for body in [
        json!({ "status": "resolved" }),
        json!({ "status": "resolved", "priority": "low" }),
    ] {
        let response = app.patch_ticket(&staff, ticket, &body).await;
        assert_problem(response, 409, "response_required").await;
    }
    let response = app.set_status(&staff, ticket, "resolved").await;
    assert_problem(response, 409, "response_required").await;
    assert_eq!(app.ticket_row(ticket).await.0, "pending");

    app.post_message_ok(&staff, ticket, "fixed").await;
    app.set_status_ok(&staff, ticket, "resolved").await;
}

#[tokio::test]
async fn notes_may_be_added_to_a_canceled_ticket_and_nothing_else() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let canceled = app.set_status_ok(&customer, ticket, "canceled").await;

    let note = app.post_note_ok(&staff, ticket, "customer gave up").await;
    assert_eq!(note["type"], "note");
    let before = app.snapshot().await;
    for actor in [&customer, &staff] {
        let response = app.post_message(actor, ticket, "hello?").await;
        assert_problem(response, 409, "ticket_canceled").await;
    }
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.ticket_as(&customer, ticket).await, canceled);
    let events = app.events_of(&staff, ticket).await;
    assert_eq!(
        event_types(&events),
        [
            "ticket.created",
            "message.created",
            "ticket.status_changed",
            "note.created"
        ]
    );
}
