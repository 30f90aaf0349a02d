//! The device: sampling, local judgement, local alarm outputs, frames,
//! store-and-forward and the register views, driven by
//! [`Device::step`] with the time passed in.
//!
//! One `step(now_ms, transport)`:
//!
//! 1. At the first call: both outputs off, self-test, a boot frame.
//! 2. Polls the one-key alarm button; a press is sampled at once.
//! 3. When a sample is due (every `sample_period_ms`): reads every channel,
//!    runs stuck detection, the median/EMA filter and fixed-point
//!    quantisation, evaluates the edge-rules, drives the buzzer and the
//!    relay, and queues an event frame on an alarm transition, a fault
//!    change or a button press, and a telemetry frame when one is due.
//! 4. Publishes queued frames, oldest first, while the transport takes them.
//!
//! Nothing here reads a clock, allocates or panics on sensor data.

use anquan_edge_rules::{DeviceState, Rule, RuleKind, RuleSet, Transition, defaults};
use anquan_protocol::{
    DeviceKind, Fault, FaultCode, FaultSet, Faults, Level, MAX_PAYLOAD, MAX_TS_MS, MIN_TS_MS,
    Metric, Telemetry,
};
use embedded_hal::digital::{InputPin, OutputPin};

use crate::channels::{self, MAX_CHANNELS};
use crate::config::{ConfigError, DeviceConfig};
use crate::filter::{Filter, FilterConfig};
use crate::frame::Frame;
use crate::hal::{Clock, NoClock, NoPin};
use crate::kinds::push_fault;
use crate::modbus::{
    self, InputImage, MAX_HOLDING_REGISTERS, MAX_INPUT_REGISTERS, Problem, RegisterError, Settings,
    Status,
};
use crate::mqtt::{self, Publish, PublishError, Qos, Transport};
use crate::outbox::{FrameStore, Outbox};
use crate::scale;
use crate::sensors::{ChannelSample, Sample, Sensors};

/// Default size of the offline buffer, bytes: 227 gas frames, 256
/// water-pressure frames, 170 electrical frames, 157 crane frames, so at
/// least 39 minutes of 15 s telemetry. 4 KiB keeps every kind's whole
/// device (state, rules, buffer, front end) under the 8 KiB RAM budget with
/// ~700 B to spare on a 32-bit MCU (see the README's memory budget); a
/// board with more RAM names a bigger [`Outbox`], one with spare flash uses
/// the flash store instead.
pub const DEFAULT_OUTBOX_BYTES: usize = 4_096;

/// How soon a failed self-test is repeated.
pub const SELF_TEST_RETRY_MS: u32 = 60_000;

/// The hardware of a device: its sensor front end, the buzzer and relay
/// outputs, the one-key alarm button and an optional clock.
#[derive(Debug)]
pub struct Hal<S, B = NoPin, R = NoPin, K = NoPin, C = NoClock> {
    /// The kind's sensor front end.
    pub sensors: S,
    /// Buzzer (and strobe) output, high = sounding.
    pub buzzer: B,
    /// Relay output, high = closed (valve shut, fan on, hoist cut).
    pub relay: R,
    /// One-key alarm button, high = pressed (wrap an active-low button in
    /// [`crate::hal::ActiveLow`]).
    pub button: K,
    /// Real-time clock for `ts_ms`.
    pub clock: C,
}

impl<S> Hal<S> {
    /// Sensors only: no buzzer, relay, button or clock.
    pub const fn new(sensors: S) -> Self {
        Self {
            sensors,
            buzzer: NoPin,
            relay: NoPin,
            button: NoPin,
            clock: NoClock,
        }
    }
}

impl<S, B, R, K, C> Hal<S, B, R, K, C> {
    /// With a buzzer.
    pub fn with_buzzer<B2>(self, buzzer: B2) -> Hal<S, B2, R, K, C> {
        Hal {
            sensors: self.sensors,
            buzzer,
            relay: self.relay,
            button: self.button,
            clock: self.clock,
        }
    }

    /// With a relay.
    pub fn with_relay<R2>(self, relay: R2) -> Hal<S, B, R2, K, C> {
        Hal {
            sensors: self.sensors,
            buzzer: self.buzzer,
            relay,
            button: self.button,
            clock: self.clock,
        }
    }

    /// With a one-key alarm button.
    pub fn with_button<K2>(self, button: K2) -> Hal<S, B, R, K2, C> {
        Hal {
            sensors: self.sensors,
            buzzer: self.buzzer,
            relay: self.relay,
            button,
            clock: self.clock,
        }
    }

    /// With a real-time clock.
    pub fn with_clock<C2>(self, clock: C2) -> Hal<S, B, R, K, C2> {
        Hal {
            sensors: self.sensors,
            buzzer: self.buzzer,
            relay: self.relay,
            button: self.button,
            clock,
        }
    }
}

/// Counters since boot, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Samples taken.
    pub samples: u32,
    /// Frames queued (telemetry and events).
    pub frames: u32,
    /// Event frames queued.
    pub events: u32,
    /// Frames published.
    pub published: u32,
    /// Publish attempts the transport refused.
    pub publish_errors: u32,
    /// Frames the buffer dropped.
    pub dropped: u32,
    /// Buzzer, relay or button accesses that failed.
    pub pin_errors: u32,
    /// Self-tests run.
    pub self_tests: u32,
    /// Button presses accepted.
    pub button_presses: u32,
}

/// What one [`Device::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepOutcome {
    /// A sample was taken.
    pub sampled: bool,
    /// Alarm transitions of this sample.
    pub transitions: u8,
    /// Frames queued.
    pub queued: u8,
    /// Frames published.
    pub published: u8,
    /// Highest active alarm level after the step.
    pub level: Option<Level>,
    /// When the next sample or self-test is due: a board may sleep until
    /// then (or until the button interrupt, or the link comes back).
    pub next_wakeup_ms: u64,
}

/// Per-channel processing state.
#[derive(Debug, Clone, Copy, Default)]
struct ChannelState {
    filter: Filter,
    /// Bits of the previous raw sample (valid when `identical > 0`).
    last_bits: u32,
    /// Consecutive bit-identical raw samples; 0 = no previous sample.
    identical: u16,
}

impl ChannelState {
    fn reset(&mut self) {
        *self = Self::default();
    }

    /// Stuck check, filter, quantisation.
    fn accept(
        &mut self,
        metric: Metric,
        v: f32,
        filter: &FilterConfig,
        stuck_samples: u16,
    ) -> Result<i16, FaultCode> {
        if !v.is_finite() {
            self.reset();
            return Err(FaultCode::OutOfRange);
        }
        let bits = v.to_bits();
        if self.identical > 0 && self.last_bits == bits {
            self.identical = self.identical.saturating_add(1);
        } else {
            self.last_bits = bits;
            self.identical = 1;
        }
        if stuck_samples > 0 && self.identical >= stuck_samples {
            self.filter.reset();
            return Err(FaultCode::Stuck);
        }
        let y = self.filter.push(filter, v);
        scale::to_raw(metric, y).ok_or_else(|| {
            self.filter.reset();
            FaultCode::OutOfRange
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Button {
    was_pressed: bool,
    pressed: bool,
    last_press_ms: Option<u64>,
    event_pending: bool,
}

/// Everything the firmware owns besides the hardware: configuration, rules
/// and alarm state, channel state, the latest frame and the offline buffer.
/// Its size is the device's RAM budget (see the README).
#[derive(Debug)]
pub struct Core<O = Outbox<DEFAULT_OUTBOX_BYTES>> {
    config: DeviceConfig,
    kind: DeviceKind,
    rules: RuleSet,
    alarms: DeviceState,
    channels: [ChannelState; MAX_CHANNELS],
    self_test_faults: Faults,
    board_faults: FaultSet,
    latest: Frame,
    outbox: O,
    seq: u32,
    started: bool,
    now_ms: u64,
    next_sample_ms: u64,
    next_report_ms: u64,
    next_self_test_ms: Option<u64>,
    last_fault_event_ms: Option<u64>,
    pending_event: bool,
    button: Button,
    buzzer_on: Option<bool>,
    relay_on: Option<bool>,
    online_session: Option<u32>,
    stats: Stats,
}

/// A device: its hardware and its firmware state.
///
/// `O` is the offline buffer: by default a RAM [`Outbox`] of
/// [`DEFAULT_OUTBOX_BYTES`]; [`Device::with_outbox`] takes a RAM outbox of
/// another size, [`Device::with_store`] any [`FrameStore`] (a flash-backed
/// [`crate::store::FlashOutbox`] that survives a power cut).
#[derive(Debug)]
pub struct Device<S, B = NoPin, R = NoPin, K = NoPin, C = NoClock, O = Outbox<DEFAULT_OUTBOX_BYTES>>
{
    hal: Hal<S, B, R, K, C>,
    core: Core<O>,
}

/// The filter and stuck limit of `metric`: the config's override, else the
/// front end's default; the button channel is neither filtered nor stuck.
fn channel_settings<S: Sensors>(
    config: &DeviceConfig,
    sensors: &S,
    metric: Metric,
) -> (FilterConfig, u16) {
    if metric == Metric::AlarmBtn {
        return (FilterConfig::NONE, 0);
    }
    let d = sensors.channel_defaults(metric);
    let o = config.channels.iter().find(|o| o.metric == metric);
    (
        o.and_then(|o| o.filter).unwrap_or(d.filter),
        o.and_then(|o| o.stuck_samples).unwrap_or(d.stuck_samples),
    )
}

fn is_measurement(rule: &Rule) -> bool {
    match &rule.kind {
        RuleKind::Threshold { metric, .. } => *metric != Metric::AlarmBtn,
        RuleKind::RateOfChange { .. } | RuleKind::AllOf { .. } => true,
        RuleKind::Offline { .. } | RuleKind::Fault { .. } => false,
    }
}

fn set_pin<P: OutputPin>(pin: &mut P, state: &mut Option<bool>, on: bool, stats: &mut Stats) {
    if *state == Some(on) {
        return;
    }
    let r = if on { pin.set_high() } else { pin.set_low() };
    match r {
        Ok(()) => *state = Some(on),
        Err(_) => {
            // Unknown state: written again at the next sample.
            *state = None;
            stats.pin_errors = stats.pin_errors.saturating_add(1);
        }
    }
}

/// Copies the requested window of a register image.
fn read_window(regs: &[u16], address: u16, out: &mut [u16]) -> Result<(), RegisterError> {
    modbus::check_range(regs.len(), address, out.len())?;
    let a = usize::from(address);
    out.copy_from_slice(&regs[a..a + out.len()]);
    Ok(())
}

/// The next due time of a periodic task at `next`, after `now`, skipping
/// missed periods instead of bursting.
fn advance(next: u64, now: u64, period: u32) -> u64 {
    let period = u64::from(period.max(1));
    if now < next {
        return next;
    }
    next + period * ((now - next) / period + 1)
}

impl<S, B, R, K, C> Device<S, B, R, K, C>
where
    S: Sensors,
    B: OutputPin,
    R: OutputPin,
    K: InputPin,
    C: Clock,
{
    /// A device with its kind's default rules
    /// (`anquan_edge_rules::defaults::for_kind`) and the default buffer.
    pub fn new(config: DeviceConfig, hal: Hal<S, B, R, K, C>) -> Result<Self, ConfigError> {
        let rules = defaults::for_kind(hal.sensors.kind());
        Self::with_outbox(config, rules, hal)
    }

    /// A device with its own rule set (the gateway's site rules for this
    /// device, e.g. from `anquan_edge_rules::file::RuleFile` on a host).
    pub fn with_rules(
        config: DeviceConfig,
        rules: RuleSet,
        hal: Hal<S, B, R, K, C>,
    ) -> Result<Self, ConfigError> {
        Self::with_outbox(config, rules, hal)
    }
}

impl<S, B, R, K, C, const Q: usize> Device<S, B, R, K, C, Outbox<Q>>
where
    S: Sensors,
    B: OutputPin,
    R: OutputPin,
    K: InputPin,
    C: Clock,
{
    /// A device with a RAM buffer of `Q` bytes (name it in the type:
    /// `Device::<_, _, _, _, _, Outbox<8192>>::with_outbox(…)`).
    pub fn with_outbox(
        config: DeviceConfig,
        rules: RuleSet,
        hal: Hal<S, B, R, K, C>,
    ) -> Result<Self, ConfigError> {
        Device::with_store(config, rules, hal, Outbox::new())
    }
}

impl<S, B, R, K, C, O> Device<S, B, R, K, C, O>
where
    S: Sensors,
    B: OutputPin,
    R: OutputPin,
    K: InputPin,
    C: Clock,
    O: FrameStore,
{
    /// A device that keeps its frames in `store` (e.g. a
    /// [`crate::store::FlashOutbox`] on the board's NOR flash, which may
    /// already hold frames from before a power cut: they go out first).
    pub fn with_store(
        config: DeviceConfig,
        rules: RuleSet,
        hal: Hal<S, B, R, K, C>,
        store: O,
    ) -> Result<Self, ConfigError> {
        let kind = hal.sensors.kind();
        config.validate(kind)?;
        if let Err((key, problem)) = hal.sensors.validate() {
            let mut k = heapless::String::<48>::new();
            let _ = k.push_str("sensors.");
            let _ = k.push_str(key);
            return Err(ConfigError::new(&k, problem));
        }
        Ok(Self {
            hal,
            core: Core {
                config,
                kind,
                rules,
                alarms: DeviceState::new(0),
                channels: [ChannelState::default(); MAX_CHANNELS],
                self_test_faults: Faults::new(),
                board_faults: FaultSet::EMPTY,
                latest: Frame::new(),
                outbox: store,
                seq: 0,
                started: false,
                now_ms: 0,
                next_sample_ms: 0,
                next_report_ms: 0,
                next_self_test_ms: None,
                last_fault_event_ms: None,
                pending_event: false,
                button: Button::default(),
                buzzer_on: None,
                relay_on: None,
                online_session: None,
                stats: Stats::default(),
            },
        })
    }

    /// Runs the device up to `now_ms` (monotonic ms since boot, from the
    /// board's timer or the simulator's clock) and publishes through
    /// `transport`. Call it at least every sample period, and every
    /// 50–100 ms if the button is polled rather than on an interrupt.
    pub fn step<T: Transport>(&mut self, now_ms: u64, transport: &mut T) -> StepOutcome {
        self.step_observed(now_ms, transport, |_| {})
    }

    /// [`Self::step`], calling `on_transition` for every alarm transition
    /// (for a simulator's expected-alarm timelines, or a board's display).
    pub fn step_observed<T: Transport, F: FnMut(&Transition)>(
        &mut self,
        now_ms: u64,
        transport: &mut T,
        mut on_transition: F,
    ) -> StepOutcome {
        let mut out = StepOutcome::default();
        self.core.now_ms = now_ms;
        if !self.core.started {
            self.core.started = true;
            self.update_outputs();
            self.self_test(now_ms);
            self.core.next_sample_ms = now_ms;
            // The boot frame: the gateway sees the restart (seq 0) and the
            // self-test result at once.
            self.core.next_report_ms = now_ms;
        } else if self.core.next_self_test_ms.is_some_and(|t| now_ms >= t) {
            self.self_test(now_ms);
        }
        self.poll_button(now_ms);
        let due = now_ms >= self.core.next_sample_ms;
        if due || self.core.button.event_pending || self.core.pending_event {
            self.sample(now_ms, &mut out, &mut on_transition);
            if due {
                self.core.next_sample_ms = advance(
                    self.core.next_sample_ms,
                    now_ms,
                    self.core.config.sample_period_ms,
                );
            }
        }
        self.flush(transport, &mut out);
        out.level = self.core.alarms.max_level();
        out.next_wakeup_ms = self
            .core
            .next_self_test_ms
            .map_or(self.core.next_sample_ms, |t| {
                t.min(self.core.next_sample_ms)
            });
        out
    }

    fn self_test(&mut self, now_ms: u64) {
        let mut faults = Faults::new();
        self.hal.sensors.self_test(&mut faults);
        let failed = !faults.is_empty();
        self.core.self_test_faults = faults;
        self.core.stats.self_tests = self.core.stats.self_tests.saturating_add(1);
        let period = self.core.config.self_test_period_ms;
        // A failed self-test blanks channels: retry it every minute (a
        // glitch at power-on must not blind a channel for an hour).
        self.core.next_self_test_ms = if failed {
            Some(now_ms + u64::from(SELF_TEST_RETRY_MS))
        } else {
            (period > 0).then(|| now_ms + u64::from(period))
        };
    }

    fn poll_button(&mut self, now_ms: u64) {
        let b = &mut self.core.button;
        let pressed = match self.hal.button.is_high() {
            Ok(p) => p,
            Err(_) => {
                self.core.stats.pin_errors = self.core.stats.pin_errors.saturating_add(1);
                false
            }
        };
        if pressed && !b.was_pressed {
            let lockout = u64::from(self.core.config.button_lockout_ms);
            if b.last_press_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= lockout)
            {
                b.last_press_ms = Some(now_ms);
                b.event_pending = true;
                self.core.stats.button_presses = self.core.stats.button_presses.saturating_add(1);
            }
        }
        b.was_pressed = pressed;
        b.pressed = pressed;
    }

    fn button_held(&self, now_ms: u64) -> bool {
        let b = &self.core.button;
        b.pressed
            || b.last_press_ms.is_some_and(|t| {
                now_ms.saturating_sub(t) < u64::from(self.core.config.button_hold_ms)
            })
    }

    fn sample<F: FnMut(&Transition)>(&mut self, now_ms: u64, out: &mut StepOutcome, on_t: &mut F) {
        let kind = self.core.kind;
        let mut sample = Sample::new(kind);
        self.hal.sensors.sample(&mut sample);
        let held = self.button_held(now_ms);
        let mut frame = Frame::new();
        let mut faults = Faults::new();
        for (i, metric) in channels::of(kind).iter().enumerate() {
            let state = &mut self.core.channels[i];
            let blocked = self
                .core
                .self_test_faults
                .iter()
                .find(|f| f.metric == Some(*metric));
            if let Some(f) = blocked {
                state.reset();
                push_fault(&mut faults, *f);
                continue;
            }
            let s = if *metric == Metric::AlarmBtn {
                ChannelSample::Value(if held { 1.0 } else { 0.0 })
            } else {
                sample.at(i)
            };
            match s {
                ChannelSample::Absent => state.reset(),
                ChannelSample::Fault(code) => {
                    state.reset();
                    push_fault(&mut faults, Fault::on(code, *metric));
                }
                ChannelSample::Value(v) => {
                    let (filter, stuck) =
                        channel_settings(&self.core.config, &self.hal.sensors, *metric);
                    match state.accept(*metric, v, &filter, stuck) {
                        Ok(raw) => frame.values[i] = raw,
                        Err(code) => push_fault(&mut faults, Fault::on(code, *metric)),
                    }
                }
            }
        }
        for f in self
            .core
            .self_test_faults
            .iter()
            .filter(|f| f.metric.is_none())
        {
            push_fault(&mut faults, *f);
        }
        for code in self.core.board_faults.iter() {
            push_fault(&mut faults, Fault::device(code));
        }
        frame.faults = faults;
        frame.ts_ms = self
            .hal
            .clock
            .unix_ms(now_ms)
            .filter(|t| (MIN_TS_MS..=MAX_TS_MS).contains(t))
            .unwrap_or(0);

        // The device judges exactly the values it reports.
        let readings = frame.readings(kind);
        let transitions =
            self.core
                .rules
                .evaluate(&mut self.core.alarms, &readings, &frame.faults, now_ms);
        for t in &transitions {
            on_t(t);
        }
        self.update_outputs();

        // The latest frame is the last one reported. A fault it did not
        // carry is reported at once; other changes (a fault clearing) at
        // most once per interval, so a flapping contact cannot flood.
        let reported = &self.core.latest.faults;
        let new_fault = frame.faults.iter().any(|f| !reported.contains(f));
        let fault_change = new_fault
            || (frame.faults != *reported
                && self.core.last_fault_event_ms.is_none_or(|t| {
                    now_ms.saturating_sub(t) >= u64::from(self.core.config.fault_event_interval_ms)
                }));
        let button = core::mem::take(&mut self.core.button.event_pending);
        let pending = core::mem::take(&mut self.core.pending_event);
        if !transitions.is_empty() || fault_change || button || pending {
            if fault_change {
                self.core.last_fault_event_ms = Some(now_ms);
            }
            frame.event = true;
            self.enqueue(&mut frame, out);
        }
        if now_ms >= self.core.next_report_ms {
            frame.event = false;
            self.enqueue(&mut frame, out);
            self.core.next_report_ms = advance(
                self.core.next_report_ms,
                now_ms,
                self.core.config.report_period_ms,
            );
        }
        out.sampled = true;
        out.transitions = transitions.len() as u8;
        self.core.stats.samples = self.core.stats.samples.saturating_add(1);
    }

    fn enqueue(&mut self, frame: &mut Frame, out: &mut StepOutcome) {
        frame.seq = self.core.seq;
        self.core.seq = self.core.seq.wrapping_add(1);
        self.core.outbox.push(frame);
        self.core.latest = frame.clone();
        let s = &mut self.core.stats;
        s.frames = s.frames.saturating_add(1);
        if frame.event {
            s.events = s.events.saturating_add(1);
        }
        s.dropped = self.core.outbox.dropped_total();
        out.queued = out.queued.saturating_add(1);
    }

    fn update_outputs(&mut self) {
        let c = &mut self.core;
        let all = c.alarms.max_level();
        let measured = c
            .rules
            .rules()
            .iter()
            .enumerate()
            .filter(|(_, r)| is_measurement(r))
            .filter_map(|(i, _)| c.alarms.level(i))
            .max();
        let buzzer = c.config.buzzer_level.is_some_and(|l| all >= Some(l));
        let relay = c.config.relay_level.is_some_and(|l| measured >= Some(l));
        set_pin(&mut self.hal.buzzer, &mut c.buzzer_on, buzzer, &mut c.stats);
        set_pin(&mut self.hal.relay, &mut c.relay_on, relay, &mut c.stats);
    }

    fn flush<T: Transport>(&mut self, transport: &mut T, out: &mut StepOutcome) {
        let Some(session) = transport.session() else {
            self.core.online_session = None;
            return;
        };
        let c = &mut self.core;
        if c.online_session != Some(session) {
            let status = mqtt::online(&c.config.site, &c.config.device);
            match transport.publish(&status.publish()) {
                Ok(()) => c.online_session = Some(session),
                Err(PublishError::Pending) => return,
                Err(_) => {
                    c.stats.publish_errors = c.stats.publish_errors.saturating_add(1);
                    return;
                }
            }
        }
        let mut buf = [0u8; MAX_PAYLOAD];
        for _ in 0..c.config.max_publish_per_step {
            let Some(frame) = c.outbox.peek() else {
                break;
            };
            let telemetry =
                frame.to_telemetry(&c.config.device, c.kind, c.outbox.dropped_since_delivery());
            let Ok((topic, payload)) =
                mqtt::encode_frame(&telemetry, frame.event, &c.config.site, &mut buf)
            else {
                // Unreachable for frames this device builds (at most 8
                // readings and 8 faults, ~500 bytes); dropping it, counted,
                // is the only way not to wedge the queue behind it.
                c.outbox.discard_oldest();
                continue;
            };
            let message = Publish {
                topic: &topic,
                payload,
                qos: Qos::AtLeastOnce,
                retain: false,
            };
            match transport.publish(&message) {
                Ok(()) => {
                    c.outbox.delivered();
                    c.stats.published = c.stats.published.saturating_add(1);
                    out.published = out.published.saturating_add(1);
                }
                Err(PublishError::Pending) => break,
                Err(e) => {
                    c.stats.publish_errors = c.stats.publish_errors.saturating_add(1);
                    if e == PublishError::NotConnected {
                        c.online_session = None;
                    }
                    break;
                }
            }
        }
        c.stats.dropped = c.outbox.dropped_total();
    }

    /// Raises or clears a device-wide fault the board detects itself:
    /// `power` (mains lost, battery low), `tamper` (enclosure opened). It is
    /// in every frame from the next sample on, and its change sends an
    /// event frame.
    pub fn set_board_fault(&mut self, code: FaultCode, active: bool) {
        let f = &mut self.core.board_faults;
        *f = if active {
            f.with(code)
        } else {
            f.iter().filter(|c| *c != code).collect()
        };
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.core.config
    }

    /// The device kind.
    pub fn kind(&self) -> DeviceKind {
        self.core.kind
    }

    /// The rules the device judges with.
    pub fn rules(&self) -> &RuleSet {
        &self.core.rules
    }

    /// The highest active alarm level.
    pub fn alarm_level(&self) -> Option<Level> {
        self.core.alarms.max_level()
    }

    /// The active level of one rule.
    pub fn rule_level(&self, rule: &str) -> Option<Level> {
        self.core
            .rules
            .position(rule)
            .and_then(|i| self.core.alarms.level(i))
    }

    /// Whether the buzzer is sounding.
    pub fn buzzer_on(&self) -> bool {
        self.core.buzzer_on == Some(true)
    }

    /// Whether the relay is closed.
    pub fn relay_on(&self) -> bool {
        self.core.relay_on == Some(true)
    }

    /// The latest frame queued.
    pub fn latest(&self) -> &Frame {
        &self.core.latest
    }

    /// The latest frame as the wire sees it.
    pub fn latest_telemetry(&self) -> Telemetry {
        self.core
            .latest
            .to_telemetry(&self.core.config.device, self.core.kind, 0)
    }

    /// The offline buffer.
    pub fn outbox(&self) -> &O {
        &self.core.outbox
    }

    /// Counters since boot.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// The hardware.
    pub fn hal(&self) -> &Hal<S, B, R, K, C> {
        &self.hal
    }

    /// The hardware, mutably (a simulator adjusting its models).
    pub fn hal_mut(&mut self) -> &mut Hal<S, B, R, K, C> {
        &mut self.hal
    }

    /// The firmware state (for its size; see the README's memory budget).
    pub fn core(&self) -> &Core<O> {
        &self.core
    }

    /// The status word of the input registers, live.
    pub fn status(&self) -> Status {
        Status {
            level: self.core.alarms.max_level(),
            fault: !self.core.latest.faults.is_empty(),
            buzzer: self.buzzer_on(),
            relay: self.relay_on(),
            button: self.button_held(self.core.now_ms),
            clock: self.core.latest.ts_ms != 0,
        }
    }

    /// What the input registers show: the latest frame and the live status.
    pub fn input_image(&self) -> InputImage {
        InputImage {
            status: self.status(),
            seq: self.core.latest.seq,
            ts_ms: self.core.latest.ts_ms,
            readings: self.core.latest.readings(self.core.kind),
            faults: self.core.latest.faults.clone(),
        }
    }

    /// What the holding registers show.
    pub fn settings(&self) -> Settings {
        let c = &self.core.config;
        Settings::from_parts(
            modbus::map_for(self.core.kind),
            c.report_period_ms,
            c.sample_period_ms,
            c.buzzer_level,
            c.relay_level,
            &self.core.rules,
        )
    }

    /// Modbus function 04: `out.len()` input registers from `address`.
    pub fn read_input_registers(&self, address: u16, out: &mut [u16]) -> Result<(), RegisterError> {
        let map = modbus::map_for(self.core.kind);
        let mut regs = [0u16; MAX_INPUT_REGISTERS];
        let n = modbus::encode_input_registers(map, &self.input_image(), &mut regs)?;
        read_window(&regs[..n], address, out)
    }

    /// Modbus function 03: `out.len()` holding registers from `address`.
    pub fn read_holding_registers(
        &self,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), RegisterError> {
        let map = modbus::map_for(self.core.kind);
        let mut regs = [0u16; MAX_HOLDING_REGISTERS];
        let n = modbus::encode_holding_registers(map, &self.settings(), &mut regs)?;
        read_window(&regs[..n], address, out)
    }

    /// Modbus functions 06 and 16: writes `values` from `address`. The whole
    /// resulting image is validated first and applied only if all of it is
    /// valid; a rule that stops being active is cleared (and reported in an
    /// event frame at the next step).
    pub fn write_holding_registers(
        &mut self,
        now_ms: u64,
        address: u16,
        values: &[u16],
    ) -> Result<(), RegisterError> {
        let map = modbus::map_for(self.core.kind);
        let len = map.holding_len();
        modbus::check_range(len, address, values.len())?;
        let mut regs = [0u16; MAX_HOLDING_REGISTERS];
        modbus::encode_holding_registers(map, &self.settings(), &mut regs)?;
        let a = usize::from(address);
        regs[a..a + values.len()].copy_from_slice(values);
        let settings = modbus::decode_holding_registers(map, &regs[..len])?;
        let rules = settings.apply(map, &self.core.rules)?;
        let mut config = self.core.config.clone();
        config.report_period_ms = u32::from(settings.report_period_s) * 1000;
        config.sample_period_ms = u32::from(settings.sample_period_ms);
        config.buzzer_level = settings.buzzer;
        config.relay_level = settings.relay;
        config
            .validate(self.core.kind)
            .map_err(|_| RegisterError::new(address, Problem::OutOfRange))?;
        let c = &mut self.core;
        let (alarms, transitions) = rules.migrate(&c.rules, &c.alarms, now_ms);
        c.rules = rules;
        c.alarms = alarms;
        c.next_sample_ms = c
            .next_sample_ms
            .min(now_ms + u64::from(config.sample_period_ms));
        c.next_report_ms = c
            .next_report_ms
            .min(now_ms + u64::from(config.report_period_ms));
        c.config = config;
        if !transitions.is_empty() {
            c.pending_event = true;
        }
        if c.started {
            self.update_outputs();
        }
        Ok(())
    }
}

impl<S, B, R, K, C, O> modbus::rtu::RegisterMaps for Device<S, B, R, K, C, O>
where
    S: Sensors,
    B: OutputPin,
    R: OutputPin,
    K: InputPin,
    C: Clock,
    O: FrameStore,
{
    fn read_input_registers(&self, address: u16, out: &mut [u16]) -> Result<(), RegisterError> {
        Device::read_input_registers(self, address, out)
    }
    fn read_holding_registers(&self, address: u16, out: &mut [u16]) -> Result<(), RegisterError> {
        Device::read_holding_registers(self, address, out)
    }
    fn write_holding_registers(
        &mut self,
        now_ms: u64,
        address: u16,
        values: &[u16],
    ) -> Result<(), RegisterError> {
        Device::write_holding_registers(self, now_ms, address, values)
    }
}

impl<const Q: usize> Core<Outbox<Q>> {
    /// Size of the offline buffer, bytes.
    pub const fn outbox_bytes(&self) -> usize {
        Q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_skips_missed_periods() {
        assert_eq!(advance(1000, 999, 1000), 1000);
        assert_eq!(advance(1000, 1000, 1000), 2000);
        assert_eq!(advance(1000, 4500, 1000), 5000);
        assert_eq!(advance(0, 0, 0), 1);
    }

    #[test]
    fn stuck_detection_counts_identical_samples() {
        let mut s = ChannelState::default();
        let f = FilterConfig::NONE;
        for _ in 0..2 {
            assert_eq!(s.accept(Metric::LelPct, 1.0, &f, 3), Ok(100));
        }
        assert_eq!(s.accept(Metric::LelPct, 1.0, &f, 3), Err(FaultCode::Stuck));
        assert_eq!(s.accept(Metric::LelPct, 1.0, &f, 3), Err(FaultCode::Stuck));
        assert_eq!(s.accept(Metric::LelPct, 1.01, &f, 3), Ok(101));
        assert_eq!(
            s.accept(Metric::LelPct, f32::NAN, &f, 3),
            Err(FaultCode::OutOfRange)
        );
        assert_eq!(
            s.accept(Metric::LelPct, 101.0, &f, 3),
            Err(FaultCode::OutOfRange)
        );
        assert_eq!(s.accept(Metric::LelPct, 5.0, &f, 0), Ok(500));
        for _ in 0..1000 {
            assert_eq!(s.accept(Metric::LelPct, 5.0, &f, 0), Ok(500));
        }
    }
}
