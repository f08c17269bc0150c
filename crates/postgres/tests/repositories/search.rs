//! Full-text search in the ticket list: topics and the message texts the viewer may
//! see, English stemming, `websearch_to_tsquery` syntax, combined with every filter
//! and with keyset pages.

use std::time::Duration;

use domain::page::PageRequest;
use domain::ports::{TicketRepository, Viewer};
use domain::ticket::{AssigneeFilter, SortOrder, TicketFilter};
use domain::values::SearchQuery;
use domain::{MessageType, Priority, Role, TicketStatus, User};
use postgres_adapter::PgTicketRepository;

use super::support::{all_tickets, limit, listed, viewer, Cast, Fixture};

fn search(raw: &str) -> TicketFilter {
    TicketFilter {
        search: Some(SearchQuery::parse(raw).expect("valid").expect("not blank")),
        ..TicketFilter::default()
    }
}

/// The topics of the tickets that `viewer`'s search for `raw` lists, in list order.
async fn found(fx: &Fixture, viewer: Viewer, raw: &str) -> Vec<String> {
    fx.tickets
        .list_visible(viewer, search(raw), PageRequest::first(limit(100)))
        .await
        .expect("search")
        .items
        .into_iter()
        .map(|ticket| ticket.topic)
        .collect()
}

/// Tickets to search, each a topic and a first message, by one author.
async fn corpus(fx: &Fixture, author: &User) {
    for (topic, first) in [
        ("refund request", "I was double billed"),
        ("card declined", "my card payment failed yesterday"),
        (
            "login broken",
            "cannot sign in after the charge went through",
        ),
        ("payment failed", "the payment failed again"),
        ("hello", "printer jammed"),
    ] {
        fx.open_with(author, topic, first).await;
    }
}

/// Checks each search in `cases` against the topics it must list.
async fn assert_finds(fx: &Fixture, who: &User, cases: &[(&str, &[&str])]) {
    for (query, expected) in cases {
        assert_eq!(found(fx, viewer(who), query).await, *expected, "q={query}");
    }
}

#[tokio::test]
async fn search_finds_words_of_topics_and_of_message_texts() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    corpus(&fx, &author).await;
    let cases: &[(&str, &[&str])] = &[
        ("refund", &["refund request"]),
        ("billed", &["refund request"]),
        ("declined", &["card declined"]),
        ("yesterday", &["card declined"]),
        ("REFUND", &["refund request"]),
        ("nowhere", &[]),
    ];
    assert_finds(&fx, &author, cases).await;

    // A message posted later is found as soon as it is written.
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let hello = fx
        .tickets
        .list_visible(
            viewer(&author),
            search("printer"),
            PageRequest::first(limit(10)),
        )
        .await
        .expect("search")
        .items;
    assert_eq!(hello.len(), 1);
    fx.post(
        &staff,
        hello[0].id,
        MessageType::Response,
        "try a toner swap",
    )
    .await;
    assert_finds(&fx, &author, &[("toner", &["hello"])]).await;
}

#[tokio::test]
async fn search_stems_english_words() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    corpus(&fx, &author).await;
    let cases: &[(&str, &[&str])] = &[
        ("charged", &["login broken"]),
        ("charges", &["login broken"]),
        ("charging", &["login broken"]),
        ("payments", &["card declined", "payment failed"]),
        ("failing", &["card declined", "payment failed"]),
        ("requests", &["refund request"]),
    ];
    assert_finds(&fx, &author, cases).await;
}

#[tokio::test]
async fn search_takes_quoted_phrases_or_and_negation() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    corpus(&fx, &author).await;
    let cases: &[(&str, &[&str])] = &[
        // Every word, in the topic or in one message.
        ("card payment", &["card declined"]),
        ("payment refund", &[]),
        ("\"payment failed\"", &["card declined", "payment failed"]),
        ("\"failed payment\"", &[]),
        ("refund or login", &["refund request", "login broken"]),
        ("payment -card", &["payment failed"]),
        ("-payment failed", &[]),
        // Not the syntax of `to_tsquery`: stray operators are words or nothing.
        ("refund & | !", &["refund request"]),
    ];
    assert_finds(&fx, &author, cases).await;
}

#[tokio::test]
async fn customers_never_find_notes_or_others_tickets_and_staff_find_both() {
    let fx = Fixture::new().await;
    let alice = fx.user("alice@post.io", Role::Customer).await;
    let bob = fx.user("bob@post.io", Role::Customer).await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let alices = fx.open_with(&alice, "alice's", "my modem").await;
    fx.post(
        &staff,
        alices.id,
        MessageType::Note,
        "suspicious modem firmware",
    )
    .await;
    fx.open_with(&bob, "firmware bug", "bob's modem").await;

    assert_finds(&fx, &alice, &[("firmware", &[]), ("modem", &["alice's"])]).await;
    assert_finds(
        &fx,
        &bob,
        &[("firmware", &["firmware bug"]), ("suspicious", &[])],
    )
    .await;
    assert_finds(
        &fx,
        &staff,
        &[
            ("firmware", &["alice's", "firmware bug"]),
            ("suspicious", &["alice's"]),
            ("modem", &["alice's", "firmware bug"]),
        ],
    )
    .await;
    // The note's words do not leak through a combination either.
    assert_finds(
        &fx,
        &alice,
        &[
            ("modem suspicious", &[]),
            ("modem or suspicious", &["alice's"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_ticket_matching_in_its_topic_and_several_messages_is_listed_once() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let many = fx
        .open_with(&author, "printer offline", "the printer")
        .await;
    for text in ["printer again", "printers everywhere", "a printer note"] {
        let kind = if text.contains("note") {
            MessageType::Note
        } else {
            MessageType::Response
        };
        fx.post(&staff, many.id, kind, text).await;
    }
    let once = fx.open_with(&author, "other", "one printer").await;
    for who in [&author, &staff] {
        for page_size in [1, 2, 10] {
            let seen = all_tickets(
                &fx,
                viewer(who),
                &search("printer"),
                page_size,
                async |_| {},
            )
            .await;
            assert_eq!(
                seen,
                [many.id.get(), once.id.get()],
                "{} in pages of {page_size}",
                who.email
            );
        }
    }
}

#[tokio::test]
async fn search_combines_with_every_filter_and_pages_in_both_orders() {
    let fx = Fixture::new().await;
    let cast = Cast::new(&fx).await;
    let (alice, bob, ann, ben) = (&cast.alice, &cast.bob, &cast.ann, &cast.ben);
    // Half the tickets match in their topic or a message; some others only in a note.
    let series = fx
        .series(&cast, 20, |n| match n % 4 {
            0 => (format!("printer {n}"), "broken"),
            1 => (format!("other {n}"), "nothing here"),
            2 => (format!("misc {n}"), "nothing here"),
            _ => (format!("device {n}"), "the printers jam"),
        })
        .await;
    let mut tickets = Vec::new();
    for (n, ticket) in series.into_iter().enumerate() {
        let matches_in_note = n % 4 == 1;
        if matches_in_note {
            fx.post(ann, ticket.id, MessageType::Note, "maybe the printer")
                .await;
        }
        let matches_visibly = n % 4 == 0 || n % 4 == 3;
        tickets.push((ticket, matches_visibly, matches_in_note));
    }

    let with = |filter: TicketFilter| TicketFilter {
        search: search("printers").search,
        ..filter
    };
    let cases = [
        (ann, with(TicketFilter::default())),
        (alice, with(TicketFilter::default())),
        (
            bob,
            with(TicketFilter {
                order: SortOrder::Descending,
                ..TicketFilter::default()
            }),
        ),
        (
            ann,
            with(TicketFilter {
                statuses: vec![TicketStatus::Pending],
                ..TicketFilter::default()
            }),
        ),
        (
            ben,
            with(TicketFilter {
                priorities: vec![Priority::Low, Priority::High],
                order: SortOrder::Descending,
                ..TicketFilter::default()
            }),
        ),
        (
            ann,
            with(TicketFilter {
                assignee: Some(AssigneeFilter::Nobody),
                ..TicketFilter::default()
            }),
        ),
        (
            ann,
            with(TicketFilter {
                assignee: Some(AssigneeFilter::User(ben.id)),
                order: SortOrder::Descending,
                ..TicketFilter::default()
            }),
        ),
        (
            ben,
            with(TicketFilter {
                author_email: Some("bob@post.io".to_owned()),
                statuses: vec![TicketStatus::Pending, TicketStatus::Resolved],
                ..TicketFilter::default()
            }),
        ),
    ];
    for (who, filter) in cases {
        let as_viewer = viewer(who);
        let mut expected: Vec<i64> = tickets
            .iter()
            .filter(|(ticket, visibly, in_note)| {
                let matches = *visibly || (*in_note && as_viewer.sees_internal);
                matches && listed(as_viewer, &filter, ticket)
            })
            .map(|(ticket, _, _)| ticket.id.get())
            .collect();
        if filter.order == SortOrder::Descending {
            expected.reverse();
        }
        assert!(
            !expected.is_empty(),
            "a case that tells nothing: {filter:?}"
        );
        let seen = all_tickets(&fx, as_viewer, &filter, 2, async |_| {}).await;
        assert_eq!(seen, expected, "{} asking {filter:?}", who.email);
    }
}

/// Flushes the text indexes' pending lists and gathers statistics, as autovacuum
/// would in time: without it, the planner prices every pending entry.
async fn settle(fx: &Fixture) {
    let client = fx.db.pool().get().await.expect("connection");
    client
        .batch_execute("VACUUM ANALYZE tickets, messages")
        .await
        .expect("vacuum");
}

/// How often each text index has been scanned, as the statistics collector counts it.
async fn text_index_scans(fx: &Fixture) -> (i64, i64) {
    let client = fx.db.pool().get().await.expect("connection");
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .expect("fresh statistics");
    let row = client
        .query_one(
            "SELECT \
             (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'tickets_search_idx'), \
             (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'messages_search_idx')",
            &[],
        )
        .await
        .expect("index statistics");
    (row.get(0), row.get(1))
}

/// The adapter's search statement is private and built per filter, so rather than
/// `EXPLAIN` a copy of it, this runs the real one (on a pool of its own) and reads
/// the index scans it made from the statistics, which a backend publishes when it
/// ends.
#[tokio::test]
async fn a_search_for_a_rare_word_scans_both_text_indexes() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    fx.execute(
        "INSERT INTO tickets (author_id, topic, created_at) \
         SELECT $1, 'topic ' || (n % 50), now() - n * interval '1 minute' \
         FROM generate_series(1, 3000) AS n",
        &[&author.id.get()],
    )
    .await;
    fx.execute(
        "INSERT INTO messages (ticket_id, author_id, type, text) \
         SELECT t.id, t.author_id, 'request', 'common words about ' || (t.id % 97) || ' things' \
         FROM tickets t CROSS JOIN generate_series(1, 2)",
        &[],
    )
    .await;
    let in_topic = fx.open_with(&author, "zyxel router", "help").await;
    let in_message = fx.open_with(&author, "router", "my zyxel is broken").await;
    settle(&fx).await;
    let before = text_index_scans(&fx).await;

    let pool = fx.own_pool(1);
    let found: Vec<i64> = PgTicketRepository::new(pool.clone())
        .list_visible(
            viewer(&staff),
            search("zyxel"),
            PageRequest::first(limit(100)),
        )
        .await
        .expect("search")
        .items
        .iter()
        .map(|ticket| ticket.id.get())
        .collect();
    assert_eq!(found, [in_topic.id.get(), in_message.id.get()]);
    // Closing the pool ends its backend, which publishes its statistics.
    pool.close();

    let mut after = text_index_scans(&fx).await;
    for _ in 0..300 {
        if after.0 > before.0 && after.1 > before.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = text_index_scans(&fx).await;
    }
    assert!(
        after.0 > before.0,
        "tickets_search_idx unused: {before:?} → {after:?}"
    );
    assert!(
        after.1 > before.1,
        "messages_search_idx unused: {before:?} → {after:?}"
    );
}

/// More matches than the statement collects before it switches to walking the list in
/// order (over 10,000): the pages must be the same as for a rare word, topic and
/// message matches alike, in both orders and after a cursor.
#[tokio::test]
async fn a_search_for_a_common_word_lists_the_same_pages() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    // Ticket n (older as n grows) matches in its topic when n % 7 = 0, in its message
    // when n % 3 > 0, and only in a staff note when n % 11 = 0: 13,000 matches.
    fx.execute(
        "INSERT INTO tickets (author_id, topic, created_at) \
         SELECT $1, CASE WHEN n % 7 = 0 THEN 'frequent ' ELSE 'other ' END || n, \
                now() - n * interval '1 second' \
         FROM generate_series(1, 17000) AS n",
        &[&author.id.get()],
    )
    .await;
    fx.execute(
        "INSERT INTO messages (ticket_id, author_id, type, text) \
         SELECT t.id, t.author_id, 'request', \
                CASE WHEN split_part(t.topic, ' ', 2)::int % 3 > 0 \
                     THEN 'a frequent problem' ELSE 'nothing' END \
         FROM tickets t",
        &[],
    )
    .await;
    fx.execute(
        "INSERT INTO messages (ticket_id, author_id, type, text) \
         SELECT t.id, $1, 'note', 'frequently seen' FROM tickets t \
         WHERE split_part(t.topic, ' ', 2)::int % 11 = 0",
        &[&staff.id.get()],
    )
    .await;
    let matches = |n: i64, sees_notes: bool| n % 7 == 0 || n % 3 > 0 || (sees_notes && n % 11 == 0);
    settle(&fx).await;

    for (who, sees_notes) in [(&staff, true), (&author, false)] {
        for order in [SortOrder::Descending, SortOrder::Ascending] {
            let mut expected: Vec<i64> = (1..=17000).filter(|&n| matches(n, sees_notes)).collect();
            if order == SortOrder::Ascending {
                expected.reverse();
            }
            let filter = TicketFilter {
                order,
                ..search("frequent")
            };
            let first = fx
                .tickets
                .list_visible(viewer(who), filter.clone(), PageRequest::first(limit(100)))
                .await
                .expect("first page");
            let next = PageRequest {
                after: first.next,
                ..PageRequest::first(limit(100))
            };
            let second = fx
                .tickets
                .list_visible(viewer(who), filter, next)
                .await
                .expect("second page");
            let numbers: Vec<i64> = first
                .items
                .iter()
                .chain(&second.items)
                .map(|ticket| {
                    ticket
                        .topic
                        .split(' ')
                        .nth(1)
                        .expect("numbered topic")
                        .parse()
                        .expect("number")
                })
                .collect();
            assert_eq!(numbers, expected[..200], "{} {order:?}", who.email);
        }
    }
}
