//! `POST /tickets`, `GET /tickets` and `GET /tickets/{id}`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_message_object, assert_names_field, assert_problem, assert_ticket_object,
    header, id_of, ids, send, spawn_app, str_field,
};

#[tokio::test]
async fn opening_a_ticket_returns_201_with_location_and_the_ticket() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let body = json!({ "topic": "  new discount ", "text": "Where is my discount?" });

    let response = app
        .send_as(&customer, Method::POST, "/tickets", &body)
        .await;
    let location = header(response.headers(), "location");
    let ticket = assert_json(response, 201).await;

    assert_ticket_object(&ticket, false);
    let id = id_of(&ticket);
    assert_eq!(location, format!("/tickets/{id}"));
    assert_eq!(ticket["topic"], "new discount");
    assert_eq!(ticket["status"], "pending");
    assert_eq!(ticket["created_at"], ticket["updated_at"]);
    let stored = app
        .query_i64(&format!(
            "SELECT count(*) FROM tickets WHERE id = {id} AND author_id = {} \
             AND topic = 'new discount' AND status = 'pending'",
            customer.id
        ))
        .await;
    assert_eq!(stored, 1);
    assert_eq!(app.get_json(&customer, &location).await, ticket);
}

#[tokio::test]
async fn the_returned_id_is_the_tickets_not_its_first_messages() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    // Make message ids run ahead of ticket ids.
    let first = app.open_ticket_id(&customer).await;
    for _ in 0..3 {
        app.post_message_ok(&customer, first, "more").await;
    }

    let ticket = app.open_ticket(&customer, "second", "text").await;

    let id = id_of(&ticket);
    let stored = app
        .query_i64("SELECT id FROM tickets WHERE topic = 'second'")
        .await;
    assert_eq!(id, stored);
    let message_id = app
        .query_i64(&format!("SELECT id FROM messages WHERE ticket_id = {id}"))
        .await;
    assert_ne!(id, message_id, "the test needs diverging ids");
    assert_eq!(
        app.get_json(&customer, &format!("/tickets/{id}")).await["topic"],
        "second"
    );
}

#[tokio::test]
async fn the_first_message_is_a_request_holding_the_text() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let text = "  Line one\n\tline two  ";

    let ticket = app.open_ticket(&customer, "topic", text).await;

    let messages = app
        .get_json(&customer, &format!("/tickets/{}/messages", id_of(&ticket)))
        .await;
    let messages = messages.as_array().expect("an array");
    assert_eq!(messages.len(), 1);
    assert_message_object(&messages[0], false);
    assert_eq!(messages[0]["type"], "request");
    assert_eq!(messages[0]["text"], text);
    assert_eq!(app.row_counts().await[2], 1);
    assert_eq!(
        app.get_json(&customer, "/users/me").await["tickets_count"],
        1
    );
}

#[tokio::test]
async fn staff_open_tickets_too_and_see_the_author() {
    let app = spawn_app().await;
    let staff = app.staff().await;

    let ticket = app.open_ticket(&staff, "internal", "please check").await;

    assert_ticket_object(&ticket, true);
    assert_eq!(ticket["author"], staff.email.as_str());
    assert_eq!(ticket["status"], "pending");
    let messages = app
        .get_json(&staff, &format!("/tickets/{}/messages", id_of(&ticket)))
        .await;
    assert_eq!(messages[0]["type"], "request");
    assert_eq!(messages[0]["author"], staff.email.as_str());
}

#[tokio::test]
async fn topic_and_text_are_validated_and_nothing_is_written() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "topic": "", "text": "t" }),
            "topic",
            "topic_invalid",
        ),
        (
            json!({ "topic": "   ", "text": "t" }),
            "topic",
            "topic_invalid",
        ),
        (
            json!({ "topic": "x".repeat(21), "text": "t" }),
            "topic",
            "topic_invalid",
        ),
        (
            json!({ "topic": "ж".repeat(21), "text": "t" }),
            "topic",
            "topic_invalid",
        ),
        (json!({ "topic": "t", "text": "" }), "text", "text_invalid"),
        (
            json!({ "topic": "t", "text": " \n\t " }),
            "text",
            "text_blank",
        ),
        (
            json!({ "topic": "t", "text": "x".repeat(10_001) }),
            "text",
            "text_invalid",
        ),
    ];
    let before = app.snapshot().await;

    for (body, field, code) in cases {
        let response = app
            .send_as(&customer, Method::POST, "/tickets", &body)
            .await;
        let problem = assert_problem(response, 400, code).await;
        assert_names_field(&problem, field);
    }
    for body in [
        json!({ "text": "t" }),
        json!({ "topic": "t" }),
        json!({ "topic": 1, "text": "t" }),
    ] {
        let response = app
            .send_as(&customer, Method::POST, "/tickets", &body)
            .await;
        assert_problem(response, 400, "invalid_body").await;
    }

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn topic_and_text_limits_count_characters() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let ticket = app
        .open_ticket(&customer, &"ж".repeat(20), &"ü".repeat(10_000))
        .await;

    assert_eq!(str_field(&ticket, "topic").chars().count(), 20);
    let messages = app
        .get_json(&customer, &format!("/tickets/{}/messages", id_of(&ticket)))
        .await;
    assert_eq!(str_field(&messages[0], "text").chars().count(), 10_000);
}

#[tokio::test]
async fn opening_a_ticket_needs_a_token() {
    let app = spawn_app().await;
    let before = app.row_counts().await;

    let request = app
        .request(Method::POST, "/tickets")
        .json(&json!({ "topic": "t", "text": "t" }));
    assert_problem(send(request).await, 401, "unauthenticated").await;

    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn customers_list_their_own_tickets_oldest_first_without_author() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let other = app.customer().await;
    let first = app.open_ticket_id(&me).await;
    app.open_ticket_id(&other).await;
    let second = app.open_ticket_id(&me).await;

    let tickets = app.get_json(&me, "/tickets").await;

    assert_eq!(ids(&tickets), vec![first, second]);
    for ticket in tickets.as_array().into_iter().flatten() {
        assert_ticket_object(ticket, false);
    }
}

#[tokio::test]
async fn staff_list_every_ticket_with_author() {
    let app = spawn_app().await;
    let a = app.customer().await;
    let b = app.customer().await;
    let staff = app.staff().await;
    let t1 = app.open_ticket_id(&a).await;
    let t2 = app.open_ticket_id(&b).await;
    let t3 = app.open_ticket_id(&a).await;

    let tickets = app.get_json(&staff, "/tickets").await;

    assert_eq!(ids(&tickets), vec![t1, t2, t3]);
    let authors: Vec<&str> = tickets
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| str_field(t, "author"))
        .collect();
    assert_eq!(
        authors,
        vec![a.email.as_str(), b.email.as_str(), a.email.as_str()]
    );
}

#[tokio::test]
async fn a_ticket_is_visible_to_its_author_and_staff_only() {
    let app = spawn_app().await;
    let author = app.customer().await;
    let other = app.customer().await;
    let staff = app.staff().await;
    let root = app.superuser().await;
    let ticket = app.open_ticket(&author, "mine", "text").await;
    let path = format!("/tickets/{}", id_of(&ticket));

    assert_eq!(app.get_json(&author, &path).await, ticket);
    assert_problem(app.get_as(&other, &path).await, 404, "ticket_not_found").await;
    for viewer in [&staff, &root] {
        let seen = app.get_json(viewer, &path).await;
        assert_ticket_object(&seen, true);
        assert_eq!(seen["author"], author.email.as_str());
        assert_eq!(seen["id"], ticket["id"]);
    }
}

#[tokio::test]
async fn a_foreign_ticket_looks_exactly_like_a_missing_one() {
    let app = spawn_app().await;
    let author = app.customer().await;
    let other = app.customer().await;
    let ticket = app.open_ticket_id(&author).await;

    let foreign = app.get_as(&other, &format!("/tickets/{ticket}")).await;
    let foreign = assert_problem(foreign, 404, "ticket_not_found").await;
    let missing = app
        .get_as(&other, &format!("/tickets/{}", ticket + 1000))
        .await;
    let missing = assert_problem(missing, 404, "ticket_not_found").await;

    assert_eq!(foreign["detail"], missing["detail"]);
    assert_eq!(foreign["title"], missing["title"]);
}

#[tokio::test]
async fn an_empty_list_is_an_empty_array() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;

    for actor in [&customer, &staff] {
        let response = app.get_as(actor, "/tickets").await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.expect("a body");
        assert_eq!(text.trim(), "[]");
    }
}
