//! A counting proxy between a server and PostgreSQL: it relays every byte unchanged and
//! reads the messages the server sends (PostgreSQL's frontend protocol, version 3), so
//! that statements and round trips are counted exactly, without `pg_stat_statements`
//! (which only loads when PostgreSQL starts). It costs a hop per round trip, so only
//! the counting passes go through it, never a measured round.
//!
//! - A statement is an `Execute` (extended protocol: each run of a prepared or unnamed
//!   statement) or a simple `Query` (the service sends one statement per simple query:
//!   `BEGIN`, `COMMIT`, `ROLLBACK`, `LISTEN`, its `NOTIFY`).
//! - A `Parse` is a statement prepared: the first use of a statement on a connection,
//!   or one planned for its parameters on every run.
//! - A round trip is a turn of the server's: each time it sends again after
//!   PostgreSQL has answered. Messages pipelined in one go make one round trip.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::background::Background;
use crate::Error;

/// The startup message's protocol version 3.0; other startup codes (SSL and GSS
/// encryption requests, cancel requests) are followed by another startup message.
const PROTOCOL_3: u32 = 196_608;
/// A `Parse` body kept for its statement text at most (the rest is relayed, not kept).
const MAX_PARSE_TEXT: usize = 64 * 1024;

/// What the server sent through the proxy so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub executes: u64,
    pub simple_queries: u64,
    pub parses: u64,
    pub round_trips: u64,
}

impl Counts {
    pub fn statements(&self) -> u64 {
        self.executes + self.simple_queries
    }

    /// What was sent since `before`.
    pub fn since(self, before: Counts) -> Counts {
        Counts {
            executes: self.executes.saturating_sub(before.executes),
            simple_queries: self.simple_queries.saturating_sub(before.simple_queries),
            parses: self.parses.saturating_sub(before.parses),
            round_trips: self.round_trips.saturating_sub(before.round_trips),
        }
    }
}

#[derive(Default)]
struct Tally {
    executes: AtomicU64,
    simple_queries: AtomicU64,
    parses: AtomicU64,
    round_trips: AtomicU64,
    /// Every statement text prepared through the proxy.
    prepared: Mutex<BTreeSet<String>>,
}

impl Tally {
    fn record(&self, message: Message) {
        let counter = match message {
            Message::Execute => &self.executes,
            Message::Query => &self.simple_queries,
            Message::Parse(text) => {
                self.prepared
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(text);
                &self.parses
            }
            Message::Other => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct CountingProxy {
    /// Where the server connects instead of PostgreSQL.
    pub addr: SocketAddr,
    tally: Arc<Tally>,
    _running: Background,
}

impl CountingProxy {
    pub fn start(upstream: SocketAddr) -> Result<Self, Error> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let tally = Arc::new(Tally::default());
        let shared = tally.clone();
        let running = Background::spawn("pg-counting-proxy", move || {
            accept(listener, upstream, shared)
        })?;
        Ok(Self {
            addr,
            tally,
            _running: running,
        })
    }

    pub fn counts(&self) -> Counts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Counts {
            executes: read(&self.tally.executes),
            simple_queries: read(&self.tally.simple_queries),
            parses: read(&self.tally.parses),
            round_trips: read(&self.tally.round_trips),
        }
    }

    /// Whether the server prepared exactly this statement text.
    pub fn prepared(&self, text: &str) -> bool {
        self.tally
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(text)
    }
}

async fn accept(listener: std::net::TcpListener, upstream: SocketAddr, tally: Arc<Tally>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bench: the counting proxy cannot listen: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let tally = tally.clone();
                tokio::spawn(async move {
                    // A connection ends with an error when either side drops it, as
                    // servers do when they stop: nothing to report.
                    let _ = relay(client, upstream, &tally).await;
                });
            }
            Err(e) => {
                eprintln!("bench: the counting proxy cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Relays one connection both ways until either side closes it.
async fn relay(client: TcpStream, upstream: SocketAddr, tally: &Tally) -> std::io::Result<()> {
    let database = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    database.set_nodelay(true)?;
    let (mut from_server, mut to_server) = client.into_split();
    let (mut from_database, mut to_database) = database.into_split();
    // Whether PostgreSQL has answered since the server last sent. Both directions run
    // in this one task, one after the other: the flag is only shared, never raced.
    let database_answered = AtomicBool::new(false);
    let outbound = async {
        let mut reader = Frontend::default();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = from_server.read(&mut buffer).await?;
            if n == 0 {
                return to_database.shutdown().await;
            }
            if reader.started() && database_answered.swap(false, Ordering::Relaxed) {
                tally.round_trips.fetch_add(1, Ordering::Relaxed);
            }
            reader.feed(&buffer[..n], |message| tally.record(message));
            to_database.write_all(&buffer[..n]).await?;
        }
    };
    let inbound = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = from_database.read(&mut buffer).await?;
            if n == 0 {
                return to_server.shutdown().await;
            }
            // Before relaying: whatever the server sends in reply comes after.
            database_answered.store(true, Ordering::Relaxed);
            to_server.write_all(&buffer[..n]).await?;
        }
    };
    tokio::try_join!(outbound, inbound).map(drop)
}

/// A message of the server's, as far as counting goes.
#[derive(Debug, PartialEq, Eq)]
enum Message {
    Execute,
    Query,
    /// With the statement's text.
    Parse(String),
    Other,
}

/// Reads the frontend's messages from a byte stream cut anywhere: first the untyped
/// startup messages (length, then a code), then typed ones (a kind byte, then a length
/// that counts itself).
#[derive(Default)]
struct Frontend {
    typed: bool,
    header: Vec<u8>,
    /// Body bytes of the current message still to come.
    remaining: usize,
    current: Current,
    /// The body of a `Parse`, for its statement text.
    body: Vec<u8>,
}

#[derive(Default, Clone, Copy)]
enum Current {
    #[default]
    None,
    Startup {
        protocol: bool,
    },
    Typed(u8),
}

impl Frontend {
    /// Whether the startup is over (typed messages flow).
    fn started(&self) -> bool {
        self.typed
    }

    fn feed(&mut self, mut bytes: &[u8], mut seen: impl FnMut(Message)) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(bytes.len());
                if matches!(self.current, Current::Typed(b'P')) && self.body.len() < MAX_PARSE_TEXT
                {
                    self.body.extend_from_slice(&bytes[..take]);
                }
                bytes = &bytes[take..];
                self.remaining -= take;
                if self.remaining == 0 {
                    self.finish(&mut seen);
                }
                continue;
            }
            let header_len = if self.typed { 5 } else { 8 };
            let take = (header_len - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() < header_len {
                return;
            }
            let word = |at: usize| {
                let mut four = [0u8; 4];
                four.copy_from_slice(&self.header[at..at + 4]);
                u32::from_be_bytes(four) as usize
            };
            if self.typed {
                self.current = Current::Typed(self.header[0]);
                // The length counts its own four bytes.
                self.remaining = word(1).saturating_sub(4);
            } else {
                self.current = Current::Startup {
                    protocol: word(4) == PROTOCOL_3 as usize,
                };
                self.remaining = word(0).saturating_sub(8);
            }
            self.header.clear();
            if self.remaining == 0 {
                self.finish(&mut seen);
            }
        }
    }

    fn finish(&mut self, seen: &mut impl FnMut(Message)) {
        match std::mem::take(&mut self.current) {
            Current::Startup { protocol } => self.typed = protocol,
            Current::Typed(b'E') => seen(Message::Execute),
            Current::Typed(b'Q') => seen(Message::Query),
            Current::Typed(b'P') => {
                // The statement's name, then its text, each ending with a NUL.
                let text = self
                    .body
                    .split(|&b| b == 0)
                    .nth(1)
                    .map(|text| String::from_utf8_lossy(text).into_owned())
                    .unwrap_or_default();
                self.body.clear();
                seen(Message::Parse(text));
            }
            Current::Typed(_) | Current::None => seen(Message::Other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut message = vec![kind];
        message.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        message.extend_from_slice(body);
        message
    }

    fn startup(code: u32, body: &[u8]) -> Vec<u8> {
        let mut message = (u32::try_from(body.len()).unwrap() + 8)
            .to_be_bytes()
            .to_vec();
        message.extend_from_slice(&code.to_be_bytes());
        message.extend_from_slice(body);
        message
    }

    /// An SSL request, the startup, a prepare, a pipelined run and a simple query.
    fn conversation() -> Vec<u8> {
        let mut bytes = startup(80_877_103, b"");
        bytes.extend(startup(PROTOCOL_3, b"user\0postgres\0\0"));
        bytes.extend(typed(b'P', b"s1\0SELECT $1\0\0\0"));
        bytes.extend(typed(b'D', b"Ss1\0"));
        bytes.extend(typed(b'S', b""));
        bytes.extend(typed(b'B', b"\0s1\0\0\0\0\0\0\0"));
        bytes.extend(typed(b'E', b"\0\0\0\0\0"));
        bytes.extend(typed(b'S', b""));
        bytes.extend(typed(b'Q', b"BEGIN\0"));
        bytes
    }

    fn read_in_pieces(bytes: &[u8], piece: usize) -> (Vec<Message>, bool) {
        let mut reader = Frontend::default();
        let mut seen = Vec::new();
        for chunk in bytes.chunks(piece) {
            reader.feed(chunk, |m| seen.push(m));
        }
        (seen, reader.started())
    }

    #[test]
    fn reads_messages_however_they_are_cut() {
        let bytes = conversation();
        for piece in [1, 2, 3, 5, 7, 64, bytes.len()] {
            let (seen, started) = read_in_pieces(&bytes, piece);
            assert!(started, "piece {piece}");
            let counted: Vec<&Message> = seen.iter().filter(|m| **m != Message::Other).collect();
            assert_eq!(
                counted,
                [
                    &Message::Parse("SELECT $1".to_owned()),
                    &Message::Execute,
                    &Message::Query
                ],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn not_started_before_the_startup_message() {
        let (seen, started) = read_in_pieces(&startup(80_877_103, b""), 3);
        assert!(!started);
        assert!(seen.is_empty());
    }

    #[test]
    fn counts_are_differences() {
        let before = Counts {
            executes: 1,
            simple_queries: 2,
            parses: 3,
            round_trips: 4,
        };
        let after = Counts {
            executes: 11,
            simple_queries: 4,
            parses: 3,
            round_trips: 9,
        };
        let since = after.since(before);
        assert_eq!(since.statements(), 12);
        assert_eq!((since.parses, since.round_trips), (0, 5));
    }
}
