//! `GET /events`: the live stream (Server-Sent Events) — its format, who sees what,
//! resuming without gaps or duplicates, one ticket's stream, and when a stream ends (a
//! client too slow to read included).

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, header, send, spawn_app, spawn_app_with, Actor, TestApp};

/// How long a test waits for something that should come at once: generous, so that a
/// loaded machine does not fail it; the contract's own bound is not tested here.
const PATIENCE: Duration = Duration::from_secs(30);

/// One event as the stream framed it.
#[derive(Debug, Clone)]
struct Frame {
    id: i64,
    kind: String,
    data: Value,
}

/// An open stream, read frame by frame.
struct Stream {
    response: Response,
    pending: String,
}

impl Stream {
    async fn open(app: &TestApp, actor: &Actor, query: &str, last_event_id: Option<i64>) -> Self {
        Self::open_at(app, &app.address, actor, query, last_event_id).await
    }

    /// Opens the stream on the instance at `address`.
    async fn open_at(
        app: &TestApp,
        address: &str,
        actor: &Actor,
        query: &str,
        last_event_id: Option<i64>,
    ) -> Self {
        let mut request = app
            .client
            .get(format!("{address}/events{query}"))
            .bearer_auth(&actor.token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = send(request).await;
        assert_eq!(response.status(), 200, "the stream opens");
        assert!(
            header(response.headers(), "content-type").starts_with("text/event-stream"),
            "{:?}",
            response.headers()
        );
        assert_eq!(header(response.headers(), "x-accel-buffering"), "no");
        assert!(header(response.headers(), "cache-control").contains("no-cache"));
        Stream {
            response,
            pending: String::new(),
        }
    }

    /// The next event frame (comments skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<Frame> {
        self.next_raw().await.map(|(frame, _)| frame)
    }

    /// The next event frame, and its text as it came.
    async fn next_raw(&mut self) -> Option<(Frame, String)> {
        loop {
            while let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                if let Some(frame) = parse(&block) {
                    return Some((frame, block));
                }
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the stream sends within the patience")
                .ok()??;
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `n` frames.
    async fn take(&mut self, n: usize) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            frames.push(self.next().await.expect("the stream goes on"));
        }
        frames
    }

    /// Waits for the stream to end; panics if an event comes instead.
    async fn ended(mut self) {
        if let Some(frame) = self.next().await {
            panic!("the stream went on with {frame:?}");
        }
    }
}

fn parse(block: &str) -> Option<Frame> {
    let (mut id, mut kind, mut data) = (None, None, String::new());
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id: ") {
            id = value.parse().ok();
        } else if let Some(value) = line.strip_prefix("event: ") {
            kind = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data.push_str(value);
        }
    }
    Some(Frame {
        id: id?,
        kind: kind?,
        data: serde_json::from_str(&data).expect("data is JSON"),
    })
}

fn types(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(|f| f.kind.as_str()).collect()
}

#[tokio::test]
async fn a_write_reaches_an_open_stream_framed_as_the_history_shows_it() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let mut stream = Stream::open(&app, &staff, "", None).await;

    let ticket = app.open_ticket_id(&customer).await;
    let frames = stream.take(2).await;
    assert_eq!(types(&frames), ["ticket.created", "message.created"]);
    let history = app
        .get_json(&staff, &format!("/tickets/{ticket}/events"))
        .await;
    for (frame, event) in frames.iter().zip(history.as_array().expect("a list")) {
        assert_eq!(frame.data, *event, "the stream sends the history's object");
        assert_eq!(frame.id, event["id"].as_i64().expect("an id"));
    }
}

#[tokio::test]
async fn customers_get_their_own_tickets_events_without_notes_and_staff_get_all() {
    let app = spawn_app().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let staff = app.staff().await;
    let mut anns = Stream::open(&app, &ann, "", None).await;
    let mut staffs = Stream::open(&app, &staff, "", None).await;

    let foreign = app.open_ticket_id(&bob).await;
    let own = app.open_ticket_id(&ann).await;
    app.post_note_ok(&staff, own, "internal").await;
    app.post_message_ok(&staff, own, "an answer").await;

    let seen = anns.take(3).await;
    assert_eq!(
        types(&seen),
        ["ticket.created", "message.created", "message.created"]
    );
    assert!(seen.iter().all(|f| f.data["ticket_id"] == own), "{seen:?}");
    let all = staffs.take(6).await;
    assert_eq!(
        types(&all),
        [
            "ticket.created",
            "message.created",
            "ticket.created",
            "message.created",
            "note.created",
            "message.created"
        ]
    );
    assert_eq!(all[0].data["ticket_id"], foreign);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "in id order");
}

#[tokio::test]
async fn a_resumed_stream_sends_what_was_missed_then_live_events_once_each() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let ticket = app.open_ticket_id(&customer).await;
    let history = app
        .get_json(&staff, &format!("/tickets/{ticket}/events"))
        .await;
    let first = history[0]["id"].as_i64().expect("an id");

    // Missed while away: the first message, a response, a note and a status change.
    app.post_message_ok(&staff, ticket, "we are on it").await;
    app.post_note_ok(&staff, ticket, "check the logs").await;
    app.set_status_ok(&staff, ticket, "resolved").await;

    let mut resumed = Stream::open(&app, &customer, "", Some(first)).await;
    let missed = resumed.take(3).await;
    assert_eq!(
        types(&missed),
        [
            "message.created",
            "message.created",
            "ticket.status_changed"
        ]
    );
    app.set_status_ok(&staff, ticket, "pending").await;
    let live = resumed.next().await.expect("a live event");
    assert_eq!(live.kind, "ticket.status_changed");
    assert_eq!(
        live.data["data"],
        json!({"from": "resolved", "to": "pending"})
    );
    assert!(live.id > missed[2].id);

    // The query parameter does the same, and 0 is the beginning.
    let mut from_start = Stream::open(&app, &staff, "?last_event_id=0", None).await;
    let everything = from_start.take(6).await;
    assert_eq!(everything[0].kind, "ticket.created");
    assert_eq!(everything[3].kind, "note.created");
    assert_eq!(everything[5].id, live.id);
}

#[tokio::test]
async fn one_tickets_stream_and_its_visibility() {
    let app = spawn_app().await;
    let ann = app.customer().await;
    let bob = app.customer().await;
    let staff = app.staff().await;
    let wanted = app.open_ticket_id(&ann).await;
    let other = app.open_ticket_id(&ann).await;

    let mut stream = Stream::open(&app, &ann, &format!("?ticket_id={wanted}"), None).await;
    app.post_message_ok(&staff, other, "elsewhere").await;
    app.post_message_ok(&staff, wanted, "here").await;
    let frame = stream.next().await.expect("an event");
    assert_eq!(frame.data["ticket_id"], wanted);

    for (actor, query, status, code) in [
        (
            &bob,
            format!("?ticket_id={wanted}"),
            404,
            "ticket_not_found",
        ),
        (
            &ann,
            "?ticket_id=999999".to_owned(),
            404,
            "ticket_not_found",
        ),
        (&ann, "?ticket_id=abc".to_owned(), 400, "invalid_query"),
        (&ann, "?last_event_id=-1".to_owned(), 400, "invalid_query"),
    ] {
        let response = app.get_as(actor, &format!("/events{query}")).await;
        assert_problem(response, status, code).await;
    }
    let anonymous = send(app.request(Method::GET, "/events")).await;
    assert_problem(anonymous, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_stream_ends_when_its_user_is_deactivated_or_demoted() {
    let app = spawn_app_with(|settings| settings.events.recheck_secs = 1).await;
    let root = app.superuser().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let customers = Stream::open(&app, &customer, "", None).await;
    let staffs = Stream::open(&app, &staff, "", None).await;

    for (user, change) in [
        (&customer, json!({"is_active": false})),
        (&staff, json!({"is_staff": false})),
    ] {
        let path = format!("/users/{}", user.id);
        let response = app.send_as(&root, Method::PATCH, &path, &change).await;
        assert_eq!(response.status(), 200);
    }
    customers.ended().await;
    staffs.ended().await;
}

#[tokio::test]
async fn streams_end_when_the_service_drains() {
    let app = spawn_app_with(|settings| {
        settings.server.drain_secs = 2;
        settings.server.shutdown_timeout_secs = 10;
    })
    .await;
    let customer = app.customer().await;
    let stream = Stream::open(&app, &customer, "", None).await;
    app.request_stop(http_adapter::shutdown::StopRequest::Drain);
    stream.ended().await;
}

#[tokio::test]
async fn an_event_written_through_one_replica_reaches_streams_on_another() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    let replica = app.replica().await;
    let mut elsewhere = Stream::open_at(&app, &replica.address, &staff, "", None).await;

    let ticket = app.open_ticket_id(&customer).await;
    let frames = elsewhere.take(2).await;
    assert_eq!(types(&frames), ["ticket.created", "message.created"]);
    assert!(frames.iter().all(|f| f.data["ticket_id"] == ticket));
}

#[tokio::test]
async fn a_stream_is_neither_compressed_nor_held_back_when_the_client_accepts_compression() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let response = send(
        app.request_as(&staff, Method::GET, "/events")
            .header("Accept-Encoding", "gzip, br, zstd"),
    )
    .await;
    assert_eq!(response.status(), 200);
    // The stream says `identity` itself (`http_adapter::sse`), so that compressors leave
    // it alone.
    assert!(
        matches!(
            header(response.headers(), "content-encoding").as_str(),
            "" | "identity"
        ),
        "{:?}",
        response.headers()
    );
    let mut stream = Stream {
        response,
        pending: String::new(),
    };

    // A compressor would hold these small events until its buffer filled, past the
    // patience.
    app.open_ticket_id(&staff).await;
    let frames = stream.take(2).await;
    assert_eq!(types(&frames), ["ticket.created", "message.created"]);
}

#[tokio::test]
async fn every_stream_gets_the_same_bytes_for_the_same_event() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let staff = app.staff_members(2).await;
    let mut streams = vec![
        Stream::open(&app, &staff[0], "", None).await,
        Stream::open(&app, &staff[1], "", None).await,
        Stream::open(&app, &customer, "", None).await,
    ];

    let ticket = app.open_ticket_id(&customer).await;
    app.post_message_ok(&staff[0], ticket, "A reply").await;
    // A stream that resumes reads these from the log and frames them itself: the same
    // bytes as the live ones.
    streams.push(Stream::open(&app, &staff[1], "", Some(0)).await);
    let mut received = Vec::new();
    for stream in &mut streams {
        let mut frames = Vec::new();
        for _ in 0..3 {
            let (_, text) = stream.next_raw().await.expect("the stream goes on");
            frames.push(text);
        }
        received.push(frames);
    }
    assert!(received[0][0].starts_with("id: "), "{:?}", received[0]);
    for (n, frames) in received.iter().enumerate() {
        assert_eq!(frames, &received[0], "stream {n}");
    }
}

/// `sse_streams_open` as `GET /metrics` shows it now.
async fn open_streams(app: &TestApp) -> f64 {
    let response = send(app.request(Method::GET, "/metrics")).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("the metrics");
    text.lines()
        .find_map(|line| line.strip_prefix("sse_streams_open "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sse_streams_open in {text}"))
}

/// Scrapes until `sse_streams_open` reads `wanted`: a stream is counted until the
/// server notices that its client left, which takes a moment.
async fn until_open_streams(app: &TestApp, wanted: f64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let open = open_streams(app).await;
        if open == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sse_streams_open stays at {open}, not {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn open_streams_are_counted_in_the_metrics_until_they_end() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    assert_eq!(open_streams(&app).await, 0.0);

    let first = Stream::open(&app, &staff, "", None).await;
    let second = Stream::open(&app, &staff, "", None).await;
    assert_eq!(open_streams(&app).await, 2.0);

    drop(first);
    until_open_streams(&app, 1.0).await;
    drop(second);
    until_open_streams(&app, 0.0).await;
}

/// A client that opens a stream over a raw socket and then reads nothing. Its socket
/// keeps the connection's buffers small: a small receive buffer, and a small maximum
/// segment size, from which the server's kernel sizes its send buffer. With loopback's
/// 64 KiB segments that buffer took about 2.7 MB (13,000 events, which no posted text
/// enlarges: an event carries none) before the server found the client too slow, and
/// checking the invariants of that many messages outlasted the test's patience; with
/// these, it takes a few hundred events.
struct StalledClient {
    socket: std::net::TcpStream,
    /// What came after the response's head when the head was read.
    received: Vec<u8>,
}

impl StalledClient {
    /// Opens `GET /events` as `actor` with `Connection: close` (so that the server
    /// closes the connection when the response ends) and reads the response's head.
    async fn open(app: &TestApp, actor: &Actor) -> Self {
        let address = app
            .address
            .strip_prefix("http://")
            .expect("an http address")
            .parse::<std::net::SocketAddr>()
            .expect("an address");
        let token = actor.token.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(address, &token))
            .await
            .expect("the client's thread")
    }

    fn open_blocking(address: std::net::SocketAddr, token: &str) -> Self {
        use socket2::{Domain, Protocol, Socket, Type};
        use std::io::{Read, Write};

        let socket =
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("a socket");
        // Both before connecting: they are announced in the handshake.
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.set_tcp_mss(536).expect("TCP_MAXSEG");
        socket.connect(&address.into()).expect("the server accepts");
        let mut socket = std::net::TcpStream::from(socket);
        socket
            .set_read_timeout(Some(PATIENCE))
            .expect("a read timeout");
        write!(
            socket,
            "GET /events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        )
        .expect("the request is sent");
        let mut received = Vec::new();
        let mut buffer = [0u8; 1024];
        let head_end = loop {
            if let Some(end) = find(&received, b"\r\n\r\n") {
                break end + 4;
            }
            let n = socket.read(&mut buffer).expect("the response's head");
            assert!(n > 0, "the server closed before answering");
            received.extend_from_slice(&buffer[..n]);
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        received.drain(..head_end);
        StalledClient { socket, received }
    }

    /// Reads on until the server closes the connection (a read timeout fails the
    /// test); returns the response's body, and whether it ended with its last chunk.
    async fn read_to_end(self) -> (String, bool) {
        tokio::task::spawn_blocking(move || {
            use std::io::Read;

            let StalledClient {
                mut socket,
                mut received,
            } = self;
            socket
                .read_to_end(&mut received)
                .expect("the server closes the connection within the patience");
            dechunk(&received)
        })
        .await
        .expect("the client's thread")
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body of a chunked response, and whether its last (empty) chunk came.
fn dechunk(mut raw: &[u8]) -> (String, bool) {
    let mut body = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size = std::str::from_utf8(&raw[..line_end]).expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hexadecimal chunk size");
        let data = &raw[line_end + 2..];
        if size == 0 {
            return (
                String::from_utf8(body).expect("UTF-8"),
                data.starts_with(b"\r\n"),
            );
        }
        assert!(data.len() >= size + 2, "a chunk cut short");
        body.extend_from_slice(&data[..size]);
        raw = &data[size + 2..];
    }
    (String::from_utf8(body).expect("UTF-8"), false)
}

#[tokio::test]
async fn a_client_too_slow_is_disconnected_and_resumes_without_gaps_or_duplicates() {
    // One frame queued per stream, and a second of waiting for room before the stream
    // gives up on its client.
    let app = spawn_app_with(|settings| {
        settings.events.stream_buffer = 1;
        settings.events.send_timeout_secs = 1;
    })
    .await;
    let customer = app.customer().await;
    let staff = app.staff().await;
    // Every event of the test comes after the stream opened, the ticket's first ones
    // included: a stream without `Last-Event-ID` starts where the process's tail is,
    // which may be a little behind what has been committed.
    let stalled = StalledClient::open(&app, &staff).await;
    assert_eq!(open_streams(&app).await, 1.0);
    let ticket = app.open_ticket_id(&customer).await;
    // Events until the server ends the stream: as many as the buffers on the way hold,
    // whatever they are on this machine.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while open_streams(&app).await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream is still open after {} events",
            app.events_of(&staff, ticket).await.len()
        );
        for _ in 0..25 {
            app.post_message_ok(&staff, ticket, "Still there?").await;
        }
    }
    let written: Vec<i64> = app
        .events_of(&staff, ticket)
        .await
        .iter()
        .map(|event| event["id"].as_i64().expect("an id"))
        .collect();

    // The client reads again: what was on its way, then the end of the response, and
    // the end of the connection; not every event written.
    let (body, ended) = stalled.read_to_end().await;
    assert!(ended, "the response ends with its last chunk");
    let frames: Vec<Frame> = body.split("\n\n").filter_map(parse).collect();
    let received: Vec<i64> = frames.iter().map(|f| f.id).collect();
    assert!(!received.is_empty(), "some events reached the client");
    assert!(
        received.len() < written.len(),
        "{} of {} events: the stream was not ended early",
        received.len(),
        written.len()
    );
    assert_eq!(
        received,
        written[..received.len()],
        "the first events written, in order"
    );

    // Resuming from the last event received gives every later one, once.
    let last = *received.last().expect("some events");
    let mut resumed = Stream::open(&app, &staff, "", Some(last)).await;
    let rest: Vec<i64> = resumed
        .take(written.len() - received.len())
        .await
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(rest, written[received.len()..]);
    app.post_message_ok(&staff, ticket, "And now?").await;
    let newest = app.events_of(&staff, ticket).await;
    let next = resumed.next().await.expect("the stream goes on");
    assert_eq!(
        next.id,
        newest.last().expect("events")["id"]
            .as_i64()
            .expect("an id"),
        "nothing else came between"
    );
}
