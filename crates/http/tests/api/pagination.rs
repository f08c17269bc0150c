//! `limit`, `cursor` and the `Link` header on every list; the filters of `GET /tickets`.

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{
    assert_json, assert_problem, id_of, ids, next_cursor, next_link, spawn_app, str_field, Actor,
    TestApp,
};

/// Identity: the page body is the list.
fn whole(body: &Value) -> Value {
    body.clone()
}

/// The ids of collected rows, asserting no row appears twice.
fn unique_ids(rows: &[Value]) -> Vec<i64> {
    let ids: Vec<i64> = rows.iter().map(id_of).collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a row appears twice: {ids:?}");
    ids
}

/// The ids of `GET /tickets` in creation order as the database holds them.
async fn ticket_ids_in_db(app: &TestApp, filter: &str) -> Vec<i64> {
    let client = app.db.pool().get().await.expect("a database connection");
    let sql = format!("SELECT id FROM tickets {filter} ORDER BY created_at, id");
    let rows = client.query(&sql, &[]).await.expect("the query runs");
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn limit_must_be_1_to_1000_on_every_list() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&staff).await;
    let lists = [
        "/tickets".to_owned(),
        "/users".to_owned(),
        "/users/me".to_owned(),
        format!("/users/{}", staff.id),
        format!("/tickets/{ticket}/messages"),
    ];

    for list in &lists {
        for bad in [
            "0",
            "1001",
            "-1",
            "abc",
            "1.5",
            "",
            "99999999999999999999",
            "1e2",
        ] {
            let response = app.get_as(&staff, &format!("{list}?limit={bad}")).await;
            assert_problem(response, 400, "limit_invalid").await;
        }
        for good in ["1", "1000"] {
            let response = app.get_as(&staff, &format!("{list}?limit={good}")).await;
            assert_eq!(response.status(), 200, "{list}?limit={good}");
        }
    }
}

#[tokio::test]
async fn the_default_page_holds_100_rows_and_links_to_the_rest() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let opened = app.open_tickets(&customer, 101).await;

    let response = app.get_as(&customer, "/tickets").await;
    let link = next_link(response.headers()).expect("a Link rel=next");
    let first = assert_json(response, 200).await;

    assert_eq!(ids(&first), opened[..100]);
    let (rest, pages) = app.collect_pages(&customer, &link, whole).await;
    assert_eq!(unique_ids(&rest), opened[100..]);
    assert_eq!(pages, 1);
}

#[tokio::test]
async fn following_next_links_yields_every_ticket_once_in_order() {
    let app = spawn_app().await;
    let a = app.customer().await;
    let b = app.customer().await;
    let staff = app.staff().await;
    let mine = app.open_tickets(&a, 23).await;
    app.open_tickets(&b, 7).await;

    let (rows, pages) = app.collect_pages(&a, "/tickets?limit=5", whole).await;
    assert_eq!(unique_ids(&rows), mine);
    assert_eq!(pages, 5);

    let (rows, _) = app.collect_pages(&staff, "/tickets?limit=4", whole).await;
    assert_eq!(unique_ids(&rows), ticket_ids_in_db(&app, "").await);
    assert!(rows.iter().all(|t| t["author"].is_string()));
}

#[tokio::test]
async fn the_link_keeps_the_limit_and_no_link_follows_the_last_page() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    app.open_tickets(&customer, 6).await;

    let response = app.get_as(&customer, "/tickets?limit=3").await;
    let link = next_link(response.headers()).expect("a Link rel=next");
    assert!(link.contains("limit=3"), "{link}");
    assert!(link.contains("cursor="), "{link}");
    assert!(
        link.starts_with("/tickets?") || link.contains("/tickets?"),
        "{link}"
    );

    let last = app.get_as(&customer, &link).await;
    assert_eq!(
        next_link(last.headers()),
        None,
        "exactly 6 rows: no third page"
    );
    assert_eq!(
        assert_json(last, 200).await.as_array().map(Vec::len),
        Some(3)
    );

    let everything = app.get_as(&customer, "/tickets?limit=6").await;
    assert_eq!(
        next_link(everything.headers()),
        None,
        "no more rows: no Link"
    );
}

#[tokio::test]
async fn rows_added_while_paging_are_neither_skipped_nor_repeated() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let before = app.open_tickets(&customer, 5).await;

    let response = app.get_as(&customer, "/tickets?limit=2").await;
    let link = next_link(response.headers()).expect("a Link rel=next");
    let first = ids(&assert_json(response, 200).await);
    let added = app.open_tickets(&customer, 3).await;
    let (rest, _) = app.collect_pages(&customer, &link, whole).await;

    let mut seen = first;
    seen.extend(unique_ids(&rest));
    let expected: Vec<i64> = before.iter().chain(added.iter()).copied().collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn descending_order_pages_backwards_through_time() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut opened = app.open_tickets(&customer, 7).await;
    opened.reverse();

    let all = app.get_json(&customer, "/tickets?order=desc").await;
    assert_eq!(ids(&all), opened);
    let (rows, pages) = app
        .collect_pages(&customer, "/tickets?order=desc&limit=2", whole)
        .await;
    assert_eq!(unique_ids(&rows), opened);
    assert_eq!(pages, 4);
    let ascending = app.get_json(&customer, "/tickets?order=asc").await;
    assert_eq!(
        ids(&ascending),
        opened.iter().rev().copied().collect::<Vec<_>>()
    );
}

/// A ticket by `author` in each status; returns (status, id) pairs.
async fn one_in_each_status(
    app: &TestApp,
    author: &Actor,
    staff: &Actor,
) -> Vec<(&'static str, i64)> {
    let mut made = Vec::new();
    for status in ["pending", "unresolved", "resolved", "canceled"] {
        made.push((
            status,
            app.ticket_with_status(author, staff, status, false).await,
        ));
    }
    made
}

#[tokio::test]
async fn the_status_filter_takes_one_or_more_statuses() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let mut made = one_in_each_status(&app, &customer, &staff).await;
    made.extend(one_in_each_status(&app, &customer, &staff).await);
    let matching = |wanted: &[&str]| -> Vec<i64> {
        made.iter()
            .filter(|(s, _)| wanted.contains(s))
            .map(|(_, id)| *id)
            .collect()
    };

    for (query, wanted) in [
        ("pending", vec!["pending"]),
        ("canceled", vec!["canceled"]),
        ("pending,unresolved", vec!["pending", "unresolved"]),
        (
            "resolved,canceled,pending",
            vec!["resolved", "canceled", "pending"],
        ),
        (
            "pending,resolved,unresolved,canceled",
            vec!["pending", "resolved", "unresolved", "canceled"],
        ),
    ] {
        for actor in [&customer, &staff] {
            let list = app
                .get_json(actor, &format!("/tickets?status={query}"))
                .await;
            assert_eq!(ids(&list), matching(&wanted), "status={query}");
            let (rows, _) = app
                .collect_pages(actor, &format!("/tickets?status={query}&limit=1"), whole)
                .await;
            assert_eq!(unique_ids(&rows), matching(&wanted), "paged status={query}");
        }
    }
    let descending = app
        .get_json(&staff, "/tickets?status=pending,canceled&order=desc")
        .await;
    let mut expected = matching(&["pending", "canceled"]);
    expected.reverse();
    assert_eq!(ids(&descending), expected);
}

#[tokio::test]
async fn unknown_status_and_order_values_are_400() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for query in [
        "status=closed",
        "status=pending,closed",
        "status=Pending",
        "status=PENDING",
    ] {
        let response = app.get_as(&customer, &format!("/tickets?{query}")).await;
        assert_problem(response, 400, "status_unknown").await;
    }
    for query in ["order=sideways", "order=DESC", "order=ascending", "order=1"] {
        let response = app.get_as(&customer, &format!("/tickets?{query}")).await;
        assert_problem(response, 400, "order_invalid").await;
    }
}

#[tokio::test]
async fn staff_filter_by_author_email() {
    let app = spawn_app().await;
    let a = app.customer().await;
    let b = app.customer().await;
    let staff = app.staff().await;
    let by_a = app.open_tickets(&a, 3).await;
    let by_b = app.open_tickets(&b, 2).await;

    let list = app
        .get_json(&staff, &format!("/tickets?author={}", a.email))
        .await;
    assert_eq!(ids(&list), by_a);
    assert!(list
        .as_array()
        .into_iter()
        .flatten()
        .all(|t| str_field(t, "author") == a.email));
    let upper = b.email.to_uppercase();
    let list = app
        .get_json(&staff, &format!("/tickets?author={upper}"))
        .await;
    assert_eq!(ids(&list), by_b, "emails compare without regard to case");
    let (rows, _) = app
        .collect_pages(
            &staff,
            &format!("/tickets?author={}&limit=1", a.email),
            whole,
        )
        .await;
    assert_eq!(unique_ids(&rows), by_a);
    let nobody = app.get_json(&staff, "/tickets?author=nobody@x.io").await;
    assert_eq!(nobody, serde_json::json!([]));
}

#[tokio::test]
async fn a_customer_cannot_use_the_author_filter_to_see_others() {
    let app = spawn_app().await;
    let me = app.customer().await;
    let other = app.customer().await;
    let mine = app.open_tickets(&me, 2).await;
    app.open_tickets(&other, 2).await;

    let response = app
        .get_as(&me, &format!("/tickets?author={}", other.email))
        .await;

    if response.status() == 200 {
        let list = assert_json(response, 200).await;
        let seen = ids(&list);
        assert!(
            seen.iter().all(|id| mine.contains(id)),
            "saw another's tickets: {seen:?}"
        );
    } else {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
}

#[tokio::test]
async fn malformed_and_tampered_cursors_are_400() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    app.open_tickets(&customer, 3).await;
    let cursor = next_cursor(&app.get_as(&customer, "/tickets?limit=1").await);
    assert_eq!(
        app.get_as(&customer, &format!("/tickets?limit=1&cursor={cursor}"))
            .await
            .status(),
        200
    );

    let mut tampered = Vec::new();
    let bytes = cursor.as_bytes();
    for position in [0, bytes.len() / 2, bytes.len() - 1] {
        let original = char::from(bytes[position]);
        let in_escape = bytes[position.saturating_sub(2)..position].contains(&b'%');
        if !original.is_ascii_alphanumeric() || in_escape {
            continue;
        }
        let replacement = if original == 'A' { 'B' } else { 'A' };
        let mut changed = cursor.clone();
        changed.replace_range(position..=position, &replacement.to_string());
        tampered.push(changed);
    }
    assert!(!tampered.is_empty(), "no alphanumeric position in {cursor}");
    let mut cut = cursor.len() / 2;
    // Do not cut a percent-escape in two: that would be a malformed query instead.
    while cursor[..cut].ends_with('%') || cursor[..cut].rfind('%').is_some_and(|p| p + 3 > cut) {
        cut -= 1;
    }
    let truncated = cursor[..cut].to_owned();
    let doubled = format!("{cursor}{cursor}");
    for bad in tampered.iter().map(String::as_str).chain([
        truncated.as_str(),
        doubled.as_str(),
        "!!!",
        "null",
        "1",
        "eyJpZCI6MX0",
    ]) {
        let response = app
            .get_as(&customer, &format!("/tickets?limit=1&cursor={bad}"))
            .await;
        assert_problem(response, 400, "cursor_invalid").await;
    }
}

#[tokio::test]
async fn messages_are_paged_too() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    for n in 0..9 {
        let actor = if n % 2 == 0 { &staff } else { &customer };
        app.post_message_ok(actor, ticket, &format!("message {n}"))
            .await;
    }
    let path = format!("/tickets/{ticket}/messages");
    let all = app.get_json(&customer, &path).await;
    assert_eq!(all.as_array().map(Vec::len), Some(10));

    let (rows, pages) = app
        .collect_pages(&customer, &format!("{path}?limit=3"), whole)
        .await;

    assert_eq!(unique_ids(&rows), ids(&all));
    assert_eq!(pages, 4);
}

#[tokio::test]
async fn the_user_list_is_paged_in_its_order() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let mut customers = Vec::new();
    for n in 0..7 {
        let customer = app.customer().await;
        app.open_tickets(&customer, n % 3).await;
        customers.push(customer);
    }
    let all = app.get_json(&staff, "/users").await;
    assert_eq!(all.as_array().map(Vec::len), Some(8));

    let (rows, pages) = app.collect_pages(&staff, "/users?limit=3", whole).await;

    assert_eq!(unique_ids(&rows), ids(&all));
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn the_tickets_embedded_in_a_user_are_paged() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let opened = app.open_tickets(&customer, 7).await;

    let (rows, pages) = app
        .collect_pages(&customer, "/users/me?limit=3", |user| {
            user["tickets"].clone()
        })
        .await;

    assert_eq!(unique_ids(&rows), opened);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn empty_lists_are_empty_arrays() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;

    for (actor, path) in [
        (&customer, "/tickets"),
        (&customer, "/tickets?status=resolved"),
        (&staff, "/tickets?status=canceled,resolved&order=desc"),
        (&staff, "/tickets?author=nobody@x.io"),
    ] {
        let response = app.get_as(actor, path).await;
        assert_eq!(next_link(response.headers()), None);
        assert_eq!(
            assert_json(response, 200).await,
            serde_json::json!([]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn lists_follow_creation_time_then_id_not_id_alone() {
    // `now()` is when a transaction began, so a row with a higher id can carry an
    // earlier time; the contract orders by (created_at, id).
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let opened = app.open_tickets(&customer, 3).await;
    let (first, second, newest) = (opened[0], opened[1], opened[2]);
    app.execute(
        "UPDATE tickets SET created_at = created_at - interval '1 hour' WHERE id = $1",
        newest,
    )
    .await;
    let oldest_first = vec![newest, first, second];
    let newest_first: Vec<i64> = oldest_first.iter().rev().copied().collect();

    assert_eq!(
        ids(&app.get_json(&customer, "/tickets").await),
        oldest_first
    );
    assert_eq!(
        ids(&app.get_json(&customer, "/tickets?order=desc").await),
        newest_first
    );
    let (paged, _) = app
        .collect_pages(&customer, "/tickets?limit=1", whole)
        .await;
    assert_eq!(unique_ids(&paged), oldest_first);
    let (paged, _) = app
        .collect_pages(&staff, "/tickets?limit=1&order=desc", whole)
        .await;
    assert_eq!(unique_ids(&paged), newest_first);
    let (embedded, _) = app
        .collect_pages(&customer, "/users/me?limit=1", |user| {
            user["tickets"].clone()
        })
        .await;
    assert_eq!(unique_ids(&embedded), oldest_first);

    // Messages: the third moves between the first (the request) and the second.
    let path = format!("/tickets/{first}/messages");
    let request = id_of(&app.get_json(&customer, &path).await[0]);
    let reply = id_of(&app.post_message_ok(&staff, first, "second").await);
    let late = id_of(&app.post_message_ok(&customer, first, "third").await);
    app.execute(
        "UPDATE messages SET created_at = created_at - interval '2 hours' WHERE id = $1",
        request,
    )
    .await;
    app.execute(
        "UPDATE messages SET created_at = created_at - interval '1 hour' WHERE id = $1",
        late,
    )
    .await;
    let (messages, _) = app
        .collect_pages(&customer, &format!("{path}?limit=1"), whole)
        .await;
    assert_eq!(unique_ids(&messages), vec![request, late, reply]);
}

#[tokio::test]
async fn every_list_refuses_garbage_and_the_cursors_of_other_lists() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let opened = app.open_tickets(&customer, 2).await;
    for ticket in &opened {
        app.post_message_ok(&staff, *ticket, "a reply").await;
    }
    let tickets_cursor = next_cursor(&app.get_as(&customer, "/tickets?limit=1").await);
    let messages_cursor = next_cursor(
        &app.get_as(
            &customer,
            &format!("/tickets/{}/messages?limit=1", opened[0]),
        )
        .await,
    );
    let own_cursor = next_cursor(&app.get_as(&customer, "/users/me?limit=1").await);
    let refused = [
        (
            &customer,
            format!("/tickets/{}/messages?cursor=!!!", opened[0]),
        ),
        (&staff, "/users?cursor=!!!".to_owned()),
        (&customer, "/users/me?cursor=!!!".to_owned()),
        (&customer, format!("/users/{}?cursor=!!!", customer.id)),
        // Another ticket's messages.
        (
            &customer,
            format!("/tickets/{}/messages?cursor={messages_cursor}", opened[1]),
        ),
        // Another list altogether.
        (&customer, format!("/users/me?cursor={tickets_cursor}")),
        (&customer, format!("/tickets?cursor={own_cursor}")),
        (&staff, format!("/users?cursor={tickets_cursor}")),
        (
            &customer,
            format!("/tickets?order=desc&cursor={tickets_cursor}"),
        ),
    ];

    for (actor, path) in refused {
        let response = app.get_as(actor, &path).await;
        assert_problem(response, 400, "cursor_invalid").await;
    }
}
