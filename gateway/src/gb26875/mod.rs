//! The GB/T 26875.3-2011 receiver: buildings' fire-alarm transmission
//! devices (用户信息传输装置, wired to the fire alarm control panel) dial
//! the gateway as they would a monitoring centre, and their fire alarms,
//! faults, isolations and supervisory signals become `fire_panel`
//! readings, judged by the edge rules like any device's.
//!
//! * [`panel`]: the pure state of one device's building, moved by the
//!   information objects of its frames.
//! * [`listen`]: the TCP listener, one task per connection: frames in,
//!   readings to the pipeline, and the confirm (确认) only once the
//!   reading is committed, so a frame the gateway loses in a crash is one
//!   the device sends again.
//!
//! Each configured device (its 48-bit source address) is one `fire_panel`
//! device id on a site. Frames from addresses not configured are refused
//! and counted; the connection is closed.

pub mod listen;
pub mod panel;

use std::collections::HashSet;

use anquan_protocol::Id;
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, parse_addr};

/// `[gb26875]`: the listener transmission devices dial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gb26875Config {
    /// `ip:port` to accept connections on (the port the devices are set
    /// to dial as their monitoring centre).
    pub listen: String,
    /// Connections open at once; more are closed at once (a flood must not
    /// exhaust the gateway).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection that sent nothing (no report, no heartbeat) for this
    /// long is closed, ms; the device dials again. Devices send a
    /// heartbeat every 10 s to a few minutes.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// The transmission devices: their addresses and what they are called.
    #[serde(default)]
    pub devices: Vec<FireDeviceConfig>,
}

/// `[[gb26875.devices]]`: one transmission device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FireDeviceConfig {
    /// Its source address (源地址) as a number, 0–281474976710655 (48
    /// bits; as set on the device, usually printed on its label).
    pub address: u64,
    /// The device id its readings and alarms carry (kind `fire_panel`).
    pub id: Id,
    /// Its site.
    pub site: Id,
}

fn default_max_connections() -> usize {
    256
}
fn default_idle_timeout_ms() -> u64 {
    600_000
}

/// The largest address: 48 bits.
const MAX_ADDRESS: u64 = (1 << 48) - 1;

impl Gb26875Config {
    /// Checks the keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_addr("gb26875.listen", &self.listen)?;
        if !(1..=100_000).contains(&self.max_connections) {
            return Err(ConfigError::new(
                "gb26875.max_connections",
                "must be 1-100000",
            ));
        }
        if !(1_000..=86_400_000).contains(&self.idle_timeout_ms) {
            return Err(ConfigError::new(
                "gb26875.idle_timeout_ms",
                "must be 1000-86400000",
            ));
        }
        if self.devices.is_empty() {
            return Err(ConfigError::new(
                "gb26875.devices",
                "list at least one transmission device (address, id, site); the listener refuses every other",
            ));
        }
        let mut addresses = HashSet::new();
        let mut ids = HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            if d.address > MAX_ADDRESS {
                return Err(ConfigError::new(
                    format!("gb26875.devices[{i}].address"),
                    format!("{} does not fit the protocol's 48 bits", d.address),
                ));
            }
            if !addresses.insert(d.address) {
                return Err(ConfigError::new(
                    format!("gb26875.devices[{i}].address"),
                    format!("{} is listed twice", d.address),
                ));
            }
            if !ids.insert(&d.id) {
                return Err(ConfigError::new(
                    format!("gb26875.devices[{i}].id"),
                    format!("`{}` is listed twice", d.id),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Gb26875Config, ConfigError> {
        let c: Gb26875Config =
            toml::from_str(toml_text).map_err(|e| ConfigError::new("x", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn a_listener_with_devices() {
        let c = parse(
            r#"
            listen = "0.0.0.0:9026"
            [[devices]]
            address = 100001
            id = "fp-0001"
            site = "s1"
            "#,
        )
        .unwrap();
        assert_eq!(c.max_connections, 256);
        assert_eq!(c.idle_timeout_ms, 600_000);
        assert_eq!(c.devices[0].address, 100_001);
    }

    #[test]
    fn refuses_what_cannot_work() {
        let dev = |a: u64, id: &str| {
            format!("[[devices]]\naddress = {a}\nid = \"{id}\"\nsite = \"s1\"\n")
        };
        let cases = [
            (format!("listen = \"x\"\n{}", dev(1, "a")), "gb26875.listen"),
            ("listen = \"127.0.0.1:1\"\n".to_string(), "gb26875.devices"),
            (
                format!("listen = \"127.0.0.1:1\"\n{}", dev(1 << 48, "a")),
                "gb26875.devices[0].address",
            ),
            (
                format!("listen = \"127.0.0.1:1\"\n{}{}", dev(1, "a"), dev(1, "b")),
                "gb26875.devices[1].address",
            ),
            (
                format!("listen = \"127.0.0.1:1\"\n{}{}", dev(1, "a"), dev(2, "a")),
                "gb26875.devices[1].id",
            ),
            (
                format!(
                    "listen = \"127.0.0.1:1\"\nmax_connections = 0\n{}",
                    dev(1, "a")
                ),
                "gb26875.max_connections",
            ),
            (
                format!(
                    "listen = \"127.0.0.1:1\"\nidle_timeout_ms = 10\n{}",
                    dev(1, "a")
                ),
                "gb26875.idle_timeout_ms",
            ),
        ];
        for (text, key) in cases {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.key, key, "{text}");
        }
    }
}
