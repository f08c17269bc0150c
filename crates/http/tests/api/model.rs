//! A model-based property test: random sequences of (actor, action) run against the
//! service and against a pure model of the contract (who sees which ticket, the status
//! table, who writes which kind of message), compared response by response and in the
//! final state.
//!
//! One application serves every case; each case has fresh users (customers A and B,
//! staff S), so cases do not see each other's tickets except in staff's list, which is
//! filtered to the case's authors. `PROPTEST_CASES` overrides the number of cases.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, Response};
use serde_json::Value;
use time::OffsetDateTime;

use crate::helpers::{check_problem_among, spawn_app, timestamp_field, Actor, TestApp};
use crate::status::{self, Outcome, State};

/// Cases when `PROPTEST_CASES` is unset: each costs a tenth of a second or so.
const CASES: u32 = 64;
/// `TicketRef::Any` ranges over `0..TICKET_REFS` (a case opens a few tickets, so the
/// higher ones often name none), `TicketRef::Visible` over half of that.
const TICKET_REFS: usize = 6;
/// Where the ids of tickets that do not exist start: far beyond any this suite creates.
const MISSING_IDS: i64 = 1 << 50;

// ---- the model ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    A,
    B,
    S,
}

impl Who {
    fn is_staff(self) -> bool {
        self == Who::S
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Resolved,
    Unresolved,
    Canceled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Resolved => "resolved",
            Status::Unresolved => "unresolved",
            Status::Canceled => "canceled",
        }
    }
}

/// A ticket named by its place in the case, not by id, so that shrinking keeps meaning.
#[derive(Debug, Clone, Copy)]
enum TicketRef {
    /// The nth ticket the actor may see (any ticket, for staff), counting round; an id
    /// that does not exist when the actor sees none.
    Visible(usize),
    /// The nth ticket of the case, whoever wrote it, or an id that does not exist.
    Any(usize),
}

#[derive(Debug, Clone)]
enum Action {
    Open,
    Post(TicketRef),
    SetStatus(TicketRef, Status, Method),
    Get(TicketRef),
    List,
    Messages(TicketRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    /// Known once the service has told it.
    id: Option<i64>,
    author: Who,
    kind: &'static str,
    text: String,
}

#[derive(Debug, Clone)]
struct Ticket {
    id: i64,
    author: Who,
    status: Status,
    messages: Vec<Message>,
    /// As last reported; unknown after a message moved it.
    updated_at: Option<OffsetDateTime>,
}

impl Ticket {
    fn state(&self) -> State {
        let responded = self.messages.iter().any(|m| m.kind == "response");
        match (self.status, responded) {
            (Status::Pending, false) => State::Pending,
            (Status::Pending, true) => State::PendingWithResponse,
            (Status::Unresolved, false) => State::Unresolved,
            (Status::Unresolved, true) => State::UnresolvedWithResponse,
            (Status::Resolved, _) => State::Resolved,
            (Status::Canceled, false) => State::Canceled,
            (Status::Canceled, true) => State::CanceledWithResponse,
        }
    }
}

/// What the contract says of the case's data.
#[derive(Debug, Default)]
struct Model {
    tickets: Vec<Ticket>,
}

impl Model {
    /// The ticket that reference `n` names, if `who` may see it.
    fn visible(&self, who: Who, n: usize) -> Option<&Ticket> {
        self.tickets
            .get(n)
            .filter(|t| who.is_staff() || t.author == who)
    }

    /// What a status change does, by the contract's table (shared with `status.rs`).
    fn status_change(&self, who: Who, n: usize, target: Status) -> Outcome {
        let Some(ticket) = self.tickets.get(n) else {
            // No ticket: 404, though a caller who could never set this status may be
            // told so first.
            let never = if target == Status::Canceled {
                who.is_staff()
            } else {
                !who.is_staff()
            };
            let mut allowed = vec![(404, "ticket_not_found")];
            if never {
                allowed.push((400, "status_not_allowed"));
            }
            return Outcome::Refused(allowed);
        };
        let standing = match (who.is_staff(), ticket.author == who) {
            (true, true) => status::Who::StaffAuthor,
            (true, false) => status::Who::Staff,
            (false, true) => status::Who::Author,
            (false, false) => status::Who::Stranger,
        };
        status::expected(standing, ticket.state(), target.as_str())
    }

    /// The tickets `who` lists, oldest first.
    fn listed(&self, who: Who) -> Vec<&Ticket> {
        self.tickets
            .iter()
            .filter(|t| who.is_staff() || t.author == who)
            .collect()
    }

    fn tickets_count(&self, who: Who) -> usize {
        self.tickets.iter().filter(|t| t.author == who).count()
    }
}

// ---- the generator ----------------------------------------------------------------------

/// Ticket references: mostly to tickets the actor sees, also to others' and to none.
fn ticket() -> impl Strategy<Value = TicketRef> {
    prop_oneof![
        3 => (0..TICKET_REFS / 2).prop_map(TicketRef::Visible),
        1 => (0..TICKET_REFS).prop_map(TicketRef::Any),
    ]
}

/// Targets weighted towards what `who` may set, so that most requests reach the rules
/// of the ticket's state rather than stopping at "never allowed".
fn target(who: Who) -> impl Strategy<Value = Status> {
    let (mine, others) = if who.is_staff() { (1, 3) } else { (3, 1) };
    prop_oneof![
        others => Just(Status::Pending),
        others => Just(Status::Resolved),
        others => Just(Status::Unresolved),
        mine => Just(Status::Canceled),
    ]
}

fn action(who: Who) -> impl Strategy<Value = Action> {
    let method = prop_oneof![Just(Method::PATCH), Just(Method::PUT)];
    prop_oneof![
        3 => Just(Action::Open),
        3 => ticket().prop_map(Action::Post),
        5 => (ticket(), target(who), method)
            .prop_map(|(n, status, method)| Action::SetStatus(n, status, method)),
        1 => ticket().prop_map(Action::Get),
        1 => Just(Action::List),
        1 => ticket().prop_map(Action::Messages),
    ]
}

fn step() -> impl Strategy<Value = (Who, Action)> {
    prop_oneof![Just(Who::A), Just(Who::B), Just(Who::S)]
        .prop_flat_map(|who| (Just(who), action(who)))
}

fn sequences() -> impl Strategy<Value = Vec<(Who, Action)>> {
    prop::collection::vec(step(), 10..=30)
}

// ---- running a case against the service -------------------------------------------------

/// One case: its users, and the model of what they did.
struct Case<'a> {
    app: &'a TestApp,
    actors: [Actor; 3],
    model: Model,
}

type Checked<T = ()> = Result<T, String>;

macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

impl<'a> Case<'a> {
    async fn new(app: &'a TestApp) -> Case<'a> {
        Case {
            app,
            actors: [
                app.customer().await,
                app.customer().await,
                app.staff().await,
            ],
            model: Model::default(),
        }
    }

    fn actor(&self, who: Who) -> &Actor {
        &self.actors[who as usize]
    }

    fn who_wrote(&self, email: &str) -> Option<Who> {
        [Who::A, Who::B, Who::S]
            .into_iter()
            .find(|who| self.actor(*who).email == email)
    }

    /// The index in the model's tickets that `r` names; past the end when it names none.
    fn index(&self, who: Who, r: TicketRef) -> usize {
        let tickets = &self.model.tickets;
        match r {
            TicketRef::Any(n) => n,
            TicketRef::Visible(n) => {
                let visible: Vec<usize> = (0..tickets.len())
                    .filter(|i| who.is_staff() || tickets[*i].author == who)
                    .collect();
                match visible.len() {
                    0 => tickets.len() + n,
                    count => visible[n % count],
                }
            }
        }
    }

    /// The id of the `n`th ticket, or one that does not exist.
    fn ticket_id(&self, n: usize) -> i64 {
        self.model
            .tickets
            .get(n)
            .map_or(MISSING_IDS + n as i64, |t| t.id)
    }

    async fn step(&mut self, step: usize, who: Who, action: &Action) -> Checked {
        match action {
            Action::Open => self.open(step, who).await,
            Action::Post(r) => self.post(step, who, self.index(who, *r)).await,
            Action::SetStatus(r, target, method) => {
                let n = self.index(who, *r);
                self.set_status(who, n, *target, method.clone()).await
            }
            Action::Get(r) => self.get(who, self.index(who, *r)).await,
            Action::List => self.list(who).await,
            Action::Messages(r) => self.messages(who, self.index(who, *r)).await,
        }
    }

    async fn open(&mut self, step: usize, who: Who) -> Checked {
        let text = format!("opened at step {step}");
        let body = serde_json::json!({ "topic": format!("topic {step}"), "text": text });
        let response = self
            .app
            .send_as(self.actor(who), Method::POST, "/tickets", &body)
            .await;
        let ticket = json(response, 201).await?;
        ensure!(ticket["status"] == "pending", "a new ticket is {ticket}");
        self.model.tickets.push(Ticket {
            id: id(&ticket)?,
            author: who,
            status: Status::Pending,
            messages: vec![Message {
                id: None,
                author: who,
                kind: "request",
                text,
            }],
            updated_at: Some(updated_at(&ticket)),
        });
        Ok(())
    }

    async fn post(&mut self, step: usize, who: Who, n: usize) -> Checked {
        let text = format!("posted at step {step}");
        let response = self
            .app
            .post_message(self.actor(who), self.ticket_id(n), &text)
            .await;
        let Some(ticket) = self.model.visible(who, n) else {
            return problem(response, &[(404, "ticket_not_found")]).await;
        };
        if ticket.status == Status::Canceled {
            return problem(response, &[(409, "ticket_canceled")]).await;
        }
        let kind = if who.is_staff() {
            "response"
        } else {
            "request"
        };
        let message = json(response, 201).await?;
        ensure!(message["type"] == kind, "{who:?} posted {message}");
        ensure!(message["text"] == text.as_str(), "posted {message}");
        let ticket = &mut self.model.tickets[n];
        ticket.messages.push(Message {
            id: Some(id(&message)?),
            author: who,
            kind,
            text,
        });
        ticket.updated_at = None;
        Ok(())
    }

    async fn set_status(&mut self, who: Who, n: usize, target: Status, method: Method) -> Checked {
        let response = self
            .app
            .change_status(method, self.actor(who), self.ticket_id(n), target.as_str())
            .await;
        let changed = match self.model.status_change(who, n, target) {
            Outcome::Refused(allowed) => return problem(response, &allowed).await,
            Outcome::Changed => true,
            Outcome::Unchanged => false,
        };
        let body = json(response, 200).await?;
        ensure!(
            body["status"] == target.as_str(),
            "asked for {target:?}, got {body}"
        );
        let now = updated_at(&body);
        let ticket = &mut self.model.tickets[n];
        if let Some(before) = ticket.updated_at {
            ensure!(
                if changed { now > before } else { now == before },
                "changed: {changed}, but updated_at went from {before} to {now}"
            );
        }
        ticket.status = target;
        ticket.updated_at = Some(now);
        Ok(())
    }

    async fn get(&mut self, who: Who, n: usize) -> Checked {
        let path = format!("/tickets/{}", self.ticket_id(n));
        let response = self.app.get_as(self.actor(who), &path).await;
        if self.model.visible(who, n).is_none() {
            return problem(response, &[(404, "ticket_not_found")]).await;
        }
        let body = json(response, 200).await?;
        self.compare_ticket(who, &self.model.tickets[n], &body)?;
        let now = updated_at(&body);
        let ticket = &mut self.model.tickets[n];
        if let Some(before) = ticket.updated_at {
            ensure!(
                now == before,
                "updated_at moved from {before} to {now} unasked"
            );
        }
        ticket.updated_at = Some(now);
        Ok(())
    }

    async fn list(&self, who: Who) -> Checked {
        // Staff see every case's tickets: the newest 1000 hold this case's, and only
        // this case's authors count.
        let path = if who.is_staff() {
            "/tickets?order=desc&limit=1000"
        } else {
            "/tickets"
        };
        let body = json(self.app.get_as(self.actor(who), path).await, 200).await?;
        let mut rows: Vec<&Value> = array(&body)?
            .iter()
            .filter(|row| {
                !who.is_staff()
                    || row["author"]
                        .as_str()
                        .and_then(|e| self.who_wrote(e))
                        .is_some()
            })
            .collect();
        if who.is_staff() {
            rows.reverse();
        }
        let expected = self.model.listed(who);
        ensure!(
            rows.len() == expected.len(),
            "{who:?} lists {} tickets, expected {}: {body}",
            rows.len(),
            expected.len()
        );
        for (row, ticket) in rows.into_iter().zip(expected) {
            self.compare_ticket(who, ticket, row)?;
        }
        Ok(())
    }

    async fn messages(&mut self, who: Who, n: usize) -> Checked {
        let path = format!("/tickets/{}/messages?limit=1000", self.ticket_id(n));
        let response = self.app.get_as(self.actor(who), &path).await;
        let Some(ticket) = self.model.visible(who, n) else {
            return problem(response, &[(404, "ticket_not_found")]).await;
        };
        let body = json(response, 200).await?;
        let rows = array(&body)?;
        ensure!(
            rows.len() == ticket.messages.len(),
            "{} messages, expected {:?}: {body}",
            rows.len(),
            ticket.messages
        );
        let mut ids = Vec::new();
        for (row, message) in rows.iter().zip(&ticket.messages) {
            let listed_id = id(row)?;
            ensure!(
                message.id.is_none_or(|known| known == listed_id)
                    && row["type"] == message.kind
                    && row["text"] == message.text.as_str(),
                "listed {row}, expected {message:?}"
            );
            self.compare_author(who, message.author, row)?;
            ids.push(listed_id);
        }
        for (message, listed_id) in self.model.tickets[n].messages.iter_mut().zip(ids) {
            message.id = Some(listed_id);
        }
        Ok(())
    }

    fn compare_ticket(&self, who: Who, ticket: &Ticket, row: &Value) -> Checked {
        ensure!(
            id(row)? == ticket.id && row["status"] == ticket.status.as_str(),
            "{who:?} sees {row}, expected ticket {} {:?}",
            ticket.id,
            ticket.status
        );
        self.compare_author(who, ticket.author, row)
    }

    /// Staff see who wrote what; customers never do.
    fn compare_author(&self, who: Who, author: Who, row: &Value) -> Checked {
        let shown = row.get("author").and_then(Value::as_str);
        if who.is_staff() {
            ensure!(
                shown == Some(self.actor(author).email.as_str()),
                "staff see author {shown:?}, expected {author:?}: {row}"
            );
        } else {
            ensure!(shown.is_none(), "a customer sees an author: {row}");
        }
        Ok(())
    }

    /// The data as stored agrees with the model: statuses, messages, counts.
    async fn compare_final_state(&self) -> Checked {
        let ids: Vec<String> = self.actors.iter().map(|a| a.id.to_string()).collect();
        let stored = self
            .app
            .query_i64(&format!(
                "SELECT count(*) FROM tickets WHERE author_id IN ({})",
                ids.join(", ")
            ))
            .await;
        ensure!(
            stored == self.model.tickets.len() as i64,
            "{stored} tickets stored, expected {}",
            self.model.tickets.len()
        );
        for ticket in &self.model.tickets {
            let (status, _) = self.app.ticket_row(ticket.id).await;
            ensure!(
                status == ticket.status.as_str(),
                "ticket {} is stored {status}, expected {:?}",
                ticket.id,
                ticket.status
            );
            let messages = self
                .app
                .query_i64(&format!(
                    "SELECT count(*) FROM messages WHERE ticket_id = {}",
                    ticket.id
                ))
                .await;
            ensure!(
                messages == ticket.messages.len() as i64,
                "ticket {} has {messages} messages, expected {}",
                ticket.id,
                ticket.messages.len()
            );
        }
        for who in [Who::A, Who::B, Who::S] {
            let me = json(self.app.get_as(self.actor(who), "/users/me").await, 200).await?;
            let expected = self.model.tickets_count(who);
            ensure!(
                me["tickets_count"] == expected,
                "{who:?}'s tickets_count: {}, expected {expected}",
                me["tickets_count"]
            );
        }
        Ok(())
    }
}

/// A JSON body with `status`, or why not.
async fn json(response: Response, status: u16) -> Checked<Value> {
    let actual = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    ensure!(
        actual == status,
        "status {actual}, expected {status}; body: {text}"
    );
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

/// A problem with one of the `allowed` (status, code) pairs, or why not.
async fn problem(response: Response, allowed: &[(u16, &str)]) -> Checked {
    check_problem_among(response, allowed).await.map(drop)
}

fn id(value: &Value) -> Checked<i64> {
    value["id"]
        .as_i64()
        .ok_or_else(|| format!("no integer id in {value}"))
}

fn array(value: &Value) -> Checked<&Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| format!("not an array: {value}"))
}

fn updated_at(ticket: &Value) -> OffsetDateTime {
    timestamp_field(ticket, "updated_at")
}

async fn run_case(app: &TestApp, steps: &[(Who, Action)]) -> Checked {
    let mut case = Case::new(app).await;
    for (step, (who, action)) in steps.iter().enumerate() {
        case.step(step, *who, action)
            .await
            .map_err(|e| format!("step {step}, {who:?} {action:?}: {e}"))?;
    }
    case.compare_final_state()
        .await
        .map_err(|e| format!("after the last step: {e}"))
}

#[test]
fn the_service_behaves_like_a_model_of_its_rules() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let app = runtime.block_on(spawn_app());
    let mut config = Config {
        // A failure prints its shrunk sequence; no regression files are written.
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    let cases = AtomicUsize::new(0);

    let result = TestRunner::new(config).run(&sequences(), |steps| {
        cases.fetch_add(1, Ordering::Relaxed);
        runtime
            .block_on(run_case(&app, &steps))
            .map_err(TestCaseError::fail)
    });

    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(cases.load(Ordering::Relaxed) > 0, "no case ran");
}
