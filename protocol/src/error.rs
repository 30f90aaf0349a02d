//! Decode and encode errors. A decode error always names the field, so the
//! rejection a device maker or an operator reads says what to fix.

use core::fmt;

use crate::{IdError, Metric};

/// A field of a telemetry frame or an alarm event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The payload as a whole (size, JSON syntax, not an object).
    Payload,
    /// `v`, the contract version.
    V,
    /// `device`.
    Device,
    /// `kind`.
    Kind,
    /// `seq`.
    Seq,
    /// `ts_ms`.
    TsMs,
    /// `readings` as a whole.
    Readings,
    /// One reading, `readings.<name>`.
    Reading(Metric),
    /// `faults`.
    Faults,
    /// `dropped`.
    Dropped,
    /// `event_id`.
    EventId,
    /// `site`.
    Site,
    /// `rule`.
    Rule,
    /// `level`.
    Level,
    /// `state`.
    State,
    /// `value`.
    Value,
    /// `threshold`.
    Threshold,
    /// `gateway`.
    Gateway,
}

impl Field {
    /// The JSON key, for fields that have one.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Payload => "payload",
            Self::V => "v",
            Self::Device => "device",
            Self::Kind => "kind",
            Self::Seq => "seq",
            Self::TsMs => "ts_ms",
            Self::Readings | Self::Reading(_) => "readings",
            Self::Faults => "faults",
            Self::Dropped => "dropped",
            Self::EventId => "event_id",
            Self::Site => "site",
            Self::Rule => "rule",
            Self::Level => "level",
            Self::State => "state",
            Self::Value => "value",
            Self::Threshold => "threshold",
            Self::Gateway => "gateway",
        }
    }

    /// What a well-formed value of this field looks like.
    pub const fn expected(self) -> &'static str {
        match self {
            Self::Payload => "a JSON object",
            Self::V => "the contract version 1",
            Self::Device | Self::Site | Self::Gateway => {
                "a string of 1-64 characters [A-Za-z0-9_-]"
            }
            Self::Kind => "one of gas, electrical, water_pressure, crane",
            Self::Seq | Self::Dropped => "an unsigned 32-bit integer",
            Self::TsMs => {
                "Unix milliseconds from 2000-01-01 to 2200-01-01 (in telemetry also 0: no clock)"
            }
            Self::Readings => "an object of known reading names to numbers",
            Self::Reading(_) | Self::Value | Self::Threshold => "a finite number",
            Self::Faults => "an array of fault codes such as \"open_circuit:temp2_c\"",
            Self::EventId => "a string of 1-256 characters [A-Za-z0-9_.:/-]",
            Self::Rule => "a string of 1-32 characters [A-Za-z0-9_.-]",
            Self::Level => "one of blue, yellow, orange, red",
            Self::State => "one of raised, escalated, downgraded, cleared",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reading(m) => write!(f, "readings.{m}"),
            other => f.write_str(other.key()),
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// The payload exceeds [`crate::MAX_PAYLOAD`].
    TooLarge,
    /// Not JSON, or JSON with trailing garbage.
    Malformed,
    /// The value has the wrong JSON type or does not parse as the field's type.
    WrongType,
    /// A required field is absent.
    Missing,
    /// The same key twice.
    Duplicate,
    /// A name (kind, reading, fault code, level, state) that the contract
    /// does not define.
    Unknown,
    /// NaN or infinity.
    NotFinite,
    /// Outside the physical or contract range.
    OutOfRange,
    /// An id that breaks the id rules.
    BadId(IdError),
    /// More entries than the contract allows.
    TooMany,
    /// A contract version this decoder does not speak.
    Unsupported,
}

impl Problem {
    /// A short, stable name, for metric labels (`reason="wrong_type"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::WrongType => "wrong_type",
            Self::Missing => "missing",
            Self::Duplicate => "duplicate_key",
            Self::Unknown => "unknown_name",
            Self::NotFinite => "not_finite",
            Self::OutOfRange => "out_of_range",
            Self::BadId(_) => "bad_id",
            Self::TooMany => "too_many",
            Self::Unsupported => "unsupported_version",
        }
    }
}

/// Why a payload was rejected: the field and the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodeError {
    /// Where.
    pub field: Field,
    /// What.
    pub problem: Problem,
}

impl DecodeError {
    pub(crate) const fn new(field: Field, problem: Problem) -> Self {
        Self { field, problem }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field;
        match self.problem {
            Problem::TooLarge => write!(f, "{field}: larger than {} bytes", crate::MAX_PAYLOAD),
            Problem::Malformed => write!(
                f,
                "{field}: not well-formed JSON; expected {}",
                field.expected()
            ),
            Problem::WrongType => write!(f, "{field}: wrong type; expected {}", field.expected()),
            Problem::Missing => write!(f, "{field}: missing; expected {}", field.expected()),
            Problem::Duplicate => write!(f, "{field}: appears twice"),
            Problem::Unknown => write!(f, "{field}: unknown name; expected {}", field.expected()),
            Problem::NotFinite => write!(f, "{field}: not a finite number"),
            Problem::OutOfRange => match field {
                Field::Reading(m) => {
                    let (lo, hi) = m.range();
                    write!(
                        f,
                        "{field}: outside the physical range {lo}..={hi} {}",
                        m.unit()
                    )
                }
                _ => write!(f, "{field}: out of range; expected {}", field.expected()),
            },
            Problem::BadId(e) => write!(f, "{field}: {e}; expected {}", field.expected()),
            Problem::TooMany => write!(f, "{field}: too many entries"),
            Problem::Unsupported => {
                write!(f, "{field}: unsupported; expected {}", field.expected())
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferFull,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer too small")
    }
}

impl core::error::Error for EncodeError {}
