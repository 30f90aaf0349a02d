//! Fixed-point representation of readings: one signed 16-bit integer per
//! value, `raw = value × 10^decimals`.
//!
//! It is used everywhere a reading leaves the floating-point pipeline: the
//! offline buffer stores it, the Modbus input registers carry it, and the
//! device judges its local alarm on the quantised value, so the device, the
//! gateway (which decodes the JSON of the same value) and a Modbus poller see
//! exactly the same number.
//!
//! Every metric's whole physical range (see `anquan_protocol::Metric::range`)
//! fits, and [`ABSENT`] (`0x8000`, −32768) is below every metric's range, so
//! it safely means "no reading".
//!
//! | metric | decimals | resolution | | metric | decimals | resolution |
//! |---|---|---|---|---|---|---|
//! | `lel_pct` | 2 | 0.01 %LEL | | `load_t` | 1 | 0.1 t |
//! | `co_ppm` | 0 | 1 ppm | | `moment_pct` | 1 | 0.1 % |
//! | `residual_ma` | 0 | 1 mA | | `radius_m` | 2 | 0.01 m |
//! | `temp_c`, `temp1_c`…`temp4_c` | 1 | 0.1 °C | | `height_m` | 1 | 0.1 m |
//! | `current_a` | 0 | 1 A | | `slew_deg` | 1 | 0.1 ° |
//! | `pressure_mpa` | 3 | 0.001 MPa | | `wind_ms` | 2 | 0.01 m/s |
//! | `level_m` | 2 | 0.01 m | | `tilt_deg` | 2 | 0.01 ° |
//! | `alarm_btn`, `pump_on`, `power_off_min` | 0 | 1 | | | | |

use anquan_protocol::Metric;

use crate::math::round_i32;

/// The raw value meaning "no reading" (a faulty or unfitted channel).
pub const ABSENT: i16 = i16::MIN;

/// Decimal places of `metric`'s fixed-point form.
pub const fn decimals(metric: Metric) -> u8 {
    match metric {
        Metric::LelPct => 2,
        Metric::CoPpm => 0,
        Metric::ResidualMa => 0,
        Metric::TempC | Metric::Temp1C | Metric::Temp2C | Metric::Temp3C | Metric::Temp4C => 1,
        Metric::CurrentA => 0,
        Metric::PressureMpa => 3,
        Metric::LevelM => 2,
        Metric::LoadT => 1,
        Metric::MomentPct => 1,
        Metric::RadiusM => 2,
        Metric::HeightM => 1,
        Metric::SlewDeg => 1,
        Metric::WindMs => 2,
        Metric::TiltDeg => 2,
        Metric::AlarmBtn | Metric::PumpOn | Metric::PowerOffMin => 0,
        // Counts, but their thresholds clear at half a point (`>= 0.5`
        // holds one point, `0` clears): one decimal keeps 0.5 exact, and
        // 3276 points in one state is beyond any panel's loop.
        Metric::FirePoints
        | Metric::FaultPoints
        | Metric::IsolatedPoints
        | Metric::SupervisionPoints => 1,
    }
}

/// `10^decimals(metric)`.
pub const fn factor(metric: Metric) -> f32 {
    match decimals(metric) {
        0 => 1.0,
        1 => 10.0,
        2 => 100.0,
        _ => 1000.0,
    }
}

/// Scales any finite value (a threshold, a rate) to the metric's fixed
/// point; `None` when it does not fit or is not finite. [`ABSENT`] is never
/// produced.
pub fn to_raw_any(metric: Metric, value: f32) -> Option<i16> {
    if !value.is_finite() {
        return None;
    }
    let raw = round_i32(value * factor(metric));
    if raw <= i32::from(ABSENT) || raw > i32::from(i16::MAX) {
        return None;
    }
    i16::try_from(raw).ok()
}

/// Scales a reading; `None` when its rounded value is outside the metric's
/// physical range (a value a hair beyond the edge that rounds onto it is
/// kept: it is the edge at this resolution).
pub fn to_raw(metric: Metric, value: f32) -> Option<i16> {
    let raw = to_raw_any(metric, value)?;
    metric.in_range(from_raw_any(metric, raw)).then_some(raw)
}

/// The value of a raw number, without a range check ([`ABSENT`] included).
pub fn from_raw_any(metric: Metric, raw: i16) -> f32 {
    // Both operands are exact, and IEEE division is correctly rounded, so
    // 100 / 1000 gives the same f32 as the literal 0.1.
    f32::from(raw) / factor(metric)
}

/// The reading of a raw number; `None` for [`ABSENT`] or outside the range.
pub fn from_raw(metric: Metric, raw: i16) -> Option<f32> {
    if raw == ABSENT {
        return None;
    }
    let v = from_raw_any(metric, raw);
    metric.in_range(v).then_some(v)
}

/// A reading rounded to its fixed-point resolution; `None` outside the range.
pub fn quantize(metric: Metric, value: f32) -> Option<f32> {
    to_raw(metric, value).map(|raw| from_raw_any(metric, raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_range_fits_above_the_sentinel() {
        for &m in Metric::ALL {
            let (lo, hi) = m.range();
            let (rlo, rhi) = (lo * factor(m), hi * factor(m));
            assert!(rlo > f32::from(ABSENT) && rhi <= f32::from(i16::MAX), "{m}");
            assert!(to_raw(m, lo).is_some() && to_raw(m, hi).is_some(), "{m}");
        }
    }

    #[test]
    fn exact_decimals_round_trip() {
        assert_eq!(to_raw(Metric::PressureMpa, 0.1), Some(100));
        assert_eq!(from_raw(Metric::PressureMpa, 100), Some(0.1));
        assert_eq!(quantize(Metric::LelPct, 12.345_6), Some(12.35));
        assert_eq!(quantize(Metric::LelPct, 100.004), Some(100.0));
        assert_eq!(quantize(Metric::LelPct, 100.006), None);
        assert_eq!(to_raw(Metric::WindMs, -0.004), Some(0));
        assert_eq!(to_raw(Metric::WindMs, -0.006), None);
        assert_eq!(to_raw(Metric::WindMs, f32::NAN), None);
        assert_eq!(from_raw(Metric::WindMs, ABSENT), None);
        assert_eq!(from_raw(Metric::WindMs, -1), None);
        assert_eq!(to_raw_any(Metric::PressureMpa, -0.05), Some(-50));
        assert_eq!(to_raw_any(Metric::PressureMpa, 40.0), None);
    }

    proptest! {
        #[test]
        fn raw_values_round_trip(idx in 0usize..Metric::ALL.len(), raw in any::<i16>()) {
            let m = Metric::ALL[idx];
            if let Some(v) = from_raw(m, raw) {
                prop_assert_eq!(to_raw(m, v), Some(raw));
            }
        }

        #[test]
        fn quantize_never_panics_and_stays_in_range(idx in 0usize..Metric::ALL.len(), v in any::<f32>()) {
            let m = Metric::ALL[idx];
            if let Some(q) = quantize(m, v) {
                prop_assert!(m.in_range(q));
                prop_assert!((q - v).abs() <= 0.5 / factor(m) + v.abs() * f32::EPSILON * 4.0);
            }
        }
    }
}
