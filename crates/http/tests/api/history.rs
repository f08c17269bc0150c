//! `GET /tickets/{id}/events`: every change of a ticket as an event of the contract's
//! table (type, data, actor), oldest first, paginated; customers see all but notes.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_problem, assert_timestamp, event_types, id_of, next_cursor, next_link,
    send, spawn_app, Actor, Failures,
};

/// The `actor` of an event that `actor` made (every helper user is `customer` or
/// `staff`).
fn actor_ref(actor: &Actor, username: &str) -> Value {
    json!({ "id": actor.id, "username": username })
}

/// Asserts an event's shape: exactly the contract's fields, of their types.
fn assert_event_object(event: &Value, ticket: i64) {
    let object = event
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {event}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["actor", "created_at", "data", "id", "ticket_id", "type"],
        "{event}"
    );
    assert!(id_of(event) > 0);
    assert_eq!(event["ticket_id"], ticket, "{event}");
    assert_timestamp(&event["created_at"]);
    assert!(event["data"].is_object(), "{event}");
    let actor = &event["actor"];
    assert!(
        actor.is_null() || (actor["id"].is_i64() && actor["username"].is_string()),
        "{event}"
    );
}

#[tokio::test]
async fn every_change_is_an_event_with_its_data_and_actor() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let colleague = app.staff().await;
    let ticket = app.open_ticket(&customer, "refund", "charged twice").await;
    let id = id_of(&ticket);
    let first = app
        .get_json(&customer, &format!("/tickets/{id}/messages"))
        .await;
    let request = id_of(&first[0]);
    let response = id_of(&app.post_message_ok(&staff, id, "on it").await);
    let note = id_of(&app.post_note_ok(&staff, id, "refund approved").await);
    app.patch_ticket_ok(&staff, id, &json!({ "priority": "urgent" }))
        .await;
    app.patch_ticket_ok(&staff, id, &json!({ "assignee_id": staff.id }))
        .await;
    app.patch_ticket_ok(&colleague, id, &json!({ "assignee_id": colleague.id }))
        .await;
    app.patch_ticket_ok(&colleague, id, &json!({ "status": "resolved" }))
        .await;
    app.set_status_ok(&colleague, id, "unresolved").await;
    let follow_up = id_of(&app.post_message_ok(&customer, id, "thanks").await);
    app.patch_ticket_ok(&staff, id, &json!({ "assignee_id": null }))
        .await;
    app.set_status_ok(&customer, id, "canceled").await;
    let by_customer = actor_ref(&customer, "customer");
    let by_staff = actor_ref(&staff, "staff");
    let by_colleague = actor_ref(&colleague, "staff");
    let expected = [
        (
            "ticket.created",
            &by_customer,
            json!({ "topic": "refund", "status": "pending", "priority": "normal" }),
        ),
        (
            "message.created",
            &by_customer,
            json!({ "message_id": request, "type": "request" }),
        ),
        (
            "message.created",
            &by_staff,
            json!({ "message_id": response, "type": "response" }),
        ),
        ("note.created", &by_staff, json!({ "message_id": note })),
        (
            "ticket.priority_changed",
            &by_staff,
            json!({ "from": "normal", "to": "urgent" }),
        ),
        (
            "ticket.assigned",
            &by_staff,
            json!({ "from": null, "to": staff.id }),
        ),
        (
            "ticket.assigned",
            &by_colleague,
            json!({ "from": staff.id, "to": colleague.id }),
        ),
        (
            "ticket.status_changed",
            &by_colleague,
            json!({ "from": "pending", "to": "resolved" }),
        ),
        (
            "ticket.status_changed",
            &by_colleague,
            json!({ "from": "resolved", "to": "unresolved" }),
        ),
        (
            "message.created",
            &by_customer,
            json!({ "message_id": follow_up, "type": "request" }),
        ),
        (
            "ticket.assigned",
            &by_staff,
            json!({ "from": colleague.id, "to": null }),
        ),
        (
            "ticket.status_changed",
            &by_customer,
            json!({ "from": "unresolved", "to": "canceled" }),
        ),
    ];

    for (viewer, sees_notes) in [(&staff, true), (&customer, false)] {
        let events = app.events_of(viewer, id).await;
        let wanted: Vec<_> = expected
            .iter()
            .filter(|(kind, _, _)| sees_notes || *kind != "note.created")
            .collect();
        assert_eq!(events.len(), wanted.len(), "{events:#?}");
        let mut failures = Failures::default();
        for (n, (event, (kind, actor, data))) in events.iter().zip(wanted).enumerate() {
            assert_event_object(event, id);
            failures.check(
                event["type"] == *kind && event["actor"] == **actor && event["data"] == *data,
                || format!("event {n}: {event}, expected {kind} by {actor} with {data}"),
            );
        }
        failures.assert_none();
        let ids: Vec<i64> = events.iter().map(id_of).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    }
    // The first event is as old as the ticket.
    let events = app.events_of(&customer, id).await;
    assert_eq!(events[0]["created_at"], ticket["created_at"]);
}

#[tokio::test]
async fn a_patch_records_one_event_per_changed_field_and_none_for_the_rest() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.post_message_ok(&staff, ticket, "answer").await;
    let before = app.events_of(&staff, ticket).await.len();

    let changed = app
        .patch_ticket_ok(
            &staff,
            ticket,
            &json!({ "status": "resolved", "priority": "low", "assignee_id": staff.id }),
        )
        .await;
    let events = app.events_of(&staff, ticket).await;
    let mut added = event_types(&events[before..]);
    added.sort_unstable();
    assert_eq!(
        added,
        [
            "ticket.assigned",
            "ticket.priority_changed",
            "ticket.status_changed"
        ]
    );
    // One transaction: one time, the ticket's new updated_at.
    for event in &events[before..] {
        assert_eq!(event["created_at"], changed["updated_at"], "{event}");
    }

    // Only the priority differs from what the ticket has.
    app.patch_ticket_ok(
        &staff,
        ticket,
        &json!({ "status": "resolved", "priority": "high", "assignee_id": staff.id }),
    )
    .await;
    let again = app.events_of(&staff, ticket).await;
    assert_eq!(
        event_types(&again[events.len()..]),
        ["ticket.priority_changed"]
    );
}

#[tokio::test]
async fn history_is_paged_like_every_list() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    for n in 0..5 {
        app.post_message_ok(&staff, ticket, &format!("reply {n}"))
            .await;
        app.post_message_ok(&customer, ticket, &format!("more {n}"))
            .await;
    }
    let path = format!("/tickets/{ticket}/events");
    let all = app.get_json(&customer, &path).await;
    let all = all.as_array().expect("an array").clone();
    assert_eq!(all.len(), 12);

    let response = app.get_as(&customer, &format!("{path}?limit=5")).await;
    let link = next_link(response.headers()).expect("a Link rel=next");
    assert!(
        link.contains("limit=5") && link.contains("cursor="),
        "{link}"
    );
    let (paged, pages) = app
        .collect_pages(&customer, &format!("{path}?limit=5"), Value::clone)
        .await;
    assert_eq!(pages, 3);
    assert_eq!(paged, all);
    let ids: Vec<i64> = paged.iter().map(id_of).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    let exact = app.get_as(&customer, &format!("{path}?limit=12")).await;
    assert_eq!(next_link(exact.headers()), None);

    // Events written while paging come after the pages already read.
    let response = app.get_as(&customer, &format!("{path}?limit=10")).await;
    let link = next_link(response.headers()).expect("a Link rel=next");
    let first = assert_json(response, 200).await;
    app.set_status_ok(&staff, ticket, "unresolved").await;
    let (rest, _) = app.collect_pages(&customer, &link, Value::clone).await;
    let types = event_types(&rest);
    assert_eq!(
        types,
        [
            "message.created",
            "message.created",
            "ticket.status_changed"
        ]
    );
    assert_eq!(first.as_array().map(Vec::len), Some(10));
}

#[tokio::test]
async fn history_of_an_invisible_or_missing_ticket_is_404() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let stranger = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;

    let mut failures = Failures::default();
    for (actor, path) in [
        (&stranger, format!("/tickets/{ticket}/events")),
        (&stranger, format!("/tickets/{ticket}/events?limit=1")),
        (&staff, format!("/tickets/{}/events", i64::MAX)),
        (&customer, format!("/tickets/{}/events", i64::MAX)),
        (&staff, "/tickets/0/events".to_owned()),
        (&staff, "/tickets/abc/events".to_owned()),
    ] {
        failures
            .get_problem(&app, actor, &path, 404, &["ticket_not_found", "not_found"])
            .await;
    }
    failures.assert_none();
    let response = send(app.request(Method::GET, &format!("/tickets/{ticket}/events"))).await;
    assert_problem(response, 401, "unauthenticated").await;
    // Staff see every ticket's history; the author their own.
    for actor in [&staff, &customer] {
        assert_eq!(app.events_of(actor, ticket).await.len(), 2);
    }
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_400() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let other = app.open_ticket_id(&customer).await;
    let foreign_cursor = next_cursor(
        &app.get_as(&customer, &format!("/tickets/{other}/events?limit=1"))
            .await,
    );
    app.open_ticket_id(&customer).await;
    let tickets_cursor = next_cursor(&app.get_as(&customer, "/tickets?limit=1").await);

    let mut failures = Failures::default();
    for limit in ["0", "1001", "-1", "x"] {
        let path = format!("/tickets/{ticket}/events?limit={limit}");
        failures
            .get_problem(&app, &staff, &path, 400, &["limit_invalid"])
            .await;
    }
    for cursor in ["!!!", "1", foreign_cursor.as_str(), tickets_cursor.as_str()] {
        let path = format!("/tickets/{ticket}/events?cursor={cursor}");
        failures
            .get_problem(&app, &customer, &path, 400, &["cursor_invalid"])
            .await;
    }
    failures.assert_none();
}

#[tokio::test]
async fn event_ids_grow_and_are_unique_across_tickets() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let tickets = app.open_tickets(&customer, 3).await;
    for round in 0..3 {
        for ticket in &tickets {
            app.post_message_ok(&staff, *ticket, &format!("round {round}"))
                .await;
        }
    }

    let mut everyone = HashSet::new();
    for ticket in &tickets {
        let ids: Vec<i64> = app
            .events_of(&staff, *ticket)
            .await
            .iter()
            .map(id_of)
            .collect();
        assert_eq!(ids.len(), 5);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        for id in ids {
            assert!(everyone.insert(id), "event id {id} appears twice");
        }
    }
}

#[tokio::test]
async fn an_event_that_no_user_made_has_a_null_actor() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    // A change that no user made, recorded as the service records changes (the
    // invariants hold): what the migration wrote for old tickets' status.
    let client = app.db.pool().get().await.expect("a database connection");
    client
        .batch_execute(&format!(
            "BEGIN; \
             INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
             VALUES ({ticket}, NULL, 'ticket.status_changed', false, \
               '{{\"from\": \"pending\", \"to\": \"unresolved\"}}'); \
             UPDATE tickets SET status = 'unresolved', version = version + 1, \
               updated_at = now() WHERE id = {ticket}; \
             COMMIT"
        ))
        .await
        .expect("a system change");

    let events = app.events_of(&customer, ticket).await;
    let last = events.last().expect("events");
    assert_event_object(last, ticket);
    assert_eq!(last["type"], "ticket.status_changed");
    assert_eq!(last.get("actor"), Some(&Value::Null), "{last}");
    assert_eq!(
        last["data"],
        json!({ "from": "pending", "to": "unresolved" })
    );
}

#[tokio::test]
async fn an_event_the_service_cannot_read_is_a_500_not_a_503() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;
    let corrupt = "UPDATE ticket_events SET data = data || '{\"type\": \"gossip\"}' \
                   WHERE ticket_id = $1 AND type = 'message.created'";
    app.execute(corrupt, ticket).await;

    let response = app
        .get_as(&customer, &format!("/tickets/{ticket}/events"))
        .await;
    let problem = assert_problem(response, 500, "internal_error").await;
    assert!(
        !problem.to_string().contains("gossip"),
        "the cause is logged, not sent: {problem}"
    );

    let repair = "UPDATE ticket_events SET data = data || '{\"type\": \"request\"}' \
                  WHERE ticket_id = $1 AND type = 'message.created'";
    app.execute(repair, ticket).await;
    assert_eq!(app.events_of(&customer, ticket).await.len(), 2);
}

#[tokio::test]
async fn other_methods_on_the_history_are_405() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&staff).await;
    let path = format!("/tickets/{ticket}/events");

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let response = app
            .send_with_headers(&staff, method.clone(), &path, &[], Some(&json!({})))
            .await;
        assert_eq!(
            crate::helpers::header(response.headers(), "allow"),
            "GET, HEAD",
            "{method}"
        );
        assert_problem(response, 405, "method_not_allowed").await;
    }
    assert_eq!(app.events_of(&staff, ticket).await.len(), 2);
}

#[tokio::test]
async fn concurrent_writes_are_recorded_in_the_order_they_happened() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;

    let posts = (0..12).map(|n| {
        let (app, customer, staff) = (&app, &customer, &staff);
        async move {
            let text = format!("post {n}");
            let response = match n % 3 {
                0 => app.post_message(customer, ticket, &text).await,
                1 => app.post_message(staff, ticket, &text).await,
                _ => app.post_note(staff, ticket, &text).await,
            };
            id_of(&assert_json(response, 201).await)
        }
    });
    let mut posted = futures_util::future::join_all(posts).await;
    posted.sort_unstable();

    // Each write locks the ticket before it takes its ids, so the history lists the
    // messages in the order their writes committed, which is their ids' order.
    let events = app.events_of(&staff, ticket).await;
    let recorded: Vec<i64> = events[2..]
        .iter()
        .map(|e| e["data"]["message_id"].as_i64().expect("a message id"))
        .collect();
    assert_eq!(recorded, posted);
    let ids: Vec<i64> = events.iter().map(id_of).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(app.ticket_as(&customer, ticket).await["version"], 9);
}
