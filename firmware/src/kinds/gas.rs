//! Combustible-gas and CO detector (GB 15322.1 point detector class).
//!
//! * **Combustible gas, %LEL**: a catalytic pellistor pair (active +
//!   compensator bead, e.g. SGX Sensortech VQ21T / City Technology 4P-90
//!   class) in a Wheatstone bridge, read differentially on ADS1115 AIN0–AIN1
//!   at ±0.256 V. Such pairs give roughly 15–35 mV per % v/v methane, i.e.
//!   ~1.25 mV per %LEL at 25 mV/%CH₄ (LEL of methane 5 % v/v); the
//!   sensitivity is configured and trimmed by span calibration. An open bead
//!   unbalances the bridge by a large fraction of its supply, far past the
//!   ±256 mV range, so the ADC saturates: `open_circuit`. A reading more
//!   than 10 %LEL below zero after calibration is zero drift (a poisoned or
//!   aged bead): `calibration`. Readings above 100 %LEL are shown as 100 (a
//!   pellistor's output is not meaningful above the LEL and detectors latch
//!   "over-range" there).
//! * **CO, ppm**: an electrochemical cell (e.g. Alphasense CO-AF class,
//!   55–90 nA/ppm) on a potentiostat/TIA front end (TI LMP91000 class, 35 kΩ
//!   gain, internal zero at 20 % of a 2.5 V reference = 0.5 V), read single
//!   ended on ADS1115 AIN2 at ±4.096 V: ~2.45 mV/ppm above 0.5 V. An output
//!   far below the zero (a reversed or failing cell) is `calibration`; the
//!   amplifier at the ADC's rail (a failed cell or amplifier) is
//!   `out_of_range`.
//!
//! The self-test writes the ADS1115's config and reads it back; a bus error
//! is `comm` on both channels, a wrong read-back `self_test`.

use anquan_protocol::{DeviceKind, Fault, FaultCode, Faults, Metric};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use serde::{Deserialize, Serialize};

use super::push_fault;
use crate::calibration::Calibration;
use crate::drivers::ads1115::{self, Ads1115, Conversion, DataRate, Gain, Mux};
use crate::sensors::{ChannelSample, Sample, Sensors};

/// The bridge conversion: AIN0−AIN1, ±0.256 V, 128 SPS.
pub const LEL_CONVERSION: Conversion = Conversion {
    mux: Mux::Diff01,
    gain: Gain::Fs256,
    rate: DataRate::Sps128,
};
/// The CO conversion: AIN2−GND, ±4.096 V, 128 SPS.
pub const CO_CONVERSION: Conversion = Conversion {
    mux: Mux::Single2,
    gain: Gain::Fs4096,
    rate: DataRate::Sps128,
};

/// The pellistor channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LelConfig {
    /// Bridge output per %LEL, µV.
    pub uv_per_lel: f32,
    /// Zero/span.
    #[serde(default)]
    pub calibration: Calibration,
    /// Readings below this (%LEL, negative) are zero drift.
    pub drift_below: f32,
}

/// The CO channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoConfig {
    /// TIA output at zero gas, µV.
    pub zero_uv: i32,
    /// Output per ppm, µV.
    pub uv_per_ppm: f32,
    /// Zero/span.
    #[serde(default)]
    pub calibration: Calibration,
    /// Readings below this (ppm, negative) are a failing cell.
    pub drift_below: f32,
}

/// Configuration of a gas detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasConfig {
    /// ADS1115 I²C address.
    pub address: u8,
    /// Combustible gas.
    pub lel: LelConfig,
    /// Carbon monoxide.
    pub co: CoConfig,
}

impl Default for GasConfig {
    fn default() -> Self {
        Self {
            address: ads1115::ADDRESS_GND,
            lel: LelConfig {
                uv_per_lel: 1_250.0,
                calibration: Calibration::IDENTITY,
                drift_below: -10.0,
            },
            co: CoConfig {
                zero_uv: 500_000,
                uv_per_ppm: 2_450.0,
                calibration: Calibration::IDENTITY,
                drift_below: -20.0,
            },
        }
    }
}

impl GasConfig {
    /// Checks every number; names the key.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(0x48..=0x4B).contains(&self.address) {
            return Err((
                "address",
                "must be 0x48-0x4B (the ADS1115's ADDR strapping)",
            ));
        }
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !positive(self.lel.uv_per_lel) {
            return Err(("lel.uv_per_lel", "must be a positive number"));
        }
        if !positive(self.co.uv_per_ppm) {
            return Err(("co.uv_per_ppm", "must be a positive number"));
        }
        let calib = "must be finite with span between 0.2 and 5";
        self.lel
            .calibration
            .validate()
            .map_err(|_| ("lel.calibration", calib))?;
        self.co
            .calibration
            .validate()
            .map_err(|_| ("co.calibration", calib))?;
        if !(self.lel.drift_below.is_finite() && self.lel.drift_below < 0.0) {
            return Err(("lel.drift_below", "must be a negative number"));
        }
        if !(self.co.drift_below.is_finite() && self.co.drift_below < 0.0) {
            return Err(("co.drift_below", "must be a negative number"));
        }
        Ok(())
    }
}

/// Bridge code → %LEL (or a fault).
pub fn lel_from_code(cfg: &LelConfig, code: i16) -> ChannelSample {
    if code == i16::MAX || code == i16::MIN {
        return ChannelSample::Fault(FaultCode::OpenCircuit);
    }
    let uv = LEL_CONVERSION.gain.microvolts(code) as f32;
    let lel = cfg.calibration.apply(uv / cfg.uv_per_lel);
    if !lel.is_finite() || lel < cfg.drift_below {
        return ChannelSample::Fault(FaultCode::Calibration);
    }
    ChannelSample::Value(lel.clamp(0.0, 100.0))
}

/// TIA code → ppm CO (or a fault).
pub fn co_from_code(cfg: &CoConfig, code: i16) -> ChannelSample {
    if code == i16::MAX || code == i16::MIN {
        return ChannelSample::Fault(FaultCode::OutOfRange);
    }
    let uv = CO_CONVERSION.gain.microvolts(code) - cfg.zero_uv;
    let ppm = cfg.calibration.apply(uv as f32 / cfg.uv_per_ppm);
    if !ppm.is_finite() || ppm < cfg.drift_below {
        return ChannelSample::Fault(FaultCode::Calibration);
    }
    ChannelSample::Value(ppm.clamp(0.0, 10_000.0))
}

fn fault_of<E>(e: ads1115::Error<E>) -> FaultCode {
    match e {
        ads1115::Error::Bus(_) => FaultCode::Comm,
        ads1115::Error::Timeout | ads1115::Error::Mismatch { .. } => FaultCode::SelfTest,
    }
}

/// A gas detector: one ADS1115 and its delay.
#[derive(Debug)]
pub struct GasDetector<I2C, D> {
    adc: Ads1115<I2C>,
    delay: D,
    config: GasConfig,
}

impl<I2C: I2c, D: DelayNs> GasDetector<I2C, D> {
    /// The detector on `i2c`.
    pub fn new(i2c: I2C, delay: D, config: GasConfig) -> Self {
        Self {
            adc: Ads1115::new(i2c, config.address),
            delay,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GasConfig {
        &self.config
    }
}

impl<I2C: I2c, D: DelayNs> Sensors for GasDetector<I2C, D> {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Gas
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        self.config.validate()
    }

    fn self_test(&mut self, faults: &mut Faults) {
        if let Err(e) = self.adc.self_test(LEL_CONVERSION) {
            let code = fault_of(e);
            push_fault(faults, Fault::on(code, Metric::LelPct));
            push_fault(faults, Fault::on(code, Metric::CoPpm));
        }
    }

    fn sample(&mut self, out: &mut Sample) {
        let lel = match self.adc.convert(&mut self.delay, LEL_CONVERSION) {
            Ok(code) => lel_from_code(&self.config.lel, code),
            Err(e) => ChannelSample::Fault(fault_of(e)),
        };
        out.set(Metric::LelPct, lel);
        let co = match self.adc.convert(&mut self.delay, CO_CONVERSION) {
            Ok(code) => co_from_code(&self.config.co, code),
            Err(e) => ChannelSample::Fault(fault_of(e)),
        };
        out.set(Metric::CoPpm, co);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};
    use std::vec;
    use std::vec::Vec;

    fn conversion(cfg: u16, code: i16) -> [T; 3] {
        [
            T::write(0x48, vec![0x01, (cfg >> 8) as u8 | 0x80, cfg as u8]),
            T::write_read(0x48, vec![0x01], vec![(cfg >> 8) as u8 | 0x80, cfg as u8]),
            T::write_read(0x48, vec![0x00], code.to_be_bytes().to_vec()),
        ]
    }

    fn sample_with(lel_code: i16, co_code: i16, config: GasConfig) -> Sample {
        let mut ex: Vec<T> = vec![];
        ex.extend(conversion(LEL_CONVERSION.config(), lel_code));
        ex.extend(conversion(CO_CONVERSION.config(), co_code));
        let mut i2c = Mock::new(&ex);
        let mut det = GasDetector::new(i2c.clone(), NoopDelay, config);
        let mut s = Sample::new(DeviceKind::Gas);
        det.sample(&mut s);
        i2c.done();
        s
    }

    /// ADS1115 code for a bridge voltage at ±0.256 V.
    fn lel_code(uv: f32) -> i16 {
        (uv * 32_768.0 / 256_000.0) as i16
    }

    /// ADS1115 code for a voltage at ±4.096 V.
    fn co_code(uv: f32) -> i16 {
        (uv * 32_768.0 / 4_096_000.0) as i16
    }

    fn value(s: ChannelSample) -> f32 {
        match s {
            ChannelSample::Value(v) => v,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    #[test]
    fn reads_both_channels_through_the_adc() {
        // 25 %LEL = 31.25 mV; 50 ppm CO = 0.5 V + 122.5 mV.
        let s = sample_with(lel_code(31_250.0), co_code(622_500.0), GasConfig::default());
        assert!((value(s.get(Metric::LelPct)) - 25.0).abs() < 0.01);
        assert!((value(s.get(Metric::CoPpm)) - 50.0).abs() < 0.1);
        assert_eq!(s.get(Metric::AlarmBtn), ChannelSample::Absent);
    }

    #[test]
    fn calibration_is_applied() {
        let mut cfg = GasConfig::default();
        // Clean air reads 2 %LEL, 50 %LEL span gas reads 42.
        cfg.lel.calibration = Calibration::from_points(2.0, 42.0, 50.0).unwrap();
        let s = sample_with(lel_code(42.0 * 1_250.0), co_code(500_000.0), cfg);
        assert!((value(s.get(Metric::LelPct)) - 50.0).abs() < 0.05);
        let s = sample_with(lel_code(2.0 * 1_250.0), co_code(500_000.0), cfg);
        assert!(value(s.get(Metric::LelPct)).abs() < 0.05);
    }

    #[test]
    fn detects_faults() {
        let cfg = GasConfig::default();
        let s = sample_with(i16::MAX, i16::MAX, cfg);
        assert_eq!(
            s.get(Metric::LelPct),
            ChannelSample::Fault(FaultCode::OpenCircuit)
        );
        assert_eq!(
            s.get(Metric::CoPpm),
            ChannelSample::Fault(FaultCode::OutOfRange)
        );
        // −15 %LEL and −30 ppm: drift.
        let s = sample_with(
            lel_code(-15.0 * 1_250.0),
            co_code(500_000.0 - 73_500.0),
            cfg,
        );
        assert_eq!(
            s.get(Metric::LelPct),
            ChannelSample::Fault(FaultCode::Calibration)
        );
        assert_eq!(
            s.get(Metric::CoPpm),
            ChannelSample::Fault(FaultCode::Calibration)
        );
        // Small negative drift reads 0; over-range reads 100 %LEL.
        let s = sample_with(lel_code(-3.0 * 1_250.0), co_code(490_000.0), cfg);
        assert_eq!(value(s.get(Metric::LelPct)), 0.0);
        assert_eq!(value(s.get(Metric::CoPpm)), 0.0);
        let s = sample_with(lel_code(130.0 * 1_250.0), co_code(500_000.0), cfg);
        assert_eq!(value(s.get(Metric::LelPct)), 100.0);
    }

    #[test]
    fn bus_errors_are_comm_faults_and_self_test() {
        let cfg = LEL_CONVERSION.config();
        let mut i2c = Mock::new(&[
            T::write(0x48, vec![0x01, (cfg >> 8) as u8 | 0x80, cfg as u8]).with_error(
                ErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address),
            ),
            T::write(
                0x48,
                vec![
                    0x01,
                    (CO_CONVERSION.config() >> 8) as u8 | 0x80,
                    CO_CONVERSION.config() as u8,
                ],
            )
            .with_error(ErrorKind::Other),
            // Self-test: the read-back differs.
            T::write(0x48, vec![0x01, (cfg >> 8) as u8, cfg as u8]),
            T::write_read(0x48, vec![0x01], vec![0x85, 0x83]),
        ]);
        let mut det = GasDetector::new(i2c.clone(), NoopDelay, GasConfig::default());
        let mut s = Sample::new(DeviceKind::Gas);
        det.sample(&mut s);
        assert_eq!(s.get(Metric::LelPct), ChannelSample::Fault(FaultCode::Comm));
        assert_eq!(s.get(Metric::CoPpm), ChannelSample::Fault(FaultCode::Comm));
        let mut faults = Faults::new();
        det.self_test(&mut faults);
        assert_eq!(
            faults.as_slice(),
            [
                Fault::on(FaultCode::SelfTest, Metric::LelPct),
                Fault::on(FaultCode::SelfTest, Metric::CoPpm)
            ]
        );
        i2c.done();
    }

    #[test]
    fn config_validation_names_the_key() {
        let mut c = GasConfig::default();
        assert!(c.validate().is_ok());
        c.co.uv_per_ppm = 0.0;
        assert_eq!(c.validate().unwrap_err().0, "co.uv_per_ppm");
        let c = GasConfig {
            address: 0x20,
            ..GasConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "address");
    }
}
