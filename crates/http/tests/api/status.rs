//! `PUT` and `PATCH /tickets/{id}`: the status table of the contract, over HTTP.
//!
//! The expectations come from an oracle written from the contract's table, and every
//! (caller, state, status) triple is tried with both methods on a fresh ticket.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    assert_json, assert_problem, assert_ticket_object, check_problem_among, id_of, send, spawn_app,
    timestamp_field, Actor, TestApp,
};

const STATUSES: [&str; 4] = ["pending", "resolved", "unresolved", "canceled"];

/// The states a ticket can be put in before the request under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    PendingWithResponse,
    Unresolved,
    UnresolvedWithResponse,
    Resolved,
    Canceled,
    CanceledWithResponse,
}

impl State {
    const ALL: [State; 7] = [
        State::Pending,
        State::PendingWithResponse,
        State::Unresolved,
        State::UnresolvedWithResponse,
        State::Resolved,
        State::Canceled,
        State::CanceledWithResponse,
    ];

    fn status(self) -> &'static str {
        match self {
            State::Pending | State::PendingWithResponse => "pending",
            State::Unresolved | State::UnresolvedWithResponse => "unresolved",
            State::Resolved => "resolved",
            State::Canceled | State::CanceledWithResponse => "canceled",
        }
    }

    fn has_response(self) -> bool {
        matches!(
            self,
            State::PendingWithResponse
                | State::UnresolvedWithResponse
                | State::Resolved
                | State::CanceledWithResponse
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// A customer who wrote the ticket.
    Author,
    /// Staff who did not write it.
    Staff,
    /// A superuser who did not write it.
    Superuser,
    /// Staff who wrote it.
    StaffAuthor,
    /// A customer who did not write it.
    Stranger,
}

/// What the contract says a request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 200; the status becomes the target and `updated_at` moves.
    Changed,
    /// 200; nothing changes.
    Unchanged,
    /// An error; nothing changes. Several (status, code) pairs when the contract
    /// allows reading it more than one way.
    Refused(Vec<(u16, &'static str)>),
}

fn refused(status: u16, code: &'static str) -> Outcome {
    Outcome::Refused(vec![(status, code)])
}

/// The contract's table, written independently of the application (the model-based
/// test of `model.rs` shares it).
pub(crate) fn expected(who: Who, from: State, to: &str) -> Outcome {
    let is_author = matches!(who, Who::Author | Who::StaffAuthor);
    let is_staff = matches!(who, Who::Staff | Who::Superuser | Who::StaffAuthor);
    if !is_author && !is_staff {
        // The ticket is invisible to a stranger, and a customer may never set anything
        // but `canceled`: either answer is the contract's.
        return if to == "canceled" {
            refused(404, "ticket_not_found")
        } else {
            Outcome::Refused(vec![(404, "ticket_not_found"), (400, "status_not_allowed")])
        };
    }
    let may_set = if to == "canceled" {
        is_author
    } else {
        is_staff
    };
    if !may_set {
        return refused(400, "status_not_allowed");
    }
    let from_status = from.status();
    if from_status == to {
        return Outcome::Unchanged;
    }
    if from_status == "canceled" {
        return refused(409, "ticket_canceled");
    }
    if to == "canceled" && from_status == "resolved" {
        return refused(409, "cannot_cancel_resolved");
    }
    if to == "resolved" && !from.has_response() {
        return refused(409, "response_required");
    }
    Outcome::Changed
}

/// The actors of one app, one of each kind.
struct Cast {
    customer: Actor,
    staff: Actor,
    superuser: Actor,
    stranger: Actor,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        Cast {
            customer: app.customer().await,
            staff: app.staff().await,
            superuser: app.superuser().await,
            stranger: app.customer().await,
        }
    }

    /// Who opens the ticket and who sends the request.
    fn roles(&self, who: Who) -> (&Actor, &Actor) {
        match who {
            Who::Author => (&self.customer, &self.customer),
            Who::Staff => (&self.customer, &self.staff),
            Who::Superuser => (&self.customer, &self.superuser),
            Who::StaffAuthor => (&self.staff, &self.staff),
            Who::Stranger => (&self.customer, &self.stranger),
        }
    }
}

/// Runs every (caller, state, target) triple with `method`.
async fn check_the_whole_table(method: Method) {
    let app = spawn_app().await;
    let cast = Cast::new(&app).await;
    let mut checked = 0;
    for who in [
        Who::Author,
        Who::Staff,
        Who::Superuser,
        Who::StaffAuthor,
        Who::Stranger,
    ] {
        let (author, caller) = cast.roles(who);
        for from in State::ALL {
            for to in STATUSES {
                let ticket = app
                    .ticket_with_status(author, &cast.staff, from.status(), from.has_response())
                    .await;
                let before = app.ticket_row(ticket).await;
                let response = app.change_status(method.clone(), caller, ticket, to).await;
                let case = format!("{method} {who:?} {from:?} -> {to}");
                let after = match expected(who, from, to) {
                    Outcome::Changed => {
                        let body = assert_json(response, 200).await;
                        assert_eq!(body["status"], to, "{case}");
                        assert_eq!(id_of(&body), ticket, "{case}");
                        assert_ticket_object(&body, is_staff(who));
                        let after = app.ticket_row(ticket).await;
                        assert!(after.1 > before.1, "{case}: updated_at did not move");
                        after
                    }
                    Outcome::Unchanged => {
                        let body = assert_json(response, 200).await;
                        assert_eq!(body["status"], to, "{case}");
                        assert_eq!(app.ticket_row(ticket).await, before, "{case}: changed");
                        before.clone()
                    }
                    Outcome::Refused(allowed) => {
                        if let Err(e) = check_problem_among(response, &allowed).await {
                            panic!("{case}: {e}");
                        }
                        assert_eq!(app.ticket_row(ticket).await, before, "{case}: changed");
                        before.clone()
                    }
                };
                let expected_status = match expected(who, from, to) {
                    Outcome::Changed => to,
                    Outcome::Unchanged | Outcome::Refused(_) => from.status(),
                };
                assert_eq!(after.0, expected_status, "{case}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 * 7 * 4);
}

fn is_staff(who: Who) -> bool {
    matches!(who, Who::Staff | Who::Superuser | Who::StaffAuthor)
}

#[tokio::test]
async fn patch_follows_the_contract_table() {
    check_the_whole_table(Method::PATCH).await;
}

#[tokio::test]
async fn put_follows_the_contract_table() {
    check_the_whole_table(Method::PUT).await;
}

#[tokio::test]
async fn the_updated_ticket_reports_the_new_updated_at() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket(&customer, "t", "t").await;
    let id = id_of(&ticket);

    let updated = app.set_status_ok(&staff, id, "unresolved").await;

    assert!(timestamp_field(&updated, "updated_at") > timestamp_field(&ticket, "updated_at"));
    assert_eq!(updated["created_at"], ticket["created_at"]);
    assert_eq!(updated["topic"], ticket["topic"]);
    assert_eq!(updated["author"], customer.email.as_str());
    // A no-op keeps it.
    let again = app.set_status_ok(&staff, id, "unresolved").await;
    assert_eq!(again["updated_at"], updated["updated_at"]);
    // The customer sees the same without the author.
    let seen = app.get_json(&customer, &format!("/tickets/{id}")).await;
    assert_eq!(seen["updated_at"], updated["updated_at"]);
    assert!(seen.get("author").is_none());
}

#[tokio::test]
async fn unknown_statuses_are_400_and_change_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let before = app.ticket_row(ticket).await;

    for actor in [&customer, &staff] {
        for status in ["closed", "Pending", "CANCELED", "", " pending", "cancelled"] {
            let response = app.set_status(actor, ticket, status).await;
            assert_problem(response, 400, "status_unknown").await;
        }
    }

    assert_eq!(app.ticket_row(ticket).await, before);
}

#[tokio::test]
async fn a_missing_or_mistyped_status_is_400() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&staff).await;
    let path = format!("/tickets/{ticket}");

    for body in [
        json!({}),
        json!({ "status": 1 }),
        json!({ "status": null }),
        json!({ "status": ["pending"] }),
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let response = app.send_as(&staff, method, &path, &body).await;
            assert_problem(response, 400, "invalid_body").await;
        }
    }
    assert_eq!(app.ticket_row(ticket).await.0, "pending");
}

#[tokio::test]
async fn other_fields_of_the_body_are_ignored() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket(&customer, "original", "t").await;
    let body = json!({
        "status": "unresolved", "topic": "hacked", "author": staff.email, "id": 1,
        "created_at": "2000-01-01T00:00:00Z",
    });

    let response = app
        .send_as(
            &staff,
            Method::PUT,
            &format!("/tickets/{}", id_of(&ticket)),
            &body,
        )
        .await;
    let updated = assert_json(response, 200).await;

    assert_eq!(updated["status"], "unresolved");
    assert_eq!(updated["topic"], "original");
    assert_eq!(updated["created_at"], ticket["created_at"]);
    assert_eq!(updated["author"], customer.email.as_str());
}

#[tokio::test]
async fn a_status_change_on_a_missing_ticket_is_404() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let customer = app.customer().await;

    for (actor, status) in [
        (&staff, "pending"),
        (&staff, "resolved"),
        (&customer, "canceled"),
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let response = app
                .change_status(method, actor, 9_223_372_036_854_775_807, status)
                .await;
            assert_problem(response, 404, "ticket_not_found").await;
        }
    }
}

#[tokio::test]
async fn a_status_change_needs_a_token() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let ticket = app.open_ticket_id(&customer).await;

    for method in [Method::PUT, Method::PATCH] {
        let request = app
            .request(method, &format!("/tickets/{ticket}"))
            .json(&json!({ "status": "canceled" }));
        assert_problem(send(request).await, 401, "unauthenticated").await;
    }
    assert_eq!(app.ticket_row(ticket).await.0, "pending");
}

#[tokio::test]
async fn a_ticket_goes_through_a_whole_life() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;

    assert_problem(
        app.set_status(&staff, ticket, "resolved").await,
        409,
        "response_required",
    )
    .await;
    app.set_status_ok(&staff, ticket, "unresolved").await;
    app.post_message_ok(&staff, ticket, "try turning it off and on")
        .await;
    app.set_status_ok(&staff, ticket, "resolved").await;
    assert_problem(
        app.set_status(&customer, ticket, "canceled").await,
        409,
        "cannot_cancel_resolved",
    )
    .await;
    app.set_status_ok(&staff, ticket, "unresolved").await;
    app.set_status_ok(&customer, ticket, "canceled").await;
    for status in ["pending", "resolved", "unresolved"] {
        assert_problem(
            app.set_status(&staff, ticket, status).await,
            409,
            "ticket_canceled",
        )
        .await;
    }
    assert_eq!(
        app.set_status_ok(&customer, ticket, "canceled").await["status"],
        "canceled"
    );
    assert_eq!(app.ticket_row(ticket).await.0, "canceled");
}
