//! Concurrent requests that race against one rule: only one of them may win.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_json, assert_problem_any, spawn_app, PASSWORD};

const RACERS: usize = 12;

#[tokio::test]
async fn a_cancel_and_a_resolve_never_both_win() {
    let app = spawn_app().await;
    let author = app.customer().await;
    let staff = app.staff().await;

    for round in 0..5 {
        let ticket = app.open_ticket_id(&author).await;
        app.post_message_ok(&staff, ticket, "a response").await;
        let messages_before = app.row_counts().await[2];

        let requests = (0..RACERS * 2).map(|n| {
            let app = &app;
            let (actor, status) = if n % 2 == 0 {
                (&author, "canceled")
            } else {
                (&staff, "resolved")
            };
            let method = if n % 4 < 2 {
                Method::PATCH
            } else {
                Method::PUT
            };
            async move {
                (
                    status,
                    app.change_status(method, actor, ticket, status).await,
                )
            }
        });
        let responses = join_all(requests).await;

        let mut won = Vec::new();
        for (status, response) in responses {
            match response.status().as_u16() {
                200 => {
                    let body = assert_json(response, 200).await;
                    assert_eq!(body["status"], status, "round {round}");
                    won.push(status);
                }
                409 => {
                    let codes = [
                        "ticket_canceled",
                        "cannot_cancel_resolved",
                        "concurrent_update",
                    ];
                    assert_problem_any(response, 409, &codes).await;
                }
                other => panic!("round {round}: {status} got {other}"),
            }
        }
        let (final_status, _) = app.ticket_row(ticket).await;
        assert!(
            final_status == "canceled" || final_status == "resolved",
            "round {round}: illegal final status {final_status}"
        );
        // Canceled and resolved exclude each other: every winner asked for the final status.
        assert!(!won.is_empty(), "round {round}: nobody won");
        assert!(
            won.iter().all(|s| *s == final_status),
            "round {round}: winners {won:?} but the ticket is {final_status}"
        );
        assert_eq!(app.row_counts().await[2], messages_before);
    }
}

#[tokio::test]
async fn staff_status_changes_racing_a_cancel_leave_a_legal_state() {
    let app = spawn_app().await;
    let author = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&author).await;

    let requests = (0..RACERS * 2).map(|n| {
        let app = &app;
        let (actor, status) = match n % 3 {
            0 => (&author, "canceled"),
            1 => (&staff, "unresolved"),
            _ => (&staff, "pending"),
        };
        async move { app.set_status(actor, ticket, status).await }
    });
    let responses = join_all(requests).await;

    let mut canceled = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => {
                let body = assert_json(response, 200).await;
                if body["status"] == "canceled" {
                    canceled += 1;
                }
            }
            409 => {
                assert_problem_any(response, 409, &["ticket_canceled", "concurrent_update"]).await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // The author's cancel from pending or unresolved always succeeds eventually.
    assert!(canceled >= 1);
    assert_eq!(app.ticket_row(ticket).await.0, "canceled");
}

#[tokio::test]
async fn messages_racing_a_cancel_are_all_accounted_for() {
    let app = spawn_app().await;
    let author = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&author).await;

    let posts = (0..RACERS).map(|n| {
        let app = &app;
        let actor = if n % 2 == 0 { &author } else { &staff };
        async move {
            app.post_message(actor, ticket, &format!("message {n}"))
                .await
        }
    });
    let cancel = app.set_status(&author, ticket, "canceled");
    let (responses, cancel) = tokio::join!(join_all(posts), cancel);

    assert_eq!(cancel.status(), 200);
    let mut created = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            409 => {
                assert_problem_any(response, 409, &["ticket_canceled"]).await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(app.row_counts().await[2], 1 + created);
    // Once canceled, nothing more is added.
    let late = app.post_message(&staff, ticket, "too late").await;
    assert_problem_any(late, 409, &["ticket_canceled"]).await;
}

#[tokio::test]
async fn concurrent_tickets_are_all_counted() {
    let app = spawn_app().await;
    let author = app.customer().await;

    let opened = join_all((0..RACERS * 2).map(|_| app.open_ticket_id(&author))).await;

    assert_eq!(opened.len(), RACERS * 2);
    let me = app.get_json(&author, "/users/me").await;
    assert_eq!(me["tickets_count"], RACERS * 2);
    assert_eq!(
        app.row_counts().await[1..],
        [RACERS as i64 * 2, RACERS as i64 * 2]
    );
}

#[tokio::test]
async fn one_email_in_different_cases_registers_exactly_once() {
    let app = spawn_app().await;
    let spellings = [
        "race@example.com",
        "RACE@example.com",
        "Race@Example.com",
        "race@EXAMPLE.COM",
    ];

    let requests = (0..RACERS * 2).map(|n| {
        let app = &app;
        let body = json!({
            "email": spellings[n % spellings.len()], "password": PASSWORD, "username": "r",
        });
        async move { app.register_with(&body, None).await }
    });
    let responses = join_all(requests).await;

    let mut created = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            409 => {
                assert_problem_any(response, 409, &["email_taken"]).await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 1);
    let stored = app
        .query_i64("SELECT count(*) FROM users WHERE lower(email) = 'race@example.com'")
        .await;
    assert_eq!(stored, 1);
}
