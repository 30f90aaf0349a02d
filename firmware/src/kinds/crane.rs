//! Tower-crane safety monitor ("black box", JGJ 332 / GB/T 28264 class):
//! load, moment, radius, height, slew, wind and tilt.
//!
//! * **Load, t**: a strain-gauge load pin at the hoist rope's dead end or
//!   sheave (full bridge, ~2 mV/V), on an HX711 at gain 128
//!   ([`crate::drivers::hx711`]). `t = (code − zero_counts) /
//!   counts_per_tonne`, calibrated with a test weight. A code at either rail
//!   means a broken signal wire or an input far beyond the pin's range:
//!   `out_of_range`. More than 0.5 t below zero is tare drift:
//!   `calibration`.
//! * **Radius, height, slew**: SSI multi-turn absolute encoders on the
//!   trolley drive, the hoist drum and the slewing pinion
//!   ([`crate::drivers::ssi`]): `value = (count − zero_count) ×
//!   units_per_count`, so no homing run is needed after a power cut. Slew is
//!   cumulative (cable-twist limits), ±1080°.
//! * **Moment, %**: the hook load over the rated load at the current radius
//!   from the crane's load chart (linear between chart points), as a load
//!   moment limiter computes it (GB 5144 asks for one). Left out when the
//!   load or radius is faulty; `calibration` when the radius is beyond the
//!   chart.
//! * **Wind, m/s**: a cup anemometer with a 4–20 mA output (0–30 m/s class)
//!   at the jib head ([`crate::drivers::current_loop`]).
//! * **Tilt, °**: a Murata SCL3300 on the mast ([`crate::drivers::scl3300`]);
//!   tilt from vertical = √(x² + y²) of the two axis angles after their
//!   mounting offsets, exact to 0.01 % below 5°, where tower limits lie.
//!
//! The self-test waits for the HX711's data-ready, runs the SCL3300's
//! start-up sequence (reset, mode 4, status and WHOAMI checks) and reads
//! every encoder once.

use anquan_protocol::{DeviceKind, Fault, FaultCode, Faults, Metric};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use serde::{Deserialize, Serialize};

use super::push_fault;
use crate::calibration::Calibration;
use crate::drivers::current_loop::LoopConfig;
use crate::drivers::hx711::{self, Hx711};
use crate::drivers::scl3300::{self, Scl3300};
use crate::drivers::ssi::{SsiConfig, SsiEncoder};
use crate::hal::AnalogInput;
use crate::math::sqrt;
use crate::sensors::{ChannelDefaults, ChannelSample, Sample, Sensors};

/// Most points of a load chart.
pub const MAX_CHART_POINTS: usize = 16;

/// The load pin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadConfig {
    /// HX711 counts per tonne of hook load (sensitivity × reeving).
    pub counts_per_tonne: f32,
    /// Counts with the empty hook.
    pub zero_counts: i32,
    /// Trim in tonnes.
    #[serde(default)]
    pub calibration: Calibration,
    /// Below this (t, negative) the tare has drifted.
    pub drift_below: f32,
}

/// One SSI encoder channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Frame layout.
    pub ssi: SsiConfig,
    /// Count at the reference position (trolley at the inner stop, hook at
    /// ground level, jib pointing north).
    pub zero_count: u32,
    /// Metres (or degrees) per count; negative to reverse.
    pub units_per_count: f32,
    /// Trim in the channel's unit.
    #[serde(default)]
    pub calibration: Calibration,
}

impl EncoderConfig {
    /// The channel value at encoder `count`.
    pub fn value(&self, count: u32) -> f32 {
        let delta = i64::from(count) - i64::from(self.zero_count);
        let nominal = (delta as f64 * f64::from(self.units_per_count)) as f32;
        self.calibration.apply(nominal)
    }
}

/// The inclinometer's mounting offsets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TiltConfig {
    /// X axis (zero = its reading with the mast plumb).
    pub x: Calibration,
    /// Y axis.
    pub y: Calibration,
}

impl TiltConfig {
    /// Tilt from vertical for the two axis angles.
    pub fn tilt(&self, x_deg: f32, y_deg: f32) -> f32 {
        let x = self.x.apply(x_deg);
        let y = self.y.apply(y_deg);
        sqrt(x * x + y * y)
    }
}

/// A point of the load chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartPoint {
    /// Radius, m.
    pub radius_m: f32,
    /// Rated load at that radius, t.
    pub rated_t: f32,
}

/// The rated load over the radius, from the manufacturer's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LoadChart(pub heapless::Vec<ChartPoint, MAX_CHART_POINTS>);

/// How far past the last chart point a radius may read before it is a
/// calibration fault rather than encoder noise at the jib end.
const CHART_MARGIN_M: f32 = 0.5;

impl LoadChart {
    /// An illustrative chart of a 6 t, 56 m flat-top crane (QTZ80 class):
    /// replace it with the crane's own table.
    pub fn example_6t_56m() -> Self {
        let mut v = heapless::Vec::new();
        for (r, t) in [
            (2.5, 6.0),
            (14.9, 6.0),
            (20.0, 4.35),
            (25.0, 3.39),
            (30.0, 2.75),
            (35.0, 2.3),
            (40.0, 1.96),
            (45.0, 1.69),
            (50.0, 1.47),
            (56.0, 1.0),
        ] {
            let _ = v.push(ChartPoint {
                radius_m: r,
                rated_t: t,
            });
        }
        Self(v)
    }

    /// The rated load at `radius_m`; `None` beyond the chart.
    pub fn rated(&self, radius_m: f32) -> Option<f32> {
        let first = self.0.first()?;
        let last = self.0.last()?;
        if !radius_m.is_finite() || radius_m > last.radius_m + CHART_MARGIN_M {
            return None;
        }
        if radius_m <= first.radius_m {
            return Some(first.rated_t);
        }
        for w in self.0.windows(2) {
            let (a, b) = (w[0], w[1]);
            if radius_m <= b.radius_m {
                let f = (radius_m - a.radius_m) / (b.radius_m - a.radius_m);
                return Some(a.rated_t + f * (b.rated_t - a.rated_t));
            }
        }
        Some(last.rated_t)
    }

    /// At least one point, radii strictly increasing, rated loads positive.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            return Err("needs at least one point");
        }
        for p in &self.0 {
            if !(p.radius_m.is_finite() && p.radius_m >= 0.0) {
                return Err("radius_m must be a non-negative number");
            }
            if !(p.rated_t.is_finite() && p.rated_t > 0.0) {
                return Err("rated_t must be a positive number");
            }
        }
        if self.0.windows(2).any(|w| w[1].radius_m <= w[0].radius_m) {
            return Err("radii must increase strictly");
        }
        Ok(())
    }
}

/// Configuration of a crane monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CraneConfig {
    /// Load pin.
    pub load: LoadConfig,
    /// Trolley encoder (m).
    pub radius: EncoderConfig,
    /// Hoist-drum encoder (m).
    pub height: EncoderConfig,
    /// Slewing encoder (°).
    pub slew: EncoderConfig,
    /// Anemometer loop (m/s).
    pub wind: LoopConfig,
    /// Inclinometer offsets.
    #[serde(default)]
    pub tilt: TiltConfig,
    /// Load chart.
    pub chart: LoadChart,
}

impl Default for CraneConfig {
    fn default() -> Self {
        let encoder = |units_per_count| EncoderConfig {
            ssi: SsiConfig::MULTI_TURN_25_GRAY,
            zero_count: 1 << 20,
            units_per_count,
            calibration: Calibration::IDENTITY,
        };
        Self {
            // 2 mV/V at 5 V = 10 mV per 10 t at the pin; the HX711's
            // ±20 mV span is ±2^23 counts: 2^23 / 2 / 10 ≈ 419 430 counts/t.
            load: LoadConfig {
                counts_per_tonne: 419_430.0,
                zero_counts: 0,
                calibration: Calibration::IDENTITY,
                drift_below: -0.5,
            },
            // 8192 counts per encoder turn; 1 mm of trolley or rope per count
            // and 1/100° of slew per count are typical gearings.
            radius: encoder(0.001),
            height: encoder(0.001),
            slew: encoder(0.01),
            wind: LoopConfig::new(0, 0.0, 30.0),
            tilt: TiltConfig::default(),
            chart: LoadChart::example_6t_56m(),
        }
    }
}

impl CraneConfig {
    /// Checks every number; names the key.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let l = &self.load;
        if !(l.counts_per_tonne.is_finite() && l.counts_per_tonne != 0.0) {
            return Err(("load.counts_per_tonne", "must be a non-zero number"));
        }
        if !(l.drift_below.is_finite() && l.drift_below < 0.0) {
            return Err(("load.drift_below", "must be a negative number"));
        }
        let calib = "must be finite with span between 0.2 and 5";
        l.calibration
            .validate()
            .map_err(|_| ("load.calibration", calib))?;
        for (key, e) in [
            ("radius", &self.radius),
            ("height", &self.height),
            ("slew", &self.slew),
        ] {
            e.ssi.validate().map_err(|(_, p)| (key, p))?;
            if !(e.units_per_count.is_finite() && e.units_per_count != 0.0) {
                return Err((key, "units_per_count must be a non-zero number"));
            }
            e.calibration.validate().map_err(|_| (key, calib))?;
        }
        self.wind.validate().map_err(|(_, p)| ("wind", p))?;
        self.tilt.x.validate().map_err(|_| ("tilt.x", calib))?;
        self.tilt.y.validate().map_err(|_| ("tilt.y", calib))?;
        self.chart.validate().map_err(|p| ("chart", p))
    }
}

fn range_checked(metric: Metric, v: f32) -> ChannelSample {
    if metric.in_range(v) {
        ChannelSample::Value(v)
    } else {
        // An encoder reading beyond the crane's travel is a wrong zero or
        // gearing, not a position.
        ChannelSample::Fault(FaultCode::Calibration)
    }
}

fn scl_fault<E>(e: scl3300::Error<E>) -> FaultCode {
    match e {
        scl3300::Error::Bus(_) | scl3300::Error::Crc => FaultCode::Comm,
        scl3300::Error::Status | scl3300::Error::NotReady | scl3300::Error::WhoAmI(_) => {
            FaultCode::SelfTest
        }
    }
}

/// A crane monitor.
#[derive(Debug)]
pub struct CraneMonitor<A, CLK, DT, ENC, SPI, D> {
    adc: A,
    load: Hx711<CLK, DT>,
    radius: SsiEncoder<ENC>,
    height: SsiEncoder<ENC>,
    slew: SsiEncoder<ENC>,
    incl: Scl3300<SPI>,
    delay: D,
    config: CraneConfig,
}

/// The buses of a crane monitor.
#[derive(Debug)]
pub struct CraneBuses<A, CLK, DT, ENC, SPI> {
    /// Analog input of the anemometer loop.
    pub adc: A,
    /// HX711 PD_SCK.
    pub load_clk: CLK,
    /// HX711 DOUT.
    pub load_dout: DT,
    /// Trolley encoder.
    pub radius: ENC,
    /// Hoist-drum encoder.
    pub height: ENC,
    /// Slewing encoder.
    pub slew: ENC,
    /// SCL3300.
    pub inclinometer: SPI,
}

impl<A, CLK, DT, ENC, SPI, D> CraneMonitor<A, CLK, DT, ENC, SPI, D>
where
    A: AnalogInput,
    CLK: OutputPin,
    DT: InputPin,
    ENC: SpiDevice,
    SPI: SpiDevice,
    D: DelayNs,
{
    /// The monitor on its buses.
    pub fn new(buses: CraneBuses<A, CLK, DT, ENC, SPI>, delay: D, config: CraneConfig) -> Self {
        Self {
            adc: buses.adc,
            load: Hx711::new(buses.load_clk, buses.load_dout),
            radius: SsiEncoder::new(buses.radius, config.radius.ssi),
            height: SsiEncoder::new(buses.height, config.height.ssi),
            slew: SsiEncoder::new(buses.slew, config.slew.ssi),
            incl: Scl3300::new(buses.inclinometer),
            delay,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CraneConfig {
        &self.config
    }

    fn load_sample(&mut self) -> ChannelSample {
        let code = match self.load.read(&mut self.delay) {
            Ok(c) => c,
            Err(_) => return ChannelSample::Fault(FaultCode::Comm),
        };
        if code == hx711::MAX_CODE || code == hx711::MIN_CODE {
            return ChannelSample::Fault(FaultCode::OutOfRange);
        }
        let cfg = &self.config.load;
        let nominal = (code - cfg.zero_counts) as f32 / cfg.counts_per_tonne;
        let t = cfg.calibration.apply(nominal);
        if !t.is_finite() || t < cfg.drift_below {
            return ChannelSample::Fault(FaultCode::Calibration);
        }
        ChannelSample::Value(t.clamp(0.0, 1_000.0))
    }

    fn moment(&self, load: ChannelSample, radius: ChannelSample) -> ChannelSample {
        let (ChannelSample::Value(t), ChannelSample::Value(r)) = (load, radius) else {
            return ChannelSample::Absent;
        };
        match self.config.chart.rated(r) {
            Some(rated) => ChannelSample::Value((t / rated * 100.0).clamp(0.0, 500.0)),
            None => ChannelSample::Fault(FaultCode::Calibration),
        }
    }
}

impl<A, CLK, DT, ENC, SPI, D> Sensors for CraneMonitor<A, CLK, DT, ENC, SPI, D>
where
    A: AnalogInput,
    CLK: OutputPin,
    DT: InputPin,
    ENC: SpiDevice,
    SPI: SpiDevice,
    D: DelayNs,
{
    fn kind(&self) -> DeviceKind {
        DeviceKind::Crane
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        self.config.validate()
    }

    fn channel_defaults(&self, metric: Metric) -> ChannelDefaults {
        match metric {
            Metric::RadiusM | Metric::HeightM | Metric::SlewDeg => ChannelDefaults::POSITION,
            // Derived from filtered-enough inputs; a calm anemometer
            // legitimately sits at exactly 4 mA for hours.
            Metric::MomentPct | Metric::WindMs => ChannelDefaults {
                stuck_samples: 0,
                ..ChannelDefaults::ANALOG
            },
            _ => ChannelDefaults::ANALOG,
        }
    }

    fn self_test(&mut self, faults: &mut Faults) {
        if self.load.wait_ready(&mut self.delay).is_err() {
            push_fault(faults, Fault::on(FaultCode::Comm, Metric::LoadT));
        }
        if let Err(e) = self.incl.start(&mut self.delay) {
            push_fault(faults, Fault::on(scl_fault(e), Metric::TiltDeg));
        }
        for (enc, metric) in [
            (&mut self.radius, Metric::RadiusM),
            (&mut self.height, Metric::HeightM),
            (&mut self.slew, Metric::SlewDeg),
        ] {
            if let Err(code) = enc.read() {
                push_fault(faults, Fault::on(code, metric));
            }
        }
    }

    fn sample(&mut self, out: &mut Sample) {
        let load = self.load_sample();
        out.set(Metric::LoadT, load);
        let encoders = [
            (Metric::RadiusM, self.radius.read(), self.config.radius),
            (Metric::HeightM, self.height.read(), self.config.height),
            (Metric::SlewDeg, self.slew.read(), self.config.slew),
        ];
        for (metric, read, cfg) in encoders {
            let s = match read {
                Ok(count) => range_checked(metric, cfg.value(count)),
                Err(code) => ChannelSample::Fault(code),
            };
            out.set(metric, s);
        }
        out.set(
            Metric::MomentPct,
            self.moment(load, out.get(Metric::RadiusM)),
        );
        out.set(Metric::WindMs, self.config.wind.read(&mut self.adc));
        let tilt = match self.incl.read_angles() {
            Ok((x, y)) => {
                let t = self.config.tilt.tilt(x, y);
                if t.is_finite() {
                    ChannelSample::Value(t.min(90.0))
                } else {
                    ChannelSample::Fault(FaultCode::OutOfRange)
                }
            }
            Err(e) => ChannelSample::Fault(scl_fault(e)),
        };
        out.set(Metric::TiltDeg, tilt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::scl3300::{RS_NORMAL, cmd, response};
    use crate::hal::FixedAdc;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::digital::{Mock as Pin, State, Transaction as P};
    use embedded_hal_mock::eh1::spi::{Mock as Spi, Transaction as S};
    use std::vec;
    use std::vec::Vec;

    fn hx711(code: i32) -> (Vec<P>, Vec<P>) {
        let mut clk = vec![];
        let mut dout = vec![P::get(State::Low)];
        let bits = (code as u32) & 0xFF_FFFF;
        for i in (0..24).rev() {
            clk.extend([P::set(State::High), P::set(State::Low)]);
            dout.push(P::get(if bits >> i & 1 == 1 {
                State::High
            } else {
                State::Low
            }));
        }
        clk.extend([P::set(State::High), P::set(State::Low)]);
        dout.push(P::get(State::High));
        (clk, dout)
    }

    fn ssi(frame: u32) -> Vec<S<u8>> {
        vec![
            S::transaction_start(),
            S::read_vec(frame.to_be_bytes().to_vec()),
            S::transaction_end(),
        ]
    }

    fn scl(x: i16, y: i16) -> Vec<S<u8>> {
        let f = |c: u32, a: u32| {
            [
                S::transaction_start(),
                S::transfer(c.to_be_bytes().to_vec(), a.to_be_bytes().to_vec()),
                S::transaction_end(),
            ]
        };
        let mut v = vec![];
        v.extend(f(cmd::READ_ANG_X, response(0x18, RS_NORMAL, 0)));
        v.extend(f(cmd::READ_ANG_Y, response(0x24, RS_NORMAL, x as u16)));
        v.extend(f(cmd::READ_STATUS, response(0x28, RS_NORMAL, y as u16)));
        v
    }

    /// A monitor on mocks: one SPI mock serves the three encoders in
    /// radius, height, slew order.
    fn monitor(
        wind_uv: i32,
        [clk, dout]: [&Pin; 2],
        enc: &Spi<u8>,
        incl: &Spi<u8>,
        cfg: CraneConfig,
    ) -> CraneMonitor<FixedAdc, Pin, Pin, Spi<u8>, Spi<u8>, NoopDelay> {
        let buses = CraneBuses {
            adc: FixedAdc::of(&[Ok(wind_uv)]),
            load_clk: clk.clone(),
            load_dout: dout.clone(),
            radius: enc.clone(),
            height: enc.clone(),
            slew: enc.clone(),
            inclinometer: incl.clone(),
        };
        CraneMonitor::new(buses, NoopDelay, cfg)
    }

    fn value(s: ChannelSample) -> f32 {
        match s {
            ChannelSample::Value(v) => v,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    #[test]
    fn samples_every_channel_and_computes_moment() {
        let cfg = CraneConfig::default();
        // 3 t; radius 25 m (rated 3.39 t) → 88.5 %.
        let (clk, dout) = hx711((3.0 * 419_430.0) as i32);
        let mut clk = Pin::new(&clk);
        let mut dout = Pin::new(&dout);
        let zero = 1u32 << 20;
        let mut ex = vec![];
        ex.extend(ssi(cfg.radius.ssi.encode(zero + 25_000)));
        ex.extend(ssi(cfg.height.ssi.encode(zero + 42_300)));
        ex.extend(ssi(cfg.slew.ssi.encode(zero - 9_000)));
        let mut enc = Spi::new(&ex);
        // 0.3° and 0.4° → 0.5° tilt.
        let mut incl = Spi::new(&scl(
            (0.3f32 * 16_384.0 / 90.0) as i16,
            (0.4f32 * 16_384.0 / 90.0) as i16,
        ));
        // 12 mA = 15 m/s.
        let mut crane = monitor(3_000_000, [&clk, &dout], &enc, &incl, cfg);
        let mut s = Sample::new(DeviceKind::Crane);
        crane.sample(&mut s);
        assert!((value(s.get(Metric::LoadT)) - 3.0).abs() < 1e-3);
        assert!((value(s.get(Metric::RadiusM)) - 25.0).abs() < 1e-3);
        assert!((value(s.get(Metric::HeightM)) - 42.3).abs() < 1e-3);
        assert!((value(s.get(Metric::SlewDeg)) + 90.0).abs() < 1e-3);
        assert!((value(s.get(Metric::MomentPct)) - 3.0 / 3.39 * 100.0).abs() < 0.01);
        assert_eq!(s.get(Metric::WindMs), ChannelSample::Value(15.0));
        assert!((value(s.get(Metric::TiltDeg)) - 0.5).abs() < 0.01);
        clk.done();
        dout.done();
        enc.done();
        incl.done();
    }

    #[test]
    fn faults_and_missing_moment() {
        let cfg = CraneConfig::default();
        let (clk, dout) = hx711(hx711::MAX_CODE);
        let mut clk = Pin::new(&clk);
        let mut dout = Pin::new(&dout);
        let zero = 1u32 << 20;
        let mut ex = vec![];
        ex.extend(ssi(u32::MAX));
        ex.extend(ssi(0));
        // Slew beyond ±1080°: a wrong zero.
        ex.extend(ssi(cfg.slew.ssi.encode(zero + 200_000)));
        let mut enc = Spi::new(&ex);
        let mut incl = Spi::new(&{
            let mut v = scl(0, 0);
            // Corrupt the CRC of the ANG_X answer.
            v[4] = S::transfer(
                cmd::READ_ANG_Y.to_be_bytes().to_vec(),
                (response(0x24, RS_NORMAL, 1) ^ 1).to_be_bytes().to_vec(),
            );
            v.truncate(6);
            v
        });
        let mut crane = monitor(0, [&clk, &dout], &enc, &incl, cfg);
        let mut s = Sample::new(DeviceKind::Crane);
        crane.sample(&mut s);
        use ChannelSample::Fault as F;
        assert_eq!(s.get(Metric::LoadT), F(FaultCode::OutOfRange));
        assert_eq!(s.get(Metric::RadiusM), F(FaultCode::OpenCircuit));
        assert_eq!(s.get(Metric::HeightM), F(FaultCode::ShortCircuit));
        assert_eq!(s.get(Metric::SlewDeg), F(FaultCode::Calibration));
        assert_eq!(s.get(Metric::MomentPct), ChannelSample::Absent);
        assert_eq!(s.get(Metric::WindMs), F(FaultCode::OpenCircuit));
        assert_eq!(s.get(Metric::TiltDeg), F(FaultCode::Comm));
        clk.done();
        dout.done();
        enc.done();
        incl.done();
    }

    #[test]
    fn load_chart_interpolates_and_bounds() {
        let c = LoadChart::example_6t_56m();
        assert!(c.validate().is_ok());
        assert_eq!(c.rated(0.0), Some(6.0));
        assert_eq!(c.rated(10.0), Some(6.0));
        assert!((c.rated(22.5).unwrap() - (4.35 + 3.39) / 2.0).abs() < 1e-4);
        assert_eq!(c.rated(56.0), Some(1.0));
        assert_eq!(c.rated(56.4), Some(1.0));
        assert_eq!(c.rated(57.0), None);
        assert_eq!(c.rated(f32::NAN), None);
        assert_eq!(LoadChart(heapless::Vec::new()).rated(1.0), None);
        let mut bad = c.clone();
        bad.0[3].radius_m = 1.0;
        assert_eq!(bad.validate(), Err("radii must increase strictly"));
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = CraneConfig::default();
        assert!(c.validate().is_ok());
        c.height.units_per_count = 0.0;
        assert_eq!(c.validate().unwrap_err().0, "height");
        let mut c = CraneConfig::default();
        c.chart.0.clear();
        assert_eq!(c.validate().unwrap_err().0, "chart");
    }
}
