//! Analog Devices (Maxim) MAX31865: RTD-to-digital converter for PT100/PT1000
//! probes, on SPI (mode 1 or 3).
//!
//! Datasheet behaviour relied on (MAX31865 rev. 4, "Register Descriptions"
//! and "Fault Detection"):
//! * Register addresses 0x00–0x07 for reads, `0x80 | address` for writes;
//!   multi-byte accesses auto-increment. 0x00 config, 0x01/0x02 RTD value
//!   MSB/LSB, 0x03–0x06 high/low fault thresholds, 0x07 fault status.
//! * Config: D7 `VBIAS` on, D6 automatic conversion (continuous at the
//!   filter rate), D5 1-shot, D4 3-wire, D1 fault-status clear
//!   (self-clearing), D0 50 Hz filter.
//! * The RTD value is 15 bits, left-aligned: `code = (MSB << 8 | LSB) >> 1`;
//!   LSB bit 0 is the fault flag. `R_RTD = code / 32768 × R_REF`.
//! * The thresholds use the same left-aligned format; a conversion outside
//!   them sets fault status D7 (above high) or D6 (below low). D5/D4/D3 flag
//!   REFIN−/RTDIN− against 0.85 × VBIAS (FORCE− or a reference lead open),
//!   D2 an over/under-voltage on a protected input.
//!
//! Temperature from resistance uses the Callendar–Van Dusen equation
//! (IEC 60751, A = 3.9083e-3, B = −5.775e-7) solved for T ≥ 0; the C term
//! below 0 °C changes the result by < 0.03 °C down to −50 °C, well inside a
//! class-B probe's tolerance, so it is left out.

use anquan_protocol::FaultCode;
use embedded_hal::spi::{Operation, SpiDevice};
use serde::{Deserialize, Serialize};

use crate::math::sqrt;

const CVD_A: f32 = 3.9083e-3;
const CVD_B: f32 = -5.775e-7;

const WRITE: u8 = 0x80;
const REG_CONFIG: u8 = 0x00;
const REG_RTD: u8 = 0x01;
const REG_HIGH_THRESHOLD: u8 = 0x03;
const REG_FAULT: u8 = 0x07;

const VBIAS: u8 = 0x80;
const AUTO: u8 = 0x40;
const THREE_WIRE: u8 = 0x10;
const FAULT_CLEAR: u8 = 0x02;
const FILTER_50HZ: u8 = 0x01;

/// Fault status bits (register 0x07).
pub mod fault_bits {
    /// RTD above the high threshold (an open RTD reads full scale).
    pub const HIGH_THRESHOLD: u8 = 0x80;
    /// RTD below the low threshold (a shorted RTD reads ~0 Ω).
    pub const LOW_THRESHOLD: u8 = 0x40;
    /// REFIN− > 0.85 × VBIAS.
    pub const REFIN_HIGH: u8 = 0x20;
    /// REFIN− < 0.85 × VBIAS, FORCE− open.
    pub const REFIN_LOW_FORCE_OPEN: u8 = 0x10;
    /// RTDIN− < 0.85 × VBIAS, FORCE− open.
    pub const RTDIN_LOW_FORCE_OPEN: u8 = 0x08;
    /// Over- or under-voltage on a protected input.
    pub const OVER_UNDER_VOLTAGE: u8 = 0x04;
}

/// RTD wiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wires {
    /// 2- or 4-wire.
    TwoOrFour,
    /// 3-wire (lead-resistance compensation).
    Three,
}

/// One RTD channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtdConfig {
    /// Reference resistor, ohms (430 Ω on PT100 boards).
    pub r_ref: f32,
    /// RTD resistance at 0 °C (100 for PT100, 1000 for PT1000).
    pub r0: f32,
    /// Wiring.
    pub wires: Wires,
    /// Fault above this temperature (°C): an open probe reads full scale.
    pub high_fault_c: f32,
    /// Fault below this temperature (°C): a shorted probe reads ~0 Ω.
    pub low_fault_c: f32,
}

impl RtdConfig {
    /// A 3-wire PT100 with a 430 Ω reference, faulting outside −60…420 °C
    /// (a cable-temperature probe of GB 14287.3 detectors works in −50…400).
    pub const PT100_3WIRE: Self = Self {
        r_ref: 430.0,
        r0: 100.0,
        wires: Wires::Three,
        high_fault_c: 420.0,
        low_fault_c: -60.0,
    };

    /// The config register value: bias on, continuous conversion, 50 Hz
    /// mains rejection (China's grid frequency).
    pub const fn config_register(&self) -> u8 {
        VBIAS
            | AUTO
            | FILTER_50HZ
            | match self.wires {
                Wires::Three => THREE_WIRE,
                Wires::TwoOrFour => 0,
            }
    }

    /// RTD resistance at `t` °C (Callendar–Van Dusen without C).
    pub fn resistance(&self, t: f32) -> f32 {
        self.r0 * (1.0 + CVD_A * t + CVD_B * t * t)
    }

    /// Temperature (°C) at resistance `r`: the root of
    /// `B·T² + A·T + (1 − r/R0) = 0` near 0, written as
    /// `2(r/R0 − 1) / (A + √(A² − 4B(1 − r/R0)))` so that no two nearly
    /// equal numbers are subtracted (f32 keeps ~0.001 °C this way).
    pub fn temperature(&self, r: f32) -> f32 {
        let x = r / self.r0 - 1.0;
        let disc = CVD_A * CVD_A + 4.0 * CVD_B * x;
        2.0 * x / (CVD_A + sqrt(disc))
    }

    /// The 15-bit code of resistance `r`, saturated.
    pub fn code(&self, r: f32) -> u16 {
        let c = r / self.r_ref * 32_768.0;
        if c.is_nan() {
            0
        } else {
            c.clamp(0.0, 32_767.0) as u16
        }
    }

    /// Resistance of a 15-bit code.
    pub fn resistance_of_code(&self, code: u16) -> f32 {
        f32::from(code) / 32_768.0 * self.r_ref
    }

    /// Checks the numbers; names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(self.r_ref.is_finite() && self.r_ref > 0.0) {
            return Err(("r_ref", "must be a positive number"));
        }
        if !(self.r0.is_finite() && self.r0 > 0.0 && self.r0 < self.r_ref) {
            return Err(("r0", "must be positive and below r_ref"));
        }
        if !(self.low_fault_c.is_finite()
            && self.high_fault_c.is_finite()
            && self.low_fault_c < self.high_fault_c)
        {
            return Err(("high_fault_c", "must be above low_fault_c"));
        }
        Ok(())
    }
}

/// Maps fault status bits to the wire's fault code.
pub fn fault_code(status: u8) -> FaultCode {
    use fault_bits::*;
    if status & (LOW_THRESHOLD | OVER_UNDER_VOLTAGE) != 0 {
        FaultCode::ShortCircuit
    } else if status & (HIGH_THRESHOLD | REFIN_HIGH | REFIN_LOW_FORCE_OPEN | RTDIN_LOW_FORCE_OPEN)
        != 0
    {
        FaultCode::OpenCircuit
    } else {
        // The fault flag was set but the status is empty: the part is not
        // behaving as documented.
        FaultCode::SelfTest
    }
}

/// Driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI transfer failed.
    Bus(E),
    /// The config read back differs from what was written.
    Mismatch,
    /// The converter flagged a fault; the status register's bits.
    Fault(u8),
}

impl<E> Error<E> {
    /// The wire's fault code for this error.
    pub fn fault_code(&self) -> FaultCode {
        match self {
            Self::Bus(_) => FaultCode::Comm,
            Self::Mismatch => FaultCode::SelfTest,
            Self::Fault(status) => fault_code(*status),
        }
    }
}

/// One MAX31865 behind its own chip select.
#[derive(Debug)]
pub struct Max31865<SPI> {
    spi: SPI,
    config: RtdConfig,
}

impl<SPI: SpiDevice> Max31865<SPI> {
    /// The converter with its probe's configuration.
    pub const fn new(spi: SPI, config: RtdConfig) -> Self {
        Self { spi, config }
    }

    /// The probe's configuration.
    pub fn config(&self) -> &RtdConfig {
        &self.config
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error<SPI::Error>> {
        self.spi.write(bytes).map_err(Error::Bus)
    }

    fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), Error<SPI::Error>> {
        self.spi
            .transaction(&mut [Operation::Write(&[reg]), Operation::Read(buf)])
            .map_err(Error::Bus)
    }

    /// Configures continuous conversion and the fault thresholds, then
    /// reads the config back (the self-test).
    pub fn start(&mut self) -> Result<(), Error<SPI::Error>> {
        let cfg = self.config.config_register();
        self.write(&[WRITE | REG_CONFIG, cfg | FAULT_CLEAR])?;
        let high = self
            .config
            .code(self.config.resistance(self.config.high_fault_c))
            << 1;
        let low = self
            .config
            .code(self.config.resistance(self.config.low_fault_c))
            << 1;
        let [hh, hl] = high.to_be_bytes();
        let [lh, ll] = low.to_be_bytes();
        self.write(&[WRITE | REG_HIGH_THRESHOLD, hh, hl, lh, ll])?;
        let mut back = [0u8];
        self.read(REG_CONFIG, &mut back)?;
        // D1 (fault clear) reads back as 0.
        if back[0] == cfg {
            Ok(())
        } else {
            Err(Error::Mismatch)
        }
    }

    /// Reads the latest conversion and returns the temperature in °C; on a
    /// fault, reads and clears the fault status.
    pub fn read_celsius(&mut self) -> Result<f32, Error<SPI::Error>> {
        let mut rtd = [0u8; 2];
        self.read(REG_RTD, &mut rtd)?;
        if rtd[1] & 1 != 0 {
            let mut status = [0u8];
            self.read(REG_FAULT, &mut status)?;
            let cfg = self.config.config_register();
            self.write(&[WRITE | REG_CONFIG, cfg | FAULT_CLEAR])?;
            return Err(Error::Fault(status[0]));
        }
        let code = u16::from_be_bytes(rtd) >> 1;
        Ok(self
            .config
            .temperature(self.config.resistance_of_code(code)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::spi::{Mock, Transaction as T};
    use std::vec;

    const PT100: RtdConfig = RtdConfig::PT100_3WIRE;

    fn read(reg: u8, resp: &[u8]) -> [T<u8>; 4] {
        [
            T::transaction_start(),
            T::write_vec(vec![reg]),
            T::read_vec(resp.to_vec()),
            T::transaction_end(),
        ]
    }

    fn write(bytes: &[u8]) -> [T<u8>; 3] {
        [
            T::transaction_start(),
            T::write_vec(bytes.to_vec()),
            T::transaction_end(),
        ]
    }

    #[test]
    fn callendar_van_dusen() {
        assert!((PT100.resistance(0.0) - 100.0).abs() < 1e-4);
        // IEC 60751 table: 138.51 Ω at 100 °C, 175.86 Ω at 200 °C (175.856 unrounded).
        assert!((PT100.resistance(100.0) - 138.5055).abs() < 1e-3);
        assert!((PT100.temperature(138.5055) - 100.0).abs() < 0.01);
        assert!((PT100.temperature(175.856) - 200.0).abs() < 0.01);
        // −50 °C is 80.31 Ω in the table (with the C term); within 0.05 °C.
        assert!((PT100.temperature(80.31) + 50.0).abs() < 0.05);
        for t in [-50.0f32, 0.0, 25.0, 70.0, 140.0, 400.0] {
            assert!(
                (PT100.temperature(PT100.resistance(t)) - t).abs() < 0.01,
                "{t}"
            );
        }
    }

    #[test]
    fn start_writes_config_and_thresholds_then_reads_back() {
        // 0xD1 = VBIAS | AUTO | 3-wire | 50 Hz.
        let high = PT100.code(PT100.resistance(420.0)) << 1;
        let low = PT100.code(PT100.resistance(-60.0)) << 1;
        assert_eq!((high >> 1, low >> 1), (19_353, 5_817));
        let mut ex = vec![];
        ex.extend(write(&[0x80, 0xD3]));
        ex.extend(write(&[
            0x83,
            (high >> 8) as u8,
            high as u8,
            (low >> 8) as u8,
            low as u8,
        ]));
        ex.extend(read(0x00, &[0xD1]));
        ex.extend(write(&[0x80, 0xD3]));
        ex.extend(write(&[
            0x83,
            (high >> 8) as u8,
            high as u8,
            (low >> 8) as u8,
            low as u8,
        ]));
        ex.extend(read(0x00, &[0x00]));
        let mut spi = Mock::new(&ex);
        let mut rtd = Max31865::new(spi.clone(), PT100);
        assert_eq!(rtd.start(), Ok(()));
        // A missing part reads all zeros.
        assert_eq!(rtd.start(), Err(Error::Mismatch));
        spi.done();
    }

    #[test]
    fn reads_temperature_and_faults() {
        // 138.5055 Ω / 430 Ω × 32768 = 10554.9 → code 10555, left-aligned.
        let code: u16 = 10_555 << 1;
        let mut ex = vec![];
        ex.extend(read(0x01, &code.to_be_bytes()));
        // Fault flag set, status = RTD high threshold (open probe).
        ex.extend(read(0x01, &[0xFF, 0xFF]));
        ex.extend(read(0x07, &[0x80]));
        ex.extend(write(&[0x80, 0xD3]));
        ex.extend(read(0x01, &[0x00, 0x01]));
        ex.extend(read(0x07, &[0x40]));
        ex.extend(write(&[0x80, 0xD3]));
        let mut spi = Mock::new(&ex);
        let mut rtd = Max31865::new(spi.clone(), PT100);
        let t = rtd.read_celsius().unwrap();
        assert!((t - 100.0).abs() < 0.05, "{t}");
        let e = rtd.read_celsius().unwrap_err();
        assert_eq!(e, Error::Fault(0x80));
        assert_eq!(e.fault_code(), FaultCode::OpenCircuit);
        let e = rtd.read_celsius().unwrap_err();
        assert_eq!(e.fault_code(), FaultCode::ShortCircuit);
        spi.done();
    }

    #[test]
    fn fault_bits_map_to_codes() {
        use fault_bits::*;
        assert_eq!(fault_code(REFIN_LOW_FORCE_OPEN), FaultCode::OpenCircuit);
        assert_eq!(fault_code(RTDIN_LOW_FORCE_OPEN), FaultCode::OpenCircuit);
        assert_eq!(fault_code(REFIN_HIGH), FaultCode::OpenCircuit);
        assert_eq!(fault_code(OVER_UNDER_VOLTAGE), FaultCode::ShortCircuit);
        assert_eq!(fault_code(0), FaultCode::SelfTest);
    }
}
