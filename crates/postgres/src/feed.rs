//! The tail of the ticket event log, for live streams: one task per process reads every
//! new event from `ticket_events`, in id order, and hands it to the process's streams
//! through a bounded broadcast channel. Nothing lives only in memory: the table is the
//! source, and the channel only says what to send now.
//!
//! - **Waking**: writers `NOTIFY ticket_events` right after their commit (see
//!   `events::NOTIFY`); the tail `LISTEN`s on a dedicated connection of its own (a
//!   pooled one would drop notifications when recycled) and reads the table when one
//!   arrives, and at least every [`TailSettings::poll_interval`] anyway.
//! - **Reconnecting**: a lost connection is reopened with backoff, and reading resumes
//!   after the last event handed out, so a notification lost meanwhile loses nothing.
//! - **Order without gaps**: ids are taken from a sequence before commit, so a
//!   transaction can commit id 8 while id 7's is still running. The tail hands out ids
//!   only in unbroken runs. A missing id is waited for until every transaction that was
//!   running when the hole was first seen has ended (the snapshot's `xmin` has passed
//!   that snapshot's `xmax`): then it belongs to a rolled-back transaction and is
//!   skipped. Every writer has written a row before it takes an event id, so it has a
//!   transaction id by then, and the snapshot sees it running.
//! - **The horizon**: the id up to which the log is final. A stream that resumes reads
//!   what it missed from the table up to the horizon, then takes live events after it.
//! - **Sharing**: each event is handed out once, as one `Arc` that every stream
//!   receives; the caller may choose what the `Arc` holds (see [`EventTail`]).
//! - **Commits**: every notification heard is also passed on as it comes, before the
//!   log is read ([`EventTail::commits`]), for whoever wants to know that a write has
//!   just committed (the webhook worker: the same transaction queued its deliveries).

use std::sync::Arc;
use std::time::Duration;

use domain::feed::FeedEvent;
use domain::RepositoryError;
use futures_util::future::poll_fn;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::events;
use crate::pool::PoolSetupError;

/// How to reach the log and how much to buffer.
#[derive(Debug, Clone)]
pub struct TailSettings {
    /// A `postgres://` URL (or a libpq key-value string).
    pub url: String,
    /// Events buffered for the slowest stream; a stream further behind is told that it
    /// lagged (and is then ended: it resumes from the table).
    pub buffer: usize,
    /// How often the log is read when no notification comes.
    pub poll_interval: Duration,
}

/// The handle of the tail task; dropping it stops the task.
///
/// `E` is what the streams receive of each event, built once from the [`FeedEvent`]
/// and shared by all of them: the event itself by default, or a value of the caller's
/// that keeps beside it what every stream would otherwise compute for itself (the HTTP
/// adapter keeps the event's encoded frame there).
pub struct EventTail<E = FeedEvent> {
    events: broadcast::Sender<Arc<E>>,
    /// The last event id handed out (0: none, the log was empty); `None` until known.
    horizon: watch::Receiver<Option<i64>>,
    commits: watch::Sender<()>,
    task: JoinHandle<()>,
}

/// Wakes when a write has committed events (see [`EventTail::commits`]).
pub struct Commits(watch::Receiver<()>);

impl Commits {
    /// Waits for a commit heard of since this was made or last returned; several
    /// commits may end one wait. Also returns after the tail (re)connects, since
    /// commits meanwhile went unheard. Never returns once the tail is gone.
    pub async fn next(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What the tail reads at once.
const BATCH: i64 = 1000;
/// How soon the tail looks again at a hole it is waiting for.
const HOLE_RECHECK: Duration = Duration::from_millis(20);

impl<E> EventTail<E>
where
    E: From<FeedEvent> + Send + Sync + 'static,
{
    /// Starts the tail on the current runtime. It connects in the background; until it
    /// has found where the log ends, [`EventTail::subscribe`] has no horizon.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn start(settings: TailSettings) -> Result<Self, PoolSetupError> {
        let mut config: tokio_postgres::Config =
            settings.url.parse().map_err(PoolSetupError::InvalidUrl)?;
        config.application_name("tickets-event-tail");
        let (events, _) = broadcast::channel(settings.buffer.max(1));
        let (horizon_tx, horizon) = watch::channel(None);
        let (commits, _) = watch::channel(());
        let task = tokio::spawn(run(
            config,
            settings,
            events.clone(),
            horizon_tx,
            commits.clone(),
        ));
        Ok(Self {
            events,
            horizon,
            commits,
            task,
        })
    }

    /// A receiver of the events handed out from now on, and the horizon at the time of
    /// subscribing: every event up to it is in the table for good, and every event
    /// after it comes through the receiver (an event may come both ways; the
    /// receiver's are in id order).
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<E>>, Option<i64>) {
        let receiver = self.events.subscribe();
        (receiver, *self.horizon.borrow())
    }
}

impl<E> EventTail<E> {
    /// Waits at most `wait` for the tail to know its horizon.
    pub async fn ready(&self, wait: Duration) -> Option<i64> {
        let mut horizon = self.horizon.clone();
        let known = tokio::time::timeout(wait, horizon.wait_for(Option::is_some)).await;
        match known {
            Ok(Ok(found)) => *found,
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// Wakes at every commit the tail hears of, as soon as it hears of it: before the
    /// tail reads the new events, and whether or not it may hand them out yet (a hole
    /// before them holds those back, not the commit).
    pub fn commits(&self) -> Commits {
        Commits(self.commits.subscribe())
    }

    /// How many streams listen now.
    pub fn listeners(&self) -> usize {
        self.events.receiver_count()
    }
}

impl<E> Drop for EventTail<E> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects, listens and reads, reconnecting for ever with backoff.
async fn run<E: From<FeedEvent>>(
    config: tokio_postgres::Config,
    settings: TailSettings,
    events: broadcast::Sender<Arc<E>>,
    horizon: watch::Sender<Option<i64>>,
    commits: watch::Sender<()>,
) {
    let mut tail = Tail::default();
    let mut backoff = Backoff::default();
    loop {
        let ended = follow(
            &config,
            &settings,
            &events,
            &horizon,
            &commits,
            &mut tail,
            &mut backoff,
        )
        .await;
        let pause = backoff.next_pause();
        match ended {
            Ok(()) => {}
            Err(e) => tracing::warn!(
                error = %e,
                retry_in_ms = pause.as_millis() as u64,
                "the event tail lost PostgreSQL; reconnecting"
            ),
        }
        tokio::time::sleep(pause).await;
    }
}

/// The pause before reconnecting: it doubles while attempts keep failing, so that an
/// outage is not met with a storm of connections, and starts over once a connection
/// works, so that one outage does not slow every later reconnection (and every stream
/// waiting on it) to the longest pause.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const LONGEST: Duration = Duration::from_secs(5);

    /// The pause before the next attempt; the one after it is twice as long, up to
    /// [`Backoff::LONGEST`].
    fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::LONGEST);
        pause
    }

    /// A connection worked: the next failure starts over at [`Backoff::FIRST`].
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

/// One connection's life: `LISTEN`, then read whenever woken, until the connection
/// fails.
async fn follow<E: From<FeedEvent>>(
    config: &tokio_postgres::Config,
    settings: &TailSettings,
    events: &broadcast::Sender<Arc<E>>,
    horizon: &watch::Sender<Option<i64>>,
    commits: &watch::Sender<()>,
    tail: &mut Tail,
    backoff: &mut Backoff,
) -> Result<(), Failure> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(Failure::db)?;
    let woken = Arc::new(Notify::new());
    let (lost_tx, mut lost) = tokio::sync::oneshot::channel::<String>();
    let wake = Arc::clone(&woken);
    let committed = commits.clone();
    let driver = tokio::spawn(async move {
        // Drives the socket; notifications only wake the reader, which reads the table,
        // and whoever waits for commits.
        let ended = loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    wake.notify_one();
                    committed.send_replace(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "connection closed".to_owned(),
            }
        };
        let _ = lost_tx.send(ended);
    });
    let _driver = AbortOnDrop(driver);
    client
        .batch_execute(&format!("LISTEN {}", events::EVENTS_CHANNEL))
        .await
        .map_err(Failure::db)?;
    tracing::info!("the event tail listens");
    // Writes committed while the tail was not listening were not heard of.
    commits.send_replace(());
    if tail.last.is_none() {
        tail.start_at_end(&client).await?;
        horizon.send_replace(tail.last);
    }
    let statement = client.prepare(events::TAIL).await.map_err(Failure::db)?;
    loop {
        let read = tail.read(&client, &statement, events).await?;
        // Listening and reading work. Not reset at `LISTEN` alone: a connection that
        // fails right after it (a refused statement) keeps backing off.
        backoff.reset();
        horizon.send_if_modified(|known| {
            let changed = *known != tail.last;
            *known = tail.last;
            changed
        });
        let pause = match read {
            Read::More => continue,
            Read::WaitingForHole => HOLE_RECHECK,
            Read::UpToDate => settings.poll_interval,
        };
        tokio::select! {
            () = woken.notified() => {}
            () = tokio::time::sleep(pause) => {}
            ended = &mut lost => {
                return Err(Failure(ended.unwrap_or_else(|_| "connection task ended".to_owned())));
            }
        }
    }
}

/// Why a connection's life ended.
#[derive(Debug)]
struct Failure(String);

impl Failure {
    fn db(error: tokio_postgres::Error) -> Self {
        Self(chain(&error))
    }
}

/// An error and its causes, for the log line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<RepositoryError> for Failure {
    fn from(error: RepositoryError) -> Self {
        Self(chain(&error))
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the last read found.
enum Read {
    /// A full batch: read again at once.
    More,
    /// A hole that may still fill.
    WaitingForHole,
    UpToDate,
}

/// Where the tail is.
#[derive(Debug, Default)]
struct Tail {
    /// The last id handed out (or skipped); `None` before the tail found the log's end.
    last: Option<i64>,
    /// The `xmax` of the snapshot that first saw the hole after `last`.
    hole_seen_at: Option<u64>,
}

/// A snapshot's bounds, from `pg_current_snapshot()`'s text `xmin:xmax:xip,…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    xmin: u64,
    xmax: u64,
}

impl Snapshot {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        Some(Self { xmin, xmax })
    }
}

impl Tail {
    /// Starts after the log's last event once it is final: after every transaction
    /// that was running when the end was read has ended, no lower id can appear.
    async fn start_at_end(&mut self, client: &Client) -> Result<(), Failure> {
        let row = client
            .query_one(
                "SELECT pg_current_snapshot()::text AS snapshot, \
                 coalesce(max(id), 0) AS last FROM ticket_events",
                &[],
            )
            .await
            .map_err(Failure::db)?;
        let seen = snapshot(&row)?;
        let last: i64 = row.try_get("last").map_err(Failure::db)?;
        loop {
            let row = client
                .query_one("SELECT pg_current_snapshot()::text AS snapshot", &[])
                .await
                .map_err(Failure::db)?;
            if snapshot(&row)?.xmin >= seen.xmax {
                break;
            }
            tokio::time::sleep(HOLE_RECHECK).await;
        }
        self.last = Some(last);
        Ok(())
    }

    /// Reads after `last` and hands out the unbroken run of ids that follows it.
    async fn read<E: From<FeedEvent>>(
        &mut self,
        client: &Client,
        statement: &tokio_postgres::Statement,
        events: &broadcast::Sender<Arc<E>>,
    ) -> Result<Read, Failure> {
        let mut last = self.last.unwrap_or(0);
        let rows = client
            .query(statement, &[&last, &BATCH])
            .await
            .map_err(Failure::db)?;
        let Some(first) = rows.first() else {
            return Err(Failure("the tail read returned no row".to_owned()));
        };
        let seen = snapshot(first)?;
        let mut found = 0;
        let mut outcome = Read::UpToDate;
        for row in &rows {
            let Some(event) = events::feed_event(row)? else {
                break;
            };
            found += 1;
            let id = event.event.id.get();
            if id != last + 1 {
                match self.hole_seen_at {
                    Some(xmax) if seen.xmin >= xmax => {
                        tracing::debug!(
                            from = last + 1,
                            to = id - 1,
                            "skipping ids no commit took"
                        );
                    }
                    Some(_) => {
                        outcome = Read::WaitingForHole;
                        break;
                    }
                    None => {
                        self.hole_seen_at = Some(seen.xmax);
                        outcome = Read::WaitingForHole;
                        break;
                    }
                }
            }
            self.hole_seen_at = None;
            last = id;
            self.last = Some(id);
            // No stream listening is no failure.
            let _ = events.send(Arc::new(E::from(event)));
        }
        if found == usize::try_from(BATCH).unwrap_or(usize::MAX)
            && matches!(outcome, Read::UpToDate)
        {
            outcome = Read::More;
        }
        Ok(outcome)
    }
}

fn snapshot(row: &tokio_postgres::Row) -> Result<Snapshot, Failure> {
    let text: String = row.try_get("snapshot").map_err(Failure::db)?;
    Snapshot::parse(&text).ok_or_else(|| Failure(format!("unreadable snapshot {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_longest_and_starts_over_once_connected() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u64> = (0..7)
            .map(|_| backoff.next_pause().as_millis() as u64)
            .collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 5000, 5000]);

        backoff.reset();
        assert_eq!(backoff.next_pause(), Duration::from_millis(250));
        assert_eq!(backoff.next_pause(), Duration::from_millis(500));
    }

    #[test]
    fn snapshots_are_read_from_their_text() {
        assert_eq!(
            Snapshot::parse("748:752:748,750"),
            Some(Snapshot {
                xmin: 748,
                xmax: 752
            })
        );
        assert_eq!(
            Snapshot::parse("10:10:"),
            Some(Snapshot { xmin: 10, xmax: 10 })
        );
        assert_eq!(Snapshot::parse("x:1:"), None);
        assert_eq!(Snapshot::parse(""), None);
    }
}
