//! The telemetry frame: what a device publishes every report period and, at
//! once, on an alarm, fault or button press.
//!
//! ```json
//! {"device":"gas-0001","kind":"gas","seq":1234,"ts_ms":1732300000000,
//!  "readings":{"lel_pct":12.5,"co_ppm":3.0},"faults":[]}
//! ```
//!
//! Optional fields: `v` (contract version, 1), `faults` (defaults to none),
//! `dropped` (frames the device's offline buffer had to drop since the last
//! frame it sent, defaults to 0). Unknown top-level keys are ignored, so a
//! later minor version can add fields without breaking v1 gateways.

use core::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::json::{self, Ctx};
use crate::{
    DecodeError, DeviceKind, EncodeError, Fault, Field, Id, MAX_TS_MS, MIN_TS_MS, Metric, Problem,
};

/// Most readings one frame may carry.
pub const MAX_READINGS: usize = 16;
/// Most faults one frame may carry.
pub const MAX_FAULTS: usize = 8;

/// The faults of a frame.
pub type Faults = heapless::Vec<Fault, MAX_FAULTS>;

/// The readings of a frame: at most one value per [`Metric`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readings(heapless::Vec<(Metric, f32), MAX_READINGS>);

impl Readings {
    /// No readings.
    pub const fn new() -> Self {
        Self(heapless::Vec::new())
    }

    /// The value of `metric`, if the frame carries it.
    #[inline]
    pub fn get(&self, metric: Metric) -> Option<f32> {
        self.0.iter().find(|(m, _)| *m == metric).map(|(_, v)| *v)
    }

    /// Sets `metric` to `value`, replacing an earlier value. Fails only when
    /// a new metric does not fit ([`MAX_READINGS`] distinct metrics).
    pub fn set(&mut self, metric: Metric, value: f32) -> Result<(), (Metric, f32)> {
        match self.0.iter_mut().find(|(m, _)| *m == metric) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => self.0.push((metric, value)),
        }
    }

    /// Removes `metric`; returns its value if it was there.
    pub fn remove(&mut self, metric: Metric) -> Option<f32> {
        let i = self.0.iter().position(|(m, _)| *m == metric)?;
        Some(self.0.remove(i).1)
    }

    /// The readings in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, f32)> + '_ {
        self.0.iter().copied()
    }

    /// Number of readings.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, metric: Metric) -> bool {
        self.0.iter().any(|(m, _)| *m == metric)
    }
}

impl FromIterator<(Metric, f32)> for Readings {
    /// Collects readings; later values replace earlier ones and metrics
    /// beyond [`MAX_READINGS`] are ignored.
    fn from_iter<I: IntoIterator<Item = (Metric, f32)>>(iter: I) -> Self {
        let mut r = Self::new();
        for (m, v) in iter {
            let _ = r.set(m, v);
        }
        r
    }
}

/// One telemetry or event frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// The device id; must equal the id in the topic.
    pub device: Id,
    /// What the device is.
    pub kind: DeviceKind,
    /// +1 per frame, restarts at 0 after a reboot.
    pub seq: u32,
    /// Device clock in Unix ms; 0 when the device has no clock.
    pub ts_ms: u64,
    /// Sensor values. A faulty channel is absent here and present in `faults`.
    pub readings: Readings,
    /// Active faults.
    pub faults: Faults,
    /// Frames the device dropped from its offline buffer since its last
    /// delivered frame.
    pub dropped: u32,
}

impl Telemetry {
    /// Decodes and validates a payload. Never panics, never allocates.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let raw: RawFrame = json::decode(payload, |ctx, de| {
            de::Deserializer::deserialize_map(de, FrameVisitor { ctx })
        })?;
        raw.validate()
    }

    /// Checks what [`Self::decode`] checks, for frames built in code.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.ts_ms != 0 && !(MIN_TS_MS..=MAX_TS_MS).contains(&self.ts_ms) {
            return Err(DecodeError::new(Field::TsMs, Problem::OutOfRange));
        }
        for (m, v) in self.readings.iter() {
            if !v.is_finite() {
                return Err(DecodeError::new(Field::Reading(m), Problem::NotFinite));
            }
            if !m.in_range(v) {
                return Err(DecodeError::new(Field::Reading(m), Problem::OutOfRange));
            }
        }
        Ok(())
    }

    /// Encodes the frame as JSON into `buf`; returns the length written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        serde_json_core::to_slice(self, buf).map_err(|_| EncodeError::BufferFull)
    }

    /// Encodes into a fixed-capacity byte vector of [`crate::MAX_PAYLOAD`].
    pub fn to_vec(&self) -> Result<heapless::Vec<u8, { crate::MAX_PAYLOAD }>, EncodeError> {
        serde_json_core::to_vec(self).map_err(|_| EncodeError::BufferFull)
    }
}

impl Serialize for Telemetry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("device", &self.device)?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("ts_ms", &self.ts_ms)?;
        map.serialize_entry("readings", &ReadingsSer(&self.readings))?;
        map.serialize_entry("faults", &FaultsSer(&self.faults))?;
        if self.dropped > 0 {
            map.serialize_entry("dropped", &self.dropped)?;
        }
        map.end()
    }
}

struct ReadingsSer<'a>(&'a Readings);

impl Serialize for ReadingsSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (m, v) in self.0.iter() {
            map.serialize_entry(m.as_str(), &v)?;
        }
        map.end()
    }
}

struct FaultsSer<'a>(&'a Faults);

impl Serialize for FaultsSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for f in self.0.iter() {
            seq.serialize_element(f)?;
        }
        seq.end()
    }
}

/// The frame as parsed, before the checks that need all fields.
#[derive(Default)]
struct RawFrame<'a> {
    v: Option<u32>,
    device: Option<&'a str>,
    kind: Option<&'a str>,
    seq: Option<u32>,
    ts_ms: Option<u64>,
    readings: Option<Readings>,
    faults: Option<Faults>,
    dropped: Option<u32>,
}

impl RawFrame<'_> {
    fn validate(self) -> Result<Telemetry, DecodeError> {
        let missing = |f| DecodeError::new(f, Problem::Missing);
        if let Some(v) = self.v
            && v != crate::CONTRACT_VERSION
        {
            return Err(DecodeError::new(Field::V, Problem::Unsupported));
        }
        let device = self.device.ok_or(missing(Field::Device))?;
        let device =
            Id::new(device).map_err(|e| DecodeError::new(Field::Device, Problem::BadId(e)))?;
        let kind = self.kind.ok_or(missing(Field::Kind))?;
        let kind =
            DeviceKind::parse(kind).ok_or(DecodeError::new(Field::Kind, Problem::Unknown))?;
        let frame = Telemetry {
            device,
            kind,
            seq: self.seq.ok_or(missing(Field::Seq))?,
            ts_ms: self.ts_ms.ok_or(missing(Field::TsMs))?,
            readings: self.readings.ok_or(missing(Field::Readings))?,
            faults: self.faults.unwrap_or_default(),
            dropped: self.dropped.unwrap_or(0),
        };
        frame.validate()?;
        Ok(frame)
    }
}

#[derive(Clone, Copy)]
enum Key {
    V,
    Device,
    Kind,
    Seq,
    TsMs,
    Readings,
    Faults,
    Dropped,
}

impl Key {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "v" => Self::V,
            "device" => Self::Device,
            "kind" => Self::Kind,
            "seq" => Self::Seq,
            "ts_ms" => Self::TsMs,
            "readings" => Self::Readings,
            "faults" => Self::Faults,
            "dropped" => Self::Dropped,
            _ => return None,
        })
    }

    fn field(self) -> Field {
        match self {
            Self::V => Field::V,
            Self::Device => Field::Device,
            Self::Kind => Field::Kind,
            Self::Seq => Field::Seq,
            Self::TsMs => Field::TsMs,
            Self::Readings => Field::Readings,
            Self::Faults => Field::Faults,
            Self::Dropped => Field::Dropped,
        }
    }
}

struct FrameVisitor<'c> {
    ctx: &'c Ctx,
}

impl<'de> Visitor<'de> for FrameVisitor<'_> {
    type Value = RawFrame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a telemetry frame")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFrame<'de>, A::Error> {
        let ctx = self.ctx;
        let mut raw = RawFrame::default();
        // A structural error after a value (`"seq":1.5`, a missing comma)
        // is reported against the field just parsed.
        loop {
            let Some(key) = map.next_key::<&'de str>()? else {
                break;
            };
            let Some(key) = Key::parse(key) else {
                ctx.at(Field::Payload);
                map.next_value_seed(json::Skip { ctx, depth: 3 })?;
                continue;
            };
            let field = key.field();
            ctx.at(field);
            let dup = match key {
                Key::V => json::once(&mut raw.v, map.next_value()?),
                Key::Device => json::once(&mut raw.device, map.next_value()?),
                Key::Kind => json::once(&mut raw.kind, map.next_value()?),
                Key::Seq => json::once(&mut raw.seq, map.next_value()?),
                Key::TsMs => json::once(&mut raw.ts_ms, map.next_value()?),
                Key::Dropped => json::once(&mut raw.dropped, map.next_value()?),
                Key::Readings => json::once(
                    &mut raw.readings,
                    map.next_value_seed(ReadingsSeed { ctx })?,
                ),
                Key::Faults => {
                    json::once(&mut raw.faults, map.next_value_seed(FaultsSeed { ctx })?)
                }
            };
            if dup {
                return Err(ctx.fail(field, Problem::Duplicate));
            }
        }
        Ok(raw)
    }
}

struct ReadingsSeed<'c> {
    ctx: &'c Ctx,
}

impl<'de> DeserializeSeed<'de> for ReadingsSeed<'_> {
    type Value = Readings;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Readings, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReadingsSeed<'_> {
    type Value = Readings;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("readings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Readings, A::Error> {
        let ctx = self.ctx;
        let mut out = Readings::new();
        loop {
            ctx.at(Field::Readings);
            let Some(key) = map.next_key::<&'de str>()? else {
                break;
            };
            let Some(metric) = Metric::parse(key) else {
                return Err(ctx.fail(Field::Readings, Problem::Unknown));
            };
            let field = Field::Reading(metric);
            if out.contains(metric) {
                return Err(ctx.fail(field, Problem::Duplicate));
            }
            ctx.at(field);
            let value: f32 = map.next_value()?;
            if out.set(metric, value).is_err() {
                return Err(ctx.fail(Field::Readings, Problem::TooMany));
            }
        }
        Ok(out)
    }
}

struct FaultsSeed<'c> {
    ctx: &'c Ctx,
}

impl<'de> DeserializeSeed<'de> for FaultsSeed<'_> {
    type Value = Faults;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Faults, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FaultsSeed<'_> {
    type Value = Faults;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("faults")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Faults, A::Error> {
        let mut out = Faults::new();
        while let Some(s) = seq.next_element::<&'de str>()? {
            let fault =
                Fault::parse(s).ok_or_else(|| self.ctx.fail(Field::Faults, Problem::Unknown))?;
            if out.contains(&fault) {
                continue;
            }
            out.push(fault)
                .map_err(|_| self.ctx.fail(Field::Faults, Problem::TooMany))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FaultCode, MAX_PAYLOAD};
    use std::format;
    use std::string::String;

    const GOOD: &str = r#"{"device":"gas-0001","kind":"gas","seq":1234,"ts_ms":1732300000000,"readings":{"lel_pct":12.5,"co_ppm":3.0},"faults":[]}"#;

    fn err(s: &str) -> DecodeError {
        Telemetry::decode(s.as_bytes()).expect_err(s)
    }

    fn with(field: &str, value: &str) -> String {
        // Replace the value of one top-level field of GOOD.
        let v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        let mut map = v.as_object().unwrap().clone();
        map.insert(field.into(), serde_json::from_str(value).unwrap());
        serde_json::to_string(&map).unwrap()
    }

    fn without(field: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        let mut map = v.as_object().unwrap().clone();
        map.remove(field);
        serde_json::to_string(&map).unwrap()
    }

    #[test]
    fn decodes_the_contract_example() {
        let f = Telemetry::decode(GOOD.as_bytes()).unwrap();
        assert_eq!(f.device, "gas-0001");
        assert_eq!(f.kind, DeviceKind::Gas);
        assert_eq!(f.seq, 1234);
        assert_eq!(f.ts_ms, 1_732_300_000_000);
        assert_eq!(f.readings.get(Metric::LelPct), Some(12.5));
        assert_eq!(f.readings.get(Metric::CoPpm), Some(3.0));
        assert_eq!(f.readings.get(Metric::WindMs), None);
        assert!(f.faults.is_empty());
        assert_eq!(f.dropped, 0);
    }

    #[test]
    fn round_trips() {
        let mut f = Telemetry::decode(GOOD.as_bytes()).unwrap();
        f.faults
            .push(Fault::on(FaultCode::OpenCircuit, Metric::Temp2C))
            .unwrap();
        f.faults.push(Fault::device(FaultCode::Power)).unwrap();
        f.dropped = 7;
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = f.encode(&mut buf).unwrap();
        let back = Telemetry::decode(&buf[..n]).unwrap();
        assert_eq!(back, f);
        // serde_json, the std decoder, reads the same bytes.
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(v["faults"][0], "open_circuit:temp2_c");
        assert_eq!(v["dropped"], 7);
    }

    #[test]
    fn optional_fields_and_unknown_keys() {
        let f = Telemetry::decode(without("faults").as_bytes()).unwrap();
        assert!(f.faults.is_empty());
        let f = Telemetry::decode(with("v", "1").as_bytes()).unwrap();
        assert_eq!(f.seq, 1234);
        let f =
            Telemetry::decode(with("firmware", r#"{"rev":[1,2,{"x":null}]}"#).as_bytes()).unwrap();
        assert_eq!(f.seq, 1234);
        // ts_ms 0 means "no clock".
        assert!(Telemetry::decode(with("ts_ms", "0").as_bytes()).is_ok());
        // Integers are fine for readings.
        assert!(Telemetry::decode(with("readings", r#"{"lel_pct":12}"#).as_bytes()).is_ok());
    }

    #[test]
    fn rejects_oversized_payloads() {
        let big = format!("{}{}", " ".repeat(MAX_PAYLOAD), GOOD);
        assert_eq!(
            err(&big),
            DecodeError::new(Field::Payload, Problem::TooLarge)
        );
    }

    #[test]
    fn rejects_malformed_json() {
        for s in [
            "",
            "{",
            "not json",
            "[1,2]",
            "{\"device\"",
            "null",
            "{}}",
            "\u{0}",
        ] {
            let e = err(s);
            assert!(
                matches!(e.problem, Problem::Malformed | Problem::WrongType),
                "{s:?} gave {e}"
            );
        }
        let truncated = &GOOD[..GOOD.len() - 3];
        assert_eq!(err(truncated).problem, Problem::Malformed);
    }

    #[test]
    fn rejects_deep_nesting_without_recursing() {
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(400), "]".repeat(400));
        assert_eq!(
            err(&deep),
            DecodeError::new(Field::Payload, Problem::Malformed)
        );
    }

    #[test]
    fn names_missing_fields() {
        for (key, field) in [
            ("device", Field::Device),
            ("kind", Field::Kind),
            ("seq", Field::Seq),
            ("ts_ms", Field::TsMs),
            ("readings", Field::Readings),
        ] {
            assert_eq!(
                err(&without(key)),
                DecodeError::new(field, Problem::Missing),
                "{key}"
            );
        }
    }

    #[test]
    fn names_wrong_types() {
        for (key, value, field) in [
            ("device", "42", Field::Device),
            ("kind", "[]", Field::Kind),
            ("seq", r#""12""#, Field::Seq),
            ("seq", "-1", Field::Seq),
            ("seq", "4294967296", Field::Seq),
            ("seq", "true", Field::Seq),
            ("ts_ms", "1.5e3", Field::TsMs),
            ("readings", "[]", Field::Readings),
            (
                "readings",
                r#"{"lel_pct":"12"}"#,
                Field::Reading(Metric::LelPct),
            ),
            (
                "readings",
                r#"{"lel_pct":true}"#,
                Field::Reading(Metric::LelPct),
            ),
            ("faults", "{}", Field::Faults),
            ("faults", "[1]", Field::Faults),
            ("dropped", "-3", Field::Dropped),
            ("v", r#""1""#, Field::V),
        ] {
            let e = err(&with(key, value));
            assert_eq!(e.field, field, "{key}={value}: {e}");
            assert!(
                matches!(e.problem, Problem::WrongType | Problem::Malformed),
                "{key}={value}: {e}"
            );
        }
    }

    #[test]
    fn rejects_unknown_names() {
        assert_eq!(
            err(&with("kind", r#""smoke""#)),
            DecodeError::new(Field::Kind, Problem::Unknown)
        );
        assert_eq!(
            err(&with("readings", r#"{"lel":1}"#)),
            DecodeError::new(Field::Readings, Problem::Unknown)
        );
        assert_eq!(
            err(&with("faults", r#"["melted"]"#)),
            DecodeError::new(Field::Faults, Problem::Unknown)
        );
        assert_eq!(
            err(&with("v", "2")),
            DecodeError::new(Field::V, Problem::Unsupported)
        );
    }

    #[test]
    fn rejects_non_finite_and_out_of_range() {
        let lel = Field::Reading(Metric::LelPct);
        assert_eq!(
            err(&with("readings", r#"{"lel_pct":null}"#)),
            DecodeError::new(lel, Problem::NotFinite)
        );
        let inf = GOOD.replace("12.5", "1e999");
        assert_eq!(err(&inf), DecodeError::new(lel, Problem::NotFinite));
        let neg_inf = GOOD.replace("12.5", "-1e999");
        assert_eq!(err(&neg_inf), DecodeError::new(lel, Problem::NotFinite));
        assert_eq!(
            err(&with("readings", r#"{"lel_pct":100.1}"#)),
            DecodeError::new(lel, Problem::OutOfRange)
        );
        assert_eq!(
            err(&with("readings", r#"{"wind_ms":-1}"#)),
            DecodeError::new(Field::Reading(Metric::WindMs), Problem::OutOfRange)
        );
        assert_eq!(
            err(&with("ts_ms", "12345")),
            DecodeError::new(Field::TsMs, Problem::OutOfRange)
        );
        assert_eq!(
            err(&with("ts_ms", "9999999999999")),
            DecodeError::new(Field::TsMs, Problem::OutOfRange)
        );
    }

    #[test]
    fn rejects_bad_ids() {
        use crate::IdError;
        for (value, why) in [
            (r#""""#, IdError::Empty),
            (r#""gas/0001""#, IdError::BadChar),
            (r#""gas 1""#, IdError::BadChar),
            (r#""gas\u0030""#, IdError::BadChar),
            (r#""燃气""#, IdError::BadChar),
        ] {
            // Raw replacement: serde_json would unescape `\u0030`.
            assert_eq!(
                err(&GOOD.replace(r#""gas-0001""#, value)),
                DecodeError::new(Field::Device, Problem::BadId(why)),
                "{value}"
            );
        }
        let long = format!("\"{}\"", "d".repeat(65));
        assert_eq!(
            err(&with("device", &long)),
            DecodeError::new(Field::Device, Problem::BadId(IdError::TooLong))
        );
    }

    #[test]
    fn rejects_duplicates_and_too_many() {
        let dup = GOOD.replace(r#""seq":1234"#, r#""seq":1234,"seq":1235"#);
        assert_eq!(err(&dup), DecodeError::new(Field::Seq, Problem::Duplicate));
        let dup = GOOD.replace(r#""co_ppm":3.0"#, r#""co_ppm":3.0,"lel_pct":1"#);
        assert_eq!(
            err(&dup),
            DecodeError::new(Field::Reading(Metric::LelPct), Problem::Duplicate)
        );
        let many: String = crate::FaultCode::ALL
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<std::vec::Vec<_>>()
            .join(",");
        assert_eq!(
            err(&with("faults", &format!("[{many}]"))),
            DecodeError::new(Field::Faults, Problem::TooMany)
        );
        // A repeated fault is the same fault.
        let f = Telemetry::decode(with("faults", r#"["stuck","stuck"]"#).as_bytes()).unwrap();
        assert_eq!(f.faults.len(), 1);
    }

    #[test]
    fn error_messages_name_the_field() {
        let e = err(&with("readings", r#"{"lel_pct":250}"#));
        assert_eq!(
            format!("{e}"),
            "readings.lel_pct: outside the physical range 0..=100 %LEL"
        );
        let e = err(&with("seq", r#""x""#));
        assert_eq!(
            format!("{e}"),
            "seq: wrong type; expected an unsigned 32-bit integer"
        );
    }

    #[test]
    fn every_metric_encodes_and_decodes() {
        let mut f = Telemetry::decode(GOOD.as_bytes()).unwrap();
        f.readings = Readings::new();
        for &m in Metric::ALL.iter().take(MAX_READINGS) {
            let (lo, hi) = m.range();
            f.readings.set(m, (lo + hi) / 2.0).unwrap();
        }
        let bytes = f.to_vec().unwrap();
        assert!(bytes.len() <= MAX_PAYLOAD);
        assert_eq!(Telemetry::decode(&bytes).unwrap(), f);
    }
}
