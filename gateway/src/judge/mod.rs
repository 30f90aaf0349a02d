//! The judge: the gateway's pure core. It holds every device's state
//! (registry entry, sequence window, rule state, transition counter) and
//! turns inputs into points and alarm events. No I/O, no clock, no
//! metrics: time is passed in, what happened is returned, and the loop
//! around it (`pipeline`) counts, logs, commits and sends.
//!
//! # Event ids
//!
//! `event_id = EventId::for_transition(gateway, site, device, rule, n)` with
//! `n` the device's transition counter. `n`, the sequence window and the
//! rule state are written (as a [`DeviceRecord`]) in the same transaction
//! as the events that used `n`, and the frames that caused them are
//! acknowledged to the broker only after that transaction. So a frame the
//! broker redelivers after a crash is judged again from the same durable
//! state; `n` only grows, so ids are unique across restarts.
//!
//! # The fast lane: alarms before their commit
//!
//! An alarm marked [`Alarm::early`] may be sent before its batch is
//! committed. If the gateway crashes before the commit, the broker
//! redelivers the frame, the judge derives the same transition from the
//! same durable state, with the same `n`, and the receivers absorb the
//! repeat. That holds only when judging the frame again cannot come out
//! differently, so an alarm is early only when:
//!
//! * its input is delivered again until acknowledged ([`Guarantee::UntilAcked`]);
//! * the device's rules judged the frame without looking at the clock: no
//!   enabled rate-of-change rule, and every rule with a debounce in time
//!   quiet with nothing pending before and after the frame
//!   ([`RuleRef::clock_free`]; debounces in samples, thresholds,
//!   combinations and faults never look at it). Every default set
//!   qualifies while its held-in-time rules (CO for 15 minutes, a pump
//!   running without pressure, a sustained lean) are quiet; while one
//!   counts, the device's alarms wait for their commit;
//! * nothing happened to the device since its last commit that will not
//!   happen again in the same way: a device restart (seq back to the
//!   start: a redelivered copy is a duplicate instead), an input delivered
//!   once (Modbus, QoS 0), an offline alarm from silence, a rules reload
//!   ([`Device::unsure_until`]);
//! * it is not an offline rule's transition (its value is the silence in
//!   seconds, measured on the clock).
//!
//! Every other alarm waits for its commit (`buffer.commit_interval_ms` at
//! most, plus the fsync). The compared fields of a repeat (device, kind,
//! rule, level, state, value, threshold, gateway) are then identical; only
//! `ts_ms` may differ (a later receive time), which the monitor does not
//! compare. Two cases break the premise "the frame comes back": rules that
//! changed while the gateway was down (the device's state is dropped) and
//! a broker that lost the gateway's session after a crash; in both the
//! transition counter jumps by [`SPECULATION_MARGIN`], so no id that may
//! have left early is ever reused for something else.

pub mod input;

use std::collections::HashMap;

use anquan_edge_rules::file::RuleFile;
use anquan_edge_rules::{DeviceState, MAX_RULES, RuleKind, Transitions};
use anquan_protocol::{AlarmEvent, AlarmState, DeviceKind, DeviceStatus, EventId, Id, Telemetry};

use crate::rules::{RuleRef, Rules};
use crate::sink::line;
use crate::store::MAX_BATCH;
use crate::store::record::DeviceRecord;
use crate::validate::{DeviceTime, Reject, SeqVerdict, SeqWindow, UnknownDevices, ValidateConfig};
pub use input::{Body, Guarantee, Input};

/// How far a device's transition counter jumps when alarms may have left
/// early for frames that will not be judged again (see the module docs):
/// more than the transitions two uncommitted batches can hold.
pub const SPECULATION_MARGIN: u64 = 2 * MAX_BATCH as u64 * MAX_RULES as u64;

/// One device's state on the gateway.
#[derive(Debug)]
struct Device {
    site: u32,
    kind: DeviceKind,
    rules: RuleRef,
    state: DeviceState,
    seq: SeqWindow,
    /// Transitions so far: the `n` of the next event id is `n + 1`.
    n: u64,
    online: bool,
    /// Listed in the open batch's records to write.
    dirty: bool,
    /// The batch whose commit makes this device's judgments repeatable
    /// again (see the module docs); repeatable when it is committed.
    unsure_until: u64,
}

/// An alarm event the judge produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// The event.
    pub event: AlarmEvent,
    /// It may be sent before its batch is committed (the fast lane).
    pub early: bool,
}

/// What judging adds to the open batch.
#[derive(Debug, Default)]
pub struct Effects {
    /// Points of the accepted frames (line protocol, one per line).
    pub readings: String,
    /// Points in `readings`.
    pub readings_count: u32,
    /// The alarm events as points.
    pub alarm_points: String,
    /// Points in `alarm_points`.
    pub alarm_points_count: u32,
    /// Alarm events, in the order they were judged. The loop takes them
    /// out as they come (to send the early ones at once).
    pub alarms: Vec<Alarm>,
}

fn push_line(buf: &mut String, count: &mut u32, line: &str) {
    if !buf.is_empty() {
        buf.push('\n');
    }
    buf.push_str(line);
    *count += 1;
}

/// What an accepted input told, for the loop to count and log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Frames missing before this one (a sequence gap).
    pub gap: Option<u32>,
    /// The device started its sequence over.
    pub restart: bool,
    /// The device clock was off by more than the bound.
    pub skewed: bool,
    /// Frames the device says it dropped.
    pub dropped: u32,
    /// The device was registered by this frame.
    pub registered: bool,
}

/// The judge.
#[derive(Debug)]
pub struct Judge {
    gateway: Id,
    cfg: ValidateConfig,
    sites: Vec<Id>,
    devices: HashMap<Box<str>, Device>,
    rules: Rules,
    /// Devices whose records the open batch must write.
    dirty: Vec<Box<str>>,
    /// The open batch (the first is 1).
    batch: u64,
    /// The last committed batch.
    durable: u64,
    online: i64,
    offline: i64,
    /// Not hearing the devices since the last tick (true at start).
    deaf: bool,
    /// Where the known sites are published (the heartbeat reports them).
    sites_tx: Option<tokio::sync::watch::Sender<Vec<String>>>,
}

impl Judge {
    /// A judge from the durable device records and the declared devices.
    /// `was_clean`: the previous run ended cleanly (nothing was sent early
    /// that the records do not hold).
    pub fn new(
        gateway: Id,
        cfg: ValidateConfig,
        rules: RuleFile,
        records: Vec<(String, Vec<u8>)>,
        was_clean: bool,
        now_ms: u64,
    ) -> Self {
        let mut j = Self {
            gateway,
            sites: Vec::new(),
            devices: HashMap::new(),
            rules: Rules::new(rules),
            dirty: Vec::new(),
            batch: 1,
            durable: 0,
            online: 0,
            offline: 0,
            deaf: true,
            cfg,
            sites_tx: None,
        };
        for (id, rec) in records {
            let Some(r) = DeviceRecord::parse(&rec) else {
                tracing::warn!(device = %id, "unreadable device record ignored");
                continue;
            };
            let site = j.site_index(&r.site);
            let rules = j.rules.for_device(&r.site, r.kind, &id);
            let mut n = r.n;
            // Resume the rule state only under the rules it was built for.
            let state = match r.state.filter(|_| r.fp == rules.fp) {
                Some(mut s) => {
                    s.resume_at(now_ms);
                    s
                }
                None => {
                    if !was_clean {
                        // Alarms of uncommitted frames may have left under
                        // the old rules; the new ones judge differently.
                        n += SPECULATION_MARGIN;
                    }
                    DeviceState::new(now_ms)
                }
            };
            if r.online {
                j.online += 1;
            } else {
                j.offline += 1;
            }
            j.devices.insert(
                id.into_boxed_str(),
                Device {
                    site,
                    kind: r.kind,
                    rules,
                    state,
                    seq: r.seq,
                    n,
                    online: r.online,
                    dirty: false,
                    unsure_until: 0,
                },
            );
        }
        for d in j.cfg.devices.clone() {
            if !j.devices.contains_key(d.id.as_str()) {
                j.insert_new(&d.id, &d.site, d.kind, now_ms);
            }
        }
        j
    }

    /// Devices known.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Devices online and offline (their offline rule quiet or raised).
    pub fn online_offline(&self) -> (i64, i64) {
        (self.online, self.offline)
    }

    /// Publishes the sites the judge knows (its devices' sites, declared,
    /// recorded or seen) on `tx`, now and whenever a new one appears.
    pub fn publish_sites(&mut self, tx: tokio::sync::watch::Sender<Vec<String>>) {
        tx.send_replace(self.sites.iter().map(Id::to_string).collect());
        self.sites_tx = Some(tx);
    }

    fn site_index(&mut self, site: &Id) -> u32 {
        match self.sites.iter().position(|s| s == site) {
            Some(i) => i as u32,
            None => {
                if let Some(tx) = &self.sites_tx {
                    tx.send_modify(|v| v.push(site.to_string()));
                }
                self.sites.push(site.clone());
                (self.sites.len() - 1) as u32
            }
        }
    }

    /// Adds a device never seen before: quiet, online, first frame next.
    fn insert_new(&mut self, device: &str, site: &Id, kind: DeviceKind, now_ms: u64) {
        let site_ix = self.site_index(site);
        let rules = self.rules.for_device(site, kind, device);
        self.online += 1;
        self.devices.insert(
            device.into(),
            Device {
                site: site_ix,
                kind,
                rules,
                state: DeviceState::new(now_ms),
                seq: SeqWindow::default(),
                n: 0,
                online: true,
                dirty: false,
                unsure_until: 0,
            },
        );
    }

    /// Judges one input received at `now_ms`.
    pub fn judge(
        &mut self,
        input: &Input,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<Accepted, Reject> {
        match &input.body {
            Body::Status(s) => self.status(input, *s, now_ms, fx),
            Body::Telemetry(f) | Body::Event(f) => self.frame(input, f, now_ms, fx),
        }
    }

    fn status(
        &mut self,
        input: &Input,
        status: DeviceStatus,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<Accepted, Reject> {
        let device = input.device.as_str();
        let Some(dev) = self.devices.get_mut(device) else {
            return Err(Reject::UnknownDevice);
        };
        if self.sites.get(dev.site as usize) != Some(&input.site) {
            return Err(Reject::SiteMismatch);
        }
        let tr = dev
            .rules
            .set
            .status(&mut dev.state, status == DeviceStatus::Online, now_ms);
        // An offline transition's value is a silence measured on the
        // clock: never early. Judged again it comes out the same way
        // (only the value differs), so it does not unsettle the device,
        // unless the status will not come again.
        let settled = input.guarantee != Guarantee::Once || tr.is_empty();
        self.emit(
            device,
            tr,
            (now_ms, now_ms),
            Speed::Committed { settled },
            fx,
        );
        Ok(Accepted::default())
    }

    fn frame(
        &mut self,
        input: &Input,
        frame: &Telemetry,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<Accepted, Reject> {
        let device = input.device.as_str();
        if frame.device != input.device {
            return Err(Reject::DeviceMismatch);
        }
        let mut accepted = Accepted::default();
        if !self.devices.contains_key(device) {
            self.register(device, &input.site, frame.kind, now_ms)?;
            accepted.registered = true;
        }
        let skew = self.cfg.max_clock_skew_s.saturating_mul(1000);
        let durable = self.durable;
        let open = self.batch;
        let Some(dev) = self.devices.get_mut(device) else {
            return Err(Reject::UnknownDevice);
        };
        let Some(site) = self.sites.get(dev.site as usize) else {
            return Err(Reject::UnknownDevice);
        };
        if *site != input.site {
            return Err(Reject::SiteMismatch);
        }
        if dev.kind != frame.kind {
            return Err(Reject::KindMismatch);
        }
        let verdict = dev.seq.check(frame.seq, input.guarantee.repeat());
        match verdict {
            SeqVerdict::Duplicate => return Err(Reject::Duplicate),
            SeqVerdict::OutOfOrder => return Err(Reject::OutOfOrder),
            SeqVerdict::Gap(missing) => accepted.gap = Some(missing),
            SeqVerdict::Restart => accepted.restart = true,
            SeqVerdict::First | SeqVerdict::Next => {}
        }
        dev.seq.accept(frame.seq, verdict);
        accepted.dropped = frame.dropped;
        let time = DeviceTime::judge(frame.ts_ms, now_ms, skew);
        accepted.skewed = matches!(time, DeviceTime::Skewed(_));
        let clock_free_before = dev.rules.clock_free(&dev.state);
        let tr = dev
            .rules
            .set
            .evaluate(&mut dev.state, &frame.readings, &frame.faults, now_ms);
        let clock_free = clock_free_before && dev.rules.clock_free(&dev.state);
        let line = line::frame(site, frame, time.ms());
        push_line(&mut fx.readings, &mut fx.readings_count, &line);
        // Judged again after a crash, would this frame come out the same
        // way? Not if it will not come again, nor if its verdict rests on
        // the DUP flag (a restart: the redelivered copy is a duplicate),
        // nor if its rules looked at the clock for it.
        let repeatable = input.guarantee != Guarantee::Once && !accepted.restart && clock_free;
        let speed = if !repeatable {
            Speed::Committed { settled: false }
        } else if dev.unsure_until <= durable {
            Speed::Early
        } else {
            // Repeatable itself, but judged from a state that rests on
            // something that is not, until that is committed.
            Speed::Committed { settled: true }
        };
        if !repeatable {
            dev.unsure_until = open;
        }
        self.emit(device, tr, (time.ms(), now_ms), speed, fx);
        self.touch(device);
        Ok(accepted)
    }

    /// Registers a device the registry does not hold yet (declared devices
    /// are registered at start-up, so this one is undeclared).
    fn register(
        &mut self,
        device: &str,
        site: &Id,
        kind: DeviceKind,
        now_ms: u64,
    ) -> Result<(), Reject> {
        if self.cfg.unknown_devices == UnknownDevices::Reject {
            return Err(Reject::UnknownDevice);
        }
        if self.devices.len() >= self.cfg.max_devices {
            return Err(Reject::RegistryFull);
        }
        self.insert_new(device, site, kind, now_ms);
        Ok(())
    }

    fn touch(&mut self, device: &str) {
        if let Some(d) = self.devices.get_mut(device)
            && !d.dirty
        {
            d.dirty = true;
            self.dirty.push(device.into());
        }
    }

    /// Turns transitions into alarm events (numbered durably) and points.
    /// `(frame_ms, heard_ms)`: the frame's time (device time when trusted,
    /// else the receive time) and the gateway's. An offline rule's
    /// transition carries the gateway's: silence is measured on its clock,
    /// and a device coming back after an outage often sends the frames it
    /// buffered first, whose device time is when the outage began.
    fn emit(
        &mut self,
        device: &str,
        transitions: Transitions,
        (frame_ms, heard_ms): (u64, u64),
        speed: Speed,
        fx: &mut Effects,
    ) {
        if transitions.is_empty() {
            return;
        }
        let open = self.batch;
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        let Ok(device_id) = Id::new(device) else {
            return;
        };
        let Some(site) = self.sites.get(dev.site as usize) else {
            return;
        };
        if let Speed::Committed { settled: false } = speed {
            dev.unsure_until = open;
        }
        for tr in transitions {
            dev.n += 1;
            let offline_rule = dev
                .rules
                .set
                .get(&tr.rule)
                .is_some_and(|r| matches!(r.kind, RuleKind::Offline { .. }));
            if offline_rule {
                let online = tr.state == AlarmState::Cleared;
                if online != dev.online {
                    let d = if online { 1 } else { -1 };
                    self.online += d;
                    self.offline -= d;
                }
                dev.online = online;
            }
            let event = AlarmEvent {
                event_id: EventId::for_transition(&self.gateway, site, &device_id, &tr.rule, dev.n),
                site: site.clone(),
                device: device_id.clone(),
                kind: dev.kind,
                rule: tr.rule.clone(),
                level: tr.level,
                state: tr.state,
                value: tr.value,
                threshold: tr.threshold,
                ts_ms: if offline_rule { heard_ms } else { frame_ms },
                gateway: self.gateway.clone(),
            };
            push_line(
                &mut fx.alarm_points,
                &mut fx.alarm_points_count,
                &line::alarm(&event),
            );
            fx.alarms.push(Alarm {
                event,
                early: speed == Speed::Early && !offline_rule,
            });
        }
        self.touch(device);
    }

    /// Checks every device's offline rule at `now_ms`. `hearing`: the
    /// gateway can hear its devices (subscribed). Silence counts against a
    /// device only while the gateway hears, and on hearing again (or
    /// after a start) every device gets one full offline period to be
    /// heard from: an outage of our own must not raise the whole site
    /// offline.
    pub fn tick(&mut self, now_ms: u64, hearing: bool, fx: &mut Effects) {
        let resumed = hearing && self.deaf;
        self.deaf = !hearing;
        let mut fired = Vec::new();
        for (id, dev) in &mut self.devices {
            if resumed {
                dev.state.resume_at(now_ms);
            }
            if hearing {
                let tr = dev.rules.set.tick(&mut dev.state, now_ms);
                if !tr.is_empty() {
                    fired.push((id.clone(), tr));
                }
            }
        }
        for (id, tr) in fired {
            // Silence is measured on the clock: judged again after a
            // crash, it may fire at another moment or not at all.
            self.emit(
                &id,
                tr,
                (now_ms, now_ms),
                Speed::Committed { settled: false },
                fx,
            );
        }
    }

    /// Puts a new rules file in force; every device's state is carried
    /// over (`RuleSet::migrate`; an alarm whose rule is gone is cleared).
    /// Returns the devices whose rules changed.
    pub fn reload(&mut self, file: RuleFile, now_ms: u64, fx: &mut Effects) -> usize {
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
            let new = self.rules.for_device(site, dev.kind, &id);
            if *new.set == *dev.rules.set {
                dev.rules = new;
                continue;
            }
            changed += 1;
            let (state, tr) = new.set.migrate(&dev.rules.set, &dev.state, now_ms);
            dev.state = state;
            dev.rules = new;
            dev.unsure_until = self.batch;
            self.emit(
                &id,
                tr,
                (now_ms, now_ms),
                Speed::Committed { settled: false },
                fx,
            );
            self.touch(&id);
        }
        changed
    }

    /// After a crash, alarms the fast lane sent may belong to frames the
    /// broker no longer holds (it lost the gateway's session): moves every
    /// device's transition counter past any id they may have used.
    pub fn forget_speculation(&mut self) {
        let ids: Vec<Box<str>> = self.devices.keys().cloned().collect();
        for id in ids {
            if let Some(d) = self.devices.get_mut(&id) {
                d.n += SPECULATION_MARGIN;
            }
            self.touch(&id);
        }
    }

    /// Closes the open batch: the records it must write, and its number
    /// (pass it to [`Judge::committed`] once it is durable).
    pub fn close_batch(&mut self) -> (u64, Vec<(String, Vec<u8>)>) {
        let mut records = Vec::with_capacity(self.dirty.len());
        for id in std::mem::take(&mut self.dirty) {
            if let Some(d) = self.devices.get_mut(&id) {
                d.dirty = false;
                if let Some(site) = self.sites.get(d.site as usize) {
                    let rec = DeviceRecord {
                        kind: d.kind,
                        site: site.clone(),
                        seq: d.seq,
                        online: d.online,
                        n: d.n,
                        fp: d.rules.fp,
                        state: Some(d.state.clone()),
                    };
                    records.push((id.to_string(), rec.to_bytes()));
                }
            }
        }
        let closed = self.batch;
        self.batch += 1;
        (closed, records)
    }

    /// Batch `batch` (and every one before it) is durable.
    pub fn committed(&mut self, batch: u64) {
        self.durable = self.durable.max(batch);
    }
}

/// When an emitted alarm may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speed {
    /// Before its commit.
    Early,
    /// After its commit. `settled`: judging the input again would number
    /// the same transitions (the device's later alarms may still be early).
    Committed { settled: bool },
}

#[cfg(test)]
mod tests;
