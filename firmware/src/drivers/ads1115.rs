//! TI ADS1115: 16-bit delta-sigma ADC with PGA and input multiplexer, on I²C.
//!
//! Datasheet behaviour relied on (TI SBAS444, §8.5 and §8.6):
//! * Registers behind a pointer byte: 0 = conversion (read-only, 16-bit two's
//!   complement), 1 = config. A write sends `[pointer, msb, lsb]`; a read
//!   writes the pointer then reads two bytes, MSB first.
//! * Config: bit 15 `OS` (write 1 = start a single conversion; reads 0 while
//!   converting, 1 when idle), bits 14:12 `MUX`, 11:9 `PGA`, 8 `MODE`
//!   (1 = single-shot), 7:5 `DR`, 1:0 `COMP_QUE` (11 = comparator off).
//!   Power-on value 0x8583.
//! * A single-shot conversion takes one data period (1/DR) plus ~25 µs of
//!   wake-up; full scale is ±FSR with `FSR/32768` per code, and an input
//!   beyond full scale reads 0x7FFF / 0x8000.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// I²C address with ADDR tied to GND.
pub const ADDRESS_GND: u8 = 0x48;
/// Config register value after power-on.
pub const POWER_ON_CONFIG: u16 = 0x8583;

const REG_CONVERSION: u8 = 0x00;
const REG_CONFIG: u8 = 0x01;
const OS: u16 = 1 << 15;
const MODE_SINGLE: u16 = 1 << 8;
const COMP_OFF: u16 = 0b11;
/// Polls of `OS` after the nominal conversion time before giving up.
const POLLS: u8 = 10;

/// Input multiplexer setting (`MUX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Mux {
    /// AIN0 − AIN1 (a bridge output).
    Diff01 = 0b000,
    /// AIN0 − AIN3.
    Diff03 = 0b001,
    /// AIN1 − AIN3.
    Diff13 = 0b010,
    /// AIN2 − AIN3.
    Diff23 = 0b011,
    /// AIN0 − GND.
    Single0 = 0b100,
    /// AIN1 − GND.
    Single1 = 0b101,
    /// AIN2 − GND.
    Single2 = 0b110,
    /// AIN3 − GND.
    Single3 = 0b111,
}

/// Programmable-gain amplifier full scale (`PGA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Gain {
    /// ±6.144 V.
    Fs6144 = 0b000,
    /// ±4.096 V.
    Fs4096 = 0b001,
    /// ±2.048 V (power-on default).
    Fs2048 = 0b010,
    /// ±1.024 V.
    Fs1024 = 0b011,
    /// ±0.512 V.
    Fs512 = 0b100,
    /// ±0.256 V.
    Fs256 = 0b101,
}

impl Gain {
    /// Full scale in microvolts.
    pub const fn full_scale_uv(self) -> i64 {
        match self {
            Self::Fs6144 => 6_144_000,
            Self::Fs4096 => 4_096_000,
            Self::Fs2048 => 2_048_000,
            Self::Fs1024 => 1_024_000,
            Self::Fs512 => 512_000,
            Self::Fs256 => 256_000,
        }
    }

    /// Microvolts of a conversion code.
    pub const fn microvolts(self, code: i16) -> i32 {
        (code as i64 * self.full_scale_uv() / 32_768) as i32
    }
}

/// Data rate (`DR`), samples per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum DataRate {
    /// 8 SPS.
    Sps8 = 0b000,
    /// 16 SPS.
    Sps16 = 0b001,
    /// 32 SPS.
    Sps32 = 0b010,
    /// 64 SPS.
    Sps64 = 0b011,
    /// 128 SPS (power-on default).
    Sps128 = 0b100,
    /// 250 SPS.
    Sps250 = 0b101,
    /// 475 SPS.
    Sps475 = 0b110,
    /// 860 SPS.
    Sps860 = 0b111,
}

impl DataRate {
    /// One data period plus the 25 µs wake-up, rounded up, in µs.
    pub const fn conversion_us(self) -> u32 {
        let sps = match self {
            Self::Sps8 => 8,
            Self::Sps16 => 16,
            Self::Sps32 => 32,
            Self::Sps64 => 64,
            Self::Sps128 => 128,
            Self::Sps250 => 250,
            Self::Sps475 => 475,
            Self::Sps860 => 860,
        };
        1_000_000_u32.div_ceil(sps) + 25
    }
}

/// One conversion's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    /// Input.
    pub mux: Mux,
    /// Full scale.
    pub gain: Gain,
    /// Rate (sets the conversion time and the noise).
    pub rate: DataRate,
}

impl Conversion {
    /// The config word, without `OS`.
    pub const fn config(self) -> u16 {
        ((self.mux as u16) << 12)
            | ((self.gain as u16) << 9)
            | MODE_SINGLE
            | ((self.rate as u16) << 5)
            | COMP_OFF
    }
}

/// Driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I²C transfer failed (no ACK, arbitration lost…).
    Bus(E),
    /// `OS` never reported the conversion done.
    Timeout,
    /// The config read back differs from what was written.
    Mismatch {
        /// Written (without `OS`).
        wrote: u16,
        /// Read back (without `OS`).
        read: u16,
    },
}

/// An ADS1115 on an I²C bus.
#[derive(Debug)]
pub struct Ads1115<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> Ads1115<I2C> {
    /// The converter at `address` (0x48–0x4B).
    pub const fn new(i2c: I2C, address: u8) -> Self {
        Self { i2c, address }
    }

    /// Gives the bus back.
    pub fn release(self) -> I2C {
        self.i2c
    }

    fn write_config(&mut self, value: u16) -> Result<(), Error<I2C::Error>> {
        let [hi, lo] = value.to_be_bytes();
        self.i2c
            .write(self.address, &[REG_CONFIG, hi, lo])
            .map_err(Error::Bus)
    }

    fn read_register(&mut self, reg: u8) -> Result<u16, Error<I2C::Error>> {
        let mut buf = [0u8; 2];
        self.i2c
            .write_read(self.address, &[reg], &mut buf)
            .map_err(Error::Bus)?;
        Ok(u16::from_be_bytes(buf))
    }

    /// Writes `conversion`'s config without starting a conversion and reads
    /// it back: proves the part is there, powered and its register file
    /// holds what it is told.
    pub fn self_test(&mut self, conversion: Conversion) -> Result<(), Error<I2C::Error>> {
        let wrote = conversion.config();
        self.write_config(wrote)?;
        let read = self.read_register(REG_CONFIG)? & !OS;
        if read == wrote {
            Ok(())
        } else {
            Err(Error::Mismatch { wrote, read })
        }
    }

    /// Runs one single-shot conversion and returns the code.
    pub fn convert(
        &mut self,
        delay: &mut impl DelayNs,
        conversion: Conversion,
    ) -> Result<i16, Error<I2C::Error>> {
        self.write_config(OS | conversion.config())?;
        delay.delay_us(conversion.rate.conversion_us());
        let mut polls = 0;
        while self.read_register(REG_CONFIG)? & OS == 0 {
            polls += 1;
            if polls >= POLLS {
                return Err(Error::Timeout);
            }
            delay.delay_us(conversion.rate.conversion_us() / 8 + 1);
        }
        Ok(self.read_register(REG_CONVERSION)? as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as D};
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};
    use std::vec;

    const BRIDGE: Conversion = Conversion {
        mux: Mux::Diff01,
        gain: Gain::Fs256,
        rate: DataRate::Sps128,
    };

    #[test]
    fn config_words_match_the_datasheet() {
        // The power-on default is AIN0−AIN1, ±2.048 V, single-shot, 128 SPS,
        // comparator off, with OS set.
        let default = Conversion {
            mux: Mux::Diff01,
            gain: Gain::Fs2048,
            rate: DataRate::Sps128,
        };
        assert_eq!(OS | default.config(), POWER_ON_CONFIG);
        assert_eq!(BRIDGE.config(), 0x0B83);
        assert_eq!(DataRate::Sps128.conversion_us(), 7_838);
        assert_eq!(Gain::Fs256.microvolts(32_767), 255_992);
        assert_eq!(Gain::Fs4096.microvolts(-32_768), -4_096_000);
    }

    #[test]
    fn single_shot_conversion_transactions() {
        let mut i2c = Mock::new(&[
            T::write(0x48, vec![0x01, 0x8B, 0x83]),
            // Still converting once, then done.
            T::write_read(0x48, vec![0x01], vec![0x0B, 0x83]),
            T::write_read(0x48, vec![0x01], vec![0x8B, 0x83]),
            T::write_read(0x48, vec![0x00], vec![0x12, 0x34]),
        ]);
        let mut delay = CheckedDelay::new(&[D::delay_us(7_838), D::delay_us(980)]);
        let mut adc = Ads1115::new(i2c.clone(), ADDRESS_GND);
        assert_eq!(adc.convert(&mut delay, BRIDGE), Ok(0x1234));
        i2c.done();
        delay.done();
    }

    #[test]
    fn negative_codes_and_timeout() {
        let mut ok = vec![
            T::write(0x48, vec![0x01, 0x8B, 0x83]),
            T::write_read(0x48, vec![0x01], vec![0x8B, 0x83]),
            T::write_read(0x48, vec![0x00], vec![0xFF, 0x38]),
            T::write(0x48, vec![0x01, 0x8B, 0x83]),
        ];
        ok.extend((0..POLLS).map(|_| T::write_read(0x48, vec![0x01], vec![0x0B, 0x83])));
        let mut i2c = Mock::new(&ok);
        let mut adc = Ads1115::new(i2c.clone(), ADDRESS_GND);
        assert_eq!(adc.convert(&mut NoopDelay, BRIDGE), Ok(-200));
        assert_eq!(adc.convert(&mut NoopDelay, BRIDGE), Err(Error::Timeout));
        i2c.done();
    }

    #[test]
    fn self_test_reads_back_the_config() {
        use embedded_hal::i2c::ErrorKind;
        let mut i2c = Mock::new(&[
            T::write(0x48, vec![0x01, 0x0B, 0x83]),
            T::write_read(0x48, vec![0x01], vec![0x8B, 0x83]),
            T::write(0x48, vec![0x01, 0x0B, 0x83]),
            T::write_read(0x48, vec![0x01], vec![0x85, 0x83]),
            T::write(0x48, vec![0x01, 0x0B, 0x83]).with_error(ErrorKind::Other),
        ]);
        let mut adc = Ads1115::new(i2c.clone(), ADDRESS_GND);
        assert_eq!(adc.self_test(BRIDGE), Ok(()));
        assert_eq!(
            adc.self_test(BRIDGE),
            Err(Error::Mismatch {
                wrote: 0x0B83,
                read: 0x0583
            })
        );
        assert_eq!(adc.self_test(BRIDGE), Err(Error::Bus(ErrorKind::Other)));
        i2c.done();
    }
}
