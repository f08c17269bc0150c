//! A model-based property test: random sequences of (actor, action) run against the
//! service and against a pure model of the contract (who sees which ticket, the status
//! table, who writes which kind of message, priority, assignment, internal notes, the
//! ticket's version and `If-Match`, and the history each caller sees), compared
//! response by response and in the final state.
//!
//! One application serves every case; each case has fresh users (customers A and B,
//! staff S, and staff S2, who never acts but can be assigned), so cases do not see each
//! other's tickets except in staff's list, which is filtered to the case's authors.
//! `PROPTEST_CASES` overrides the number of cases.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::helpers::{check_problem_among, send, spawn_app, timestamp_field, Actor, TestApp};
use crate::status::{self, Outcome, State};

/// Cases when `PROPTEST_CASES` is unset: each costs a fifth of a second or so.
const CASES: u32 = 64;
/// `TicketRef::Any` ranges over `0..TICKET_REFS` (a case opens a few tickets, so the
/// higher ones often name none), `TicketRef::Visible` over half of that.
const TICKET_REFS: usize = 6;
/// Where the ids of tickets (and users) that do not exist start: far beyond any this
/// suite creates.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// A member of staff a ticket can be assigned to: S, or S2 (who never acts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Staff {
    S,
    S2,
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

/// The `priority` a request sends.
#[derive(Debug, Clone, Copy)]
enum PriorityArg {
    Known(Priority),
    /// A name that is no priority.
    Unknown,
}

impl PriorityArg {
    fn as_str(self) -> &'static str {
        match self {
            PriorityArg::Known(priority) => priority.as_str(),
            PriorityArg::Unknown => "critical",
        }
    }
}

/// The `assignee_id` a request sends.
#[derive(Debug, Clone, Copy)]
enum AssigneeArg {
    Staff(Staff),
    /// `null`: unassign.
    Nobody,
    /// Customer A's id: no member of staff.
    Customer,
    /// An id that no user has.
    Missing,
}

impl AssigneeArg {
    /// The assignee it asks for; `None` when it names no active member of staff.
    fn target(self) -> Option<Option<Staff>> {
        match self {
            AssigneeArg::Staff(staff) => Some(Some(staff)),
            AssigneeArg::Nobody => Some(None),
            AssigneeArg::Customer | AssigneeArg::Missing => None,
        }
    }
}

/// The `If-Match` a write sends: none, the ETag the model believes current, or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfMatch {
    Absent,
    Current,
    Stale,
}

/// `PUT` or `PATCH /tickets/{id}`. `PUT` always sends a status, and reads nothing else
/// of what it sends.
#[derive(Debug, Clone)]
struct ChangeRequest {
    method: Method,
    status: Option<Status>,
    priority: Option<PriorityArg>,
    assignee: Option<AssigneeArg>,
    if_match: IfMatch,
}

#[derive(Debug, Clone)]
enum Action {
    Open,
    /// A message; `internal` asks for a note.
    Post {
        ticket: TicketRef,
        internal: bool,
        if_match: IfMatch,
    },
    Change(TicketRef, ChangeRequest),
    Get(TicketRef),
    List,
    Messages(TicketRef),
    History(TicketRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    /// Known once the service has told it.
    id: Option<i64>,
    author: Who,
    kind: &'static str,
    text: String,
}

impl Message {
    fn is_note(&self) -> bool {
        self.kind == "note"
    }
}

/// An entry of a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Created,
    /// The `message.created` or `note.created` of the ticket's message with this index.
    Posted(usize),
    Status {
        from: Status,
        to: Status,
    },
    Priority {
        from: Priority,
        to: Priority,
    },
    Assigned {
        from: Option<Staff>,
        to: Option<Staff>,
    },
}

/// The events one request recorded. The contract does not order the events of one
/// write (opening a ticket, or a `PATCH` of several fields), so neither does the model.
#[derive(Debug, Clone)]
struct Write {
    actor: Who,
    events: Vec<Event>,
}

#[derive(Debug, Clone)]
struct Ticket {
    id: i64,
    author: Who,
    topic: String,
    status: Status,
    priority: Priority,
    assignee: Option<Staff>,
    /// The ETag: 1 when opened, and one more for each event that customers may see.
    version: i64,
    messages: Vec<Message>,
    history: Vec<Write>,
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

    fn event_type(&self, event: &Event) -> &'static str {
        match event {
            Event::Created => "ticket.created",
            Event::Posted(n) if self.messages[*n].is_note() => "note.created",
            Event::Posted(_) => "message.created",
            Event::Status { .. } => "ticket.status_changed",
            Event::Priority { .. } => "ticket.priority_changed",
            Event::Assigned { .. } => "ticket.assigned",
        }
    }

    /// Only staff see it.
    fn is_internal(&self, event: &Event) -> bool {
        matches!(event, Event::Posted(n) if self.messages[*n].is_note())
    }

    /// Records what `actor` did; the version grows by the events that customers see.
    fn record(&mut self, actor: Who, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let visible = events.iter().filter(|e| !self.is_internal(e)).count();
        self.version += visible as i64;
        self.history.push(Write { actor, events });
    }

    /// Makes the changes of a permitted request, with their events; whether any.
    fn apply(&mut self, actor: Who, changes: Changes) -> bool {
        let mut events = Vec::new();
        if let Some(to) = changes.status {
            events.push(Event::Status {
                from: self.status,
                to,
            });
            self.status = to;
        }
        if let Some(to) = changes.priority {
            events.push(Event::Priority {
                from: self.priority,
                to,
            });
            self.priority = to;
        }
        if let Some(to) = changes.assignee {
            events.push(Event::Assigned {
                from: self.assignee,
                to,
            });
            self.assignee = to;
        }
        let changed = !events.is_empty();
        self.record(actor, events);
        changed
    }

    /// Message ids the service told: (index, id).
    fn learn(&mut self, ids: Vec<(usize, i64)>) {
        for (n, id) in ids {
            self.messages[n].id = Some(id);
        }
    }
}

/// What a permitted change request changes: the new values of the fields that differ.
#[derive(Debug, Default)]
struct Changes {
    status: Option<Status>,
    priority: Option<Priority>,
    assignee: Option<Option<Staff>>,
}

type Refusal = Vec<(u16, &'static str)>;

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

    /// What `PUT` or `PATCH` does: the changes it makes, or the refusals the contract
    /// allows. Where the contract orders no checks, the service's decision does: what
    /// the body alone decides, then the ticket's existence, then `If-Match`, then the
    /// rules of its state.
    fn change(&self, who: Who, n: usize, request: &ChangeRequest) -> Result<Changes, Refusal> {
        // `PUT` reads only the status.
        let (priority, assignee) = if request.method == Method::PATCH {
            (request.priority, request.assignee)
        } else {
            (None, None)
        };
        let status = request
            .status
            .map(|target| (target, self.status_change(who, n, target)));
        // "A status this caller may never set" is the body's fault as much as the
        // ticket's: whenever the table refuses it so, that answer is the contract's too.
        let never_allowed = matches!(&status, Some((_, Outcome::Refused(allowed)))
            if allowed.contains(&(400, "status_not_allowed")));
        let mut body: Refusal = Vec::new();
        if request.status.is_none() && priority.is_none() && assignee.is_none() {
            body.push((400, "invalid_body"));
        }
        if !who.is_staff() && (priority.is_some() || assignee.is_some()) {
            body.push((403, "staff_only"));
        }
        if matches!(priority, Some(PriorityArg::Unknown)) {
            body.push((400, "priority_invalid"));
        }
        if assignee.is_some_and(|a| a.target().is_none()) {
            body.push((400, "assignee_invalid"));
        }
        if !body.is_empty() {
            if never_allowed {
                body.push((400, "status_not_allowed"));
            }
            return Err(body);
        }
        let Some(ticket) = self.visible(who, n) else {
            return Err(match status {
                Some((_, Outcome::Refused(allowed))) => allowed,
                _ => vec![(404, "ticket_not_found")],
            });
        };
        if request.if_match == IfMatch::Stale {
            let mut allowed = vec![(412, "precondition_failed")];
            if never_allowed {
                allowed.push((400, "status_not_allowed"));
            }
            return Err(allowed);
        }
        let mut changes = Changes::default();
        match status {
            Some((_, Outcome::Refused(allowed))) => return Err(allowed),
            Some((target, Outcome::Changed)) => changes.status = Some(target),
            Some((_, Outcome::Unchanged)) | None => {}
        }
        if let Some(PriorityArg::Known(to)) = priority {
            changes.priority = (to != ticket.priority).then_some(to);
        }
        if let Some(to) = assignee.and_then(AssigneeArg::target) {
            changes.assignee = (to != ticket.assignee).then_some(to);
        }
        if (changes.priority.is_some() || changes.assignee.is_some())
            && ticket.status == Status::Canceled
        {
            return Err(vec![(409, "ticket_canceled")]);
        }
        Ok(changes)
    }

    /// What posting a message does: the type it gets, or the refusals allowed.
    fn post(
        &self,
        who: Who,
        n: usize,
        internal: bool,
        if_match: IfMatch,
    ) -> Result<&'static str, Refusal> {
        if internal && !who.is_staff() {
            return Err(vec![(403, "staff_only")]);
        }
        let Some(ticket) = self.visible(who, n) else {
            return Err(vec![(404, "ticket_not_found")]);
        };
        let kind = match (internal, who.is_staff()) {
            (true, _) => "note",
            (false, true) => "response",
            (false, false) => "request",
        };
        let stale = if_match == IfMatch::Stale;
        let mut refused = Vec::new();
        if stale {
            refused.push((412, "precondition_failed"));
        }
        // The contract orders no "canceled" before or after `If-Match` for messages.
        if ticket.status == Status::Canceled && kind != "note" {
            refused.push((409, "ticket_canceled"));
        }
        if refused.is_empty() {
            Ok(kind)
        } else {
            Err(refused)
        }
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

fn priority() -> impl Strategy<Value = PriorityArg> {
    prop_oneof![
        2 => Just(PriorityArg::Known(Priority::Low)),
        2 => Just(PriorityArg::Known(Priority::Normal)),
        2 => Just(PriorityArg::Known(Priority::High)),
        2 => Just(PriorityArg::Known(Priority::Urgent)),
        1 => Just(PriorityArg::Unknown),
    ]
}

fn assignee() -> impl Strategy<Value = AssigneeArg> {
    prop_oneof![
        3 => Just(AssigneeArg::Staff(Staff::S)),
        3 => Just(AssigneeArg::Staff(Staff::S2)),
        2 => Just(AssigneeArg::Nobody),
        1 => Just(AssigneeArg::Customer),
        1 => Just(AssigneeArg::Missing),
    ]
}

fn if_match() -> impl Strategy<Value = IfMatch> {
    prop_oneof![
        4 => Just(IfMatch::Absent),
        2 => Just(IfMatch::Current),
        1 => Just(IfMatch::Stale),
    ]
}

/// `PATCH` mostly, `PUT` (which always sends a status) sometimes. Customers seldom send
/// the staff fields (they only ever get `403`), so that their requests mostly reach the
/// status rules.
fn change(who: Who) -> impl Strategy<Value = ChangeRequest> {
    let (with_status, with_staff_field) = if who.is_staff() {
        (0.6, 0.5)
    } else {
        (0.85, 0.1)
    };
    let method = prop_oneof![3 => Just(Method::PATCH), 1 => Just(Method::PUT)];
    (
        method,
        prop::option::weighted(with_status, target(who)),
        target(who),
        prop::option::weighted(with_staff_field, priority()),
        prop::option::weighted(with_staff_field, assignee()),
        if_match(),
    )
        .prop_map(
            |(method, status, put_status, priority, assignee, if_match)| {
                let status = if method == Method::PUT {
                    Some(status.unwrap_or(put_status))
                } else {
                    status
                };
                ChangeRequest {
                    method,
                    status,
                    priority,
                    assignee,
                    if_match,
                }
            },
        )
}

fn action(who: Who) -> impl Strategy<Value = Action> {
    // Staff write notes half the time; customers try now and then.
    let internal = prop::bool::weighted(if who.is_staff() { 0.5 } else { 0.15 });
    prop_oneof![
        3 => Just(Action::Open),
        4 => (ticket(), internal, if_match()).prop_map(|(ticket, internal, if_match)| {
            Action::Post { ticket, internal, if_match }
        }),
        7 => (ticket(), change(who)).prop_map(|(n, request)| Action::Change(n, request)),
        1 => ticket().prop_map(Action::Get),
        1 => Just(Action::List),
        1 => ticket().prop_map(Action::Messages),
        1 => ticket().prop_map(Action::History),
    ]
}

/// Staff act as often as both customers: most of what is new is theirs to do.
fn who() -> impl Strategy<Value = Who> {
    prop_oneof![1 => Just(Who::A), 1 => Just(Who::B), 2 => Just(Who::S)]
}

fn step() -> impl Strategy<Value = (Who, Action)> {
    who().prop_flat_map(|who| (Just(who), action(who)))
}

/// A case opens a ticket first, so that its first steps do not all end in `404`.
fn sequences() -> impl Strategy<Value = Vec<(Who, Action)>> {
    (who(), prop::collection::vec(step(), 0..=40)).prop_map(|(opener, steps)| {
        let mut sequence = vec![(opener, Action::Open)];
        sequence.extend(steps);
        sequence
    })
}

// ---- running a case against the service -------------------------------------------------

/// One case: its users, and the model of what they did.
struct Case<'a> {
    app: &'a TestApp,
    actors: [Actor; 3],
    /// S2: staff who can be assigned and never acts.
    s2: Actor,
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
            s2: app.staff().await,
            model: Model::default(),
        }
    }

    fn actor(&self, who: Who) -> &Actor {
        &self.actors[who as usize]
    }

    fn staff_id(&self, staff: Staff) -> i64 {
        match staff {
            Staff::S => self.actor(Who::S).id,
            Staff::S2 => self.s2.id,
        }
    }

    /// `null`, or the id of the member of staff.
    fn assignee_json(&self, assignee: Option<Staff>) -> Value {
        assignee.map_or(Value::Null, |staff| json!(self.staff_id(staff)))
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

    /// The `If-Match` value for the `n`th ticket: the version the model believes
    /// current, or another one.
    fn if_match(&self, n: usize, if_match: IfMatch) -> Option<String> {
        let current = self.model.tickets.get(n).map_or(1, |t| t.version);
        let version = match if_match {
            IfMatch::Absent => return None,
            IfMatch::Current => current,
            IfMatch::Stale if current > 1 => current - 1,
            IfMatch::Stale => current + 1,
        };
        Some(format!("\"{version}\""))
    }

    /// Sends `body` as JSON as `who`, with `If-Match` when given.
    async fn write(
        &self,
        who: Who,
        method: Method,
        path: &str,
        body: &Value,
        if_match: Option<String>,
    ) -> Response {
        let mut request = self
            .app
            .request_as(self.actor(who), method, path)
            .json(body);
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        send(request).await
    }

    async fn step(&mut self, step: usize, who: Who, action: &Action) -> Checked {
        match action {
            Action::Open => self.open(step, who).await,
            Action::Post {
                ticket,
                internal,
                if_match,
            } => {
                let n = self.index(who, *ticket);
                self.post(step, who, n, *internal, *if_match).await
            }
            Action::Change(r, request) => self.change(who, self.index(who, *r), request).await,
            Action::Get(r) => self.get(who, self.index(who, *r)).await,
            Action::List => self.list(who).await,
            Action::Messages(r) => self.messages(who, self.index(who, *r)).await,
            Action::History(r) => self.history(who, self.index(who, *r)).await,
        }
    }

    async fn open(&mut self, step: usize, who: Who) -> Checked {
        let topic = format!("topic {step}");
        let text = format!("opened at step {step}");
        let body = json!({ "topic": topic, "text": text });
        let response = self
            .app
            .send_as(self.actor(who), Method::POST, "/tickets", &body)
            .await;
        let ticket = ticket_json(response, 201).await?;
        self.model.tickets.push(Ticket {
            id: id(&ticket)?,
            author: who,
            topic,
            status: Status::Pending,
            priority: Priority::Normal,
            assignee: None,
            version: 1,
            messages: vec![Message {
                id: None,
                author: who,
                kind: "request",
                text,
            }],
            history: vec![Write {
                actor: who,
                events: vec![Event::Created, Event::Posted(0)],
            }],
            updated_at: Some(updated_at(&ticket)),
        });
        let opened = self.model.tickets.last().ok_or("no ticket")?;
        self.compare_ticket(who, opened, &ticket)
    }

    async fn post(
        &mut self,
        step: usize,
        who: Who,
        n: usize,
        internal: bool,
        if_match: IfMatch,
    ) -> Checked {
        let text = format!("posted at step {step}");
        let mut body = json!({ "text": text });
        if internal {
            body["internal"] = Value::Bool(true);
        }
        let path = format!("/tickets/{}/messages", self.ticket_id(n));
        let response = self
            .write(who, Method::POST, &path, &body, self.if_match(n, if_match))
            .await;
        let kind = match self.model.post(who, n, internal, if_match) {
            Ok(kind) => kind,
            Err(allowed) => return problem(response, &allowed).await,
        };
        let message = json(response, 201).await?;
        ensure!(
            message["type"] == kind && message["text"] == text.as_str(),
            "{who:?} posted a {kind}: {message}"
        );
        self.compare_author(who, who, &message)?;
        let ticket = &mut self.model.tickets[n];
        ticket.messages.push(Message {
            id: Some(id(&message)?),
            author: who,
            kind,
            text,
        });
        let posted = Event::Posted(ticket.messages.len() - 1);
        if kind != "note" {
            // A note moves neither `updated_at` nor the version: the next look checks.
            ticket.updated_at = None;
        }
        ticket.record(who, vec![posted]);
        Ok(())
    }

    async fn change(&mut self, who: Who, n: usize, request: &ChangeRequest) -> Checked {
        let mut body = json!({});
        if let Some(status) = request.status {
            body["status"] = json!(status.as_str());
        }
        if let Some(priority) = request.priority {
            body["priority"] = json!(priority.as_str());
        }
        if let Some(assignee) = request.assignee {
            body["assignee_id"] = match assignee {
                AssigneeArg::Staff(staff) => json!(self.staff_id(staff)),
                AssigneeArg::Nobody => Value::Null,
                AssigneeArg::Customer => json!(self.actor(Who::A).id),
                AssigneeArg::Missing => json!(MISSING_IDS),
            };
        }
        let path = format!("/tickets/{}", self.ticket_id(n));
        let if_match = self.if_match(n, request.if_match);
        let response = self
            .write(who, request.method.clone(), &path, &body, if_match)
            .await;
        let changes = match self.model.change(who, n, request) {
            Ok(changes) => changes,
            Err(allowed) => return problem(response, &allowed).await,
        };
        let body = ticket_json(response, 200).await?;
        let now = updated_at(&body);
        let ticket = &mut self.model.tickets[n];
        let before = ticket.updated_at;
        let changed = ticket.apply(who, changes);
        ticket.updated_at = Some(now);
        if let Some(before) = before {
            ensure!(
                if changed { now > before } else { now == before },
                "changed: {changed}, but updated_at went from {before} to {now}"
            );
        }
        self.compare_ticket(who, &self.model.tickets[n], &body)
    }

    async fn get(&mut self, who: Who, n: usize) -> Checked {
        let path = format!("/tickets/{}", self.ticket_id(n));
        let response = self.app.get_as(self.actor(who), &path).await;
        if self.model.visible(who, n).is_none() {
            return problem(response, &[(404, "ticket_not_found")]).await;
        }
        let body = ticket_json(response, 200).await?;
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

    /// The messages `who` sees: every one for staff, all but notes for customers.
    async fn messages(&mut self, who: Who, n: usize) -> Checked {
        let path = format!("/tickets/{}/messages?limit=1000", self.ticket_id(n));
        let response = self.app.get_as(self.actor(who), &path).await;
        let Some(ticket) = self.model.visible(who, n) else {
            return problem(response, &[(404, "ticket_not_found")]).await;
        };
        let body = json(response, 200).await?;
        let rows = array(&body)?;
        let expected: Vec<(usize, &Message)> = ticket
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| who.is_staff() || !m.is_note())
            .collect();
        ensure!(
            rows.len() == expected.len(),
            "{who:?} sees {} messages, expected {:?}: {body}",
            rows.len(),
            expected
        );
        let mut learned = Vec::new();
        for (row, (index, message)) in rows.iter().zip(expected) {
            let listed_id = id(row)?;
            ensure!(
                message.id.is_none_or(|known| known == listed_id)
                    && row["type"] == message.kind
                    && row["text"] == message.text.as_str(),
                "listed {row}, expected {message:?}"
            );
            self.compare_author(who, message.author, row)?;
            learned.push((index, listed_id));
        }
        self.model.tickets[n].learn(learned);
        Ok(())
    }

    /// The history `who` sees: every event for staff, all but notes' for customers.
    async fn history(&mut self, who: Who, n: usize) -> Checked {
        let path = format!("/tickets/{}/events?limit=1000", self.ticket_id(n));
        let response = self.app.get_as(self.actor(who), &path).await;
        let Some(ticket) = self.model.visible(who, n) else {
            return problem(response, &[(404, "ticket_not_found")]).await;
        };
        let body = json(response, 200).await?;
        let learned = self
            .compare_history(who, ticket, array(&body)?)
            .map_err(|e| format!("{who:?}'s history: {e}; got {body}"))?;
        self.model.tickets[n].learn(learned);
        Ok(())
    }

    /// Compares each write's events as a set (the contract orders writes, not the
    /// events of one write); event ids grow throughout. Returns the message ids learned.
    fn compare_history(
        &self,
        who: Who,
        ticket: &Ticket,
        rows: &[Value],
    ) -> Checked<Vec<(usize, i64)>> {
        let mut rows = rows.iter();
        let mut last_id = 0;
        let mut learned = Vec::new();
        for write in &ticket.history {
            let events: Vec<&Event> = write
                .events
                .iter()
                .filter(|e| who.is_staff() || !ticket.is_internal(e))
                .collect();
            let group: Vec<&Value> = rows.by_ref().take(events.len()).collect();
            ensure!(
                group.len() == events.len(),
                "it ends before {:?} of {:?}",
                write.events,
                write.actor
            );
            for row in &group {
                let event_id = id(row)?;
                ensure!(event_id > last_id, "event ids do not grow at {row}");
                last_id = event_id;
                ensure!(
                    row["ticket_id"] == ticket.id
                        && row["actor"]["id"] == self.actor(write.actor).id
                        && row["actor"]["username"].is_string(),
                    "{row} is not an event of ticket {} by {:?}",
                    ticket.id,
                    write.actor
                );
            }
            for event in events {
                let kind = ticket.event_type(event);
                let row = group
                    .iter()
                    .find(|row| row["type"] == kind)
                    .ok_or_else(|| format!("no {kind} among {group:?}, expected {event:?}"))?;
                let data = match event {
                    Event::Created => json!({
                        "topic": ticket.topic, "status": "pending", "priority": "normal",
                    }),
                    Event::Posted(n) => {
                        let message = &ticket.messages[*n];
                        let message_id = match message.id {
                            Some(known) => known,
                            None => {
                                let told = row["data"]["message_id"]
                                    .as_i64()
                                    .ok_or_else(|| format!("no message_id in {row}"))?;
                                learned.push((*n, told));
                                told
                            }
                        };
                        if message.is_note() {
                            json!({ "message_id": message_id })
                        } else {
                            json!({ "message_id": message_id, "type": message.kind })
                        }
                    }
                    Event::Status { from, to } => {
                        json!({ "from": from.as_str(), "to": to.as_str() })
                    }
                    Event::Priority { from, to } => {
                        json!({ "from": from.as_str(), "to": to.as_str() })
                    }
                    Event::Assigned { from, to } => {
                        json!({ "from": self.assignee_json(*from), "to": self.assignee_json(*to) })
                    }
                };
                ensure!(
                    row["data"] == data,
                    "{row}: expected data {data} for {event:?}"
                );
            }
        }
        let extra: Vec<&Value> = rows.collect();
        ensure!(extra.is_empty(), "unexpected events {extra:?}");
        Ok(learned)
    }

    /// Every field the model knows: id, status, priority, assignee, version, author.
    fn compare_ticket(&self, who: Who, ticket: &Ticket, row: &Value) -> Checked {
        let assignee_ok = match ticket.assignee {
            None => row.get("assignee") == Some(&Value::Null),
            Some(staff) => {
                row["assignee"]["id"] == self.staff_id(staff)
                    && row["assignee"]["username"].is_string()
            }
        };
        ensure!(
            id(row)? == ticket.id
                && row["status"] == ticket.status.as_str()
                && row["priority"] == ticket.priority.as_str()
                && assignee_ok
                && row["version"] == ticket.version,
            "{who:?} sees {row}, expected ticket {} {:?}, {:?}, assigned to {:?}, version {}",
            ticket.id,
            ticket.status,
            ticket.priority,
            ticket.assignee,
            ticket.version
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

    /// The data as stored agrees with the model (tickets, their statuses, messages and
    /// events, notes included), and so does each ticket as each actor who may see it
    /// sees it: the ticket, its messages and its history. The customer who may not gets
    /// `404` for one of the three, in turn.
    async fn compare_final_state(&mut self) -> Checked {
        let stored = self.stored().await?;
        let expected: Vec<(i64, String, i64, i64)> = self
            .model
            .tickets
            .iter()
            .map(|t| {
                let events: usize = t.history.iter().map(|w| w.events.len()).sum();
                (
                    t.id,
                    t.status.as_str().to_owned(),
                    t.messages.len() as i64,
                    events as i64,
                )
            })
            .collect();
        ensure!(
            stored == expected,
            "stored (id, status, messages, events): {stored:?}, expected {expected:?}"
        );
        for n in 0..self.model.tickets.len() {
            for who in [Who::A, Who::B, Who::S] {
                let seen = async {
                    if self.model.visible(who, n).is_some() {
                        self.get(who, n).await?;
                        self.messages(who, n).await?;
                        self.history(who, n).await
                    } else {
                        match n % 3 {
                            0 => self.get(who, n).await,
                            1 => self.messages(who, n).await,
                            _ => self.history(who, n).await,
                        }
                    }
                };
                seen.await
                    .map_err(|e| format!("{who:?} looking at ticket #{n}: {e}"))?;
            }
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

    /// The case's tickets as stored, oldest first: id, status, and how many messages
    /// and events each has.
    async fn stored(&self) -> Checked<Vec<(i64, String, i64, i64)>> {
        let authors: Vec<i64> = self.actors.iter().map(|a| a.id).collect();
        let client = self.app.db.pool().get().await.map_err(|e| e.to_string())?;
        let rows = client
            .query(
                "SELECT t.id, t.status::text, \
                   (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id), \
                   (SELECT count(*) FROM ticket_events e WHERE e.ticket_id = t.id) \
                 FROM tickets t WHERE t.author_id = ANY ($1) ORDER BY t.id",
                &[&authors],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect())
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

/// A ticket with `status` and `ETag: "<version>"`, or why not.
async fn ticket_json(response: Response, status: u16) -> Checked<Value> {
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ticket = json(response, status).await?;
    let expected = format!("\"{}\"", ticket["version"]);
    ensure!(
        etag.as_deref() == Some(expected.as_str()),
        "ETag {etag:?}, expected {expected}: {ticket}"
    );
    Ok(ticket)
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
