//! Physical models of what the sensors see, one per device kind, advanced
//! in fixed steps with seeded noise:
//!
//! * **gas**: the concentration at the detector diffuses towards the
//!   source level (first order, time constant `tau_s`); a leak's source
//!   rises at a given rate to its level; ventilation returns it to the
//!   baseline. The same for CO. A pellistor's zero drifts slowly
//!   (`drift_lel`, an Ornstein–Uhlenbeck process with a 2 h correlation).
//! * **electrical**: each cable's temperature follows its load current with
//!   a thermal time constant: the steady-state rise over ambient grows with
//!   the square of the current (Joule heating, `rise_at_rated_c` at
//!   `rated_a`). Residual current ramps to a set value.
//! * **water**: the network pressure follows the pump (set point while it
//!   runs, the static head of the roof tank when it stops), minus what a
//!   slow leak has lost; a burst collapses it within seconds. A jockey pump
//!   makes it a saw-tooth (`jockey_mpa` lost over `jockey_s`, then topped
//!   up), and a monitor wired to the pump's running contact reports
//!   `pump_on` (`pump_contact`).
//! * **crane**: a lifting cycle (hook on, lift, trolley out, set down,
//!   trolley back) with the load and radius of the current lift; wind is a
//!   mean plus turbulence (Ornstein–Uhlenbeck) plus gusts.

use serde::Deserialize;

use anquan_protocol::DeviceKind;

use crate::rng::Rng;

/// Model parameters of one device (`[devices.model]`); keys of another
/// kind are refused.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    // gas
    /// Gas: clean-air reading, %LEL (0.5).
    pub baseline_lel: Option<f64>,
    /// Gas: noise, %LEL (0.2).
    pub noise_lel: Option<f64>,
    /// Gas: clean-air CO, ppm (1).
    pub baseline_co: Option<f64>,
    /// Gas: zero drift of the LEL sensor (standard deviation), %LEL (0).
    pub drift_lel: Option<f64>,
    /// Gas and water and electrical: time constant, s (gas 30, water 15,
    /// electrical 600).
    pub tau_s: Option<f64>,
    // electrical
    /// Electrical: ambient, °C (25).
    pub ambient_c: Option<f64>,
    /// Electrical: initial load of every cable, A (40).
    pub load_a: Option<f64>,
    /// Electrical: rated current, A (100).
    pub rated_a: Option<f64>,
    /// Electrical: temperature rise at rated current, °C (45).
    pub rise_at_rated_c: Option<f64>,
    /// Electrical: residual current, mA (60).
    pub residual_ma: Option<f64>,
    // water
    /// Water: pressure with the pump running, MPa (0.45).
    pub setpoint_mpa: Option<f64>,
    /// Water: pressure with the pump stopped (roof tank head), MPa (0.18).
    pub static_mpa: Option<f64>,
    /// Water: pump running at start (true).
    pub pump_on: Option<bool>,
    /// Water: tank level, m (5).
    pub level_m: Option<f64>,
    /// Water: the monitor reports the pump's running contact as `pump_on`
    /// (false). Our firmware has no such input; the simulator adds the
    /// reading to the frames, as a third-party monitor would.
    pub pump_contact: Option<bool>,
    /// Water: pressure a jockey pump lets go before it tops the network up,
    /// MPa (0: none).
    pub jockey_mpa: Option<f64>,
    /// Water: one jockey-pump cycle, s (600).
    pub jockey_s: Option<f64>,
    // crane
    /// Crane: hook load of each lift, t (2).
    pub load_t: Option<f64>,
    /// Crane: set-down radius, m (20).
    pub radius_m: Option<f64>,
    /// Crane: one lifting cycle, s (240).
    pub cycle_s: Option<f64>,
    /// Crane: mean wind, m/s (4).
    pub wind_ms: Option<f64>,
    /// Crane: turbulence (standard deviation), m/s (0.8).
    pub turbulence_ms: Option<f64>,
    /// Crane: mast tilt, ° (0.05).
    pub tilt_deg: Option<f64>,
}

impl ModelParams {
    /// Refuses keys that do not belong to `kind` and values out of range.
    pub fn check(&self, kind: DeviceKind) -> Result<(), String> {
        let given: [(&str, bool, &[DeviceKind]); 24] = {
            use DeviceKind::*;
            [
                ("baseline_lel", self.baseline_lel.is_some(), &[Gas]),
                ("noise_lel", self.noise_lel.is_some(), &[Gas]),
                ("baseline_co", self.baseline_co.is_some(), &[Gas]),
                ("drift_lel", self.drift_lel.is_some(), &[Gas]),
                (
                    "tau_s",
                    self.tau_s.is_some(),
                    &[Gas, Electrical, WaterPressure],
                ),
                ("ambient_c", self.ambient_c.is_some(), &[Electrical]),
                ("load_a", self.load_a.is_some(), &[Electrical]),
                ("rated_a", self.rated_a.is_some(), &[Electrical]),
                (
                    "rise_at_rated_c",
                    self.rise_at_rated_c.is_some(),
                    &[Electrical],
                ),
                ("residual_ma", self.residual_ma.is_some(), &[Electrical]),
                (
                    "setpoint_mpa",
                    self.setpoint_mpa.is_some(),
                    &[WaterPressure],
                ),
                ("static_mpa", self.static_mpa.is_some(), &[WaterPressure]),
                ("pump_on", self.pump_on.is_some(), &[WaterPressure]),
                ("level_m", self.level_m.is_some(), &[WaterPressure]),
                (
                    "pump_contact",
                    self.pump_contact.is_some(),
                    &[WaterPressure],
                ),
                ("jockey_mpa", self.jockey_mpa.is_some(), &[WaterPressure]),
                ("jockey_s", self.jockey_s.is_some(), &[WaterPressure]),
                ("load_t", self.load_t.is_some(), &[Crane]),
                ("radius_m", self.radius_m.is_some(), &[Crane]),
                ("cycle_s", self.cycle_s.is_some(), &[Crane]),
                ("wind_ms", self.wind_ms.is_some(), &[Crane]),
                ("turbulence_ms", self.turbulence_ms.is_some(), &[Crane]),
                ("tilt_deg", self.tilt_deg.is_some(), &[Crane]),
                ("", false, &[]),
            ]
        };
        for (key, set, kinds) in given {
            if set && !kinds.contains(&kind) {
                return Err(format!("{key}: not a parameter of a {kind} device"));
            }
        }
        for (key, v) in [
            ("tau_s", self.tau_s),
            ("rated_a", self.rated_a),
            ("cycle_s", self.cycle_s),
            ("jockey_s", self.jockey_s),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(format!("{key}: must be above 0"));
            }
        }
        for (key, v) in [
            ("drift_lel", self.drift_lel),
            ("jockey_mpa", self.jockey_mpa),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(format!("{key}: must be 0 or more"));
            }
        }
        Ok(())
    }
}

/// Moves `x` towards `target` by `rate` per second over `dt` (rate 0: at once).
fn ramp(x: f64, target: f64, rate: f64, dt: f64) -> f64 {
    if rate <= 0.0 {
        return target;
    }
    let step = rate * dt;
    if (target - x).abs() <= step {
        target
    } else {
        x + step * (target - x).signum()
    }
}

/// First-order lag: `x` towards `target` with time constant `tau`.
fn lag(x: f64, target: f64, tau: f64, dt: f64) -> f64 {
    x + (target - x) * (1.0 - (-dt / tau.max(1e-3)).exp())
}

/// Gas at the detector.
#[derive(Debug, Clone)]
pub struct GasModel {
    baseline_lel: f64,
    baseline_co: f64,
    noise_lel: f64,
    drift_sigma: f64,
    drift: f64,
    /// Diffusion time constant, s.
    pub tau_s: f64,
    source_lel: f64,
    target_lel: f64,
    rate_lel: f64,
    source_co: f64,
    target_co: f64,
    rate_co: f64,
    lel: f64,
    co: f64,
}

impl GasModel {
    /// Clean air.
    pub fn new(p: &ModelParams) -> Self {
        let b = p.baseline_lel.unwrap_or(0.5);
        let c = p.baseline_co.unwrap_or(1.0);
        Self {
            baseline_lel: b,
            baseline_co: c,
            noise_lel: p.noise_lel.unwrap_or(0.2),
            drift_sigma: p.drift_lel.unwrap_or(0.0),
            drift: 0.0,
            tau_s: p.tau_s.unwrap_or(30.0),
            source_lel: b,
            target_lel: b,
            rate_lel: 0.0,
            source_co: c,
            target_co: c,
            rate_co: 0.0,
            lel: b,
            co: c,
        }
    }

    /// A leak: the source rises at `rate` %LEL/s to `lel`.
    pub fn leak(&mut self, lel: f64, rate: f64, tau_s: Option<f64>) {
        self.target_lel = lel;
        self.rate_lel = rate;
        if let Some(t) = tau_s {
            self.tau_s = t;
        }
    }

    /// CO released: the source rises at `rate` ppm/s to `ppm`.
    pub fn co(&mut self, ppm: f64, rate: f64) {
        self.target_co = ppm;
        self.rate_co = rate;
    }

    /// Leak stopped, room ventilated.
    pub fn ventilate(&mut self) {
        self.target_lel = self.baseline_lel;
        self.target_co = self.baseline_co;
        self.rate_lel = 0.0;
        self.rate_co = 0.0;
    }

    /// Advances by `dt` s; returns (%LEL, ppm CO) as the detector sees them.
    pub fn step(&mut self, dt: f64, rng: &mut Rng) -> (f64, f64) {
        self.source_lel = ramp(self.source_lel, self.target_lel, self.rate_lel, dt);
        self.source_co = ramp(self.source_co, self.target_co, self.rate_co, dt);
        self.lel = lag(self.lel, self.source_lel, self.tau_s, dt);
        self.co = lag(self.co, self.source_co, self.tau_s, dt);
        if self.drift_sigma > 0.0 {
            // Ornstein–Uhlenbeck, 2 h correlation time.
            let theta = 1.0 / 7200.0;
            self.drift += -theta * self.drift * dt
                + self.drift_sigma * (2.0 * theta * dt).sqrt() * rng.normal();
        }
        let lel = (self.lel + self.drift + self.noise_lel * rng.normal()).clamp(0.0, 100.0);
        let co = (self.co + 0.3 * rng.normal()).max(0.0);
        (lel, co)
    }
}

/// Cables and residual current of an electrical-fire monitor.
#[derive(Debug, Clone)]
pub struct CableModel {
    ambient_c: f64,
    rated_a: f64,
    rise_at_rated_c: f64,
    tau_s: f64,
    /// Load current per cable, A.
    pub load_a: [f64; 4],
    temp_c: [f64; 4],
    residual_target: f64,
    residual_rate: f64,
    residual: f64,
}

impl CableModel {
    /// Cables at their steady temperature under the initial load.
    pub fn new(p: &ModelParams) -> Self {
        let mut m = Self {
            ambient_c: p.ambient_c.unwrap_or(25.0),
            rated_a: p.rated_a.unwrap_or(100.0),
            rise_at_rated_c: p.rise_at_rated_c.unwrap_or(45.0),
            tau_s: p.tau_s.unwrap_or(600.0),
            load_a: [p.load_a.unwrap_or(40.0); 4],
            temp_c: [0.0; 4],
            residual_target: p.residual_ma.unwrap_or(60.0),
            residual_rate: 0.0,
            residual: p.residual_ma.unwrap_or(60.0),
        };
        for i in 0..4 {
            m.temp_c[i] = m.steady(i);
        }
        m
    }

    fn steady(&self, i: usize) -> f64 {
        let x = self.load_a[i] / self.rated_a;
        self.ambient_c + self.rise_at_rated_c * x * x
    }

    /// Sets the residual current target and ramp.
    pub fn residual(&mut self, ma: f64, rate: f64) {
        self.residual_target = ma;
        self.residual_rate = rate;
    }

    /// Advances by `dt`; returns (residual mA, four temperatures °C).
    pub fn step(&mut self, dt: f64, rng: &mut Rng) -> (f64, [f64; 4]) {
        for i in 0..4 {
            self.temp_c[i] = lag(self.temp_c[i], self.steady(i), self.tau_s, dt);
        }
        self.residual = ramp(self.residual, self.residual_target, self.residual_rate, dt);
        let t = self.temp_c.map(|t| t + 0.1 * rng.normal());
        let r = (self.residual + 2.0 * rng.normal()).max(0.0);
        (r, t)
    }
}

/// A fire-water network at the sensor.
#[derive(Debug, Clone)]
pub struct PipeModel {
    setpoint: f64,
    static_head: f64,
    tau_s: f64,
    pump_on: bool,
    jockey_mpa: f64,
    jockey_s: f64,
    t: f64,
    leak_rate: f64,
    leak_loss: f64,
    burst: Option<f64>,
    level_m: f64,
    p: f64,
}

impl PipeModel {
    /// Steady, pump as configured.
    pub fn new(p: &ModelParams) -> Self {
        let pump_on = p.pump_on.unwrap_or(true);
        let setpoint = p.setpoint_mpa.unwrap_or(0.45);
        let static_head = p.static_mpa.unwrap_or(0.18);
        Self {
            setpoint,
            static_head,
            tau_s: p.tau_s.unwrap_or(15.0),
            pump_on,
            jockey_mpa: p.jockey_mpa.unwrap_or(0.0),
            jockey_s: p.jockey_s.unwrap_or(600.0),
            t: 0.0,
            leak_rate: 0.0,
            leak_loss: 0.0,
            burst: None,
            level_m: p.level_m.unwrap_or(5.0),
            p: if pump_on { setpoint } else { static_head },
        }
    }

    /// Pump on or off.
    pub fn pump(&mut self, on: bool) {
        self.pump_on = on;
    }

    /// Whether the pump runs (its running contact).
    pub fn pump_running(&self) -> bool {
        self.pump_on
    }

    /// A slow leak.
    pub fn leak(&mut self, mpa_per_min: f64) {
        self.leak_rate = mpa_per_min;
    }

    /// A burst.
    pub fn burst(&mut self, residual: f64) {
        self.burst = Some(residual);
    }

    /// Repaired.
    pub fn repair(&mut self) {
        self.leak_rate = 0.0;
        self.leak_loss = 0.0;
        self.burst = None;
    }

    /// Advances by `dt`; returns (MPa, tank level m).
    pub fn step(&mut self, dt: f64, rng: &mut Rng) -> (f64, f64) {
        self.t += dt;
        let head = if self.pump_on {
            // A jockey pump lets the pressure sag, then tops it up.
            let phase = (self.t / self.jockey_s).rem_euclid(1.0);
            self.setpoint - self.jockey_mpa * phase
        } else {
            self.static_head
        };
        self.leak_loss = (self.leak_loss + self.leak_rate / 60.0 * dt).min(head);
        let (target, tau) = match self.burst {
            Some(r) => (r, 3.0),
            None => ((head - self.leak_loss).max(0.0), self.tau_s),
        };
        self.p = lag(self.p, target, tau, dt);
        let p = (self.p + 0.002 * rng.normal()).max(0.0);
        let level = self.level_m + 0.005 * rng.normal();
        (p, level)
    }
}

/// What a crane's sensors see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CraneReading {
    /// Hook load, t.
    pub load_t: f64,
    /// Trolley radius, m.
    pub radius_m: f64,
    /// Hook height, m.
    pub height_m: f64,
    /// Slew, °.
    pub slew_deg: f64,
    /// Wind, m/s.
    pub wind_ms: f64,
    /// Mast tilt, °.
    pub tilt_deg: f64,
}

/// A tower crane working lifting cycles in the wind.
#[derive(Debug, Clone)]
pub struct CraneModel {
    load_t: f64,
    radius_m: f64,
    cycle_s: f64,
    cycle_start: f64,
    wind_mean: f64,
    turbulence: f64,
    turb: f64,
    gust: Option<(f64, f64)>,
    tilt_deg: f64,
}

/// Radius where the hook picks loads up, m.
const PICK_RADIUS_M: f64 = 10.0;

impl CraneModel {
    /// The configured lift, from t = 0.
    pub fn new(p: &ModelParams) -> Self {
        Self {
            load_t: p.load_t.unwrap_or(2.0),
            radius_m: p.radius_m.unwrap_or(20.0),
            cycle_s: p.cycle_s.unwrap_or(240.0),
            cycle_start: 0.0,
            wind_mean: p.wind_ms.unwrap_or(4.0),
            turbulence: p.turbulence_ms.unwrap_or(0.8),
            turb: 0.0,
            gust: None,
            tilt_deg: p.tilt_deg.unwrap_or(0.05),
        }
    }

    /// A new lift from `t`.
    pub fn lift(&mut self, t: f64, load_t: f64, radius_m: f64, cycle_s: Option<f64>) {
        self.load_t = load_t;
        self.radius_m = radius_m;
        if let Some(c) = cycle_s {
            self.cycle_s = c;
        }
        self.cycle_start = t;
    }

    /// A gust of `speed` until `until` s.
    pub fn gust(&mut self, speed: f64, until: f64) {
        self.gust = Some((speed, until));
    }

    /// Mean wind.
    pub fn wind(&mut self, mean: f64) {
        self.wind_mean = mean;
    }

    /// Mast tilt.
    pub fn tilt(&mut self, deg: f64) {
        self.tilt_deg = deg;
    }

    /// Advances to `t` by `dt`.
    pub fn step(&mut self, t: f64, dt: f64, rng: &mut Rng) -> CraneReading {
        let phase = ((t - self.cycle_start) / self.cycle_s).rem_euclid(1.0);
        let f = |a: f64, b: f64| ((phase - a) / (b - a)).clamp(0.0, 1.0);
        let (r0, r1) = (PICK_RADIUS_M, self.radius_m);
        let (load, radius, height, slew) = if phase < 0.1 {
            (0.0, r0, 2.0, 0.0)
        } else if phase < 0.2 {
            let x = f(0.1, 0.2);
            (self.load_t * x, r0, 2.0 + 18.0 * x, 0.0)
        } else if phase < 0.5 {
            let x = f(0.2, 0.5);
            (self.load_t, r0 + (r1 - r0) * x, 20.0, 90.0 * x)
        } else if phase < 0.6 {
            let x = f(0.5, 0.6);
            (self.load_t, r1, 20.0 - 15.0 * x, 90.0)
        } else if phase < 0.65 {
            let x = f(0.6, 0.65);
            (self.load_t * (1.0 - x), r1, 5.0, 90.0)
        } else {
            let x = f(0.65, 1.0);
            (0.0, r1 + (r0 - r1) * x, 5.0 - 3.0 * x, 90.0 * (1.0 - x))
        };
        // Turbulence: Ornstein–Uhlenbeck with a 5 s correlation time and
        // a standard deviation of `turbulence`.
        let theta = 1.0 / 5.0;
        self.turb +=
            -theta * self.turb * dt + self.turbulence * (2.0 * theta * dt).sqrt() * rng.normal();
        let mean = match self.gust {
            Some((speed, until)) if t < until => speed,
            _ => self.wind_mean,
        };
        CraneReading {
            load_t: (load + 0.01 * rng.normal()).max(0.0),
            radius_m: radius,
            height_m: height,
            slew_deg: slew,
            wind_ms: (mean + self.turb).clamp(0.0, 30.0),
            tilt_deg: (self.tilt_deg + 0.003 * rng.normal()).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_diffuses_towards_the_leak_level() {
        let mut m = GasModel::new(&ModelParams::default());
        let mut rng = Rng::new(1);
        m.leak(60.0, 0.0, Some(30.0));
        let mut lel = 0.0;
        for _ in 0..30 {
            lel = m.step(1.0, &mut rng).0;
        }
        // One time constant: ~63 % of the way.
        assert!((lel - 38.0).abs() < 2.0, "{lel}");
        for _ in 0..300 {
            lel = m.step(1.0, &mut rng).0;
        }
        assert!((lel - 60.0).abs() < 1.0, "{lel}");
    }

    #[test]
    fn cable_heats_with_the_square_of_the_current() {
        let mut m = CableModel::new(&ModelParams::default());
        let mut rng = Rng::new(1);
        m.load_a[2] = 200.0; // twice rated: 4 × 45 °C rise
        let mut t = [0.0; 4];
        for _ in 0..6000 {
            t = m.step(1.0, &mut rng).1;
        }
        assert!((t[2] - 205.0).abs() < 1.0, "{t:?}");
        assert!((t[0] - (25.0 + 45.0 * 0.16)).abs() < 1.0, "{t:?}");
    }

    #[test]
    fn pump_failure_falls_to_the_static_head_and_a_burst_to_nothing() {
        let mut m = PipeModel::new(&ModelParams::default());
        let mut rng = Rng::new(1);
        m.pump(false);
        let mut p = 0.0;
        for _ in 0..120 {
            p = m.step(1.0, &mut rng).0;
        }
        assert!((p - 0.18).abs() < 0.01, "{p}");
        m.burst(0.02);
        for _ in 0..20 {
            p = m.step(1.0, &mut rng).0;
        }
        assert!(p < 0.03, "{p}");
    }

    #[test]
    fn crane_cycle_carries_the_load_out_and_back() {
        let mut m = CraneModel::new(&ModelParams::default());
        let mut rng = Rng::new(1);
        let at = |m: &mut CraneModel, rng: &mut Rng, t: f64| m.step(t, 1.0, rng);
        let start = at(&mut m, &mut rng, 0.0);
        assert!(start.load_t < 0.1 && (start.radius_m - 10.0).abs() < 1e-9);
        let out = at(&mut m, &mut rng, 0.55 * 240.0);
        assert!((out.load_t - 2.0).abs() < 0.1 && (out.radius_m - 20.0).abs() < 1e-9);
        m.gust(18.0, 1000.0);
        let mut w = 0.0;
        for t in 0..60 {
            w = at(&mut m, &mut rng, 200.0 + f64::from(t)).wind_ms;
        }
        assert!((w - 18.0).abs() < 4.0, "{w}");
    }
}
