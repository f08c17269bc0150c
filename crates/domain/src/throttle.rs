//! Login throttling: failed logins are counted per account and per client address in
//! fixed windows, and a login is refused while either has reached its limit in its
//! current window. The counts live behind the [`LoginFailureRepository`] port (in the
//! database), so that every replica of the service counts against one limit.
//!
//! The rule, here and in the port's contract:
//! - a key's window starts with its first failure and lasts [`ThrottlePolicy::window`];
//!   a failure once it has ended starts a new window (the adapter does this in the
//!   statement that counts, see [`LoginFailureRepository::record_failure`]);
//! - a key is throttled while its window lasts and holds at least its limit of
//!   failures, until the window ends ([`ThrottlePolicy::throttled`]);
//! - only invalid credentials count: neither a refusal for throttling nor an outage;
//! - a successful login forgives the account's failures, not the address's.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::users::{LoginError, UserService};
use crate::values::Email;
use crate::{Caller, RepositoryError};

/// The limits: failures allowed per account and per address in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    per_account: u32,
    per_address: u32,
    window: Duration,
}

impl ThrottlePolicy {
    /// The longest window; a longer one is cut to it, so that the start of a window
    /// that ended is always a date the database can compare.
    pub const MAX_WINDOW: Duration = Duration::days(366);

    pub fn new(per_account: u32, per_address: u32, window: std::time::Duration) -> Self {
        let window = Duration::try_from(window)
            .unwrap_or(Self::MAX_WINDOW)
            .min(Self::MAX_WINDOW);
        Self {
            per_account,
            per_address,
            window,
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Windows that started at or before this instant have ended at `now`.
    pub fn ended_by(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.window
    }

    /// Whether a login at `now` must wait, and how long: the longer of the account's
    /// and the address's waits.
    pub fn throttled(&self, failures: &Failures, now: OffsetDateTime) -> Option<Throttled> {
        let by_account = failures
            .account
            .and_then(|w| self.wait(w, self.per_account, now));
        let by_address = failures
            .address
            .and_then(|w| self.wait(w, self.per_address, now));
        by_account.max(by_address).map(Throttled::after)
    }

    /// What is left of the window, if it lasts and holds `limit` failures. A window
    /// that seems to start after `now` (clocks of replicas a little apart) has just
    /// started.
    fn wait(&self, window: FailureWindow, limit: u32, now: OffsetDateTime) -> Option<Duration> {
        let elapsed = (now - window.started).max(Duration::ZERO);
        (elapsed < self.window && window.failures >= limit).then(|| self.window - elapsed)
    }
}

/// A key's current or last window: when it started and the failures counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    pub started: OffsetDateTime,
    pub failures: u32,
}

/// The stored windows of a login's account and address, ended or not; `None` where
/// there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub account: Option<FailureWindow>,
    pub address: Option<FailureWindow>,
}

/// What a login is counted under: the e-mail as given, trimmed and lower-cased (so that
/// the case does not make a new account), and the client's address when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKeys {
    account: String,
    address: Option<String>,
}

impl ThrottleKeys {
    /// The keys of a login. An e-mail longer than any account's is cut to
    /// [`Email::MAX_LEN`] characters: it names no account, and the cut keeps the key
    /// small enough for an index.
    pub fn new(email: &str, address: Option<IpAddr>) -> Self {
        Self {
            account: email
                .trim()
                .to_lowercase()
                .chars()
                .take(Email::MAX_LEN)
                .collect(),
            address: address.map(|ip| ip.to_string()),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }
}

/// A login refused for too many failures: the seconds to wait (`Retry-After`), whole
/// seconds left of the window, at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

impl Throttled {
    fn after(wait: Duration) -> Self {
        Self {
            retry_after_secs: u64::try_from(wait.whole_seconds()).unwrap_or(0).max(1),
        }
    }
}

/// Failed logins, counted per key in windows.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LoginFailureRepository: Send + Sync {
    /// The stored windows of the keys, ended or not.
    async fn failures(&self, keys: &ThrottleKeys) -> Result<Failures, RepositoryError>;

    /// Counts one failure for the account and, when known, the address, atomically
    /// per key: a key without a window, or whose window started at or before `ended`,
    /// gets a new window starting `now` with one failure; any other's failures grow by
    /// one.
    async fn record_failure(
        &self,
        keys: &ThrottleKeys,
        now: OffsetDateTime,
        ended: OffsetDateTime,
    ) -> Result<(), RepositoryError>;

    /// Forgets the account's window.
    async fn forgive_account(&self, account: &str) -> Result<(), RepositoryError>;

    /// Forgets the windows that started at or before `ended`; returns how many.
    async fn forget_windows(&self, ended: OffsetDateTime) -> Result<u64, RepositoryError>;
}

/// Login with throttling, on the counts of a [`LoginFailureRepository`].
#[derive(Clone)]
pub struct LoginThrottle {
    failures: Arc<dyn LoginFailureRepository>,
    policy: ThrottlePolicy,
}

impl LoginThrottle {
    pub fn new(failures: Arc<dyn LoginFailureRepository>, policy: ThrottlePolicy) -> Self {
        Self { failures, policy }
    }

    pub fn policy(&self) -> ThrottlePolicy {
        self.policy
    }

    /// Logs in through `users` (see [`UserService::login`]) unless the account or the
    /// address is throttled; counts invalid credentials and forgives the account on
    /// success. `address` is the client's, when known.
    ///
    /// Every failure to read or write the counts fails the login (fail closed): the
    /// password is not checked without the counts, and no verdict is given on a
    /// failure that could not be counted. The same happens whether the password was
    /// right or not, so an outage of the counts tells nothing about it.
    ///
    /// # Errors
    /// `TooManyFailures` while throttled, before the password is checked;
    /// `InvalidCredentials`, counted; `Unexpected` when the counts or the login fail.
    pub async fn login(
        &self,
        users: &UserService,
        email: &str,
        password: String,
        address: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Caller, LoginError> {
        let keys = ThrottleKeys::new(email, address);
        let current = self.failures.failures(&keys).await?;
        if let Some(throttled) = self.policy.throttled(&current, now) {
            return Err(LoginError::TooManyFailures(throttled));
        }
        match users.login(email, password).await {
            Ok(user) => {
                self.failures.forgive_account(keys.account()).await?;
                Ok(user)
            }
            Err(LoginError::InvalidCredentials) => {
                let ended = self.policy.ended_by(now);
                self.failures.record_failure(&keys, now, ended).await?;
                Err(LoginError::InvalidCredentials)
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets the windows that have ended by `now`; returns how many. They are
    /// ignored anyway, and a failure starts a new window over an ended one; this keeps
    /// the counts from growing with keys never seen again.
    pub async fn forget_ended_windows(&self, now: OffsetDateTime) -> Result<u64, RepositoryError> {
        self.failures
            .forget_windows(self.policy.ended_by(now))
            .await
    }
}

#[cfg(test)]
mod tests;
