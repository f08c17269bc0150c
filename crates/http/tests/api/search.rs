//! `GET /tickets?q=`: full-text search over topics and the messages the caller may
//! see (English stemming, `websearch_to_tsquery` syntax), combined with every filter
//! and paging, in the list's order, each ticket once.

use serde_json::Value;

use crate::helpers::{
    assert_json, assert_problem, id_of, ids, next_link, spawn_app, Actor, Failures, TestApp,
};
use crate::workflow::{a_mixed_queue, check_filters, Filter};

/// `text` percent-encoded for a query string (everything but ASCII letters and digits).
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The ids that `actor` finds with `q` (and any `more` parameters), first page.
async fn found(app: &TestApp, actor: &Actor, q: &str, more: &str) -> Vec<i64> {
    let path = format!("/tickets?q={}{more}", encoded(q));
    ids(&app.get_json(actor, &path).await)
}

/// Checks each `(q, expected)` for every actor in `actors`.
async fn check_searches(app: &TestApp, actors: &[&Actor], cases: &[(&str, Vec<i64>)]) {
    let mut failures = Failures::default();
    for actor in actors {
        for (q, expected) in cases {
            let listed = found(app, actor, q, "").await;
            failures.check(listed == *expected, || {
                format!(
                    "q={q:?} as user {}: {listed:?}, expected {expected:?}",
                    actor.id
                )
            });
        }
    }
    failures.assert_none();
}

#[tokio::test]
async fn q_finds_topics_and_messages_with_english_stemming() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let refund = id_of(
        &app.open_ticket(&customer, "Refund please", "hello there")
            .await,
    );
    let billing = id_of(
        &app.open_ticket(&customer, "Billing", "I was charged twice")
            .await,
    );
    let printer = id_of(&app.open_ticket(&customer, "Printer", "it jams").await);
    app.post_message_ok(&staff, printer, "Replace the toner cartridges")
        .await;

    check_searches(
        &app,
        &[&customer, &staff],
        &[
            ("charged", vec![billing]),
            ("charge", vec![billing]),
            ("charges", vec![billing]),
            ("CHARGING", vec![billing]),
            ("refunds", vec![refund]),
            ("refunded", vec![refund]),
            ("billing", vec![billing]),
            ("cartridge", vec![printer]),
            ("jammed", vec![printer]),
            ("twice charged", vec![billing]),
            ("hello jams", vec![]),
            ("walrus", vec![]),
        ],
    )
    .await;
}

#[tokio::test]
async fn q_speaks_websearch_syntax() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let jam = id_of(
        &app.open_ticket(&customer, "printer jam", "paper stuck")
            .await,
    );
    let fire = id_of(
        &app.open_ticket(&customer, "printer fire", "smoke everywhere")
            .await,
    );
    let tray = id_of(
        &app.open_ticket(&customer, "scanner", "stuck paper tray")
            .await,
    );

    check_searches(
        &app,
        &[&customer],
        &[
            ("\"paper stuck\"", vec![jam]),
            ("\"stuck paper\"", vec![tray]),
            ("paper stuck", vec![jam, tray]),
            ("smoke or scanner", vec![fire, tray]),
            ("jam OR fire", vec![jam, fire]),
            ("printer -fire", vec![jam]),
            ("paper -tray", vec![jam]),
        ],
    )
    .await;
}

#[tokio::test]
async fn customers_search_their_own_tickets_and_never_notes() {
    let app = spawn_app().await;
    let alice = app.customer().await;
    let bob = app.customer().await;
    let staff = app.staff().await;
    let hers = id_of(&app.open_ticket(&alice, "alpha", "a walrus ate it").await);
    let his = id_of(&app.open_ticket(&bob, "beta", "walrus again").await);
    for ticket in [hers, his] {
        app.post_note_ok(&staff, ticket, "narwhal suspected").await;
    }

    for (actor, q, expected) in [
        (&alice, "walrus", vec![hers]),
        (&bob, "walrus", vec![his]),
        (&staff, "walrus", vec![hers, his]),
        (&alice, "narwhal", vec![]),
        (&bob, "narwhal", vec![]),
        (&alice, "\"narwhal suspected\"", vec![]),
        (&alice, "narwhal or alpha", vec![hers]),
        (&staff, "narwhal", vec![hers, his]),
        (&bob, "alpha", vec![]),
    ] {
        assert_eq!(
            found(&app, actor, q, "").await,
            expected,
            "{q} as {}",
            actor.id
        );
    }
    // Staff's responses are no notes: customers find them.
    app.post_message_ok(&staff, hers, "the narwhal is innocent")
        .await;
    assert_eq!(found(&app, &alice, "narwhal", "").await, [hers]);
    assert_eq!(found(&app, &bob, "narwhal", "").await, Vec::<i64>::new());
}

#[tokio::test]
async fn each_ticket_is_listed_once_in_the_lists_order() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let first = id_of(&app.open_ticket(&customer, "kiwi", "kiwi kiwi").await);
    app.post_message_ok(&staff, first, "more kiwi").await;
    app.post_message_ok(&customer, first, "kiwis!").await;
    let none = app.open_ticket_id(&customer).await;
    let third = id_of(&app.open_ticket(&customer, "fruit", "a kiwi").await);
    let fourth = id_of(&app.open_ticket(&customer, "kiwi", "and kiwi").await);
    app.post_message_ok(&staff, none, "no fruit here").await;
    let matching = vec![first, third, fourth];

    for actor in [&customer, &staff] {
        assert_eq!(found(&app, actor, "kiwi", "").await, matching);
        let descending = found(&app, actor, "kiwi", "&order=desc").await;
        assert_eq!(descending, [fourth, third, first]);
        let (paged, pages) = app
            .collect_pages(actor, "/tickets?q=kiwi&limit=1", Value::clone)
            .await;
        assert_eq!(paged.iter().map(id_of).collect::<Vec<_>>(), matching);
        assert_eq!(pages, 3);
    }
    let response = app.get_as(&customer, "/tickets?q=kiwi&limit=2").await;
    let link = next_link(response.headers()).expect("a Link rel=next");
    assert!(link.contains("q=kiwi"), "the link keeps the search: {link}");
}

#[tokio::test]
async fn q_combines_with_every_filter_and_paging() {
    let app = spawn_app().await;
    let authors = [app.customer().await, app.customer().await];
    let staff = [app.staff().await, app.staff().await];
    let known = a_mixed_queue(&app, &authors, &staff).await;
    let mango = |filter: Filter| Filter {
        q: Some("mango"),
        ..filter
    };
    let filters = [
        mango(Filter::default()),
        mango(Filter {
            desc: true,
            ..Filter::default()
        }),
        mango(Filter {
            statuses: vec!["pending", "canceled"],
            ..Filter::default()
        }),
        mango(Filter {
            priorities: vec!["normal", "high"],
            ..Filter::default()
        }),
        mango(Filter {
            assignee: Some(Some(staff[0].id)),
            ..Filter::default()
        }),
        mango(Filter {
            assignee: Some(None),
            desc: true,
            ..Filter::default()
        }),
        mango(Filter {
            author: Some(1),
            statuses: vec!["unresolved", "canceled"],
            ..Filter::default()
        }),
        Filter {
            q: Some("kiwi"),
            priorities: vec!["urgent", "low"],
            assignee: Some(Some(staff[1].id)),
            ..Filter::default()
        },
    ];

    check_filters(&app, &authors, &staff, &known, &filters).await;
}

#[tokio::test]
async fn a_message_is_findable_as_soon_as_its_post_answered() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let words = [
        "quokka", "axolotl", "pangolin", "capybara", "okapi", "tapir",
    ];

    for (n, word) in words.iter().enumerate() {
        let author = if n % 2 == 0 { &customer } else { &staff };
        app.post_message_ok(author, ticket, &format!("a {word} appeared"))
            .await;
        for actor in [&customer, &staff] {
            assert_eq!(found(&app, actor, word, "").await, [ticket], "{word}");
        }
    }
    let opened = id_of(&app.open_ticket(&customer, "wombat", "x").await);
    assert_eq!(found(&app, &customer, "wombat", "").await, [opened]);
}

#[tokio::test]
async fn q_of_more_than_256_characters_is_400() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    app.open_ticket_id(&customer).await;

    let mut failures = Failures::default();
    for actor in [&customer, &staff] {
        for q in [
            "a".repeat(257),
            "ж".repeat(257),
            format!("{} x", "w".repeat(255)),
        ] {
            let path = format!("/tickets?q={}", encoded(&q));
            failures
                .get_problem(&app, actor, &path, 400, &["search_query_too_long"])
                .await;
        }
        for q in [
            "a".repeat(256),
            "ж".repeat(256),
            format!("{} x", "w".repeat(254)),
        ] {
            let response = app
                .get_as(actor, &format!("/tickets?q={}", encoded(&q)))
                .await;
            let status = response.status();
            failures.check(status == 200, || {
                format!("{} characters: {status}", q.chars().count())
            });
        }
    }
    failures.assert_none();
}

#[tokio::test]
async fn a_blank_q_is_no_search() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let opened = app.open_tickets(&customer, 3).await;

    for q in ["", "%20", "%20%20%09"] {
        let list = app.get_json(&customer, &format!("/tickets?q={q}")).await;
        assert_eq!(ids(&list), opened, "q={q:?}");
    }
}

#[tokio::test]
async fn any_text_is_a_query_and_none_is_a_server_error() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = id_of(&app.open_ticket(&customer, "odd: text!", "a & b | c").await);

    let mut failures = Failures::default();
    for q in [
        "(",
        ")",
        "!",
        "&",
        "|",
        ":*",
        "'",
        "\"",
        "\"unclosed",
        "-",
        "or",
        "or or",
        "-or",
        "a:b",
        "\\",
        "<->",
        "*",
        "%",
        "_",
        "a & b",
        "!!a",
        "'; DROP TABLE tickets; --",
        "the",
        "\u{1F600}",
    ] {
        for actor in [&customer, &staff] {
            let response = app
                .get_as(actor, &format!("/tickets?q={}", encoded(q)))
                .await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            failures.check(status == 200 && text.starts_with('['), || {
                format!("q={q:?}: {status} {text}")
            });
        }
    }
    failures.assert_none();
    assert_eq!(found(&app, &customer, "odd text", "").await, [ticket]);
    let response = app.get_as(&customer, "/tickets?q=a%00b").await;
    assert_problem(response, 400, "nul_character").await;
    assert_eq!(
        assert_json(app.get_as(&staff, "/tickets?q=odd").await, 200).await,
        app.get_json(&staff, &format!("/tickets?q={}", encoded("ODD")))
            .await
    );
}
