//! Search latency: `GET /tickets?q=…` (default limit), one request at a time, for a rare
//! word and a common one, each as staff and as a customer. The rare word is an order
//! number, which only one ticket's messages hold (bench/seed.sql); the common word is in
//! most tickets' responses and in one topic of eight.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::Method;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::client::Client;
use crate::load::Workload;
use crate::mix::Role;
use crate::recorder::Recorder;
use crate::Error;

pub const COMMON_WORD: &str = "refund";
/// The issue's target for a rare word.
pub const RARE_P50_TARGET: Duration = Duration::from_millis(50);
/// Unrecorded requests per case first; the last one's time sizes the case's samples.
const WARMUP_REQUESTS: usize = 3;
/// Requests per case and round: as many as fit in [`CASE_BUDGET`], within these bounds,
/// so that a search that takes seconds does not take the run's hour.
const MAX_SAMPLES: usize = 100;
const MIN_SAMPLES: usize = 10;
const CASE_BUDGET: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    Rare,
    Common,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    pub word: Word,
    pub role: Role,
}

pub const CASES: [Case; 4] = [
    Case {
        word: Word::Rare,
        role: Role::Staff,
    },
    Case {
        word: Word::Rare,
        role: Role::Customer,
    },
    Case {
        word: Word::Common,
        role: Role::Staff,
    },
    Case {
        word: Word::Common,
        role: Role::Customer,
    },
];

/// One search request: who asks, for what, and the one ticket a rare word must find.
pub struct Query {
    pub token: HeaderValue,
    pub path: String,
    pub expect: Option<i64>,
}

impl Case {
    pub fn label(self) -> &'static str {
        match (self.word, self.role) {
            (Word::Rare, Role::Staff) => "rare word, staff",
            (Word::Rare, Role::Customer) => "rare word, customer",
            (Word::Common, Role::Staff) => "common word, staff",
            (Word::Common, Role::Customer) => "common word, customer",
        }
    }

    /// The `q` the report shows.
    pub fn shown_query(self) -> &'static str {
        match self.word {
            Word::Rare => "an order number",
            Word::Common => COMMON_WORD,
        }
    }

    /// A request of this case by a random logged-in user: staff look for any ticket's
    /// order number, a customer for one of their own tickets'.
    pub fn query(self, workload: &Workload, rng: &mut impl Rng) -> Query {
        let sessions = &workload.sessions;
        let owned = &workload.fixtures.owned;
        let (token, ticket) = match self.role {
            Role::Staff => (
                sessions.staff[rng.gen_range(0..sessions.staff.len())].clone(),
                rng.gen_range(1..=workload.fixtures.max_ticket),
            ),
            Role::Customer => {
                let mine = owned[rng.gen_range(0..owned.len())];
                (sessions.customers[mine.customer].clone(), mine.ticket)
            }
        };
        match self.word {
            Word::Rare => Query {
                token,
                path: format!("/tickets?q={ticket}"),
                expect: Some(ticket),
            },
            Word::Common => Query {
                token,
                path: format!("/tickets?q={COMMON_WORD}"),
                expect: None,
            },
        }
    }
}

/// The latencies (and failures) by case label, and how many requests each case got.
pub struct Searched {
    pub recorder: Recorder,
    pub samples: Vec<(Case, usize)>,
}

/// Warms every case up, then `rounds` rounds in which the requests of all cases go one
/// at a time in a shuffled order, so that the machine's noise falls on all alike.
pub async fn measure(
    addr: SocketAddr,
    workload: &Workload,
    rounds: usize,
) -> Result<Searched, Error> {
    let mut client = Client::connect(addr).await?;
    let mut rng = StdRng::seed_from_u64(13);
    let mut unrecorded = Recorder::default();
    let mut samples = Vec::with_capacity(CASES.len());
    for case in CASES {
        let mut last = Duration::ZERO;
        for _ in 0..WARMUP_REQUESTS {
            last = send(&mut client, case, workload, &mut rng, &mut unrecorded).await?;
        }
        samples.push((case, sample_count(last)));
    }
    let mut order: Vec<Case> = samples
        .iter()
        .flat_map(|&(case, n)| std::iter::repeat_n(case, n))
        .collect();
    let mut recorder = Recorder::default();
    for _ in 0..rounds.max(1) {
        order.shuffle(&mut rng);
        for &case in &order {
            send(&mut client, case, workload, &mut rng, &mut recorder).await?;
        }
    }
    let samples = samples
        .into_iter()
        .map(|(case, n)| (case, n * rounds.max(1)))
        .collect();
    Ok(Searched { recorder, samples })
}

/// Requests per round for a case whose warm request took `warm`.
fn sample_count(warm: Duration) -> usize {
    let fit = CASE_BUDGET.as_secs_f64() / warm.as_secs_f64().max(1e-6);
    (fit as usize).clamp(MIN_SAMPLES, MAX_SAMPLES)
}

/// Sends one request of `case` and records its time, or why it failed: not 2xx, or a
/// rare word that did not find exactly its ticket. Returns the time either way.
async fn send(
    client: &mut Client,
    case: Case,
    workload: &Workload,
    rng: &mut StdRng,
    recorder: &mut Recorder,
) -> Result<Duration, Error> {
    let query = case.query(workload, rng);
    let started = Instant::now();
    let reply = client
        .send(Method::GET, &query.path, Some(&query.token), None)
        .await;
    let elapsed = started.elapsed();
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => {
            recorder.failure(case.label(), format!("transport: {e}"));
            // The server closed the connection; the next request opens another.
            client.reconnect().await?;
            return Ok(elapsed);
        }
    };
    if !reply.status.is_success() {
        recorder.failure(case.label(), format!("HTTP {}", reply.status.as_u16()));
        return Ok(elapsed);
    }
    // A common word may find none of a customer's few tickets; a rare one must find
    // exactly its ticket.
    let found = found_ids(&reply.body)?;
    match (query.expect, found.as_slice()) {
        (Some(ticket), [id]) if *id == ticket => recorder.success(case.label(), elapsed)?,
        (None, _) => recorder.success(case.label(), elapsed)?,
        (Some(_), found) => recorder.failure(
            case.label(),
            format!("wrong result: {} tickets", found.len()),
        ),
    }
    Ok(elapsed)
}

/// The ticket ids of a list response.
fn found_ids(body: &[u8]) -> Result<Vec<i64>, Error> {
    let tickets: Vec<serde_json::Value> = serde_json::from_slice(body)?;
    Ok(tickets
        .iter()
        .filter_map(|ticket| ticket.get("id").and_then(serde_json::Value::as_i64))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_cases_get_fewer_samples_within_bounds() {
        assert_eq!(sample_count(Duration::from_millis(1)), MAX_SAMPLES);
        assert_eq!(sample_count(Duration::from_millis(500)), 30);
        assert_eq!(sample_count(Duration::from_secs(5)), MIN_SAMPLES);
        assert_eq!(sample_count(Duration::ZERO), MAX_SAMPLES);
    }

    #[test]
    fn reads_the_ids_of_a_ticket_list() {
        assert_eq!(
            found_ids(br#"[{"id": 7, "topic": "a"}, {"id": 9}]"#).unwrap(),
            vec![7, 9]
        );
        assert!(found_ids(b"[]").unwrap().is_empty());
        assert!(found_ids(b"{}").is_err());
    }
}
