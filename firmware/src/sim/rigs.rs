//! Whole virtual devices: each kind's front end on the part models, with a
//! buzzer, a relay, a button and a clock, and knobs in physical units.
//!
//! ```
//! use anquan_firmware::sim::{rigs::GasRig, TransportSim};
//! use anquan_firmware::DeviceConfig;
//! use anquan_protocol::Id;
//!
//! let rig = GasRig::new();
//! let config = DeviceConfig::new(Id::new("s1").unwrap(), Id::new("gas-0001").unwrap());
//! let mut device = rig.device(config).unwrap();
//! let mut link = TransportSim::connected();
//! rig.set_lel(60.0);
//! for s in 0..3 {
//!     device.step(s * 1_000, &mut link);
//! }
//! assert!(rig.buzzer.is_set());
//! ```

use anquan_protocol::Metric;

use super::{
    Ads1115Sim, AnalogSim, Hx711Clock, Hx711Data, Hx711Sim, LineFault, Max31865Sim, NoDelay,
    PinSim, RtdFault, Scl3300Sim, SsiSim,
};
use crate::config::{ConfigError, DeviceConfig};
use crate::device::{Device, Hal};
use crate::hal::EpochClock;
use crate::kinds::crane::{CraneBuses, CraneConfig, CraneMonitor, EncoderConfig};
use crate::kinds::electrical::{ElectricalConfig, ElectricalMonitor};
use crate::kinds::gas::{GasConfig, GasDetector};
use crate::kinds::water::{PressureConfig, PressureMonitor};

/// Unix time at simulated uptime 0 in the rigs' clocks: 2024-11-22 18:26:40 UTC.
pub const SIM_EPOCH_MS: u64 = 1_732_300_000_000;

/// The outputs and inputs every rig has.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// Buzzer output.
    pub buzzer: PinSim,
    /// Relay output.
    pub relay: PinSim,
    /// One-key alarm button (set it high to press).
    pub button: PinSim,
}

fn hal<S>(sensors: S, p: &Panel) -> Hal<S, PinSim, PinSim, PinSim, EpochClock> {
    Hal::new(sensors)
        .with_buzzer(p.buzzer.clone())
        .with_relay(p.relay.clone())
        .with_button(p.button.clone())
        .with_clock(EpochClock {
            epoch_ms: SIM_EPOCH_MS,
        })
}

/// A gas device on the models.
pub type GasDevice = Device<GasDetector<Ads1115Sim, NoDelay>, PinSim, PinSim, PinSim, EpochClock>;

/// A gas detector rig: set %LEL and ppm CO.
#[derive(Debug, Clone)]
pub struct GasRig {
    /// The ADS1115.
    pub adc: Ads1115Sim,
    /// The detector's configuration (the knobs invert it).
    pub config: GasConfig,
    /// Buzzer, relay, button.
    pub panel: Panel,
    /// The buzzer (same as `panel.buzzer`).
    pub buzzer: PinSim,
}

impl Default for GasRig {
    fn default() -> Self {
        Self::new()
    }
}

impl GasRig {
    /// Clean air, default configuration.
    pub fn new() -> Self {
        Self::with_config(GasConfig::default())
    }

    /// With a detector configuration.
    pub fn with_config(config: GasConfig) -> Self {
        let panel = Panel::default();
        let rig = Self {
            adc: Ads1115Sim::new(config.address),
            config,
            buzzer: panel.buzzer.clone(),
            panel,
        };
        rig.set_lel(0.0);
        rig.set_co(0.0);
        rig
    }

    /// The device.
    pub fn device(&self, config: DeviceConfig) -> Result<GasDevice, ConfigError> {
        let det = GasDetector::new(self.adc.clone(), NoDelay::default(), self.config);
        Device::new(config, hal(det, &self.panel))
    }

    /// Sets the combustible gas concentration, %LEL (the bridge voltage).
    pub fn set_lel(&self, lel: f32) {
        let nominal = self.config.lel.calibration.invert(lel);
        let uv = (nominal * self.config.lel.uv_per_lel) as i32;
        self.adc.set_input_uv(0, uv);
        self.adc.set_input_uv(1, 0);
    }

    /// Sets the CO concentration, ppm.
    pub fn set_co(&self, ppm: f32) {
        let nominal = self.config.co.calibration.invert(ppm);
        let uv = self
            .config
            .co
            .zero_uv
            .saturating_add((nominal * self.config.co.uv_per_ppm) as i32);
        self.adc.set_input_uv(2, uv);
    }
}

/// An electrical device on the models.
pub type ElectricalDevice =
    Device<ElectricalMonitor<AnalogSim, Max31865Sim>, PinSim, PinSim, PinSim, EpochClock>;

/// The winding state of the residual-current transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winding {
    /// Intact.
    Ok,
    /// Broken.
    Open,
    /// Shorted.
    Short,
}

/// An electrical-fire monitor rig: set residual mA and four temperatures.
#[derive(Debug, Clone)]
pub struct ElectricalRig {
    /// The analog input (RMS converter and winding check).
    pub adc: AnalogSim,
    /// The four MAX31865s.
    pub rtds: [Max31865Sim; 4],
    /// Configuration.
    pub config: ElectricalConfig,
    /// Buzzer, relay, button.
    pub panel: Panel,
}

impl Default for ElectricalRig {
    fn default() -> Self {
        Self::new()
    }
}

impl ElectricalRig {
    /// No leakage, 20 °C, intact winding, default configuration.
    pub fn new() -> Self {
        let config = ElectricalConfig::default();
        let probe = |i: usize| {
            Max31865Sim::new(
                config.temps[i].unwrap_or(crate::drivers::max31865::RtdConfig::PT100_3WIRE),
            )
        };
        let rig = Self {
            adc: AnalogSim::new(),
            rtds: [probe(0), probe(1), probe(2), probe(3)],
            config,
            panel: Panel::default(),
        };
        rig.set_winding(Winding::Ok);
        rig.set_residual_ma(0.0);
        rig
    }

    /// The device (every temperature channel fitted).
    pub fn device(&self, config: DeviceConfig) -> Result<ElectricalDevice, ConfigError> {
        let spis = self.rtds.clone().map(Some);
        let mon = ElectricalMonitor::new(self.adc.clone(), spis, self.config);
        Device::new(config, hal(mon, &self.panel))
    }

    /// Sets the residual current, mA.
    pub fn set_residual_ma(&self, ma: f32) {
        let r = &self.config.residual;
        let nominal = r.calibration.invert(ma);
        let uv = nominal * r.burden_ohms * 1000.0 / r.turns;
        self.adc.set_uv(r.rms_channel, Some(uv as i32));
    }

    /// Sets the transformer winding state.
    pub fn set_winding(&self, w: Winding) {
        let uv = match w {
            Winding::Ok => 20_000,
            Winding::Open => 3_200_000,
            Winding::Short => 0,
        };
        self.adc
            .set_uv(self.config.residual.check_channel, Some(uv));
    }

    /// Sets cable temperature `channel` (1–4), °C.
    pub fn set_temp(&self, channel: usize, celsius: f32) {
        if let Some(r) = channel.checked_sub(1).and_then(|i| self.rtds.get(i)) {
            let cal = self.config.temp_calibration[channel - 1];
            r.set_celsius(cal.invert(celsius));
        }
    }

    /// Injects a probe fault on `channel` (1–4).
    pub fn set_probe_fault(&self, channel: usize, fault: Option<RtdFault>) {
        if let Some(r) = channel.checked_sub(1).and_then(|i| self.rtds.get(i)) {
            r.set_fault(fault);
        }
    }
}

/// A water-pressure device on the models.
pub type WaterDevice = Device<PressureMonitor<AnalogSim>, PinSim, PinSim, PinSim, EpochClock>;

/// A fire-water pressure rig: set MPa and tank level.
#[derive(Debug, Clone)]
pub struct WaterRig {
    /// The analog input of both loops.
    pub adc: AnalogSim,
    /// Configuration.
    pub config: PressureConfig,
    /// Buzzer, relay, button.
    pub panel: Panel,
}

impl Default for WaterRig {
    fn default() -> Self {
        Self::new()
    }
}

fn loop_ma(cfg: &crate::drivers::current_loop::LoopConfig, value: f32) -> f32 {
    let nominal = cfg.calibration.invert(value);
    4.0 + 16.0 * (nominal - cfg.at_4ma) / (cfg.at_20ma - cfg.at_4ma)
}

impl WaterRig {
    /// 0.3 MPa and 5 m, default configuration.
    pub fn new() -> Self {
        let rig = Self {
            adc: AnalogSim::new(),
            config: PressureConfig::default(),
            panel: Panel::default(),
        };
        rig.set_pressure_mpa(0.3);
        rig.set_level_m(5.0);
        rig
    }

    /// The device.
    pub fn device(&self, config: DeviceConfig) -> Result<WaterDevice, ConfigError> {
        let mon = PressureMonitor::new(self.adc.clone(), self.config);
        Device::new(config, hal(mon, &self.panel))
    }

    /// Sets the pipe pressure, MPa.
    pub fn set_pressure_mpa(&self, mpa: f32) {
        let c = &self.config.pressure;
        self.adc
            .set_loop_ma(c.channel, loop_ma(c, mpa), c.shunt_ohms);
    }

    /// Sets the pressure loop current directly (fault injection: 0 = broken
    /// wire, 2 mA = NE 43 failure signal).
    pub fn set_pressure_loop_ma(&self, ma: f32) {
        let c = &self.config.pressure;
        self.adc.set_loop_ma(c.channel, ma, c.shunt_ohms);
    }

    /// Sets the tank level, m (no-op without a level transmitter).
    pub fn set_level_m(&self, m: f32) {
        if let Some(c) = &self.config.level {
            self.adc.set_loop_ma(c.channel, loop_ma(c, m), c.shunt_ohms);
        }
    }
}

/// A crane device on the models.
pub type CraneDevice = Device<
    CraneMonitor<AnalogSim, Hx711Clock, Hx711Data, SsiSim, Scl3300Sim, NoDelay>,
    PinSim,
    PinSim,
    PinSim,
    EpochClock,
>;

/// A tower-crane rig: set load, radius, height, slew, wind and tilt.
#[derive(Debug, Clone)]
pub struct CraneRig {
    /// The anemometer's analog input.
    pub adc: AnalogSim,
    /// The load pin's HX711.
    pub load: Hx711Sim,
    /// Trolley encoder.
    pub radius: SsiSim,
    /// Hoist-drum encoder.
    pub height: SsiSim,
    /// Slewing encoder.
    pub slew: SsiSim,
    /// Inclinometer.
    pub inclinometer: Scl3300Sim,
    /// Configuration.
    pub config: CraneConfig,
    /// Buzzer, relay, button.
    pub panel: Panel,
}

impl Default for CraneRig {
    fn default() -> Self {
        Self::new()
    }
}

fn counts(cfg: &EncoderConfig, value: f32) -> u32 {
    let nominal = f64::from(cfg.calibration.invert(value));
    let delta = nominal / f64::from(cfg.units_per_count);
    i64::from(cfg.zero_count)
        .saturating_add(delta.round() as i64)
        .clamp(0, i64::from(u32::MAX)) as u32
}

impl CraneRig {
    /// Empty hook at 10 m radius and 20 m height, calm, plumb.
    pub fn new() -> Self {
        let config = CraneConfig::default();
        let rig = Self {
            adc: AnalogSim::new(),
            load: Hx711Sim::new(),
            radius: SsiSim::new(config.radius.ssi),
            height: SsiSim::new(config.height.ssi),
            slew: SsiSim::new(config.slew.ssi),
            inclinometer: Scl3300Sim::new(),
            config,
            panel: Panel::default(),
        };
        rig.set_load_t(0.0);
        rig.set_radius_m(10.0);
        rig.set_height_m(20.0);
        rig.set_slew_deg(0.0);
        rig.set_wind_ms(2.0);
        rig.set_tilt_deg(0.05, 0.05);
        rig
    }

    /// The device.
    pub fn device(&self, config: DeviceConfig) -> Result<CraneDevice, ConfigError> {
        let buses = CraneBuses {
            adc: self.adc.clone(),
            load_clk: self.load.clock(),
            load_dout: self.load.data(),
            radius: self.radius.clone(),
            height: self.height.clone(),
            slew: self.slew.clone(),
            inclinometer: self.inclinometer.clone(),
        };
        let mon = CraneMonitor::new(buses, NoDelay::default(), self.config.clone());
        Device::new(config, hal(mon, &self.panel))
    }

    /// Sets the hook load, t.
    pub fn set_load_t(&self, t: f32) {
        let l = &self.config.load;
        let nominal = l.calibration.invert(t);
        self.load.set_code(
            l.zero_counts
                .saturating_add((nominal * l.counts_per_tonne) as i32),
        );
    }

    /// Sets the trolley radius, m.
    pub fn set_radius_m(&self, m: f32) {
        self.radius.set_position(counts(&self.config.radius, m));
    }

    /// Sets the hook height, m.
    pub fn set_height_m(&self, m: f32) {
        self.height.set_position(counts(&self.config.height, m));
    }

    /// Sets the slew angle, degrees.
    pub fn set_slew_deg(&self, deg: f32) {
        self.slew.set_position(counts(&self.config.slew, deg));
    }

    /// Sets the wind speed, m/s.
    pub fn set_wind_ms(&self, ms: f32) {
        let c = &self.config.wind;
        self.adc
            .set_loop_ma(c.channel, loop_ma(c, ms), c.shunt_ohms);
    }

    /// Sets the mast's axis angles, degrees.
    pub fn set_tilt_deg(&self, x: f32, y: f32) {
        let t = &self.config.tilt;
        self.inclinometer.set_angles(t.x.invert(x), t.y.invert(y));
    }

    /// Injects a line fault on the encoder of `metric` (radius, height or
    /// slew).
    pub fn set_encoder_fault(&self, metric: Metric, fault: Option<LineFault>) {
        match metric {
            Metric::RadiusM => self.radius.set_fault(fault),
            Metric::HeightM => self.height.set_fault(fault),
            Metric::SlewDeg => self.slew.set_fault(fault),
            _ => {}
        }
    }
}
