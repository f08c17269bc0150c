//! The retry policy of deliveries, as pure functions: what an attempt's result means for
//! its delivery. A `2xx` answer delivers; `410 Gone` disables the subscription and ends
//! the delivery; anything else (another status, a redirect, no answer in time, no
//! connection, a refused target) is retried after the next of the configured delays,
//! and after the last one the delivery is given up.

use std::time::Duration;

/// The delays between attempts: the first retry comes `delays[0]` after the first
/// attempt, and so on; a delivery makes at most `delays.len() + 1` attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryDelays(Vec<Duration>);

impl RetryDelays {
    /// The contract's default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    pub const DEFAULT_SECS: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

    pub fn new(delays: Vec<Duration>) -> Self {
        Self(delays)
    }

    pub fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// The most attempts a delivery makes.
    pub fn max_attempts(&self) -> usize {
        self.0.len() + 1
    }

    /// The delay after attempt `attempt` (1-based) failed; `None` after the last.
    fn after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        self.0.get(index).copied()
    }
}

impl Default for RetryDelays {
    fn default() -> Self {
        Self(
            Self::DEFAULT_SECS
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this status (a redirect is an answer; it is not
    /// followed).
    Answered(u16),
    /// No answer came: timeout, connection failure, a target the service may not
    /// reach. The text says why, for the attempts list; it never holds the secret.
    NoAnswer(String),
}

/// What a status says about the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `2xx`: delivered.
    Accepted,
    /// `410 Gone`: the receiver wants no more deliveries.
    Gone,
    /// Anything else: try again.
    Refused,
}

impl Answer {
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Answer::Accepted,
            410 => Answer::Gone,
            _ => Answer::Refused,
        }
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done: the receiver accepted it.
    Delivered,
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Done: the last attempt failed too.
    GivenUp,
    /// Done, and the subscription is deactivated: the receiver answered `410`.
    Disable,
}

/// The state a delivery is left in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Attempts are still due.
    Pending,
    Delivered,
    /// Given up, or ended because its subscription was disabled or inactive.
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Failed,
    ];
}

impl Verdict {
    pub fn state(self) -> DeliveryState {
        match self {
            Verdict::Delivered => DeliveryState::Delivered,
            Verdict::RetryAfter(_) => DeliveryState::Pending,
            Verdict::GivenUp | Verdict::Disable => DeliveryState::Failed,
        }
    }

    /// The delay until the next attempt, if one is due.
    pub fn next_attempt_in(self) -> Option<Duration> {
        match self {
            Verdict::RetryAfter(delay) => Some(delay),
            Verdict::Delivered | Verdict::GivenUp | Verdict::Disable => None,
        }
    }

    /// Whether the subscription is to be deactivated.
    pub fn disables(self) -> bool {
        match self {
            Verdict::Disable => true,
            Verdict::Delivered | Verdict::RetryAfter(_) | Verdict::GivenUp => false,
        }
    }
}

/// The rule: the verdict on attempt number `attempt` (1 for the first) of a delivery
/// that came to `result`.
pub fn verdict(attempt: u32, result: &AttemptResult, delays: &RetryDelays) -> Verdict {
    let retry = || match delays.after(attempt) {
        Some(delay) => Verdict::RetryAfter(delay),
        None => Verdict::GivenUp,
    };
    match result {
        AttemptResult::Answered(status) => match Answer::of(*status) {
            Answer::Accepted => Verdict::Delivered,
            Answer::Gone => Verdict::Disable,
            Answer::Refused => retry(),
        },
        AttemptResult::NoAnswer(_) => retry(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(list: &[u64]) -> RetryDelays {
        RetryDelays::new(list.iter().copied().map(Duration::from_secs).collect())
    }

    /// The rule as the contract words it, for one attempt: 2xx delivers, 410
    /// disables, and anything else waits for the delay after this attempt, if any.
    fn oracle(attempt: u32, status: Option<u16>, delays: &[u64]) -> Verdict {
        if let Some(status) = status {
            if (200..300).contains(&status) {
                return Verdict::Delivered;
            }
            if status == 410 {
                return Verdict::Disable;
            }
        }
        if attempt as usize <= delays.len() {
            Verdict::RetryAfter(Duration::from_secs(delays[attempt as usize - 1]))
        } else {
            Verdict::GivenUp
        }
    }

    #[test]
    fn every_status_and_attempt_follows_the_contract() {
        let delays = [5, 300, 1800];
        let policy = secs(&delays);
        for attempt in 1..=5 {
            for status in 100..=599 {
                assert_eq!(
                    verdict(attempt, &AttemptResult::Answered(status), &policy),
                    oracle(attempt, Some(status), &delays),
                    "attempt {attempt}, status {status}"
                );
            }
            assert_eq!(
                verdict(
                    attempt,
                    &AttemptResult::NoAnswer("timed out".into()),
                    &policy
                ),
                oracle(attempt, None, &delays),
                "attempt {attempt} without an answer"
            );
        }
    }

    #[test]
    fn redirects_and_server_errors_are_retried_then_given_up() {
        let policy = secs(&[1, 1]);
        let redirect = AttemptResult::Answered(302);
        assert_eq!(
            verdict(1, &redirect, &policy),
            Verdict::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            verdict(2, &AttemptResult::Answered(500), &policy),
            Verdict::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            verdict(3, &AttemptResult::Answered(500), &policy),
            Verdict::GivenUp
        );
        assert_eq!(policy.max_attempts(), 3);
    }

    #[test]
    fn without_delays_the_first_failure_is_the_last() {
        let policy = secs(&[]);
        assert_eq!(
            verdict(1, &AttemptResult::NoAnswer("refused".into()), &policy),
            Verdict::GivenUp
        );
        assert_eq!(
            verdict(1, &AttemptResult::Answered(204), &policy),
            Verdict::Delivered
        );
        // An attempt number of 0 is no attempt the policy knows: nothing is due after it.
        assert_eq!(
            verdict(0, &AttemptResult::Answered(500), &secs(&[1])),
            Verdict::GivenUp
        );
    }

    #[test]
    fn the_default_is_the_contract_s_list() {
        let defaults: Vec<u64> = RetryDelays::default()
            .delays()
            .iter()
            .map(Duration::as_secs)
            .collect();
        assert_eq!(defaults, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(RetryDelays::default().max_attempts(), 8);
    }

    #[test]
    fn verdicts_set_state_next_attempt_and_disabling_consistently() {
        let cases = [
            (Verdict::Delivered, DeliveryState::Delivered, None, false),
            (
                Verdict::RetryAfter(Duration::from_secs(5)),
                DeliveryState::Pending,
                Some(Duration::from_secs(5)),
                false,
            ),
            (Verdict::GivenUp, DeliveryState::Failed, None, false),
            (Verdict::Disable, DeliveryState::Failed, None, true),
        ];
        for (verdict, state, next, disables) in cases {
            assert_eq!(verdict.state(), state, "{verdict:?}");
            assert_eq!(verdict.next_attempt_in(), next, "{verdict:?}");
            assert_eq!(verdict.disables(), disables, "{verdict:?}");
        }
    }
}
