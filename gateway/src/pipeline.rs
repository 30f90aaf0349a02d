//! The pipeline: validate ▶ rules ▶ durable batch ▶ acknowledge.
//!
//! One task owns every device's state (no locks on the hot path). It takes
//! whatever frames are waiting (group commit, up to `buffer.max_batch`),
//! judges each, and writes the batch's points, alarm events and touched
//! device records in one fsynced transaction; only then are the batch's
//! MQTT messages acknowledged, the sink and forwarders woken, and the alarm
//! events published to in-process subscribers.
//!
//! # Why event ids are unique and stable
//!
//! `event_id = EventId::for_transition(gateway, site, device, rule, n)` with
//! `n` the device's transition counter. `n` and the device's sequence window
//! (`validate::SeqWindow`) are persisted in the same transaction as the
//! alarm event that used `n`, and the frame that caused it is acknowledged
//! only after that transaction. So:
//!
//! * crash before the commit: nothing of the frame is on disk, the broker
//!   redelivers it (persistent session), and it is judged again from the
//!   same durable `n`; the event never left the process, so no id was seen
//!   twice;
//! * crash after the commit, before the ack: the broker redelivers the
//!   frame, the durable window recognises its `seq` as a duplicate
//!   (dropped, counted), and the event already in the outbox is delivered
//!   with its one id;
//! * `n` only grows (it is never reset, not even when the device reboots),
//!   so ids are unique across restarts.
//!
//! The rule engine's own state (active levels, debounce, rate history) is
//! persisted in the same record (`DeviceState::to_bytes`, with a
//! fingerprint of the rule set it belongs to), so after a restart every
//! device resumes exactly where it was: an alarm standing before a crash
//! is later cleared, not raised again, and a redelivered frame is judged
//! from the state it was first judged from. Only if the rules changed
//! while the gateway was down does a device start quiet under the new rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anquan_edge_rules::file::RuleFile;
use anquan_edge_rules::{DeviceState, RuleKind, RuleSet, SNAPSHOT_LEN, Transition};
use anquan_protocol::{
    AlarmEvent, AlarmState, DeviceKind, DeviceStatus, EventId, Id, Telemetry, Topic, TopicError,
    TopicKind,
};
use rumqttc::{AsyncClient, Publish, QoS};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, wall_ms};
use crate::ingest::Incoming;
use crate::logging::RateLimiter;
use crate::metrics::Metrics;
use crate::outbox::{Batch, Outbox, Queue};
use crate::rules::Rules;
use crate::sink::line;
use crate::validate::{DeviceTime, Reject, SeqVerdict, SeqWindow, UnknownDevices, ValidateConfig};

/// One device's state on the gateway.
#[derive(Debug)]
struct Device {
    site: u32,
    kind: DeviceKind,
    rules: Arc<RuleSet>,
    /// Fingerprint of `rules`.
    fp: u64,
    state: DeviceState,
    seq: SeqWindow,
    /// Transitions so far: the `n` of the next event id is `n + 1`.
    n: u64,
    online: bool,
    dirty: bool,
}

const RECORD_VERSION: u8 = 2;

impl Device {
    /// The durable record: version, kind, started, online, last (u32),
    /// seen (u64), n (u64), site length, site, rules fingerprint (u64),
    /// rule-engine snapshot.
    fn record(&self, site: &Id) -> Vec<u8> {
        let kind = DeviceKind::ALL
            .iter()
            .position(|k| *k == self.kind)
            .unwrap_or(0) as u8;
        let mut r = Vec::with_capacity(33 + site.len() + SNAPSHOT_LEN);
        r.extend_from_slice(&[
            RECORD_VERSION,
            kind,
            u8::from(self.seq.started),
            u8::from(self.online),
        ]);
        r.extend_from_slice(&self.seq.last.to_le_bytes());
        r.extend_from_slice(&self.seq.seen.to_le_bytes());
        r.extend_from_slice(&self.n.to_le_bytes());
        r.push(site.len() as u8);
        r.extend_from_slice(site.as_bytes());
        r.extend_from_slice(&self.fp.to_le_bytes());
        r.extend_from_slice(&self.state.to_bytes());
        r
    }
}

/// A parsed durable record.
#[derive(Debug, PartialEq)]
struct Record {
    kind: DeviceKind,
    seq: SeqWindow,
    online: bool,
    n: u64,
    site: Id,
    fp: u64,
    state: Option<DeviceState>,
}

fn parse_record(r: &[u8]) -> Option<Record> {
    let (head, rest) = r.split_at_checked(24)?;
    if head[0] != RECORD_VERSION {
        return None;
    }
    let (&site_len, rest) = rest.split_first()?;
    let (site, rest) = rest.split_at_checked(usize::from(site_len))?;
    let (fp, snap) = rest.split_at_checked(8)?;
    let u32_at = |i: usize| {
        head.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |i: usize| {
        head.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    Some(Record {
        kind: *DeviceKind::ALL.get(usize::from(head[1]))?,
        seq: SeqWindow {
            started: head[2] != 0,
            last: u32_at(4)?,
            seen: u64_at(8)?,
        },
        online: head[3] != 0,
        n: u64_at(16)?,
        site: Id::new(std::str::from_utf8(site).ok()?).ok()?,
        fp: u64::from_le_bytes(fp.try_into().ok()?),
        state: DeviceState::from_bytes(snap),
    })
}

/// What the current batch holds.
#[derive(Debug, Default)]
struct Pending {
    batch: Batch,
    acks: Vec<Publish>,
    events: Vec<AlarmEvent>,
    dirty: Vec<Box<str>>,
    messages: u64,
}

/// Everything the pipeline talks to.
#[derive(Debug)]
pub struct Links {
    /// Frames from ingest.
    pub rx: mpsc::Receiver<Incoming>,
    /// Validated rules files from the watcher.
    pub reload: mpsc::Receiver<RuleFile>,
    /// The ingest client, to acknowledge (None: nothing to acknowledge).
    pub client: Option<AsyncClient>,
    /// The durable buffer.
    pub outbox: Arc<Outbox>,
    /// Woken after each commit: the sink and every forwarder.
    pub wake: Vec<Arc<Notify>>,
    /// Alarm events, for in-process subscribers.
    pub alarms: broadcast::Sender<AlarmEvent>,
    /// Messages fully handled (committed and acknowledged, or rejected).
    pub handled: Arc<AtomicU64>,
}

/// The pipeline's state.
#[derive(Debug)]
pub struct Pipeline {
    gateway: Id,
    cfg: ValidateConfig,
    max_batch: usize,
    tick_every: Duration,
    sites: Vec<Id>,
    devices: HashMap<Box<str>, Device>,
    rules: Rules,
    clock: SharedClock,
    metrics: Metrics,
    limiter: RateLimiter,
    /// Acknowledgements waiting for room in the client's request channel.
    /// Never awaited: the event loop that drains that channel may itself
    /// be waiting for this task to take frames, so blocking here could
    /// deadlock. Bounded by the frames the broker lets be in flight.
    acks: std::collections::VecDeque<Publish>,
    /// Ingest has not been subscribed since the last tick (true at start).
    deaf: bool,
}

impl Pipeline {
    /// Builds the pipeline from the durable device records and the declared
    /// devices.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gateway: Id,
        cfg: ValidateConfig,
        max_batch: usize,
        tick_every: Duration,
        rules: RuleFile,
        records: Vec<(String, Vec<u8>)>,
        clock: SharedClock,
        metrics: Metrics,
        log_interval: Duration,
    ) -> Self {
        let mut p = Self {
            gateway,
            max_batch,
            tick_every,
            sites: Vec::new(),
            devices: HashMap::new(),
            rules: Rules::new(rules),
            clock,
            metrics,
            limiter: RateLimiter::new(log_interval),
            acks: std::collections::VecDeque::new(),
            deaf: true,
            cfg,
        };
        let now = p.clock.now_ms();
        for (id, rec) in records {
            let Some(r) = parse_record(&rec) else {
                tracing::warn!(device = %id, "unreadable device record ignored");
                continue;
            };
            let site = p.site_index(&r.site);
            let (rules, fp) = p.rules.for_device(&r.site, r.kind, &id);
            // Resume the rule state if it was built under these rules.
            let state = match r.state.filter(|_| r.fp == fp) {
                Some(mut s) => {
                    s.resume_at(now);
                    s
                }
                None => DeviceState::new(now),
            };
            p.devices.insert(
                id.into_boxed_str(),
                Device {
                    site,
                    kind: r.kind,
                    rules,
                    fp,
                    state,
                    seq: r.seq,
                    n: r.n,
                    online: r.online,
                    dirty: false,
                },
            );
        }
        for d in p.cfg.devices.clone() {
            if !p.devices.contains_key(d.id.as_str()) {
                p.insert_new(&d.id, &d.site, d.kind, now);
            }
        }
        p
    }

    /// Adds a device never seen before: quiet, online, first frame next.
    fn insert_new(&mut self, device: &str, site: &Id, kind: DeviceKind, now: u64) {
        let site_ix = self.site_index(site);
        let (rules, fp) = self.rules.for_device(site, kind, device);
        self.devices.insert(
            device.into(),
            Device {
                site: site_ix,
                kind,
                rules,
                fp,
                state: DeviceState::new(now),
                seq: SeqWindow::default(),
                n: 0,
                online: true,
                dirty: false,
            },
        );
    }

    /// The clock the rules run on.
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Devices known.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    fn site_index(&mut self, site: &Id) -> u32 {
        match self.sites.iter().position(|s| s == site) {
            Some(i) => i as u32,
            None => {
                self.sites.push(site.clone());
                (self.sites.len() - 1) as u32
            }
        }
    }

    /// Runs until `shutdown`, then handles what is already waiting, commits
    /// it and returns.
    pub async fn run(mut self, mut links: Links, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut rx_open = true;
        loop {
            let mut pending = Pending::default();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    while let Ok(m) = links.rx.try_recv() {
                        self.handle(m.publish, &mut pending);
                    }
                    self.commit(pending, &links).await;
                    // Hand over the last acknowledgements while ingest
                    // lingers to send them.
                    let until = Instant::now() + Duration::from_millis(250);
                    while !self.acks.is_empty() && Instant::now() < until {
                        self.flush_acks(&links);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    return;
                }
                m = links.rx.recv(), if rx_open => match m {
                    Some(m) => self.handle(m.publish, &mut pending),
                    None => rx_open = false,
                },
                Some(file) = links.reload.recv() => self.reload(file, &mut pending),
                _ = tick.tick() => self.tick(&mut pending),
                () = tokio::time::sleep(Duration::from_millis(1)), if !self.acks.is_empty() => {
                    self.flush_acks(&links);
                }
            }
            while pending.messages < self.max_batch as u64 {
                match links.rx.try_recv() {
                    Ok(m) => self.handle(m.publish, &mut pending),
                    Err(_) => break,
                }
            }
            self.commit(pending, &links).await;
        }
    }

    fn handle(&mut self, p: Publish, pending: &mut Pending) {
        let now = self.clock.now_ms();
        if let Err(r) = self.judge(&p, now, pending) {
            self.metrics.reject(r.as_str());
            if let Some(suppressed) = self.limiter.check(r.as_str()) {
                let payload =
                    String::from_utf8_lossy(&p.payload[..p.payload.len().min(160)]).into_owned();
                match r {
                    Reject::Decode(_) => {
                        let detail = Telemetry::decode(&p.payload)
                            .err()
                            .map(|e| e.to_string())
                            .unwrap_or_default();
                        tracing::warn!(reason = r.as_str(), topic = %p.topic, error = %detail, %payload, suppressed, "frame rejected");
                    }
                    Reject::BadTopic(e) => {
                        tracing::warn!(reason = r.as_str(), topic = %p.topic, error = %e, suppressed, "message rejected");
                    }
                    _ => {
                        tracing::warn!(reason = r.as_str(), topic = %p.topic, %payload, suppressed, "frame rejected")
                    }
                }
            }
        }
        pending.messages += 1;
        if p.qos != QoS::AtMostOnce {
            // Keep only what the ack needs.
            let mut ack = Publish::new("", p.qos, Vec::<u8>::new());
            ack.pkid = p.pkid;
            pending.acks.push(ack);
        }
    }

    fn judge(&mut self, p: &Publish, now: u64, pending: &mut Pending) -> Result<(), Reject> {
        let topic = p.topic.as_str();
        let Topic::Device {
            site,
            device,
            kind: channel,
        } = Topic::parse(topic).map_err(Reject::BadTopic)?
        else {
            return Err(Reject::BadTopic(TopicError::Unknown));
        };
        let site_id = Id::new(site).map_err(|e| Reject::BadTopic(TopicError::BadSite(e)))?;
        if channel == TopicKind::Status {
            let status = DeviceStatus::parse(&p.payload).ok_or(Reject::BadStatus)?;
            let Some(dev) = self.devices.get_mut(device) else {
                return Err(Reject::UnknownDevice);
            };
            if self.sites.get(dev.site as usize) != Some(&site_id) {
                return Err(Reject::SiteMismatch);
            }
            let tr = dev
                .rules
                .status(&mut dev.state, status == DeviceStatus::Online, now);
            self.metrics
                .frames_processed
                .with_label_values(&["status"])
                .inc();
            self.emit(device, tr, pending);
            return Ok(());
        }
        let frame = Telemetry::decode(&p.payload).map_err(|e| Reject::Decode(e.problem))?;
        if frame.device != device {
            return Err(Reject::DeviceMismatch);
        }
        if !self.devices.contains_key(device) {
            self.register(device, &site_id, frame.kind)?;
        }
        let skew = self.cfg.max_clock_skew_s.saturating_mul(1000);
        let Some(dev) = self.devices.get_mut(device) else {
            return Err(Reject::UnknownDevice);
        };
        let dev_site = self
            .sites
            .get(dev.site as usize)
            .cloned()
            .unwrap_or_default();
        if dev_site != site_id {
            return Err(Reject::SiteMismatch);
        }
        if dev.kind != frame.kind {
            return Err(Reject::KindMismatch);
        }
        let verdict = dev.seq.check(frame.seq, p.dup);
        match verdict {
            SeqVerdict::Duplicate => return Err(Reject::Duplicate),
            SeqVerdict::OutOfOrder => return Err(Reject::OutOfOrder),
            SeqVerdict::Gap(missing) => {
                self.metrics.seq_gaps.inc();
                self.metrics.seq_missing.inc_by(u64::from(missing));
                if let Some(suppressed) = self.limiter.check("seq_gap") {
                    tracing::warn!(%device, seq = frame.seq, missing, suppressed, "sequence gap: frames lost between device and gateway");
                }
            }
            SeqVerdict::Restart => {
                if let Some(suppressed) = self.limiter.check("device_restart") {
                    tracing::info!(%device, seq = frame.seq, suppressed, "device restarted (sequence back to the start)");
                }
            }
            SeqVerdict::First | SeqVerdict::Next => {}
        }
        dev.seq.accept(frame.seq, verdict);
        if frame.dropped > 0 {
            self.metrics.device_dropped.inc_by(u64::from(frame.dropped));
        }
        let time = DeviceTime::judge(frame.ts_ms, now, skew);
        if let DeviceTime::Skewed(_) = time {
            self.metrics.clock_skew.inc();
            if let Some(suppressed) = self.limiter.check("clock_skew") {
                tracing::warn!(%device, device_ms = frame.ts_ms, gateway_ms = now, suppressed, "device clock skewed; using gateway time");
            }
        }
        let tr = dev
            .rules
            .evaluate(&mut dev.state, &frame.readings, &frame.faults, now);
        pending
            .batch
            .points
            .push(line::frame(&dev_site, &frame, time.ms()).into_bytes());
        let label = if channel == TopicKind::Event {
            "event"
        } else {
            "telemetry"
        };
        self.metrics
            .frames_processed
            .with_label_values(&[label])
            .inc();
        self.emit(device, tr, pending);
        self.touch(device, pending);
        Ok(())
    }

    /// Registers a device the registry does not hold yet (declared devices
    /// are registered at start-up, so this one is undeclared).
    fn register(&mut self, device: &str, site: &Id, kind: DeviceKind) -> Result<(), Reject> {
        if self.cfg.unknown_devices == UnknownDevices::Reject {
            return Err(Reject::UnknownDevice);
        }
        if self.devices.len() >= self.cfg.max_devices {
            return Err(Reject::RegistryFull);
        }
        let now = self.clock.now_ms();
        self.insert_new(device, site, kind, now);
        self.metrics.devices.with_label_values(&["online"]).inc();
        tracing::debug!(%device, %site, kind = kind.as_str(), "device registered");
        Ok(())
    }

    fn touch(&mut self, device: &str, pending: &mut Pending) {
        if let Some(d) = self.devices.get_mut(device) {
            // `dirty` = already listed in this batch's `pending.dirty`.
            if !d.dirty {
                d.dirty = true;
                pending.dirty.push(device.into());
            }
        }
    }

    /// Turns transitions into alarm events (numbered durably) and points.
    fn emit(
        &mut self,
        device: &str,
        transitions: anquan_edge_rules::Transitions,
        pending: &mut Pending,
    ) {
        if transitions.is_empty() {
            return;
        }
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        let Ok(device_id) = Id::new(device) else {
            return;
        };
        let site = self
            .sites
            .get(dev.site as usize)
            .cloned()
            .unwrap_or_default();
        for tr in transitions {
            dev.n += 1;
            let event = event(&self.gateway, &site, &device_id, dev.kind, &tr, dev.n);
            if dev
                .rules
                .get(&tr.rule)
                .is_some_and(|r| matches!(r.kind, RuleKind::Offline { .. }))
            {
                let online = tr.state == AlarmState::Cleared;
                if online != dev.online {
                    let (up, down) = if online {
                        ("online", "offline")
                    } else {
                        ("offline", "online")
                    };
                    self.metrics.devices.with_label_values(&[up]).inc();
                    self.metrics.devices.with_label_values(&[down]).dec();
                }
                dev.online = online;
            }
            self.metrics
                .alarms
                .with_label_values(&[event.level.as_str(), event.state.as_str()])
                .inc();
            tracing::info!(event_id = %event.event_id, rule = %event.rule, level = event.level.as_str(), state = event.state.as_str(), value = event.value, threshold = event.threshold, "alarm");
            if let Ok(json) = event.to_vec() {
                pending.batch.alarms.push(json.to_vec());
            }
            pending.batch.points.push(line::alarm(&event).into_bytes());
            pending.events.push(event);
        }
        self.touch(device, pending);
    }

    fn tick(&mut self, pending: &mut Pending) {
        let now = self.clock.now_ms();
        // Silence counts against a device only while we can hear it: not
        // while the broker link is down, nor while the gateway was not
        // running. Otherwise an outage of our own would raise every device
        // of the site offline at once. On (re)subscribing, every device gets
        // one full offline period to be heard from again.
        let hearing = self.metrics.mqtt_subscribed.get() == 1;
        let excuse = hearing && self.deaf;
        self.deaf = !hearing;
        let mut fired = Vec::new();
        let (mut online, mut offline) = (0i64, 0i64);
        for (id, dev) in &mut self.devices {
            if excuse {
                dev.state.resume_at(now);
            }
            let tr = if hearing {
                dev.rules.tick(&mut dev.state, now)
            } else {
                Default::default()
            };
            if !tr.is_empty() {
                fired.push((id.clone(), tr));
            }
            if dev.online {
                online += 1
            } else {
                offline += 1
            }
        }
        self.metrics
            .devices
            .with_label_values(&["online"])
            .set(online);
        self.metrics
            .devices
            .with_label_values(&["offline"])
            .set(offline);
        // After the recount: emitting moves the fired devices between the two.
        for (id, tr) in fired {
            self.emit(&id, tr, pending);
        }
    }

    fn reload(&mut self, file: RuleFile, pending: &mut Pending) {
        let now = self.clock.now_ms();
        self.rules = Rules::new(file);
        let ids: Vec<Box<str>> = self.devices.keys().cloned().collect();
        let mut changed = 0usize;
        for id in ids {
            let Some(dev) = self.devices.get_mut(&id) else {
                continue;
            };
            let Some(site) = self.sites.get(dev.site as usize) else {
                continue;
            };
            let (new, fp) = self.rules.for_device(site, dev.kind, &id);
            if *new == *dev.rules {
                dev.rules = new;
                dev.fp = fp;
                continue;
            }
            changed += 1;
            let (state, tr) = new.migrate(&dev.rules, &dev.state, now);
            dev.state = state;
            dev.rules = new;
            dev.fp = fp;
            self.emit(&id, tr, pending);
            self.touch(&id, pending);
        }
        tracing::info!(devices_changed = changed, "new rules in force");
    }

    /// Hands waiting acknowledgements to the MQTT client, in order, as far
    /// as its request channel has room.
    fn flush_acks(&mut self, links: &Links) {
        let Some(client) = &links.client else {
            self.acks.clear();
            return;
        };
        while let Some(ack) = self.acks.front() {
            match client.try_ack(ack) {
                Ok(()) => {
                    self.acks.pop_front();
                }
                Err(rumqttc::ClientError::TryRequest(_)) => {
                    if self.acks.len() > 1_000_000 {
                        // The event loop is gone; the broker will redeliver.
                        tracing::error!(
                            waiting = self.acks.len(),
                            "acknowledgements cannot be sent; dropping them (frames will be redelivered)"
                        );
                        self.acks.clear();
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot acknowledge (the broker will redeliver)");
                    self.acks.pop_front();
                }
            }
        }
    }

    async fn commit(&mut self, mut pending: Pending, links: &Links) {
        if pending.messages == 0 && pending.batch.is_empty() {
            return;
        }
        for id in std::mem::take(&mut pending.dirty) {
            if let Some(d) = self.devices.get_mut(&id) {
                d.dirty = false;
                if let Some(site) = self.sites.get(d.site as usize) {
                    pending.batch.devices.push((id.to_string(), d.record(site)));
                }
            }
        }
        let started = Instant::now();
        let mut batch = std::mem::take(&mut pending.batch);
        let mut backoff = crate::backoff::Backoff::new(crate::backoff::BackoffConfig::default());
        let dropped = loop {
            if batch.is_empty() {
                break Default::default();
            }
            let ob = links.outbox.clone();
            let r = tokio::task::spawn_blocking(move || {
                let r = ob.commit(&batch, wall_ms());
                (batch, r)
            })
            .await;
            match r {
                Ok((_, Ok(d))) => {
                    self.metrics.buffer_failing.set(0);
                    break d;
                }
                Ok((b, Err(e))) => {
                    batch = b;
                    self.metrics.buffer_errors.inc();
                    self.metrics.buffer_failing.set(1);
                    // Nothing is acknowledged until this succeeds: the
                    // broker keeps the frames. Retry, loudly.
                    tracing::error!(error = %e, "cannot commit to the durable buffer; retrying (ingest is held back)");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "commit task failed; frames will be redelivered");
                    return;
                }
            }
        };
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.commit_batch.observe(pending.messages as f64);
        for q in Queue::ALL {
            let n = dropped.per_queue[match q {
                Queue::Points => 0,
                Queue::AlarmsHttp => 1,
                Queue::AlarmsMqtt => 2,
            }];
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
                    depth = links.outbox.len(q),
                    "ALARM: durable buffer full; oldest entries dropped (raise buffer caps or fix the far end)"
                );
            } else if links.outbox.len(q) == 0 {
                self.metrics
                    .queue_overflow
                    .with_label_values(&[label])
                    .set(0);
            }
        }
        self.acks.extend(pending.acks);
        self.flush_acks(links);
        for w in &links.wake {
            w.notify_one();
        }
        for e in pending.events {
            let _ = links.alarms.send(e);
        }
        links.handled.fetch_add(pending.messages, Ordering::Release);
    }
}

fn event(
    gateway: &Id,
    site: &Id,
    device: &Id,
    kind: DeviceKind,
    tr: &Transition,
    n: u64,
) -> AlarmEvent {
    AlarmEvent {
        event_id: EventId::for_transition(gateway, site, device, &tr.rule, n),
        site: site.clone(),
        device: device.clone(),
        kind,
        rule: tr.rule.clone(),
        level: tr.level,
        state: tr.state,
        value: tr.value,
        threshold: tr.threshold,
        ts_ms: tr.at_ms,
        gateway: gateway.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_records_round_trip() {
        let d = Device {
            site: 0,
            kind: DeviceKind::Crane,
            rules: Arc::new(anquan_edge_rules::defaults::for_kind(DeviceKind::Crane)),
            fp: 99,
            state: DeviceState::new(1234),
            seq: SeqWindow {
                started: true,
                last: 77,
                seen: 0b1011,
            },
            n: 12_345,
            online: false,
            dirty: false,
        };
        let site = Id::new("s1").unwrap();
        let r = parse_record(&d.record(&site)).unwrap();
        assert_eq!(
            r,
            Record {
                kind: DeviceKind::Crane,
                seq: d.seq,
                online: false,
                n: 12_345,
                site,
                fp: 99,
                state: Some(DeviceState::new(1234)),
            }
        );
        assert_eq!(parse_record(b"short"), None);
    }

    #[test]
    fn per_device_state_stays_small() {
        // Budget (issue 5): ≤ 512 bytes of state per device.
        let per = std::mem::size_of::<Device>() + std::mem::size_of::<Box<str>>() + 16 + 1;
        assert!(per <= 512, "{per} bytes per device");
    }
}
