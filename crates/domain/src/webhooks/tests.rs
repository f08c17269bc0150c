//! Unit tests of the webhook use cases against mockall mocks of the ports. Each test
//! says which port calls must happen, with which arguments, and which must not happen.

use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::event::{EventData, TicketEvent};
use crate::page::PageLimit;
use crate::ports::{Lease, MockWebhookRepository, MockWebhookSender, SentAttempt};
use crate::webhook::retry::AttemptResult;
use crate::webhook::{EventSelection, WebhookDescription, WebhookSecret, WebhookUrl};
use crate::{
    DeliveryId, EventId, MessageId, MessageType, RepositoryErrorKind, Role, TicketId, UserId,
};

const WEBHOOK: i64 = 5;

fn caller(role: Role) -> Caller {
    Caller {
        id: UserId::new(1).unwrap(),
        role,
    }
}

fn webhook_id() -> WebhookId {
    WebhookId::new(WEBHOOK).unwrap()
}

fn url() -> WebhookUrl {
    WebhookUrl::parse("https://crm.example.com/hooks").unwrap()
}

fn webhook(active: bool) -> Webhook {
    Webhook {
        id: webhook_id(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        url: url(),
        events: EventSelection::All,
        description: WebhookDescription::parse("CRM").unwrap(),
        active,
    }
}

fn new_webhook() -> NewWebhook {
    NewWebhook {
        url: url(),
        events: EventSelection::parse(&["ticket.created"]).unwrap(),
        description: WebhookDescription::default(),
        secret: WebhookSecret::new("whsec_AAAA".to_owned()),
    }
}

fn page<K>() -> PageRequest<K> {
    PageRequest::first(PageLimit::parse("20").unwrap())
}

/// The three roles, and whether each may manage webhooks.
const ROLES: [(Role, bool); 3] = [
    (Role::Customer, false),
    (Role::Staff, false),
    (Role::Superuser, true),
];

/// A repository that expects no call at all.
fn untouched() -> MockWebhookRepository {
    let mut repo = MockWebhookRepository::new();
    repo.expect_create_webhook().times(0);
    repo.expect_list_webhooks().times(0);
    repo.expect_find_webhook().times(0);
    repo.expect_update_webhook().times(0);
    repo.expect_delete_webhook().times(0);
    repo.expect_list_attempts().times(0);
    repo.expect_count_deliveries().times(0);
    repo
}

fn service(repo: MockWebhookRepository) -> WebhookService {
    WebhookService::new(Arc::new(repo))
}

#[tokio::test]
async fn staff_and_customers_are_refused_everything_before_any_repository_call() {
    for (role, allowed) in ROLES {
        if allowed {
            continue;
        }
        let webhooks = service(untouched());
        let who = caller(role);
        let id = webhook_id();
        let results = [
            webhooks.create(who, new_webhook()).await.err(),
            webhooks.list(who, page()).await.err(),
            webhooks.get(who, id).await.err(),
            webhooks
                .update(
                    who,
                    id,
                    WebhookChanges {
                        active: Some(false),
                        ..WebhookChanges::default()
                    },
                )
                .await
                .err(),
            webhooks.delete(who, id).await.err(),
            webhooks.attempts(who, id, page()).await.err(),
        ];
        for result in results {
            assert!(
                matches!(result, Some(WebhookError::SuperuserOnly)),
                "{role:?}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_superuser_creates_with_the_values_given() {
    let mut repo = untouched();
    repo.checkpoint();
    repo.expect_create_webhook()
        .withf(|new| *new == new_webhook())
        .times(1)
        .returning(|_| Ok(webhook(true)));
    let created = service(repo)
        .create(caller(Role::Superuser), new_webhook())
        .await
        .unwrap();
    assert_eq!(created, webhook(true));
}

#[tokio::test]
async fn a_missing_webhook_is_not_found_for_every_read_and_write() {
    let mut repo = MockWebhookRepository::new();
    repo.expect_find_webhook().returning(|_| Ok(None));
    repo.expect_update_webhook().returning(|_, _| Ok(None));
    repo.expect_delete_webhook().returning(|_| Ok(false));
    repo.expect_list_attempts().returning(|_, _| Ok(None));
    let webhooks = service(repo);
    let su = caller(Role::Superuser);
    let id = webhook_id();
    let deactivate = WebhookChanges {
        active: Some(false),
        ..WebhookChanges::default()
    };
    let results = [
        webhooks.get(su, id).await.err(),
        webhooks.update(su, id, deactivate).await.err(),
        webhooks
            .update(su, id, WebhookChanges::default())
            .await
            .err(),
        webhooks.delete(su, id).await.err(),
        webhooks.attempts(su, id, page()).await.err(),
    ];
    for result in results {
        assert!(matches!(result, Some(WebhookError::NotFound)), "{result:?}");
    }
}

#[tokio::test]
async fn an_update_writes_its_changes_and_an_empty_one_writes_nothing() {
    let mut repo = MockWebhookRepository::new();
    let changes = WebhookChanges {
        url: Some(WebhookUrl::parse("https://other.example.com/").unwrap()),
        active: Some(false),
        ..WebhookChanges::default()
    };
    let expected = changes.clone();
    repo.expect_update_webhook()
        .withf(move |id, c| *id == webhook_id() && *c == expected)
        .times(1)
        .returning(|_, _| Ok(Some(webhook(false))));
    repo.expect_find_webhook()
        .times(1)
        .returning(|_| Ok(Some(webhook(true))));
    let webhooks = service(repo);
    let su = caller(Role::Superuser);
    assert_eq!(
        webhooks.update(su, webhook_id(), changes).await.unwrap(),
        webhook(false)
    );
    assert_eq!(
        webhooks
            .update(su, webhook_id(), WebhookChanges::default())
            .await
            .unwrap(),
        webhook(true)
    );
}

#[tokio::test]
async fn outages_stay_outages() {
    let mut repo = MockWebhookRepository::new();
    repo.expect_list_webhooks()
        .returning(|_| Err(RepositoryError::unavailable("pool timed out")));
    let error = service(repo)
        .list(caller(Role::Superuser), page())
        .await
        .unwrap_err();
    match error {
        WebhookError::Unexpected(e) => assert_eq!(e.kind(), RepositoryErrorKind::Unavailable),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_outbox_counts_are_the_repository_s() {
    let counts = DeliveryCounts {
        pending: 3,
        failed: 7,
    };
    let mut repo = untouched();
    repo.checkpoint();
    repo.expect_count_deliveries()
        .times(1)
        .returning(move || Ok(counts));
    assert_eq!(service(repo).delivery_counts().await.unwrap(), counts);

    let mut down = MockWebhookRepository::new();
    down.expect_count_deliveries()
        .returning(|| Err(RepositoryError::unavailable("pool timed out")));
    let error = service(down).delivery_counts().await.unwrap_err();
    assert_eq!(error.kind(), RepositoryErrorKind::Unavailable);
}

// ---- delivering --------------------------------------------------------------------

const DELIVERY: i64 = 77;

fn lease() -> Lease {
    Lease {
        delivery_id: DeliveryId::new(DELIVERY).unwrap(),
        until: datetime!(2026-11-28 11:15:10 UTC),
    }
}

fn claimed(active: bool, attempts_made: u32) -> ClaimedDelivery {
    ClaimedDelivery {
        lease: lease(),
        webhook_id: webhook_id(),
        url: url(),
        secret: WebhookSecret::new("whsec_AAAA".to_owned()),
        active,
        attempts_made,
        event: TicketEvent {
            id: EventId::new(981).unwrap(),
            ticket_id: TicketId::new(10).unwrap(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            actor: None,
            data: EventData::message_posted(MessageId::new(7).unwrap(), MessageType::Note),
        },
    }
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        retry_delays: RetryDelays::new(vec![Duration::from_secs(5), Duration::from_secs(300)]),
        lease: Duration::from_secs(60),
    }
}

fn sender_answering(result: AttemptResult) -> MockWebhookSender {
    let mut sender = MockWebhookSender::new();
    sender
        .expect_send()
        .withf(|delivery| *delivery == claimed(true, delivery.attempts_made))
        .times(1)
        .returning(move |_| SentAttempt {
            result: result.clone(),
            duration: Duration::from_millis(42),
        });
    sender
}

fn deliveries(repo: MockWebhookRepository, sender: MockWebhookSender) -> DeliveryService {
    DeliveryService::new(Arc::new(repo), Arc::new(sender), policy())
}

/// What `deliver` records for attempt `attempts_made + 1` that came to `result`.
async fn recorded(attempts_made: u32, result: AttemptResult) -> AttemptRecord {
    let record = Arc::new(std::sync::Mutex::new(None));
    let mut repo = MockWebhookRepository::new();
    let keep = Arc::clone(&record);
    repo.expect_record_attempt()
        .withf(|held, _| *held == lease())
        .times(1)
        .returning(move |_, attempt| {
            *keep.lock().unwrap() = Some(attempt);
            Ok(true)
        });
    repo.expect_drop_delivery().times(0);
    let outcome = deliveries(repo, sender_answering(result))
        .deliver(claimed(true, attempts_made))
        .await
        .unwrap();
    let record = record.lock().unwrap().clone().unwrap();
    assert_eq!(outcome, DeliveryOutcome::Attempted(record.verdict));
    assert_eq!(record.duration, Duration::from_millis(42));
    record
}

#[tokio::test]
async fn each_attempt_is_recorded_with_the_policy_s_verdict() {
    let cases = [
        (0, AttemptResult::Answered(200), Verdict::Delivered),
        (2, AttemptResult::Answered(204), Verdict::Delivered),
        (0, AttemptResult::Answered(410), Verdict::Disable),
        (
            0,
            AttemptResult::Answered(500),
            Verdict::RetryAfter(Duration::from_secs(5)),
        ),
        (
            1,
            AttemptResult::Answered(302),
            Verdict::RetryAfter(Duration::from_secs(300)),
        ),
        (2, AttemptResult::Answered(500), Verdict::GivenUp),
        (
            0,
            AttemptResult::NoAnswer("timed out".to_owned()),
            Verdict::RetryAfter(Duration::from_secs(5)),
        ),
        (
            2,
            AttemptResult::NoAnswer("refused: a loopback address".to_owned()),
            Verdict::GivenUp,
        ),
    ];
    for (attempts_made, result, verdict) in cases {
        let record = recorded(attempts_made, result.clone()).await;
        assert_eq!(record.result, result);
        assert_eq!(
            record.verdict, verdict,
            "after {attempts_made} attempts, {result:?}"
        );
    }
}

#[tokio::test]
async fn an_inactive_webhook_gets_no_attempt_and_its_delivery_is_dropped() {
    let mut sender = MockWebhookSender::new();
    sender.expect_send().times(0);
    let mut repo = MockWebhookRepository::new();
    repo.expect_record_attempt().times(0);
    repo.expect_drop_delivery()
        .withf(|held| *held == lease())
        .times(1)
        .returning(|_| Ok(true));
    let outcome = deliveries(repo, sender)
        .deliver(claimed(false, 0))
        .await
        .unwrap();
    assert_eq!(outcome, DeliveryOutcome::Dropped);
}

#[tokio::test]
async fn a_lost_lease_is_reported_not_retried() {
    let mut repo = MockWebhookRepository::new();
    repo.expect_record_attempt()
        .times(1)
        .returning(|_, _| Ok(false));
    let outcome = deliveries(repo, sender_answering(AttemptResult::Answered(200)))
        .deliver(claimed(true, 0))
        .await
        .unwrap();
    assert_eq!(outcome, DeliveryOutcome::LeaseLost);

    let mut repo = MockWebhookRepository::new();
    repo.expect_drop_delivery()
        .times(1)
        .returning(|_| Ok(false));
    let mut sender = MockWebhookSender::new();
    sender.expect_send().times(0);
    let outcome = deliveries(repo, sender)
        .deliver(claimed(false, 0))
        .await
        .unwrap();
    assert_eq!(outcome, DeliveryOutcome::LeaseLost);
}

#[tokio::test]
async fn claims_ask_for_the_limit_with_the_policy_s_lease_and_zero_asks_nothing() {
    let mut repo = MockWebhookRepository::new();
    repo.expect_claim_due()
        .withf(|limit, lease| *limit == 8 && *lease == Duration::from_secs(60))
        .times(1)
        .returning(|_, _| Ok(vec![claimed(true, 0)]));
    let mut sender = MockWebhookSender::new();
    sender.expect_send().times(0);
    let service = deliveries(repo, sender);
    assert_eq!(service.claim(8).await.unwrap(), vec![claimed(true, 0)]);
    assert!(service.claim(0).await.unwrap().is_empty());
}
