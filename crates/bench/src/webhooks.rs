//! A webhook receiver in the load generator: an HTTP/1.1 server on a port of its own
//! that answers every `POST` with 200 at once, noting when it arrived and what it
//! carried, so that the bench can tell the deliveries' rate and check their Standard
//! Webhooks signatures afterwards, off the clock.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;

use crate::background::Background;
use crate::Error;

/// One request the receiver answered.
pub struct Delivery {
    pub at: Instant,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
}

#[derive(Default)]
struct Inbox {
    deliveries: Vec<Delivery>,
    ids: HashSet<String>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    inbox: Arc<Mutex<Inbox>>,
    _running: Background,
}

impl Receiver {
    /// Listens on a free loopback port, on a thread of its own: the service delivers
    /// whenever it likes, not only while the load generator's runtime runs.
    pub fn start() -> Result<Self, Error> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let shared = inbox.clone();
        let running = Background::spawn("webhook-receiver", move || serve(listener, shared))?;
        Ok(Self {
            addr,
            inbox,
            _running: running,
        })
    }

    /// Distinct `webhook-id`s received so far.
    pub fn distinct(&self) -> usize {
        self.lock().ids.len()
    }

    /// Everything received so far, in order of arrival.
    pub fn take(&self) -> Vec<Delivery> {
        let mut inbox = self.lock();
        inbox.ids.clear();
        std::mem::take(&mut inbox.deliveries)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn serve(listener: std::net::TcpListener, inbox: Arc<Mutex<Inbox>>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bench: the webhook receiver cannot listen: {e}");
            return;
        }
    };
    loop {
        let socket = match listener.accept().await {
            Ok((socket, _)) => socket,
            Err(e) => {
                eprintln!("bench: the webhook receiver cannot accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| receive(request, inbox.clone()));
            // The sender closing its connection ends this; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

async fn receive(
    request: Request<Incoming>,
    inbox: Arc<Mutex<Inbox>>,
) -> Result<Response<Empty<Bytes>>, hyper::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = request.into_body().collect().await?.to_bytes();
    let at = Instant::now();
    let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
    inbox.ids.insert(id.clone());
    inbox.deliveries.push(Delivery {
        at,
        id,
        timestamp,
        signature,
        body,
    });
    Ok(Response::new(Empty::new()))
}

/// Whether `delivery` carries a `v1` signature of `{id}.{timestamp}.{body}` by the
/// subscription's `secret` (`whsec_` and the key's base64), as Standard Webhooks asks.
/// A plain comparison: a benchmark has no timing attacker to fear.
pub fn signed_by(secret: &str, delivery: &Delivery) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(delivery.id.as_bytes());
    mac.update(b".");
    mac.update(delivery.timestamp.as_bytes());
    mac.update(b".");
    mac.update(&delivery.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    delivery
        .signature
        .split_whitespace()
        .any(|signature| signature == expected)
}

/// The `message_id` of a delivered event's data, if it has one.
pub fn message_id(delivery: &Delivery) -> Option<i64> {
    let event: serde_json::Value = serde_json::from_slice(&delivery.body).ok()?;
    event.get("data")?.get("message_id")?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(signature: &str) -> Delivery {
        Delivery {
            at: Instant::now(),
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek".to_owned(),
            timestamp: "1614265330".to_owned(),
            signature: signature.to_owned(),
            body: Bytes::from_static(br#"{"test": 2432232314}"#),
        }
    }

    /// The example of the Standard Webhooks specification's reference implementations.
    #[test]
    fn checks_signatures_like_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(signed_by(secret, &delivery(good)));
        assert!(signed_by(secret, &delivery(&format!("v1,bm90IGl0 {good}"))));
        assert!(!signed_by(secret, &delivery("v1,bm90IGl0")));
        assert!(!signed_by(
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &delivery(good)
        ));
        let mut tampered = delivery(good);
        tampered.body = Bytes::from_static(br#"{"test": 2432232315}"#);
        assert!(!signed_by(secret, &tampered));
    }

    #[test]
    fn reads_the_message_of_an_event() {
        let mut event = delivery("");
        event.body = Bytes::from_static(
            br#"{"id":5,"type":"message.created","data":{"message_id":9,"type":"request"}}"#,
        );
        assert_eq!(message_id(&event), Some(9));
        assert_eq!(message_id(&delivery("")), None);
    }
}
