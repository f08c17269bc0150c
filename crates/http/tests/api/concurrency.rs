//! Concurrent requests that race against one rule: only one of them may win, and
//! nothing acknowledged is lost. Status changes racing each other are in
//! `status_races.rs`.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;
use serde_json::json;
use tokio::sync::Notify;

use crate::helpers::{assert_json, assert_problem_any, id_of, ids, spawn_app, str_field, PASSWORD};

const RACERS: usize = 12;

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
    let addresses = ["race@example.com", "dash@example.com", "sprint@example.com"];
    let spellings = |address: &str| {
        let (local, domain) = address.split_once('@').expect("an address");
        [
            address.to_owned(),
            address.to_uppercase(),
            format!("{}@{domain}", local.to_uppercase()),
            format!("{local}@{}", domain.to_uppercase()),
            format!("  {address} "),
            format!("{}{}", &address[..1].to_uppercase(), &address[1..]),
            format!(" {}", address.to_uppercase()),
            address.to_owned(),
        ]
    };

    // Every spelling of every address at once, interleaved.
    let mut bodies = Vec::new();
    for n in 0..8 {
        for address in addresses {
            let email = spellings(address)[n].clone();
            let body = json!({ "email": email, "password": PASSWORD, "username": "r" });
            bodies.push((address, body));
        }
    }
    let requests = bodies.iter().map(|(address, body)| {
        let app = &app;
        async move { (*address, app.register_with(body, None).await) }
    });
    let responses = join_all(requests).await;

    let mut created = std::collections::HashMap::new();
    for (address, response) in responses {
        match response.status().as_u16() {
            201 => {
                let user = assert_json(response, 201).await;
                let stored = str_field(&user, "email").to_lowercase();
                assert_eq!(stored, address);
                *created.entry(address).or_insert(0) += 1;
            }
            409 => {
                assert_problem_any(response, 409, &["email_taken"]).await;
            }
            other => panic!("{address}: unexpected status {other}"),
        }
    }
    for address in addresses {
        assert_eq!(created.get(address), Some(&1), "{address}: {created:?}");
        let sql = format!("SELECT count(*) FROM users WHERE lower(email) = '{address}'");
        assert_eq!(app.query_i64(&sql).await, 1, "{address}");
        app.login(&address.to_uppercase(), PASSWORD).await;
    }
}

// ---- messages racing a cancel ----------------------------------------------------------

#[tokio::test]
async fn no_message_is_accepted_once_the_cancel_is_answered() {
    const POSTERS: usize = 6;
    const POSTS: usize = 8;
    let app = spawn_app().await;
    let author = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&author).await;
    let first = ids(&app
        .get_json(&author, &format!("/tickets/{ticket}/messages"))
        .await);
    let answered = AtomicBool::new(false);
    let go = Notify::new();

    let poster = |n: usize| {
        let (app, answered, go) = (&app, &answered, &go);
        let actor = if n % 2 == 0 { &author } else { &staff };
        async move {
            let mut results = Vec::new();
            for k in 0..POSTS {
                // Read before sending: a post that starts after the cancel's answer
                // arrived must see the ticket canceled.
                let after_cancel = answered.load(Ordering::SeqCst);
                let response = app.post_message(actor, ticket, &format!("{n}.{k}")).await;
                results.push((after_cancel, response));
                if k == 1 {
                    go.notify_one();
                }
            }
            results
        }
    };
    let cancel = async {
        go.notified().await;
        let response = app.set_status(&author, ticket, "canceled").await;
        answered.store(true, Ordering::SeqCst);
        response
    };
    let (posted, cancel) = tokio::join!(join_all((0..POSTERS).map(poster)), cancel);

    assert_json(cancel, 200).await;
    let mut accepted = Vec::new();
    let mut refused_after = 0;
    for (after_cancel, response) in posted.into_iter().flatten() {
        match response.status().as_u16() {
            201 if !after_cancel => accepted.push(id_of(&assert_json(response, 201).await)),
            409 => {
                assert_problem_any(response, 409, &["ticket_canceled"]).await;
                refused_after += usize::from(after_cancel);
            }
            other => {
                panic!("a post sent after the cancel was answered: {after_cancel}, got {other}")
            }
        }
    }
    assert_eq!(app.ticket_row(ticket).await.0, "canceled");
    // Every acknowledged message is there, and nothing else.
    let mut expected = first;
    expected.extend(&accepted);
    expected.sort_unstable();
    let mut listed = ids(&app
        .get_json(&staff, &format!("/tickets/{ticket}/messages?limit=1000"))
        .await);
    listed.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(app.row_counts().await[2], expected.len() as i64);
    eprintln!(
        "{} messages accepted, {refused_after} refused after the cancel",
        accepted.len()
    );
    // Whatever the interleaving above, a post now is refused.
    let late = app.post_message(&author, ticket, "too late").await;
    assert_problem_any(late, 409, &["ticket_canceled"]).await;
}
