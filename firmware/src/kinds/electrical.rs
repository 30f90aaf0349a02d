//! Electrical-fire monitor (GB 14287.2 residual-current and GB 14287.3
//! temperature detector class).
//!
//! * **Residual current, mA**: a core-balance residual-current transformer
//!   around the circuit's phase and neutral conductors (typical ratio
//!   1000:1 into a 100 Ω burden, as on the RCT modules sold for GB 14287.2
//!   monitors), followed by a true-RMS-to-DC converter (Analog Devices
//!   AD736 class: DC output = RMS of the input, 200 mV rms full scale),
//!   read on an [`AnalogInput`]: `mA = µV × turns / burden / 1000`, so
//!   1000 mA is 100 mV. Above the converter's full scale the reading is
//!   shown as the full-scale current (saturated, not made up).
//!   A second analog input checks the winding: the monitor feeds it a small
//!   DC bias through a resistor, so an intact winding (tens of ohms) reads a
//!   few millivolts, a broken one is pulled towards the supply
//!   (`open_circuit`), and a shorted one reads ~0 (`short_circuit`). GB
//!   14287.2 asks for a fault signal when the sensor wiring is broken or
//!   shorted (unconfirmed clause).
//! * **Cable temperatures, °C**: up to four PT100 probes, each on a
//!   MAX31865 ([`crate::drivers::max31865`]) in continuous conversion; open
//!   and shorted probes come from the converter's own fault detection.
//!
//! The self-test configures and reads back every MAX31865 and checks the
//! transformer winding.

use anquan_protocol::{DeviceKind, Fault, FaultCode, Faults, Metric};
use embedded_hal::spi::SpiDevice;
use serde::{Deserialize, Serialize};

use super::push_fault;
use crate::calibration::Calibration;
use crate::drivers::max31865::{Max31865, RtdConfig};
use crate::hal::AnalogInput;
use crate::sensors::{ChannelSample, Sample, Sensors};

/// The temperature channels, in order.
pub const TEMPS: [Metric; 4] = [
    Metric::Temp1C,
    Metric::Temp2C,
    Metric::Temp3C,
    Metric::Temp4C,
];

/// The residual-current transformer and its converter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidualConfig {
    /// Analog input of the RMS converter's output.
    pub rms_channel: u8,
    /// Analog input of the winding check.
    pub check_channel: u8,
    /// Transformer turns ratio (primary amperes per secondary ampere).
    pub turns: f32,
    /// Burden resistor, ohms.
    pub burden_ohms: f32,
    /// Largest current the converter measures linearly, mA.
    pub full_scale_ma: f32,
    /// Winding check above this (µV) = broken winding.
    pub open_above_uv: i32,
    /// Winding check below this (µV) = shorted winding.
    pub short_below_uv: i32,
    /// Zero/span in mA.
    #[serde(default)]
    pub calibration: Calibration,
}

impl Default for ResidualConfig {
    fn default() -> Self {
        Self {
            rms_channel: 0,
            check_channel: 1,
            turns: 1_000.0,
            burden_ohms: 100.0,
            full_scale_ma: 2_000.0,
            open_above_uv: 1_000_000,
            short_below_uv: 1_000,
            calibration: Calibration::IDENTITY,
        }
    }
}

impl ResidualConfig {
    /// Classifies the winding check.
    pub fn winding(&self, check_uv: i32) -> Result<(), FaultCode> {
        if check_uv > self.open_above_uv {
            Err(FaultCode::OpenCircuit)
        } else if check_uv < self.short_below_uv {
            Err(FaultCode::ShortCircuit)
        } else {
            Ok(())
        }
    }

    /// The residual current for the converter's output.
    pub fn milliamps(&self, rms_uv: i32) -> f32 {
        let nominal = rms_uv as f32 * self.turns / self.burden_ohms / 1000.0;
        self.calibration
            .apply(nominal)
            .clamp(0.0, self.full_scale_ma)
    }

    /// Reads the winding check, then the current.
    pub fn read<A: AnalogInput>(&self, adc: &mut A) -> ChannelSample {
        let check = match adc.read_microvolts(self.check_channel) {
            Ok(uv) => uv,
            Err(_) => return ChannelSample::Fault(FaultCode::Comm),
        };
        if let Err(code) = self.winding(check) {
            return ChannelSample::Fault(code);
        }
        match adc.read_microvolts(self.rms_channel) {
            Ok(uv) => ChannelSample::Value(self.milliamps(uv)),
            Err(_) => ChannelSample::Fault(FaultCode::Comm),
        }
    }
}

/// Configuration of an electrical-fire monitor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectricalConfig {
    /// The residual-current channel.
    #[serde(default)]
    pub residual: ResidualConfig,
    /// The probe of each temperature channel; `None` = not fitted.
    pub temps: [Option<RtdConfig>; 4],
    /// Zero/span per temperature channel, °C.
    #[serde(default)]
    pub temp_calibration: [Calibration; 4],
}

impl Default for ElectricalConfig {
    fn default() -> Self {
        Self {
            residual: ResidualConfig::default(),
            temps: [Some(RtdConfig::PT100_3WIRE); 4],
            temp_calibration: [Calibration::IDENTITY; 4],
        }
    }
}

impl ElectricalConfig {
    /// Checks every number; names the key.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let r = &self.residual;
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !positive(r.turns) {
            return Err(("residual.turns", "must be a positive number"));
        }
        if !positive(r.burden_ohms) {
            return Err(("residual.burden_ohms", "must be a positive number"));
        }
        if !positive(r.full_scale_ma) || r.full_scale_ma > 10_000.0 {
            return Err(("residual.full_scale_ma", "must be in (0, 10000]"));
        }
        if r.short_below_uv >= r.open_above_uv {
            return Err((
                "residual.short_below_uv",
                "must be below residual.open_above_uv",
            ));
        }
        r.calibration.validate().map_err(|_| {
            (
                "residual.calibration",
                "must be finite with span between 0.2 and 5",
            )
        })?;
        const KEYS: [&str; 4] = ["temps[0]", "temps[1]", "temps[2]", "temps[3]"];
        const CAL: [&str; 4] = [
            "temp_calibration[0]",
            "temp_calibration[1]",
            "temp_calibration[2]",
            "temp_calibration[3]",
        ];
        for i in 0..4 {
            if let Some(Err((_, problem))) = self.temps[i].map(|t| t.validate()) {
                return Err((KEYS[i], problem));
            }
            self.temp_calibration[i]
                .validate()
                .map_err(|_| (CAL[i], "must be finite with span between 0.2 and 5"))?;
        }
        Ok(())
    }
}

/// An electrical-fire monitor: an analog input for the transformer and up
/// to four MAX31865s, each on its own SPI device.
#[derive(Debug)]
pub struct ElectricalMonitor<A, SPI> {
    adc: A,
    rtds: [Option<Max31865<SPI>>; 4],
    config: ElectricalConfig,
}

impl<A: AnalogInput, SPI: SpiDevice> ElectricalMonitor<A, SPI> {
    /// The monitor; `spis[i]` is the SPI device of temperature channel `i`
    /// (`None` when not fitted; a channel needs both the device and a probe
    /// configuration).
    pub fn new(adc: A, spis: [Option<SPI>; 4], config: ElectricalConfig) -> Self {
        let mut i = 0;
        let rtds = spis.map(|spi| {
            let probe = config.temps[i];
            i += 1;
            spi.zip(probe).map(|(spi, p)| Max31865::new(spi, p))
        });
        Self { adc, rtds, config }
    }

    /// The configuration.
    pub fn config(&self) -> &ElectricalConfig {
        &self.config
    }
}

impl<A: AnalogInput, SPI: SpiDevice> Sensors for ElectricalMonitor<A, SPI> {
    fn kind(&self) -> DeviceKind {
        DeviceKind::Electrical
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        self.config.validate()
    }

    fn self_test(&mut self, faults: &mut Faults) {
        for (rtd, metric) in self.rtds.iter_mut().zip(TEMPS) {
            if let Some(Err(e)) = rtd.as_mut().map(|r| r.start()) {
                push_fault(faults, Fault::on(e.fault_code(), metric));
            }
        }
        match self.adc.read_microvolts(self.config.residual.check_channel) {
            Ok(uv) => {
                if let Err(code) = self.config.residual.winding(uv) {
                    push_fault(faults, Fault::on(code, Metric::ResidualMa));
                }
            }
            Err(_) => push_fault(faults, Fault::on(FaultCode::Comm, Metric::ResidualMa)),
        }
    }

    fn sample(&mut self, out: &mut Sample) {
        out.set(Metric::ResidualMa, self.config.residual.read(&mut self.adc));
        for (i, (rtd, metric)) in self.rtds.iter_mut().zip(TEMPS).enumerate() {
            let Some(rtd) = rtd else { continue };
            let s = match rtd.read_celsius() {
                Ok(t) => ChannelSample::Value(self.config.temp_calibration[i].apply(t)),
                Err(e) => ChannelSample::Fault(e.fault_code()),
            };
            out.set(metric, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::FixedAdc;
    use embedded_hal_mock::eh1::spi::{Mock, Transaction as T};
    use std::vec;
    use std::vec::Vec;

    fn rtd_read(code: u16) -> Vec<T<u8>> {
        vec![
            T::transaction_start(),
            T::write_vec(vec![0x01]),
            T::read_vec((code << 1).to_be_bytes().to_vec()),
            T::transaction_end(),
        ]
    }

    fn value(s: ChannelSample) -> f32 {
        match s {
            ChannelSample::Value(v) => v,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    #[test]
    fn residual_current_maths_and_winding_check() {
        let r = ResidualConfig::default();
        // 300 mA → 30 mV at the converter.
        assert_eq!(r.milliamps(30_000), 300.0);
        assert_eq!(r.milliamps(-500), 0.0);
        assert_eq!(r.milliamps(900_000), 2_000.0);
        let mut adc = FixedAdc::of(&[Ok(30_000), Ok(20_000)]);
        assert_eq!(r.read(&mut adc), ChannelSample::Value(300.0));
        let mut adc = FixedAdc::of(&[Ok(30_000), Ok(3_200_000)]);
        assert_eq!(
            r.read(&mut adc),
            ChannelSample::Fault(FaultCode::OpenCircuit)
        );
        let mut adc = FixedAdc::of(&[Ok(30_000), Ok(200)]);
        assert_eq!(
            r.read(&mut adc),
            ChannelSample::Fault(FaultCode::ShortCircuit)
        );
        let mut adc = FixedAdc::of(&[Err(()), Ok(20_000)]);
        assert_eq!(r.read(&mut adc), ChannelSample::Fault(FaultCode::Comm));
        let cal = ResidualConfig {
            calibration: Calibration {
                zero: 10.0,
                span: 1.1,
            },
            ..r
        };
        assert!((cal.milliamps(30_000) - 319.0).abs() < 1e-3);
    }

    #[test]
    fn samples_residual_and_fitted_probes() {
        let pt = RtdConfig::PT100_3WIRE;
        let code_at = |t: f32| pt.code(pt.resistance(t));
        let mut s1 = Mock::new(&rtd_read(code_at(70.0)));
        let mut s3 = Mock::new(&{
            let mut ex = vec![
                T::transaction_start(),
                T::write_vec(vec![0x01]),
                T::read_vec(vec![0xFF, 0xFF]),
                T::transaction_end(),
                T::transaction_start(),
                T::write_vec(vec![0x07]),
                T::read_vec(vec![0x80]),
                T::transaction_end(),
            ];
            ex.extend([
                T::transaction_start(),
                T::write_vec(vec![0x80, 0xD3]),
                T::transaction_end(),
            ]);
            ex
        });
        let mut cfg = ElectricalConfig::default();
        cfg.temp_calibration[0] = Calibration {
            zero: 0.5,
            span: 1.0,
        };
        let mut mon = ElectricalMonitor::new(
            FixedAdc::of(&[Ok(45_000), Ok(20_000)]),
            [Some(s1.clone()), None, Some(s3.clone()), None],
            cfg,
        );
        let mut s = Sample::new(DeviceKind::Electrical);
        mon.sample(&mut s);
        assert_eq!(s.get(Metric::ResidualMa), ChannelSample::Value(450.0));
        assert!((value(s.get(Metric::Temp1C)) - 69.5).abs() < 0.05);
        assert_eq!(s.get(Metric::Temp2C), ChannelSample::Absent);
        assert_eq!(
            s.get(Metric::Temp3C),
            ChannelSample::Fault(FaultCode::OpenCircuit)
        );
        assert_eq!(s.get(Metric::Temp4C), ChannelSample::Absent);
        s1.done();
        s3.done();
    }

    #[test]
    fn self_test_reports_failed_probes_and_winding() {
        let cfg_reg = RtdConfig::PT100_3WIRE.config_register();
        let start = |readback: u8| {
            vec![
                T::transaction_start(),
                T::write_vec(vec![0x80, cfg_reg | 0x02]),
                T::transaction_end(),
                T::transaction_start(),
                T::write_vec(vec![0x83, 0x97, 0x32, 0x2D, 0x72]),
                T::transaction_end(),
                T::transaction_start(),
                T::write_vec(vec![0x00]),
                T::read_vec(vec![readback]),
                T::transaction_end(),
            ]
        };
        let mut good = Mock::new(&start(cfg_reg));
        let mut missing = Mock::new(&start(0x00));
        let mut mon = ElectricalMonitor::new(
            FixedAdc::of(&[Ok(0), Ok(5_000_000)]),
            [Some(good.clone()), Some(missing.clone()), None, None],
            ElectricalConfig::default(),
        );
        let mut faults = Faults::new();
        mon.self_test(&mut faults);
        assert_eq!(
            faults.as_slice(),
            [
                Fault::on(FaultCode::SelfTest, Metric::Temp2C),
                Fault::on(FaultCode::OpenCircuit, Metric::ResidualMa)
            ]
        );
        good.done();
        missing.done();
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = ElectricalConfig::default();
        assert!(c.validate().is_ok());
        c.temps[2] = Some(RtdConfig {
            r0: 1000.0,
            ..RtdConfig::PT100_3WIRE
        });
        assert_eq!(c.validate().unwrap_err().0, "temps[2]");
        let mut c = ElectricalConfig::default();
        c.residual.short_below_uv = 2_000_000;
        assert_eq!(c.validate().unwrap_err().0, "residual.short_below_uv");
    }
}
