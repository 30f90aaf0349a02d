//! The pipeline: the thin loop around the judge. One task owns the judge
//! (every device's state, no locks on the hot path); it takes inputs from
//! every source, judges them into the open batch, sends the alarms that may
//! leave early to the forwarders at once (the fast lane), and commits
//! batches to the durable store: one fsynced transaction for many frames
//! (group commit), on `buffer.max_batch` frames, `commit_interval_ms` or an
//! input idle for `commit_idle_ms`, whichever comes first. While one batch
//! is being committed the next one fills. After each commit it reports
//! the committed receipts to their sources (MQTT acknowledges them), wakes
//! the drains and hands the batch's alarm events to in-process
//! subscribers.
//!
//! Why an alarm may leave before its commit, and when it may not: see
//! [`crate::judge`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anquan_edge_rules::file::RuleFile;
use anquan_protocol::AlarmEvent;
use bytes::Bytes;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::{ManualClock, SharedClock, wall_ms};
use crate::drain::{self, Tail};
use crate::judge::{Accepted, Effects, Input, Judge};
use crate::lab::TickAck;
use crate::link::{self, LinkRx};
use crate::logging::RateLimiter;
use crate::metrics::Metrics;
use crate::store::{Batch, Dropped, Queue, Store};
use crate::validate::Reject;

/// An input and, when its source wants to hear of its commit, its receipt.
#[derive(Debug)]
pub struct Arrival {
    /// The input.
    pub input: Input,
    /// Reported back to the source once committed.
    pub receipt: Option<Receipt>,
}

/// What the sources send the pipeline, in one channel, in order.
// The channel's slots were an `Arrival` each before; boxing it to shrink
// the rare tick would allocate once per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Inbound {
    /// An input.
    Arrival(Arrival),
    /// Lab mode ([`crate::lab`]): the driven clock moves to `now_ms`; the
    /// offline checks run at once, as the real clock's timer would, and
    /// the tick is acknowledged on [`Links::lab_acks`]. Inputs before it
    /// are judged on the old time, inputs after it on the new one.
    Clock {
        /// The new time, Unix ms.
        now_ms: u64,
        /// Device messages ingest received before the tick.
        frames: u64,
    },
}

impl From<Arrival> for Inbound {
    fn from(a: Arrival) -> Self {
        Self::Arrival(a)
    }
}

/// A source's number for one input; sources number their inputs in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Which source ([`Links::receipts`] index).
    pub source: usize,
    /// Its number, from 1, increasing.
    pub seq: u64,
}

/// How the loop batches.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Most inputs per commit.
    pub max_batch: usize,
    /// Longest an input waits for its commit.
    pub commit_interval: Duration,
    /// Commit when no input came for this long.
    pub commit_idle: Duration,
    /// Offline checks.
    pub tick_every: Duration,
    /// One log line per rejection reason per interval.
    pub log_interval: Duration,
}

/// Everything the pipeline talks to.
#[derive(Debug)]
pub struct Links {
    /// Inputs (and lab clock ticks) from every source.
    pub rx: mpsc::Receiver<Inbound>,
    /// Validated rules files from the watcher.
    pub reload: mpsc::Receiver<RuleFile>,
    /// The MQTT link (silence is judged only while subscribed).
    pub link: LinkRx,
    /// The durable store.
    pub store: Arc<Store>,
    /// Per source: every receipt up to this one is committed.
    pub receipts: Vec<watch::Sender<u64>>,
    /// Woken after each commit: the time-series sink.
    pub points: Arc<Notify>,
    /// The alarm drains (fast lane and commit wake-up), one per destination.
    pub alarms: Vec<Tail>,
    /// Alarm events, for in-process subscribers (after their commit).
    pub subscribers: broadcast::Sender<AlarmEvent>,
    /// Inputs fully handled (committed, or rejected and committed).
    pub handled: Arc<AtomicU64>,
    /// Set while inputs queue up: the time-series sink holds back.
    pub busy: Arc<AtomicBool>,
    /// Lab mode: applied ticks, for ingest to acknowledge.
    pub lab_acks: Option<mpsc::Sender<TickAck>>,
}

/// The batch being filled.
#[derive(Debug)]
struct Open {
    fx: Effects,
    alarms: Vec<Bytes>,
    first_alarm_key: u64,
    events: Vec<AlarmEvent>,
    receipts: Vec<u64>,
    inputs: u64,
    /// When the first content came, and the last input.
    opened: Option<Instant>,
    last_input: Instant,
}

impl Open {
    fn new(first_alarm_key: u64, sources: usize) -> Self {
        Self {
            fx: Effects::default(),
            alarms: Vec::new(),
            first_alarm_key,
            events: Vec::new(),
            receipts: vec![0; sources],
            inputs: 0,
            opened: None,
            last_input: Instant::now(),
        }
    }

    fn is_empty(&self) -> bool {
        self.opened.is_none()
    }

    fn touched(&mut self) {
        self.opened.get_or_insert_with(Instant::now);
    }

    /// When it must be committed.
    fn due(&self, cfg: &PipelineConfig) -> Option<Instant> {
        let opened = self.opened?;
        if self.inputs >= cfg.max_batch as u64 {
            return Some(opened);
        }
        Some((opened + cfg.commit_interval).min(self.last_input.max(opened) + cfg.commit_idle))
    }
}

/// A batch handed to the store.
#[derive(Debug)]
struct Closed {
    batch: u64,
    events: Vec<AlarmEvent>,
    receipts: Vec<u64>,
    inputs: u64,
}

type Commit = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Closed, Option<(Dropped, Duration)>)> + Send>,
>;

/// The loop's state.
#[derive(Debug)]
pub struct Pipeline {
    judge: Judge,
    cfg: PipelineConfig,
    clock: SharedClock,
    metrics: Metrics,
    limiter: RateLimiter,
    next_alarm_key: u64,
    /// The previous run crashed: until the broker says whether it kept our
    /// session, early alarms may have left for frames it no longer holds.
    unsure_of_broker: bool,
    /// `frames_processed_total` for telemetry, event, status.
    processed: [prometheus::IntCounter; 3],
    /// Lab mode: the clock that [`Inbound::Clock`] moves (the same one as
    /// `clock`).
    driven: Option<ManualClock>,
    /// Alarm events raised since the start.
    raised: u64,
}

impl Pipeline {
    /// A pipeline around `judge`; alarm keys continue from the store's.
    pub fn new(
        judge: Judge,
        cfg: PipelineConfig,
        store: &Store,
        clock: SharedClock,
        metrics: Metrics,
    ) -> Self {
        let (online, offline) = judge.online_offline();
        metrics.devices.with_label_values(&["online"]).set(online);
        metrics.devices.with_label_values(&["offline"]).set(offline);
        let processed = ["telemetry", "event", "status"]
            .map(|l| metrics.frames_processed.with_label_values(&[l]));
        Self {
            judge,
            processed,
            limiter: RateLimiter::new(cfg.log_interval),
            cfg,
            clock,
            metrics,
            next_alarm_key: store.next_alarm_key(),
            unsure_of_broker: !store.was_clean(),
            driven: None,
            raised: 0,
        }
    }

    /// Lab mode: [`Inbound::Clock`] moves `clock`, which must be the clock
    /// the pipeline was made with.
    pub fn with_driven_clock(mut self, clock: ManualClock) -> Self {
        self.driven = Some(clock);
        self
    }

    /// Runs until `shutdown`, then judges what is already waiting, commits
    /// it and returns whether everything judged was committed.
    pub async fn run(mut self, mut links: Links, shutdown: CancellationToken) -> bool {
        let mut tick = tokio::time::interval(self.cfg.tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let sources = links.receipts.len();
        let mut open = Open::new(self.next_alarm_key, sources);
        let mut commit: Option<Commit> = None;
        let mut rx_open = true;
        let busy_at = links.rx.max_capacity() / 2;
        // The batch deadline: one timer, re-armed when it fires early (an
        // input moved the idle deadline on) or when the deadline moves
        // earlier, not on every input.
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            let room = open.inputs < self.cfg.max_batch as u64;
            let due = open.due(&self.cfg).filter(|_| commit.is_none());
            match (due, armed) {
                (Some(d), a) if a.is_none_or(|a| d < a) => {
                    timer.as_mut().reset(d);
                    armed = Some(d);
                }
                (None, _) => armed = None,
                _ => {}
            }
            tokio::select! {
                biased;
                () = &mut cancelled => break,
                (closed, result) = in_flight(&mut commit), if commit.is_some() => {
                    commit = None;
                    if !self.finish(closed, result, &links) {
                        return false;
                    }
                }
                m = links.rx.recv(), if rx_open && room => match m {
                    Some(m) => self.inbound(m, &mut open, &links),
                    None => rx_open = false,
                },
                Some(file) = links.reload.recv() => {
                    let changed = self.judge.reload(file, self.clock.now_ms(), &mut open.fx);
                    tracing::info!(devices_changed = changed, "new rules in force");
                    open.touched();
                    self.announce(&mut open, &links);
                }
                _ = tick.tick() => self.check_offline(&mut open, &links),
                () = &mut timer, if armed.is_some() => armed = None,
            }
            links
                .busy
                .store(links.rx.len() >= busy_at, Ordering::Relaxed);
            if commit.is_none() && open.due(&self.cfg).is_some_and(|d| d <= Instant::now()) {
                commit = Some(self.close(&mut open, &links));
            }
        }
        // Shutdown: finish the commit in flight, judge what is waiting,
        // commit it.
        if let Some(c) = commit.take() {
            let (closed, result) = c.await;
            if !self.finish(closed, result, &links) {
                return false;
            }
        }
        while let Ok(m) = links.rx.try_recv() {
            self.inbound(m, &mut open, &links);
        }
        if open.is_empty() {
            return true;
        }
        let (closed, result) = self.close(&mut open, &links).await;
        self.finish(closed, result, &links)
    }

    fn inbound(&mut self, m: Inbound, open: &mut Open, links: &Links) {
        match m {
            Inbound::Arrival(a) => self.take(a, open, links),
            Inbound::Clock { now_ms, frames } => {
                let Some(clock) = &self.driven else {
                    tracing::warn!(now_ms, "a clock tick, but the clock is not driven; ignored");
                    return;
                };
                clock.set_ms(now_ms);
                self.check_offline(open, links);
                let ack = TickAck {
                    now_ms,
                    frames,
                    alarms: self.raised,
                    rejected: None,
                };
                if let Some(tx) = &links.lab_acks
                    && tx.try_send(ack).is_err()
                {
                    tracing::warn!(
                        now_ms,
                        "lab clock: ingest is not taking acknowledgements; this tick goes unanswered"
                    );
                }
            }
        }
    }

    /// Every device's offline rule at the clock's time (the periodic
    /// check, and after a driven clock moved).
    fn check_offline(&mut self, open: &mut Open, links: &Links) {
        let hearing = links.link.borrow().state == link::State::Subscribed;
        self.judge.tick(self.clock.now_ms(), hearing, &mut open.fx);
        if !open.fx.alarms.is_empty() {
            open.touched();
            self.announce(open, links);
        }
        self.gauges();
    }

    /// Judges one arrival into the open batch.
    fn take(&mut self, a: Arrival, open: &mut Open, links: &Links) {
        if self.unsure_of_broker {
            self.check_broker(links);
        }
        let now = self.clock.now_ms();
        match self.judge.judge(&a.input, now, &mut open.fx) {
            Ok(acc) => {
                let i = match a.input.body {
                    crate::judge::Body::Telemetry(_) => 0,
                    crate::judge::Body::Event(_) => 1,
                    crate::judge::Body::Status(_) => 2,
                };
                self.processed[i].inc();
                self.note(&a.input, acc);
            }
            Err(r) => self.rejected(&a.input, r),
        }
        if let Some(r) = a.receipt
            && let Some(slot) = open.receipts.get_mut(r.source)
        {
            *slot = (*slot).max(r.seq);
        }
        open.inputs += 1;
        open.last_input = Instant::now();
        open.touched();
        self.announce(open, links);
    }

    /// After a crash, the first connection tells whether the broker still
    /// holds the frames whose alarms may have left early.
    fn check_broker(&mut self, links: &Links) {
        let link = *links.link.borrow();
        if let Some(kept) = link.first_session_present {
            self.unsure_of_broker = false;
            if !kept {
                tracing::warn!(
                    "the broker lost the gateway's session after a crash: frames it held are gone; moving event ids past any the fast lane may have used"
                );
                self.judge.forget_speculation();
            }
        }
    }

    /// Numbers the new alarm events, sends them down the alarm drains (the
    /// early ones leave at once) and keeps them for the commit.
    fn announce(&mut self, open: &mut Open, links: &Links) {
        if open.fx.alarms.is_empty() {
            return;
        }
        let now = wall_ms();
        for a in std::mem::take(&mut open.fx.alarms) {
            let e = a.event;
            self.metrics
                .alarms
                .with_label_values(&[e.level.as_str(), e.state.as_str()])
                .inc();
            tracing::debug!(event_id = %e.event_id, rule = %e.rule, level = e.level.as_str(), state = e.state.as_str(), value = e.value, threshold = e.threshold, early = a.early, "alarm");
            let Ok(json) = e.to_vec() else { continue };
            // What the forwarders get (a lab driver waits for as many).
            self.raised += 1;
            let json = Bytes::copy_from_slice(&json);
            let item = Arc::new(drain::Item::alarm(
                self.next_alarm_key,
                json.clone(),
                &e,
                now,
                a.early,
            ));
            self.next_alarm_key += 1;
            for tail in &links.alarms {
                tail.announce(&item);
            }
            open.alarms.push(json);
            open.events.push(e);
        }
    }

    fn note(&mut self, input: &Input, acc: Accepted) {
        let device = input.device.as_str();
        if let Some(missing) = acc.gap {
            self.metrics.seq_gaps.inc();
            self.metrics.seq_missing.inc_by(u64::from(missing));
            if let Some(suppressed) = self.limiter.check("seq_gap") {
                tracing::warn!(%device, missing, suppressed, "sequence gap: frames lost between device and gateway");
            }
        }
        if acc.restart
            && let Some(suppressed) = self.limiter.check("device_restart")
        {
            tracing::info!(%device, suppressed, "device restarted (sequence back to the start)");
        }
        if acc.skewed {
            self.metrics.clock_skew.inc();
            if let Some(suppressed) = self.limiter.check("clock_skew") {
                tracing::warn!(%device, suppressed, "device clock skewed; using gateway time");
            }
        }
        if acc.dropped > 0 {
            self.metrics.device_dropped.inc_by(u64::from(acc.dropped));
        }
        if acc.registered {
            self.metrics.devices.with_label_values(&["online"]).inc();
            tracing::debug!(%device, site = %input.site, "device registered");
        }
    }

    fn rejected(&mut self, input: &Input, r: Reject) {
        self.metrics.reject(r.as_str());
        if let Some(suppressed) = self.limiter.check(r.as_str()) {
            let seq = match &input.body {
                crate::judge::Body::Telemetry(f) | crate::judge::Body::Event(f) => Some(f.seq),
                crate::judge::Body::Status(_) => None,
            };
            tracing::warn!(reason = r.as_str(), site = %input.site, device = %input.device, seq, suppressed, "frame rejected");
        }
    }

    fn gauges(&self) {
        let (online, offline) = self.judge.online_offline();
        self.metrics
            .devices
            .with_label_values(&["online"])
            .set(online);
        self.metrics
            .devices
            .with_label_values(&["offline"])
            .set(offline);
    }

    /// Closes the open batch and starts its commit.
    fn close(&mut self, open: &mut Open, links: &Links) -> Commit {
        let sources = links.receipts.len();
        let full = std::mem::replace(open, Open::new(self.next_alarm_key, sources));
        let (batch_no, devices) = self.judge.close_batch();
        let fx = full.fx;
        let batch = Batch {
            readings: fx.readings,
            readings_count: fx.readings_count,
            alarm_points: fx.alarm_points,
            alarm_points_count: fx.alarm_points_count,
            alarms: full.alarms,
            first_alarm_key: full.first_alarm_key,
            devices,
        };
        let closed = Closed {
            batch: batch_no,
            events: full.events,
            receipts: full.receipts,
            inputs: full.inputs,
        };
        let store = links.store.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let r = commit_until_done(&store, batch, &metrics).await;
            (closed, r)
        })
    }

    /// After a commit: reports, wakes, counts. `false` when the commit
    /// failed for good (the loop ends).
    fn finish(
        &mut self,
        closed: Closed,
        result: Option<(Dropped, Duration)>,
        links: &Links,
    ) -> bool {
        let Some((dropped, took)) = result else {
            tracing::error!(
                "the durable store failed; stopping (unacknowledged frames stay with the broker)"
            );
            return false;
        };
        self.judge.committed(closed.batch);
        self.metrics.commit_seconds.observe(took.as_secs_f64());
        self.metrics.commit_batch.observe(closed.inputs as f64);
        for q in Queue::ALL {
            let n = dropped.per_queue[q.index()];
            let label = q.as_str();
            if n > 0 {
                self.metrics
                    .queue_dropped
                    .with_label_values(&[label])
                    .inc_by(n);
                self.metrics
                    .queue_overflow
                    .with_label_values(&[label])
                    .set(1);
                tracing::error!(
                    queue = label,
                    dropped = n,
                    depth = links.store.len(q),
                    "ALARM: durable buffer full; oldest entries dropped (raise buffer caps or fix the far end)"
                );
            } else if links.store.len(q) == 0 {
                self.metrics
                    .queue_overflow
                    .with_label_values(&[label])
                    .set(0);
            }
        }
        for (tx, seq) in links.receipts.iter().zip(&closed.receipts) {
            if *seq > 0 {
                tx.send_if_modified(|v| {
                    let changed = *seq > *v;
                    *v = (*v).max(*seq);
                    changed
                });
            }
        }
        links.handled.fetch_add(closed.inputs, Ordering::Release);
        links.points.notify_one();
        for tail in &links.alarms {
            tail.wake();
        }
        for e in closed.events {
            let _ = links.subscribers.send(e);
        }
        self.gauges();
        true
    }
}

/// The commit in flight (never ready without one).
async fn in_flight(c: &mut Option<Commit>) -> (Closed, Option<(Dropped, Duration)>) {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Commits `batch`, retrying with backoff while the store refuses (a full
/// disk): nothing is acknowledged meanwhile, so the broker keeps the
/// frames. `None` only if the commit task itself died.
async fn commit_until_done(
    store: &Arc<Store>,
    batch: Batch,
    metrics: &Metrics,
) -> Option<(Dropped, Duration)> {
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut batch = batch;
    let started = std::time::Instant::now();
    loop {
        if batch.is_empty() {
            return Some((Dropped::default(), started.elapsed()));
        }
        let s = store.clone();
        let r = tokio::task::spawn_blocking(move || {
            let r = s.commit(&batch, wall_ms());
            (batch, r)
        })
        .await;
        match r {
            Ok((_, Ok(d))) => {
                metrics.buffer_failing.set(0);
                return Some((d, started.elapsed()));
            }
            Ok((b, Err(e))) => {
                batch = b;
                metrics.buffer_errors.inc();
                metrics.buffer_failing.set(1);
                tracing::error!(error = %e, "cannot commit to the durable buffer; retrying (ingest is held back)");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "commit task failed");
                return None;
            }
        }
    }
}
