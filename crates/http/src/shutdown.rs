//! Stopping without losing requests. SIGTERM (what orchestrators send) starts a
//! *drain*: for `server.drain_secs` the service still serves everything, but readiness
//! answers `503` and every response closes its connection, so that load balancers take
//! the instance out and keep-alive clients open their next connection elsewhere. Then
//! the server stops accepting connections and lets requests in flight finish, within
//! what is left of `server.shutdown_timeout_secs`.
//!
//! SIGINT (Ctrl-C: a person at a terminal) skips the drain, or ends it; a SIGINT while
//! requests in flight finish stops at once. A repeated SIGTERM changes nothing, so that
//! a supervisor that signals twice does not cut the drain short.
//!
//! Why the drain: a request sent on an idle keep-alive connection just as the server
//! stops may be closed unanswered, and the client cannot tell whether it ran. After the
//! drain, that can only happen on connections that sent nothing during all of it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;
use tokio::sync::{mpsc, Notify};

use crate::state::AppState;

/// Whether the service is stopping (draining or waiting for requests in flight); shared
/// by the stopping task, the readiness probe, [`close_connections_while_draining`] and
/// the event streams, which end when it starts.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<DrainState>);

#[derive(Debug, Default)]
struct DrainState {
    started: AtomicBool,
    changed: Notify,
}

impl Draining {
    pub fn start(&self) {
        self.0.started.store(true, Ordering::Relaxed);
        self.0.changed.notify_waiters();
    }

    pub fn is_draining(&self) -> bool {
        self.0.started.load(Ordering::Relaxed)
    }

    /// Waits until the service starts stopping (at once if it has).
    pub async fn started(&self) {
        let notified = self.0.changed.notified();
        tokio::pin!(notified);
        // Registered before looking, so that a start in between is not missed.
        notified.as_mut().enable();
        if self.is_draining() {
            return;
        }
        notified.await;
    }
}

/// Middleware: once stopping, every response (also of requests that began before)
/// carries `Connection: close`, and the connection closes once it is sent.
pub async fn close_connections_while_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let draining = response
        .request()
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.draining.is_draining());
    if draining {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

/// A request to stop the server (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// SIGTERM: drain, then stop.
    Drain,
    /// SIGINT: stop without (more) draining; during the stop, stop at once.
    Now,
}

/// The process's stop signals as a channel of stop requests. Installing the handlers
/// replaces the default action (exit), so only the binary calls this; tests send on a
/// channel of their own.
pub fn stop_signals() -> std::io::Result<mpsc::UnboundedReceiver<StopRequest>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            loop {
                let (name, request) = tokio::select! {
                    _ = terminate.recv() => ("SIGTERM", StopRequest::Drain),
                    _ = interrupt.recv() => ("SIGINT", StopRequest::Now),
                };
                tracing::info!(signal = name, "stop signal received");
                if sender.send(request).is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if sender.send(StopRequest::Now).is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}
