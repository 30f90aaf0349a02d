//! Register maps: which register holds which reading, how to decode it,
//! the shipped maps, and the checks `anquan-gateway check` runs on a map.
//!
//! A map is a list of [`RegisterSpec`]s. Each names a reading of the wire
//! contract (`pressure_mpa`, ...), where it lives (function and address),
//! its data type (and word order for 32-bit types, or one bit of a status
//! word), and `value = raw × scale + offset`.

use std::collections::HashMap;

use anquan_firmware::modbus::{IR_READINGS, map_for};
use anquan_firmware::scale::{ABSENT, factor};
use anquan_protocol::{DeviceKind, MAX_READINGS, Metric};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Which Modbus table a value lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// Input registers, function 0x04.
    Input,
    /// Holding registers, function 0x03.
    Holding,
    /// Coils, function 0x01 (a contact such as "pump running").
    Coil,
    /// Discrete inputs, function 0x02 (a contact such as a one-key alarm).
    Discrete,
}

impl Function {
    /// Every function.
    pub const ALL: [Self; 4] = [Self::Input, Self::Holding, Self::Coil, Self::Discrete];

    /// Whether it reads single bits (coils, discrete inputs).
    pub const fn is_bits(self) -> bool {
        matches!(self, Self::Coil | Self::Discrete)
    }

    /// Most items one read request may cover (Modbus Application Protocol
    /// v1.1b3 §6.1–6.4: 2000 bits, 125 registers).
    pub const fn max_per_read(self) -> u16 {
        if self.is_bits() { 2000 } else { 125 }
    }

    /// The function code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Coil => 0x01,
            Self::Discrete => 0x02,
            Self::Holding => 0x03,
            Self::Input => 0x04,
        }
    }

    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Holding => "holding",
            Self::Coil => "coil",
            Self::Discrete => "discrete",
        }
    }
}

/// How the raw value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// One register, unsigned.
    U16,
    /// One register, two's complement.
    I16,
    /// Two registers, unsigned.
    U32,
    /// Two registers, two's complement.
    I32,
    /// Two registers, IEEE 754 single precision.
    F32,
    /// One coil or discrete input (0 or 1).
    Bool,
}

impl DataType {
    /// Registers (or bits) it occupies.
    pub const fn width(self) -> u16 {
        match self {
            Self::U32 | Self::I32 | Self::F32 => 2,
            _ => 1,
        }
    }
}

/// Word order of 32-bit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// High word first ("ABCD"), the Modbus convention and ours.
    #[default]
    Big,
    /// Low word first ("CDAB").
    Little,
}

fn one() -> f64 {
    1.0
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_big(w: &WordOrder) -> bool {
    *w == WordOrder::Big
}

/// One reading of a map (`[[...registers]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSpec {
    /// The wire-contract reading name (`pressure_mpa`, ...).
    pub reading: String,
    /// Register (or coil) address, 0-based as on the wire (register 30001
    /// of a manual is input address 0).
    pub address: u32,
    /// `input` (0x04), `holding` (0x03), `coil` (0x01), `discrete` (0x02).
    #[serde(default = "default_function")]
    pub function: Function,
    /// `u16`, `i16`, `u32`, `i32`, `f32`; `bool` for coils and discrete
    /// inputs (their default). Registers default to `u16`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
    /// Word order of 32-bit types.
    #[serde(default, skip_serializing_if = "is_big")]
    pub word_order: WordOrder,
    /// One bit (0–15) of a `u16` register, read as 0 or 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
    /// `value = raw × scale + offset`.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub scale: f64,
    /// See `scale`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: f64,
    /// A raw value that means "no reading" (e.g. `0x8000` or `-32768`),
    /// compared with the register bits: the reading is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<i64>,
}

fn default_function() -> Function {
    Function::Input
}

impl RegisterSpec {
    /// The effective data type.
    pub fn data_type(&self) -> DataType {
        self.data_type.unwrap_or(if self.function.is_bits() {
            DataType::Bool
        } else {
            DataType::U16
        })
    }

    /// Registers (bits) it occupies.
    pub fn width(&self) -> u16 {
        self.data_type().width()
    }

    /// Decodes the value from the words (bits: 0/1) of its span; `None`
    /// when it is the `absent` value or not a finite number.
    pub fn decode(&self, words: &[u16]) -> Option<f64> {
        let w0 = u32::from(*words.first()?);
        let pair = || -> Option<u32> {
            let w1 = u32::from(*words.get(1)?);
            Some(match self.word_order {
                WordOrder::Big => (w0 << 16) | w1,
                WordOrder::Little => (w1 << 16) | w0,
            })
        };
        let (bits, raw): (u32, f64) = match self.data_type() {
            DataType::Bool => (w0, f64::from(u8::from(w0 != 0))),
            DataType::U16 => match self.bit {
                Some(b) => (w0, f64::from((w0 >> b) & 1)),
                None => (w0, f64::from(w0)),
            },
            DataType::I16 => (w0, f64::from(w0 as u16 as i16)),
            DataType::U32 => {
                let v = pair()?;
                (v, f64::from(v))
            }
            DataType::I32 => {
                let v = pair()?;
                (v, f64::from(v as i32))
            }
            DataType::F32 => {
                let v = pair()?;
                (v, f64::from(f32::from_bits(v)))
            }
        };
        if let Some(a) = self.absent {
            let width_bits = 16 * u32::from(self.width());
            let mask: u64 = (1u64 << width_bits) - 1;
            if (a as u64) & mask == u64::from(bits) & mask {
                return None;
            }
        }
        let v = raw * self.scale + self.offset;
        v.is_finite().then_some(v)
    }
}

/// `[modbus.maps.NAME]`: a named map several devices can use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// The readings.
    pub registers: Vec<RegisterSpec>,
}

/// A map checked for use: every reading parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    /// The readings, with their metric.
    pub entries: Vec<(Metric, RegisterSpec)>,
    /// Our firmware's map of this kind (`builtin:{kind}`): the poller reads
    /// the whole input-register image in one request and decodes it with
    /// the firmware's own decoder, so the map id is checked and the
    /// channel and device faults reach the rules as in an MQTT frame.
    pub firmware: Option<DeviceKind>,
}

/// Names of the shipped maps, for `map = "builtin:NAME"`.
pub const BUILTIN: &[&str] = &[
    "gas",
    "electrical",
    "water_pressure",
    "crane",
    "fire_panel",
    "eastron_sdm120",
];

/// A shipped map by name (without the `builtin:` prefix).
///
/// * `gas`, `electrical`, `water_pressure`, `crane`, `fire_panel`: our firmware's input
///   registers (`anquan_firmware::modbus`): one signed 16-bit fixed-point
///   register per channel from address 9, `0x8000` = no reading.
/// * `eastron_sdm120`: the Eastron SDM120-Modbus single-phase energy meter
///   (also SDM220/SDM230/SDM630 phase 1): input registers (function 04),
///   IEEE 754 float in two registers, high word first. From the maker's
///   "SDM120 Modbus protocol" input register table, register 30007
///   "Current, Amps, 4 bytes float, hex address 00 06" (the same table is
///   reproduced at <https://ob121.com/doku.php?id=de:hw:eastron_modbus>).
///   Only the phase current maps onto a wire-contract reading
///   (`current_a`); use it with kind `electrical`.
pub fn builtin(name: &str) -> Option<Vec<RegisterSpec>> {
    let kind = match name {
        "gas" => DeviceKind::Gas,
        "electrical" => DeviceKind::Electrical,
        "water_pressure" => DeviceKind::WaterPressure,
        "crane" => DeviceKind::Crane,
        "fire_panel" => DeviceKind::FirePanel,
        "eastron_sdm120" => {
            return Some(vec![RegisterSpec {
                reading: Metric::CurrentA.as_str().into(),
                address: 0x0006,
                function: Function::Input,
                data_type: Some(DataType::F32),
                word_order: WordOrder::Big,
                bit: None,
                scale: 1.0,
                offset: 0.0,
                absent: None,
            }]);
        }
        _ => return None,
    };
    Some(firmware_map(kind))
}

/// Our firmware's input-register map of `kind` as register specs.
pub fn firmware_map(kind: DeviceKind) -> Vec<RegisterSpec> {
    map_for(kind)
        .channels
        .iter()
        .enumerate()
        .map(|(i, m)| RegisterSpec {
            reading: m.as_str().into(),
            address: u32::from(IR_READINGS) + i as u32,
            function: Function::Input,
            data_type: Some(DataType::I16),
            word_order: WordOrder::Big,
            bit: None,
            scale: 1.0 / f64::from(factor(*m)),
            offset: 0.0,
            absent: Some(i64::from(ABSENT)),
        })
        .collect()
}

/// Checks a map, naming `key` (`modbus.links[0].devices[1].registers`) and
/// the index of the faulty entry.
pub fn check(key: &str, specs: &[RegisterSpec]) -> Result<Map, ConfigError> {
    if specs.is_empty() {
        return Err(ConfigError::new(key, "a map needs at least one register"));
    }
    if specs.len() > MAX_READINGS {
        return Err(ConfigError::new(
            key,
            format!("at most {MAX_READINGS} readings per device (one frame)"),
        ));
    }
    let mut entries = Vec::with_capacity(specs.len());
    let mut names: HashMap<Metric, usize> = HashMap::new();
    for (i, s) in specs.iter().enumerate() {
        let k = |field: &str| format!("{key}[{i}].{field}");
        let metric = Metric::parse(&s.reading).ok_or_else(|| {
            ConfigError::new(
                k("reading"),
                format!(
                    "unknown reading name `{}` (one of: {})",
                    s.reading,
                    Metric::ALL
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if let Some(j) = names.insert(metric, i) {
            return Err(ConfigError::new(
                k("reading"),
                format!("`{}` is already read by entry {j}", s.reading),
            ));
        }
        let t = s.data_type();
        match (s.function.is_bits(), t) {
            (true, DataType::Bool) | (false, DataType::U16 | DataType::I16) => {}
            (false, DataType::U32 | DataType::I32 | DataType::F32) => {}
            (true, _) => {
                return Err(ConfigError::new(
                    k("type"),
                    format!("a {} holds one bit: type must be bool", s.function.as_str()),
                ));
            }
            (false, DataType::Bool) => {
                return Err(ConfigError::new(
                    k("type"),
                    "bool is for coils and discrete inputs; use `bit` for a bit of a register",
                ));
            }
        }
        if let Some(b) = s.bit {
            if t != DataType::U16 || s.function.is_bits() {
                return Err(ConfigError::new(
                    k("bit"),
                    "a bit is taken from a u16 input or holding register",
                ));
            }
            if b > 15 {
                return Err(ConfigError::new(k("bit"), "must be 0-15"));
            }
        }
        if s.word_order == WordOrder::Little && t.width() != 2 {
            return Err(ConfigError::new(
                k("word_order"),
                "word order applies to u32, i32 and f32 only",
            ));
        }
        let last = s.address + u32::from(t.width()) - 1;
        if last > u32::from(u16::MAX) {
            return Err(ConfigError::new(
                k("address"),
                format!(
                    "{} is out of range (0-65535, the value's last word included)",
                    s.address
                ),
            ));
        }
        if !s.scale.is_finite() || s.scale == 0.0 {
            return Err(ConfigError::new(k("scale"), "must be finite and not 0"));
        }
        if !s.offset.is_finite() {
            return Err(ConfigError::new(k("offset"), "must be finite"));
        }
        entries.push((metric, s.clone()));
    }
    // Overlaps: two values sharing a register (or coil), unless both are
    // different bits of the same u16.
    let mut spans: Vec<(Function, u32, u32, usize)> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.function, s.address, s.address + u32::from(s.width()), i))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        let (f0, a0, e0, i0) = w[0];
        let (f1, a1, _, i1) = w[1];
        if f0 == f1 && a1 < e0 {
            let (s0, s1) = (&specs[i0], &specs[i1]);
            let bits_of_one_word =
                a0 == a1 && s0.bit.is_some() && s1.bit.is_some() && s0.bit != s1.bit;
            if !bits_of_one_word {
                let i = i0.max(i1);
                return Err(ConfigError::new(
                    format!("{key}[{i}].address"),
                    format!(
                        "{} register {} overlaps entry {} (`{}`)",
                        f1.as_str(),
                        specs[i].address,
                        i0.min(i1),
                        specs[i0.min(i1)].reading
                    ),
                ));
            }
        }
    }
    Ok(Map {
        entries,
        firmware: None,
    })
}

/// The kind whose firmware map `builtin:NAME` is, if it is one.
pub fn firmware_kind(name: &str) -> Option<DeviceKind> {
    DeviceKind::parse(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(reading: &str, address: u32, t: DataType) -> RegisterSpec {
        RegisterSpec {
            reading: reading.into(),
            address,
            function: Function::Input,
            data_type: Some(t),
            word_order: WordOrder::Big,
            bit: None,
            scale: 1.0,
            offset: 0.0,
            absent: None,
        }
    }

    #[test]
    fn decodes_every_type() {
        let mut s = spec("pressure_mpa", 0, DataType::I16);
        s.scale = 0.001;
        assert_eq!(s.decode(&[0xFFFF]), Some(-0.001));
        s.absent = Some(0x8000);
        assert_eq!(s.decode(&[0x8000]), None);
        s.absent = Some(-32768);
        assert_eq!(s.decode(&[0x8000]), None);
        let s = spec("load_t", 0, DataType::U32);
        assert_eq!(s.decode(&[0x0001, 0x0002]), Some(65538.0));
        let mut s = spec("load_t", 0, DataType::I32);
        s.word_order = WordOrder::Little;
        assert_eq!(s.decode(&[0xFFFE, 0xFFFF]), Some(-2.0));
        let s = spec("current_a", 6, DataType::F32);
        let b = 12.5f32.to_bits();
        assert_eq!(s.decode(&[(b >> 16) as u16, b as u16]), Some(12.5));
        assert_eq!(s.decode(&[0x7FC0, 0]), None, "NaN is no reading");
        let mut s = spec("alarm_btn", 1, DataType::U16);
        s.bit = Some(6);
        assert_eq!(s.decode(&[0x0040]), Some(1.0));
        assert_eq!(s.decode(&[0x00BF]), Some(0.0));
        let mut s = spec("pump_on", 3, DataType::Bool);
        s.function = Function::Coil;
        assert_eq!(s.decode(&[1]), Some(1.0));
        let mut s = spec("level_m", 0, DataType::U16);
        s.scale = 0.01;
        s.offset = -1.0;
        assert_eq!(s.decode(&[250]), Some(1.5));
        assert_eq!(s.decode(&[]), None);
    }

    #[test]
    fn builtin_maps_check_and_match_the_firmware() {
        for name in BUILTIN {
            let specs = builtin(name).unwrap();
            check("m", &specs).unwrap();
        }
        let m = builtin("water_pressure").unwrap();
        assert_eq!(m[0].reading, "pressure_mpa");
        assert_eq!(m[0].address, 9);
        assert_eq!(m[0].decode(&[150]), Some(0.15));
        assert_eq!(m[0].decode(&[0x8000]), None);
        assert!(builtin("nope").is_none());
    }

    #[test]
    fn map_errors_name_the_entry() {
        let key = "modbus.links[0].devices[0].registers";
        let e = check(key, &[spec("pressure", 0, DataType::U16)]).unwrap_err();
        assert_eq!(e.key, format!("{key}[0].reading"), "{e}");
        let e = check(
            key,
            &[
                spec("pressure_mpa", 0, DataType::U32),
                spec("level_m", 1, DataType::U16),
            ],
        )
        .unwrap_err();
        assert_eq!(e.key, format!("{key}[1].address"), "{e}");
        assert!(e.message.contains("overlaps"), "{e}");
        let e = check(key, &[spec("pressure_mpa", 65535, DataType::F32)]).unwrap_err();
        assert_eq!(e.key, format!("{key}[0].address"), "{e}");
        let e = check(key, &[spec("pressure_mpa", 0, DataType::Bool)]).unwrap_err();
        assert_eq!(e.key, format!("{key}[0].type"), "{e}");
        let mut c = spec("pump_on", 0, DataType::U16);
        c.function = Function::Coil;
        let e = check(key, &[c]).unwrap_err();
        assert_eq!(e.key, format!("{key}[0].type"), "{e}");
        let mut b = spec("alarm_btn", 0, DataType::I16);
        b.bit = Some(3);
        let e = check(key, &[b]).unwrap_err();
        assert_eq!(e.key, format!("{key}[0].bit"), "{e}");
        let mut s = spec("level_m", 0, DataType::U16);
        s.scale = 0.0;
        let e = check(key, &[s]).unwrap_err();
        assert_eq!(e.key, format!("{key}[0].scale"), "{e}");
        let e = check(
            key,
            &[
                spec("level_m", 0, DataType::U16),
                spec("level_m", 5, DataType::U16),
            ],
        )
        .unwrap_err();
        assert_eq!(e.key, format!("{key}[1].reading"), "{e}");
        // Two bits of one status word are fine; the same bit twice is not.
        let mut a = spec("alarm_btn", 1, DataType::U16);
        a.bit = Some(6);
        let mut p = spec("pump_on", 1, DataType::U16);
        p.bit = Some(5);
        check(key, &[a.clone(), p.clone()]).unwrap();
        p.bit = Some(6);
        assert!(check(key, &[a, p]).is_err());
        // The same address in different tables does not overlap.
        let mut h = spec("level_m", 0, DataType::U16);
        h.function = Function::Holding;
        check(key, &[spec("pressure_mpa", 0, DataType::U16), h]).unwrap();
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn words32(v: u32, order: WordOrder) -> [u16; 2] {
            let (hi, lo) = ((v >> 16) as u16, v as u16);
            match order {
                WordOrder::Big => [hi, lo],
                WordOrder::Little => [lo, hi],
            }
        }

        fn order() -> impl Strategy<Value = WordOrder> {
            prop_oneof![Just(WordOrder::Big), Just(WordOrder::Little)]
        }

        proptest! {
            #[test]
            fn every_type_round_trips(raw in any::<u32>(), o in order(), bit in 0u8..16) {
                let mut s = spec("load_t", 0, DataType::U32);
                s.word_order = o;
                prop_assert_eq!(s.decode(&words32(raw, o)), Some(f64::from(raw)));
                s.data_type = Some(DataType::I32);
                prop_assert_eq!(s.decode(&words32(raw, o)), Some(f64::from(raw as i32)));
                s.data_type = Some(DataType::F32);
                let f = f32::from_bits(raw);
                let got = s.decode(&words32(raw, o));
                if f.is_finite() {
                    prop_assert_eq!(got, Some(f64::from(f)));
                } else {
                    prop_assert_eq!(got, None);
                }
                let w = raw as u16;
                let s16 = spec("level_m", 0, DataType::I16);
                prop_assert_eq!(s16.decode(&[w]), Some(f64::from(w as i16)));
                let mut b = spec("alarm_btn", 0, DataType::U16);
                b.bit = Some(bit);
                prop_assert_eq!(b.decode(&[w]), Some(f64::from((w >> bit) & 1)));
            }

            #[test]
            fn checks_never_panic_and_accepted_maps_plan_inside_the_address_space(
                entries in prop::collection::vec(
                    (0u32..70_000, 0usize..4, 0usize..6, prop::option::of(0u8..20), 0usize..20),
                    1..20,
                ),
            ) {
                let types = [DataType::U16, DataType::I16, DataType::U32, DataType::I32, DataType::F32, DataType::Bool];
                let specs: Vec<RegisterSpec> = entries
                    .iter()
                    .map(|&(address, f, t, bit, m)| RegisterSpec {
                        reading: Metric::ALL[m % Metric::ALL.len()].as_str().into(),
                        address,
                        function: Function::ALL[f],
                        data_type: Some(types[t]),
                        word_order: WordOrder::Big,
                        bit,
                        scale: 1.0,
                        offset: 0.0,
                        absent: None,
                    })
                    .collect();
                if let Ok(map) = check("k", &specs) {
                    let specs: Vec<_> = map.entries.iter().map(|(_, s)| s.clone()).collect();
                    let p = crate::modbus::plan::plan(&crate::modbus::plan::spans(&specs), 0);
                    for r in &p.reads {
                        prop_assert!(r.end() <= 65_536);
                    }
                }
            }
        }
    }
}
