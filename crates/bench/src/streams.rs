//! Live event streams (`GET /events`, Server-Sent Events) read by the load generator:
//! one keep-alive connection and one task per stream, each reading its body as it
//! comes and cutting it into events (`id:`, `event:`, `data:` lines, a blank line
//! ending each). While timing, each task notes when the event of each message arrived
//! (the `message_id` of its data); otherwise it only counts, so that reading a thousand
//! streams costs the load generator as little as it can.
//!
//! The streams are read on a thread of their own, not on the event loop of the mixed
//! workload's connections: an agent's console is not the client that sends the
//! requests, and on one event loop the reading of a thousand streams takes turns with
//! the 32 connections, whose waits the workload's throughput then counts as the
//! server's. (Not measured apart: the change came with others.) And a
//! stream is closed as a client that crashes closes it (`SO_LINGER` 0: a reset), which
//! the server hears of at once; after an orderly close it hears of it only at the
//! stream's next keep-alive but one, up to 30 s later.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::client::Client;
use crate::Error;

/// Streams opening at once: each opening authenticates (a statement), and a request
/// waits for a pooled connection only so long.
pub const OPENING_AT_ONCE: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Count the events.
    Count,
    /// Also note when each message's event arrived.
    Time,
}

/// What one stream received until it was closed.
#[derive(Default)]
pub struct StreamLog {
    pub events: u64,
    /// `(message_id, arrival)` of each message's event, when timing.
    pub arrivals: Vec<(i64, Instant)>,
    /// Why the stream ended before it was closed, if it did.
    pub ended: Option<String>,
}

/// Open streams, each read by its own task on the streams' thread.
pub struct Streams {
    readers: Vec<JoinHandle<StreamLog>>,
    stop: watch::Sender<bool>,
    /// Events received by all streams so far.
    received: Arc<AtomicU64>,
    /// Declared last: dropped after the readers have been aborted.
    _thread: ReaderThread,
}

/// A thread running an event loop of its own for the streams' tasks; it ends when
/// dropped (the tasks still on it are dropped with it).
struct ReaderThread {
    handle: tokio::runtime::Handle,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl ReaderThread {
    fn start() -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (shutdown, wait) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("event-streams".to_owned())
            .spawn(move || {
                let _ = runtime.block_on(wait);
            })?;
        Ok(Self {
            handle,
            _shutdown: shutdown,
        })
    }
}

impl Streams {
    /// Opens `count` streams, the `i`-th with `tokens[i % tokens.len()]`, and returns
    /// once every one has answered 200.
    pub async fn open(
        addr: SocketAddr,
        tokens: &[HeaderValue],
        count: usize,
        reading: Reading,
    ) -> Result<Self, Error> {
        if tokens.is_empty() {
            return Err("no token to open event streams with".into());
        }
        let (stop, stopped) = watch::channel(false);
        let received = Arc::new(AtomicU64::new(0));
        let thread = ReaderThread::start()?;
        let on_thread = thread.handle.clone();
        let mut streams = Self {
            readers: Vec::with_capacity(count),
            stop,
            received: received.clone(),
            _thread: thread,
        };
        let mut next = 0;
        while next < count {
            let mut opening = JoinSet::new();
            for index in next..count.min(next + OPENING_AT_ONCE) {
                opening.spawn_on(
                    connect(addr, tokens[index % tokens.len()].clone()),
                    &on_thread,
                );
            }
            next = count.min(next + OPENING_AT_ONCE);
            while let Some(opened) = opening.join_next().await {
                // A failure drops `streams`, whose readers then stop with the rest.
                let stream = opened??;
                streams.readers.push(on_thread.spawn(read(
                    stream,
                    stopped.clone(),
                    reading,
                    received.clone(),
                )));
            }
        }
        Ok(streams)
    }

    pub fn len(&self) -> usize {
        self.readers.len()
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Closes every stream (the connections with them) and returns what each received.
    pub async fn close(mut self) -> Result<Vec<StreamLog>, Error> {
        let _ = self.stop.send(true);
        let mut logs = Vec::with_capacity(self.readers.len());
        for reader in std::mem::take(&mut self.readers) {
            logs.push(reader.await?);
        }
        Ok(logs)
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// One stream whose response head has come.
struct OpenStream {
    body: Incoming,
    /// Kept so that hyper keeps the connection for the body.
    _sender: SendRequest<Empty<Bytes>>,
    driver: JoinHandle<()>,
}

async fn connect(addr: SocketAddr, token: HeaderValue) -> Result<OpenStream, Error> {
    let socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    // Closed with a reset (see the module's comment).
    socket.set_zero_linger()?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(socket)).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get("/events")
        .header(HOST, HeaderValue::from_str(&addr.to_string())?)
        .header(AUTHORIZATION, token)
        .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
        .body(Empty::new())?;
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(e) => {
            driver.abort();
            return Err(e.into());
        }
    };
    if response.status() != StatusCode::OK {
        driver.abort();
        return Err(format!("GET /events answered {}", response.status()).into());
    }
    Ok(OpenStream {
        body: response.into_body(),
        _sender: sender,
        driver,
    })
}

async fn read(
    mut stream: OpenStream,
    mut stopped: watch::Receiver<bool>,
    reading: Reading,
    received: Arc<AtomicU64>,
) -> StreamLog {
    let mut parser = EventParser::new(reading == Reading::Time);
    let mut log = StreamLog::default();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            frame = stream.body.frame() => match frame {
                Some(Ok(frame)) => {
                    // Taken before parsing: the moment the bytes were read.
                    let arrived = Instant::now();
                    let Ok(data) = frame.into_data() else { continue };
                    parser.feed(&data, |event| {
                        log.events += 1;
                        received.fetch_add(1, Ordering::Relaxed);
                        if let Some(message) = event.and_then(message_id) {
                            log.arrivals.push((message, arrived));
                        }
                    });
                }
                Some(Err(e)) => {
                    log.ended = Some(format!("transport: {e}"));
                    break;
                }
                None => {
                    log.ended = Some("closed by the server".to_owned());
                    break;
                }
            },
        }
    }
    stream.driver.abort();
    log
}

/// The `message_id` of an event's data (`message.created`, `note.created`).
fn message_id(data: &[u8]) -> Option<i64> {
    let event: serde_json::Value = serde_json::from_slice(data).ok()?;
    event.get("data")?.get("message_id")?.as_i64()
}

/// Cuts a stream's bytes into events, wherever reads cut them.
struct EventParser {
    line: Vec<u8>,
    /// The event's `data`, when kept.
    data: Vec<u8>,
    keep_data: bool,
    /// A `data` field came since the last event.
    has_data: bool,
}

impl EventParser {
    fn new(keep_data: bool) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            keep_data,
            has_data: false,
        }
    }

    /// Calls `event` for each event completed by `bytes`, with its data when kept.
    fn feed(&mut self, mut bytes: &[u8], mut event: impl FnMut(Option<&[u8]>)) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            self.end_line(&mut event);
            self.line.clear();
        }
        self.line.extend_from_slice(bytes);
    }

    fn end_line(&mut self, event: &mut impl FnMut(Option<&[u8]>)) {
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        if line.is_empty() {
            if self.has_data {
                event(self.keep_data.then_some(self.data.as_slice()));
            }
            self.data.clear();
            self.has_data = false;
            return;
        }
        // `field: value`, or `: comment` (the keep-alives).
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return,
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.keep_data {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
            }
            self.has_data = true;
        }
    }
}

/// The server's `sse_streams_open` gauge (`GET /metrics`).
pub async fn open_on_server(addr: SocketAddr) -> Result<u64, Error> {
    let mut client = Client::connect(addr).await?;
    let reply = client
        .send(hyper::Method::GET, "/metrics", None, None)
        .await?;
    if !reply.status.is_success() {
        return Err(format!("GET /metrics answered {}", reply.status).into());
    }
    gauge(&String::from_utf8_lossy(&reply.body), "sse_streams_open")
        .ok_or_else(|| "no sse_streams_open in GET /metrics".into())
}

/// Waits until the server counts `expected` open streams, at most `patience`; returns
/// how long that took.
pub async fn until_open_on_server(
    addr: SocketAddr,
    expected: u64,
    patience: Duration,
) -> Result<Duration, Error> {
    let started = Instant::now();
    loop {
        let open = open_on_server(addr).await?;
        if open == expected {
            return Ok(started.elapsed());
        }
        if started.elapsed() > patience {
            return Err(format!(
                "the server still counts {open} open event streams after {} s, not {expected}",
                patience.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of an unlabelled gauge in Prometheus' text format.
fn gauge(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\n\n\
        id: 7\nevent: message.created\ndata: {\"id\":7,\"data\":{\"message_id\":41,\"type\":\"response\"}}\n\n\
        id: 8\r\nevent: ticket.created\r\ndata: {\"id\":8,\"data\":{\"topic\":\"x\"}}\r\n\r\n";

    fn events(keep: bool, piece: usize) -> Vec<Option<Vec<u8>>> {
        let mut parser = EventParser::new(keep);
        let mut seen = Vec::new();
        for chunk in STREAM.as_bytes().chunks(piece) {
            parser.feed(chunk, |data| seen.push(data.map(<[u8]>::to_vec)));
        }
        seen
    }

    #[test]
    fn cuts_events_wherever_reads_cut_them() {
        for piece in [1, 2, 3, 10, STREAM.len()] {
            let seen = events(true, piece);
            assert_eq!(seen.len(), 2, "piece {piece}");
            let ids: Vec<_> = seen
                .iter()
                .map(|data| data.as_deref().and_then(message_id))
                .collect();
            assert_eq!(ids, [Some(41), None], "piece {piece}");
        }
    }

    #[test]
    fn counting_keeps_no_data() {
        assert_eq!(events(false, 5), [None, None]);
    }

    #[test]
    fn reads_an_unlabelled_gauge() {
        let metrics = "# TYPE sse_streams_open gauge\nsse_streams_open 1000\n\
                       sse_streams_open_total 3\n";
        assert_eq!(gauge(metrics, "sse_streams_open"), Some(1000));
        assert_eq!(gauge(metrics, "missing"), None);
    }
}
