//! The hardware a board provides, beyond the embedded-hal traits.
//!
//! Drivers use `embedded_hal::{i2c::I2c, spi::SpiDevice, digital::{InputPin,
//! OutputPin}, delay::DelayNs}` directly. embedded-hal 1.0 has no ADC trait,
//! so analog inputs go through [`AnalogInput`]; an optional real-time clock
//! goes through [`Clock`]. [`NoPin`] and [`NoClock`] stand in for parts a
//! board does not fit.

use core::convert::Infallible;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

/// One-shot reads of analog inputs: 4–20 mA loops across a shunt, an RMS
/// converter's output, a winding check.
///
/// The board scales its ADC (reference, resolution, divider) to microvolts at
/// the input pin, so drivers stay independent of the converter.
pub trait AnalogInput {
    /// The board's error (a bus error of an external ADC, a timeout).
    type Error: core::fmt::Debug;

    /// Converts `channel` once and returns the voltage in microvolts.
    fn read_microvolts(&mut self, channel: u8) -> Result<i32, Self::Error>;
}

impl<T: AnalogInput + ?Sized> AnalogInput for &mut T {
    type Error = T::Error;
    fn read_microvolts(&mut self, channel: u8) -> Result<i32, Self::Error> {
        T::read_microvolts(self, channel)
    }
}

/// Wall-clock time for the frames' `ts_ms`.
///
/// `uptime_ms` is the monotonic time the board passed to
/// [`crate::Device::step`], so a board whose clock is "set once by SNTP, then
/// counted" can answer without reading any hardware, and a simulator answers
/// `epoch + uptime_ms`.
pub trait Clock {
    /// Unix time in ms, or `None` when the clock is not set. A value outside
    /// the contract's 2000–2200 window is treated as not set.
    fn unix_ms(&mut self, uptime_ms: u64) -> Option<u64>;
}

/// No real-time clock: frames carry `ts_ms = 0` ("no clock").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoClock;

impl Clock for NoClock {
    fn unix_ms(&mut self, _uptime_ms: u64) -> Option<u64> {
        None
    }
}

/// A clock set once: Unix time = `epoch_ms + uptime_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochClock {
    /// Unix ms at uptime 0.
    pub epoch_ms: u64,
}

impl Clock for EpochClock {
    fn unix_ms(&mut self, uptime_ms: u64) -> Option<u64> {
        self.epoch_ms.checked_add(uptime_ms)
    }
}

/// An unfitted pin: writes do nothing, reads are low (a button that is never
/// pressed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoPin;

impl ErrorType for NoPin {
    type Error = Infallible;
}

impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl InputPin for NoPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(false)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(true)
    }
}

/// Inverts an input: for a button wired to ground with a pull-up, so that
/// "pressed" reads high as the device expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActiveLow<P>(pub P);

impl<P: ErrorType> ErrorType for ActiveLow<P> {
    type Error = P::Error;
}

impl<P: InputPin> InputPin for ActiveLow<P> {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        self.0.is_low()
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        self.0.is_high()
    }
}

/// An analog input with fixed per-channel results, for unit tests; a
/// channel beyond the slice fails.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedAdc([Result<i32, ()>; 4]);

#[cfg(test)]
impl FixedAdc {
    /// Channels 0.. get `uv` in order.
    pub(crate) fn of(uv: &[Result<i32, ()>]) -> Self {
        let mut a = [Err(()); 4];
        a[..uv.len()].copy_from_slice(uv);
        Self(a)
    }
}

#[cfg(test)]
impl AnalogInput for FixedAdc {
    type Error = ();
    fn read_microvolts(&mut self, channel: u8) -> Result<i32, ()> {
        self.0.get(usize::from(channel)).copied().unwrap_or(Err(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    #[test]
    fn active_low_inverts() {
        let mut pin = Mock::new(&[Transaction::get(State::Low), Transaction::get(State::High)]);
        let mut b = ActiveLow(pin.clone());
        assert!(b.is_high().unwrap());
        assert!(b.is_low().unwrap());
        pin.done();
    }

    #[test]
    fn stand_ins() {
        assert_eq!(NoClock.unix_ms(5), None);
        let mut c = EpochClock {
            epoch_ms: 1_700_000_000_000,
        };
        assert_eq!(c.unix_ms(5), Some(1_700_000_000_005));
        assert!(!NoPin.is_high().unwrap());
    }
}
