//! The latency of a list's first page and of a page deep inside it, one request at a
//! time: with keyset pagination both should cost the same, whatever the table's size.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::Method;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::client::{next_link, Client};
use crate::report::median_duration;
use crate::Error;

/// Rows per page while walking to the deep page.
const WALK_LIMIT: u32 = 1000;
/// Rows per measured page, as in the mixed workload's list.
const LIMIT: u32 = 20;
const WARMUP_REQUESTS: usize = 10;

pub struct PageLatency {
    pub list: &'static str,
    pub first: Duration,
    pub deep: Duration,
    /// Rows before the deep page.
    pub depth: u64,
}

/// A list on one server: a connection, a staff token, and the paths of its first page
/// and of a page `depth` rows in.
pub struct ListPages {
    list: &'static str,
    depth: u64,
    client: Client,
    token: HeaderValue,
    first: String,
    deep: String,
}

impl ListPages {
    /// Connects and walks the list to its deep page.
    pub async fn open(
        addr: SocketAddr,
        token: HeaderValue,
        list: &'static str,
        depth: u64,
    ) -> Result<Self, Error> {
        let mut client = Client::connect(addr).await?;
        let (deep, walked) = walk(&mut client, &token, list, depth).await?;
        Ok(Self {
            list,
            depth: walked,
            client,
            token,
            first: with_limit(list, u64::from(LIMIT)),
            deep,
        })
    }

    /// The time of one request for the first (`deep == false`) or the deep page.
    async fn time(&mut self, deep: bool) -> Result<Duration, Error> {
        let path = if deep { &self.deep } else { &self.first };
        let started = Instant::now();
        let reply = self
            .client
            .send(Method::GET, path, Some(&self.token), None)
            .await?;
        let elapsed = started.elapsed();
        if !reply.status.is_success() {
            return Err(format!("GET {path} answered {}", reply.status).into());
        }
        Ok(elapsed)
    }
}

/// Measures every page of `lists` in turn, one request at a time, so that whatever else
/// the machine does slows them alike: a warm-up, then `rounds` rounds of `samples`
/// requests per page. Each page's latency is the median of its rounds' p50s.
pub async fn measure(
    lists: &mut [ListPages],
    rounds: usize,
    samples: usize,
) -> Result<Vec<PageLatency>, Error> {
    for _ in 0..WARMUP_REQUESTS {
        for pages in lists.iter_mut() {
            pages.time(false).await?;
            pages.time(true).await?;
        }
    }
    // Per list: the p50s of its first and of its deep page, one per round.
    let mut p50s = vec![(Vec::new(), Vec::new()); lists.len()];
    // A fresh order for every sweep: a request that follows one to another server (or
    // list) finds colder caches, and no page should always be that one.
    let mut order: Vec<(usize, bool)> = (0..lists.len())
        .flat_map(|list| [(list, false), (list, true)])
        .collect();
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..rounds.max(1) {
        let mut times = vec![(Vec::new(), Vec::new()); lists.len()];
        for _ in 0..samples.max(1) {
            order.shuffle(&mut rng);
            for &(list, deep) in &order {
                let elapsed = lists[list].time(deep).await?;
                let (first_times, deep_times) = &mut times[list];
                if deep {
                    deep_times.push(elapsed);
                } else {
                    first_times.push(elapsed);
                }
            }
        }
        for ((first, deep), (first_p50, deep_p50)) in times.into_iter().zip(p50s.iter_mut()) {
            first_p50.push(median_duration(first));
            deep_p50.push(median_duration(deep));
        }
    }
    Ok(lists
        .iter()
        .zip(p50s)
        .map(|(pages, (first, deep))| PageLatency {
            list: pages.list,
            first: median_duration(first),
            deep: median_duration(deep),
            depth: pages.depth,
        })
        .collect())
}

/// Follows the `Link` header until `depth` rows are behind; returns the next page's
/// path (with the measured limit) and the rows walked.
async fn walk(
    client: &mut Client,
    token: &HeaderValue,
    list: &str,
    depth: u64,
) -> Result<(String, u64), Error> {
    let mut path = list.to_owned();
    let mut walked = 0;
    while walked < depth {
        let step = (depth - walked).min(u64::from(WALK_LIMIT));
        let request = with_limit(&path, step);
        let reply = client
            .send(Method::GET, &request, Some(token), None)
            .await?;
        if !reply.status.is_success() {
            return Err(format!("GET {request} answered {}", reply.status).into());
        }
        let rows = serde_json::from_slice::<serde_json::Value>(&reply.body)?
            .as_array()
            .map_or(0, Vec::len);
        walked += rows as u64;
        path = reply
            .link
            .as_deref()
            .and_then(next_link)
            .ok_or_else(|| format!("{list} ended after {walked} rows, before {depth}"))?
            .to_owned();
    }
    Ok((with_limit(&path, u64::from(LIMIT)), walked))
}

/// `path` with its `limit` query parameter set to `limit`.
fn with_limit(path: &str, limit: u64) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("limit="))
        .map(str::to_owned)
        .collect();
    pairs.insert(0, format!("limit={limit}"));
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_the_limit_and_keeps_the_cursor() {
        assert_eq!(with_limit("/users", 20), "/users?limit=20");
        assert_eq!(
            with_limit("/tickets?limit=1000&cursor=abc", 7),
            "/tickets?limit=7&cursor=abc"
        );
    }
}
