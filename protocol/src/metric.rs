//! Reading names. Each name carries its unit, so a value is never ambiguous.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! metrics {
    ($( $(#[$doc:meta])* $var:ident = $name:literal, $unit:literal, [$lo:expr, $hi:expr]; )*) => {
        /// A reading name of the wire contract.
        ///
        /// The physical range is what a real sensor of this kind can report;
        /// a value outside it is a broken sensor or a forged frame, and the
        /// decoder rejects it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Metric {
            $( $(#[$doc])* $var, )*
        }

        impl Metric {
            /// Every metric, in wire order.
            pub const ALL: &'static [Self] = &[$(Self::$var),*];

            /// The wire name (`lel_pct`, `pressure_mpa`, …).
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$var => $name,)* }
            }

            /// The unit, for people (`%LEL`, `MPa`, …).
            pub const fn unit(self) -> &'static str {
                match self { $(Self::$var => $unit,)* }
            }

            /// The inclusive physical range `(min, max)`.
            pub const fn range(self) -> (f32, f32) {
                match self { $(Self::$var => ($lo, $hi),)* }
            }
        }
    };
}

metrics! {
    /// Combustible gas, percent of the lower explosive limit.
    LelPct = "lel_pct", "%LEL", [0.0, 100.0];
    /// Carbon monoxide, parts per million.
    CoPpm = "co_ppm", "ppm", [0.0, 10_000.0];
    /// Residual (earth-leakage) current, milliamperes.
    ResidualMa = "residual_ma", "mA", [0.0, 10_000.0];
    /// A single temperature, degrees Celsius.
    TempC = "temp_c", "°C", [-50.0, 400.0];
    /// Cable temperature channel 1, degrees Celsius.
    Temp1C = "temp1_c", "°C", [-50.0, 400.0];
    /// Cable temperature channel 2, degrees Celsius.
    Temp2C = "temp2_c", "°C", [-50.0, 400.0];
    /// Cable temperature channel 3, degrees Celsius.
    Temp3C = "temp3_c", "°C", [-50.0, 400.0];
    /// Cable temperature channel 4, degrees Celsius.
    Temp4C = "temp4_c", "°C", [-50.0, 400.0];
    /// Load current, amperes.
    CurrentA = "current_a", "A", [0.0, 10_000.0];
    /// Pipe-network pressure, megapascals (gauge; slightly negative = vacuum).
    PressureMpa = "pressure_mpa", "MPa", [-0.1, 25.0];
    /// Water level in a tank or pool, metres.
    LevelM = "level_m", "m", [0.0, 100.0];
    /// Hook load, tonnes.
    LoadT = "load_t", "t", [0.0, 1_000.0];
    /// Load moment, percent of the rated moment at the current radius.
    MomentPct = "moment_pct", "%", [0.0, 500.0];
    /// Trolley radius (working amplitude), metres.
    RadiusM = "radius_m", "m", [0.0, 150.0];
    /// Hook height, metres (negative below the crane base).
    HeightM = "height_m", "m", [-200.0, 1_000.0];
    /// Slew angle, degrees (may be cumulative, for cable-twist limits).
    SlewDeg = "slew_deg", "°", [-1_080.0, 1_080.0];
    /// Wind speed, metres per second.
    WindMs = "wind_ms", "m/s", [0.0, 100.0];
    /// Tower tilt from vertical (magnitude), degrees.
    TiltDeg = "tilt_deg", "°", [0.0, 90.0];
    /// One-key alarm button: 1 pressed, 0 released (extension of v1).
    AlarmBtn = "alarm_btn", "", [0.0, 1.0];
    /// Fire pump running contact: 1 running, 0 stopped (extension of v1).
    PumpOn = "pump_on", "", [0.0, 1.0];
    /// Planned power-off, minutes (extension of v1): the device is about to
    /// be switched off on purpose for this long (a crane keyed off after
    /// work, a venue closing for the night) and says so in its last frame;
    /// its silence is not judged until then. At most 14 days, so it fits the
    /// devices' 16-bit fixed point.
    PowerOffMin = "power_off_min", "min", [0.0, 20_160.0];
    /// Fire panel (v1 addition; the four counts fit a 16-bit register at
    /// one decimal, so a threshold can clear at half a point; a source that
    /// counts more than 3000 in one state reports 3000, which alarms the
    /// same): points (addressed detectors, call points,
    /// modules) in fire alarm (火警), or 1 when the panel reports a fire
    /// without naming the point.
    FirePoints = "fire_points", "", [0.0, 3_000.0];
    /// Fire panel (v1 addition): points and panel parts in fault (故障:
    /// a detector, a loop, the panel's power or bus).
    FaultPoints = "fault_points", "", [0.0, 3_000.0];
    /// Fire panel (v1 addition): points isolated (屏蔽) by an operator;
    /// they cannot alarm.
    IsolatedPoints = "isolated_points", "", [0.0, 3_000.0];
    /// Fire panel (v1 addition): points giving a supervisory signal (监管:
    /// a valve closed, a pump or damper in an abnormal state).
    SupervisionPoints = "supervision_points", "", [0.0, 3_000.0];
}

impl Metric {
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.as_str() == s)
    }

    /// Whether `v` is finite and inside the physical range.
    pub fn in_range(self, v: f32) -> bool {
        let (lo, hi) = self.range();
        v.is_finite() && v >= lo && v <= hi
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Metric {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::parse(s).ok_or(())
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Metric;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a reading name such as `lel_pct`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Metric, E> {
                Metric::parse(v).ok_or_else(|| E::unknown_variant(v, &[]))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(Metric::parse(m.as_str()), Some(*m));
            assert_eq!(*m as usize, i, "ALL is in discriminant order");
            let (lo, hi) = m.range();
            assert!(lo < hi);
        }
        assert_eq!(Metric::parse("lel"), None);
    }

    #[test]
    fn range_check_rejects_non_finite_and_outside() {
        assert!(Metric::LelPct.in_range(0.0));
        assert!(Metric::LelPct.in_range(100.0));
        assert!(!Metric::LelPct.in_range(100.5));
        assert!(!Metric::LelPct.in_range(-0.1));
        assert!(!Metric::LelPct.in_range(f32::NAN));
        assert!(!Metric::LelPct.in_range(f32::INFINITY));
        assert!(Metric::PressureMpa.in_range(-0.05));
    }
}
