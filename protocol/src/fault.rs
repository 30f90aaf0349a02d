//! Sensor fault codes.
//!
//! On the wire a fault is a string: the code alone (`"self_test"`) or the code
//! and the reading it affects (`"open_circuit:temp2_c"`). A faulty channel is
//! reported as a fault and left out of `readings`; a device never sends a
//! made-up value for it.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Metric;

macro_rules! codes {
    ($( $(#[$doc:meta])* $var:ident = $name:literal; )*) => {
        /// What went wrong with a sensor or the device.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum FaultCode {
            $( $(#[$doc])* $var, )*
        }

        impl FaultCode {
            /// Every code, in discriminant order.
            pub const ALL: &'static [Self] = &[$(Self::$var),*];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$var => $name,)* }
            }
        }
    };
}

codes! {
    /// Sensor wire broken (no current in a 4–20 mA loop, open thermocouple).
    OpenCircuit = "open_circuit";
    /// Sensor wire shorted.
    ShortCircuit = "short_circuit";
    /// Signal outside the sensor's valid range (a 4–20 mA loop below 3.6 mA
    /// or above 21 mA, per NAMUR NE 43).
    OutOfRange = "out_of_range";
    /// Value has not moved for longer than the sensor's noise allows.
    Stuck = "stuck";
    /// Power-on or periodic self-test failed.
    SelfTest = "self_test";
    /// No answer from the sensor on its bus.
    Comm = "comm";
    /// Supply voltage low or mains lost (running on battery).
    Power = "power";
    /// Enclosure opened or device moved.
    Tamper = "tamper";
    /// Calibration missing, invalid or expired.
    Calibration = "calibration";
}

impl FaultCode {
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for FaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault, optionally tied to the reading it affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fault {
    /// What went wrong.
    pub code: FaultCode,
    /// Which reading is affected; `None` for the whole device.
    pub metric: Option<Metric>,
}

impl Fault {
    /// A device-wide fault.
    pub const fn device(code: FaultCode) -> Self {
        Self { code, metric: None }
    }

    /// A fault on one reading.
    pub const fn on(code: FaultCode, metric: Metric) -> Self {
        Self {
            code,
            metric: Some(metric),
        }
    }

    /// Parses `code` or `code:metric`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None => FaultCode::parse(s).map(Self::device),
            Some((c, m)) => Some(Self::on(FaultCode::parse(c)?, Metric::parse(m)?)),
        }
    }

    /// Writes the wire form into a fixed buffer.
    pub fn to_wire(&self) -> heapless::String<40> {
        let mut s = heapless::String::new();
        // Longest code (13) + ':' + longest metric (12) fits in 40.
        let _ = s.push_str(self.code.as_str());
        if let Some(m) = self.metric {
            let _ = s.push(':');
            let _ = s.push_str(m.as_str());
        }
        s
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())?;
        if let Some(m) = self.metric {
            write!(f, ":{m}")?;
        }
        Ok(())
    }
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.to_wire().as_str())
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Fault;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fault code such as `open_circuit:temp2_c`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Fault, E> {
                Fault::parse(v).ok_or_else(|| E::unknown_variant(v, &[]))
            }
        }
        d.deserialize_str(V)
    }
}

/// A set of fault codes, as a bit mask; used by fault rules to say which
/// codes they react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FaultSet(u16);

impl FaultSet {
    /// No codes.
    pub const EMPTY: Self = Self(0);
    /// Every code.
    pub const ALL: Self = Self((1 << FaultCode::ALL.len()) - 1);

    /// Adds a code.
    pub const fn with(self, code: FaultCode) -> Self {
        Self(self.0 | (1 << code as u16))
    }

    /// Whether the set holds `code`.
    pub const fn contains(self, code: FaultCode) -> bool {
        self.0 & (1 << code as u16) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The codes in the set, in discriminant order.
    pub fn iter(self) -> impl Iterator<Item = FaultCode> {
        FaultCode::ALL
            .iter()
            .copied()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<FaultCode> for FaultSet {
    fn from_iter<I: IntoIterator<Item = FaultCode>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_round_trips() {
        for &c in FaultCode::ALL {
            let f = Fault::device(c);
            assert_eq!(Fault::parse(&f.to_wire()), Some(f));
            for &m in Metric::ALL {
                let f = Fault::on(c, m);
                assert_eq!(Fault::parse(&f.to_wire()), Some(f));
            }
        }
        assert_eq!(Fault::parse("open_circuit:nope"), None);
        assert_eq!(Fault::parse("melted"), None);
        assert_eq!(Fault::parse(""), None);
    }

    #[test]
    fn fault_sets() {
        let s = FaultSet::EMPTY.with(FaultCode::Stuck).with(FaultCode::Comm);
        assert!(s.contains(FaultCode::Stuck));
        assert!(!s.contains(FaultCode::Tamper));
        assert_eq!(s.iter().count(), 2);
        assert!(FaultCode::ALL.iter().all(|c| FaultSet::ALL.contains(*c)));
        assert!(FaultSet::EMPTY.is_empty());
    }
}
