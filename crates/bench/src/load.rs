//! Load: the closed-loop mixed workload, a paced probe of `GET /tickets/{id}`, and a
//! stream of logins. Each runs a fixed time on a fixed number of connections, one task
//! per connection, and returns what it recorded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::MissedTickBehavior;

use crate::client::Client;
use crate::fixtures::{Fixtures, Owned};
use crate::mix::{self, Endpoint, Role, Share};
use crate::recorder::Recorder;
use crate::sessions::{self, Sessions};
use crate::Error;

pub const LOGIN: &str = "POST /login";

const MESSAGE: &[u8] = br#"{"text":"Any news about this? The parcel has still not arrived."}"#;
const TICKET: &[u8] =
    br#"{"topic":"Bench ticket","text":"My order has not arrived, please help."}"#;

/// Everything the requests are made of.
pub struct Workload {
    pub fixtures: Fixtures,
    pub sessions: Sessions,
}

struct Call {
    method: Method,
    path: String,
    token: HeaderValue,
    body: Option<Bytes>,
}

impl Workload {
    fn owned(&self, rng: &mut StdRng, open: bool) -> Owned {
        let pool = if open {
            &self.fixtures.owned_open
        } else {
            &self.fixtures.owned
        };
        pool[rng.gen_range(0..pool.len())]
    }

    fn customer(&self, owned: Owned) -> HeaderValue {
        self.sessions.customers[owned.customer].clone()
    }

    fn staff(&self, rng: &mut StdRng) -> HeaderValue {
        self.sessions.staff[rng.gen_range(0..self.sessions.staff.len())].clone()
    }

    /// Who asks, and about which ticket: a customer about one of their own, staff about
    /// any (one that takes messages, for a reply).
    fn caller(&self, rng: &mut StdRng, role: Role, open: bool) -> (HeaderValue, i64) {
        match role {
            Role::Customer => {
                let owned = self.owned(rng, open);
                (self.customer(owned), owned.ticket)
            }
            Role::Staff if open => {
                let pool = &self.fixtures.staff_open;
                (self.staff(rng), pool[rng.gen_range(0..pool.len())])
            }
            Role::Staff => (self.staff(rng), rng.gen_range(1..=self.fixtures.max_ticket)),
        }
    }

    fn call(&self, rng: &mut StdRng, share: &Share) -> Call {
        let open = share.endpoint == Endpoint::PostMessage;
        let (token, ticket) = self.caller(rng, share.role, open);
        let (method, path, body) = match share.endpoint {
            Endpoint::GetTicket => (Method::GET, format!("/tickets/{ticket}"), None),
            Endpoint::ListTickets => (Method::GET, "/tickets?limit=20".to_owned(), None),
            Endpoint::ListMessages => (Method::GET, format!("/tickets/{ticket}/messages"), None),
            Endpoint::PostMessage => (
                Method::POST,
                format!("/tickets/{ticket}/messages"),
                Some(Bytes::from_static(MESSAGE)),
            ),
            Endpoint::OpenTicket => (
                Method::POST,
                "/tickets".to_owned(),
                Some(Bytes::from_static(TICKET)),
            ),
        };
        Call {
            method,
            path,
            token,
            body,
        }
    }
}

/// Sends `call` on `client` (reconnecting after a transport error) and records it.
async fn exchange(
    addr: SocketAddr,
    accept_encoding: Option<&'static str>,
    client: &mut Option<Client>,
    label: &'static str,
    call: Call,
    recorder: &mut Recorder,
) -> Result<(), Error> {
    let connection = match client {
        Some(connection) => connection,
        None => client.insert(connect(addr, accept_encoding).await?),
    };
    let started = Instant::now();
    let outcome = connection
        .send(call.method, &call.path, Some(&call.token), call.body)
        .await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(reply) if reply.status.is_success() => recorder.success(label, elapsed)?,
        Ok(reply) => recorder.failure(label, format!("HTTP {}", reply.status.as_u16())),
        Err(e) => {
            recorder.failure(label, format!("transport: {e}"));
            *client = None;
        }
    }
    Ok(())
}

/// The mixed workload as fast as `connections` connections go, for `duration`.
pub async fn mixed(
    addr: SocketAddr,
    workload: Arc<Workload>,
    connections: usize,
    duration: Duration,
    seed: u64,
) -> Result<Recorder, Error> {
    closed_loop(addr, workload, connections, duration, seed, &mix::MIX).await
}

/// [`mixed`] with every request accepting the response codings `accept_encoding`.
pub async fn mixed_accepting(
    addr: SocketAddr,
    workload: Arc<Workload>,
    connections: usize,
    duration: Duration,
    seed: u64,
    accept_encoding: &'static str,
) -> Result<Recorder, Error> {
    let traffic = Traffic {
        accept_encoding: Some(accept_encoding),
        ..Traffic::back_to_back(&mix::MIX)
    };
    drive(addr, workload, connections, duration, seed, traffic).await
}

/// Only `GET /tickets/{id}`, as fast as `connections` connections go: the mix's readers
/// of one ticket (customers their own, staff any), for the bare server's comparison.
pub async fn get_ticket(
    addr: SocketAddr,
    workload: Arc<Workload>,
    connections: usize,
    duration: Duration,
    seed: u64,
) -> Result<Recorder, Error> {
    closed_loop(addr, workload, connections, duration, seed, &mix::PROBE).await
}

/// Requests drawn from `shares`, back to back on `connections` connections.
pub async fn closed_loop(
    addr: SocketAddr,
    workload: Arc<Workload>,
    connections: usize,
    duration: Duration,
    seed: u64,
    shares: &'static [Share],
) -> Result<Recorder, Error> {
    let traffic = Traffic::back_to_back(shares);
    drive(addr, workload, connections, duration, seed, traffic).await
}

/// `GET /tickets/{id}` at a steady `rate` per second in total, spread over
/// `connections`, so that latency shows the server's responsiveness rather than a
/// queue of its own making.
pub async fn probe(
    addr: SocketAddr,
    workload: Arc<Workload>,
    connections: usize,
    rate: u32,
    duration: Duration,
) -> Result<Recorder, Error> {
    let period = Duration::from_secs_f64(connections as f64 / f64::from(rate.max(1)));
    let traffic = Traffic {
        period: Some(period),
        ..Traffic::back_to_back(&mix::PROBE)
    };
    drive(
        addr,
        workload,
        connections,
        duration,
        u64::from(rate),
        traffic,
    )
    .await
}

/// What a load's connections send, and how often.
struct Traffic {
    shares: &'static [Share],
    /// One request per period on each connection; back to back when `None`.
    period: Option<Duration>,
    /// The `Accept-Encoding` of every request; none when `None`.
    accept_encoding: Option<&'static str>,
}

impl Traffic {
    fn back_to_back(shares: &'static [Share]) -> Self {
        Self {
            shares,
            period: None,
            accept_encoding: None,
        }
    }
}

async fn connect(addr: SocketAddr, accept_encoding: Option<&'static str>) -> Result<Client, Error> {
    Client::connect_accepting(addr, accept_encoding.map(HeaderValue::from_static)).await
}

/// Requests drawn from the traffic's shares on `connections` connections until
/// `duration` is over.
async fn drive(
    addr: SocketAddr,
    workload: Arc<Workload>,
    connections: usize,
    duration: Duration,
    seed: u64,
    traffic: Traffic,
) -> Result<Recorder, Error> {
    let Traffic {
        shares,
        period,
        accept_encoding,
    } = traffic;
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|index| {
            let workload = workload.clone();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003) + index as u64);
                let mut client = Some(connect(addr, accept_encoding).await?);
                let mut recorder = Recorder::default();
                let mut ticks = match period {
                    Some(period) => {
                        // Connections start spread over one period, not all at once.
                        let offset = period.mul_f64(index as f64 / connections as f64);
                        tokio::time::sleep(offset).await;
                        let mut ticks = tokio::time::interval(period);
                        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        Some(ticks)
                    }
                    None => None,
                };
                while Instant::now() < deadline {
                    if let Some(ticks) = ticks.as_mut() {
                        ticks.tick().await;
                    }
                    let share = mix::pick(shares, &mut rng);
                    let call = workload.call(&mut rng, share);
                    let label = share.endpoint.label();
                    exchange(
                        addr,
                        accept_encoding,
                        &mut client,
                        label,
                        call,
                        &mut recorder,
                    )
                    .await?;
                }
                Ok::<_, Error>(recorder)
            })
        })
        .collect();
    gather(tasks).await
}

/// Logins as fast as `clients` connections go, cycling through `emails`.
pub async fn logins(
    addr: SocketAddr,
    emails: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> Result<Recorder, Error> {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let emails = emails.clone();
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await?;
                let mut recorder = Recorder::default();
                let mut next = index;
                while Instant::now() < deadline {
                    let email = &emails[next % emails.len()];
                    next += clients;
                    let started = Instant::now();
                    match sessions::login(&mut client, email).await {
                        Ok(reply) if reply.status.is_success() => {
                            recorder.success(LOGIN, started.elapsed())?;
                        }
                        Ok(reply) => {
                            recorder.failure(LOGIN, format!("HTTP {}", reply.status.as_u16()));
                        }
                        Err(e) => {
                            recorder.failure(LOGIN, format!("transport: {e}"));
                            client = Client::connect(addr).await?;
                        }
                    }
                }
                Ok::<_, Error>(recorder)
            })
        })
        .collect();
    gather(tasks).await
}

async fn gather(
    tasks: Vec<tokio::task::JoinHandle<Result<Recorder, Error>>>,
) -> Result<Recorder, Error> {
    let mut all = Recorder::default();
    for task in tasks {
        all.merge(task.await??)?;
    }
    Ok(all)
}
