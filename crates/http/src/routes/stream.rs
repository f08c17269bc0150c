//! `GET /events`: the live stream of ticket events (Server-Sent Events).
//!
//! A stream first sends what the client missed, when it resumes (`Last-Event-ID`),
//! read from the event log up to the tail's horizon; then the live events after it,
//! from the process's tail ([`postgres_adapter::EventTail`]), which every replica keeps
//! for itself from the same table. Each event goes out once, in id order; what the
//! caller may not see is left out (the domain's `Viewer::may_see`).
//!
//! A stream ends — and the client reconnects with `Last-Event-ID`, losing nothing —
//! when the client reads too slowly (its buffer stays full for `send_timeout_secs`, or
//! the tail's buffer overtakes it), when the service drains, and within
//! `recheck_secs` of its user's deactivation or change of role.
//!
//! A live event reaches every open stream that may show it: every staff member's, and
//! its ticket's author's (see [`postgres_adapter::EventTail::subscribe`]), not every
//! other customer's. What a stream does per event is kept to deciding whether its
//! caller may see it and queueing the event's shared frame ([`crate::sse`]); everything
//! else a stream waits on is set up once per stream. And a stream that has just written
//! rests before it writes again ([`Pace`]): an event that comes during the rest waits
//! for its end and goes out with all that came meanwhile, so that under a flow of events
//! each open stream writes once per rest instead of once per event. The rest is
//! `events.coalesce_ms` after a write of one event and grows with the events a write
//! carried, up to [`MAX_REST_FACTOR`] times it: a stream that gets a dozen events per
//! write (a staff member's, under load) writes ten times a second instead of fifty, each
//! write with all of them, while a stream that gets an event now and then (a customer's;
//! any stream of a quiet service) sends each at once. The rest costs a timer only when
//! an event comes during it: a stream whose events are further apart than its rest wakes
//! once per event.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderName;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpRequest, HttpResponse};
use domain::feed::{FeedFilter, FeedStart};
use domain::{Caller, EventId, RepositoryErrorKind, TicketId};
use postgres_adapter::Subscription;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorKind};
use crate::metrics::OpenStream;
use crate::openapi::params::StreamParams;
use crate::openapi::responses::{
    BadRequest, InternalServerError, NotFound, ServiceUnavailable, Unauthorized,
};
use crate::sse::{self, EventStreamBody, LiveEvent};
use crate::state::AppState;

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// How long a new stream waits for a tail that has not yet found the log's end (just
/// after the process started, or while PostgreSQL is away).
const TAIL_WAIT: Duration = Duration::from_secs(3);
/// Events read from the log at once while catching up.
const CATCH_UP_PAGE: u16 = 500;
/// The longest rest, in `events.coalesce_ms`: with the default 20 ms, a stream under a
/// flow of events writes ten times a second, which an agent watching a console cannot
/// tell from at once, and the service saves four writes in five per busy stream.
const MAX_REST_FACTOR: u32 = 5;

/// How long a stream rests after a write that carried `events` events (see the module).
fn rest_after(events: usize, coalesce: Duration) -> Duration {
    let factor = u32::try_from(events)
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_REST_FACTOR);
    coalesce * factor
}

/// When a stream may write again (see the module). The stream keeps listening while it
/// rests: the first event of a rest wakes it, and it then sleeps until the rest is over;
/// resting only when an event comes saves a stream whose events come one at a time a
/// timer and a second wake per event.
#[derive(Debug, Clone, Copy)]
struct Pace {
    coalesce: Duration,
    /// The end of the rest after the last write; `None` before any write, and with
    /// `events.coalesce_ms` at 0.
    resting_until: Option<Instant>,
}

impl Pace {
    fn new(coalesce: Duration) -> Self {
        Self {
            coalesce,
            resting_until: None,
        }
    }

    /// Until when an event that has come at `now` waits: `None` when it may go at once.
    fn hold_until(&self, now: Instant) -> Option<Instant> {
        self.resting_until.filter(|until| now < *until)
    }

    /// The stream has taken `events` events at `now` (and written those it may show).
    fn wrote(&mut self, now: Instant, events: usize) {
        self.resting_until =
            (!self.coalesce.is_zero()).then(|| now + rest_after(events, self.coalesce));
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct StreamQuery {
    ticket_id: Option<String>,
    last_event_id: Option<String>,
}

fn invalid(detail: &'static str) -> ApiError {
    ApiError::new(ErrorKind::InvalidQuery, detail)
}

/// The event id to resume after: the `Last-Event-ID` header, else `?last_event_id=`. `0`
/// resumes from the log's beginning.
fn resume_point(req: &HttpRequest, query: &StreamQuery) -> Result<FeedStart, ApiError> {
    let header = req.headers().get(LAST_EVENT_ID);
    let raw = match header {
        Some(value) => Some(value.to_str().map_err(|_| {
            invalid("The header `Last-Event-ID` must be an event id (a whole number).")
        })?),
        None => query.last_event_id.as_deref(),
    };
    let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(FeedStart::Now);
    };
    if raw == "0" {
        return Ok(FeedStart::FromStart);
    }
    EventId::parse(raw)
        .map(FeedStart::After)
        .ok_or_else(|| invalid("`Last-Event-ID` must be an event id (a whole number)."))
}

/// Live events
///
/// A stream of `text/event-stream`: each event as `id: <event id>`, `event: <type>` and
/// `data: <the event as in the history>`. Customers receive their own tickets' events
/// and never `note.created`; staff receive all. `?ticket_id=` keeps one ticket's events
/// (`404` if the caller may not see it). With `Last-Event-ID` (header, or
/// `?last_event_id=`; `0` for the beginning) the stream first sends every event after it
/// that the caller may see, then live ones, with no gap and no duplicate; without it,
/// the events written from now on. A `: keep-alive` comment comes at least every 15
/// seconds. The stream ends when the service drains, within 30 seconds of the user's
/// deactivation or change of role, and when the client reads too slowly: reconnect with
/// `Last-Event-ID`.
#[utoipa::path(
    get,
    path = "/events",
    operation_id = "event_stream",
    tag = "tickets",
    params(StreamParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The stream (Server-Sent Events).",
            content_type = "text/event-stream", body = String,
            example = json!("id: 981\nevent: ticket.status_changed\ndata: {\"id\":981,\"ticket_id\":10,\"type\":\"ticket.status_changed\",\"created_at\":\"2026-11-28T11:14:10.516402Z\",\"actor\":{\"id\":4,\"username\":\"bob\"},\"data\":{\"from\":\"pending\",\"to\":\"resolved\"}}\n\n")),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = InternalServerError),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<StreamQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            ApiError::new(
                ErrorKind::InvalidQuery,
                format!("The query string is invalid: {e}."),
            )
        })?;
    let ticket = query
        .ticket_id
        .as_deref()
        .map(|raw| {
            TicketId::parse(raw.trim())
                .ok_or_else(|| invalid("`ticket_id` must be a ticket id (a positive integer)."))
        })
        .transpose()?;
    let start = resume_point(&req, &query)?;
    let filter = state.tickets.feed_filter(caller, ticket).await?;
    if state.draining.is_draining() {
        return Err(ApiError::shutting_down());
    }

    // The horizon comes with the subscription: whatever comes after it is in the
    // receiver. A customer's stream receives only the events of the customer's tickets.
    let (live, horizon) = state.feed.subscribe(filter.only_author());
    let horizon = match horizon {
        Some(known) => known,
        None => state.feed.ready(TAIL_WAIT).await.ok_or_else(|| {
            ApiError::unavailable(std::io::Error::other("the event tail is not connected"))
        })?,
    };
    let settings = &state.events;
    let (sender, receiver) = mpsc::channel(settings.stream_buffer.max(1));
    let stream = Stream {
        state: state.clone().into_inner(),
        caller,
        filter,
        sender,
        send_timeout: Duration::from_secs(settings.send_timeout_secs.max(1)),
        recheck: Duration::from_secs(settings.recheck_secs.max(1)),
        coalesce: Duration::from_millis(settings.coalesce_ms),
        _open: state.metrics.sse_stream_opened(),
    };
    tokio::spawn(stream.run(start, horizon, live));

    let keep_alive = Duration::from_secs(settings.keep_alive_secs.max(1));
    Ok(EventStreamBody::new(receiver, keep_alive).respond())
}

/// The frames a stream passes on at one wake, joined into one chunk of the response
/// body. Under a flow of events, a staff member's stream takes several at each wake
/// (`events.coalesce_ms`); one chunk each, they cost the body a queue slot, a poll and
/// a copy into the connection's buffer apiece. A chunk holds at most [`Batch::FRAMES`]
/// frames, so that the body's queue (`events.stream_buffer` chunks) still bounds what a
/// slow client holds up. Kept by the stream from wake to wake: the frames are gathered
/// (shared, not copied) in a list that keeps its room, and joined once, into a buffer
/// of their exact size; joining them as they came grew the buffer by doubling, several
/// allocations per wake instead of one.
#[derive(Default)]
struct Batch {
    frames: Vec<Bytes>,
}

impl Batch {
    const FRAMES: usize = 32;

    fn add(&mut self, frame: &Bytes) {
        self.frames.push(frame.clone());
    }

    fn is_full(&self) -> bool {
        self.frames.len() >= Self::FRAMES
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The chunk, and the batch emptied. One frame is sent as it is, shared with the
    /// other streams.
    fn take(&mut self) -> Bytes {
        let chunk = match self.frames.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            several => {
                let mut joined = BytesMut::with_capacity(several.iter().map(Bytes::len).sum());
                for frame in several {
                    joined.extend_from_slice(frame);
                }
                joined.freeze()
            }
        };
        self.frames.clear();
        chunk
    }
}

/// One open stream: the task that feeds its response body.
struct Stream {
    state: Arc<AppState>,
    caller: Caller,
    filter: FeedFilter,
    /// The frames of the response body.
    sender: mpsc::Sender<Bytes>,
    send_timeout: Duration,
    recheck: Duration,
    /// How long the stream rests after it woke for events, gathering those that come.
    coalesce: Duration,
    /// Counted in `sse_streams_open` for as long as the task feeding the stream lives.
    _open: OpenStream,
}

/// Why a stream ends; logged at debug level.
#[derive(Debug)]
enum End {
    ClientGone,
    ClientTooSlow,
    Draining,
    CallerChanged,
    TailClosed,
    Failed(String),
}

impl Stream {
    async fn run(self, start: FeedStart, horizon: i64, live: Subscription<LiveEvent>) {
        match self.serve(start, horizon, live).await {
            End::Failed(reason) => {
                tracing::warn!(user = %self.caller.id, reason, "event stream failed");
            }
            end => tracing::debug!(user = %self.caller.id, reason = ?end, "event stream ended"),
        }
    }

    async fn serve(
        &self,
        start: FeedStart,
        horizon: i64,
        mut live: Subscription<LiveEvent>,
    ) -> End {
        let mut last_sent = match start {
            FeedStart::After(id) => id.get(),
            FeedStart::FromStart => 0,
            FeedStart::Now => horizon,
        };
        if last_sent < horizon {
            match self.catch_up(last_sent, horizon).await {
                Ok(()) => last_sent = horizon,
                Err(end) => return end,
            }
        }
        let mut recheck = tokio::time::interval(self.recheck);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.tick().await;
        // Made once per stream, not at every turn of the loop (every event): making
        // one registers it with a `Notify`, under that `Notify`'s lock, and the drain's
        // is shared by every stream.
        let draining = self.state.draining.started();
        let client_gone = self.sender.closed();
        let rest = tokio::time::sleep(Duration::ZERO);
        let mut pace = Pace::new(self.coalesce);
        // An event that came during the rest, waiting for its end.
        let mut held = None;
        let mut batch = Batch::default();
        tokio::pin!(draining, client_gone, rest);
        loop {
            let received = tokio::select! {
                biased;
                () = &mut draining => return End::Draining,
                () = &mut client_gone => return End::ClientGone,
                _ = recheck.tick() => {
                    if let Err(end) = self.still_the_same_caller().await {
                        return end;
                    }
                    continue;
                }
                () = &mut rest, if held.is_some() => match held.take() {
                    Some(received) => received,
                    None => continue,
                },
                received = live.recv(), if held.is_none() => {
                    // A lagging receiver ends the stream at once, rest or not.
                    match pace.hold_until(Instant::now()) {
                        Some(until) if received.is_ok() => {
                            rest.as_mut().reset(until);
                            held = Some(received);
                            continue;
                        }
                        _ => received,
                    }
                }
            };
            match self
                .pass_on_all(received, &mut live, &mut last_sent, &mut batch)
                .await
            {
                Ok(taken) => pace.wrote(Instant::now(), taken),
                Err(end) => return end,
            }
        }
    }

    /// Adds `event`'s frame to `batch` if the event is new and the caller may see it;
    /// sends the batch once it is full.
    async fn pass_on(
        &self,
        event: Arc<LiveEvent>,
        last_sent: &mut i64,
        batch: &mut Batch,
    ) -> Result<(), End> {
        let id = event.feed.event.id.get();
        if id <= *last_sent {
            return Ok(());
        }
        *last_sent = id;
        if !self.filter.admits(&event.feed) {
            return Ok(());
        }
        batch.add(&event.frame().map_err(End::Failed)?);
        if batch.is_full() {
            self.send(Ok(batch.take())).await?;
        }
        Ok(())
    }

    /// [`Self::pass_on`] for the event `received`, then for every event the tail holds
    /// for this stream now, without waiting for more; their frames go to the client
    /// together, as one chunk (or a few: see [`Batch`]). Returns how many events it
    /// took from the tail, sent or not.
    async fn pass_on_all(
        &self,
        received: Result<Arc<LiveEvent>, RecvError>,
        live: &mut Subscription<LiveEvent>,
        last_sent: &mut i64,
        batch: &mut Batch,
    ) -> Result<usize, End> {
        let first = received.map_err(|e| match e {
            RecvError::Lagged(_) => End::ClientTooSlow,
            RecvError::Closed => End::TailClosed,
        })?;
        self.pass_on(first, last_sent, batch).await?;
        let mut taken = 1;
        loop {
            match live.try_recv() {
                Ok(event) => self.pass_on(event, last_sent, batch).await?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => return Err(End::ClientTooSlow),
                Err(TryRecvError::Closed) => return Err(End::TailClosed),
            }
            taken += 1;
        }
        if !batch.is_empty() {
            self.send(Ok(batch.take())).await?;
        }
        Ok(taken)
    }

    /// Sends what the log holds after `after` up to `horizon`, page by page.
    async fn catch_up(&self, mut after: i64, horizon: i64) -> Result<(), End> {
        let Some(up_to) = EventId::new(horizon) else {
            return Ok(());
        };
        loop {
            let from = EventId::new(after);
            let page = self
                .state
                .tickets
                .missed_events(self.filter, from, up_to, CATCH_UP_PAGE)
                .await
                .map_err(|e| match e.kind() {
                    // The adapter confirms the stream's caller with every read.
                    RepositoryErrorKind::CallerChanged => End::CallerChanged,
                    RepositoryErrorKind::Unavailable | RepositoryErrorKind::Unexpected => {
                        End::Failed(crate::startup::error_chain(&e))
                    }
                })?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.event.id.get();
            // Read for this stream alone: framed here.
            for event in &page {
                self.send(sse::frame(event)).await?;
            }
            if page.len() < usize::from(CATCH_UP_PAGE) {
                return Ok(());
            }
        }
    }

    /// Queues one event's frame for the client, waiting at most `send_timeout` for room.
    async fn send(&self, frame: Result<Bytes, String>) -> Result<(), End> {
        let frame = frame.map_err(End::Failed)?;
        // A client that keeps up has room: no timer is set for it.
        let frame = match self.sender.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(End::ClientGone),
            Err(TrySendError::Full(frame)) => frame,
        };
        match tokio::time::timeout(self.send_timeout, self.sender.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientGone),
            Err(_) => Err(End::ClientTooSlow),
        }
    }

    /// The contract ends a stream within 30 s of its user's deactivation or demotion.
    async fn still_the_same_caller(&self) -> Result<(), End> {
        match self.state.users.authenticate(self.caller.id).await {
            Ok(Some(now)) if now.role == self.caller.role => Ok(()),
            Ok(Some(_) | None) => Err(End::CallerChanged),
            // The database is away: the tail is too, and the stream waits for both.
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: usize) -> Bytes {
        Bytes::from(format!("id: {id}\nevent: x\ndata: {{}}\n\n"))
    }

    #[test]
    fn a_single_frame_is_sent_as_it_is_and_several_are_joined_in_order() {
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        let one = frame(1);
        batch.add(&one);
        let sent = batch.take();
        // The shared buffer itself, not a copy.
        assert_eq!(sent.as_ptr(), one.as_ptr());
        assert!(batch.is_empty());

        for id in 2..=4 {
            batch.add(&frame(id));
        }
        let joined = batch.take();
        assert_eq!(joined, [frame(2), frame(3), frame(4)].concat());
        assert!(batch.is_empty());
        // The list keeps its room for the next wake.
        assert!(batch.frames.capacity() >= 3);
        assert_eq!(batch.take(), Bytes::new());
    }

    #[test]
    fn the_rest_grows_with_the_events_a_wake_found_up_to_its_limit() {
        let coalesce = Duration::from_millis(20);
        assert_eq!(rest_after(0, coalesce), coalesce);
        assert_eq!(rest_after(1, coalesce), coalesce);
        assert_eq!(rest_after(3, coalesce), Duration::from_millis(60));
        let longest = coalesce * MAX_REST_FACTOR;
        assert_eq!(rest_after(MAX_REST_FACTOR as usize, coalesce), longest);
        assert_eq!(rest_after(1_000, coalesce), longest);
        assert_eq!(rest_after(usize::MAX, coalesce), longest);
    }

    #[test]
    fn a_stream_rests_after_a_write_and_only_an_event_during_the_rest_waits() {
        let coalesce = Duration::from_millis(20);
        let start = Instant::now();
        let mut pace = Pace::new(coalesce);
        assert_eq!(pace.hold_until(start), None, "the first event goes at once");

        pace.wrote(start, 1);
        let rest_end = start + coalesce;
        let during = start + Duration::from_millis(5);
        assert_eq!(pace.hold_until(during), Some(rest_end));
        assert_eq!(
            pace.hold_until(rest_end),
            None,
            "the rest is over at its end"
        );
        assert_eq!(pace.hold_until(start + Duration::from_millis(400)), None);

        // A write of many events rests longer, up to its limit.
        pace.wrote(rest_end, 70);
        let longest = rest_end + coalesce * MAX_REST_FACTOR;
        assert_eq!(pace.hold_until(rest_end), Some(longest));
        assert_eq!(pace.hold_until(longest), None);
    }

    #[test]
    fn without_coalescing_a_stream_never_rests() {
        let start = Instant::now();
        let mut pace = Pace::new(Duration::ZERO);
        pace.wrote(start, 1_000);
        assert_eq!(pace.hold_until(start), None);
    }

    #[test]
    fn a_batch_is_full_at_its_frame_limit() {
        let mut batch = Batch::default();
        for id in 0..Batch::FRAMES {
            assert!(!batch.is_full(), "full after {id} frames");
            batch.add(&frame(id));
        }
        assert!(batch.is_full());
        let expected: Vec<u8> = (0..Batch::FRAMES)
            .flat_map(|id| frame(id).to_vec())
            .collect();
        assert_eq!(batch.take(), expected);
        assert!(!batch.is_full());
    }
}
