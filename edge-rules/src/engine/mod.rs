//! The rule set, the per-device state machine and the transitions it reports.

use anquan_protocol::{AlarmState, Fault, Level, Metric, Readings, RuleId};

use crate::hours::Hours;
use crate::rule::{Condition, Direction, Levels, Rule, RuleError, RuleKind};
use crate::{MAX_RATE_RULES, MAX_RULES};

/// The longest planned power-off honoured, ms: the wire contract's range of
/// `power_off_min` (14 days).
const MAX_PLANNED_OFF_MS: u64 = 20_160 * 60_000;

/// An alarm transition of one rule on one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The rule.
    pub rule: RuleId,
    /// Raised, escalated, downgraded or cleared.
    pub state: AlarmState,
    /// The level now; for `cleared`, the level that was cleared.
    pub level: Level,
    /// The level before (`None` for `raised`).
    pub from: Option<Level>,
    /// The value that caused it (a rate per minute for rate rules, seconds
    /// of silence for offline rules, the number of faults for fault rules).
    pub value: f32,
    /// The threshold it crossed.
    pub threshold: f32,
    /// The time passed in with the sample, in ms.
    pub at_ms: u64,
}

/// The transitions of one evaluation, in rule order.
pub type Transitions = heapless::Vec<Transition, MAX_RULES>;

/// The rules of one device, in evaluation order, and the hours in which
/// its silence counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    rules: heapless::Vec<Rule, MAX_RULES>,
    hours: Hours,
}

/// Per-rule state, kept small: the gateway holds one [`DeviceState`] per
/// device and a site may have a hundred thousand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, packed(4))]
struct RuleState {
    /// Active level: 0 quiet, 1 blue … 4 red.
    level: u8,
    /// Level a pending change is heading to (same encoding).
    pending: u8,
    /// Consecutive samples the pending change has held; 0 = none pending.
    count: u8,
    /// When the pending change started.
    since_ms: u64,
}

fn encode(l: Option<Level>) -> u8 {
    l.map_or(0, |l| l as u8 + 1)
}

fn decode(v: u8) -> Option<Level> {
    v.checked_sub(1)
        .and_then(|i| Level::ALL.get(usize::from(i)).copied())
}

/// Samples kept for one rate-of-change rule.
const RATE_SAMPLES: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C, packed(4))]
struct Sample {
    at_ms: u64,
    value: f32,
}

/// A small ring of samples, spaced at least a fifth of the window apart.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct RateHistory {
    samples: [Sample; RATE_SAMPLES],
    head: u8,
    len: u8,
}

impl RateHistory {
    fn get(&self, i: usize) -> Sample {
        self.samples[(usize::from(self.head) + i) % RATE_SAMPLES]
    }

    /// Records `v` at `now` and returns the rate per minute over roughly
    /// `window_ms`, once at least half a window of history exists.
    fn push_and_rate(&mut self, now: u64, v: f32, window_ms: u32) -> Option<f32> {
        let window = u64::from(window_ms);
        let len = usize::from(self.len);
        // Time going backwards (a replayed or reordered frame): start over
        // rather than compute a nonsense rate.
        if len > 0 && now < self.get(len - 1).at_ms {
            *self = Self::default();
        }
        // Drop the oldest while the next one is already a whole window old.
        while self.len >= 2 && now.saturating_sub(self.get(1).at_ms) >= window {
            self.head = ((usize::from(self.head) + 1) % RATE_SAMPLES) as u8;
            self.len -= 1;
        }
        let len = usize::from(self.len);
        let newest = (len > 0).then(|| self.get(len - 1));
        if newest.is_none_or(|s| now.saturating_sub(s.at_ms) >= window / 5) {
            if len == RATE_SAMPLES {
                self.head = ((usize::from(self.head) + 1) % RATE_SAMPLES) as u8;
                self.len -= 1;
            }
            let tail = (usize::from(self.head) + usize::from(self.len)) % RATE_SAMPLES;
            self.samples[tail] = Sample {
                at_ms: now,
                value: v,
            };
            self.len += 1;
        }
        let oldest = self.get(0);
        let span = now.saturating_sub(oldest.at_ms);
        if span == 0 || span < window / 2 {
            return None;
        }
        let rate = (v - oldest.value) * 60_000.0 / span as f32;
        rate.is_finite().then_some(rate)
    }
}

/// The alarm state of one device under one [`RuleSet`].
///
/// Create it when the device is registered; its clock for the offline rule
/// starts then.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    rules: [RuleState; MAX_RULES],
    rates: [RateHistory; MAX_RATE_RULES],
    last_seen_ms: u64,
}

impl DeviceState {
    /// A quiet device, last seen at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            rules: [RuleState::default(); MAX_RULES],
            rates: [RateHistory::default(); MAX_RATE_RULES],
            last_seen_ms: now_ms,
        }
    }

    /// The active level of rule number `index` of its rule set.
    pub fn level(&self, index: usize) -> Option<Level> {
        self.rules.get(index).and_then(|s| decode(s.level))
    }

    /// Whether rule number `index` is quiet with no change pending: the
    /// state a frame that does not meet the rule leaves it in, whatever
    /// the time. (A gateway uses it to know that a rule with a debounce in
    /// time did not look at the clock for a frame.)
    pub fn is_settled(&self, index: usize) -> bool {
        self.rules
            .get(index)
            .is_none_or(|s| s.level == 0 && s.count == 0)
    }

    /// The highest active level over all rules.
    pub fn max_level(&self) -> Option<Level> {
        self.rules.iter().filter_map(|s| decode(s.level)).max()
    }

    /// When the last frame (or `online` status) was seen.
    pub fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms
    }
}

/// What the evaluation of one rule concluded.
struct Verdict {
    target: Option<Level>,
    value: f32,
    /// The bands of graded rules; the reported threshold depends on the
    /// move (see [`Verdict::threshold`]).
    levels: Option<Levels>,
    /// The threshold of ungraded rules.
    fixed_threshold: f32,
}

impl Verdict {
    fn threshold(&self, from: Option<Level>, to: Option<Level>) -> f32 {
        let Some(levels) = self.levels else {
            return self.fixed_threshold;
        };
        if to > from {
            // Moving up: the raise threshold of the new level.
            to.and_then(|l| levels.get(l))
                .map_or(self.fixed_threshold, |b| b.raise)
        } else {
            // Moving down: the clear threshold of the lowest level left.
            Level::ALL
                .into_iter()
                .filter(|l| Some(*l) > to && Some(*l) <= from)
                .find_map(|l| levels.get(l))
                .map_or(self.fixed_threshold, |b| b.clear)
        }
    }
}

/// An all-of combination: raised when every condition has crossed its raise
/// value, held while every condition stays past its clear value. A missing
/// reading decides nothing.
fn all_of(
    conditions: &[Condition],
    level: Level,
    readings: &Readings,
    current: Option<Level>,
) -> Option<Verdict> {
    let mut failing = None;
    for c in conditions {
        let v = readings.get(c.metric)?;
        let ok = if current.is_some() {
            c.direction.holds(v, c.clear)
        } else {
            c.direction.crossed(v, c.raise)
        };
        if !ok && failing.is_none() {
            failing = Some((v, if current.is_some() { c.clear } else { c.raise }));
        }
    }
    let first = conditions.first()?;
    let (value, threshold) = failing.unwrap_or((readings.get(first.metric)?, first.raise));
    Some(Verdict {
        target: failing.is_none().then_some(level),
        value,
        levels: None,
        fixed_threshold: threshold,
    })
}

/// The graded target level of `v`, with hysteresis around `current`.
fn graded(direction: Direction, levels: &Levels, v: f32, current: Option<Level>) -> Option<Level> {
    let mut target = None;
    for (level, band) in levels.iter() {
        let entered = direction.crossed(v, band.raise);
        let held = Some(level) <= current && direction.holds(v, band.clear);
        if entered || held {
            target = Some(level);
        }
    }
    target
}

impl RuleSet {
    /// An empty rule set, silence judged at all hours.
    pub const fn new() -> Self {
        Self {
            rules: heapless::Vec::new(),
            hours: Hours::ALWAYS,
        }
    }

    /// The working hours: offline rules judge silence only inside them.
    pub fn hours(&self) -> &Hours {
        &self.hours
    }

    /// Sets the working hours.
    pub fn set_hours(&mut self, hours: Hours) {
        self.hours = hours;
    }

    /// Validates and appends a rule.
    pub fn push(&mut self, rule: Rule) -> Result<(), RuleError> {
        rule.validate()?;
        if self.get(&rule.id).is_some() {
            return Err(RuleError::DuplicateId);
        }
        let rates = self
            .rules
            .iter()
            .filter(|r| matches!(r.kind, RuleKind::RateOfChange { .. }))
            .count();
        if matches!(rule.kind, RuleKind::RateOfChange { .. }) && rates >= MAX_RATE_RULES {
            return Err(RuleError::TooManyRateRules);
        }
        self.rules.push(rule).map_err(|_| RuleError::TooManyRules)
    }

    /// Replaces the rule with the same id, after validating it.
    pub fn replace(&mut self, rule: Rule) -> Result<(), RuleError> {
        rule.validate()?;
        match self.rules.iter_mut().find(|r| r.id == rule.id) {
            Some(slot) => {
                *slot = rule;
                Ok(())
            }
            None => self.push(rule),
        }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with `id`.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Position of the rule with `id`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    /// Evaluates one frame's readings and faults at `now_ms` and returns the
    /// transitions. Marks the device as seen (clearing an offline alarm); a
    /// frame announcing a planned power-off (`power_off_min`) marks it seen
    /// until the end of that time, so its silence is not judged before.
    pub fn evaluate(
        &self,
        state: &mut DeviceState,
        readings: &Readings,
        faults: &[Fault],
        now_ms: u64,
    ) -> Transitions {
        let mut out = Transitions::new();
        let silence_s = now_ms.saturating_sub(state.last_seen_ms) as f32 / 1000.0;
        state.last_seen_ms = now_ms;
        if let Some(min) = readings.get(Metric::PowerOffMin)
            && min > 0.0
        {
            // Whole minutes, capped; `min > 0.0` is false for NaN.
            let planned = (min.min(20_160.0) as u64).saturating_mul(60_000);
            state.last_seen_ms = now_ms.saturating_add(planned.min(MAX_PLANNED_OFF_MS));
        }
        let mut rate_slot = 0;
        for (i, rule) in self.rules.iter().enumerate() {
            let rate_index = matches!(rule.kind, RuleKind::RateOfChange { .. }).then(|| {
                rate_slot += 1;
                rate_slot - 1
            });
            if !rule.enabled {
                continue;
            }
            let current = decode(state.rules[i].level);
            let verdict = match &rule.kind {
                RuleKind::Threshold {
                    metric,
                    direction,
                    levels,
                } => readings.get(*metric).map(|v| Verdict {
                    target: graded(*direction, levels, v, current),
                    value: v,
                    levels: Some(*levels),
                    fixed_threshold: 0.0,
                }),
                RuleKind::RateOfChange {
                    metric,
                    direction,
                    window_ms,
                    levels,
                } => {
                    let history = rate_index.and_then(|r| state.rates.get_mut(r));
                    readings
                        .get(*metric)
                        .zip(history)
                        .and_then(|(v, h)| h.push_and_rate(now_ms, v, *window_ms))
                        .map(|rate| Verdict {
                            target: graded(*direction, levels, rate, current),
                            value: rate,
                            levels: Some(*levels),
                            fixed_threshold: 0.0,
                        })
                }
                RuleKind::AllOf { conditions, level } => {
                    all_of(conditions, *level, readings, current)
                }
                RuleKind::Offline { after_ms, level: _ } => {
                    // A frame is a sign of life: clear at once, no debounce.
                    if current.is_some() {
                        let threshold = *after_ms as f32 / 1000.0;
                        commit(
                            &mut out,
                            &mut state.rules[i],
                            rule,
                            None,
                            silence_s,
                            threshold,
                            now_ms,
                        );
                    }
                    None
                }
                RuleKind::Fault { codes, level } => {
                    let n = faults.iter().filter(|f| codes.contains(f.code)).count();
                    Some(Verdict {
                        target: (n > 0).then_some(*level),
                        value: n as f32,
                        levels: None,
                        fixed_threshold: if n > 0 { 1.0 } else { 0.0 },
                    })
                }
            };
            if let Some(v) = verdict {
                step(&mut out, &mut state.rules[i], rule, &v, now_ms);
            }
        }
        out
    }

    /// Checks the offline rules at `now_ms`; call it periodically (every
    /// second is plenty) for every device. Only silence inside the working
    /// hours counts: a device switched off at 19:00 with hours until 19:00
    /// is judged again from the next morning's start of work.
    pub fn tick(&self, state: &mut DeviceState, now_ms: u64) -> Transitions {
        let mut out = Transitions::new();
        let silence_ms = now_ms.saturating_sub(state.last_seen_ms);
        for (i, rule) in self.rules.iter().enumerate() {
            if let (true, RuleKind::Offline { after_ms, level }) = (rule.enabled, &rule.kind) {
                let s = &mut state.rules[i];
                let after = u64::from(*after_ms);
                // Working time never exceeds the silence: the cheap test
                // first, so a healthy device costs one comparison.
                if s.level == 0
                    && silence_ms >= after
                    && self.hours.working_ms(state.last_seen_ms, now_ms) >= after
                {
                    let threshold = *after_ms as f32 / 1000.0;
                    commit(
                        &mut out,
                        s,
                        rule,
                        Some(*level),
                        silence_ms as f32 / 1000.0,
                        threshold,
                        now_ms,
                    );
                }
            }
        }
        out
    }

    /// Applies a device status message (the MQTT `status` topic, whose
    /// `offline` is usually the broker publishing the last will): `offline`
    /// raises the offline rules at once, inside the working hours and unless
    /// the device announced a planned power-off that is still running
    /// (outside them it is only silence, judged when work starts); `online`
    /// clears them and restarts the silence clock.
    pub fn status(&self, state: &mut DeviceState, online: bool, now_ms: u64) -> Transitions {
        let mut out = Transitions::new();
        let silence_s = now_ms.saturating_sub(state.last_seen_ms) as f32 / 1000.0;
        let planned = state.last_seen_ms > now_ms;
        let judged = !planned && self.hours.contains(now_ms);
        if online {
            state.last_seen_ms = now_ms;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if let (true, RuleKind::Offline { after_ms, level }) = (rule.enabled, &rule.kind) {
                let s = &mut state.rules[i];
                let current = decode(s.level);
                let target = match (online, judged) {
                    (true, _) => None,
                    (false, true) => Some(*level),
                    // Neither raises nor clears.
                    (false, false) => current,
                };
                if current != target {
                    let threshold = *after_ms as f32 / 1000.0;
                    commit(&mut out, s, rule, target, silence_s, threshold, now_ms);
                }
            }
        }
        out
    }

    /// Carries `state`, built for `old`, over to this rule set (a hot
    /// reload): rules keep their state by id; an active alarm whose rule is
    /// gone or disabled is reported as cleared so it does not stay open
    /// forever downstream.
    pub fn migrate(
        &self,
        old: &RuleSet,
        state: &DeviceState,
        now_ms: u64,
    ) -> (DeviceState, Transitions) {
        let mut next = DeviceState::new(state.last_seen_ms);
        let mut out = Transitions::new();
        let mut old_rate = 0;
        let mut old_rates = [usize::MAX; MAX_RULES];
        for (i, r) in old.rules.iter().enumerate() {
            if matches!(r.kind, RuleKind::RateOfChange { .. }) {
                old_rates[i] = old_rate;
                old_rate += 1;
            }
        }
        let mut new_rate = 0;
        for (j, rule) in self.rules.iter().enumerate() {
            let is_rate = matches!(rule.kind, RuleKind::RateOfChange { .. });
            if let Some(i) = old.position(&rule.id)
                && rule.enabled
                && old.rules[i].kind.type_name() == rule.kind.type_name()
            {
                next.rules[j] = state.rules[i];
                if is_rate && let Some(h) = state.rates.get(old_rates[i]) {
                    next.rates[new_rate] = *h;
                }
            }
            if is_rate {
                new_rate += 1;
            }
        }
        for (i, rule) in old.rules.iter().enumerate() {
            let Some(level) = decode(state.rules[i].level) else {
                continue;
            };
            let kept = self
                .position(&rule.id)
                .is_some_and(|j| decode(next.rules[j].level).is_some());
            if !kept {
                let _ = out.push(Transition {
                    rule: rule.id.clone(),
                    state: AlarmState::Cleared,
                    level,
                    from: Some(level),
                    value: 0.0,
                    threshold: 0.0,
                    at_ms: now_ms,
                });
            }
        }
        (next, out)
    }
}

/// Advances one rule's debounce with a verdict and commits when it has held
/// long enough.
fn step(out: &mut Transitions, s: &mut RuleState, rule: &Rule, v: &Verdict, now: u64) {
    let current = decode(s.level);
    if v.target == current {
        s.count = 0;
        s.pending = 0;
        return;
    }
    let up = v.target > current;
    let pending = decode(s.pending);
    let same_way = s.count > 0 && (pending > current) == up;
    if same_way {
        s.count = s.count.saturating_add(1);
        // Conservative: enter only the level that held for the whole
        // debounce, leave only to the level that held for all of it.
        let kept = if up {
            pending.min(v.target)
        } else {
            pending.max(v.target)
        };
        s.pending = encode(kept);
    } else {
        s.count = 1;
        s.pending = encode(v.target);
        s.since_ms = now;
    }
    let held_ms = now.saturating_sub(s.since_ms);
    if s.count >= rule.debounce.samples && held_ms >= u64::from(rule.debounce.ms) {
        let to = decode(s.pending);
        let threshold = v.threshold(current, to);
        commit(out, s, rule, to, v.value, threshold, now);
        // The sample that committed a lower level may already point higher:
        // it starts the next debounce.
        if v.target != to && (v.target > to) == up {
            s.count = 1;
            s.pending = encode(v.target);
            s.since_ms = now;
        }
    }
}

fn commit(
    out: &mut Transitions,
    s: &mut RuleState,
    rule: &Rule,
    to: Option<Level>,
    value: f32,
    threshold: f32,
    now: u64,
) {
    let from = decode(s.level);
    s.level = encode(to);
    s.count = 0;
    s.pending = 0;
    let Some(state) = AlarmState::between(from, to) else {
        return;
    };
    let Some(level) = to.or(from) else {
        return;
    };
    // Cannot overflow: at most one transition per rule per call.
    let _ = out.push(Transition {
        rule: rule.id.clone(),
        state,
        level,
        from,
        value,
        threshold,
        at_ms: now,
    });
}

mod snapshot;
pub use snapshot::SNAPSHOT_LEN;

#[cfg(test)]
mod tests;
