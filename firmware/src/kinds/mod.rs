//! One sensor front end per device kind, each modelling a real sensor family
//! on the part drivers of [`crate::drivers`]. Each implements
//! [`crate::Sensors`]; its config struct holds the per-channel calibration.
//!
//! | kind | front end | parts |
//! |---|---|---|
//! | `gas` | [`gas::GasDetector`] | catalytic pellistor bridge (%LEL) + electrochemical CO cell, both on an ADS1115 |
//! | `electrical` | [`electrical::ElectricalMonitor`] | residual-current transformer + RMS converter on an analog input; up to 4 PT100 probes on MAX31865s |
//! | `water_pressure` | [`water::PressureMonitor`] | 4–20 mA pressure transmitter (+ optional 4–20 mA hydrostatic level transmitter) |
//! | `crane` | [`crane::CraneMonitor`] | load pin on an HX711, SSI encoders for radius, height and slew, 4–20 mA cup anemometer, SCL3300 inclinometer; moment from the load chart |

pub mod crane;
pub mod electrical;
pub mod gas;
pub mod water;

/// Pushes `fault` unless the list is full or already holds it.
pub(crate) fn push_fault(faults: &mut anquan_protocol::Faults, fault: anquan_protocol::Fault) {
    if !faults.contains(&fault) {
        let _ = faults.push(fault);
    }
}
