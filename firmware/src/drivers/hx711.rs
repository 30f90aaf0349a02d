//! Avia Semiconductor HX711: 24-bit ADC for strain-gauge load cells, read by
//! bit-banging two GPIOs.
//!
//! Datasheet behaviour relied on (HX711 datasheet, "Serial Interface"):
//! * DOUT high = no data ready; DOUT low = a conversion is ready. At
//!   RATE = low the part converts at 10 SPS, so data is ready at least every
//!   100 ms.
//! * Each positive PD_SCK pulse shifts one bit out on DOUT, MSB first;
//!   24 pulses give a 24-bit two's-complement code. The 25th pulse selects
//!   channel A, gain 128 (±20 mV full scale at AVDD = 5 V) for the next
//!   conversion and pulls DOUT high.
//! * PD_SCK high time 0.2–50 µs; high for more than 60 µs powers the part
//!   down. (Keep interrupts short while reading.)
//! * An input beyond full scale saturates at 0x7FFFFF / 0x800000.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};

/// Most positive code (saturation).
pub const MAX_CODE: i32 = 0x7F_FFFF;
/// Most negative code (saturation).
pub const MIN_CODE: i32 = -0x80_0000;
/// Polls of DOUT while waiting for data, 10 ms apart: 120 ms covers one
/// 10 SPS conversion period with margin.
const READY_POLLS: u8 = 12;
const READY_POLL_MS: u32 = 10;
/// Half a PD_SCK period; well inside 0.2–50 µs.
const HALF_CLOCK_US: u32 = 1;

/// Driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A GPIO access failed.
    Pin,
    /// DOUT never went low: the part is unpowered, powered down or absent.
    NotReady,
}

/// An HX711 on a clock output and a data input.
#[derive(Debug)]
pub struct Hx711<CLK, DT> {
    clk: CLK,
    dout: DT,
}

impl<CLK: OutputPin, DT: InputPin> Hx711<CLK, DT> {
    /// The part on `clk` (PD_SCK) and `dout` (DOUT).
    pub const fn new(clk: CLK, dout: DT) -> Self {
        Self { clk, dout }
    }

    /// Waits (up to 120 ms) for a conversion to be ready.
    pub fn wait_ready(&mut self, delay: &mut impl DelayNs) -> Result<(), Error> {
        for poll in 0..READY_POLLS {
            if self.dout.is_low().map_err(|_| Error::Pin)? {
                return Ok(());
            }
            if poll + 1 < READY_POLLS {
                delay.delay_ms(READY_POLL_MS);
            }
        }
        Err(Error::NotReady)
    }

    fn pulse(&mut self, delay: &mut impl DelayNs) -> Result<bool, Error> {
        self.clk.set_high().map_err(|_| Error::Pin)?;
        delay.delay_us(HALF_CLOCK_US);
        let bit = self.dout.is_high().map_err(|_| Error::Pin);
        // Always bring the clock low again, even after a failed read, so the
        // part does not power down.
        let low = self.clk.set_low().map_err(|_| Error::Pin);
        delay.delay_us(HALF_CLOCK_US);
        let bit = bit?;
        low?;
        Ok(bit)
    }

    /// Reads one conversion (channel A, gain 128) as a sign-extended code.
    pub fn read(&mut self, delay: &mut impl DelayNs) -> Result<i32, Error> {
        self.wait_ready(delay)?;
        let mut raw: u32 = 0;
        for _ in 0..24 {
            raw = (raw << 1) | u32::from(self.pulse(delay)?);
        }
        // 25th pulse: channel A, gain 128 next.
        self.pulse(delay)?;
        // Sign-extend 24 → 32 bits.
        Ok(((raw << 8) as i32) >> 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};
    use std::vec::Vec;

    /// Pin expectations for one read of `code` after `busy` not-ready polls.
    fn script(code: i32, busy: usize) -> (Vec<T>, Vec<T>) {
        let mut clk = Vec::new();
        let mut dout = Vec::new();
        for _ in 0..busy {
            dout.push(T::get(State::High));
        }
        dout.push(T::get(State::Low));
        let bits = (code as u32) & 0xFF_FFFF;
        for i in (0..24).rev() {
            clk.push(T::set(State::High));
            dout.push(T::get(if bits >> i & 1 == 1 {
                State::High
            } else {
                State::Low
            }));
            clk.push(T::set(State::Low));
        }
        clk.push(T::set(State::High));
        dout.push(T::get(State::High));
        clk.push(T::set(State::Low));
        (clk, dout)
    }

    fn read(code: i32, busy: usize) -> Result<i32, Error> {
        let (c, d) = script(code, busy);
        let mut clk = Mock::new(&c);
        let mut dout = Mock::new(&d);
        let mut hx = Hx711::new(clk.clone(), dout.clone());
        let r = hx.read(&mut NoopDelay);
        clk.done();
        dout.done();
        r
    }

    #[test]
    fn clocks_out_24_bits_msb_first_plus_gain_pulse() {
        assert_eq!(read(0x12_3456, 0), Ok(0x12_3456));
        assert_eq!(read(-1234, 3), Ok(-1234));
        assert_eq!(read(MAX_CODE, 0), Ok(MAX_CODE));
        assert_eq!(read(MIN_CODE, 0), Ok(MIN_CODE));
    }

    #[test]
    fn not_ready_after_120_ms() {
        let polls: Vec<T> = (0..READY_POLLS).map(|_| T::get(State::High)).collect();
        let mut clk = Mock::new(&[]);
        let mut dout = Mock::new(&polls);
        let mut hx = Hx711::new(clk.clone(), dout.clone());
        assert_eq!(hx.read(&mut NoopDelay), Err(Error::NotReady));
        clk.done();
        dout.done();
    }
}
