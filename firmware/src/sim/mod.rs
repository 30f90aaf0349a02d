//! Register-level models of the parts, for running the real firmware —
//! drivers included — on a host (feature `sim`, uses std).
//!
//! Each model implements the embedded-hal trait the driver uses and behaves
//! as the datasheet describes at the bus level (the ADS1115's pointer and
//! config registers, the MAX31865's fault status, the HX711's clocked shift
//! register, SSI frames, the SCL3300's off-frame protocol with CRC), so a
//! simulator sets physical quantities and the firmware sees exactly the
//! bytes a board would. Models are cheap handles (`Clone` shares the part):
//! give one clone to the device, keep one to turn the knobs.
//!
//! [`rigs`] wires whole devices: `GasRig::new().device(config)` is a gas
//! detector with buzzer, relay and button, whose gas concentration the
//! simulator sets in %LEL.
//!
//! Small deterministic noise (a few LSB) is on by default, as on real
//! front ends; without it a constant input would trip the stuck-value
//! detection after ten minutes. `set_noise(0)` makes a model exact.

mod parts;
pub mod rigs;

use std::string::String;
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use anquan_protocol::{DecodeError, Telemetry, Topic, TopicKind};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

pub use parts::{
    Ads1115Sim, Hx711Clock, Hx711Data, Hx711Sim, LineFault, Max31865Sim, RtdFault, Scl3300Sim,
    SsiSim,
};

use crate::hal::AnalogInput;
use crate::mqtt::{Publish, PublishError, Transport};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take every later lock down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deterministic noise: xorshift32, uniform in `-amplitude..=amplitude`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Noise {
    state: u32,
    pub(crate) amplitude: i32,
}

impl Noise {
    pub(crate) fn new(seed: u32, amplitude: i32) -> Self {
        Self {
            state: seed | 1,
            amplitude,
        }
    }

    pub(crate) fn next(&mut self) -> i32 {
        if self.amplitude <= 0 {
            return 0;
        }
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        let span = 2 * self.amplitude as u32 + 1;
        (x % span) as i32 - self.amplitude
    }
}

/// A delay that returns at once (simulated time is the caller's `now_ms`),
/// counting what was asked for.
#[derive(Debug, Clone, Default)]
pub struct NoDelay {
    /// Total nanoseconds requested.
    pub total_ns: u64,
}

impl DelayNs for NoDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.total_ns += u64::from(ns);
    }
}

#[derive(Debug, Default)]
struct PinState {
    high: bool,
    fail: bool,
    rising_edges: u32,
    falling_edges: u32,
}

/// A GPIO: as an output it records its level and edges (buzzer, relay); as
/// an input the simulator sets it (the one-key alarm button).
#[derive(Debug, Clone, Default)]
pub struct PinSim(Arc<Mutex<PinState>>);

/// The error of a failing [`PinSim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinFault;

impl embedded_hal::digital::Error for PinFault {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl PinSim {
    /// A low pin.
    pub fn new() -> Self {
        Self::default()
    }

    /// The level.
    pub fn is_set(&self) -> bool {
        lock(&self.0).high
    }

    /// Drives the level (a button press is `set(true)`).
    pub fn set(&self, high: bool) {
        let mut s = lock(&self.0);
        if high && !s.high {
            s.rising_edges += 1;
        }
        if !high && s.high {
            s.falling_edges += 1;
        }
        s.high = high;
    }

    /// Low-to-high transitions so far.
    pub fn rising_edges(&self) -> u32 {
        lock(&self.0).rising_edges
    }

    /// High-to-low transitions so far.
    pub fn falling_edges(&self) -> u32 {
        lock(&self.0).falling_edges
    }

    /// Makes every access fail (a broken GPIO expander).
    pub fn set_failing(&self, fail: bool) {
        lock(&self.0).fail = fail;
    }
}

impl ErrorType for PinSim {
    type Error = PinFault;
}

impl OutputPin for PinSim {
    fn set_low(&mut self) -> Result<(), PinFault> {
        if lock(&self.0).fail {
            return Err(PinFault);
        }
        self.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), PinFault> {
        if lock(&self.0).fail {
            return Err(PinFault);
        }
        self.set(true);
        Ok(())
    }
}

impl InputPin for PinSim {
    fn is_high(&mut self) -> Result<bool, PinFault> {
        let s = lock(&self.0);
        if s.fail { Err(PinFault) } else { Ok(s.high) }
    }
    fn is_low(&mut self) -> Result<bool, PinFault> {
        self.is_high().map(|h| !h)
    }
}

#[derive(Debug)]
struct AnalogState {
    uv: [Option<i32>; 8],
    noise: Noise,
}

/// An analog input: 8 channels set in microvolts (or as a 4–20 mA loop
/// current across a shunt); `None` makes a conversion fail.
#[derive(Debug, Clone)]
pub struct AnalogSim(Arc<Mutex<AnalogState>>);

/// The error of a failing [`AnalogSim`] channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversionFailed;

impl Default for AnalogSim {
    fn default() -> Self {
        Self::new()
    }
}

impl AnalogSim {
    /// All channels at 0 V, ±20 µV of noise.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(AnalogState {
            uv: [Some(0); 8],
            noise: Noise::new(0x1234_5678, 20),
        })))
    }

    /// Sets a channel's voltage; `None` = the conversion fails.
    pub fn set_uv(&self, channel: u8, uv: Option<i32>) {
        if let Some(slot) = lock(&self.0).uv.get_mut(usize::from(channel)) {
            *slot = uv;
        }
    }

    /// Sets a channel to the voltage of `ma` across `shunt_ohms`.
    pub fn set_loop_ma(&self, channel: u8, ma: f32, shunt_ohms: f32) {
        self.set_uv(channel, Some((ma * shunt_ohms * 1000.0) as i32));
    }

    /// Noise amplitude, µV (0 = exact).
    pub fn set_noise(&self, uv: i32) {
        lock(&self.0).noise.amplitude = uv;
    }
}

impl AnalogInput for AnalogSim {
    type Error = ConversionFailed;
    fn read_microvolts(&mut self, channel: u8) -> Result<i32, ConversionFailed> {
        let mut s = lock(&self.0);
        let v =
            s.uv.get(usize::from(channel))
                .copied()
                .flatten()
                .ok_or(ConversionFailed)?;
        Ok(v.saturating_add(s.noise.next()))
    }
}

/// One message the transport took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Retained.
    pub retain: bool,
}

impl Message {
    /// The frame, if this is a telemetry or event message.
    pub fn frame(&self) -> Option<Result<(TopicKind, Telemetry), DecodeError>> {
        match Topic::parse(&self.topic) {
            Ok(Topic::Device {
                kind: kind @ (TopicKind::Telemetry | TopicKind::Event),
                ..
            }) => Some(Telemetry::decode(&self.payload).map(|t| (kind, t))),
            _ => None,
        }
    }
}

/// A transport that records what it publishes: the link can be taken down
/// and up (a new session each time) and limited to a number of messages.
#[derive(Debug, Default)]
pub struct TransportSim {
    /// Messages published, in order.
    pub sent: Vec<Message>,
    session: Option<u32>,
    sessions: u32,
    /// Messages still accepted before `Busy`; `None` = unlimited.
    pub budget: Option<usize>,
}

impl TransportSim {
    /// Connected, unlimited.
    pub fn connected() -> Self {
        let mut t = Self::default();
        t.up();
        t
    }

    /// Disconnected.
    pub fn disconnected() -> Self {
        Self::default()
    }

    /// Connects (a new session).
    pub fn up(&mut self) {
        self.sessions += 1;
        self.session = Some(self.sessions);
    }

    /// Disconnects.
    pub fn down(&mut self) {
        self.session = None;
    }

    /// The frames sent, decoded, in order; panics in tests is the caller's
    /// choice: a payload that does not decode is returned as an error.
    pub fn frames(&self) -> Vec<Result<(TopicKind, Telemetry), DecodeError>> {
        self.sent.iter().filter_map(Message::frame).collect()
    }

    /// Status payloads sent (`online`), in order.
    pub fn statuses(&self) -> Vec<String> {
        self.sent
            .iter()
            .filter(|m| m.topic.ends_with("/status"))
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect()
    }
}

impl Transport for TransportSim {
    fn session(&mut self) -> Option<u32> {
        self.session
    }

    fn publish(&mut self, m: &Publish<'_>) -> Result<(), PublishError> {
        if self.session.is_none() {
            return Err(PublishError::NotConnected);
        }
        if let Some(b) = &mut self.budget {
            if *b == 0 {
                return Err(PublishError::Busy);
            }
            *b -= 1;
        }
        self.sent.push(Message {
            topic: m.topic.into(),
            payload: m.payload.to_vec(),
            retain: m.retain,
        });
        Ok(())
    }
}
