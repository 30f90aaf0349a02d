//! Validation before anything else: the device registry (who may report,
//! from which site, as which kind), per-device sequence tracking
//! (duplicates, out-of-order frames, gaps, device restarts) and the device
//! clock check. Decoding itself is `anquan_protocol`'s.
//!
//! Everything here is pure (no I/O, no clock reads) so it is tested
//! exhaustively in place; the judge (`judge`) calls it.

use anquan_protocol::{DeviceKind, Id, Problem, TopicError};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What to do with a frame from a device the config does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownDevices {
    /// Register it on its first valid frame (site from the topic, kind from
    /// the frame), up to `max_devices`.
    #[default]
    Auto,
    /// Reject it (`reason="unknown_device"`).
    Reject,
}

/// A device the site declares up front (`[[validate.devices]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDecl {
    /// Device id.
    pub id: Id,
    /// The site it belongs to; frames from another site's topic are rejected.
    pub site: Id,
    /// Its kind; frames of another kind are rejected.
    pub kind: DeviceKind,
}

/// `[validate]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidateConfig {
    /// `auto` or `reject`.
    pub unknown_devices: UnknownDevices,
    /// Most devices the gateway tracks (declared + auto-registered); a new
    /// device beyond it is rejected (`reason="registry_full"`). Bounds
    /// memory (about 0.5 KiB per device).
    pub max_devices: usize,
    /// A device clock further than this from the gateway clock is flagged
    /// (`clock_skew_total`) and the gateway's receive time is used instead.
    pub max_clock_skew_s: u64,
    /// The declared devices.
    pub devices: Vec<DeviceDecl>,
}

impl Default for ValidateConfig {
    fn default() -> Self {
        Self {
            unknown_devices: UnknownDevices::Auto,
            max_devices: 200_000,
            max_clock_skew_s: 300,
            devices: Vec::new(),
        }
    }
}

impl ValidateConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_devices == 0 {
            return Err(ConfigError::new(
                "validate.max_devices",
                "must be at least 1",
            ));
        }
        if self.devices.len() > self.max_devices {
            return Err(ConfigError::new(
                "validate.devices",
                format!(
                    "{} devices declared but validate.max_devices is {}",
                    self.devices.len(),
                    self.max_devices
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            if !seen.insert(d.id.as_str()) {
                return Err(ConfigError::new(
                    format!("validate.devices[{i}].id"),
                    format!("device `{}` is declared twice", d.id),
                ));
            }
        }
        Ok(())
    }
}

/// Why a message was rejected. `as_str` is the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// The topic is not a device topic of the contract.
    BadTopic(TopicError),
    /// The payload does not decode (the protocol crate's problem).
    Decode(Problem),
    /// A `status` payload other than `online`/`offline`.
    BadStatus,
    /// The device id in the payload differs from the topic's (spoofing).
    DeviceMismatch,
    /// Not declared and `unknown_devices = "reject"`.
    UnknownDevice,
    /// Declared for another site.
    SiteMismatch,
    /// Declared (or first seen) as another kind.
    KindMismatch,
    /// `max_devices` reached.
    RegistryFull,
    /// A sequence number already processed.
    Duplicate,
    /// An older sequence number not seen before.
    OutOfOrder,
}

impl Reject {
    /// The metrics label (`reason="..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadTopic(_) => "bad_topic",
            Self::Decode(p) => p.as_str(),
            Self::BadStatus => "bad_status",
            Self::DeviceMismatch => "device_mismatch",
            Self::UnknownDevice => "unknown_device",
            Self::SiteMismatch => "site_mismatch",
            Self::KindMismatch => "kind_mismatch",
            Self::RegistryFull => "registry_full",
            Self::Duplicate => "duplicate",
            Self::OutOfOrder => "out_of_order",
        }
    }
}

/// How far back the duplicate window reaches.
pub const SEQ_WINDOW: u32 = 64;

/// A device's sequence state: the highest `seq` accepted and a bitmap of the
/// [`SEQ_WINDOW`] numbers below it that were seen (bit `i` = `last - 1 - i`).
/// Persisted with every batch, so a frame redelivered after a crash is
/// recognised as a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqWindow {
    /// Whether any frame was accepted yet.
    pub started: bool,
    /// The highest accepted `seq`.
    pub last: u32,
    /// Seen bits below `last`.
    pub seen: u64,
}

/// What a frame's `seq` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// The first frame of this device.
    First,
    /// `last + 1`.
    Next,
    /// Ahead by more than one: this many frames are missing.
    Gap(u32),
    /// The device restarted (`seq` 0 not redelivered, or far behind).
    Restart,
    /// Already processed.
    Duplicate,
    /// Older than `last`, not seen, inside the window: dropped.
    OutOfOrder,
}

impl SeqWindow {
    /// Judges `seq`; `redelivered` is the MQTT DUP flag (a broker
    /// retransmission: never a device restart, and a duplicate when it is
    /// older than the window).
    pub fn check(&self, seq: u32, redelivered: bool) -> SeqVerdict {
        if !self.started {
            return SeqVerdict::First;
        }
        if seq == self.last {
            return SeqVerdict::Duplicate;
        }
        if seq > self.last {
            return match seq - self.last {
                1 => SeqVerdict::Next,
                d => SeqVerdict::Gap(d - 1),
            };
        }
        let back = self.last - seq;
        if back > SEQ_WINDOW {
            // Far behind. A broker redelivery (DUP set) of a frame this old
            // is one we took before a crash whose ack never reached the
            // broker (its in-flight window can hold hundreds of frames per
            // device): a duplicate. Without DUP the device started over.
            return if redelivered {
                SeqVerdict::Duplicate
            } else {
                SeqVerdict::Restart
            };
        }
        if seq == 0 && !redelivered {
            return SeqVerdict::Restart;
        }
        if self.seen & (1u64 << (back - 1)) != 0 {
            SeqVerdict::Duplicate
        } else {
            SeqVerdict::OutOfOrder
        }
    }

    /// Records an accepted `seq` (after [`Self::check`] said First, Next,
    /// Gap or Restart).
    pub fn accept(&mut self, seq: u32, verdict: SeqVerdict) {
        match verdict {
            SeqVerdict::First | SeqVerdict::Restart => {
                *self = Self {
                    started: true,
                    last: seq,
                    seen: 0,
                };
            }
            SeqVerdict::Next | SeqVerdict::Gap(_) => {
                let d = seq.wrapping_sub(self.last);
                self.seen = if d > SEQ_WINDOW {
                    0
                } else {
                    // The old `last` becomes bit d-1.
                    let shifted = if d >= 64 { 0 } else { self.seen << d };
                    shifted | (1u64 << (d - 1))
                };
                self.last = seq;
            }
            SeqVerdict::Duplicate | SeqVerdict::OutOfOrder => {}
        }
    }
}

/// Which time stamp a frame's point gets, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceTime {
    /// The device clock, within the bound.
    Trusted(u64),
    /// The device has no clock (`ts_ms` 0): gateway time.
    NoClock(u64),
    /// The device clock is off by more than the bound: gateway time.
    Skewed(u64),
}

impl DeviceTime {
    /// Judges `ts_ms` against the gateway's `now_ms`.
    pub fn judge(ts_ms: u64, now_ms: u64, max_skew_ms: u64) -> Self {
        if ts_ms == 0 {
            Self::NoClock(now_ms)
        } else if ts_ms.abs_diff(now_ms) > max_skew_ms {
            Self::Skewed(now_ms)
        } else {
            Self::Trusted(ts_ms)
        }
    }

    /// The time stamp to store.
    pub fn ms(self) -> u64 {
        match self {
            Self::Trusted(t) | Self::NoClock(t) | Self::Skewed(t) => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(w: &mut SeqWindow, seq: u32) -> SeqVerdict {
        let v = w.check(seq, false);
        w.accept(seq, v);
        v
    }

    #[test]
    fn sequences() {
        let mut w = SeqWindow::default();
        assert_eq!(run(&mut w, 10), SeqVerdict::First);
        assert_eq!(run(&mut w, 11), SeqVerdict::Next);
        assert_eq!(run(&mut w, 11), SeqVerdict::Duplicate);
        assert_eq!(run(&mut w, 15), SeqVerdict::Gap(3));
        assert_eq!(run(&mut w, 13), SeqVerdict::OutOfOrder);
        assert_eq!(run(&mut w, 10), SeqVerdict::Duplicate);
        assert_eq!(run(&mut w, 11), SeqVerdict::Duplicate);
        assert_eq!(run(&mut w, 16), SeqVerdict::Next);
        // A reboot: seq 0, not a redelivery.
        assert_eq!(run(&mut w, 0), SeqVerdict::Restart);
        assert_eq!(run(&mut w, 1), SeqVerdict::Next);
        // The broker redelivering seq 0 after a gateway crash is a duplicate.
        assert_eq!(w.check(0, true), SeqVerdict::Duplicate);
        assert_eq!(w.check(0, false), SeqVerdict::Restart);
    }

    #[test]
    fn a_redelivery_far_behind_is_a_duplicate_not_a_restart() {
        let mut w = SeqWindow::default();
        for s in 1..=400 {
            run(&mut w, s);
        }
        // After a gateway crash the broker resends its whole in-flight
        // window with DUP set, hundreds of frames back.
        assert_eq!(w.check(10, true), SeqVerdict::Duplicate);
        assert_eq!(w.check(399, true), SeqVerdict::Duplicate);
        assert_eq!(w.check(10, false), SeqVerdict::Restart);
        assert_eq!(w.check(401, true), SeqVerdict::Next);
    }

    #[test]
    fn far_behind_is_a_restart_and_far_ahead_a_gap() {
        let mut w = SeqWindow::default();
        run(&mut w, 1000);
        assert_eq!(run(&mut w, 2000), SeqVerdict::Gap(999));
        assert_eq!(run(&mut w, 5), SeqVerdict::Restart);
        assert_eq!(w.last, 5);
    }

    #[test]
    fn window_edges() {
        let mut w = SeqWindow::default();
        run(&mut w, 100);
        assert_eq!(run(&mut w, 164), SeqVerdict::Gap(63));
        assert_eq!(w.check(100, false), SeqVerdict::Duplicate);
        assert_eq!(w.check(101, false), SeqVerdict::OutOfOrder);
        assert_eq!(run(&mut w, 165), SeqVerdict::Next);
        // 100 is now 65 behind: outside the window, judged a restart.
        assert_eq!(w.check(100, false), SeqVerdict::Restart);
        assert_eq!(w.check(101, false), SeqVerdict::OutOfOrder);
    }

    proptest! {
        /// Against a model (the set of accepted numbers since the last
        /// restart): inside the window, a number is a duplicate exactly when
        /// it was accepted, and every accepted number is unique.
        #[test]
        fn matches_a_set_model(seqs in proptest::collection::vec(1u32..300, 1..200)) {
            let mut w = SeqWindow::default();
            let mut model = std::collections::BTreeSet::new();
            for s in seqs {
                let v = w.check(s, false);
                match v {
                    SeqVerdict::Restart => model.clear(),
                    SeqVerdict::Duplicate => prop_assert!(model.contains(&s)),
                    SeqVerdict::OutOfOrder => prop_assert!(!model.contains(&s)),
                    _ => prop_assert!(!model.contains(&s)),
                }
                if !matches!(v, SeqVerdict::Duplicate | SeqVerdict::OutOfOrder) {
                    model.insert(s);
                }
                w.accept(s, v);
            }
        }

        /// Broker redeliveries are never taken for a device restart, and
        /// never accept a number already accepted.
        #[test]
        fn redeliveries_never_restart(seqs in proptest::collection::vec(1u32..300, 1..200)) {
            let mut w = SeqWindow::default();
            let mut model = std::collections::BTreeSet::new();
            for s in seqs {
                let v = w.check(s, true);
                prop_assert_ne!(v, SeqVerdict::Restart);
                if !matches!(v, SeqVerdict::Duplicate | SeqVerdict::OutOfOrder) {
                    prop_assert!(!model.contains(&s));
                    model.insert(s);
                }
                w.accept(s, v);
            }
        }
    }

    #[test]
    fn device_time() {
        assert_eq!(DeviceTime::judge(0, 5_000, 100), DeviceTime::NoClock(5_000));
        assert_eq!(
            DeviceTime::judge(4_950, 5_000, 100),
            DeviceTime::Trusted(4_950)
        );
        assert_eq!(
            DeviceTime::judge(1_000, 5_000, 100),
            DeviceTime::Skewed(5_000)
        );
        assert_eq!(DeviceTime::judge(9_000, 5_000, 100).ms(), 5_000);
    }

    #[test]
    fn config_checks() {
        let mut c = ValidateConfig::default();
        let d = DeviceDecl {
            id: Id::new("a").unwrap(),
            site: Id::new("s").unwrap(),
            kind: DeviceKind::Gas,
        };
        c.devices = vec![d.clone(), d];
        assert_eq!(c.validate().unwrap_err().key, "validate.devices[1].id");
    }
}
