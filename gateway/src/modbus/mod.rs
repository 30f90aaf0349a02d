//! Modbus polling: the gateway reads Modbus TCP, RTU (serial) and
//! RTU-over-TCP devices through register maps and hands their readings to
//! the judge as the same transport-neutral input as MQTT frames, so
//! validation, rules, sink and alarms apply unchanged.
//!
//! ```text
//! [[modbus.links]] ─ one task per link ─ devices polled one after another
//!     └─ [[modbus.links.devices]] map ─▶ plan (merged reads) ─▶ decode
//!          ─▶ Input { Telemetry {seq: gateway counter, ts_ms: gateway time}, Guarantee::Once }
//!          ─▶ pipeline ─▶ judge
//!     K failed polls in a row ─▶ Input { Status(offline) } through the same path
//! ```
//!
//! A poll's reading is delivered once (nothing redelivers it after a
//! crash), so its alarms wait for their commit instead of taking the fast
//! lane.
//!
//! * [`map`]: register specs, decoding, shipped maps, map checks;
//! * [`plan`]: merging a device's values into as few reads as allowed;
//! * [`poll`]: the link tasks;
//! * [`dtu`]: links whose DTU dials in (`transport = "dtu"`).

pub mod dtu;
pub mod map;
pub mod plan;
pub mod poll;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anquan_protocol::{DeviceKind, Id};
use serde::{Deserialize, Serialize};

use crate::backoff::BackoffConfig;
use crate::error::{ConfigError, parse_addr};
use map::{Map, MapConfig, RegisterSpec};

/// How a link reaches its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Modbus TCP (MBAP header) to `address`.
    Tcp,
    /// Modbus RTU on the serial port `path` at `baud`.
    Rtu,
    /// Modbus RTU frames (with CRC) over a TCP connection to `address`, as
    /// serial-to-Ethernet converters in transparent mode speak.
    RtuOverTcp,
    /// Modbus RTU frames over a connection a 4G DTU opens to
    /// `[modbus.dtu] listen` and registers with `dtu_id`.
    Dtu,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// None (8N1, with `stop_bits = 1`).
    #[default]
    None,
    /// Even.
    Even,
    /// Odd.
    Odd,
}

/// `[[modbus.links.devices]]`: one Modbus device (unit) on a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Device id, as on the wire contract.
    pub id: Id,
    /// Its site.
    pub site: Id,
    /// Its kind (decides the rules and the measurement).
    pub kind: DeviceKind,
    /// Modbus unit (slave) id: 1–247 (0 is broadcast; 255 is accepted for
    /// Modbus TCP devices that ignore it).
    pub unit: u8,
    /// `builtin:NAME` (`gas`, `electrical`, `water_pressure`, `crane`,
    /// `eastron_sdm120`) or the name of a `[modbus.maps.NAME]`. Without
    /// `map` and `registers`: `builtin:{kind}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<String>,
    /// An inline map (instead of `map`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registers: Vec<RegisterSpec>,
    /// Poll interval, ms (default: the link's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
}

/// `[[modbus.links]]`: one TCP connection or serial bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// A name for logs and metrics (`[A-Za-z0-9_-]`).
    pub name: Id,
    /// `tcp`, `rtu`, `rtu_over_tcp` or `dtu`.
    pub transport: Transport,
    /// The registration packet of the DTU for `dtu` (in `[modbus.dtu]
    /// registration` format, or `text:...` / `hex:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtu_id: Option<String>,
    /// `ip:port` for `tcp` and `rtu_over_tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Serial device for `rtu` (`/dev/ttyUSB0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Baud rate for `rtu`.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Parity for `rtu`.
    #[serde(default)]
    pub parity: Parity,
    /// Stop bits for `rtu` (1 or 2).
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Default poll interval of its devices, ms (15 000: the wire
    /// contract's report period).
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Timeout of one request, ms (tokio-modbus has none of its own).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries of a failed request within one poll (timeouts and transport
    /// errors; an exception answer is not retried).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Delay before each retry (doubling) and before reconnecting.
    #[serde(default = "default_backoff")]
    pub backoff: BackoffConfig,
    /// Failed polls in a row after which a device is reported offline.
    #[serde(default = "default_offline_after")]
    pub offline_after: u32,
    /// Unused addresses a merged read may span between two values (0: read
    /// only what the map names; a hole often answers "illegal address").
    #[serde(default)]
    pub max_gap: u16,
    /// Pause between two requests on this link, ms (RTU buses and some
    /// TCP gateways need a moment between transactions).
    #[serde(default)]
    pub turnaround_ms: u64,
    /// The devices, polled one after another, never overlapping.
    pub devices: Vec<DeviceConfig>,
}

fn default_baud() -> u32 {
    9600
}
fn default_stop_bits() -> u8 {
    1
}
fn default_poll_ms() -> u64 {
    15_000
}
fn default_timeout_ms() -> u64 {
    1_000
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> BackoffConfig {
    BackoffConfig {
        initial_ms: 100,
        max_ms: 5_000,
    }
}
fn default_offline_after() -> u32 {
    3
}

/// `[modbus]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModbusConfig {
    /// Named maps (`map = "NAME"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub maps: BTreeMap<String, MapConfig>,
    /// The links.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkConfig>,
    /// The listener `dtu` links' DTUs dial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtu: Option<dtu::DtuConfig>,
}

impl ModbusConfig {
    /// Checks every link, device and map, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, m) in &self.maps {
            map::check(&format!("modbus.maps.{name}.registers"), &m.registers)?;
        }
        if let Some(d) = &self.dtu {
            d.validate("modbus.dtu")?;
        }
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut dtu_ids = HashSet::new();
        for (li, l) in self.links.iter().enumerate() {
            let k = |f: &str| format!("modbus.links[{li}].{f}");
            if !names.insert(l.name.as_str()) {
                return Err(ConfigError::new(k("name"), "link names must be unique"));
            }
            if l.transport != Transport::Dtu && l.dtu_id.is_some() {
                return Err(ConfigError::new(
                    k("dtu_id"),
                    "only for transport = \"dtu\"",
                ));
            }
            match l.transport {
                Transport::Dtu => {
                    let Some(d) = &self.dtu else {
                        return Err(ConfigError::new(
                            "modbus.dtu",
                            format!(
                                "link `{}` has transport = \"dtu\": needs [modbus.dtu] listen",
                                l.name
                            ),
                        ));
                    };
                    let id = l.dtu_id.as_deref().ok_or_else(|| {
                        ConfigError::new(
                            k("dtu_id"),
                            "needed (the DTU's registration packet) for transport = \"dtu\"",
                        )
                    })?;
                    let bytes = dtu::parse_packet(id, d.registration)
                        .map_err(|e| ConfigError::new(k("dtu_id"), e.to_string()))?;
                    if !dtu_ids.insert(bytes) {
                        return Err(ConfigError::new(
                            k("dtu_id"),
                            format!("`{id}` is the registration of another dtu link"),
                        ));
                    }
                    if l.address.is_some() {
                        return Err(ConfigError::new(
                            k("address"),
                            "not for transport = \"dtu\" (the DTU dials [modbus.dtu] listen)",
                        ));
                    }
                    if l.path.is_some() {
                        return Err(ConfigError::new(k("path"), "only for transport = \"rtu\""));
                    }
                }
                Transport::Tcp | Transport::RtuOverTcp => {
                    let a = l.address.as_deref().ok_or_else(|| {
                        ConfigError::new(k("address"), "needed (ip:port) for this transport")
                    })?;
                    parse_addr(&k("address"), a)?;
                    if l.path.is_some() {
                        return Err(ConfigError::new(k("path"), "only for transport = \"rtu\""));
                    }
                }
                Transport::Rtu => {
                    if l.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
                        return Err(ConfigError::new(
                            k("path"),
                            "needed (serial device) for transport = \"rtu\"",
                        ));
                    }
                    if l.address.is_some() {
                        return Err(ConfigError::new(
                            k("address"),
                            "not for transport = \"rtu\" (use path)",
                        ));
                    }
                    if !(300..=4_000_000).contains(&l.baud) {
                        return Err(ConfigError::new(k("baud"), "must be 300-4000000"));
                    }
                    if !(1..=2).contains(&l.stop_bits) {
                        return Err(ConfigError::new(k("stop_bits"), "must be 1 or 2"));
                    }
                }
            }
            if !(10..=86_400_000).contains(&l.poll_interval_ms) {
                return Err(ConfigError::new(
                    k("poll_interval_ms"),
                    "must be 10-86400000",
                ));
            }
            if !(10..=60_000).contains(&l.timeout_ms) {
                return Err(ConfigError::new(k("timeout_ms"), "must be 10-60000"));
            }
            if l.retries > 10 {
                return Err(ConfigError::new(k("retries"), "must be 0-10"));
            }
            l.backoff.validate(&k("backoff"))?;
            if l.offline_after == 0 {
                return Err(ConfigError::new(k("offline_after"), "must be at least 1"));
            }
            if l.turnaround_ms > 10_000 {
                return Err(ConfigError::new(k("turnaround_ms"), "must be 0-10000"));
            }
            if l.devices.is_empty() {
                return Err(ConfigError::new(k("devices"), "a link needs a device"));
            }
            let mut units = HashSet::new();
            for (di, d) in l.devices.iter().enumerate() {
                let dk = |f: &str| format!("modbus.links[{li}].devices[{di}].{f}");
                if !ids.insert(d.id.as_str()) {
                    return Err(ConfigError::new(
                        dk("id"),
                        format!("device `{}` is listed twice", d.id),
                    ));
                }
                if d.unit == 0 || (d.unit > 247 && d.unit != 255) {
                    return Err(ConfigError::new(
                        dk("unit"),
                        "must be 1-247 (or 255 for Modbus TCP)",
                    ));
                }
                if d.unit == 255 && l.transport != Transport::Tcp {
                    return Err(ConfigError::new(dk("unit"), "255 is for Modbus TCP only"));
                }
                if !units.insert(d.unit) {
                    return Err(ConfigError::new(
                        dk("unit"),
                        format!("unit {} is used twice on this link", d.unit),
                    ));
                }
                if let Some(p) = d.poll_interval_ms
                    && !(10..=86_400_000).contains(&p)
                {
                    return Err(ConfigError::new(
                        dk("poll_interval_ms"),
                        "must be 10-86400000",
                    ));
                }
                self.resolve_map(li, di, d)?;
            }
        }
        Ok(())
    }

    /// The checked map of device `di` of link `li`.
    pub fn resolve_map(&self, li: usize, di: usize, d: &DeviceConfig) -> Result<Map, ConfigError> {
        let key = format!("modbus.links[{li}].devices[{di}]");
        match (&d.map, d.registers.is_empty()) {
            (Some(_), false) => Err(ConfigError::new(
                format!("{key}.registers"),
                "give either `map` or `registers`, not both",
            )),
            (None, false) => map::check(&format!("{key}.registers"), &d.registers),
            (m, true) => {
                let name = m
                    .clone()
                    .unwrap_or_else(|| format!("builtin:{}", d.kind.as_str()));
                let specs = match name.strip_prefix("builtin:") {
                    Some(b) => map::builtin(b).ok_or_else(|| {
                        ConfigError::new(
                            format!("{key}.map"),
                            format!(
                                "unknown builtin map `{b}` (one of: {})",
                                map::BUILTIN.join(", ")
                            ),
                        )
                    })?,
                    None => self
                        .maps
                        .get(&name)
                        .map(|m| m.registers.clone())
                        .ok_or_else(|| {
                            ConfigError::new(
                                format!("{key}.map"),
                                format!("no [modbus.maps.{name}] and not `builtin:...`"),
                            )
                        })?,
                };
                let mut m = map::check(&format!("{key}.map"), &specs)?;
                if let Some(kind) = name.strip_prefix("builtin:").and_then(map::firmware_kind) {
                    if kind != d.kind {
                        return Err(ConfigError::new(
                            format!("{key}.map"),
                            format!(
                                "`{name}` is our firmware's {kind} map; this device is a {}",
                                d.kind
                            ),
                        ));
                    }
                    m.firmware = Some(kind);
                }
                Ok(m)
            }
        }
    }

    /// Every Modbus device, as the registry declarations the pipeline needs.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceConfig> {
        self.links.iter().flat_map(|l| l.devices.iter())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const BASE: &str = "[gateway]\nid = \"gw-01\"\ndata_dir = \"/tmp/x\"\n";

    fn parse(extra: &str) -> Result<Config, crate::ConfigError> {
        Config::parse(&format!("{BASE}{extra}"))
    }

    #[test]
    fn a_mixed_config_parses() {
        let c = parse(
            r#"
[modbus.maps.pt]
registers = [{ reading = "pressure_mpa", address = 4, function = "holding", type = "i16", scale = 0.001 }]

[[modbus.links]]
name = "plant"
transport = "tcp"
address = "127.0.0.1:1502"
[[modbus.links.devices]]
id = "wp-01"
site = "s1"
kind = "water_pressure"
unit = 1
[[modbus.links.devices]]
id = "wp-02"
site = "s1"
kind = "water_pressure"
unit = 2
map = "pt"
[[modbus.links.devices]]
id = "em-01"
site = "s1"
kind = "electrical"
unit = 3
map = "builtin:eastron_sdm120"
[[modbus.links.devices]]
id = "gas-9"
site = "s1"
kind = "gas"
unit = 4
poll_interval_ms = 1000
[[modbus.links.devices.registers]]
reading = "lel_pct"
address = 0
type = "f32"
word_order = "little"
[[modbus.links.devices.registers]]
reading = "alarm_btn"
address = 7
function = "discrete"

[[modbus.links]]
name = "bus1"
transport = "rtu"
path = "/dev/ttyUSB0"
baud = 19200
parity = "even"
[[modbus.links.devices]]
id = "crane-1"
site = "s1"
kind = "crane"
unit = 1
"#,
        )
        .unwrap();
        assert_eq!(c.modbus.links.len(), 2);
        assert_eq!(c.modbus.links[0].poll_interval_ms, 15_000);
        assert_eq!(c.modbus.devices().count(), 5);
        // The effective config parses again.
        let again = Config::parse(&c.to_effective_toml()).unwrap();
        assert_eq!(again.modbus, c.modbus);
    }

    fn link(devices: &str) -> String {
        format!(
            "[[modbus.links]]\nname = \"l\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:502\"\n{devices}"
        )
    }

    const DEV: &str = "[[modbus.links.devices]]\nid = \"d1\"\nsite = \"s1\"\nkind = \"water_pressure\"\nunit = 1\n";

    #[test]
    fn errors_name_the_key() {
        let e = parse("[[modbus.links]]\nname = \"l\"\ntransport = \"tcp\"\ndevices = []\n")
            .unwrap_err();
        assert_eq!(e.key, "modbus.links[0].address", "{e}");
        let e = parse(&link(&format!("{DEV}map = \"builtin:nope\"\n"))).unwrap_err();
        assert_eq!(e.key, "modbus.links[0].devices[0].map", "{e}");
        let e = parse(&link(&format!("{DEV}map = \"builtin:gas\"\n"))).unwrap_err();
        assert_eq!(e.key, "modbus.links[0].devices[0].map", "{e}");
        let e = parse(&link(&format!("{DEV}map = \"mine\"\n"))).unwrap_err();
        assert_eq!(e.key, "modbus.links[0].devices[0].map", "{e}");
        let e = parse(&link(&format!(
            "{DEV}[[modbus.links.devices.registers]]\nreading = \"psi\"\naddress = 0\n"
        )))
        .unwrap_err();
        assert_eq!(
            e.key, "modbus.links[0].devices[0].registers[0].reading",
            "{e}"
        );
        let e = parse(&link(&format!(
            "{DEV}[[modbus.links.devices.registers]]\nreading = \"pressure_mpa\"\naddress = 0\ntype = \"u64\"\n"
        )))
        .unwrap_err();
        assert!(
            e.key.starts_with("modbus.links[0].devices[0].registers"),
            "{e}"
        );
        assert!(e.message.contains("u64"), "{e}");
        let e = parse(&link(&format!(
            "{DEV}[[modbus.links.devices.registers]]\nreading = \"pressure_mpa\"\naddress = 70000\n"
        )))
        .unwrap_err();
        assert_eq!(
            e.key, "modbus.links[0].devices[0].registers[0].address",
            "{e}"
        );
        let e = parse(&link(&format!(
            "{DEV}[[modbus.links.devices.registers]]\nreading = \"pressure_mpa\"\naddress = 0\ntype = \"f32\"\n[[modbus.links.devices.registers]]\nreading = \"level_m\"\naddress = 1\n"
        )))
        .unwrap_err();
        assert_eq!(
            e.key, "modbus.links[0].devices[0].registers[1].address",
            "{e}"
        );
        let e = parse(&link(&format!("{DEV}{}", DEV.replace("d1", "d2")))).unwrap_err();
        assert_eq!(e.key, "modbus.links[0].devices[1].unit", "{e}");
        let e = parse(&link(&DEV.replace("unit = 1", "unit = 0"))).unwrap_err();
        assert_eq!(e.key, "modbus.links[0].devices[0].unit", "{e}");
        let e = parse(
            "[modbus.maps.bad]\nregisters = [{ reading = \"level_m\", address = 0, function = \"coil\", type = \"u16\" }]\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "modbus.maps.bad.registers[0].type", "{e}");
        let e = parse("[[modbus.links]]\nname = \"b\"\ntransport = \"rtu\"\ndevices = []\n")
            .unwrap_err();
        assert_eq!(e.key, "modbus.links[0].path", "{e}");
        let e =
            parse(&link(DEV).replace("[[modbus.links]]\n", "[[modbus.links]]\ntimeout_ms = 0\n"))
                .unwrap_err();
        assert_eq!(e.key, "modbus.links[0].timeout_ms", "{e}");
    }

    const DTU: &str = "[modbus.dtu]\nlisten = \"0.0.0.0:9000\"\n";

    /// A `dtu` link named `name` with `dtu_id` (a TOML value) and one
    /// device `{name}-1`.
    fn dtu_link(name: &str, id: &str) -> String {
        format!(
            "[[modbus.links]]\nname = \"{name}\"\ntransport = \"dtu\"\ndtu_id = {id}\n\
             [[modbus.links.devices]]\nid = \"{name}-1\"\nsite = \"s1\"\nkind = \"gas\"\nunit = 1\n"
        )
    }

    #[test]
    fn dtu_links_parse_with_text_and_hex_ids() {
        let c = parse(&format!(
            "{DTU}heartbeat = \"hex:48 42\"\n{}{}",
            dtu_link("yard", "\"YARD-01\""),
            dtu_link("pump", "\"hex:0x0A 0x0B\"")
        ))
        .unwrap();
        let d = c.modbus.dtu.clone().unwrap();
        assert_eq!(d.heartbeat_bytes(), Some(b"HB".to_vec()));
        assert_eq!(
            (d.register_timeout_ms, d.idle_timeout_ms, d.max_pending),
            (5_000, 120_000, 64)
        );
        assert_eq!(c.modbus.links[1].dtu_id.as_deref(), Some("hex:0x0A 0x0B"));
        let again = Config::parse(&c.to_effective_toml()).unwrap();
        assert_eq!(again.modbus, c.modbus);
        // `registration = "hex"`: ids are hex unless `text:` says otherwise.
        parse(&format!(
            "{DTU}registration = \"hex\"\n{}{}",
            dtu_link("a", "\"01 02\""),
            dtu_link("b", "\"text:B\"")
        ))
        .unwrap();
    }

    /// The error of `extra`, which must not parse: its key and message.
    fn dtu_error(extra: &str) -> (String, String) {
        let e = parse(extra).unwrap_err();
        (e.key.clone(), e.message.clone())
    }

    #[test]
    fn dtu_config_errors_name_the_key_and_say_why() {
        // A dtu link without the listener its DTU would dial.
        let (k, m) = dtu_error(&dtu_link("yard", "\"YARD-01\""));
        assert_eq!(k, "modbus.dtu");
        assert!(
            m.contains("`yard`") && m.contains("[modbus.dtu] listen"),
            "{m}"
        );

        // Two links with one registration: which would the DTU reach?
        let (k, m) = dtu_error(&format!(
            "{DTU}{}{}",
            dtu_link("a", "\"DTU1\""),
            dtu_link("b", "\"DTU1\"")
        ));
        assert_eq!(k, "modbus.links[1].dtu_id");
        assert!(m.contains("another dtu link"), "{m}");
        // The same bytes written differently are the same registration.
        let (k, m) = dtu_error(&format!(
            "{DTU}{}{}",
            dtu_link("a", "\"DTU1\""),
            dtu_link("b", "\"hex:44 54 55 31\"")
        ));
        assert_eq!(k, "modbus.links[1].dtu_id");
        assert!(m.contains("another dtu link"), "{m}");

        // Empty ids: nothing to match.
        for id in ["\"\"", "\"hex:\"", "\"hex: , \""] {
            let (k, m) = dtu_error(&format!("{DTU}{}", dtu_link("a", id)));
            assert_eq!(k, "modbus.links[0].dtu_id", "{id}");
            assert_eq!(m, "must not be empty", "{id}");
        }
        // Bad hex: the token is named.
        for (id, token) in [
            ("\"hex:0x1\"", "`0x1`"),
            ("\"hex:01 zz\"", "`zz`"),
            ("\"hex:0x\"", "`0x`"),
            ("\"hex:012\"", "`012`"),
        ] {
            let (k, m) = dtu_error(&format!("{DTU}{}", dtu_link("a", id)));
            assert_eq!(k, "modbus.links[0].dtu_id", "{id}");
            assert!(
                m.contains(token) && m.contains("not hex bytes"),
                "{id}: {m}"
            );
        }
        let (k, m) = dtu_error(&format!(
            "{DTU}registration = \"hex\"\n{}",
            dtu_link("a", "\"DTU1\"")
        ));
        assert_eq!(k, "modbus.links[0].dtu_id");
        assert!(m.contains("`DTU1`"), "{m}");
        // Longer than a registration packet can be.
        let (k, m) = dtu_error(&format!(
            "{DTU}{}",
            dtu_link("a", &format!("\"{}\"", "x".repeat(65)))
        ));
        assert_eq!(k, "modbus.links[0].dtu_id");
        assert!(m.contains("65 bytes; at most 64"), "{m}");

        // A dtu link needs its id, and takes no address or path.
        let (k, _) = dtu_error(&format!(
            "{DTU}{}",
            dtu_link("a", "\"X\"").replace("dtu_id = \"X\"\n", "")
        ));
        assert_eq!(k, "modbus.links[0].dtu_id");
        let (k, _) = dtu_error(&format!(
            "{DTU}{}",
            dtu_link("a", "\"X\"").replace("dtu_id", "address = \"127.0.0.1:502\"\ndtu_id")
        ));
        assert_eq!(k, "modbus.links[0].address");
        // ...and only a dtu link has one.
        let (k, m) = dtu_error(&link(DEV).replace(
            "transport = \"tcp\"\n",
            "transport = \"tcp\"\ndtu_id = \"X\"\n",
        ));
        assert_eq!(k, "modbus.links[0].dtu_id");
        assert!(m.contains("only for transport"), "{m}");

        // The listener's own keys.
        let (k, _) = dtu_error("[modbus.dtu]\nlisten = \"nowhere\"\n");
        assert_eq!(k, "modbus.dtu.listen");
        let (k, m) = dtu_error(&format!("{DTU}heartbeat = \"hex:4\"\n"));
        assert_eq!(k, "modbus.dtu.heartbeat");
        assert!(m.contains("not hex bytes"), "{m}");
        let (k, _) = dtu_error(&format!("{DTU}register_timeout_ms = 0\n"));
        assert_eq!(k, "modbus.dtu.register_timeout_ms");
        let (k, _) = dtu_error(&format!("{DTU}max_pending = 0\n"));
        assert_eq!(k, "modbus.dtu.max_pending");
    }
}
