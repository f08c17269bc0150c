//! The wire of `GET /events` (Server-Sent Events): each event's frame, encoded once
//! however many streams send it, and the response body that writes one stream's frames
//! with keep-alive comments between them.
//!
//! Why not a ready-made SSE responder: one encodes every event for every stream that
//! sends it (the event to JSON, then the JSON to a frame). With 1,000 staff streams open,
//! that was 1,000 encodings of each event, and the mixed workload fell to 17-27% of its
//! throughput without streams. Here the process's event tail hands each event to every
//! stream as one [`LiveEvent`], whose frame the first stream to send it encodes and the
//! others share ([`bytes::Bytes`]: a clone is a reference count). The framing itself is
//! `russe`'s, the encoder of `actix-web-lab`'s SSE responder.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{
    CacheControl, CacheDirective, ContentEncoding, HeaderName, HeaderValue,
};
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use domain::feed::FeedEvent;
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

use crate::dto::EventResponse;

const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// An event as the tail hands it to every stream: the event, and its frame once a
/// stream has needed it.
#[derive(Debug)]
pub struct LiveEvent {
    pub feed: FeedEvent,
    /// Encoded lazily: an event that no stream admits costs no encoding.
    frame: OnceLock<Result<Bytes, String>>,
}

impl From<FeedEvent> for LiveEvent {
    fn from(feed: FeedEvent) -> Self {
        Self {
            feed,
            frame: OnceLock::new(),
        }
    }
}

impl LiveEvent {
    /// The event's frame, encoded by the first caller and shared with the others.
    ///
    /// # Errors
    /// When the event cannot be framed (see [`frame`]); every caller gets the same.
    pub fn frame(&self) -> Result<Bytes, String> {
        self.frame.get_or_init(|| frame(&self.feed)).clone()
    }
}

/// One event's frame: `id: <event id>`, `event: <type>` and `data: <the event as the
/// history shows it>`, then the blank line that ends it.
///
/// # Errors
/// When the event does not serialize, or a field holds a line break (neither happens
/// with the event types there are; the stream then ends rather than send a bad frame).
pub fn frame(event: &FeedEvent) -> Result<Bytes, String> {
    let data = serde_json::to_string(&EventResponse::from(event.event.clone()))
        .map_err(|e| e.to_string())?;
    let message = russe::Message {
        data: data.into(),
        event: Some(event.event.data.type_name().into()),
        id: Some(event.event.id.get().to_string().into()),
        retry: None,
    };
    russe::Event::Message(message)
        .into_bytestring()
        .map(|text| text.into_bytes())
        .map_err(|e| e.to_string())
}

/// The body of one stream: the frames its task queues, in order, and a `: keep-alive`
/// comment every `keep_alive` (the first at once, so that the client sees the stream
/// open before any event). It ends when the task drops its sender.
pub struct EventStreamBody {
    frames: mpsc::Receiver<Bytes>,
    keep_alive: Interval,
}

impl EventStreamBody {
    pub fn new(frames: mpsc::Receiver<Bytes>, keep_alive: Duration) -> Self {
        let mut keep_alive = tokio::time::interval(keep_alive);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { frames, keep_alive }
    }

    /// The `200` response: `text/event-stream`, neither cached nor compressed
    /// (`Content-Encoding: identity` keeps compressors away, whose buffers would hold
    /// events back), and `X-Accel-Buffering: no` so that proxies (nginx) pass events on
    /// as they come.
    pub fn respond(self) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(ContentEncoding::Identity)
            .insert_header(CacheControl(vec![CacheDirective::NoCache]))
            .insert_header((X_ACCEL_BUFFERING, HeaderValue::from_static("no")))
            .body(self)
    }
}

impl MessageBody for EventStreamBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = this.frames.poll_recv(cx) {
            return Poll::Ready(frame.map(Ok));
        }
        if this.keep_alive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use domain::event::{EventData, TicketEvent};
    use domain::{EventId, MessageId, MessageType, TicketId, UserId};
    use time::OffsetDateTime;

    use super::*;

    fn event() -> FeedEvent {
        FeedEvent {
            event: TicketEvent {
                id: EventId::new(981).expect("positive"),
                ticket_id: TicketId::new(10).expect("positive"),
                created_at: OffsetDateTime::UNIX_EPOCH,
                actor: None,
                data: EventData::message_posted(
                    MessageId::new(5).expect("positive"),
                    MessageType::Response,
                ),
            },
            ticket_author: UserId::new(3).expect("positive"),
        }
    }

    #[test]
    fn a_frame_holds_the_id_the_type_and_the_history_object() {
        let event = event();
        let frame = frame(&event).expect("a frame");
        let data = serde_json::to_string(&EventResponse::from(event.event.clone()))
            .expect("the event serializes");
        assert_eq!(
            frame,
            format!("id: 981\nevent: message.created\ndata: {data}\n\n")
        );
    }

    #[test]
    fn a_live_event_is_encoded_once_and_its_frame_shared() {
        let live = LiveEvent::from(event());
        let first = live.frame().expect("a frame");
        let second = live.frame().expect("a frame");
        assert_eq!(first, frame(&live.feed).expect("a frame"));
        // The same buffer, not an equal copy: the second stream encoded nothing.
        assert_eq!(first.as_ptr(), second.as_ptr());
    }
}
