//! Device configuration: identity, timing, local alarm outputs and channel
//! processing. Calibration is per part, in each kind's config
//! ([`crate::kinds`]). Rules are the edge-rules `RuleSet` (the kind's
//! defaults unless the board passes its own).
//!
//! Every field has a default; [`DeviceConfig::validate`] names the key at
//! fault (`report_period_ms: must be between 1000 and 3600000 and at least
//! sample_period_ms`).

use core::fmt;

use anquan_protocol::{DeviceKind, Id, Level, Metric};
use serde::{Deserialize, Serialize};

use crate::channels::{self, MAX_CHANNELS};
use crate::filter::FilterConfig;

/// Processing of one channel, replacing its kind's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelOverride {
    /// The channel.
    pub metric: Metric,
    /// Its filter; the kind's default when absent.
    #[serde(default)]
    pub filter: Option<FilterConfig>,
    /// Identical samples before `stuck` (0 = never); the default when absent.
    #[serde(default)]
    pub stuck_samples: Option<u16>,
}

/// Configuration of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Site id (part of the MQTT topics).
    pub site: Id,
    /// Device id (topics and the `device` field of every frame).
    pub device: Id,
    /// Sampling period.
    #[serde(default = "defaults::sample_period_ms")]
    pub sample_period_ms: u32,
    /// Telemetry period (15 s: the tower-crane black-box cadence of seed 004).
    #[serde(default = "defaults::report_period_ms")]
    pub report_period_ms: u32,
    /// Self-test period; 0 = at start-up only.
    #[serde(default = "defaults::self_test_period_ms")]
    pub self_test_period_ms: u32,
    /// The buzzer sounds while any rule is at this level or above; `None` =
    /// never.
    #[serde(default = "defaults::buzzer_level")]
    pub buzzer_level: Option<Level>,
    /// The relay (gas shut-off valve, exhaust fan, crane hoist cut-out)
    /// closes while a measurement rule (threshold, rate, all-of; not the
    /// fault, offline or button rules) is at this level or above.
    #[serde(default = "defaults::relay_level")]
    pub relay_level: Option<Level>,
    /// `alarm_btn` reads 1 for this long after a press, so the press is in
    /// the readings of the frames that follow, not only in one sample.
    #[serde(default = "defaults::button_hold_ms")]
    pub button_hold_ms: u32,
    /// A new press within this long of the last one is contact bounce.
    #[serde(default = "defaults::button_lockout_ms")]
    pub button_lockout_ms: u32,
    /// A new fault is reported at once; a fault clearing at most once per
    /// this interval (alarm transitions and button presses are never held
    /// back), so a flapping contact cannot flood the link and the buffer.
    #[serde(default = "defaults::fault_event_interval_ms")]
    pub fault_event_interval_ms: u32,
    /// Frames published per `step` at most, so one call stays short after a
    /// long outage.
    #[serde(default = "defaults::max_publish_per_step")]
    pub max_publish_per_step: u8,
    /// Per-channel processing overrides.
    #[serde(default)]
    pub channels: heapless::Vec<ChannelOverride, MAX_CHANNELS>,
}

mod defaults {
    use anquan_protocol::Level;

    pub fn sample_period_ms() -> u32 {
        1_000
    }
    pub fn report_period_ms() -> u32 {
        anquan_edge_rules::defaults::REPORT_PERIOD_MS
    }
    pub fn self_test_period_ms() -> u32 {
        3_600_000
    }
    pub fn buzzer_level() -> Option<Level> {
        Some(Level::Yellow)
    }
    pub fn relay_level() -> Option<Level> {
        Some(Level::Red)
    }
    pub fn button_hold_ms() -> u32 {
        30_000
    }
    pub fn button_lockout_ms() -> u32 {
        1_000
    }
    pub fn fault_event_interval_ms() -> u32 {
        10_000
    }
    pub fn max_publish_per_step() -> u8 {
        32
    }
}

/// Limits of the timing fields (also the Modbus holding-register limits).
pub mod limits {
    /// Sampling period bounds, ms.
    pub const SAMPLE_PERIOD_MS: (u32, u32) = (100, 60_000);
    /// Report period bounds, ms.
    pub const REPORT_PERIOD_MS: (u32, u32) = (1_000, 3_600_000);
    /// Shortest periodic self-test, ms.
    pub const MIN_SELF_TEST_PERIOD_MS: u32 = 60_000;
    /// Longest button hold, lockout and fault-event interval, ms.
    pub const MAX_HOLD_MS: u32 = 3_600_000;
}

/// A configuration error: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, e.g. `report_period_ms` or `channels[1].filter.median`.
    pub key: heapless::String<48>,
    /// What is wrong.
    pub problem: &'static str,
}

impl ConfigError {
    /// An error on `key`.
    pub fn new(key: &str, problem: &'static str) -> Self {
        let mut k = heapless::String::new();
        for c in key.chars() {
            if k.push(c).is_err() {
                break;
            }
        }
        Self { key: k, problem }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl core::error::Error for ConfigError {}

impl DeviceConfig {
    /// The defaults for one device.
    pub fn new(site: Id, device: Id) -> Self {
        Self {
            site,
            device,
            sample_period_ms: defaults::sample_period_ms(),
            report_period_ms: defaults::report_period_ms(),
            self_test_period_ms: defaults::self_test_period_ms(),
            buzzer_level: defaults::buzzer_level(),
            relay_level: defaults::relay_level(),
            button_hold_ms: defaults::button_hold_ms(),
            button_lockout_ms: defaults::button_lockout_ms(),
            fault_event_interval_ms: defaults::fault_event_interval_ms(),
            max_publish_per_step: defaults::max_publish_per_step(),
            channels: heapless::Vec::new(),
        }
    }

    /// Checks every field for a device of `kind`; the error names the key.
    pub fn validate(&self, kind: DeviceKind) -> Result<(), ConfigError> {
        let (lo, hi) = limits::SAMPLE_PERIOD_MS;
        if !(lo..=hi).contains(&self.sample_period_ms) {
            return Err(ConfigError::new(
                "sample_period_ms",
                "must be between 100 and 60000",
            ));
        }
        let (lo, hi) = limits::REPORT_PERIOD_MS;
        if !(lo..=hi).contains(&self.report_period_ms)
            || self.report_period_ms < self.sample_period_ms
        {
            return Err(ConfigError::new(
                "report_period_ms",
                "must be between 1000 and 3600000 and at least sample_period_ms",
            ));
        }
        if self.self_test_period_ms != 0
            && self.self_test_period_ms < limits::MIN_SELF_TEST_PERIOD_MS
        {
            return Err(ConfigError::new(
                "self_test_period_ms",
                "must be 0 (start-up only) or at least 60000",
            ));
        }
        for (key, v) in [
            ("button_hold_ms", self.button_hold_ms),
            ("button_lockout_ms", self.button_lockout_ms),
            ("fault_event_interval_ms", self.fault_event_interval_ms),
        ] {
            if v > limits::MAX_HOLD_MS {
                return Err(ConfigError::new(key, "must be at most 3600000"));
            }
        }
        if self.max_publish_per_step == 0 {
            return Err(ConfigError::new(
                "max_publish_per_step",
                "must be at least 1",
            ));
        }
        for (i, ch) in self.channels.iter().enumerate() {
            let mut key = heapless::String::<48>::new();
            let _ = fmt::write(&mut key, format_args!("channels[{i}]"));
            if channels::index(kind, ch.metric).is_none() {
                let _ = key.push_str(".metric");
                return Err(ConfigError::new(&key, "is not a channel of this kind"));
            }
            if self.channels[..i].iter().any(|c| c.metric == ch.metric) {
                let _ = key.push_str(".metric");
                return Err(ConfigError::new(&key, "is overridden twice"));
            }
            if let Some(Err((field, problem))) = ch.filter.map(|f| f.validate()) {
                let _ = fmt::write(&mut key, format_args!(".filter.{field}"));
                return Err(ConfigError::new(&key, problem));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DeviceConfig {
        DeviceConfig::new(Id::new("s1").unwrap(), Id::new("gas-1").unwrap())
    }

    #[test]
    fn defaults_are_valid_for_every_kind() {
        for kind in DeviceKind::ALL {
            assert_eq!(cfg().validate(kind), Ok(()));
        }
        assert_eq!(cfg().report_period_ms, 15_000);
        assert_eq!(cfg().sample_period_ms, 1_000);
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = cfg();
        c.sample_period_ms = 50;
        assert_eq!(
            c.validate(DeviceKind::Gas).unwrap_err().key,
            "sample_period_ms"
        );
        let mut c = cfg();
        c.report_period_ms = 500;
        assert_eq!(
            c.validate(DeviceKind::Gas).unwrap_err().key,
            "report_period_ms"
        );
        let mut c = cfg();
        c.self_test_period_ms = 10;
        assert_eq!(
            c.validate(DeviceKind::Gas).unwrap_err().key,
            "self_test_period_ms"
        );
        let mut c = cfg();
        c.max_publish_per_step = 0;
        assert_eq!(
            c.validate(DeviceKind::Gas).unwrap_err().key,
            "max_publish_per_step"
        );
        let mut c = cfg();
        c.channels
            .push(ChannelOverride {
                metric: Metric::CoPpm,
                filter: Some(FilterConfig {
                    median: 2,
                    ema_alpha: 1.0,
                }),
                stuck_samples: None,
            })
            .unwrap();
        let e = c.validate(DeviceKind::Gas).unwrap_err();
        assert_eq!(e.key, "channels[0].filter.median");
        assert_eq!(
            std::format!("{e}"),
            "channels[0].filter.median: must be 1, 3 or 5"
        );
        let e = c.validate(DeviceKind::Crane).unwrap_err();
        assert_eq!(e.key, "channels[0].metric");
    }

    #[test]
    fn deserializes_with_defaults_and_rejects_unknown_keys() {
        let c: DeviceConfig =
            serde_json::from_str(r#"{"site":"s1","device":"gas-1","report_period_ms":30000}"#)
                .unwrap();
        assert_eq!(c.report_period_ms, 30_000);
        assert_eq!(c.buzzer_level, Some(Level::Yellow));
        assert!(
            serde_json::from_str::<DeviceConfig>(r#"{"site":"s1","device":"d","x":1}"#).is_err()
        );
        assert!(serde_json::from_str::<DeviceConfig>(r#"{"site":"s/1","device":"d"}"#).is_err());
    }
}
