//! Login failures: counted per scope and key in windows that start again once ended,
//! atomically under concurrency, forgiven per account, forgotten once ended. The time
//! is given to every call, so windows end without waiting.

use std::net::{IpAddr, Ipv4Addr};

use domain::throttle::{FailureWindow, Failures, LoginFailureRepository, ThrottleKeys};
use futures_util::future::join_all;
use postgres_adapter::PgLoginFailureRepository;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::support::Fixture;

const T0: OffsetDateTime = datetime!(2024-05-03 12:00:00 UTC);
const WINDOW: Duration = Duration::minutes(15);
const ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

fn keys(email: &str) -> ThrottleKeys {
    ThrottleKeys::new(email, Some(ADDRESS))
}

fn window(started: OffsetDateTime, failures: u32) -> Option<FailureWindow> {
    Some(FailureWindow { started, failures })
}

struct Counts {
    fx: Fixture,
    repo: PgLoginFailureRepository,
}

impl Counts {
    async fn new() -> Self {
        let fx = Fixture::new().await;
        let repo = PgLoginFailureRepository::new(fx.db.pool().clone());
        Self { fx, repo }
    }

    /// Counts a failure at `at`, in windows of `WINDOW`.
    async fn fail(&self, keys: &ThrottleKeys, at: OffsetDateTime) {
        self.repo
            .record_failure(keys, at, at - WINDOW)
            .await
            .expect("count a failure");
    }

    async fn of(&self, keys: &ThrottleKeys) -> Failures {
        self.repo.failures(keys).await.expect("read the counts")
    }
}

#[tokio::test]
async fn failures_are_counted_per_account_and_per_address_in_windows() {
    let counts = Counts::new().await;
    let ann = keys("ann@x.io");
    assert_eq!(counts.of(&ann).await, Failures::default());

    counts.fail(&ann, T0).await;
    counts.fail(&ann, T0 + Duration::minutes(1)).await;
    let bob = keys("bob@x.io");
    counts.fail(&bob, T0 + Duration::minutes(2)).await;

    // Each window keeps the instant of its first failure.
    assert_eq!(
        counts.of(&ann).await,
        Failures {
            account: window(T0, 2),
            address: window(T0, 3),
        }
    );
    assert_eq!(
        counts.of(&bob).await,
        Failures {
            account: window(T0 + Duration::minutes(2), 1),
            address: window(T0, 3),
        }
    );
    // Elsewhere, the account's count alone.
    let ann_elsewhere = ThrottleKeys::new("ann@x.io", Some([192, 0, 2, 8].into()));
    assert_eq!(counts.of(&ann_elsewhere).await.address, None);
    assert_eq!(counts.of(&ann_elsewhere).await.account, window(T0, 2));
}

#[tokio::test]
async fn a_failure_once_the_window_has_ended_starts_a_new_one() {
    let counts = Counts::new().await;
    let ann = keys("ann@x.io");
    for _ in 0..4 {
        counts.fail(&ann, T0).await;
    }
    // A moment before the end: counted in the same window.
    let last_moment = T0 + WINDOW - Duration::microseconds(1);
    counts.fail(&ann, last_moment).await;
    assert_eq!(counts.of(&ann).await.account, window(T0, 5));

    // At the end: a new window, from this failure.
    let end = T0 + WINDOW;
    counts.fail(&ann, end).await;
    assert_eq!(
        counts.of(&ann).await,
        Failures {
            account: window(end, 1),
            address: window(end, 1),
        }
    );
}

#[tokio::test]
async fn a_login_without_an_address_is_counted_for_its_account_only() {
    let counts = Counts::new().await;
    let unknown = ThrottleKeys::new("ann@x.io", None);
    counts.fail(&unknown, T0).await;
    counts.fail(&unknown, T0).await;
    assert_eq!(
        counts.of(&keys("ann@x.io")).await,
        Failures {
            account: window(T0, 2),
            address: None,
        }
    );
    assert_eq!(counts.fx.rows_in("login_failures").await, 1);
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    let counts = Counts::new().await;
    // Accounts of their own and one address, as a spraying client; and one account
    // from addresses of their own, as a distributed guesser.
    let sprayed: Vec<ThrottleKeys> = (0..24).map(|n| keys(&format!("user{n}@x.io"))).collect();
    let guessed: Vec<ThrottleKeys> = (0..24u8)
        .map(|n| ThrottleKeys::new("ann@x.io", Some([198, 51, 100, n].into())))
        .collect();
    join_all(
        sprayed
            .iter()
            .chain(&guessed)
            .map(|keys| counts.fail(keys, T0)),
    )
    .await;

    assert_eq!(counts.of(&keys("ann@x.io")).await.address, window(T0, 24));
    assert_eq!(counts.of(&guessed[0]).await.account, window(T0, 24));
    assert_eq!(counts.fx.rows_in("login_failures").await, 24 + 1 + 1 + 24);
}

#[tokio::test]
async fn a_success_forgives_the_account_and_nothing_else() {
    let counts = Counts::new().await;
    let ann = keys("ann@x.io");
    counts.fail(&ann, T0).await;
    counts.fail(&keys("bob@x.io"), T0).await;

    let forgive = |account: &'static str| counts.repo.forgive_account(account);
    forgive("ann@x.io").await.expect("forgive");
    assert_eq!(
        counts.of(&ann).await,
        Failures {
            account: None,
            address: window(T0, 2),
        }
    );
    assert_eq!(counts.of(&keys("bob@x.io")).await.account, window(T0, 1));

    // An account named like the address is another scope: forgiving it leaves the
    // address's count.
    let named_like_the_address = ThrottleKeys::new("192.0.2.7", None);
    counts.fail(&named_like_the_address, T0).await;
    forgive("192.0.2.7").await.expect("forgive");
    assert_eq!(counts.of(&named_like_the_address).await.account, None);
    assert_eq!(counts.of(&ann).await.address, window(T0, 2));

    // Forgiving an account without failures is no error.
    forgive("nobody@x.io").await.expect("forgive");
}

#[tokio::test]
async fn ended_windows_are_forgotten_and_current_ones_kept() {
    let counts = Counts::new().await;
    let old = keys("old@x.io");
    counts.fail(&old, T0).await;
    let recent = ThrottleKeys::new("recent@x.io", Some([192, 0, 2, 9].into()));
    counts.fail(&recent, T0 + Duration::minutes(5)).await;

    // At T0 + WINDOW the first windows have just ended; the recent ones last.
    let forgotten = counts
        .repo
        .forget_windows(T0)
        .await
        .expect("forget ended windows");
    assert_eq!(forgotten, 2);
    assert_eq!(counts.of(&old).await, Failures::default());
    assert_eq!(
        counts.of(&recent).await,
        Failures {
            account: window(T0 + Duration::minutes(5), 1),
            address: window(T0 + Duration::minutes(5), 1),
        }
    );
    assert_eq!(counts.repo.forget_windows(T0).await.expect("forget"), 0);
}

#[tokio::test]
async fn the_longest_account_key_is_stored() {
    // 254 characters of four bytes each: what `ThrottleKeys` lets through at most.
    let counts = Counts::new().await;
    let longest = ThrottleKeys::new(&"𝄞".repeat(1000), Some(ADDRESS));
    assert_eq!(longest.account().len(), 254 * 4);
    counts.fail(&longest, T0).await;
    assert_eq!(counts.of(&longest).await.account, window(T0, 1));
}
