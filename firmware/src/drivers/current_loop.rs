//! 2-wire 4–20 mA transmitters (pressure, level, wind) read as the voltage
//! across a precision shunt, with NAMUR NE 43 signal classification.
//!
//! NE 43 ("Standardisation of the signal level for the failure information
//! of digital transmitters"): 3.8–20.5 mA carries a measurement (4–20 mA
//! linear, the margins are over/under-range saturation); a current ≤ 3.6 mA
//! or ≥ 21 mA signals a transmitter failure. A broken wire gives no current
//! at all. So:
//!
//! | loop current | outcome |
//! |---|---|
//! | < 1.0 mA | fault `open_circuit` (no loop current: wire break, no supply) |
//! | 1.0 mA to < 3.6 mA | fault `out_of_range` (NE 43 downscale failure signal) |
//! | 3.6 mA to 4 mA | the range's lower value (saturated below range) |
//! | 4 mA to 20 mA | linear between the range's lower and upper values |
//! | 20 mA to 21 mA | the range's upper value (saturated above range) |
//! | > 21.0 mA | fault `out_of_range` (NE 43 upscale failure signal, or a shorted loop) |
//!
//! A saturated reading is the transmitter's own statement "at least / at
//! most this", not a made-up value.

use anquan_protocol::FaultCode;
use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::hal::AnalogInput;
use crate::sensors::ChannelSample;

/// Below this the loop carries no current: open circuit.
pub const OPEN_BELOW_MA: f32 = 1.0;
/// NE 43: at or below 3.6 mA is a failure signal (strictly below here, so a
/// transmitter sitting exactly at 3.6 mA saturation is still a reading).
pub const FAIL_LOW_MA: f32 = 3.6;
/// NE 43: above 21 mA is a failure signal.
pub const FAIL_HIGH_MA: f32 = 21.0;

/// One 4–20 mA input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    /// The analog input channel across the shunt.
    pub channel: u8,
    /// Shunt resistance, ohms (250 Ω gives the classic 1–5 V).
    pub shunt_ohms: f32,
    /// Engineering value at 4 mA.
    pub at_4ma: f32,
    /// Engineering value at 20 mA.
    pub at_20ma: f32,
    /// Zero/span trim in engineering units.
    #[serde(default)]
    pub calibration: Calibration,
}

impl LoopConfig {
    /// A transmitter ranged `at_4ma..at_20ma` on `channel` across 250 Ω.
    pub const fn new(channel: u8, at_4ma: f32, at_20ma: f32) -> Self {
        Self {
            channel,
            shunt_ohms: 250.0,
            at_4ma,
            at_20ma,
            calibration: Calibration::IDENTITY,
        }
    }

    /// Checks the shunt, the range and the calibration; names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(self.shunt_ohms.is_finite() && self.shunt_ohms > 0.0) {
            return Err(("shunt_ohms", "must be a positive number"));
        }
        if !(self.at_4ma.is_finite() && self.at_20ma.is_finite()) || self.at_4ma == self.at_20ma {
            return Err(("at_20ma", "the range must be two different finite numbers"));
        }
        self.calibration
            .validate()
            .map_err(|_| ("calibration", "must be finite with span between 0.2 and 5"))
    }

    /// The loop current for a shunt voltage.
    pub fn milliamps(&self, microvolts: i32) -> f32 {
        microvolts as f32 / self.shunt_ohms / 1000.0
    }

    /// Classifies a loop current and scales a valid one.
    pub fn classify(&self, ma: f32) -> ChannelSample {
        if !ma.is_finite() {
            return ChannelSample::Fault(FaultCode::OutOfRange);
        }
        if ma < OPEN_BELOW_MA {
            return ChannelSample::Fault(FaultCode::OpenCircuit);
        }
        if !(FAIL_LOW_MA..=FAIL_HIGH_MA).contains(&ma) {
            return ChannelSample::Fault(FaultCode::OutOfRange);
        }
        let fraction = ((ma - 4.0) / 16.0).clamp(0.0, 1.0);
        let nominal = self.at_4ma + fraction * (self.at_20ma - self.at_4ma);
        ChannelSample::Value(self.calibration.apply(nominal))
    }

    /// Reads and classifies the loop; a failed conversion is `comm`.
    pub fn read<A: AnalogInput>(&self, adc: &mut A) -> ChannelSample {
        match adc.read_microvolts(self.channel) {
            Ok(uv) => self.classify(self.milliamps(uv)),
            Err(_) => ChannelSample::Fault(FaultCode::Comm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::FixedAdc;

    const PRESSURE: LoopConfig = LoopConfig::new(3, 0.0, 1.6);

    fn at(ma: f32) -> ChannelSample {
        PRESSURE.classify(ma)
    }

    #[test]
    fn ne43_bands() {
        assert_eq!(at(0.0), ChannelSample::Fault(FaultCode::OpenCircuit));
        assert_eq!(at(0.99), ChannelSample::Fault(FaultCode::OpenCircuit));
        assert_eq!(at(1.0), ChannelSample::Fault(FaultCode::OutOfRange));
        assert_eq!(at(3.59), ChannelSample::Fault(FaultCode::OutOfRange));
        assert_eq!(at(3.6), ChannelSample::Value(0.0));
        assert_eq!(at(3.9), ChannelSample::Value(0.0));
        assert_eq!(at(4.0), ChannelSample::Value(0.0));
        assert_eq!(at(12.0), ChannelSample::Value(0.8));
        assert_eq!(at(20.0), ChannelSample::Value(1.6));
        assert_eq!(at(20.9), ChannelSample::Value(1.6));
        assert_eq!(at(21.0), ChannelSample::Value(1.6));
        assert_eq!(at(21.01), ChannelSample::Fault(FaultCode::OutOfRange));
        assert_eq!(at(f32::NAN), ChannelSample::Fault(FaultCode::OutOfRange));
    }

    #[test]
    fn shunt_voltage_to_current_and_calibration() {
        // 12 mA across 250 Ω = 3 V.
        // Only channel 3 answers.
        let mut adc = FixedAdc::of(&[Err(()), Err(()), Err(()), Ok(3_000_000)]);
        assert_eq!(PRESSURE.read(&mut adc), ChannelSample::Value(0.8));
        let trimmed = LoopConfig {
            calibration: Calibration {
                zero: 0.02,
                span: 1.0,
            },
            ..PRESSURE
        };
        let ChannelSample::Value(v) = trimmed.read(&mut adc) else {
            panic!()
        };
        assert!((v - 0.78).abs() < 1e-6);
        let mut broken = FixedAdc::of(&[]);
        assert_eq!(
            PRESSURE.read(&mut broken),
            ChannelSample::Fault(FaultCode::Comm)
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = PRESSURE;
        c.shunt_ohms = 0.0;
        assert_eq!(c.validate().unwrap_err().0, "shunt_ohms");
        let mut c = PRESSURE;
        c.at_20ma = 0.0;
        assert_eq!(c.validate().unwrap_err().0, "at_20ma");
        assert!(PRESSURE.validate().is_ok());
    }
}
