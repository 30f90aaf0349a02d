//! Virtual devices: the `anquan-firmware` device code, unchanged, on the
//! firmware's host part models (feature `sim`), with a physical model
//! turning the knobs and a link that can lose, corrupt, duplicate or skew
//! what the device publishes; and [`Fleet`], a scenario's devices advanced
//! one second at a time along its timeline.
//!
//! A [`Fleet`] does no I/O: it turns a scenario into the stream of MQTT
//! messages the site would send ([`Outgoing`]), which [`crate::run`]
//! publishes to a broker. The same scenario and seed give the same stream,
//! byte for byte.

use anquan_edge_rules::RuleSet;
use anquan_firmware::hal::EpochClock;
use anquan_firmware::kinds::crane::{CraneBuses, CraneMonitor};
use anquan_firmware::kinds::electrical::ElectricalMonitor;
use anquan_firmware::kinds::gas::GasDetector;
use anquan_firmware::kinds::water::PressureMonitor;
use anquan_firmware::sim::rigs::{
    CraneDevice, CraneRig, ElectricalDevice, ElectricalRig, GasDevice, GasRig, Panel, SIM_EPOCH_MS,
    WaterDevice, WaterRig, Winding,
};
use anquan_firmware::sim::{LineFault, NoDelay, RtdFault, TransportSim};
use anquan_firmware::{Device, DeviceConfig, Hal};
use anquan_protocol::{DeviceKind, Id, Metric, Telemetry, Topic, TopicKind};

use crate::models::{CableModel, CraneModel, GasModel, PipeModel};
use crate::rng::Rng;
use crate::scenario::{DeviceSpec, Event, Scenario};

/// The simulation step: the firmware's default sample period.
pub const STEP_MS: u64 = 1_000;

/// Unix time of a scenario's t = 0 unless it sets `start` (the firmware
/// rigs' clock epoch).
pub const START_MS: u64 = SIM_EPOCH_MS;

/// A message the site sends at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Scenario time, ms.
    pub t_ms: u64,
    /// Index of the device in the scenario.
    pub device: usize,
    /// MQTT topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Retained.
    pub retain: bool,
    /// A well-formed frame the gateway will take as a sign of life (not a
    /// corrupt payload nor a duplicate).
    pub alive: bool,
}

/// Which channels can be made faulty, per kind, and how.
pub fn check_fault(kind: DeviceKind, channel: &str, fault: Option<&str>) -> Result<(), String> {
    let metric = Metric::parse(channel).ok_or_else(|| format!("unknown channel `{channel}`"))?;
    let ok = match kind {
        DeviceKind::Gas => matches!(metric, Metric::LelPct | Metric::CoPpm),
        DeviceKind::Electrical => matches!(
            metric,
            Metric::ResidualMa | Metric::Temp1C | Metric::Temp2C | Metric::Temp3C | Metric::Temp4C
        ),
        DeviceKind::WaterPressure => matches!(metric, Metric::PressureMpa),
        DeviceKind::Crane => matches!(
            metric,
            Metric::LoadT | Metric::RadiusM | Metric::HeightM | Metric::SlewDeg | Metric::WindMs
        ),
        // A panel reports its points' faults itself (`anquan-sim fire-panel`).
        DeviceKind::FirePanel => false,
    };
    if !ok {
        return Err(format!(
            "a {kind} device has no faultable channel `{channel}`"
        ));
    }
    match fault.unwrap_or("open_circuit") {
        "open_circuit" | "short_circuit" => Ok(()),
        f => Err(format!("fault `{f}`: open_circuit or short_circuit")),
    }
}

/// The rig and the firmware device on it.
#[derive(Debug)]
enum Hw {
    Gas(GasRig, Box<GasDevice>, GasModel),
    Electrical(ElectricalRig, Box<ElectricalDevice>, CableModel),
    Water(WaterRig, Box<WaterDevice>, PipeModel),
    Crane(CraneRig, Box<CraneDevice>, CraneModel),
}

fn hal<S>(
    sensors: S,
    p: &Panel,
    epoch_ms: u64,
) -> Hal<
    S,
    anquan_firmware::sim::PinSim,
    anquan_firmware::sim::PinSim,
    anquan_firmware::sim::PinSim,
    EpochClock,
> {
    Hal::new(sensors)
        .with_buzzer(p.buzzer.clone())
        .with_relay(p.relay.clone())
        .with_button(p.button.clone())
        .with_clock(EpochClock { epoch_ms })
}

/// Random link outages: ordinary cellular jitter.
#[derive(Debug, Clone, Copy)]
struct Jitter {
    until_ms: u64,
    mean_interval_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

/// A fault in force: channel, open (else short), until (ms, None = end).
#[derive(Debug, Clone)]
struct ActiveFault {
    metric: Metric,
    open: bool,
    until_ms: Option<u64>,
}

/// One virtual device.
#[derive(Debug)]
pub struct VirtualDevice {
    /// Device id.
    pub id: Id,
    /// Kind.
    pub kind: DeviceKind,
    config: DeviceConfig,
    rules: RuleSet,
    hw: Hw,
    link: TransportSim,
    rng: Rng,
    /// Powered off until (ms).
    off_until: Option<u64>,
    /// Link down until (ms).
    link_down_until: Option<u64>,
    corrupt_until: u64,
    duplicate_until: u64,
    skew_ms: i64,
    faults: Vec<ActiveFault>,
    button_release_ms: Option<u64>,
    /// Boot time (ms) of the firmware now running: its uptime clock starts here.
    boot_ms: u64,
    /// Unix ms of t = 0: the devices' clock epoch.
    epoch_ms: u64,
    /// A planned power-off to announce at the next step, minutes.
    announce: Option<f32>,
    /// The last frame published and its topic (the announcement repeats it).
    last_frame: Option<(String, Telemetry)>,
    /// Frames carry the pump's running contact (`pump_on`).
    pump_contact: bool,
    jitter: Option<Jitter>,
    /// The link's own random numbers, so that jitter does not change the
    /// physics' noise.
    link_rng: Rng,
}

impl VirtualDevice {
    /// The device of `spec` at site `site`, running `rules`, its clock
    /// reading `epoch_ms` at t = 0.
    pub fn new(
        site: &Id,
        spec: &DeviceSpec,
        rules: RuleSet,
        seed: u64,
        epoch_ms: u64,
    ) -> Result<Self, String> {
        let id = Id::new(&spec.id).map_err(|e| e.to_string())?;
        let mut config = DeviceConfig::new(site.clone(), id.clone());
        if let Some(p) = spec.report_period_s {
            config.report_period_ms = p * 1000;
        }
        let hw = Self::build(spec.kind, &config, &rules, &spec.model, epoch_ms)?;
        Ok(Self {
            id,
            kind: spec.kind,
            config,
            rules,
            hw,
            link: TransportSim::connected(),
            rng: Rng::derive(seed, &spec.id),
            off_until: None,
            link_down_until: None,
            corrupt_until: 0,
            duplicate_until: 0,
            skew_ms: 0,
            faults: Vec::new(),
            button_release_ms: None,
            boot_ms: 0,
            epoch_ms,
            announce: None,
            last_frame: None,
            pump_contact: spec.model.pump_contact.unwrap_or(false),
            jitter: None,
            link_rng: Rng::derive(seed, &format!("{}/link", spec.id)),
        })
    }

    fn build(
        kind: DeviceKind,
        config: &DeviceConfig,
        rules: &RuleSet,
        model: &crate::models::ModelParams,
        epoch_ms: u64,
    ) -> Result<Hw, String> {
        let c = config.clone();
        let r = rules.clone();
        let e = |e: anquan_firmware::ConfigError| e.to_string();
        Ok(match kind {
            DeviceKind::FirePanel => {
                return Err(
                    "a fire_panel is not one of our firmware's devices: it speaks GB/T 26875.3 (anquan-sim fire-panel)"
                        .into(),
                );
            }
            DeviceKind::Gas => {
                let rig = GasRig::new();
                let det = GasDetector::new(rig.adc.clone(), NoDelay::default(), rig.config);
                let dev = Device::with_rules(c, r, hal(det, &rig.panel, epoch_ms)).map_err(e)?;
                Hw::Gas(rig, Box::new(dev), GasModel::new(model))
            }
            DeviceKind::Electrical => {
                let rig = ElectricalRig::new();
                let mon =
                    ElectricalMonitor::new(rig.adc.clone(), rig.rtds.clone().map(Some), rig.config);
                let dev = Device::with_rules(c, r, hal(mon, &rig.panel, epoch_ms)).map_err(e)?;
                Hw::Electrical(rig, Box::new(dev), CableModel::new(model))
            }
            DeviceKind::WaterPressure => {
                let rig = WaterRig::new();
                let mon = PressureMonitor::new(rig.adc.clone(), rig.config);
                let dev = Device::with_rules(c, r, hal(mon, &rig.panel, epoch_ms)).map_err(e)?;
                Hw::Water(rig, Box::new(dev), PipeModel::new(model))
            }
            DeviceKind::Crane => {
                let rig = CraneRig::new();
                let buses = CraneBuses {
                    adc: rig.adc.clone(),
                    load_clk: rig.load.clock(),
                    load_dout: rig.load.data(),
                    radius: rig.radius.clone(),
                    height: rig.height.clone(),
                    slew: rig.slew.clone(),
                    inclinometer: rig.inclinometer.clone(),
                };
                let mon = CraneMonitor::new(buses, NoDelay::default(), rig.config.clone());
                let dev = Device::with_rules(c, r, hal(mon, &rig.panel, epoch_ms)).map_err(e)?;
                Hw::Crane(rig, Box::new(dev), CraneModel::new(model))
            }
        })
    }

    /// Reboots the firmware on the same rig and model (seq from 0, empty
    /// buffer), keeping the physics.
    fn reboot(&mut self, now_ms: u64) {
        let c = self.config.clone();
        let r = self.rules.clone();
        // The board's real-time clock kept time while it was off; its
        // uptime starts again at 0.
        let epoch = self.epoch_ms + now_ms;
        let rebuilt: Result<(), anquan_firmware::ConfigError> = (|| {
            match &mut self.hw {
                Hw::Gas(rig, dev, _) => {
                    let det = GasDetector::new(rig.adc.clone(), NoDelay::default(), rig.config);
                    **dev = Device::with_rules(c, r, hal(det, &rig.panel, epoch))?;
                }
                Hw::Electrical(rig, dev, _) => {
                    let mon = ElectricalMonitor::new(
                        rig.adc.clone(),
                        rig.rtds.clone().map(Some),
                        rig.config,
                    );
                    **dev = Device::with_rules(c, r, hal(mon, &rig.panel, epoch))?;
                }
                Hw::Water(rig, dev, _) => {
                    let mon = PressureMonitor::new(rig.adc.clone(), rig.config);
                    **dev = Device::with_rules(c, r, hal(mon, &rig.panel, epoch))?;
                }
                Hw::Crane(rig, dev, _) => {
                    let buses = CraneBuses {
                        adc: rig.adc.clone(),
                        load_clk: rig.load.clock(),
                        load_dout: rig.load.data(),
                        radius: rig.radius.clone(),
                        height: rig.height.clone(),
                        slew: rig.slew.clone(),
                        inclinometer: rig.inclinometer.clone(),
                    };
                    let mon = CraneMonitor::new(buses, NoDelay::default(), rig.config.clone());
                    **dev = Device::with_rules(c, r, hal(mon, &rig.panel, epoch))?;
                }
            }
            Ok(())
        })();
        // The configuration was accepted at start-up; it cannot fail now.
        let _ = rebuilt;
        self.boot_ms = now_ms;
        self.link = TransportSim::connected();
    }

    fn panel(&self) -> &Panel {
        match &self.hw {
            Hw::Gas(r, ..) => &r.panel,
            Hw::Electrical(r, ..) => &r.panel,
            Hw::Water(r, ..) => &r.panel,
            Hw::Crane(r, ..) => &r.panel,
        }
    }

    /// Applies an event at `t_ms`.
    pub fn apply(&mut self, t_ms: u64, ev: &Event) {
        let t = t_ms as f64 / 1000.0;
        let until = |d: f64| t_ms + (d.max(0.0) * 1000.0) as u64;
        match (&mut self.hw, ev) {
            (Hw::Gas(_, _, m), Event::GasLeak { lel, rate, tau_s }) => m.leak(*lel, *rate, *tau_s),
            (Hw::Gas(_, _, m), Event::CoRelease { ppm, rate }) => m.co(*ppm, *rate),
            (Hw::Gas(_, _, m), Event::Ventilate) => m.ventilate(),
            (Hw::Electrical(_, _, m), Event::LoadCurrent { channel, amps }) => {
                if let Some(a) = m.load_a.get_mut(channel.wrapping_sub(1)) {
                    *a = *amps;
                }
            }
            (Hw::Electrical(_, _, m), Event::ResidualCurrent { ma, rate }) => {
                m.residual(*ma, *rate)
            }
            (Hw::Water(_, _, m), Event::Pump { on }) => m.pump(*on),
            (Hw::Water(_, _, m), Event::PipeLeak { mpa_per_min }) => m.leak(*mpa_per_min),
            (Hw::Water(_, _, m), Event::PipeBurst { residual_mpa }) => {
                m.burst(residual_mpa.unwrap_or(0.02))
            }
            (Hw::Water(_, _, m), Event::PipeRepair) => m.repair(),
            (
                Hw::Crane(_, _, m),
                Event::Lift {
                    load_t,
                    radius_m,
                    cycle_s,
                },
            ) => m.lift(t, *load_t, *radius_m, *cycle_s),
            (
                Hw::Crane(_, _, m),
                Event::Gust {
                    speed_ms,
                    duration_s,
                },
            ) => m.gust(*speed_ms, t + duration_s),
            (Hw::Crane(_, _, m), Event::Wind { mean_ms }) => m.wind(*mean_ms),
            (Hw::Crane(_, _, m), Event::Tilt { deg }) => m.tilt(*deg),
            (_, Event::Offline { duration_s, .. } | Event::BrokerOutage { duration_s }) => {
                let u = until(*duration_s);
                self.link_down_until = Some(self.link_down_until.map_or(u, |x| x.max(u)));
                self.link.down();
            }
            (
                _,
                Event::PowerOff {
                    duration_s,
                    announced,
                },
            ) => {
                if *announced {
                    self.announce = Some((duration_s / 60.0).ceil() as f32);
                }
                self.off_until = Some(until(*duration_s));
                self.link.down();
            }
            (
                _,
                Event::LinkJitter {
                    duration_s,
                    mean_interval_s,
                    min_s,
                    max_s,
                },
            ) => {
                self.jitter = Some(Jitter {
                    until_ms: until(*duration_s),
                    mean_interval_ms: mean_interval_s * 1000.0,
                    min_ms: min_s * 1000.0,
                    max_ms: max_s * 1000.0,
                });
            }
            (
                _,
                Event::SensorFault {
                    channel,
                    fault,
                    duration_s,
                },
            ) => {
                if let Some(metric) = Metric::parse(channel) {
                    self.faults.push(ActiveFault {
                        metric,
                        open: fault.as_deref() != Some("short_circuit"),
                        until_ms: duration_s.map(until),
                    });
                }
            }
            (_, Event::CorruptPayloads { duration_s }) => self.corrupt_until = until(*duration_s),
            (_, Event::DuplicateFrames { duration_s }) => self.duplicate_until = until(*duration_s),
            (_, Event::ClockSkew { offset_s }) => self.skew_ms = (offset_s * 1000.0) as i64,
            (_, Event::Button) => {
                self.panel().button.set(true);
                self.button_release_ms = Some(t_ms + STEP_MS);
            }
            // Checked at load: the event fits the kind.
            _ => {}
        }
    }

    /// Sets the sensors from the model at `t_ms`, with faults on top.
    fn sense(&mut self, t_ms: u64) {
        let dt = STEP_MS as f64 / 1000.0;
        let t = t_ms as f64 / 1000.0;
        self.faults.retain(|f| f.until_ms.is_none_or(|u| t_ms < u));
        let faults = self.faults.clone();
        let fault = |m: Metric| faults.iter().rev().find(|f| f.metric == m).map(|f| f.open);
        match &mut self.hw {
            Hw::Gas(rig, _, m) => {
                let (lel, co) = m.step(dt, &mut self.rng);
                rig.set_lel(lel as f32);
                rig.set_co(co as f32);
                // An open pellistor bead drives the bridge far past the
                // ADC's ±256 mV range; a dead CO cell pins its amplifier.
                if let Some(open) = fault(Metric::LelPct) {
                    rig.adc
                        .set_input_uv(0, if open { 2_000_000 } else { -2_000_000 });
                }
                if let Some(open) = fault(Metric::CoPpm) {
                    rig.adc
                        .set_input_uv(2, if open { 5_000_000 } else { -5_000_000 });
                }
            }
            Hw::Electrical(rig, _, m) => {
                let (res, temps) = m.step(dt, &mut self.rng);
                rig.set_residual_ma(res as f32);
                match fault(Metric::ResidualMa) {
                    Some(true) => rig.set_winding(Winding::Open),
                    Some(false) => rig.set_winding(Winding::Short),
                    None => rig.set_winding(Winding::Ok),
                }
                let metrics = [
                    Metric::Temp1C,
                    Metric::Temp2C,
                    Metric::Temp3C,
                    Metric::Temp4C,
                ];
                for (i, (temp, metric)) in temps.iter().zip(metrics).enumerate() {
                    rig.set_temp(i + 1, *temp as f32);
                    let f = fault(metric).map(|open| {
                        if open {
                            RtdFault::Open
                        } else {
                            RtdFault::Short
                        }
                    });
                    rig.set_probe_fault(i + 1, f);
                }
            }
            Hw::Water(rig, _, m) => {
                let (p, level) = m.step(dt, &mut self.rng);
                rig.set_pressure_mpa(p as f32);
                rig.set_level_m(level as f32);
                if let Some(open) = fault(Metric::PressureMpa) {
                    // NE 43: no current is a broken wire; above 21 mA a failed transmitter.
                    rig.set_pressure_loop_ma(if open { 0.0 } else { 22.5 });
                }
            }
            Hw::Crane(rig, _, m) => {
                let c = m.step(t, dt, &mut self.rng);
                rig.set_load_t(c.load_t as f32);
                rig.set_radius_m(c.radius_m as f32);
                rig.set_height_m(c.height_m as f32);
                rig.set_slew_deg(c.slew_deg as f32);
                rig.set_wind_ms(c.wind_ms as f32);
                let axis = (c.tilt_deg / std::f64::consts::SQRT_2) as f32;
                rig.set_tilt_deg(axis, axis);
                rig.load.set_powered(fault(Metric::LoadT).is_none());
                for metric in [Metric::RadiusM, Metric::HeightM, Metric::SlewDeg] {
                    let f = fault(metric).map(|open| {
                        if open {
                            LineFault::Open
                        } else {
                            LineFault::Short
                        }
                    });
                    rig.set_encoder_fault(metric, f);
                }
                if let Some(open) = fault(Metric::WindMs) {
                    let ch = rig.config.wind.channel;
                    let shunt = rig.config.wind.shunt_ohms;
                    rig.adc
                        .set_loop_ma(ch, if open { 0.0 } else { 22.5 }, shunt);
                }
            }
        }
    }

    /// The frame announcing a planned power-off of `minutes`: the last
    /// frame again, one seq on, now, with `power_off_min`.
    fn announcement(&mut self, t_ms: u64, index: usize, minutes: f32) -> Option<Outgoing> {
        let (topic, mut f) = self.last_frame.clone()?;
        f.seq = f.seq.wrapping_add(1);
        f.ts_ms = (self.epoch_ms + t_ms).saturating_add_signed(self.skew_ms);
        f.dropped = 0;
        f.readings.set(Metric::PowerOffMin, minutes).ok()?;
        let payload = f.to_vec().ok()?.to_vec();
        self.last_frame = Some((topic.clone(), f));
        Some(Outgoing {
            t_ms,
            device: index,
            topic,
            payload,
            retain: false,
            alive: true,
        })
    }

    /// Starts a random outage now and then while jitter is on.
    fn jitter(&mut self, t_ms: u64) {
        let Some(j) = self.jitter else {
            return;
        };
        if t_ms >= j.until_ms {
            self.jitter = None;
            return;
        }
        if self.link_down_until.is_some() || self.off_until.is_some() {
            return;
        }
        let p = STEP_MS as f64 / j.mean_interval_ms;
        if self.link_rng.uniform() < p {
            let d = j.min_ms + (j.max_ms - j.min_ms) * self.link_rng.uniform();
            self.link_down_until = Some(t_ms + d as u64);
            self.link.down();
        }
    }

    /// Advances the device to `t_ms`: physics, firmware step, link.
    pub fn step(&mut self, t_ms: u64, index: usize, out: &mut Vec<Outgoing>) {
        if self.button_release_ms.is_some_and(|r| t_ms >= r) {
            self.panel().button.set(false);
            self.button_release_ms = None;
        }
        if let Some(minutes) = self.announce.take()
            && let Some(o) = self.announcement(t_ms, index, minutes)
        {
            out.push(o);
        }
        self.jitter(t_ms);
        self.sense(t_ms);
        if let Some(off) = self.off_until {
            if t_ms < off {
                return;
            }
            self.off_until = None;
            self.reboot(t_ms);
        }
        if let Some(u) = self.link_down_until
            && t_ms >= u
        {
            self.link_down_until = None;
            self.link.up();
        }
        let uptime = t_ms - self.boot_ms;
        match &mut self.hw {
            Hw::Gas(_, d, _) => {
                d.step(uptime, &mut self.link);
            }
            Hw::Electrical(_, d, _) => {
                d.step(uptime, &mut self.link);
            }
            Hw::Water(_, d, _) => {
                d.step(uptime, &mut self.link);
            }
            Hw::Crane(_, d, _) => {
                d.step(uptime, &mut self.link);
            }
        }
        for m in std::mem::take(&mut self.link.sent) {
            let is_frame = matches!(
                Topic::parse(&m.topic),
                Ok(Topic::Device {
                    kind: TopicKind::Telemetry | TopicKind::Event,
                    ..
                })
            );
            let mut payload = m.payload;
            let pump = match &self.hw {
                Hw::Water(_, _, model) if self.pump_contact => Some(model.pump_running()),
                _ => None,
            };
            if is_frame
                && (self.skew_ms != 0 || pump.is_some())
                && let Ok(mut f) = Telemetry::decode(&payload)
            {
                f.ts_ms = f.ts_ms.saturating_add_signed(self.skew_ms);
                if let Some(on) = pump {
                    let _ = f.readings.set(Metric::PumpOn, if on { 1.0 } else { 0.0 });
                }
                if let Ok(v) = f.to_vec() {
                    payload = v.to_vec();
                }
            }
            if is_frame && let Ok(f) = Telemetry::decode(&payload) {
                self.last_frame = Some((m.topic.clone(), f));
            }
            let mut alive = is_frame;
            if is_frame && t_ms < self.corrupt_until && payload.len() > 2 {
                // Cut short (a frame torn on the way): never valid JSON.
                let cut = 1 + (self.rng.next_u64() % (payload.len() as u64 - 2)) as usize;
                payload.truncate(cut);
                alive = false;
            }
            let dup = is_frame && t_ms < self.duplicate_until;
            let o = Outgoing {
                t_ms,
                device: index,
                topic: m.topic,
                payload,
                retain: m.retain,
                alive,
            };
            if dup {
                out.push(Outgoing {
                    alive: false,
                    ..o.clone()
                });
                out.push(o);
            } else {
                out.push(o);
            }
        }
    }

    /// The broker's last will of this device (retained `offline`).
    pub fn last_will(&self, t_ms: u64, index: usize) -> Outgoing {
        let lw = anquan_firmware::mqtt::last_will(&self.config.site, &self.id);
        let p = lw.publish();
        Outgoing {
            t_ms,
            device: index,
            topic: p.topic.to_string(),
            payload: p.payload.to_vec(),
            retain: true,
            alive: false,
        }
    }
}

/// A scenario's devices on its timeline.
#[derive(Debug)]
pub struct Fleet {
    /// The devices, in scenario order.
    pub devices: Vec<VirtualDevice>,
    events: Vec<(u64, Option<usize>, Event)>,
    next_event: usize,
    /// The next step's time, ms.
    pub t_ms: u64,
    /// End of the scenario, ms.
    pub end_ms: u64,
    /// Unix ms of t = 0.
    pub start_ms: u64,
}

impl Fleet {
    /// The fleet of `scenario`.
    pub fn new(scenario: &Scenario) -> Result<Self, String> {
        let spec = &scenario.spec;
        let site = Id::new(&spec.site).map_err(|e| e.to_string())?;
        let mut devices = Vec::new();
        let start_ms = scenario.start_ms();
        for d in &spec.devices {
            let rules = scenario.rules.rules_for(&spec.site, d.kind, &d.id);
            devices.push(
                VirtualDevice::new(&site, d, rules, spec.seed, start_ms)
                    .map_err(|e| format!("device {}: {e}", d.id))?,
            );
        }
        let mut events: Vec<(u64, Option<usize>, Event)> = spec
            .events
            .iter()
            .map(|e| {
                let at = (e.at_s * 1000.0).round() as u64;
                let idx = e
                    .device
                    .as_ref()
                    .and_then(|d| spec.devices.iter().position(|x| &x.id == d));
                (at, idx, e.what.clone())
            })
            .collect();
        events.sort_by_key(|e| e.0);
        Ok(Self {
            devices,
            events,
            next_event: 0,
            t_ms: 0,
            end_ms: spec.duration_s * 1000,
            start_ms,
        })
    }

    /// Whether the scenario is over.
    pub fn done(&self) -> bool {
        self.t_ms > self.end_ms
    }

    /// One step: applies the events due, advances every device and returns
    /// what the site sends at this instant (`t_ms` before the call).
    pub fn step(&mut self) -> Vec<Outgoing> {
        let t = self.t_ms;
        let mut out = Vec::new();
        while let Some((at, idx, ev)) = self.events.get(self.next_event) {
            // An event between two steps takes effect at the next step.
            if *at > t {
                break;
            }
            let targets: Vec<usize> = match (idx, ev) {
                (_, Event::BrokerOutage { .. }) => (0..self.devices.len()).collect(),
                (Some(i), _) => vec![*i],
                (None, _) => vec![],
            };
            for i in targets {
                if let Some(d) = self.devices.get_mut(i) {
                    d.apply(t, ev);
                    if let Event::Offline {
                        last_will: true, ..
                    } = ev
                    {
                        out.push(d.last_will(t, i));
                    }
                }
            }
            self.next_event += 1;
        }
        for (i, d) in self.devices.iter_mut().enumerate() {
            d.step(t, i, &mut out);
        }
        self.t_ms += STEP_MS;
        out
    }
}
