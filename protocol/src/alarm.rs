//! The alarm event: what the gateway forwards to the monitor, on
//! `POST /api/v1/alarms` and on the MQTT topic `alarms/{site}/{device}`.
//!
//! ```json
//! {"event_id":"gw-01/s1/gas-0001/gas.lel/7","site":"s1","device":"gas-0001",
//!  "kind":"gas","rule":"gas.lel","level":"red","state":"raised","value":55.0,
//!  "threshold":50.0,"ts_ms":1732300000000,"gateway":"gw-01"}
//! ```
//!
//! `event_id` is stable: a redelivery of the same transition carries the same
//! id, so the receiver can drop duplicates.

use core::fmt::{self, Write as _};

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::json::{self, Ctx};
use crate::{
    AlarmState, DecodeError, DeviceKind, EncodeError, Field, Id, IdError, Level, MAX_TS_MS,
    MIN_TS_MS, Problem, RuleId,
};

/// Longest event id.
pub const MAX_EVENT_ID_LEN: usize = 256;

/// A stable alarm event id: `[A-Za-z0-9_.:/-]{1,256}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(heapless::String<MAX_EVENT_ID_LEN>);

impl EventId {
    /// Validates and copies `s`.
    pub fn new(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > MAX_EVENT_ID_LEN {
            return Err(IdError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b))
        {
            return Err(IdError::BadChar);
        }
        let mut out = heapless::String::new();
        out.push_str(s).map_err(|_| IdError::TooLong)?;
        Ok(Self(out))
    }

    /// The id of the `n`-th transition of `rule` on `device`, as seen by
    /// `gateway`: `{gateway}/{site}/{device}/{rule}/{n}`. Every part is a
    /// validated id, so the result always fits and parses back.
    pub fn for_transition(gateway: &Id, site: &Id, device: &Id, rule: &RuleId, n: u64) -> Self {
        let mut s = heapless::String::new();
        // 3 × 64 (ids) + 32 (rule) + 20 (u64) + 4 separators = 248 ≤ 256:
        // the write cannot run out of room.
        let _ = write!(s, "{gateway}/{site}/{device}/{rule}/{n}");
        Self(s)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An alarm transition, as forwarded by the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEvent {
    /// Stable id of this transition; the receiver's idempotency key.
    pub event_id: EventId,
    /// Site id.
    pub site: Id,
    /// Device id.
    pub device: Id,
    /// Device kind.
    pub kind: DeviceKind,
    /// The rule that fired.
    pub rule: RuleId,
    /// The level now (for `cleared`, the level that was cleared).
    pub level: Level,
    /// What happened.
    pub state: AlarmState,
    /// The value that caused the transition.
    pub value: f32,
    /// The threshold it crossed.
    pub threshold: f32,
    /// When, in Unix ms: the time stamp of the frame that caused it when the
    /// gateway trusts the device clock (non-zero and within its skew
    /// bound), else the gateway's receive time; the gateway's time for a
    /// transition no frame caused (silence, status, rules reload) and for
    /// any offline rule's (a device back from an outage often sends frames
    /// it buffered first, stamped when the outage began). Not part
    /// of the event's identity: judged again after a gateway crash, a
    /// transition may carry a later receive time.
    pub ts_ms: u64,
    /// The gateway that judged it.
    pub gateway: Id,
}

impl AlarmEvent {
    /// Decodes and validates an alarm event. Never panics, never allocates.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let raw: RawEvent = json::decode(payload, |ctx, de| {
            de::Deserializer::deserialize_map(de, EventVisitor { ctx })
        })?;
        raw.validate()
    }

    /// Encodes as JSON into `buf`; returns the length written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        serde_json_core::to_slice(self, buf).map_err(|_| EncodeError::BufferFull)
    }

    /// Encodes into a fixed-capacity byte vector of [`crate::MAX_PAYLOAD`].
    pub fn to_vec(&self) -> Result<heapless::Vec<u8, { crate::MAX_PAYLOAD }>, EncodeError> {
        serde_json_core::to_vec(self).map_err(|_| EncodeError::BufferFull)
    }
}

impl Serialize for AlarmEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(11))?;
        map.serialize_entry("event_id", &self.event_id)?;
        map.serialize_entry("site", &self.site)?;
        map.serialize_entry("device", &self.device)?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("rule", &self.rule)?;
        map.serialize_entry("level", &self.level)?;
        map.serialize_entry("state", &self.state)?;
        map.serialize_entry("value", &self.value)?;
        map.serialize_entry("threshold", &self.threshold)?;
        map.serialize_entry("ts_ms", &self.ts_ms)?;
        map.serialize_entry("gateway", &self.gateway)?;
        map.end()
    }
}

#[derive(Default)]
struct RawEvent<'a> {
    v: Option<u32>,
    event_id: Option<&'a str>,
    site: Option<&'a str>,
    device: Option<&'a str>,
    kind: Option<&'a str>,
    rule: Option<&'a str>,
    level: Option<&'a str>,
    state: Option<&'a str>,
    value: Option<f32>,
    threshold: Option<f32>,
    ts_ms: Option<u64>,
    gateway: Option<&'a str>,
}

impl RawEvent<'_> {
    fn validate(self) -> Result<AlarmEvent, DecodeError> {
        fn need<T>(v: Option<T>, field: Field) -> Result<T, DecodeError> {
            v.ok_or(DecodeError::new(field, Problem::Missing))
        }
        fn id(v: Option<&str>, field: Field) -> Result<Id, DecodeError> {
            Id::new(need(v, field)?).map_err(|e| DecodeError::new(field, Problem::BadId(e)))
        }
        fn finite(v: Option<f32>, field: Field) -> Result<f32, DecodeError> {
            let v = need(v, field)?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(DecodeError::new(field, Problem::NotFinite))
            }
        }
        let unknown = |field| DecodeError::new(field, Problem::Unknown);
        if let Some(v) = self.v
            && v != crate::CONTRACT_VERSION
        {
            return Err(DecodeError::new(Field::V, Problem::Unsupported));
        }
        let event_id = EventId::new(need(self.event_id, Field::EventId)?)
            .map_err(|e| DecodeError::new(Field::EventId, Problem::BadId(e)))?;
        let site = id(self.site, Field::Site)?;
        let device = id(self.device, Field::Device)?;
        let kind = DeviceKind::parse(need(self.kind, Field::Kind)?).ok_or(unknown(Field::Kind))?;
        let rule = RuleId::new(need(self.rule, Field::Rule)?)
            .map_err(|e| DecodeError::new(Field::Rule, Problem::BadId(e)))?;
        let level = Level::parse(need(self.level, Field::Level)?).ok_or(unknown(Field::Level))?;
        let state =
            AlarmState::parse(need(self.state, Field::State)?).ok_or(unknown(Field::State))?;
        let value = finite(self.value, Field::Value)?;
        let threshold = finite(self.threshold, Field::Threshold)?;
        let ts_ms = need(self.ts_ms, Field::TsMs)?;
        if !(MIN_TS_MS..=MAX_TS_MS).contains(&ts_ms) {
            return Err(DecodeError::new(Field::TsMs, Problem::OutOfRange));
        }
        let gateway = id(self.gateway, Field::Gateway)?;
        Ok(AlarmEvent {
            event_id,
            site,
            device,
            kind,
            rule,
            level,
            state,
            value,
            threshold,
            ts_ms,
            gateway,
        })
    }
}

struct EventVisitor<'c> {
    ctx: &'c Ctx,
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = RawEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an alarm event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEvent<'de>, A::Error> {
        let ctx = self.ctx;
        let mut raw = RawEvent::default();
        // A structural error after a value (`"seq":1.5`, a missing comma)
        // is reported against the field just parsed.
        loop {
            let Some(key) = map.next_key::<&'de str>()? else {
                break;
            };
            let field = match key {
                "v" => Field::V,
                "event_id" => Field::EventId,
                "site" => Field::Site,
                "device" => Field::Device,
                "kind" => Field::Kind,
                "rule" => Field::Rule,
                "level" => Field::Level,
                "state" => Field::State,
                "value" => Field::Value,
                "threshold" => Field::Threshold,
                "ts_ms" => Field::TsMs,
                "gateway" => Field::Gateway,
                _ => {
                    ctx.at(Field::Payload);
                    map.next_value_seed(json::Skip { ctx, depth: 3 })?;
                    continue;
                }
            };
            ctx.at(field);
            let dup = match field {
                Field::V => json::once(&mut raw.v, map.next_value()?),
                Field::EventId => json::once(&mut raw.event_id, map.next_value()?),
                Field::Site => json::once(&mut raw.site, map.next_value()?),
                Field::Device => json::once(&mut raw.device, map.next_value()?),
                Field::Kind => json::once(&mut raw.kind, map.next_value()?),
                Field::Rule => json::once(&mut raw.rule, map.next_value()?),
                Field::Level => json::once(&mut raw.level, map.next_value()?),
                Field::State => json::once(&mut raw.state, map.next_value()?),
                Field::Value => json::once(&mut raw.value, map.next_value()?),
                Field::Threshold => json::once(&mut raw.threshold, map.next_value()?),
                Field::TsMs => json::once(&mut raw.ts_ms, map.next_value()?),
                _ => json::once(&mut raw.gateway, map.next_value()?),
            };
            if dup {
                return Err(ctx.fail(field, Problem::Duplicate));
            }
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;

    const GOOD: &str = r#"{"event_id":"gw-01/s1/gas-0001/gas.lel/7","site":"s1","device":"gas-0001","kind":"gas","rule":"gas.lel","level":"red","state":"raised","value":55.0,"threshold":50.0,"ts_ms":1732300000000,"gateway":"gw-01"}"#;

    fn with(field: &str, value: &str) -> String {
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

    fn err(s: &str) -> DecodeError {
        AlarmEvent::decode(s.as_bytes()).expect_err(s)
    }

    #[test]
    fn decodes_and_round_trips_the_contract_example() {
        let e = AlarmEvent::decode(GOOD.as_bytes()).unwrap();
        assert_eq!(e.level, Level::Red);
        assert_eq!(e.state, AlarmState::Raised);
        assert_eq!(e.value, 55.0);
        assert_eq!(e.event_id.as_str(), "gw-01/s1/gas-0001/gas.lel/7");
        let bytes = e.to_vec().unwrap();
        assert_eq!(core::str::from_utf8(&bytes).unwrap(), GOOD);
        assert_eq!(AlarmEvent::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn builds_stable_event_ids() {
        let g = Id::new("gw-01").unwrap();
        let s = Id::new("s1").unwrap();
        let d = Id::new("gas-0001").unwrap();
        let r = RuleId::new("gas.lel").unwrap();
        let id = EventId::for_transition(&g, &s, &d, &r, 7);
        assert_eq!(id.as_str(), "gw-01/s1/gas-0001/gas.lel/7");
        assert_eq!(EventId::new(id.as_str()).unwrap(), id);
    }

    #[test]
    fn names_every_missing_field() {
        for (key, field) in [
            ("event_id", Field::EventId),
            ("site", Field::Site),
            ("device", Field::Device),
            ("kind", Field::Kind),
            ("rule", Field::Rule),
            ("level", Field::Level),
            ("state", Field::State),
            ("value", Field::Value),
            ("threshold", Field::Threshold),
            ("ts_ms", Field::TsMs),
            ("gateway", Field::Gateway),
        ] {
            assert_eq!(
                err(&without(key)),
                DecodeError::new(field, Problem::Missing),
                "{key}"
            );
        }
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(
            err(&with("level", r#""purple""#)),
            DecodeError::new(Field::Level, Problem::Unknown)
        );
        assert_eq!(
            err(&with("state", r#""open""#)),
            DecodeError::new(Field::State, Problem::Unknown)
        );
        assert_eq!(
            err(&with("kind", r#""smoke""#)),
            DecodeError::new(Field::Kind, Problem::Unknown)
        );
        assert_eq!(
            err(&with("value", "null")),
            DecodeError::new(Field::Value, Problem::NotFinite)
        );
        assert_eq!(
            err(&with("ts_ms", "0")),
            DecodeError::new(Field::TsMs, Problem::OutOfRange)
        );
        assert_eq!(
            err(&with("event_id", r#""a b""#)),
            DecodeError::new(Field::EventId, Problem::BadId(IdError::BadChar))
        );
        assert_eq!(
            err(&with("rule", r#""gas lel""#)),
            DecodeError::new(Field::Rule, Problem::BadId(IdError::BadChar))
        );
        assert_eq!(err(&with("threshold", r#""50""#)).field, Field::Threshold);
        let dup = GOOD.replace(r#""site":"s1""#, r#""site":"s1","site":"s2""#);
        assert_eq!(err(&dup), DecodeError::new(Field::Site, Problem::Duplicate));
        let long = format!("\"{}\"", "e".repeat(MAX_EVENT_ID_LEN + 1));
        assert_eq!(
            err(&with("event_id", &long)),
            DecodeError::new(Field::EventId, Problem::BadId(IdError::TooLong))
        );
    }

    /// The texts that tell a sender what is expected match the checks.
    #[test]
    fn error_texts_match_the_limits() {
        assert!(
            Field::EventId
                .expected()
                .contains(&format!("1-{MAX_EVENT_ID_LEN} ")),
            "{}",
            Field::EventId.expected()
        );
        let day = |ms: u64| ms / 86_400_000;
        // 2000-01-01 and 2200-01-01 in days since 1970.
        assert_eq!((day(MIN_TS_MS), day(MAX_TS_MS)), (10_957, 84_006));
        assert!(Field::TsMs.expected().contains("2000-01-01 to 2200-01-01"));
        let e = AlarmEvent::decode(GOOD.replace("1732300000000", "0").as_bytes()).unwrap_err();
        assert_eq!(e.field, Field::TsMs);
    }
}
