//! The throttling rule as pure functions of windows and an instant, and the throttled
//! login against mockall mocks of the counts, the user repository and the hasher.
//! Refusals are checked to happen before the calls they must prevent (`.times(0)`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::ports::{Credentials, MockPasswordHasher, MockTicketRepository, MockUserRepository};
use crate::UserId;

const NOW: OffsetDateTime = datetime!(2024-05-03 12:00:00 UTC);
const WINDOW_SECS: u64 = 60;
const ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn policy(per_account: u32, per_address: u32) -> ThrottlePolicy {
    ThrottlePolicy::new(
        per_account,
        per_address,
        std::time::Duration::from_secs(WINDOW_SECS),
    )
}

fn window(started: OffsetDateTime, failures: u32) -> Option<FailureWindow> {
    Some(FailureWindow { started, failures })
}

fn account_only(started: OffsetDateTime, failures: u32) -> Failures {
    Failures {
        account: window(started, failures),
        address: None,
    }
}

fn wait(policy: &ThrottlePolicy, failures: Failures, at: OffsetDateTime) -> Option<u64> {
    policy
        .throttled(&failures, at)
        .map(|throttled| throttled.retry_after_secs)
}

// ---- the rule -----------------------------------------------------------------------

#[test]
fn an_account_is_throttled_from_its_limit_until_its_window_ends() {
    let policy = policy(3, 100);
    let started = NOW;
    for (failures, at, expected) in [
        (2, started, None),
        (3, started, Some(60)),
        (7, started, Some(60)),
        // Whole seconds of what is left, rounded down, at least 1.
        (3, started + Duration::milliseconds(10_700), Some(49)),
        (3, started + Duration::milliseconds(59_500), Some(1)),
        (3, started + Duration::milliseconds(59_999), Some(1)),
        // A window ends exactly `window` after it started.
        (3, started + Duration::seconds(60), None),
        (3, started + Duration::seconds(61), None),
    ] {
        assert_eq!(
            wait(&policy, account_only(started, failures), at),
            expected,
            "{failures} failures, {} after the start",
            at - started
        );
    }
}

#[test]
fn each_key_has_its_own_limit() {
    let policy = policy(5, 2);
    let two = window(NOW, 2);
    let by_address = Failures {
        account: None,
        address: two,
    };
    let by_account = Failures {
        account: two,
        address: None,
    };
    assert_eq!(wait(&policy, by_address, NOW), Some(60));
    assert_eq!(wait(&policy, by_account, NOW), None);
    assert_eq!(wait(&policy, Failures::default(), NOW), None);
}

#[test]
fn the_longer_wait_wins() {
    let policy = policy(1, 1);
    let failures = Failures {
        account: window(NOW - Duration::seconds(50), 1),
        address: window(NOW - Duration::seconds(20), 1),
    };
    assert_eq!(wait(&policy, failures, NOW), Some(40));
    let failures = Failures {
        account: failures.address,
        address: failures.account,
    };
    assert_eq!(wait(&policy, failures, NOW), Some(40));
}

#[test]
fn a_window_that_seems_to_start_later_waits_no_longer_than_a_window() {
    // Another replica's clock a little ahead.
    let failures = account_only(NOW + Duration::seconds(5), 3);
    assert_eq!(wait(&policy(3, 3), failures, NOW), Some(60));
}

#[test]
fn windows_end_a_window_before_now_and_are_at_most_a_year_long() {
    assert_eq!(policy(1, 1).ended_by(NOW), NOW - Duration::seconds(60));
    let long = ThrottlePolicy::new(1, 1, std::time::Duration::from_secs(u64::MAX));
    assert_eq!(long.window(), ThrottlePolicy::MAX_WINDOW);
    let days = ThrottlePolicy::new(1, 1, std::time::Duration::from_secs(86_400 * 2));
    assert_eq!(days.window(), Duration::days(2));
}

#[test]
fn keys_ignore_the_case_and_spaces_of_the_email_and_cut_overlong_ones() {
    let keys = ThrottleKeys::new("  Ann@Example.COM ", Some(ADDRESS));
    assert_eq!(keys.account(), "ann@example.com");
    assert_eq!(keys.address(), Some("10.0.0.1"));

    let keys = ThrottleKeys::new("a@x.io", Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(keys.address(), Some("::1"));
    assert_eq!(ThrottleKeys::new("a@x.io", None).address(), None);

    let overlong = format!("{}@x.io", "É".repeat(300));
    let keys = ThrottleKeys::new(&overlong, None);
    assert_eq!(keys.account().chars().count(), Email::MAX_LEN);
    assert!(keys.account().chars().all(|c| c == 'é'), "lower-cased too");
}

// ---- the throttled login --------------------------------------------------------------

const USER: i64 = 7;
const EMAIL: &str = " Ann@x.io ";

fn user_id() -> UserId {
    UserId::new(USER).expect("a positive id")
}

/// What the user service finds when the password is checked.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    Right,
    Wrong,
    Outage,
}

/// A user service that must not be asked at all.
fn untouched_users() -> UserService {
    UserService::new(
        Arc::new(MockUserRepository::new()),
        Arc::new(MockTicketRepository::new()),
        Arc::new(MockPasswordHasher::new()),
    )
}

/// A user service that checks one password and finds `verdict`.
fn users_finding(verdict: Verdict) -> UserService {
    let mut users = MockUserRepository::new();
    users
        .expect_find_credentials()
        .withf(|email| email == "Ann@x.io")
        .times(1)
        .returning(|_| {
            Ok(Some(Credentials {
                user_id: user_id(),
                password_hash: "$2b$04$stored".to_owned(),
                is_active: true,
                role: crate::Role::Staff,
            }))
        });
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_verify()
        .times(1)
        .returning(move |_, _| match verdict {
            Verdict::Right => Ok(true),
            Verdict::Wrong => Ok(false),
            Verdict::Outage => Err(RepositoryError::unavailable("hashing saturated")),
        });
    UserService::new(
        Arc::new(users),
        Arc::new(MockTicketRepository::new()),
        Arc::new(hasher),
    )
}

/// Counts that hold `stored` for Ann (from `ADDRESS`, when the login is from there).
/// A mock panics on a call it does not expect: a test adds the writes it allows.
fn counts_holding(stored: Failures) -> MockLoginFailureRepository {
    let mut counts = MockLoginFailureRepository::new();
    counts
        .expect_failures()
        .withf(|keys| keys.account() == "ann@x.io")
        .times(1)
        .return_once(move |_| Ok(stored));
    counts
}

async fn log_in(
    counts: MockLoginFailureRepository,
    users: &UserService,
    address: Option<IpAddr>,
) -> Result<Caller, LoginError> {
    LoginThrottle::new(Arc::new(counts), policy(3, 5))
        .login(users, EMAIL, "a password".to_owned(), address, NOW)
        .await
}

fn outcome(result: Result<Caller, LoginError>) -> String {
    match result {
        Ok(caller) => format!("user {}", caller.id),
        Err(LoginError::InvalidCredentials) => "invalid credentials".to_owned(),
        Err(LoginError::TooManyFailures(t)) => format!("retry after {}", t.retry_after_secs),
        Err(LoginError::Unexpected(e)) => format!("unexpected: {:?}", e.kind()),
    }
}

#[tokio::test]
async fn a_throttled_login_checks_no_password_and_counts_nothing() {
    for (stored, expected) in [
        (
            account_only(NOW - Duration::seconds(15), 3),
            "retry after 45",
        ),
        (
            Failures {
                account: None,
                address: window(NOW - Duration::seconds(1), 5),
            },
            "retry after 59",
        ),
    ] {
        // Even the right password: the user service is not asked.
        let result = log_in(counts_holding(stored), &untouched_users(), Some(ADDRESS)).await;
        assert_eq!(outcome(result), expected, "{stored:?}");
    }
}

#[tokio::test]
async fn below_the_limits_or_after_the_window_the_password_is_checked() {
    for stored in [
        Failures {
            account: window(NOW, 2),
            address: window(NOW, 4),
        },
        account_only(NOW - Duration::seconds(60), 3),
    ] {
        let mut counts = counts_holding(stored);
        counts
            .expect_forgive_account()
            .withf(|account| account == "ann@x.io")
            .times(1)
            .returning(|_| Ok(()));
        let users = users_finding(Verdict::Right);
        let result = log_in(counts, &users, Some(ADDRESS)).await;
        assert_eq!(outcome(result), format!("user {USER}"), "{stored:?}");
    }
}

#[tokio::test]
async fn invalid_credentials_are_counted_for_the_account_and_the_address() {
    for address in [Some(ADDRESS), None] {
        let mut counts = counts_holding(Failures::default());
        let expected = address.map(|ip| ip.to_string());
        counts
            .expect_record_failure()
            .withf(move |keys, now, ended| {
                keys.account() == "ann@x.io"
                    && keys.address() == expected.as_deref()
                    && *now == NOW
                    && *ended == NOW - Duration::seconds(60)
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let users = users_finding(Verdict::Wrong);
        let result = log_in(counts, &users, address).await;
        assert_eq!(outcome(result), "invalid credentials", "{address:?}");
    }
}

#[tokio::test]
async fn an_outage_of_the_login_itself_is_not_counted() {
    let counts = counts_holding(Failures::default());
    let users = users_finding(Verdict::Outage);
    let result = log_in(counts, &users, Some(ADDRESS)).await;
    assert_eq!(outcome(result), "unexpected: Unavailable");
}

#[tokio::test]
async fn without_its_counts_a_login_fails_closed() {
    // The counts cannot be read: no password is checked.
    let mut counts = MockLoginFailureRepository::new();
    counts
        .expect_failures()
        .returning(|_| Err(RepositoryError::unavailable("pool timed out")));
    let result = log_in(counts, &untouched_users(), Some(ADDRESS)).await;
    assert_eq!(outcome(result), "unexpected: Unavailable");

    // A failure that cannot be counted, or a success that cannot be forgiven, gives
    // no verdict either way.
    for verdict in [Verdict::Wrong, Verdict::Right] {
        let mut counts = counts_holding(Failures::default());
        counts
            .expect_record_failure()
            .returning(|_, _, _| Err(RepositoryError::unavailable("connection lost")));
        counts
            .expect_forgive_account()
            .returning(|_| Err(RepositoryError::unavailable("connection lost")));
        let users = users_finding(verdict);
        let result = log_in(counts, &users, Some(ADDRESS)).await;
        assert_eq!(outcome(result), "unexpected: Unavailable", "{verdict:?}");
    }
}

#[tokio::test]
async fn forgetting_asks_for_the_windows_ended_by_now() {
    let mut counts = MockLoginFailureRepository::new();
    counts
        .expect_forget_windows()
        .withf(|ended| *ended == NOW - Duration::seconds(60))
        .times(1)
        .returning(|_| Ok(4));
    let throttle = LoginThrottle::new(Arc::new(counts), policy(3, 5));
    assert_eq!(throttle.forget_ended_windows(NOW).await.ok(), Some(4));
}
