//! Failed-login throttling, per account and per client address, in fixed windows.
//!
//! The counters live in this process: with several replicas each keeps its own, so the
//! effective limit is multiplied by the number of replicas (documented in the README).
//! Memory is bounded: expired windows are swept when a map grows past `SWEEP_AT`, and
//! past `MAX_ENTRIES` new keys share one overflow window (which throttles harder, not
//! less, under an attack that sprays many keys).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SWEEP_AT: usize = 10_000;
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

struct Counter<K> {
    windows: Mutex<HashMap<K, Window>>,
    overflow: Mutex<Option<Window>>,
    max_failures: u32,
    window: Duration,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            overflow: Mutex::new(None),
            max_failures,
            window,
        }
    }

    /// How long `key` must wait, if it has failed too often in the current window.
    fn retry_after(&self, key: &K, now: Instant) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let window = match windows.get(key) {
            Some(window) => *window,
            None => {
                drop(windows);
                (*self.overflow.lock().unwrap_or_else(|p| p.into_inner()))?
            }
        };
        let elapsed = now.saturating_duration_since(window.started);
        (elapsed < self.window && window.failures >= self.max_failures)
            .then(|| self.window - elapsed)
    }

    fn record_failure(&self, key: &K, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= SWEEP_AT && !windows.contains_key(key) {
            windows.retain(|_, w| now.saturating_duration_since(w.started) < self.window);
        }
        if windows.len() >= MAX_ENTRIES && !windows.contains_key(key) {
            drop(windows);
            let mut overflow = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
            let window = overflow.get_or_insert(Window {
                started: now,
                failures: 0,
            });
            bump(window, now, self.window);
            return;
        }
        let window = windows.entry(key.clone()).or_insert(Window {
            started: now,
            failures: 0,
        });
        bump(window, now, self.window);
    }

    fn clear(&self, key: &K) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

fn bump(window: &mut Window, now: Instant, length: Duration) {
    if now.saturating_duration_since(window.started) >= length {
        *window = Window {
            started: now,
            failures: 0,
        };
    }
    window.failures = window.failures.saturating_add(1);
}

pub struct LoginThrottle {
    accounts: Counter<String>,
    addresses: Counter<IpAddr>,
}

impl LoginThrottle {
    pub fn new(per_account: u32, per_address: u32, window: Duration) -> Self {
        Self {
            accounts: Counter::new(per_account, window),
            addresses: Counter::new(per_address, window),
        }
    }

    fn account_key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    /// `Err(seconds to wait)` when the account or the address is throttled.
    pub fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let by_account = self.accounts.retry_after(&Self::account_key(email), now);
        let by_address = address.and_then(|ip| self.addresses.retry_after(&ip, now));
        match by_account.max(by_address) {
            Some(wait) => Err(wait.as_secs().max(1)),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        self.accounts.record_failure(&Self::account_key(email), now);
        if let Some(ip) = address {
            self.addresses.record_failure(&ip, now);
        }
    }

    /// A successful login forgives the account's earlier failures (not the address's).
    pub fn record_success(&self, email: &str) {
        self.accounts.clear(&Self::account_key(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_an_account_after_its_limit_and_forgives_on_success() {
        let throttle = LoginThrottle::new(3, 100, Duration::from_secs(60));
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            assert_eq!(throttle.check("A@x.io", Some(ip)), Ok(()));
            throttle.record_failure("a@X.io ", Some(ip));
        }
        let wait = throttle.check("a@x.io", Some(ip)).expect_err("throttled");
        assert!((1..=60).contains(&wait));
        assert_eq!(
            throttle.check("b@x.io", Some(ip)),
            Ok(()),
            "other accounts are not"
        );
        throttle.record_success("a@x.io");
        assert_eq!(throttle.check("a@x.io", Some(ip)), Ok(()));
    }

    #[test]
    fn throttles_an_address_across_accounts() {
        let throttle = LoginThrottle::new(100, 2, Duration::from_secs(60));
        let ip: IpAddr = [10, 0, 0, 1].into();
        throttle.record_failure("a@x.io", Some(ip));
        throttle.record_failure("b@x.io", Some(ip));
        assert!(throttle.check("c@x.io", Some(ip)).is_err());
        assert_eq!(throttle.check("c@x.io", Some([10, 0, 0, 2].into())), Ok(()));
    }

    #[test]
    fn windows_expire() {
        let counter: Counter<u8> = Counter::new(1, Duration::from_secs(10));
        let start = Instant::now();
        counter.record_failure(&1, start);
        assert!(counter.retry_after(&1, start).is_some());
        assert!(counter
            .retry_after(&1, start + Duration::from_secs(11))
            .is_none());
    }
}
