//! One drain loop for every durable queue: the time-series sink and each
//! alarm forwarder run the same code with a different [`Destination`] and
//! [`Policy`]. The loop keeps a [`Window`] over the head of its queue, fills
//! it from the store (and, for alarms, from the pipeline's announcements:
//! the fast lane), starts deliveries as the policy allows, and deletes an
//! entry only after the far end confirmed it and it is committed:
//!
//! * confirmed (2xx, 204, PUBACK) → deleted (in the background, coalesced,
//!   not fsynced on its own: a crash can only make it be delivered again);
//! * rejected for good (400/409/413/422) → the dead-letter table, counted
//!   and logged with the entry, never retried;
//! * anything else (401/403, 408, 429, 5xx, timeouts, refused connections)
//!   → tried again after a backoff; 401/403 also raise
//!   `forward_unauthorized` and log an ERROR on every attempt.
//!
//! Under load the time-series sink yields: while inputs queue up in front
//! of the pipeline (`busy`), it waits for fuller batches (up to
//! [`BUSY_PATIENCE`] × its flush interval), so the machine's time goes to
//! judging and to alarms first.

mod window;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anquan_protocol::{AlarmEvent, Topic};
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::wall_ms;
use crate::delivery::Failure;
use crate::metrics::Metrics;
use crate::store::{Block, Entry, Queue, Store};
pub use window::{Outcome, Policy, Window};

/// How many flush intervals the time-series sink may wait for a fuller
/// batch while the pipeline is busy.
pub const BUSY_PATIENCE: u32 = 10;

/// One entry of a queue, in memory.
#[derive(Debug)]
pub struct Item {
    /// Its key in the queue.
    pub key: u64,
    /// The payload: line protocol (points) or an alarm event's JSON.
    pub data: Bytes,
    /// Points in it (1 for an alarm event).
    pub count: u32,
    /// What it holds.
    pub block: Block,
    /// Real time it was judged or stored, Unix ms.
    pub enqueued_ms: u64,
    /// For an alarm event: what ordering and routing need.
    pub alarm: Option<AlarmMeta>,
    /// May be sent before its commit (see `judge`).
    pub early: bool,
}

/// What the drain needs to know of an alarm event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmMeta {
    /// The (site, device, rule) it belongs to: its events go in order.
    pub chain: u64,
    /// Its level, 0 (blue) to 3 (red).
    pub level: u8,
    /// `alarms/{site}/{device}`.
    pub topic: Box<str>,
}

impl AlarmMeta {
    /// From the event.
    pub fn of(e: &AlarmEvent) -> Self {
        let mut h = std::hash::DefaultHasher::new();
        (e.site.as_str(), e.device.as_str(), e.rule.as_str()).hash(&mut h);
        Self {
            chain: h.finish(),
            level: e.level as u8,
            topic: Topic::alarm_topic(&e.site, &e.device).as_str().into(),
        }
    }
}

impl Item {
    /// An alarm event the pipeline judged, under the key it will be
    /// stored at.
    pub fn alarm(key: u64, json: Bytes, e: &AlarmEvent, now_ms: u64, early: bool) -> Self {
        Self {
            key,
            data: json,
            count: 1,
            block: Block::Alarm,
            enqueued_ms: now_ms,
            alarm: Some(AlarmMeta::of(e)),
            early,
        }
    }

    /// A stored entry.
    fn stored(e: Entry) -> Self {
        let alarm = if e.block == Block::Alarm {
            Some(match AlarmEvent::decode(&e.data) {
                Ok(ev) => AlarmMeta::of(&ev),
                // Not an event (it will be rejected by the far end and
                // dead-lettered): a chain of its own.
                Err(_) => AlarmMeta {
                    chain: !e.key,
                    level: 0,
                    topic: "".into(),
                },
            })
        } else {
            None
        };
        Self {
            key: e.key,
            data: e.data,
            count: e.count,
            block: e.block,
            enqueued_ms: e.enqueued_ms,
            alarm,
            early: false,
        }
    }
}

/// The pipeline's end of an alarm drain.
#[derive(Debug, Clone)]
pub struct Tail {
    tx: mpsc::Sender<Arc<Item>>,
    wake: Arc<Notify>,
}

impl Tail {
    /// A tail and the drain's inbox (`capacity` announcements; beyond that
    /// they are dropped and the drain reads them from the store).
    pub fn new(capacity: usize) -> (Self, Inbox) {
        let (tx, rx) = mpsc::channel(capacity);
        let wake = Arc::new(Notify::new());
        (
            Self {
                tx,
                wake: wake.clone(),
            },
            Inbox { rx: Some(rx), wake },
        )
    }

    /// Hands over an alarm just judged. Never waits.
    pub fn announce(&self, item: &Arc<Item>) {
        let _ = self.tx.try_send(item.clone());
    }

    /// Something was committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The drain's end: announcements and wake-ups.
#[derive(Debug)]
pub struct Inbox {
    rx: Option<mpsc::Receiver<Arc<Item>>>,
    wake: Arc<Notify>,
}

impl Inbox {
    /// Wake-ups only (the time-series sink has no announcements).
    pub fn wake_only(wake: Arc<Notify>) -> Self {
        Self { rx: None, wake }
    }
}

/// A far end.
pub trait Destination: Send + Sync + 'static {
    /// The metrics label (`dest` of the forwarders).
    fn name(&self) -> &'static str;
    /// Delivers `items` as one delivery, in order; `Ok` once the far end
    /// confirmed it.
    fn deliver(
        &self,
        items: Vec<Arc<Item>>,
    ) -> impl std::future::Future<Output = Result<(), Failure>> + Send + 'static;
}

/// How one drain runs.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// The queue.
    pub queue: Queue,
    /// The scheduling.
    pub policy: Policy,
    /// Most items in memory.
    pub window: usize,
    /// For points: longest the oldest waiting point waits for a fuller
    /// batch.
    pub linger: Duration,
    /// Retry backoff.
    pub backoff: BackoffConfig,
    /// After shutdown, keep delivering for at most this long.
    pub final_flush: Duration,
}

/// Deletions of delivered entries: handed to the store to ride along with
/// the pipeline's next commit; when no commit comes for [`FLUSH_AFTER`] (a
/// quiet gateway), deleted in a transaction of their own.
#[derive(Debug)]
struct Deleter {
    q: Queue,
    store: Arc<Store>,
    waiting_since: Option<tokio::time::Instant>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// How long deletions wait for a commit to ride along with.
const FLUSH_AFTER: Duration = Duration::from_millis(250);

impl Deleter {
    fn push(&mut self, keys: Vec<u64>) {
        self.store.remove_later(self.q, keys);
        self.waiting_since
            .get_or_insert_with(tokio::time::Instant::now);
    }

    /// When it should look again (`None`: nothing waits).
    fn due(&self) -> Option<tokio::time::Instant> {
        self.waiting_since.map(|t| t + FLUSH_AFTER)
    }

    fn kick(&mut self) {
        let Some(since) = self.waiting_since else {
            return;
        };
        if !self.store.has_removals() {
            self.waiting_since = None;
            return;
        }
        if since.elapsed() < FLUSH_AFTER || self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        self.waiting_since = None;
        let (store, q) = (self.store.clone(), self.q);
        self.task = Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = store.flush_removals() {
                tracing::error!(queue = q.as_str(), error = %e, "cannot delete delivered entries (they will be delivered again)");
            }
        }));
    }

    async fn finish(&mut self) {
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.flush_removals()).await;
    }
}

/// Metrics and backoff of one drain.
#[derive(Debug)]
struct Books {
    q: Queue,
    name: &'static str,
    metrics: Metrics,
    /// A forwarder's labelled series, looked up once.
    fwd: Option<Fwd>,
    backoff: Backoff,
    retry_at: Option<tokio::time::Instant>,
}

#[derive(Debug)]
struct Fwd {
    sent: prometheus::IntCounter,
    seconds: prometheus::Histogram,
    unauthorized: prometheus::IntGauge,
    early: prometheus::IntCounter,
    in_flight: prometheus::IntGauge,
}

impl Books {
    fn new(q: Queue, name: &'static str, metrics: &Metrics, backoff: BackoffConfig) -> Self {
        let l = [name];
        Self {
            q,
            name,
            fwd: (q != Queue::Points).then(|| Fwd {
                sent: metrics.forward_sent.with_label_values(&l),
                seconds: metrics.forward_seconds.with_label_values(&l),
                unauthorized: metrics.forward_unauthorized.with_label_values(&l),
                early: metrics.forward_early.with_label_values(&l),
                in_flight: metrics.forward_in_flight.with_label_values(&l),
            }),
            metrics: metrics.clone(),
            backoff: Backoff::new(backoff),
            retry_at: None,
        }
    }

    fn is_sink(&self) -> bool {
        self.q == Queue::Points
    }

    /// Books the end of a delivery: metrics, logs, backoff, the window.
    fn finished(&mut self, w: &mut Window, done: Done, end: u64) {
        let Done {
            keys,
            oldest,
            points,
            took,
            result,
        } = done;
        let (is_sink, name) = (self.is_sink(), self.name);
        let outcome = match result {
            Ok(()) => {
                if is_sink {
                    self.metrics.sink_write_seconds.observe(took.as_secs_f64());
                    self.metrics.sink_points.inc_by(points);
                    if self.backoff.attempts() > 0 {
                        tracing::info!(
                            after_attempts = self.backoff.attempts(),
                            "sink: writing again"
                        );
                    }
                } else if let Some(f) = &self.fwd {
                    f.sent.inc_by(keys.len() as u64);
                    let age = wall_ms().saturating_sub(oldest) as f64 / 1000.0;
                    f.seconds.observe(age);
                    f.unauthorized.set(0);
                    f.early
                        .inc_by(keys.iter().filter(|k| **k >= end).count() as u64);
                }
                self.backoff.reset();
                Outcome::Delivered
            }
            Err(Failure::Rejected(why)) => {
                if is_sink {
                    self.metrics
                        .sink_errors
                        .with_label_values(&["rejected"])
                        .inc();
                    tracing::error!(entries = keys.len(), reason = %why, "sink: the time-series database rejected a batch for good; moved to the dead-letter table");
                } else {
                    self.metrics
                        .forward_dead_letter
                        .with_label_values(&[name])
                        .inc();
                    self.metrics
                        .forward_errors
                        .with_label_values(&[name, "rejected"])
                        .inc();
                    tracing::error!(dest = name, reason = %why, keys = ?keys, "forward: alarm event rejected for good; kept in the dead-letter table");
                }
                Outcome::Rejected(why)
            }
            Err(f) => {
                let (kind, why) = match f {
                    Failure::Unauthorized(w) => ("unauthorized", w),
                    Failure::Retry(w) | Failure::Rejected(w) => ("unavailable", w),
                };
                if is_sink {
                    self.metrics.sink_errors.with_label_values(&[kind]).inc();
                } else {
                    self.metrics
                        .forward_errors
                        .with_label_values(&[name, kind])
                        .inc();
                    if let (Some(f), "unauthorized") = (&self.fwd, kind) {
                        f.unauthorized.set(1);
                    }
                }
                // Concurrent failures of one outage count as one attempt.
                if self.retry_at.is_none() {
                    let delay = self.backoff.next_delay();
                    self.retry_at = Some(tokio::time::Instant::now() + delay);
                    let attempt = self.backoff.attempts();
                    if kind == "unauthorized" && !is_sink {
                        tracing::error!(dest = name, error = %why, attempt, "forward: the monitor refuses our credentials (check forward.http.token); alarms stay queued");
                    } else if attempt == 1 || attempt.is_multiple_of(10) {
                        if is_sink {
                            tracing::warn!(attempt, error = %why, retry_in_ms = delay.as_millis() as u64, "sink: write failed; points stay buffered");
                        } else {
                            tracing::warn!(dest = name, error = %why, attempt, "forward: delivery failed; alarms stay queued");
                        }
                    }
                }
                Outcome::Retry
            }
        };
        w.done(&keys, &outcome, end);
        if is_sink && outcome == Outcome::Retry {
            w.forget_waiting();
        }
    }
}

/// Delivers queue `cfg.queue` to `dest` until `shutdown` (then keeps going
/// for at most `cfg.final_flush` while entries remain).
pub async fn run<D: Destination>(
    dest: D,
    cfg: DrainConfig,
    store: Arc<Store>,
    mut inbox: Inbox,
    busy: Option<Arc<AtomicBool>>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let q = cfg.queue;
    let mut books = Books::new(q, dest.name(), &metrics, cfg.backoff);
    let dest = Arc::new(dest);
    let mut w = Window::new(cfg.policy, cfg.window);
    let mut deleter = Deleter {
        q,
        store: store.clone(),
        waiting_since: None,
        task: None,
    };
    let mut flying: JoinSet<Done> = JoinSet::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        // What came in.
        if let Some(rx) = inbox.rx.as_mut() {
            let end = store.end(q);
            while let Ok(item) = rx.try_recv() {
                w.announce(item, end);
            }
        }
        while let Some(r) = flying.try_join_next() {
            if let Ok(done) = r {
                books.finished(&mut w, done, store.end(q));
            }
        }
        // Read the store when committed entries are not in the window.
        let end = store.end(q);
        if w.wants_load(end) {
            let (s, from, room) = (store.clone(), w.next(), cfg.window.saturating_sub(w.len()));
            let max_items = match cfg.policy {
                Policy::Batches { max_points } => {
                    (max_points.max(1) * 2).saturating_sub(w.points())
                }
                Policy::Alarms { .. } => room,
            };
            let read = tokio::task::spawn_blocking(move || {
                s.peek(q, from.checked_sub(1), max_items, room)
            })
            .await;
            match read {
                Ok(Ok(p)) => {
                    let items = p
                        .entries
                        .into_iter()
                        .map(|e| Arc::new(Item::stored(e)))
                        .collect();
                    w.loaded(items, end, p.exhausted);
                }
                other => {
                    tracing::error!(queue = q.as_str(), error = ?other.err(), "cannot read the durable buffer");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let (delete, dead) = w.settle(store.end(q));
        if !delete.is_empty() {
            deleter.push(delete);
        }
        if !dead.is_empty() {
            dead_letter(&store, q, dead).await;
        }
        deleter.kick();
        // Shutting down: flush for a while, then stop.
        if shutdown.is_cancelled() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + cfg.final_flush);
        }
        let drained = w.is_empty() && !w.wants_load(store.end(q)) && w.in_flight() == 0;
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d)
            || (deadline.is_some() && drained)
        {
            break;
        }
        // Start what may start.
        let now = tokio::time::Instant::now();
        let mut wait: Option<tokio::time::Instant> = None;
        if books.retry_at.is_some_and(|t| t > now) {
            wait = books.retry_at;
        } else {
            books.retry_at = None;
            let end = store.end(q);
            let may = match cfg.policy {
                Policy::Alarms { window, .. } => window.saturating_sub(w.in_flight()),
                Policy::Batches { max_points } => {
                    let (waiting, oldest) = w.waiting(end);
                    let pressed = busy.as_ref().is_some_and(|b| b.load(Ordering::Relaxed));
                    // Under load, wait for fuller batches (bounded).
                    let patience = if pressed {
                        cfg.linger * BUSY_PATIENCE
                    } else {
                        cfg.linger
                    };
                    let age = oldest.map_or(Duration::ZERO, |o| {
                        Duration::from_millis(wall_ms().saturating_sub(o))
                    });
                    let full = waiting >= if pressed { max_points * 2 } else { max_points };
                    if waiting > 0 && (full || age >= patience || deadline.is_some()) {
                        1
                    } else {
                        if waiting > 0 {
                            wait = Some(now + patience.saturating_sub(age));
                        }
                        0
                    }
                }
            };
            for batch in w.launch(end, may) {
                let keys: Vec<u64> = batch.iter().map(|i| i.key).collect();
                let oldest = batch.iter().map(|i| i.enqueued_ms).min().unwrap_or(0);
                let points = batch.iter().map(|i| u64::from(i.count)).sum();
                let d = dest.clone();
                flying.spawn(async move {
                    let started = std::time::Instant::now();
                    let result = d.deliver(batch).await;
                    Done {
                        keys,
                        oldest,
                        points,
                        took: started.elapsed(),
                        result,
                    }
                });
            }
        }
        if let Some(f) = &books.fwd {
            f.in_flight.set(w.in_flight() as i64);
        }
        // Wait for something to happen.
        let until = [wait, deadline, deleter.due()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1));
        tokio::select! {
            Some(r) = flying.join_next() => {
                if let Ok(done) = r {
                    books.finished(&mut w, done, store.end(q));
                }
            }
            Some(item) = recv(&mut inbox.rx) => {
                w.announce(item, store.end(q));
            }
            () = inbox.wake.notified() => {}
            () = shutdown.cancelled(), if deadline.is_none() => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
    flying.abort_all();
    deleter.finish().await;
}

/// How one delivery ended.
#[derive(Debug)]
struct Done {
    keys: Vec<u64>,
    /// The oldest item's enqueue time (Unix ms).
    oldest: u64,
    points: u64,
    took: Duration,
    result: Result<(), Failure>,
}

async fn recv(rx: &mut Option<mpsc::Receiver<Arc<Item>>>) -> Option<Arc<Item>> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn dead_letter(store: &Arc<Store>, q: Queue, dead: Vec<(u64, String)>) {
    let mut by_reason: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, why) in dead {
        by_reason.entry(why).or_default().push(k);
    }
    let s = store.clone();
    let r = tokio::task::spawn_blocking(move || {
        for (why, keys) in by_reason {
            s.dead_letter(q, &keys, &why)?;
        }
        Ok::<(), crate::store::StoreError>(())
    })
    .await;
    if let Ok(Err(e)) = r {
        tracing::error!(queue = q.as_str(), error = %e, "cannot move rejected entries to the dead-letter table (they will be sent again)");
    }
}
