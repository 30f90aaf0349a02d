//! Lab mode: a gateway clock that a test run drives over MQTT.
//!
//! Off by default. With `[lab] clock = "driven"` the clock every rule reads
//! ([`crate::clock`]: a frame's receive time, the offline checks, an
//! alarm's time stamp) stands still until a *tick* on [`TICK_TOPIC`] moves
//! it; the simulator (`anquan-sim run --broker … --drive-clock`) sends one
//! per simulated second that matters, so a scenario's hours of offline
//! and working-hours rules run against the real binary in seconds and give
//! the same alarms at the same simulated times as in process. Anyone who
//! can publish on the broker can then move the gateway's time: never on a
//! site. The gateway says so at start-up (a `LAB MODE` warning).
//!
//! # Why a tick cannot race the frames around it
//!
//! MQTT orders messages per topic only; the frames of one simulated second
//! travel on many topics (one per device and channel) and the tick on its
//! own. So ordering rests on counting and on a handshake, not on the
//! broker:
//!
//! * **A tick waits for the frames published before it.** The driver
//!   counts the messages it published on the device topics the gateway
//!   subscribes to and puts the count in the tick (`frames`). Ingest counts
//!   the device-topic publishes it receives live (not retained re-sends on
//!   subscription, not DUP re-deliveries) and holds a tick until it has
//!   received at least that many ([`Sequencer`]). Ingest hands frames and
//!   ticks to the pipeline through one FIFO channel, so the pipeline judges
//!   every earlier frame on the old time, then moves the clock and runs the
//!   offline checks at the new time (what the real clock's periodic check
//!   would do), then judges what follows.
//! * **The frames after a tick wait for the tick.** Once the pipeline has
//!   applied a tick (moved the clock, run the offline checks), ingest
//!   publishes an acknowledgement on [`ACK_TOPIC`] ([`TickAck`]: the time,
//!   the count of frames received before the tick, the alarm events raised
//!   so far). The driver publishes the next second's frames only after
//!   that acknowledgement, so they reach ingest, and the channel, after the
//!   tick. (Once the tick is in the channel would be enough for the order;
//!   after it is applied the alarm count is final, so a driver knows after
//!   its last tick how many alarms to wait for instead of guessing a
//!   time.)
//!
//! The periodic offline check (`rules.offline_tick_ms`) keeps running on
//! real time; it reads the driven clock, which only a tick moves, so it
//! finds nothing the tick's own check did not.
//!
//! The driver checks that the acknowledged count equals its own: a larger
//! one means another publisher on the broker, whose frames would make the
//! run's outcome depend on timing; it fails the run rather than verify it.
//!
//! Ticks that do not decode, exceed [`MAX_TICK_BYTES`], lie outside
//! [`MIN_TS_MS`]`..=`[`MAX_TS_MS`] or go back in time (equal is fine: a
//! driver may repeat a tick until it is acknowledged) are refused: counted
//! in `anquan_gateway_lab_clock_ticks_total{result}`, logged (rate
//! limited), and answered with a [`TickAck`] naming the reason. The first
//! accepted tick may set any time (the gateway starts on the wall clock,
//! a scenario usually in the past); after it, time only moves forward, so
//! one gateway start serves one run.

use std::collections::VecDeque;

use anquan_protocol::{MAX_TS_MS, MIN_TS_MS};
use serde::{Deserialize, Serialize};

/// Where a driver publishes ticks (QoS 1, not retained).
pub const TICK_TOPIC: &str = "lab/clock/tick";
/// Where the gateway acknowledges them (QoS 1, not retained).
pub const ACK_TOPIC: &str = "lab/clock/ack";
/// The largest tick payload accepted, bytes.
pub const MAX_TICK_BYTES: usize = 256;
/// Ticks held back (waiting for their frames) at most; more are refused.
pub const MAX_HELD_TICKS: usize = 64;

/// Where the rules' clock comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// The machine's wall clock (production).
    #[default]
    System,
    /// Ticks on `lab/clock/tick` (lab runs only; see the `lab` module).
    Driven,
}

/// `[lab]`: test-bench switches, all off by default. Never on a site.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabConfig {
    /// `system`, or `driven`: the rules' clock stands still until a
    /// simulator moves it with ticks on `lab/clock/tick` (acknowledged on
    /// `lab/clock/ack`), so scenarios with offline and time-of-day rules
    /// run accelerated against the real binary. Anyone who can publish on
    /// the broker can then set the gateway's time: lab use only.
    pub clock: ClockSource,
}

impl LabConfig {
    /// Whether the clock is driven by ticks.
    pub fn driven(&self) -> bool {
        self.clock == ClockSource::Driven
    }
}

/// A tick: "the time is now `now_ms`, after the first `frames` device
/// messages I published".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tick {
    /// The new time, Unix ms.
    pub now_ms: u64,
    /// Device-topic messages the driver published before this tick
    /// (counted from its start; 0 or absent: wait for none).
    #[serde(default)]
    pub frames: u64,
}

/// Why a tick was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TickError {
    /// Larger than [`MAX_TICK_BYTES`].
    #[error("larger than {MAX_TICK_BYTES} bytes")]
    Oversized,
    /// Not `{"now_ms": <integer>, "frames": <integer>}`.
    #[error("not {{\"now_ms\": <integer>, \"frames\": <integer>}}")]
    Malformed,
    /// Outside the years 2000 to 2199.
    #[error("time outside 2000..2199")]
    OutOfRange,
    /// Earlier than a tick already accepted.
    #[error("time goes backwards")]
    Backwards,
    /// Too many ticks waiting for their frames.
    #[error("more than {MAX_HELD_TICKS} ticks waiting for their frames")]
    Overflow,
}

impl TickError {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::Malformed => "malformed",
            Self::OutOfRange => "out_of_range",
            Self::Backwards => "backwards",
            Self::Overflow => "overflow",
        }
    }
}

impl Tick {
    /// Decodes a payload (size and range checked; not the order).
    pub fn decode(payload: &[u8]) -> Result<Self, TickError> {
        if payload.len() > MAX_TICK_BYTES {
            return Err(TickError::Oversized);
        }
        let t: Tick = serde_json::from_slice(payload).map_err(|_| TickError::Malformed)?;
        if !(MIN_TS_MS..=MAX_TS_MS).contains(&t.now_ms) {
            return Err(TickError::OutOfRange);
        }
        Ok(t)
    }

    /// The payload.
    pub fn encode(&self) -> Vec<u8> {
        format!(r#"{{"now_ms":{},"frames":{}}}"#, self.now_ms, self.frames).into_bytes()
    }
}

/// The gateway's answer to a tick, on [`ACK_TOPIC`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickAck {
    /// The tick's time when applied; when refused, the gateway's driven
    /// time (the last accepted tick's, 0 before any).
    pub now_ms: u64,
    /// Device-topic messages the gateway had received live before the
    /// tick (when refused: so far).
    pub frames: u64,
    /// Alarm events the gateway raised since it started, up to and
    /// including those of this tick's offline checks (0 when refused).
    #[serde(default)]
    pub alarms: u64,
    /// Why the tick was refused (a [`TickError::as_str`]); absent when it
    /// was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

impl TickAck {
    /// The payload.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a payload.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        if payload.len() > MAX_TICK_BYTES {
            return None;
        }
        serde_json::from_slice(payload).ok()
    }
}

/// Puts ticks in order with the frames around them (see the module docs):
/// ingest reports every live device-topic message with [`Self::frame`] once
/// it has handed it on, and every tick with [`Self::tick`]; both return the
/// ticks that may now go to the pipeline, in order.
#[derive(Debug, Default)]
pub struct Sequencer {
    /// Live device-topic messages received.
    received: u64,
    /// The latest accepted tick's time.
    last_ms: Option<u64>,
    /// Accepted ticks waiting for their frames, in order.
    held: VecDeque<Tick>,
}

impl Sequencer {
    /// A sequencer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Live device-topic messages received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The latest accepted tick's time.
    pub fn last_ms(&self) -> Option<u64> {
        self.last_ms
    }

    /// Counts one live device-topic message (handed on already).
    pub fn frame(&mut self) -> Vec<Tick> {
        self.received += 1;
        self.release()
    }

    /// Takes a tick's payload: refused, or accepted (and returned with any
    /// others now due, or held until its frames are in).
    pub fn tick(&mut self, payload: &[u8]) -> Result<Vec<Tick>, TickError> {
        let t = Tick::decode(payload)?;
        if self.last_ms.is_some_and(|last| t.now_ms < last) {
            return Err(TickError::Backwards);
        }
        if self.held.len() >= MAX_HELD_TICKS {
            return Err(TickError::Overflow);
        }
        self.last_ms = Some(t.now_ms);
        self.held.push_back(t);
        Ok(self.release())
    }

    fn release(&mut self) -> Vec<Tick> {
        let mut due = Vec::new();
        while let Some(t) = self.held.front() {
            if t.frames > self.received {
                break;
            }
            due.extend(self.held.pop_front());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_732_300_000_000;

    fn tick(now_ms: u64, frames: u64) -> Vec<u8> {
        Tick { now_ms, frames }.encode()
    }

    #[test]
    fn ticks_round_trip_and_frames_may_be_left_out() {
        let t = Tick {
            now_ms: T0,
            frames: 7,
        };
        assert_eq!(Tick::decode(&t.encode()), Ok(t));
        assert_eq!(
            Tick::decode(br#"{"now_ms":1732300000000}"#),
            Ok(Tick {
                now_ms: T0,
                frames: 0
            })
        );
        let a = TickAck {
            now_ms: T0,
            frames: 3,
            alarms: 2,
            rejected: None,
        };
        assert_eq!(TickAck::decode(&a.encode()), Some(a.clone()));
        assert!(!String::from_utf8_lossy(&a.encode()).contains("rejected"));
    }

    #[test]
    fn bad_ticks_say_why() {
        let e = |p: &[u8]| Tick::decode(p).unwrap_err();
        assert_eq!(e(b"1732300000000"), TickError::Malformed);
        assert_eq!(e(br#"{"now_ms":"soon"}"#), TickError::Malformed);
        assert_eq!(e(br#"{"now_ms":-5}"#), TickError::Malformed);
        assert_eq!(e(br#"{"now_ms":1.5e12}"#), TickError::Malformed);
        assert_eq!(
            e(br#"{"now_ms":99999999999999999999999}"#),
            TickError::Malformed
        );
        assert_eq!(
            e(br#"{"now_ms":1732300000000,"speed":2}"#),
            TickError::Malformed
        );
        assert_eq!(e(b"\xff\xfe"), TickError::Malformed);
        assert_eq!(e(b""), TickError::Malformed);
        assert_eq!(e(br#"{"now_ms":5}"#), TickError::OutOfRange);
        assert_eq!(e(&tick(MAX_TS_MS + 1, 0)), TickError::OutOfRange);
        let mut big = br#"{"now_ms":1732300000000,"frames":1}"#.to_vec();
        big.resize(MAX_TICK_BYTES + 1, b' ');
        assert_eq!(e(&big), TickError::Oversized);
        // Padding within the limit is still JSON.
        big.truncate(MAX_TICK_BYTES);
        assert!(Tick::decode(&big).is_ok());
    }

    #[test]
    fn time_never_goes_back_but_may_stand_still() {
        let mut s = Sequencer::new();
        assert_eq!(s.tick(&tick(T0 + 10_000, 0)).unwrap().len(), 1);
        assert_eq!(s.tick(&tick(T0 + 10_000, 0)).unwrap().len(), 1);
        assert_eq!(s.tick(&tick(T0 + 9_999, 0)), Err(TickError::Backwards));
        assert_eq!(s.last_ms(), Some(T0 + 10_000));
        // A refused tick changes nothing: the next good one is taken.
        assert_eq!(s.tick(b"garbage"), Err(TickError::Malformed));
        assert_eq!(
            s.tick(&tick(T0 + 11_000, 0)).unwrap(),
            vec![Tick {
                now_ms: T0 + 11_000,
                frames: 0
            }]
        );
    }

    #[test]
    fn the_first_tick_may_set_any_time() {
        let mut s = Sequencer::new();
        assert!(s.tick(&tick(MIN_TS_MS, 0)).is_ok());
    }

    #[test]
    fn a_tick_waits_for_the_frames_published_before_it() {
        let mut s = Sequencer::new();
        // Two frames were published before the tick; one has arrived.
        assert!(s.frame().is_empty());
        assert!(s.tick(&tick(T0, 2)).unwrap().is_empty());
        // A later tick queues behind it, even if its own count is met.
        assert!(s.tick(&tick(T0 + 1_000, 2)).unwrap().is_empty());
        let due = s.frame();
        assert_eq!(
            due.iter().map(|t| t.now_ms).collect::<Vec<_>>(),
            vec![T0, T0 + 1_000],
            "released in order once the second frame is in"
        );
        assert_eq!(s.received(), 2);
        // Frames beyond the count (another publisher) do not hold a tick.
        s.frame();
        assert_eq!(s.tick(&tick(T0 + 2_000, 2)).unwrap().len(), 1);
    }

    #[test]
    fn held_ticks_are_bounded() {
        let mut s = Sequencer::new();
        for i in 0..MAX_HELD_TICKS as u64 {
            assert!(s.tick(&tick(T0 + i, 1)).unwrap().is_empty());
        }
        assert_eq!(s.tick(&tick(T0 + 100, 1)), Err(TickError::Overflow));
        assert_eq!(s.frame().len(), MAX_HELD_TICKS);
        // Room again.
        assert_eq!(s.tick(&tick(T0 + 100, 1)).unwrap().len(), 1);
    }
}
