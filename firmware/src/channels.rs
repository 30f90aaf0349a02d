//! The channels of each device kind: the readings it measures, in the fixed
//! order used by the compact frame, the Modbus register maps and the drivers.
//!
//! | kind | channels (index order) |
//! |---|---|
//! | `gas` | `lel_pct`, `co_ppm`, `alarm_btn` |
//! | `electrical` | `residual_ma`, `temp1_c`, `temp2_c`, `temp3_c`, `temp4_c`, `alarm_btn` |
//! | `water_pressure` | `pressure_mpa`, `level_m` |
//! | `crane` | `load_t`, `moment_pct`, `radius_m`, `height_m`, `slew_deg`, `wind_ms`, `tilt_deg` |
//!
//! `alarm_btn` is the one-key alarm button (一键报警, seed 004 L270), fitted
//! to the kinds used in elderly-care homes; the device fills it from the
//! button pin, not from a sensor.

use anquan_protocol::{DeviceKind, Metric};

/// Most channels of any kind; sizes the compact frame.
pub const MAX_CHANNELS: usize = 8;

const GAS: &[Metric] = &[Metric::LelPct, Metric::CoPpm, Metric::AlarmBtn];
const ELECTRICAL: &[Metric] = &[
    Metric::ResidualMa,
    Metric::Temp1C,
    Metric::Temp2C,
    Metric::Temp3C,
    Metric::Temp4C,
    Metric::AlarmBtn,
];
const WATER: &[Metric] = &[Metric::PressureMpa, Metric::LevelM];
const CRANE: &[Metric] = &[
    Metric::LoadT,
    Metric::MomentPct,
    Metric::RadiusM,
    Metric::HeightM,
    Metric::SlewDeg,
    Metric::WindMs,
    Metric::TiltDeg,
];

/// A fire panel's point counts: a transmission device or a panel's Modbus
/// interface serves them (our firmware does not sample a panel).
const FIRE_PANEL: &[Metric] = &[
    Metric::FirePoints,
    Metric::FaultPoints,
    Metric::IsolatedPoints,
    Metric::SupervisionPoints,
];

/// The channels of `kind`, in index order.
pub const fn of(kind: DeviceKind) -> &'static [Metric] {
    match kind {
        DeviceKind::Gas => GAS,
        DeviceKind::Electrical => ELECTRICAL,
        DeviceKind::WaterPressure => WATER,
        DeviceKind::Crane => CRANE,
        DeviceKind::FirePanel => FIRE_PANEL,
    }
}

/// The index of `metric` among the channels of `kind`.
pub fn index(kind: DeviceKind, metric: Metric) -> Option<usize> {
    of(kind).iter().position(|m| *m == metric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_fits_and_has_no_duplicates() {
        for kind in DeviceKind::ALL {
            let ch = of(kind);
            assert!(!ch.is_empty() && ch.len() <= MAX_CHANNELS, "{kind}");
            for (i, m) in ch.iter().enumerate() {
                assert_eq!(index(kind, *m), Some(i), "{kind}: {m} twice");
            }
        }
        assert_eq!(index(DeviceKind::Gas, Metric::WindMs), None);
    }
}
