//! bcrypt behind the domain's `PasswordHasher` port. Hashing takes tens to hundreds of
//! milliseconds of CPU, so it runs on tokio's blocking pool, never on an actix worker,
//! and a semaphore bounds how many hashes run at once so that a burst of logins cannot
//! take every core from the request workers. A request that waits longer than
//! `auth.hash_wait_timeout_ms` for its turn gets 503 instead of queueing without bound
//! (a burst larger than the hashing capacity would otherwise hold every connection,
//! and outlast clients' timeouts and the shutdown timeout).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::ports::PasswordHasher;
use domain::values::Password;
use domain::RepositoryError;
use tokio::sync::Semaphore;

pub struct BcryptHasher {
    cost: u32,
    turns: Arc<Turns>,
    wait_timeout: Duration,
    /// A hash of a random password at the same cost: unknown accounts are checked
    /// against it so that they take as long as known ones.
    dummy_hash: String,
}

impl BcryptHasher {
    /// `max_concurrent` hashes at once (at least 1); a hash waits at most
    /// `wait_timeout` for its turn.
    pub async fn new(
        cost: u32,
        max_concurrent: usize,
        wait_timeout: Duration,
    ) -> Result<Self, RepositoryError> {
        let turns = Arc::new(Turns::new(max_concurrent.max(1)));
        let dummy_password = uuid::Uuid::new_v4().to_string();
        let dummy_hash = run_blocking(&turns, wait_timeout, move || {
            bcrypt::hash(dummy_password, cost)
        })
        .await?;
        Ok(Self {
            cost,
            turns,
            wait_timeout,
            dummy_hash,
        })
    }

    /// How many hashes run and wait now, for the metrics.
    pub fn load(&self) -> HashingLoad {
        HashingLoad(Arc::clone(&self.turns))
    }
}

/// The hashing permits, and how many hashes wait for one.
struct Turns {
    permits: Semaphore,
    capacity: usize,
    waiting: AtomicUsize,
}

impl Turns {
    fn new(capacity: usize) -> Self {
        Self {
            permits: Semaphore::new(capacity),
            capacity,
            waiting: AtomicUsize::new(0),
        }
    }
}

/// A view of the hasher's queue: hashes running and waiting for their turn.
#[derive(Clone)]
pub struct HashingLoad(Arc<Turns>);

impl HashingLoad {
    pub fn running(&self) -> usize {
        self.0
            .capacity
            .saturating_sub(self.0.permits.available_permits())
    }

    pub fn waiting(&self) -> usize {
        self.0.waiting.load(Ordering::Relaxed)
    }
}

/// Counts one waiter for as long as it lives, however the wait ends (a permit, the
/// timeout, or the request being dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing is saturated: no turn within {0:?}")]
struct HashingSaturated(Duration);

async fn run_blocking<T: Send + 'static>(
    turns: &Turns,
    wait_timeout: Duration,
    work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
) -> Result<T, RepositoryError> {
    // Saturation, and a closed semaphore or a cancelled task (the process is stopping),
    // are outages; a panic or a bcrypt failure (a malformed stored hash) is a bug.
    let waiting = Waiting::new(&turns.waiting);
    let _permit = tokio::time::timeout(wait_timeout, turns.permits.acquire())
        .await
        .map_err(|_| RepositoryError::unavailable(HashingSaturated(wait_timeout)))?
        .map_err(RepositoryError::unavailable)?;
    drop(waiting);
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| {
            if e.is_cancelled() {
                RepositoryError::unavailable(e)
            } else {
                RepositoryError::unexpected(e)
            }
        })?
        .map_err(RepositoryError::unexpected)
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: Password) -> Result<String, RepositoryError> {
        let cost = self.cost;
        run_blocking(&self.turns, self.wait_timeout, move || {
            bcrypt::hash(password.expose(), cost)
        })
        .await
    }

    async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, RepositoryError> {
        // bcrypt reads only the first 72 bytes; stored passwords are never longer, so a
        // longer candidate must not match one that shares its first 72 bytes.
        let comparable = password.len() <= Password::MAX_BYTES;
        let known = hash.is_some() && comparable;
        let hash = match hash {
            Some(hash) if comparable => hash,
            Some(_) | None => self.dummy_hash.clone(),
        };
        let candidate = if comparable { password } else { String::new() };
        let matches = run_blocking(&self.turns, self.wait_timeout, move || {
            // A malformed stored hash is a mismatch, not an outage.
            Ok(bcrypt::verify(candidate, &hash).unwrap_or(false))
        })
        .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_and_refuses() {
        let hasher = BcryptHasher::new(4, 2, Duration::from_secs(60))
            .await
            .expect("hasher");
        let password = Password::parse(&"p".repeat(72)).expect("valid");
        let hash = hasher.hash(password).await.expect("hash");
        assert!(hasher
            .verify("p".repeat(72), Some(hash.clone()))
            .await
            .expect("verify"));
        assert!(!hasher
            .verify("q".repeat(72), Some(hash.clone()))
            .await
            .expect("verify"));
        // Shares the first 72 bytes: bcrypt alone would accept it.
        assert!(!hasher
            .verify("p".repeat(73), Some(hash.clone()))
            .await
            .expect("verify"));
        assert!(!hasher.verify("p".repeat(72), None).await.expect("verify"));
        assert!(!hasher
            .verify("x".into(), Some("not a hash".into()))
            .await
            .expect("verify"));
    }

    #[tokio::test]
    async fn a_hash_that_gets_no_turn_in_time_fails_instead_of_waiting() {
        let no_turns = Turns::new(0);

        // The outer timeout turns a hang (no limit on the wait) into a failure.
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            run_blocking(&no_turns, Duration::from_millis(10), || Ok(())),
        )
        .await
        .expect("the wait for a turn is bounded");
        assert_eq!(
            no_turns.waiting.load(Ordering::Relaxed),
            0,
            "a wait that timed out no longer counts"
        );

        let error = outcome.expect_err("no permit, so no hash");
        assert!(
            crate::startup::error_chain(&error).contains("saturated"),
            "{error:?}"
        );
    }
}
