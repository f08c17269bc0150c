//! Priority and assignment: the ticket object's new fields, `PATCH /tickets/{id}` with
//! `priority` and `assignee_id` (who may send them, which values, all or nothing,
//! no-ops, canceled tickets), `PUT` staying status-only, how `version` grows, and the
//! `assignee` and `priority` filters of `GET /tickets`.

use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    assert_json, assert_problem, assert_ticket_object, backend_pid, etag_of, header, id_of, ids,
    next_link, someone_waits, spawn_app, timestamp_field, version_of, waits, Actor, Failures,
    TestApp, PRIORITIES,
};

/// An id that no user or ticket has.
const MISSING: i64 = i64::MAX;

/// The `assignee` object of a ticket assigned to `staff` (the helpers name every
/// member of staff `staff`): its id and username, nothing more (no e-mail).
fn assignee(staff: &Actor) -> Value {
    json!({ "id": staff.id, "username": "staff" })
}

#[tokio::test]
async fn new_tickets_are_normal_unassigned_and_at_version_1() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;

    let (etag, ticket) = app.open_ticket_with_etag(&customer, "t", "x").await;

    assert_ticket_object(&ticket, false);
    assert_eq!(ticket["priority"], "normal");
    assert_eq!(ticket.get("assignee"), Some(&Value::Null), "{ticket}");
    assert_eq!(ticket["version"], 1);
    assert_eq!(etag, etag_of(1));
    let id = id_of(&ticket);
    for (actor, staff_view) in [(&customer, false), (&staff, true)] {
        let seen = app.ticket_as(actor, id).await;
        assert_ticket_object(&seen, staff_view);
        let listed = app.get_json(actor, "/tickets").await;
        for shown in [&seen, &listed[0]] {
            assert_eq!(shown["priority"], "normal");
            assert_eq!(shown.get("assignee"), Some(&Value::Null));
            assert_eq!(shown["version"], 1);
        }
    }
}

#[tokio::test]
async fn staff_set_priority_and_assignee_alone_or_together() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let colleague = app.staff().await;
    let root = app.superuser().await;
    let ticket = app.open_ticket(&customer, "t", "x").await;
    let id = id_of(&ticket);

    let raised = app
        .patch_ticket_ok(&staff, id, &json!({ "priority": "high" }))
        .await;
    assert_ticket_object(&raised, true);
    assert_eq!(raised["priority"], "high");
    assert_eq!(raised["status"], "pending");
    assert_eq!(raised["assignee"], Value::Null);
    assert_eq!(raised["version"], 2);
    assert!(timestamp_field(&raised, "updated_at") > timestamp_field(&ticket, "updated_at"));

    let assigned = app
        .patch_ticket_ok(&staff, id, &json!({ "assignee_id": colleague.id }))
        .await;
    assert_eq!(assigned["assignee"], assignee(&colleague));
    assert_eq!(assigned["priority"], "high");
    assert_eq!(assigned["version"], 3);
    assert!(timestamp_field(&assigned, "updated_at") > timestamp_field(&raised, "updated_at"));

    // A superuser is staff, and may be assigned; three fields at once.
    let all = app
        .patch_ticket_ok(
            &root,
            id,
            &json!({ "status": "unresolved", "priority": "urgent", "assignee_id": root.id }),
        )
        .await;
    assert_eq!(all["status"], "unresolved");
    assert_eq!(all["priority"], "urgent");
    assert_eq!(all["assignee"], assignee(&root));
    assert_eq!(all["version"], 6);

    // The assignee is shown to everyone who sees the ticket, with the same version.
    let seen = app.ticket_as(&customer, id).await;
    assert_ticket_object(&seen, false);
    let listed = app.get_json(&customer, "/tickets").await;
    for shown in [&seen, &listed[0]] {
        assert_eq!(shown["assignee"], assignee(&root), "{shown}");
        assert_eq!(shown["priority"], "urgent");
        assert_eq!(shown["version"], 6);
        assert_eq!(shown["updated_at"], all["updated_at"]);
    }

    let unassigned = app
        .patch_ticket_ok(&staff, id, &json!({ "assignee_id": null }))
        .await;
    assert_eq!(unassigned["assignee"], Value::Null);
    assert_eq!(unassigned["version"], 7);
    for priority in PRIORITIES {
        let set = app
            .patch_ticket_ok(&staff, id, &json!({ "priority": priority }))
            .await;
        assert_eq!(set["priority"], priority);
    }
    // The staff author of a ticket may triage it too.
    let own = app.open_ticket_id(&staff).await;
    let own = app
        .patch_ticket_ok(
            &staff,
            own,
            &json!({ "priority": "low", "assignee_id": staff.id }),
        )
        .await;
    assert_eq!(own["priority"], "low");
    assert_eq!(own["assignee"], assignee(&staff));
}

/// One write in [`the_version_grows_by_the_visible_events_each_write_records`].
enum Write {
    Request,
    Response,
    Note,
    Patch(Value),
    Put(&'static str),
}

#[tokio::test]
async fn the_version_grows_by_the_visible_events_each_write_records() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let steps = [
        ("a request", Write::Request, 1),
        ("a response", Write::Response, 1),
        ("a note", Write::Note, 0),
        (
            "status and priority",
            Write::Patch(json!({ "status": "unresolved", "priority": "high" })),
            2,
        ),
        (
            "an assignment",
            Write::Patch(json!({ "assignee_id": staff.id })),
            1,
        ),
        (
            "three fields",
            Write::Patch(json!({ "status": "resolved", "priority": "low", "assignee_id": null })),
            3,
        ),
        (
            "a no-op",
            Write::Patch(json!({ "status": "resolved", "priority": "low", "assignee_id": null })),
            0,
        ),
        ("a PUT", Write::Put("pending"), 1),
        ("a PUT no-op", Write::Put("pending"), 0),
    ];

    let mut failures = Failures::default();
    let mut last = app.ticket_as(&customer, ticket).await;
    for (what, write, growth) in steps {
        match write {
            Write::Request => {
                app.post_message_ok(&customer, ticket, "more").await;
            }
            Write::Response => {
                app.post_message_ok(&staff, ticket, "answer").await;
            }
            Write::Note => {
                app.post_note_ok(&staff, ticket, "between us").await;
            }
            Write::Patch(body) => {
                app.patch_ticket_ok(&staff, ticket, &body).await;
            }
            Write::Put(status) => {
                let response = app.change_status(Method::PUT, &staff, ticket, status).await;
                assert_json(response, 200).await;
            }
        }
        let response = app.get_as(&customer, &format!("/tickets/{ticket}")).await;
        let etag = header(response.headers(), "etag");
        let now = assert_json(response, 200).await;
        let version = version_of(&now);
        failures.check(version == version_of(&last) + growth, || {
            format!(
                "{what}: version {} -> {version}, expected +{growth}",
                last["version"]
            )
        });
        failures.check(etag == etag_of(version), || {
            format!("{what}: ETag {etag:?} for version {version}")
        });
        let moved = now["updated_at"] != last["updated_at"];
        failures.check(moved == (growth > 0), || {
            format!("{what}: updated_at moved: {moved}, version grew by {growth}")
        });
        last = now;
    }
    failures.assert_none();
}

#[tokio::test]
async fn a_field_set_to_the_value_it_has_changes_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let assigned = app
        .patch_ticket_ok(&staff, ticket, &json!({ "assignee_id": staff.id }))
        .await;
    let before = app.snapshot().await;

    for body in [
        json!({ "priority": "normal" }),
        json!({ "assignee_id": staff.id }),
        json!({ "status": "pending" }),
        json!({ "status": "pending", "priority": "normal", "assignee_id": staff.id }),
    ] {
        let same = app.patch_ticket_ok(&staff, ticket, &body).await;
        assert_eq!(same, assigned, "{body}");
    }
    assert_eq!(app.snapshot().await, before, "a no-op wrote something");

    // Unassigning an unassigned ticket.
    let other = app.open_ticket(&customer, "t", "x").await;
    let before = app.snapshot().await;
    let same = app
        .patch_ticket_ok(&staff, id_of(&other), &json!({ "assignee_id": null }))
        .await;
    assert_eq!(same, app.ticket_as(&staff, id_of(&other)).await);
    assert_eq!(same["version"], 1);
    assert_eq!(app.snapshot().await, before);

    // One field changes and one does not: one event, one step of the version.
    let events_before = app.events_of(&staff, ticket).await.len();
    let changed = app
        .patch_ticket_ok(
            &staff,
            ticket,
            &json!({ "priority": "high", "status": "pending" }),
        )
        .await;
    assert_eq!(changed["version"], version_of(&assigned) + 1);
    let events = app.events_of(&staff, ticket).await;
    assert_eq!(events.len(), events_before + 1);
    assert_eq!(events[events_before]["type"], "ticket.priority_changed");
}

#[tokio::test]
async fn customers_sending_priority_or_assignee_get_403_before_any_lookup() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let other = app.customer().await;
    let staff = app.staff().await;
    let own = app.open_ticket_id(&customer).await;
    let foreign = app.open_ticket_id(&other).await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for body in [
        json!({ "priority": "high" }),
        json!({ "priority": "normal" }),
        json!({ "priority": "bogus" }),
        json!({ "assignee_id": staff.id }),
        json!({ "assignee_id": null }),
        json!({ "assignee_id": customer.id }),
        json!({ "assignee_id": 0 }),
        json!({ "assignee_id": -4 }),
        json!({ "status": "canceled", "priority": "low" }),
        json!({ "status": "canceled", "assignee_id": null }),
    ] {
        for (target, id) in [("own", own), ("foreign", foreign), ("missing", MISSING)] {
            let response = app.patch_ticket(&customer, id, &body).await;
            let what = format!("{body} on the {target} ticket");
            failures
                .problem(&what, response, 403, &["staff_only"])
                .await;
        }
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.ticket_row(own).await.0, "pending");
}

#[tokio::test]
async fn an_unknown_priority_is_400() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for priority in ["critical", "HIGH", "Normal", "", " high", "urgent ", "none"] {
        for (body, id) in [
            (json!({ "priority": priority }), ticket),
            (
                json!({ "status": "unresolved", "priority": priority }),
                ticket,
            ),
            (json!({ "priority": priority }), MISSING),
        ] {
            let response = app.patch_ticket(&staff, id, &body).await;
            let what = format!("{body} on {id}");
            failures
                .problem(&what, response, 400, &["priority_invalid"])
                .await;
        }
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn the_assignee_must_be_an_active_member_of_staff() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let gone = app.staff().await;
    let root = app.superuser().await;
    app.execute("UPDATE users SET is_active = false WHERE id = $1", gone.id)
        .await;
    let ticket = app.open_ticket_id(&customer).await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for (who, id) in [
        ("nobody", MISSING),
        ("the customer author", customer.id),
        ("a deactivated member of staff", gone.id),
        ("zero", 0),
        ("a negative id", -7),
    ] {
        for body in [
            json!({ "assignee_id": id }),
            json!({ "priority": "urgent", "assignee_id": id }),
            json!({ "status": "unresolved", "assignee_id": id }),
        ] {
            let response = app.patch_ticket(&staff, ticket, &body).await;
            let what = format!("{who}: {body}");
            failures
                .problem(&what, response, 400, &["assignee_invalid"])
                .await;
        }
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);

    for member in [&root, &staff] {
        let assigned = app
            .patch_ticket_ok(&staff, ticket, &json!({ "assignee_id": member.id }))
            .await;
        assert_eq!(assigned["assignee"], assignee(member));
    }
}

#[tokio::test]
async fn a_request_changes_all_of_its_fields_or_none() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for (body, status, code) in [
        // The rules of the status table refuse; the priority must not change alone.
        (
            json!({ "status": "resolved", "priority": "high" }),
            409,
            "response_required",
        ),
        (
            json!({ "status": "canceled", "priority": "high", "assignee_id": staff.id }),
            400,
            "status_not_allowed",
        ),
        (
            json!({ "status": "closed", "assignee_id": staff.id }),
            400,
            "status_unknown",
        ),
        (
            json!({ "priority": "urgent", "assignee_id": customer.id }),
            400,
            "assignee_invalid",
        ),
        (
            json!({ "status": "unresolved", "priority": "nope", "assignee_id": staff.id }),
            400,
            "priority_invalid",
        ),
    ] {
        let response = app.patch_ticket(&staff, ticket, &body).await;
        failures
            .problem(&body.to_string(), response, status, &[code])
            .await;
    }
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_canceled_ticket_keeps_its_priority_and_assignee() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let colleague = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    app.patch_ticket_ok(
        &staff,
        ticket,
        &json!({ "priority": "high", "assignee_id": staff.id }),
    )
    .await;
    let canceled = app.set_status_ok(&customer, ticket, "canceled").await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for body in [
        json!({ "priority": "low" }),
        json!({ "assignee_id": null }),
        json!({ "assignee_id": colleague.id }),
        json!({ "priority": "high", "assignee_id": colleague.id }),
    ] {
        let response = app.patch_ticket(&staff, ticket, &body).await;
        failures
            .problem(&body.to_string(), response, 409, &["ticket_canceled"])
            .await;
    }
    failures.assert_none();
    // The values it has are no change, so no refusal either.
    for body in [
        json!({ "priority": "high" }),
        json!({ "assignee_id": staff.id }),
    ] {
        let same = app.patch_ticket_ok(&staff, ticket, &body).await;
        assert_eq!(same["version"], canceled["version"], "{body}");
    }
    assert_eq!(app.snapshot().await, before);

    // A resolved ticket may be reopened, so it may still be triaged.
    let resolved = app
        .ticket_with_status(&customer, &staff, "resolved", true)
        .await;
    let triaged = app
        .patch_ticket_ok(
            &staff,
            resolved,
            &json!({ "priority": "urgent", "assignee_id": colleague.id }),
        )
        .await;
    assert_eq!(triaged["status"], "resolved");
    assert_eq!(triaged["priority"], "urgent");
}

#[tokio::test]
async fn put_changes_only_the_status() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let path = format!("/tickets/{ticket}");

    let body = json!({ "status": "unresolved", "priority": "urgent", "assignee_id": staff.id });
    let response = app.send_as(&staff, Method::PUT, &path, &body).await;
    let put = assert_json(response, 200).await;
    assert_eq!(put["status"], "unresolved");
    assert_eq!(put["priority"], "normal");
    assert_eq!(put["assignee"], Value::Null);
    assert_eq!(put["version"], 2);

    // A customer's PUT with staff fields is no 403: the fields are not read.
    let body = json!({ "status": "canceled", "priority": "high", "assignee_id": staff.id });
    let response = app.send_as(&customer, Method::PUT, &path, &body).await;
    let canceled = assert_json(response, 200).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["priority"], "normal");
    assert_eq!(canceled["assignee"], Value::Null);

    let before = app.snapshot().await;
    let response = app
        .send_as(&staff, Method::PUT, &path, &json!({ "priority": "high" }))
        .await;
    assert_problem(response, 400, "invalid_body").await;
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_patch_without_a_field_to_change_or_with_a_mistyped_one_is_400() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let before = app.snapshot().await;

    let mut failures = Failures::default();
    for body in [
        json!({}),
        json!({ "status": null }),
        json!({ "priority": null }),
        json!({ "status": null, "priority": null }),
        json!({ "topic": "renamed" }),
        json!({ "assignee": staff.id }),
        json!({ "priority": 3 }),
        json!({ "priority": ["high"] }),
        json!({ "assignee_id": staff.id.to_string() }),
        json!({ "assignee_id": 1.5 }),
        json!({ "assignee_id": true }),
        json!({ "assignee_id": { "id": staff.id } }),
        json!({ "assignee_id": "99999999999999999999" }),
    ] {
        let response = app.patch_ticket(&staff, ticket, &body).await;
        failures
            .problem(&format!("staff: {body}"), response, 400, &["invalid_body"])
            .await;
    }
    // A malformed body is refused before who sends it is considered.
    let response = app
        .patch_ticket(&customer, ticket, &json!({ "assignee_id": "4" }))
        .await;
    failures
        .problem("customer: mistyped", response, 400, &["invalid_body"])
        .await;
    failures.assert_none();
    assert_eq!(app.snapshot().await, before);
}

/// Six PATCH bodies, each a change of a fresh ticket and of whatever any others of
/// them left: three priorities, two assignees (`staff[0]`, `staff[1]`), a status.
pub(crate) fn distinct_changes(staff: &[Actor]) -> Vec<Value> {
    vec![
        json!({ "priority": "low" }),
        json!({ "priority": "high" }),
        json!({ "priority": "urgent" }),
        json!({ "assignee_id": staff[0].id }),
        json!({ "assignee_id": staff[1].id }),
        json!({ "status": "unresolved" }),
    ]
}

#[tokio::test]
async fn concurrent_changes_without_if_match_apply_one_after_another() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff_members(6).await;
    let bodies = distinct_changes(&staff);

    for round in 0..4 {
        let ticket = app.open_ticket_id(&customer).await;
        let requests = staff
            .iter()
            .zip(&bodies)
            .map(|(actor, body)| app.patch_ticket(actor, ticket, body));
        let mut won = Vec::new();
        for response in futures_util::future::join_all(requests).await {
            match response.status().as_u16() {
                200 => won.push(assert_json(response, 200).await),
                // The documented give-up after repeated lost races.
                409 => {
                    assert_problem(response, 409, "concurrent_update").await;
                }
                other => panic!("round {round}: {other}"),
            }
        }
        // A serial order explains the answers: versions 2, 3, … one per change, and
        // the last answer is the ticket's state.
        won.sort_by_key(version_of);
        let versions: Vec<i64> = won.iter().map(version_of).collect();
        let serial: Vec<i64> = (2..).take(won.len()).collect();
        assert_eq!(versions, serial, "round {round}");
        let last = won.last().expect("at least one change wins");
        assert_eq!(
            &app.ticket_as(&staff[0], ticket).await,
            last,
            "round {round}"
        );
        assert_eq!(app.events_of(&staff[0], ticket).await.len(), 2 + won.len());
    }
}

#[tokio::test]
async fn messages_posted_meanwhile_do_not_make_a_status_change_give_up() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let pool = app.db.pool();
    // `tables` holds `messages` so that the change waits before it reads the ticket;
    // `row` holds the ticket's row so that it waits before it writes. Between the two,
    // a message is posted, as the service posts one.
    let tables = pool.get().await.expect("a database connection");
    let row = pool.get().await.expect("a database connection");
    let observer = pool.get().await.expect("a database connection");
    let ours = [
        backend_pid(&tables).await,
        backend_pid(&row).await,
        backend_pid(&observer).await,
    ];
    const HOLD_MESSAGES: &str = "BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE";
    let post = format!(
        "WITH m AS (INSERT INTO messages (ticket_id, author_id, type, text) \
           VALUES ({ticket}, {author}, 'request', 'meanwhile') RETURNING id) \
         INSERT INTO ticket_events (ticket_id, actor_id, type, internal, data) \
         SELECT {ticket}, {author}, 'message.created', false, \
           jsonb_build_object('message_id', id, 'type', 'request') FROM m; \
         UPDATE tickets SET version = version + 1, updated_at = now() WHERE id = {ticket}",
        author = customer.id
    );
    tables
        .batch_execute(HOLD_MESSAGES)
        .await
        .expect("messages are held");
    let done = AtomicBool::new(false);

    let change = async {
        let response = app.set_status(&staff, ticket, "unresolved").await;
        done.store(true, Ordering::SeqCst);
        response
    };
    let conductor = async {
        let mut posted = 0;
        // More rounds than the service retries.
        for _ in 0..8 {
            // The change waits to read the ticket.
            if !someone_waits(&observer, &ours, &done).await {
                break;
            }
            row.batch_execute(&format!(
                "BEGIN; SELECT 1 FROM tickets WHERE id = {ticket} FOR UPDATE"
            ))
            .await
            .expect("the row is held");
            tables
                .batch_execute("COMMIT")
                .await
                .expect("messages are free");
            // It has read the ticket and waits to write it: a message comes first.
            if !someone_waits(&observer, &ours, &done).await {
                row.batch_execute("COMMIT").await.expect("the row is free");
                break;
            }
            row.batch_execute(&post).await.expect("a message is posted");
            posted += 1;
            // Hold messages again (queued behind the post), then let the post commit.
            let hold = tables.batch_execute(HOLD_MESSAGES);
            let commit = async {
                waits(&observer, ours[0]).await;
                row.batch_execute("COMMIT")
                    .await
                    .expect("the message commits");
            };
            let (held, ()) = tokio::join!(hold, commit);
            held.expect("messages are held again");
        }
        tables
            .batch_execute("COMMIT")
            .await
            .expect("messages are free");
        posted
    };
    let (response, posted) = tokio::join!(change, conductor);

    assert!(posted > 0, "no message was posted meanwhile");
    // A message changes no status, so no rule refuses the change because of one.
    let changed = assert_json(response, 200).await;
    assert_eq!(changed["status"], "unresolved");
    assert_eq!(changed["version"], 2 + posted);
}

// ---- the filters of GET /tickets ----------------------------------------------------

/// What the test knows of one ticket, to compute what a filter should list.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    id: i64,
    topic: String,
    author: usize,
    status: &'static str,
    priority: &'static str,
    assignee: Option<i64>,
}

/// A filter over the known tickets (`search.rs` adds `q`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    /// One word of the topics.
    pub q: Option<&'static str>,
    pub statuses: Vec<&'static str>,
    pub priorities: Vec<&'static str>,
    /// `Some(None)`: unassigned.
    pub assignee: Option<Option<i64>>,
    pub author: Option<usize>,
    pub desc: bool,
}

impl Filter {
    /// The query string for `authors`' e-mails.
    pub fn query(&self, authors: &[Actor], assignee_me: Option<i64>) -> String {
        let mut parts = vec!["limit=2".to_owned()];
        if let Some(word) = self.q {
            parts.push(format!("q={word}"));
        }
        if !self.statuses.is_empty() {
            parts.push(format!("status={}", self.statuses.join(",")));
        }
        if !self.priorities.is_empty() {
            parts.push(format!("priority={}", self.priorities.join(",")));
        }
        match self.assignee {
            None => {}
            Some(None) => parts.push("assignee=none".to_owned()),
            Some(Some(id)) if Some(id) == assignee_me => parts.push("assignee=me".to_owned()),
            Some(Some(id)) => parts.push(format!("assignee={id}")),
        }
        if let Some(author) = self.author {
            parts.push(format!("author={}", authors[author].email));
        }
        if self.desc {
            parts.push("order=desc".to_owned());
        }
        format!("/tickets?{}", parts.join("&"))
    }

    /// The ids the filter lists for a viewer who sees `visible` tickets (by author),
    /// with the staff-only filters applied when `staff`.
    pub fn expected(&self, known: &[Known], visible: Option<usize>, staff: bool) -> Vec<i64> {
        let mut ids: Vec<i64> = known
            .iter()
            .filter(|t| visible.is_none_or(|a| t.author == a))
            .filter(|t| self.q.is_none_or(|w| t.topic.split(' ').any(|x| x == w)))
            .filter(|t| self.statuses.is_empty() || self.statuses.contains(&t.status))
            .filter(|t| self.priorities.is_empty() || self.priorities.contains(&t.priority))
            .filter(|t| !staff || self.assignee.is_none_or(|a| t.assignee == a))
            .filter(|t| !staff || self.author.is_none_or(|a| t.author == a))
            .map(|t| t.id)
            .collect();
        if self.desc {
            ids.reverse();
        }
        ids
    }
}

/// Twelve tickets by two customers in every mix of status, priority and assignee
/// (`staff[0]`, `staff[1]` or nobody), oldest first; their topics hold `mango` or
/// `kiwi` across all those mixes.
pub(crate) async fn a_mixed_queue(app: &TestApp, authors: &[Actor], staff: &[Actor]) -> Vec<Known> {
    let mut known = Vec::new();
    for n in 0..12 {
        let topic = format!("queue {}", if n % 5 < 2 { "mango" } else { "kiwi" });
        let author = n % 2;
        let status = ["pending", "unresolved", "canceled"][n % 3];
        let priority = PRIORITIES[n % 4];
        let assignee = [None, Some(staff[0].id), Some(staff[1].id)][(n / 4) % 3];
        let id = id_of(
            &app.open_ticket(&authors[author], &topic, "in the queue")
                .await,
        );
        app.patch_ticket_ok(
            &staff[0],
            id,
            &json!({ "priority": priority, "assignee_id": assignee }),
        )
        .await;
        match status {
            "unresolved" => {
                app.set_status_ok(&staff[0], id, status).await;
            }
            "canceled" => {
                app.set_status_ok(&authors[author], id, status).await;
            }
            _ => {}
        }
        known.push(Known {
            id,
            topic,
            author,
            status,
            priority,
            assignee,
        });
    }
    known
}

#[tokio::test]
async fn the_filters_combine_with_each_other_order_and_paging() {
    let app = spawn_app().await;
    let authors = [app.customer().await, app.customer().await];
    let staff = [app.staff().await, app.staff().await];
    let known = a_mixed_queue(&app, &authors, &staff).await;
    let (me, other) = (staff[0].id, staff[1].id);
    let filters = [
        Filter::default(),
        Filter {
            assignee: Some(Some(me)),
            ..Filter::default()
        },
        Filter {
            assignee: Some(None),
            ..Filter::default()
        },
        Filter {
            assignee: Some(Some(other)),
            desc: true,
            ..Filter::default()
        },
        Filter {
            priorities: vec!["high", "urgent"],
            ..Filter::default()
        },
        Filter {
            priorities: vec!["normal"],
            desc: true,
            ..Filter::default()
        },
        Filter {
            statuses: vec!["pending", "unresolved"],
            priorities: vec!["high", "urgent", "low"],
            ..Filter::default()
        },
        Filter {
            assignee: Some(Some(me)),
            priorities: vec!["low", "normal", "high"],
            ..Filter::default()
        },
        Filter {
            assignee: Some(None),
            statuses: vec!["canceled"],
            ..Filter::default()
        },
        Filter {
            author: Some(1),
            priorities: vec!["urgent", "low"],
            desc: true,
            ..Filter::default()
        },
        Filter {
            author: Some(0),
            assignee: Some(Some(other)),
            statuses: vec!["unresolved", "canceled"],
            ..Filter::default()
        },
    ];

    check_filters(&app, &authors, &staff, &known, &filters).await;
}

/// Lists each filter, page by page, as `staff[0]` (who is `me`) and as `authors[0]`
/// (for whom `author` and `assignee` do nothing), and compares with the model.
pub(crate) async fn check_filters(
    app: &TestApp,
    authors: &[Actor],
    staff: &[Actor],
    known: &[Known],
    filters: &[Filter],
) {
    let mut failures = Failures::default();
    for filter in filters {
        let viewers = [(&staff[0], None, true), (&authors[0], Some(0), false)];
        for (viewer, visible, is_staff) in viewers {
            let path = filter.query(authors, Some(staff[0].id));
            let (rows, _) = app.collect_pages(viewer, &path, Value::clone).await;
            let listed: Vec<i64> = rows.iter().map(id_of).collect();
            let expected = filter.expected(known, visible, is_staff);
            failures.check(listed == expected, || {
                format!("{path} as staff {is_staff}: {listed:?}, expected {expected:?}")
            });
        }
    }
    failures.assert_none();
    // Every filter selected something for staff, or the test would prove little.
    for filter in filters {
        assert!(!filter.expected(known, None, true).is_empty(), "{filter:?}");
    }
}

#[tokio::test]
async fn assignee_me_none_and_an_id_are_staff_queues() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let colleague = app.staff().await;
    let root = app.superuser().await;
    let mine = app.open_tickets(&customer, 3).await;
    app.patch_ticket_ok(&staff, mine[0], &json!({ "assignee_id": staff.id }))
        .await;
    app.patch_ticket_ok(&staff, mine[2], &json!({ "assignee_id": colleague.id }))
        .await;

    for (viewer, query, expected) in [
        (&staff, "assignee=me", vec![mine[0]]),
        (&colleague, "assignee=me", vec![mine[2]]),
        (&root, "assignee=me", vec![]),
        (&staff, "assignee=none", vec![mine[1]]),
        (&root, &format!("assignee={}", colleague.id), vec![mine[2]]),
        (&staff, &format!("assignee={}", customer.id), vec![]),
        (&staff, &format!("assignee={MISSING}"), vec![]),
    ] {
        let list = app.get_json(viewer, &format!("/tickets?{query}")).await;
        assert_eq!(ids(&list), expected, "{query}");
    }
    // Customers' lists ignore `assignee`.
    for query in [
        "assignee=me".to_owned(),
        "assignee=none".to_owned(),
        format!("assignee={}", staff.id),
    ] {
        let list = app.get_json(&customer, &format!("/tickets?{query}")).await;
        assert_eq!(ids(&list), mine, "{query}");
    }
}

#[tokio::test]
async fn garbage_in_the_assignee_or_priority_filter_is_400_for_anyone() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    app.open_ticket_id(&customer).await;

    let mut failures = Failures::default();
    for actor in [&customer, &staff] {
        for assignee in ["bob", "me,none", "0", "-1", "1.5", "2x", "me%20me"] {
            let path = format!("/tickets?assignee={assignee}");
            failures
                .get_problem(&app, actor, &path, 400, &["assignee_filter_invalid"])
                .await;
        }
        for priority in ["critical", "high,critical", "HIGH", "high,,low"] {
            let path = format!("/tickets?priority={priority}");
            failures
                .get_problem(&app, actor, &path, 400, &["priority_invalid"])
                .await;
        }
    }
    failures.assert_none();
}

#[tokio::test]
async fn customers_filter_their_own_tickets_by_priority() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let other = app.customer().await;
    let staff = app.staff().await;
    let mine = app.open_tickets(&customer, 4).await;
    let theirs = app.open_ticket_id(&other).await;
    for (id, priority) in mine.iter().zip(PRIORITIES) {
        app.patch_ticket_ok(&staff, *id, &json!({ "priority": priority }))
            .await;
    }
    app.patch_ticket_ok(&staff, theirs, &json!({ "priority": "urgent" }))
        .await;

    let urgent = app.get_json(&customer, "/tickets?priority=urgent").await;
    assert_eq!(ids(&urgent), [mine[3]]);
    let high = app
        .get_json(&customer, "/tickets?priority=high,urgent&order=desc")
        .await;
    assert_eq!(ids(&high), [mine[3], mine[2]]);
    let all = app
        .get_json(&staff, "/tickets?priority=urgent,low,normal,high")
        .await;
    assert_eq!(ids(&all).len(), 5);
}

#[tokio::test]
async fn an_empty_cursor_is_the_first_page() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let opened = app.open_tickets(&customer, 3).await;
    app.post_message_ok(&staff, opened[0], "reply").await;
    let lists = [
        (&customer, "/tickets".to_owned()),
        (&customer, format!("/tickets/{}/messages", opened[0])),
        (&customer, format!("/tickets/{}/events", opened[0])),
        (&staff, "/users".to_owned()),
        (&customer, "/users/me".to_owned()),
    ];

    for (actor, list) in lists {
        for limit in ["", "&limit=1"] {
            let plain = app.get_as(actor, &format!("{list}?{limit}")).await;
            let plain_link = next_link(plain.headers());
            let plain = assert_json(plain, 200).await;
            let empty = app.get_as(actor, &format!("{list}?cursor={limit}")).await;
            assert_eq!(next_link(empty.headers()), plain_link, "{list}{limit}");
            assert_eq!(assert_json(empty, 200).await, plain, "{list}{limit}");
        }
    }
}
