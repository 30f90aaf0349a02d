//! The anquan-iot wire contract, version 1.
//!
//! Devices, the gateway, the simulator and the monitor all speak through the
//! types in this crate, so that a change to the contract is a change in one
//! place. It is `no_std` and never allocates: a device links the same decoder
//! and encoder the gateway runs.
//!
//! * [`Telemetry`]: the JSON frame a device publishes on
//!   `sites/{site}/devices/{device}/telemetry` (and `…/event`).
//! * [`AlarmEvent`]: what the gateway forwards to the monitor.
//! * [`Topic`]: parsing and building the MQTT topics.
//! * [`Level`] and [`AlarmState`]: the four risk levels and alarm transitions.
//! * [`gb26875`]: the GB/T 26875.3-2011 frames of fire alarm transmission
//!   devices (用户信息传输装置), decoded and encoded without allocation.
//!
//! Decoding is strict: every problem comes back as a [`DecodeError`] that names
//! the field, so a device maker or an operator can act on it.

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "std"))]
extern crate std;

mod alarm;
mod error;
mod fault;
pub mod gb26875;
mod id;
mod json;
mod kind;
mod level;
mod metric;
mod telemetry;
mod topic;

pub use alarm::{AlarmEvent, EventId, MAX_EVENT_ID_LEN};
pub use error::{DecodeError, EncodeError, Field, Problem};
pub use fault::{Fault, FaultCode, FaultSet};
pub use id::{Id, IdError, MAX_ID_LEN, MAX_RULE_ID_LEN, RuleId};
pub use kind::DeviceKind;
pub use level::{AlarmState, Level};
pub use metric::Metric;
pub use telemetry::{Faults, MAX_FAULTS, MAX_READINGS, Readings, Telemetry};
pub use topic::{DeviceStatus, GATEWAY_SUBSCRIPTIONS, MAX_TOPIC_LEN, Topic, TopicError, TopicKind};

/// The largest payload any decoder accepts, in bytes. Frames are small (a
/// crane frame is about 250 bytes), so anything bigger is garbage or abuse.
pub const MAX_PAYLOAD: usize = 1024;

/// The wire contract version this crate speaks. Frames may carry `"v":1`;
/// a frame without `v` is version 1.
pub const CONTRACT_VERSION: u32 = 1;

/// Earliest device timestamp accepted, other than 0 (= "no clock"):
/// 2000-01-01T00:00:00Z. A device reporting uptime instead of Unix time is a
/// device bug worth rejecting loudly.
pub const MIN_TS_MS: u64 = 946_684_800_000;

/// Latest device timestamp accepted: 2200-01-01T00:00:00Z.
pub const MAX_TS_MS: u64 = 7_258_118_400_000;
