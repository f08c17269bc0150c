//! Latencies (an HDR histogram per label, in microseconds) and failures of one load
//! run, kept per task and merged at the end so that recording takes no lock.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::Error;

/// Latencies above a minute are recorded as a minute.
const MAX_MICROS: u64 = 60_000_000;

#[derive(Default)]
pub struct Recorder {
    latencies: BTreeMap<&'static str, Histogram<u64>>,
    /// Failed requests by label and cause (`HTTP 409`, or a transport error).
    pub errors: BTreeMap<(&'static str, String), u64>,
}

#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
}

fn histogram() -> Result<Histogram<u64>, Error> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).map_err(|e| format!("histogram: {e:?}").into())
}

impl Recorder {
    pub fn success(&mut self, label: &'static str, elapsed: Duration) -> Result<(), Error> {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(MAX_MICROS);
        let histogram = match self.latencies.entry(label) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(histogram()?),
        };
        histogram.saturating_record(micros.max(1));
        Ok(())
    }

    pub fn failure(&mut self, label: &'static str, cause: String) {
        *self.errors.entry((label, cause)).or_default() += 1;
    }

    pub fn merge(&mut self, other: Recorder) -> Result<(), Error> {
        self.add_errors(&other);
        for (label, theirs) in other.latencies {
            match self.latencies.entry(label) {
                Entry::Occupied(mut entry) => entry
                    .get_mut()
                    .add(&theirs)
                    .map_err(|e| format!("histogram: {e:?}"))?,
                Entry::Vacant(entry) => {
                    entry.insert(theirs);
                }
            }
        }
        Ok(())
    }

    /// Adds `other`'s failures to these, leaving latencies alone.
    pub fn add_errors(&mut self, other: &Recorder) {
        for (key, count) in &other.errors {
            *self.errors.entry(key.clone()).or_default() += count;
        }
    }

    pub fn summary(&self, label: &str) -> Option<Summary> {
        self.latencies.get(label).map(summarize)
    }

    /// The longest latency of `label`.
    pub fn max(&self, label: &str) -> Option<Duration> {
        self.latencies
            .get(label)
            .map(|histogram| Duration::from_micros(histogram.max()))
    }

    /// Every label's latencies together.
    pub fn overall(&self) -> Result<Summary, Error> {
        let mut all = histogram()?;
        for histogram in self.latencies.values() {
            all.add(histogram)
                .map_err(|e| format!("histogram: {e:?}"))?;
        }
        Ok(summarize(&all))
    }

    pub fn successes(&self) -> u64 {
        self.latencies.values().map(Histogram::len).sum()
    }

    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn summarize(histogram: &Histogram<u64>) -> Summary {
    Summary {
        count: histogram.len(),
        p50: Duration::from_micros(histogram.value_at_quantile(0.5)),
        p99: Duration::from_micros(histogram.value_at_quantile(0.99)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_latencies_and_failures() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for micros in 1..=100 {
            a.success("x", Duration::from_micros(micros)).unwrap();
        }
        b.success("x", Duration::from_micros(1000)).unwrap();
        b.success("y", Duration::from_micros(5)).unwrap();
        b.failure("y", "HTTP 409".into());
        a.merge(b).unwrap();
        assert_eq!(a.successes(), 102);
        assert_eq!(a.failures(), 1);
        let x = a.summary("x").unwrap();
        assert_eq!(x.count, 101);
        assert_eq!(x.p50, Duration::from_micros(51));
        assert!(a.overall().unwrap().p99 >= Duration::from_micros(100));
    }
}
