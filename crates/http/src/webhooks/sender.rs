//! [`WebhookSender`] over HTTP: one signed `POST` of the event, within
//! [`ATTEMPT_TIMEOUT`], following no redirect (a redirect is an answer like any other,
//! retried by the policy), through no proxy, and — unless private targets are allowed —
//! only to public addresses.
//!
//! The SSRF guard applies to the addresses actually connected to: a name is resolved at
//! every attempt by [`GuardedResolver`], which keeps only the addresses the domain's
//! target rule allows, so that a name that later resolves elsewhere (DNS rebinding) is
//! caught too; an IP address written in the URL, which is not resolved, is checked
//! before connecting.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use domain::ports::{ClaimedDelivery, SentAttempt, WebhookSender};
use domain::webhook::retry::AttemptResult;
use domain::webhook::target::{self, Refusal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderValue, CONTENT_TYPE};

use super::{signing, ATTEMPT_TIMEOUT};
use crate::dto::EventResponse;

/// Makes attempts with one shared HTTP client (its connections are reused).
#[derive(Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    allow_private_targets: bool,
}

impl HttpSender {
    /// # Errors
    /// When the HTTP client cannot be built (its TLS set-up failed).
    pub fn new(allow_private_targets: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect for us, to addresses the guard never sees.
            .no_proxy()
            .user_agent(concat!("tickets-webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private_targets {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private_targets,
        })
    }

    async fn attempt(&self, delivery: &ClaimedDelivery) -> AttemptResult {
        if !self.allow_private_targets {
            if let Some(refusal) = delivery.url.ip_literal().and_then(target::refusal) {
                return AttemptResult::NoAnswer(refused(refusal));
            }
        }
        let body = match serde_json::to_vec(&EventResponse::from(delivery.event.clone())) {
            Ok(body) => body,
            Err(e) => return AttemptResult::NoAnswer(format!("cannot encode the event: {e}")),
        };
        let id = message_id(delivery);
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = match signing::signature(&delivery.secret, &id, timestamp, &body) {
            Ok(signature) => signature,
            Err(e) => return AttemptResult::NoAnswer(e.to_string()),
        };
        let sent = self
            .client
            .post(delivery.url.as_str())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            // The body is not read: only the status matters, and a receiver's body could
            // be of any size.
            Ok(response) => AttemptResult::Answered(response.status().as_u16()),
            Err(e) => AttemptResult::NoAnswer(describe(&e)),
        }
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, delivery: &ClaimedDelivery) -> SentAttempt {
        let started = Instant::now();
        let result = self.attempt(delivery).await;
        SentAttempt {
            result,
            duration: started.elapsed(),
        }
    }
}

/// `webhook-id`: one per event and subscription (the outbox holds one delivery per
/// pair), so every retry of a delivery carries the same id and receivers deduplicate
/// on it.
pub fn message_id(delivery: &ClaimedDelivery) -> String {
    format!("msg_{}_{}", delivery.event.id, delivery.webhook_id)
}

fn refused(refusal: Refusal) -> String {
    format!(
        "refused: the target is {refusal}; webhooks reach only public addresses unless \
         TICKETS__WEBHOOKS__ALLOW_PRIVATE_TARGETS is true"
    )
}

/// Why no answer came, for the attempts list. Never the URL (it may carry a token of
/// the receiver in its query) and never the secret (no error holds it).
fn describe(error: &reqwest::Error) -> String {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(inner) = cause {
        if let Some(refusal) = inner.downcast_ref::<TargetRefused>() {
            return match refusal.0 {
                Some(refusal) => refused(refusal),
                None => "the target's name resolves to no address".to_owned(),
            };
        }
        cause = inner.source();
    }
    if error.is_timeout() {
        return format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs());
    }
    // reqwest's own text names the URL; its causes (hyper's, the system's) do not.
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// Resolves names as the system does, then keeps only the addresses that webhooks may
/// reach; none left is an error naming why the first was refused.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let (allowed, first_refusal) = allowed_addresses(resolved);
            if allowed.is_empty() {
                return Err(
                    Box::new(TargetRefused(first_refusal)) as Box<dyn StdError + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The addresses that the target rule allows, and why the first refused one was.
fn allowed_addresses(
    resolved: impl IntoIterator<Item = SocketAddr>,
) -> (Vec<SocketAddr>, Option<Refusal>) {
    let mut first_refusal = None;
    let allowed = resolved
        .into_iter()
        .filter(|address| match target::refusal(address.ip()) {
            None => true,
            Some(refusal) => {
                first_refusal.get_or_insert(refusal);
                false
            }
        })
        .collect();
    (allowed, first_refusal)
}

/// A name resolved to no address that webhooks may reach (`None`: to no address).
#[derive(Debug)]
struct TargetRefused(Option<Refusal>);

impl fmt::Display for TargetRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(refusal) => write!(
                f,
                "the target resolves only to refused addresses ({refusal})"
            ),
            None => f.write_str("the target resolves to no address"),
        }
    }
}

impl StdError for TargetRefused {}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("an IP address"), 443)
    }

    #[test]
    fn only_public_addresses_remain_after_resolving() {
        let (allowed, refusal) = allowed_addresses([
            socket("127.0.0.1"),
            socket("93.184.216.34"),
            socket("::1"),
            socket("2606:2800:220:1::1"),
        ]);
        assert_eq!(
            allowed,
            vec![socket("93.184.216.34"), socket("2606:2800:220:1::1")]
        );
        assert_eq!(refusal, Some(Refusal::Loopback));

        let (allowed, refusal) = allowed_addresses([
            socket("10.1.2.3"),
            socket("fd00::1"),
            socket("169.254.169.254"),
        ]);
        assert!(allowed.is_empty());
        assert_eq!(refusal, Some(Refusal::Private));
        assert_eq!(allowed_addresses([]), (Vec::new(), None));
    }

    #[tokio::test]
    async fn a_name_of_loopback_addresses_is_refused() {
        let resolved = GuardedResolver
            .resolve("localhost".parse().expect("a name"))
            .await;
        let error = resolved.err().expect("localhost is refused");
        assert!(error.to_string().contains("loopback"), "{error}");
    }
}
