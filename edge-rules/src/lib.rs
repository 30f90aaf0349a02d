//! Alarm rules for anquan-iot, shared by the device firmware (local alarm)
//! and the edge gateway.
//!
//! `no_std`, no allocator: every capacity is in the types
//! ([`MAX_RULES`] rules per device, [`MAX_CONDITIONS`] conditions per
//! combination rule). Deterministic: time is passed in as milliseconds and
//! never read, so a frame sequence replayed gives the same transitions.
//!
//! ```
//! use anquan_edge_rules::{defaults, DeviceState};
//! use anquan_protocol::{AlarmState, DeviceKind, Level, Metric, Readings};
//!
//! let rules = defaults::for_kind(DeviceKind::Gas);
//! let mut state = DeviceState::new(0);
//! let mut readings = Readings::new();
//! readings.set(Metric::LelPct, 55.0).unwrap();
//! let t = rules.evaluate(&mut state, &readings, &[], 15_000);
//! assert_eq!(t[0].rule, "gas.lel");
//! assert_eq!((t[0].state, t[0].level, t[0].threshold), (AlarmState::Raised, Level::Red, 50.0));
//! ```
//!
//! Rule kinds ([`RuleKind`]): graded thresholds above or below with
//! hysteresis, rate of change per minute, all-of combinations, offline
//! (silence or the MQTT last will) and sensor faults. Every rule has a
//! [`Debounce`] (consecutive samples and/or milliseconds). A rule set's
//! [`Hours`] say when a device's silence counts, and a device may announce
//! a planned power-off (`power_off_min`) so that it raises nothing.

#![no_std]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod defaults;
mod engine;
#[cfg(feature = "std")]
pub mod file;
pub mod hours;
mod rule;

pub use engine::{DeviceState, RuleSet, SNAPSHOT_LEN, Transition, Transitions};
pub use hours::Hours;
pub use rule::{Band, Condition, Debounce, Direction, Levels, Rule, RuleError, RuleKind};

/// Most rules per device.
pub const MAX_RULES: usize = 16;
/// Most rate-of-change rules per device (each keeps a small sample history).
pub const MAX_RATE_RULES: usize = 2;
/// Most conditions in one all-of rule.
pub const MAX_CONDITIONS: usize = 4;
