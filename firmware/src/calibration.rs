//! Two-point (zero/span) calibration of one channel.
//!
//! Every channel converts its raw signal to engineering units with the
//! part's nominal transfer function (bridge sensitivity, loop range, RTD
//! curve, counts per tonne), then applies a [`Calibration`]:
//! `value = (nominal − zero) × span`. A zero calibration (clean air, no
//! load, trolley at the reference stop) sets `zero` to the nominal reading
//! then; a span calibration with a known reference (span gas, test weight)
//! sets `span` so that the reference reads right. [`Calibration::from_points`]
//! does both from the two readings.

use core::fmt;

use serde::{Deserialize, Serialize};

/// The smallest and largest span factor accepted. A sensor that needs more
/// correction than 5× (or less than 1/5) has failed or is the wrong part;
/// calibrating it would hide that.
pub const SPAN_LIMITS: (f32, f32) = (0.2, 5.0);

/// Zero offset and span factor of one channel, in engineering units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Nominal reading at the zero point, subtracted first.
    pub zero: f32,
    /// Factor applied after the zero offset (1 = the part's nominal gain).
    pub span: f32,
}

impl Default for Calibration {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// Why a calibration is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrationError {
    /// `zero` or `span` is NaN or infinite.
    NotFinite,
    /// `span` outside [`SPAN_LIMITS`].
    SpanOutOfLimits,
    /// The reference reading equals the zero reading (no signal).
    NoSignal,
}

impl fmt::Display for CalibrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFinite => "must be a finite number",
            Self::SpanOutOfLimits => "span must be between 0.2 and 5 (the sensor needs replacing)",
            Self::NoSignal => "the reference reading equals the zero reading",
        })
    }
}

impl core::error::Error for CalibrationError {}

impl Calibration {
    /// No correction.
    pub const IDENTITY: Self = Self {
        zero: 0.0,
        span: 1.0,
    };

    /// Applies the calibration to a nominal reading.
    #[inline]
    pub fn apply(&self, nominal: f32) -> f32 {
        (nominal - self.zero) * self.span
    }

    /// The nominal reading that gives `value` (for simulators and test
    /// rigs driving a part from a physical value).
    #[inline]
    pub fn invert(&self, value: f32) -> f32 {
        value / self.span + self.zero
    }

    /// The calibration from a two-point procedure: the nominal reading at
    /// zero, and the nominal reading with a known `reference` applied.
    pub fn from_points(
        at_zero: f32,
        at_reference: f32,
        reference: f32,
    ) -> Result<Self, CalibrationError> {
        if !(at_zero.is_finite() && at_reference.is_finite() && reference.is_finite()) {
            return Err(CalibrationError::NotFinite);
        }
        let signal = at_reference - at_zero;
        if signal == 0.0 {
            return Err(CalibrationError::NoSignal);
        }
        let c = Self {
            zero: at_zero,
            span: reference / signal,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks both numbers are finite and the span is within [`SPAN_LIMITS`].
    pub fn validate(&self) -> Result<(), CalibrationError> {
        if !(self.zero.is_finite() && self.span.is_finite()) {
            return Err(CalibrationError::NotFinite);
        }
        if !(SPAN_LIMITS.0..=SPAN_LIMITS.1).contains(&self.span) {
            return Err(CalibrationError::SpanOutOfLimits);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_point_calibration() {
        // A pellistor reading 1.2 %LEL in clean air and 48 %LEL on 50 %LEL
        // span gas.
        let c = Calibration::from_points(1.2, 48.0, 50.0).unwrap();
        assert!((c.apply(1.2)).abs() < 1e-6);
        assert!((c.apply(48.0) - 50.0).abs() < 1e-4);
        assert!((c.span - 50.0 / 46.8).abs() < 1e-6);
        assert_eq!(Calibration::IDENTITY.apply(7.5), 7.5);
        assert!((c.apply(c.invert(33.0)) - 33.0).abs() < 1e-4);
    }

    #[test]
    fn refuses_what_would_hide_a_dead_sensor() {
        assert_eq!(
            Calibration::from_points(0.0, 5.0, 50.0),
            Err(CalibrationError::SpanOutOfLimits)
        );
        assert_eq!(
            Calibration::from_points(3.0, 3.0, 50.0),
            Err(CalibrationError::NoSignal)
        );
        assert_eq!(
            Calibration::from_points(f32::NAN, 3.0, 50.0),
            Err(CalibrationError::NotFinite)
        );
        let c = Calibration {
            zero: 0.0,
            span: -1.0,
        };
        assert_eq!(c.validate(), Err(CalibrationError::SpanOutOfLimits));
    }
}
