//! The tail of the ticket event log, for live streams: one task per process reads every
//! new event from `ticket_events`, in id order, and hands it to the process's streams
//! through a bounded broadcast channel. Nothing lives only in memory: the table is the
//! source, and the channel only says what to send now.
//!
//! - **Waking**: the tail `LISTEN`s on a dedicated connection of its own (a pooled one
//!   would drop notifications when recycled) and reads the table when a notification
//!   arrives, and at least every [`TailSettings::poll_interval`] anyway. A writer in
//!   the same process tells the tail of its commit directly ([`CommitSignal`]); the
//!   tail then reads at once and sends one `NOTIFY ticket_events` for the other
//!   replicas, for all the commits since its last, at most one every
//!   [`ANNOUNCE_SPACING`]. A writer without a signal (another program) notifies itself
//!   (`events::NOTIFY`).
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
//! - **Fan-out by author**: a stream that sees only one author's tickets (a customer's)
//!   subscribes to that author's channel, which gets only the events of that author's
//!   tickets; the others subscribe to every event. With many customers' streams open,
//!   an event then wakes the streams that may show it, not every stream in the process.
//!   Handing out an event and subscribing take one lock, so that a new subscription's
//!   horizon is exactly the last event handed out before it: no event falls between the
//!   table and the channel.
//! - **Commits**: every notification heard is also passed on as it comes, before the
//!   log is read ([`EventTail::commits`]), for whoever wants to know that a write has
//!   just committed (the webhook worker: the same transaction queued its deliveries).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use domain::feed::FeedEvent;
use domain::{RepositoryError, UserId};
use futures_util::future::poll_fn;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
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
    fanout: Arc<Fanout<E>>,
    local: CommitSignal,
    commits: watch::Sender<()>,
    reconnections: Arc<Reconnections>,
    task: JoinHandle<()>,
}

/// The tail's reconnections so far, and the pause it took before the last (see
/// [`EventTail::reconnections`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TailReconnections {
    pub count: u64,
    pub last_pause: Option<Duration>,
}

#[derive(Debug, Default)]
struct Reconnections {
    count: AtomicU64,
    /// In milliseconds; meaningful once `count` is above 0.
    last_pause_ms: AtomicU64,
}

impl Reconnections {
    fn record(&self, pause: Duration) {
        let millis = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        self.last_pause_ms.store(millis, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Release);
    }
}

/// Where the tail hands its events out: one channel for streams that may see any
/// ticket's events, and one per author for streams that see only that author's tickets.
struct Fanout<E> {
    /// Held while an event is handed out and while a stream subscribes (see the module).
    channels: Mutex<Channels<E>>,
    /// The last event id handed out (0: none, the log was empty); `None` until known.
    /// Moved only under `channels`' lock.
    horizon: watch::Sender<Option<i64>>,
    /// The buffer of an author's channel: an author's tickets take a small share of the
    /// events, so it is smaller than `everyone`'s, and a subscriber that lags behind it
    /// is ended like any other and resumes from the table.
    author_buffer: usize,
}

struct Channels<E> {
    everyone: broadcast::Sender<Arc<E>>,
    /// Only while someone subscribes: the last [`Subscription`] of an author removes it.
    authors: HashMap<UserId, broadcast::Sender<Arc<E>>>,
}

/// What [`EventTail::listeners`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listeners {
    /// Open [`Subscription`]s.
    pub subscriptions: usize,
    /// Authors' channels held open by them.
    pub authors: usize,
}

/// The most an author's channel buffers (fewer when the tail's buffer is smaller).
const AUTHOR_BUFFER: usize = 64;

impl<E> Fanout<E> {
    fn lock(&self) -> MutexGuard<'_, Channels<E>> {
        // The lock guards no invariant that a panic half-way could break.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `event` to every stream that may want it, and moves the horizon to it.
    fn publish(&self, event: FeedEvent)
    where
        E: From<FeedEvent>,
    {
        let author = event.ticket_author;
        let id = event.event.id.get();
        let event = Arc::new(E::from(event));
        let channels = self.lock();
        // No stream listening is no failure.
        let _ = channels.everyone.send(Arc::clone(&event));
        if let Some(channel) = channels.authors.get(&author) {
            let _ = channel.send(event);
        }
        self.horizon.send_replace(Some(id));
    }

    /// The log's end, found before any event is handed out.
    fn start_at(&self, horizon: i64) {
        let _channels = self.lock();
        self.horizon.send_replace(Some(horizon));
    }
}

/// A stream's receiver of live events (see [`EventTail::subscribe`]).
pub struct Subscription<E> {
    receiver: broadcast::Receiver<Arc<E>>,
    /// The author's channel this receives from, released with its last subscriber.
    author: Option<(UserId, Arc<Fanout<E>>)>,
}

impl<E> Subscription<E> {
    /// The next event; `Lagged` when the channel's buffer overtook this subscriber.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::recv`].
    pub async fn recv(&mut self) -> Result<Arc<E>, broadcast::error::RecvError> {
        self.receiver.recv().await
    }

    /// The next event if one is waiting.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::try_recv`].
    pub fn try_recv(&mut self) -> Result<Arc<E>, broadcast::error::TryRecvError> {
        self.receiver.try_recv()
    }
}

impl<E> Drop for Subscription<E> {
    fn drop(&mut self) {
        let Some((author, fanout)) = &self.author else {
            return;
        };
        let mut channels = fanout.lock();
        // Counted under the lock that subscribing takes, and with this receiver still
        // alive: one means it is the last.
        if channels
            .authors
            .get(author)
            .is_some_and(|channel| channel.receiver_count() <= 1)
        {
            channels.authors.remove(author);
        }
    }
}

/// How a writer in the process tells the tail that it has committed events (see the
/// module): cheap enough to call after every write, and never blocking.
#[derive(Debug, Clone, Default)]
pub struct CommitSignal(Arc<LocalCommits>);

#[derive(Debug, Default)]
struct LocalCommits {
    wake: Notify,
    /// Commits that the other replicas have not been told of yet.
    unannounced: AtomicBool,
}

impl CommitSignal {
    /// Events were committed just now.
    pub fn committed(&self) {
        self.0.unannounced.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }

    /// Takes the commits not yet announced, if any.
    fn take_unannounced(&self) -> bool {
        self.0.unannounced.swap(false, Ordering::AcqRel)
    }

    /// Waits for the next commit (or one given since the last wait).
    fn next(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.wake.notified()
    }

    /// Puts them back after the announcement failed.
    fn restore_unannounced(&self) {
        self.0.unannounced.store(true, Ordering::Release);
    }
}

/// The least time between two announcements to the other replicas (and between the
/// reads that local commits ask for). Under a load of writes, commits come by the
/// hundred per second; each `NOTIFY` is a transaction of its own, with a WAL flush,
/// that wakes every replica's tail. Events then reach the other replicas at most this
/// much later.
pub const ANNOUNCE_SPACING: Duration = Duration::from_millis(5);

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
        let buffer = settings.buffer.max(1);
        let (everyone, _) = broadcast::channel(buffer);
        let (horizon, _) = watch::channel(None);
        let (commits, _) = watch::channel(());
        let fanout = Arc::new(Fanout {
            channels: Mutex::new(Channels {
                everyone,
                authors: HashMap::new(),
            }),
            horizon,
            author_buffer: buffer.min(AUTHOR_BUFFER),
        });
        let local = CommitSignal::default();
        let reconnections = Arc::new(Reconnections::default());
        let task = tokio::spawn(run(
            config,
            settings,
            Arc::clone(&fanout),
            commits.clone(),
            local.clone(),
            Arc::clone(&reconnections),
        ));
        Ok(Self {
            fanout,
            local,
            commits,
            reconnections,
            task,
        })
    }

    /// A receiver of the events handed out from now on, and the horizon at the time of
    /// subscribing: every event up to it is in the table for good, and every event
    /// after it comes through the receiver, in id order. With `only_author` (see
    /// `FeedFilter::only_author`), the receiver gets only the events of that author's
    /// tickets.
    pub fn subscribe(&self, only_author: Option<UserId>) -> (Subscription<E>, Option<i64>) {
        let mut channels = self.fanout.lock();
        let subscription = match only_author {
            None => Subscription {
                receiver: channels.everyone.subscribe(),
                author: None,
            },
            Some(author) => {
                let buffer = self.fanout.author_buffer;
                let receiver = channels
                    .authors
                    .entry(author)
                    .or_insert_with(|| broadcast::channel(buffer).0)
                    .subscribe();
                Subscription {
                    receiver,
                    author: Some((author, Arc::clone(&self.fanout))),
                }
            }
        };
        (subscription, *self.fanout.horizon.borrow())
    }
}

impl<E> EventTail<E> {
    /// Waits at most `wait` for the tail to know its horizon.
    pub async fn ready(&self, wait: Duration) -> Option<i64> {
        let mut horizon = self.fanout.horizon.subscribe();
        let known = tokio::time::timeout(wait, horizon.wait_for(Option::is_some)).await;
        match known {
            Ok(Ok(found)) => *found,
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// The signal for this process's writers to give after each commit of events.
    pub fn commit_signal(&self) -> CommitSignal {
        self.local.clone()
    }

    /// Wakes at every commit the tail hears of, as soon as it hears of it: before the
    /// tail reads the new events, and whether or not it may hand them out yet (a hole
    /// before them holds those back, not the commit).
    pub fn commits(&self) -> Commits {
        Commits(self.commits.subscribe())
    }

    /// How often the tail has lost its connection and reconnected (or tried to), and
    /// the pause before its last attempt: the backoff's first, 250 ms, unless attempts
    /// have been failing in a row.
    pub fn reconnections(&self) -> TailReconnections {
        let count = self.reconnections.count.load(Ordering::Acquire);
        TailReconnections {
            count,
            last_pause: (count > 0).then(|| {
                Duration::from_millis(self.reconnections.last_pause_ms.load(Ordering::Relaxed))
            }),
        }
    }

    /// Who listens now.
    pub fn listeners(&self) -> Listeners {
        let channels = self.fanout.lock();
        let by_author: usize = channels
            .authors
            .values()
            .map(broadcast::Sender::receiver_count)
            .sum();
        Listeners {
            subscriptions: channels.everyone.receiver_count() + by_author,
            authors: channels.authors.len(),
        }
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
    fanout: Arc<Fanout<E>>,
    commits: watch::Sender<()>,
    local: CommitSignal,
    reconnections: Arc<Reconnections>,
) {
    let mut tail = Tail::default();
    let mut backoff = Backoff::default();
    loop {
        let ended = follow(
            &config,
            &settings,
            &fanout,
            &commits,
            &local,
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
        reconnections.record(pause);
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
    fanout: &Fanout<E>,
    commits: &watch::Sender<()>,
    local: &CommitSignal,
    tail: &mut Tail,
    backoff: &mut Backoff,
) -> Result<(), Failure> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(Failure::db)?;
    let woken = Arc::new(Notify::new());
    let (lost_tx, mut lost) = tokio::sync::oneshot::channel::<String>();
    let wake = Arc::clone(&woken);
    let committed = commits.clone();
    // The tail's own backend, whose announcements it hears too: the commits they
    // announce woke it already.
    let own_pid = Arc::new(AtomicI32::new(0));
    let own = Arc::clone(&own_pid);
    let driver = tokio::spawn(async move {
        // Drives the socket; notifications only wake the reader, which reads the table,
        // and whoever waits for commits.
        let ended = loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(heard))) => {
                    if heard.process_id() != own.load(Ordering::Acquire) {
                        wake.notify_one();
                        committed.send_replace(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "connection closed".to_owned(),
            }
        };
        let _ = lost_tx.send(ended);
    });
    let _driver = AbortOnDrop(driver);
    // Generic plans for the tail's few statements, run again and again (see
    // `events::TAIL`), and no parallel workers for its small reads.
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; \
             SET max_parallel_workers_per_gather = 0; LISTEN {}",
            events::EVENTS_CHANNEL
        ))
        .await
        .map_err(Failure::db)?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(Failure::db)?;
    own_pid.store(pid, Ordering::Release);
    tracing::info!("the event tail listens");
    // Writes committed while the tail was not listening were not heard of.
    commits.send_replace(());
    if tail.last.is_none() {
        let end = tail.start_at_end(&client).await?;
        fanout.start_at(end);
    }
    let statement = client.prepare(events::TAIL).await.map_err(Failure::db)?;
    let announce = client
        .prepare(events::ANNOUNCE)
        .await
        .map_err(Failure::db)?;
    // Commits made while this connection was not there may have been announced on
    // none: announce them now.
    local.restore_unannounced();
    loop {
        let read = if local.take_unannounced() {
            // The announcement goes first in the same round trip: the other replicas
            // learn of the commits as soon as this one does.
            let (announced, read) = futures_util::future::join(
                client.query(&announce, &[]),
                tail.read(&client, &statement, fanout),
            )
            .await;
            if let Err(e) = announced {
                local.restore_unannounced();
                return Err(Failure::db(e));
            }
            read?
        } else {
            tail.read(&client, &statement, fanout).await?
        };
        let read_at = Instant::now();
        // Listening and reading work. Not reset at `LISTEN` alone: a connection that
        // fails right after it (a refused statement) keeps backing off.
        backoff.reset();
        let pause = match read {
            Read::More => continue,
            Read::WaitingForHole => HOLE_RECHECK,
            Read::UpToDate => settings.poll_interval,
        };
        tokio::select! {
            () = woken.notified() => {}
            () = local.next() => {
                commits.send_replace(());
                tokio::time::sleep_until(read_at + ANNOUNCE_SPACING).await;
            }
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
    /// Returns that last event's id (0 when the log is empty).
    async fn start_at_end(&mut self, client: &Client) -> Result<i64, Failure> {
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
        Ok(last)
    }

    /// Reads after `last` and hands out the unbroken run of ids that follows it.
    async fn read<E: From<FeedEvent>>(
        &mut self,
        client: &Client,
        statement: &tokio_postgres::Statement,
        fanout: &Fanout<E>,
    ) -> Result<Read, Failure> {
        let mut last = self.last.unwrap_or(0);
        let rows = client
            .query(statement, &[&last])
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
            fanout.publish(event);
        }
        if found == events::TAIL_BATCH && matches!(outcome, Read::UpToDate) {
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
