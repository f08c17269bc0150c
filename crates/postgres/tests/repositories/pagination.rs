//! Keyset pagination and list filters: every row exactly once across pages, in both
//! orders, also when rows are added between pages.

use std::collections::HashSet;

use domain::page::{CreatedKey, Page, PageRequest};
use domain::ports::{TicketRepository, UserRepository};
use domain::ticket::{AssigneeFilter, SortOrder, TicketFilter};
use domain::{MessageType, Priority, Role, TicketId, TicketStatus};

use super::support::{all_tickets, limit, listed, viewer, Cast, Fixture};

fn assert_no_repeats(ids: &[i64]) {
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a row repeated: {ids:?}");
}

#[tokio::test]
async fn tickets_page_in_both_orders_without_skips_or_repeats() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    for n in 0..7 {
        fx.open(&author, &format!("t{n}")).await;
    }
    // Rows that share a creation time must be told apart by id.
    fx.execute(
        "INSERT INTO tickets (author_id, topic, created_at) \
         SELECT $1, 'same time', '2030-01-01T00:00:00Z' FROM generate_series(1, 5)",
        &[&author.id.get()],
    )
    .await;
    let expected_asc: Vec<i64> = {
        let client = fx.db.pool().get().await.expect("connection");
        client
            .query("SELECT id FROM tickets ORDER BY created_at, id", &[])
            .await
            .expect("query")
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    assert_eq!(expected_asc.len(), 12);

    for (page_size, who) in [
        (1, &author),
        (3, &staff),
        (5, &author),
        (12, &staff),
        (100, &staff),
    ] {
        let asc = all_tickets(
            &fx,
            viewer(who),
            &TicketFilter::default(),
            page_size,
            async |_| {},
        )
        .await;
        assert_eq!(asc, expected_asc, "ascending, pages of {page_size}");
        let descending = TicketFilter {
            order: SortOrder::Descending,
            ..TicketFilter::default()
        };
        let desc = all_tickets(&fx, viewer(who), &descending, page_size, async |_| {}).await;
        let mut expected_desc = expected_asc.clone();
        expected_desc.reverse();
        assert_eq!(desc, expected_desc, "descending, pages of {page_size}");
    }
}

#[tokio::test]
async fn tickets_added_between_pages_are_neither_skipped_nor_repeated() {
    let fx = Fixture::new().await;
    let author = fx.user("author@post.io", Role::Customer).await;
    let mut originals = Vec::new();
    for n in 0..6 {
        originals.push(fx.open(&author, &format!("old{n}")).await.id.get());
    }

    // Ascending: rows added meanwhile are newer than every key, so they come last.
    let mut added = Vec::new();
    let asc = all_tickets(
        &fx,
        viewer(&author),
        &TicketFilter::default(),
        2,
        async |page| {
            if page < 3 {
                added.push(fx.open(&author, &format!("new{page}")).await.id.get());
            }
        },
    )
    .await;
    assert_no_repeats(&asc);
    let expected: Vec<i64> = originals.iter().chain(&added).copied().collect();
    assert_eq!(asc, expected);

    // Descending: rows added meanwhile are newer than the cursor and stay out; every
    // row that existed at the start still comes exactly once, newest first.
    let before: Vec<i64> = expected.iter().rev().copied().collect();
    let descending = TicketFilter {
        order: SortOrder::Descending,
        ..TicketFilter::default()
    };
    let desc = all_tickets(&fx, viewer(&author), &descending, 2, async |page| {
        fx.open(&author, &format!("later{page}")).await;
    })
    .await;
    assert_eq!(desc, before);
}

#[tokio::test]
async fn tickets_filter_by_status_and_author_email() {
    let fx = Fixture::new().await;
    let alice = fx.user("Alice@Post.io", Role::Customer).await;
    let bob = fx.user("bob@post.io", Role::Customer).await;
    let staff = fx.user("staff@post.io", Role::Staff).await;
    let mut by_status = std::collections::HashMap::<TicketStatus, Vec<i64>>::new();
    for (n, status) in TicketStatus::ALL.into_iter().cycle().take(8).enumerate() {
        let who = if n % 2 == 0 { &alice } else { &bob };
        let ticket = fx.open(who, &format!("t{n}")).await;
        fx.set_status(&staff, ticket.id, status).await;
        by_status.entry(status).or_default().push(ticket.id.get());
    }

    let staff_list = |filter: TicketFilter| {
        let fx = &fx;
        let staff = &staff;
        async move { all_tickets(fx, viewer(staff), &filter, 3, async |_| {}).await }
    };
    let pending_or_canceled = staff_list(TicketFilter {
        statuses: vec![TicketStatus::Pending, TicketStatus::Canceled],
        ..TicketFilter::default()
    })
    .await;
    let mut expected: Vec<i64> = by_status[&TicketStatus::Pending]
        .iter()
        .chain(&by_status[&TicketStatus::Canceled])
        .copied()
        .collect();
    expected.sort_unstable();
    assert_eq!(pending_or_canceled, expected);

    let resolved = staff_list(TicketFilter {
        statuses: vec![TicketStatus::Resolved],
        ..TicketFilter::default()
    })
    .await;
    assert_eq!(resolved, by_status[&TicketStatus::Resolved]);

    // Alice wrote t0, t2, t4, t6: the pending and the unresolved ones.
    let alices = staff_list(TicketFilter {
        author_email: Some("ALICE@post.IO".to_owned()),
        ..TicketFilter::default()
    })
    .await;
    let mut expected: Vec<i64> = by_status[&TicketStatus::Pending]
        .iter()
        .chain(&by_status[&TicketStatus::Unresolved])
        .copied()
        .collect();
    expected.sort_unstable();
    assert_eq!(alices, expected);
    let alices_unresolved_desc = staff_list(TicketFilter {
        statuses: vec![TicketStatus::Unresolved],
        author_email: Some("alice@post.io".to_owned()),
        order: SortOrder::Descending,
        ..TicketFilter::default()
    })
    .await;
    let mut expected: Vec<i64> = by_status[&TicketStatus::Unresolved].clone();
    expected.reverse();
    assert_eq!(alices_unresolved_desc, expected);
    let alices_resolved = staff_list(TicketFilter {
        statuses: vec![TicketStatus::Resolved],
        author_email: Some("alice@post.io".to_owned()),
        ..TicketFilter::default()
    })
    .await;
    assert!(alices_resolved.is_empty());
    let nobody = staff_list(TicketFilter {
        author_email: Some("nobody@post.io".to_owned()),
        ..TicketFilter::default()
    })
    .await;
    assert!(nobody.is_empty());

    // Filters narrow what a customer may see; they never widen it.
    let bob_asks_for_alice = all_tickets(
        &fx,
        viewer(&bob),
        &TicketFilter {
            author_email: Some("alice@post.io".to_owned()),
            ..TicketFilter::default()
        },
        3,
        async |_| {},
    )
    .await;
    assert!(bob_asks_for_alice.is_empty());
}

#[tokio::test]
async fn tickets_by_author_page_oldest_first() {
    let fx = Fixture::new().await;
    let alice = fx.user("alice@post.io", Role::Customer).await;
    let bob = fx.user("bob@post.io", Role::Customer).await;
    let mut alices = Vec::new();
    for n in 0..5 {
        alices.push(fx.open(&alice, &format!("a{n}")).await.id.get());
        fx.open(&bob, &format!("b{n}")).await;
    }
    let mut seen = Vec::new();
    let mut request = PageRequest::first(limit(2));
    loop {
        let page = fx
            .tickets
            .list_by_author(alice.id, request)
            .await
            .expect("list");
        assert!(page.items.iter().all(|t| t.author_email == "alice@post.io"));
        seen.extend(page.items.iter().map(|t| t.id.get()));
        if seen.len() == 2 {
            alices.push(fx.open(&alice, "late").await.id.get());
        }
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, alices);
}

#[tokio::test]
async fn messages_page_oldest_first_and_distinguish_empty_from_invisible() {
    let fx = Fixture::new().await;
    let (author, staff) = fx.author_and_staff().await;
    let ticket = fx.open(&author, "chat").await;
    let other = fx.open(&author, "other").await;
    fx.post(&author, other.id, MessageType::Request, "elsewhere")
        .await;
    for n in 0..6 {
        let (who, kind) = if n % 2 == 0 {
            (&staff, MessageType::Response)
        } else {
            (&author, MessageType::Request)
        };
        fx.post(who, ticket.id, kind, &format!("m{n}")).await;
    }
    let mut expected: Vec<String> = std::iter::once("text".to_owned())
        .chain((0..6).map(|n| format!("m{n}")))
        .collect();

    let mut seen = Vec::new();
    let mut request = PageRequest::first(limit(3));
    let mut last_page;
    loop {
        let page = fx
            .tickets
            .list_messages(viewer(&author), ticket.id, request)
            .await
            .expect("query")
            .expect("visible");
        assert!(page.items.iter().all(|m| m.ticket_id == ticket.id));
        seen.extend(page.items.iter().map(|m| m.text.clone()));
        if seen.len() == 3 {
            fx.post(&staff, ticket.id, MessageType::Response, "late")
                .await;
            expected.push("late".to_owned());
        }
        last_page = page.items.last().map(|m| CreatedKey {
            created_at: m.created_at,
            id: m.id.get(),
        });
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // After the last message: a visible ticket with no more messages.
    let past_the_end = fx
        .tickets
        .list_messages(
            viewer(&staff),
            ticket.id,
            PageRequest {
                limit: limit(3),
                after: last_page,
            },
        )
        .await
        .expect("query");
    assert_eq!(
        past_the_end,
        Some(Page {
            items: vec![],
            next: None
        })
    );

    let mallory = fx.user("mallory@post.io", Role::Customer).await;
    assert_eq!(
        fx.tickets
            .list_messages(viewer(&mallory), ticket.id, PageRequest::first(limit(3)))
            .await
            .expect("query"),
        None
    );
    let absent = TicketId::new(other.id.get() + 1000).expect("positive");
    assert_eq!(
        fx.tickets
            .list_messages(viewer(&staff), absent, PageRequest::first(limit(3)))
            .await
            .expect("query"),
        None
    );
}

#[tokio::test]
async fn users_page_by_ticket_count_then_id() {
    let fx = Fixture::new().await;
    let mut users = Vec::new();
    for (n, count) in [3_i64, 0, 5, 3, 0, 1, 3].into_iter().enumerate() {
        let user = fx.user(&format!("u{n}@post.io"), Role::Customer).await;
        fx.execute(
            "UPDATE users SET tickets_count = $2 WHERE id = $1",
            &[&user.id.get(), &count],
        )
        .await;
        users.push((count, user.id.get()));
    }
    // Count descending, then id ascending.
    users.sort_by_key(|&(count, id)| (std::cmp::Reverse(count), id));
    let mut expected: Vec<i64> = users.iter().map(|&(_, id)| id).collect();

    for page_size in [1, 2, 3, 7, 50] {
        let mut seen = Vec::new();
        let mut request = PageRequest::first(limit(page_size));
        loop {
            let page = fx.users.list_users(request).await.expect("list");
            seen.extend(page.items.iter().map(|u| u.id.get()));
            // A new user has no tickets and the highest id: the list's end.
            if page_size == 2 && seen.len() == 2 {
                let late = fx.user("late@post.io", Role::Customer).await;
                expected.push(late.id.get());
            }
            match page.next {
                Some(next) => request.after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected, "pages of {page_size}");
    }
}

#[tokio::test]
async fn tickets_filter_by_priority_and_assignee_alone_and_combined() {
    let fx = Fixture::new().await;
    let cast = Cast::new(&fx).await;
    let (alice, bob, ann, ben) = (&cast.alice, &cast.bob, &cast.ann, &cast.ben);
    // Every combination of author, priority, assignee and status turns up.
    let tickets = fx.series(&cast, 15, |n| (format!("t{n}"), "text")).await;

    let descending = SortOrder::Descending;
    let cases = [
        (
            ann,
            TicketFilter {
                priorities: vec![Priority::High, Priority::Urgent],
                ..TicketFilter::default()
            },
        ),
        (
            ann,
            TicketFilter {
                priorities: vec![Priority::Low],
                order: descending,
                ..TicketFilter::default()
            },
        ),
        (
            ann,
            TicketFilter {
                assignee: Some(AssigneeFilter::User(ann.id)),
                ..TicketFilter::default()
            },
        ),
        (
            ben,
            TicketFilter {
                assignee: Some(AssigneeFilter::Nobody),
                order: descending,
                ..TicketFilter::default()
            },
        ),
        (
            ann,
            TicketFilter {
                statuses: vec![TicketStatus::Pending, TicketStatus::Unresolved],
                priorities: vec![Priority::Urgent, Priority::Low],
                ..TicketFilter::default()
            },
        ),
        (
            ann,
            TicketFilter {
                assignee: Some(AssigneeFilter::Nobody),
                author_email: Some("ALICE@post.io".to_owned()),
                order: descending,
                ..TicketFilter::default()
            },
        ),
        (
            ben,
            TicketFilter {
                assignee: Some(AssigneeFilter::User(ben.id)),
                priorities: vec![Priority::Normal, Priority::High],
                order: descending,
                ..TicketFilter::default()
            },
        ),
        (
            ann,
            TicketFilter {
                statuses: vec![TicketStatus::Resolved],
                assignee: Some(AssigneeFilter::User(ann.id)),
                author_email: Some("bob@post.io".to_owned()),
                ..TicketFilter::default()
            },
        ),
        // Filters narrow what a customer sees; they never widen it.
        (
            alice,
            TicketFilter {
                assignee: Some(AssigneeFilter::User(ben.id)),
                priorities: vec![Priority::Low, Priority::High],
                ..TicketFilter::default()
            },
        ),
    ];
    for (who, filter) in cases {
        let mut expected: Vec<i64> = tickets
            .iter()
            .filter(|ticket| listed(viewer(who), &filter, ticket))
            .map(|ticket| ticket.id.get())
            .collect();
        if filter.order == descending {
            expected.reverse();
        }
        assert!(
            !expected.is_empty(),
            "a case that tells nothing: {filter:?}"
        );
        let seen = all_tickets(&fx, viewer(who), &filter, 2, async |_| {}).await;
        assert_eq!(seen, expected, "{} asking {filter:?}", who.email);
    }

    // A user assigned nothing, and a customer, who can never be assigned.
    for nobody in [alice, bob] {
        let filter = TicketFilter {
            assignee: Some(AssigneeFilter::User(nobody.id)),
            ..TicketFilter::default()
        };
        let seen = all_tickets(&fx, viewer(ann), &filter, 2, async |_| {}).await;
        assert!(seen.is_empty(), "{seen:?}");
    }
}
