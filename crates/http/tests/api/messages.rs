//! `GET` and `POST /tickets/{id}/messages`.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    assert_message_object, assert_names_field, assert_problem, id_of, ids, send, spawn_app,
    str_field, timestamp_field,
};

#[tokio::test]
async fn a_customer_posts_requests_and_staff_post_responses() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let root = app.superuser().await;
    let ticket = app.open_ticket_id(&customer).await;

    let request = app
        .post_message_ok(&customer, ticket, " more details ")
        .await;
    let response = app.post_message_ok(&staff, ticket, "we are on it").await;
    let super_response = app.post_message_ok(&root, ticket, "escalated").await;

    assert_message_object(&request, false);
    assert_eq!(request["type"], "request");
    assert_eq!(request["text"], " more details ");
    for (message, author) in [(&response, &staff), (&super_response, &root)] {
        assert_message_object(message, true);
        assert_eq!(message["type"], "response");
        assert_eq!(message["author"], author.email.as_str());
    }
    let stored = app
        .query_i64(&format!(
            "SELECT count(*) FROM messages WHERE ticket_id = {ticket} AND type = 'response'"
        ))
        .await;
    assert_eq!(stored, 2);
}

#[tokio::test]
async fn messages_are_listed_oldest_first_with_author_for_staff_only() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket(&customer, "topic", "first").await;
    let ticket = id_of(&ticket);
    let second = app.post_message_ok(&staff, ticket, "second").await;
    let third = app.post_message_ok(&customer, ticket, "third").await;
    let path = format!("/tickets/{ticket}/messages");

    let seen_by_customer = app.get_json(&customer, &path).await;
    let seen_by_staff = app.get_json(&staff, &path).await;

    for (list, staff_view) in [(&seen_by_customer, false), (&seen_by_staff, true)] {
        let texts: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| str_field(m, "text"))
            .collect();
        assert_eq!(texts, vec!["first", "second", "third"]);
        let types: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| str_field(m, "type"))
            .collect();
        assert_eq!(types, vec!["request", "response", "request"]);
        for message in list.as_array().into_iter().flatten() {
            assert_message_object(message, staff_view);
        }
    }
    assert_eq!(ids(&seen_by_customer)[1..], [id_of(&second), id_of(&third)]);
    let authors: Vec<&str> = seen_by_staff
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| str_field(m, "author"))
        .collect();
    assert_eq!(
        authors,
        vec![
            customer.email.as_str(),
            staff.email.as_str(),
            customer.email.as_str()
        ]
    );
}

#[tokio::test]
async fn posting_moves_the_tickets_updated_at() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket(&customer, "topic", "first").await;
    let id = id_of(&ticket);

    for actor in [&customer, &staff] {
        let before = app.ticket_row(id).await;
        let message = app.post_message_ok(actor, id, "news").await;
        let after = app.ticket_row(id).await;
        assert!(after.1 > before.1, "updated_at did not move");
        assert_eq!(after.0, "pending");
        let seen = app.get_json(actor, &format!("/tickets/{id}")).await;
        assert!(timestamp_field(&seen, "updated_at") >= timestamp_field(&message, "created_at"));
    }
}

#[tokio::test]
async fn nobody_posts_on_a_canceled_ticket() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.set_status_ok(&customer, ticket, "canceled").await;
    let before = app.snapshot().await;

    for actor in [&customer, &staff] {
        let response = app.post_message(actor, ticket, "hello?").await;
        assert_problem(response, 409, "ticket_canceled").await;
    }

    assert_eq!(app.snapshot().await, before);
    // Reading is still allowed.
    let messages = app
        .get_json(&customer, &format!("/tickets/{ticket}/messages"))
        .await;
    assert_eq!(messages.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn foreign_and_missing_tickets_are_404() {
    let app = spawn_app().await;
    let author = app.customer().await;
    let other = app.customer().await;
    let ticket = app.open_ticket_id(&author).await;
    let before = app.snapshot().await;

    for id in [ticket, 9_223_372_036_854_775_807] {
        let response = app.post_message(&other, id, "let me in").await;
        assert_problem(response, 404, "ticket_not_found").await;
        let response = app.get_as(&other, &format!("/tickets/{id}/messages")).await;
        assert_problem(response, 404, "ticket_not_found").await;
    }
    let staff = app.staff().await;
    let response = app
        .post_message(&staff, 9_223_372_036_854_775_807, "x")
        .await;
    assert_problem(response, 404, "ticket_not_found").await;

    let after = app.snapshot().await;
    assert_eq!(
        after.split(" | ").nth(1),
        before.split(" | ").nth(1),
        "tickets changed"
    );
    assert_eq!(
        after.split(" | ").nth(2),
        before.split(" | ").nth(2),
        "messages changed"
    );
}

#[tokio::test]
async fn message_text_is_validated() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    let before = app.snapshot().await;

    for (text, code) in [
        (String::new(), "text_invalid"),
        (" \n \t".to_owned(), "text_blank"),
        ("x".repeat(10_001), "text_invalid"),
        ("a\u{0}b".to_owned(), "nul_character"),
    ] {
        let problem =
            assert_problem(app.post_message(&customer, ticket, &text).await, 400, code).await;
        assert_names_field(&problem, "text");
    }
    let path = format!("/tickets/{ticket}/messages");
    for body in [json!({}), json!({ "text": 5 }), json!({ "message": "x" })] {
        let response = app.send_as(&customer, Method::POST, &path, &body).await;
        assert_problem(response, 400, "invalid_body").await;
    }

    assert_eq!(app.snapshot().await, before);
    let longest = app
        .post_message_ok(&customer, ticket, &"ü".repeat(10_000))
        .await;
    assert_eq!(str_field(&longest, "text").chars().count(), 10_000);
}

#[tokio::test]
async fn messages_need_a_token() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    let path = format!("/tickets/{ticket}/messages");

    let get = send(app.request(Method::GET, &path)).await;
    assert_problem(get, 401, "unauthenticated").await;
    let post = send(
        app.request(Method::POST, &path)
            .json(&json!({ "text": "x" })),
    )
    .await;
    assert_problem(post, 401, "unauthenticated").await;
    assert_eq!(app.row_counts().await[2], 1);
}
