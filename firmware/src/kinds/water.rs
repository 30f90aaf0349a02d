//! Fire-water pressure monitor (GB 50974 pipe-network pressure, with an
//! optional tank or pool level).
//!
//! * **Pressure, MPa**: a 2-wire 4–20 mA gauge-pressure transmitter
//!   (piezoresistive or ceramic-capacitive cell; e.g. WIKA S-20 / Huba 520
//!   class, ranged 0–1.6 MPa to match PN 16 fire piping) across a 250 Ω
//!   shunt, classified per NAMUR NE 43 ([`crate::drivers::current_loop`]).
//! * **Level, m** (optional): a 4–20 mA hydrostatic level transmitter in the
//!   tank, ranged 0–10 m of water, on a second input.
//!
//! A passive loop has no self-test of its own; the self-test reads both
//! loops once and reports a failed conversion as `comm`.

use anquan_protocol::{DeviceKind, Fault, FaultCode, Faults, Metric};
use serde::{Deserialize, Serialize};

use super::push_fault;
use crate::drivers::current_loop::LoopConfig;
use crate::hal::AnalogInput;
use crate::sensors::{Sample, Sensors};

/// Configuration of a pressure monitor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureConfig {
    /// The pressure transmitter.
    pub pressure: LoopConfig,
    /// The level transmitter, if fitted.
    #[serde(default)]
    pub level: Option<LoopConfig>,
}

impl Default for PressureConfig {
    fn default() -> Self {
        Self {
            pressure: LoopConfig::new(0, 0.0, 1.6),
            level: Some(LoopConfig::new(1, 0.0, 10.0)),
        }
    }
}

impl PressureConfig {
    /// Checks both loops; names the key.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        self.pressure.validate().map_err(|(_, p)| ("pressure", p))?;
        if let Some(Err((_, p))) = self.level.map(|l| l.validate()) {
            return Err(("level", p));
        }
        if self
            .level
            .is_some_and(|l| l.channel == self.pressure.channel)
        {
            return Err(("level.channel", "must differ from pressure.channel"));
        }
        Ok(())
    }
}

/// A pressure monitor on an analog input.
#[derive(Debug)]
pub struct PressureMonitor<A> {
    adc: A,
    config: PressureConfig,
}

impl<A: AnalogInput> PressureMonitor<A> {
    /// The monitor.
    pub const fn new(adc: A, config: PressureConfig) -> Self {
        Self { adc, config }
    }

    /// The configuration.
    pub fn config(&self) -> &PressureConfig {
        &self.config
    }
}

impl<A: AnalogInput> Sensors for PressureMonitor<A> {
    fn kind(&self) -> DeviceKind {
        DeviceKind::WaterPressure
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        self.config.validate()
    }

    fn self_test(&mut self, faults: &mut Faults) {
        let loops = [
            Some((self.config.pressure, Metric::PressureMpa)),
            self.config.level.map(|l| (l, Metric::LevelM)),
        ];
        for (cfg, metric) in loops.into_iter().flatten() {
            if self.adc.read_microvolts(cfg.channel).is_err() {
                push_fault(faults, Fault::on(FaultCode::Comm, metric));
            }
        }
    }

    fn sample(&mut self, out: &mut Sample) {
        out.set(
            Metric::PressureMpa,
            self.config.pressure.read(&mut self.adc),
        );
        if let Some(level) = self.config.level {
            out.set(Metric::LevelM, level.read(&mut self.adc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::FixedAdc;
    use crate::sensors::ChannelSample;

    #[test]
    fn pressure_and_level() {
        // 12 mA = 0.8 MPa; 8 mA = 2.5 m.
        let mut m = PressureMonitor::new(
            FixedAdc::of(&[Ok(3_000_000), Ok(2_000_000)]),
            PressureConfig::default(),
        );
        let mut s = Sample::new(DeviceKind::WaterPressure);
        m.sample(&mut s);
        assert_eq!(s.get(Metric::PressureMpa), ChannelSample::Value(0.8));
        assert_eq!(s.get(Metric::LevelM), ChannelSample::Value(2.5));
    }

    #[test]
    fn loop_faults_and_unfitted_level() {
        // 2 mA: NE 43 failure; 0 mA: broken wire.
        let cfg = PressureConfig {
            level: None,
            ..PressureConfig::default()
        };
        let mut m = PressureMonitor::new(FixedAdc::of(&[Ok(500_000), Ok(0)]), cfg);
        let mut s = Sample::new(DeviceKind::WaterPressure);
        m.sample(&mut s);
        assert_eq!(
            s.get(Metric::PressureMpa),
            ChannelSample::Fault(FaultCode::OutOfRange)
        );
        assert_eq!(s.get(Metric::LevelM), ChannelSample::Absent);
        let mut m =
            PressureMonitor::new(FixedAdc::of(&[Ok(0), Err(())]), PressureConfig::default());
        let mut s = Sample::new(DeviceKind::WaterPressure);
        m.sample(&mut s);
        assert_eq!(
            s.get(Metric::PressureMpa),
            ChannelSample::Fault(FaultCode::OpenCircuit)
        );
        assert_eq!(s.get(Metric::LevelM), ChannelSample::Fault(FaultCode::Comm));
        let mut faults = Faults::new();
        m.self_test(&mut faults);
        assert_eq!(
            faults.as_slice(),
            [Fault::on(FaultCode::Comm, Metric::LevelM)]
        );
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = PressureConfig::default();
        assert!(c.validate().is_ok());
        c.level = Some(LoopConfig::new(0, 0.0, 10.0));
        assert_eq!(c.validate().unwrap_err().0, "level.channel");
    }
}
