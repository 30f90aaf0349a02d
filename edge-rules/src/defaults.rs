//! Built-in rule sets per device kind, grounded in the Chinese national
//! standards, reviewed clause by clause (issue 18).
//!
//! Each figure says where it comes from and how sure we are of it:
//! *confirmed* (the clause text was read, in a secondary copy: a quotation
//! on a standards site, a manufacturer's or a training page),
//! *unconfirmed* (widely quoted, the clause text was not read), or *[P]*
//! (our proposal where no standard gives a figure). Every default can be
//! overridden per kind, per site and per device in the site rules file (see
//! `RuleFile`, `std` feature). The same table, with the worst-case latency
//! each debounce adds, is in README.md.
//!
//! Three principles decide the levels:
//!
//! * **A level exists only where someone has something to do.** No blue
//!   "early warning" sits inside the normal operating range of a sensor
//!   (5 %LEL in a kitchen, 200 mA on a large feeder, 55 °C on a loaded
//!   cable): each level below is an action for a named person.
//! * **The danger sets red, not the sensor.** Red is at the figure where
//!   the standard says the hazard has begun (a crane at 100 % of its rated
//!   moment, where the limiter must cut), never at a transmitter's full
//!   scale, where a reading is a fault.
//! * **Debounce only what is noise.** Our firmware already drops
//!   single-sample spikes (median of 3 at 1 s, `firmware/src/filter.rs`), so
//!   danger that can kill within the minute (gas at the explosive end,
//!   overload, two-blocking, the one-key button) is judged on the first
//!   frame. Hazards that build over minutes (cable heat, leakage, pressure)
//!   wait for a second frame, which costs at most one report period (15 s)
//!   at the gateway.

use anquan_protocol::{DeviceKind, FaultSet, Level, Metric, RuleId};

use crate::rule::{Band, Condition, Debounce, Direction, Levels, Rule, RuleKind};
use crate::{MAX_CONDITIONS, RuleSet};

/// Default report period of a device (seconds). The tower-crane black box
/// reports every 15 s (seed 004 L351, Banan district 住建 sub-plan); we use the
/// same period for every kind.
pub const REPORT_PERIOD_MS: u32 = 15_000;

/// How a device reaches the gateway. It sets how long a silence is
/// tolerated before the device is offline: a wired device that misses three
/// reports is down, a cellular one may just be between cells.
///
/// A last will (or a Modbus device that misses its polls) raises the
/// offline alarm at once on every link: the broker publishes the will only
/// after 1.5 × the device's MQTT keep-alive, which is the device's own
/// tolerance, and the poller only after `offline_after` failed polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// Ethernet, RS-485 or a Modbus link polled by the gateway.
    Wired,
    /// Wi-Fi through the venue's access point.
    Wifi,
    /// 4G (LTE Cat.1/Cat.4) cellular: the default.
    Cellular,
}

impl Link {
    /// Most devices of the four kinds in the field are cellular.
    pub const DEFAULT: Self = Self::Cellular;

    /// Every link type.
    pub const ALL: [Self; 3] = [Self::Wired, Self::Wifi, Self::Cellular];

    /// The name in the rules file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Wired => "wired",
            Self::Wifi => "wifi",
            Self::Cellular => "4g",
        }
    }

    /// Parses the name in the rules file.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Silence after which a device on this link is offline.
    ///
    /// * wired: 3 report periods (45 s), as DESIGN.md had for every link;
    /// * Wi-Fi: 6 report periods (90 s): an access point's roaming or DHCP
    ///   renewal and the MQTT reconnect [P];
    /// * 4G: 12 report periods (180 s): a cell reselection, a PDP context
    ///   re-established and an MQTT reconnect with back-off take tens of
    ///   seconds, up to about two minutes in poor coverage [P]; frames
    ///   buffered meanwhile arrive on reconnect (the firmware's outbox), so
    ///   only the gap counts. The transmission figures we found for fire
    ///   facilities give operating-status information (a fault, a link
    ///   down) 100 s from the control room to the monitoring centre
    ///   (GB 25506-2010 control-room requirements, secondary, clause
    ///   unconfirmed): the 180 s of a 4G link add one ordinary outage to it.
    pub const fn offline_after_ms(self) -> u32 {
        match self {
            Self::Wired => 3 * REPORT_PERIOD_MS,
            Self::Wifi => 6 * REPORT_PERIOD_MS,
            Self::Cellular => 12 * REPORT_PERIOD_MS,
        }
    }
}

/// A device is offline after this silence on the default link (4G).
pub const OFFLINE_AFTER_MS: u32 = Link::DEFAULT.offline_after_ms();

fn id(s: &str) -> RuleId {
    // Every id below is a literal that satisfies the rule-id charset; the
    // fallback is never taken (covered by `defaults_are_valid`).
    RuleId::new(s).unwrap_or_default()
}

fn threshold(
    rule: &str,
    metric: Metric,
    direction: Direction,
    debounce: Debounce,
    levels: Levels,
) -> Rule {
    Rule {
        id: id(rule),
        enabled: true,
        debounce,
        kind: RuleKind::Threshold {
            metric,
            direction,
            levels,
        },
    }
}

fn offline(rule: &str, level: Level) -> Rule {
    Rule {
        id: id(rule),
        enabled: true,
        debounce: Debounce::IMMEDIATE,
        kind: RuleKind::Offline {
            after_ms: OFFLINE_AFTER_MS,
            level,
        },
    }
}

/// A sensor fault blinds the device to the danger it watches; it is raised
/// after two consecutive faulty frames so that one glitch is not an alarm
/// [P].
fn fault(rule: &str, level: Level) -> Rule {
    Rule {
        id: id(rule),
        enabled: true,
        debounce: Debounce::samples(2),
        kind: RuleKind::Fault {
            codes: FaultSet::ALL,
            level,
        },
    }
}

/// All of `conditions` at `level`.
fn all_of(rule: &str, debounce: Debounce, level: Level, conditions: &[Condition]) -> Rule {
    let mut c = heapless::Vec::<Condition, MAX_CONDITIONS>::new();
    for x in conditions {
        // Every list below has at most MAX_CONDITIONS entries.
        let _ = c.push(*x);
    }
    Rule {
        id: id(rule),
        enabled: true,
        debounce,
        kind: RuleKind::AllOf {
            conditions: c,
            level,
        },
    }
}

const fn cond(metric: Metric, direction: Direction, raise: f32, clear: f32) -> Condition {
    Condition {
        metric,
        direction,
        raise,
        clear,
    }
}

/// The one-key alarm button (一键报警, seed 004 L270 for elderly-care homes):
/// a person asking for help is always red, at once.
fn button(rule: &str) -> Rule {
    threshold(
        rule,
        Metric::AlarmBtn,
        Direction::Above,
        Debounce::IMMEDIATE,
        Levels::NONE.with(Level::Red, Band::new(1.0, 0.5)),
    )
}

/// Builds a set from rules known to be valid (checked by the tests below).
fn set(rules: impl IntoIterator<Item = Rule>) -> RuleSet {
    let mut s = RuleSet::new();
    for r in rules {
        let _ = s.push(r);
    }
    s
}

/// Combustible gas and CO detectors in venues and commercial kitchens.
///
/// Venues and kitchens burn town gas, so the town-gas standards govern
/// them: GB 55009-2021 (燃气工程项目规范) requires a gas-leak alarm and a
/// shut-off where commercial appliances are used (secondary: a local
/// implementation rule quoting its §6.1; it gives no concentration), and
/// GB 50028-2006 (2020 ed.) §10.8.2-3 sets the alarm concentration by the
/// leak-alarm product standard (confirmed, secondary), today GB 15322.1-2019
/// for commercial point detectors and GB 15322.2-2019 for household ones.
/// GB/T 50493-2019 is the petrochemical-plant design standard (its scope is
/// petrochemical enterprises): it does not govern a restaurant, and is
/// quoted only where it agrees.
pub fn gas() -> RuleSet {
    set([
        // Orange 20 %LEL: the detector's (low) alarm. Commercial detectors
        // are set within 1–25 %LEL and a high alarm, where fitted, within
        // 40–60 %LEL (detector acceptance criteria, secondary: a detector
        // maker quoting them; the GB 15322.1-2019 clause was not read:
        // unconfirmed). Town-gas maintenance works only below 20 %LEL and
        // stops at 50 %LEL (CJJ 51-2016, secondary: a work-permit tool
        // quoting it); GB/T 50493-2019 §5.5.2 has ≤ 25 / ≤ 50 %LEL
        // (confirmed, secondary). Action: shut the valve, ventilate, find
        // the leak.
        // Red 50 %LEL: the high alarm, half-way to an explosive mixture
        // (40–60 %LEL band above; GB/T 50493-2019 §5.5.2 ≤ 50 %LEL). Action:
        // evacuate, no switching, call the gas company and 119.
        // No blue or yellow: cooking vapour and sensor drift reach
        // 5–10 %LEL in a kitchen every day. Clear at 75–80 % of the raise
        // value [P]. One frame: a detector responds within 30 s of a test
        // gas (GB 50166 §4.13.2, secondary) and the firmware drops spikes.
        threshold(
            "gas.lel",
            Metric::LelPct,
            Direction::Above,
            Debounce::IMMEDIATE,
            Levels::NONE
                .with(Level::Orange, Band::new(20.0, 15.0))
                .with(Level::Red, Band::new(50.0, 40.0)),
        ),
        // CO in a kitchen comes from incomplete combustion. Orange 150 ppm,
        // red 300 ppm: the acceptance criteria quoted above put a CO
        // detector's low alarm within 50–300 ppm and its high alarm within
        // 400–600 ppm (secondary, standard unconfirmed); 300 ppm is where a
        // household CO alarm must sound within 3 minutes (EN 50291-1,
        // unconfirmed) [P]. Two frames (at most 15 s): CO harms over
        // minutes, and electrochemical cells spike.
        threshold(
            "gas.co",
            Metric::CoPpm,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Orange, Band::new(150.0, 100.0))
                .with(Level::Red, Band::new(300.0, 200.0)),
        ),
        // Yellow: CO held at or above 26 ppm for 15 minutes, the short-term
        // exposure limit for kitchen staff (GBZ 2.1-2019 PC-STEL 30 mg/m³ ≈
        // 26 ppm at 20–25 °C; the mg/m³ figure confirmed in a secondary
        // listing). A wok station passes 25 ppm for a minute many times a
        // day; 15 minutes without a dip is a ventilation or burner fault.
        // Action: the kitchen manager checks the exhaust and the burners.
        threshold(
            "gas.co_sustained",
            Metric::CoPpm,
            Direction::Above,
            Debounce {
                samples: 1,
                ms: 15 * 60_000,
            },
            Levels::NONE.with(Level::Yellow, Band::new(26.0, 20.0)),
        ),
        fault("gas.fault", Level::Yellow),
        offline("gas.offline", Level::Yellow),
        button("gas.button"),
    ])
}

/// Cable temperature levels shared by the temperature channels.
///
/// The probe sits on the cable's surface or terminal, which runs cooler
/// than the conductor. Yellow 70 °C: a PVC-insulated conductor's maximum
/// operating temperature (GB/T 5023) reached at the surface, so the
/// conductor is above it: overload (an electrician checks the load).
/// Orange 90 °C: past even XLPE's 90 °C (GB/T 12706): insulation is being
/// damaged. Red 120 °C [P], inside the 55–140 °C setting range of
/// GB 14287.3-2014 (unconfirmed): fire risk now. The conductor figures are
/// unconfirmed (not read here), as is GB 14287.3's 40 s response. No blue:
/// a loaded cable in a summer switch room sits at 50–60 °C. Two frames (at
/// most 15 s): a cable heats over minutes.
fn cable_temperature(rule: &str, metric: Metric) -> Rule {
    threshold(
        rule,
        metric,
        Direction::Above,
        Debounce::samples(2),
        Levels::NONE
            .with(Level::Yellow, Band::new(70.0, 65.0))
            .with(Level::Orange, Band::new(90.0, 85.0))
            .with(Level::Red, Band::new(120.0, 110.0)),
    )
}

/// Electrical-fire monitors: residual current and cable temperatures.
pub fn electrical() -> RuleSet {
    set([
        // GB 50116-2013 §9.2.3 (confirmed, secondary: the clause and its
        // commentary): the alarm value should lie in 300–500 mA; a leakage of
        // 300 mA can start a fire, and a circuit's natural leakage is
        // 100–200 mA. Yellow 300 mA (an electrician finds the insulation
        // fault), orange 500 mA (every compliant monitor would alarm: act
        // within the hour), red 1000 mA [P] (the top of GB 14287.2-2014's
        // 20–1000 mA setting range, unconfirmed; a 2026 edition is
        // published). No blue: 200 mA is ordinary leakage on a large feeder.
        // Two frames (at most 15 s); GB 14287.2's test holds 105 % of the
        // set value for 60 s (secondary).
        threshold(
            "elec.residual",
            Metric::ResidualMa,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Yellow, Band::new(300.0, 250.0))
                .with(Level::Orange, Band::new(500.0, 400.0))
                .with(Level::Red, Band::new(1000.0, 800.0)),
        ),
        cable_temperature("elec.temp", Metric::TempC),
        cable_temperature("elec.temp1", Metric::Temp1C),
        cable_temperature("elec.temp2", Metric::Temp2C),
        cable_temperature("elec.temp3", Metric::Temp3C),
        cable_temperature("elec.temp4", Metric::Temp4C),
        fault("elec.fault", Level::Yellow),
        offline("elec.offline", Level::Yellow),
        button("elec.button"),
    ])
}

/// Fire-water pressure monitors.
///
/// The sensor reads the network's pressure in standby (准工作状态), a
/// *static* pressure; the 0.05 MPa of a sprinkler and the 0.25/0.35 MPa of
/// a hydrant outlet are *flowing* (working) pressures with water running,
/// and are judged only where the pump is known to run.
pub fn water_pressure() -> RuleSet {
    set([
        // Static pressure at the most unfavourable point, GB 50974-2014
        // §5.2.2 (confirmed, several secondary copies): ≥ 0.07 MPa for
        // high-rise residential, class-2 high-rise public and multi-storey
        // public buildings, ≥ 0.10 MPa for class-1 high-rise public buildings
        // and sprinkler systems, ≥ 0.15 MPa above 100 m. Defaults take the
        // lowest minimum, so that no compliant building shows an alarm:
        // yellow ≤ 0.07 MPa, below every class's minimum (the maintenance
        // company checks the tank, valves and jockey pump). Set 0.10 or 0.15
        // per site for the stricter classes (README). Orange ≤ 0.05 MPa: the
        // standby pressure is below a sprinkler's minimum *working* pressure
        // (0.05 MPa, GB 50084-2017 §5.0.1 / GB 55036-2022; secondary,
        // clause text not read), and a flowing pressure is never above the
        // static one: the first sprinkler cannot work as designed (fire
        // watch until fixed). Red ≤ 0.02 MPa [P]: the network is drained at
        // this point (burst, valve shut, tank empty). Clear 0.01 MPa above
        // [P], above a 0.5 % transmitter's error. Two frames (at most
        // 15 s), inside the 100 s allowed for facility status (GB 25506,
        // secondary, clause unconfirmed).
        threshold(
            "water.pressure_low",
            Metric::PressureMpa,
            Direction::Below,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Yellow, Band::new(0.07, 0.08))
                .with(Level::Orange, Band::new(0.05, 0.06))
                .with(Level::Red, Band::new(0.02, 0.03)),
        ),
        // Over-pressure. GB 50974-2014 §6.2.1 requires zoning where a
        // hydrant's static pressure exceeds 1.0 MPa or a sprinkler works
        // above 1.20 MPa (unconfirmed); §7.4.12 caps a hydrant outlet's
        // flowing pressure at 0.50 MPa (confirmed, secondary). Yellow
        // 1.2 MPa: above those limits wherever a monitor sits (a failed
        // pressure-reducing valve or pump control: adjust it). Orange
        // 1.5 MPa [P]: near the 1.6 MPa rating of PN16 pipe and fittings.
        // Nothing at 1.6 MPa: that is the usual transmitter's full scale,
        // where a reading is an out-of-range fault. A pump-room sensor in a
        // tall building reads more: raise both per site.
        threshold(
            "water.pressure_high",
            Metric::PressureMpa,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Yellow, Band::new(1.2, 1.15))
                .with(Level::Orange, Band::new(1.5, 1.45)),
        ),
        // The fire pump runs (`pump_on`, a controller's running contact) but
        // the network stays below 0.25 MPa for a minute: the pump is not
        // delivering (air-locked, a valve shut, a broken impeller) or the
        // draw is more than it can carry (a burst). 0.25 MPa is the lowest
        // flowing pressure GB 50974-2014 §7.4.12 asks of a hydrant outlet
        // (confirmed, secondary; 0.35 MPa for high-rise buildings: set it
        // per site). A minute lets a starting pump fill the network [P];
        // GB 50974 gives a pump 2 min from signal to normal running
        // (unconfirmed). This is a different alarm from a burst with the
        // pump off, which `water.pressure_low` sees. Without a `pump_on`
        // reading the rule decides nothing.
        all_of(
            "water.pump_pressure",
            Debounce {
                samples: 1,
                ms: 60_000,
            },
            Level::Orange,
            &[
                cond(Metric::PumpOn, Direction::Above, 0.5, 0.4),
                cond(Metric::PressureMpa, Direction::Below, 0.25, 0.28),
            ],
        ),
        // A falling pressure as a burst detector [P], shipped disabled: a
        // rate rule cannot tell a burst from the fire pump stopping after
        // its weekly test (the pressure falls from the pump's head to the
        // tank's within seconds), so it raised a red "burst" every week. A
        // real burst drains the network, which `water.pressure_low` reports
        // within two frames; enable this on a network held by a pump that
        // never cycles. Per minute over a 60 s window: yellow −0.05 MPa/min,
        // orange −0.10, red −0.20.
        Rule {
            id: id("water.pressure_drop"),
            enabled: false,
            debounce: Debounce::IMMEDIATE,
            kind: RuleKind::RateOfChange {
                metric: Metric::PressureMpa,
                direction: Direction::Below,
                window_ms: 60_000,
                levels: Levels::NONE
                    .with(Level::Yellow, Band::new(-0.05, -0.02))
                    .with(Level::Orange, Band::new(-0.10, -0.05))
                    .with(Level::Red, Band::new(-0.20, -0.10)),
            },
        },
        // Tank level depends on the tank: GB 50974 asks for a low and a
        // high alarm level on fire-water pools and tanks (§4.3.9, §5.2.6;
        // unconfirmed). Shipped disabled with placeholder figures [P].
        // Enable it and set the levels per site.
        Rule {
            enabled: false,
            ..threshold(
                "water.level_low",
                Metric::LevelM,
                Direction::Below,
                Debounce::samples(2),
                Levels::NONE
                    .with(Level::Yellow, Band::new(1.0, 1.2))
                    .with(Level::Red, Band::new(0.5, 0.7)),
            )
        },
        fault("water.fault", Level::Yellow),
        offline("water.offline", Level::Yellow),
    ])
}

/// A tower crane's nameplate limits: per-device parameters of the crane
/// rules (`[device.<id>.crane]` in the rules file). The defaults describe
/// the firmware's example crane (a 6 t, 56 m flat-top, QTZ80 class); set a
/// real crane's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CraneLimits {
    /// Maximum rated load (最大额定起重量), t.
    pub rated_load_t: f32,
    /// The outer trolley limit, m: the radius the trolley limit switch must
    /// stop it before (working radius plus the switch's over-travel).
    pub max_radius_m: f32,
    /// The hook height the height limiter must stop it before, m (set from
    /// the installed height under the hook; it changes when the crane is
    /// climbed).
    pub max_height_m: f32,
    /// The slew limiter's angle each way, ° (cranes without a slip ring).
    pub slew_limit_deg: f32,
}

impl CraneLimits {
    /// The firmware's example crane (`LoadChart::example_6t_56m`): 6 t,
    /// 56 m jib (+0.5 m, the firmware's chart margin), 40 m under the hook
    /// free-standing, ±540°.
    pub const EXAMPLE: Self = Self {
        rated_load_t: 6.0,
        max_radius_m: 56.5,
        max_height_m: 40.0,
        slew_limit_deg: 540.0,
    };

    /// `crane.load`: yellow at 90 % of the rated load, red at 100 %.
    pub fn load_levels(rated_load_t: f32) -> Levels {
        // `r * 90 / 100` rounds once, so 6 t gives exactly 5.4 t.
        let pct = |p: f32| rated_load_t * p / 100.0;
        Levels::NONE
            .with(Level::Yellow, Band::new(pct(90.0), pct(85.0)))
            .with(Level::Red, Band::new(rated_load_t, pct(95.0)))
    }

    /// `crane.radius` and `crane.height`: red at the limit, clear 0.5 m
    /// inside it.
    pub fn limit_levels(limit: f32) -> Levels {
        Levels::NONE.with(Level::Red, Band::new(limit, limit - 0.5))
    }

    /// `crane.slew_pos` (`sign` 1) and `crane.slew_neg` (`sign` −1): orange
    /// at the limit, clear 10° inside it.
    pub fn slew_levels(limit_deg: f32, sign: f32) -> Levels {
        Levels::NONE.with(
            Level::Orange,
            Band::new(sign * limit_deg, sign * (limit_deg - 10.0)),
        )
    }
}

/// Tower-crane safety monitors ("black boxes", JGJ 332-2014 §3.1.1: real-time
/// monitoring of load, moment, height, radius and slew; confirmed,
/// secondary), with the example crane's limits.
pub fn crane() -> RuleSet {
    crane_with(&CraneLimits::EXAMPLE)
}

/// Tower-crane rules for a crane with `limits`.
pub fn crane_with(limits: &CraneLimits) -> RuleSet {
    set([
        // Load moment, % of the rated moment at the current radius.
        // Red 100 %: above the rated moment the moment limiter must stop
        // hoisting up and trolleying out, before 110 % (GB 5144-2006 §6.1;
        // confirmed, secondary: the JGJ 59-2011 tower-crane check item
        // quoting it); at 100 % the crane is in the limiter's cut-off zone.
        // Yellow 90 %: the black box's pre-warning (JGJ 332-2014 / GB/T 28264;
        // unconfirmed): lift only a load whose weight is known (十不吊).
        // One frame: an overload can topple a crane within the lift.
        threshold(
            "crane.moment",
            Metric::MomentPct,
            Direction::Above,
            Debounce::IMMEDIATE,
            Levels::NONE
                .with(Level::Yellow, Band::new(90.0, 85.0))
                .with(Level::Red, Band::new(100.0, 95.0)),
        ),
        // Hook load against the maximum rated load: the load limiter must
        // cut hoisting up above the rated load of the gear and before 110 %
        // (GB 5144-2006 §6.1.2, confirmed, secondary: training material
        // quoting the clause). Red 100 %, yellow 90 % (pre-warning, as for
        // the moment). It also catches an overload when the radius encoder
        // has failed and the moment is unknown.
        threshold(
            "crane.load",
            Metric::LoadT,
            Direction::Above,
            Debounce::IMMEDIATE,
            CraneLimits::load_levels(limits.rated_load_t),
        ),
        // Trolley past its outer limit: the limit switch must stop it
        // before the end buffer (GB 5144-2006, JGJ 59-2011 check items;
        // the 200 mm to the buffer is unconfirmed). Past the limit the
        // switch has failed or was bypassed: red.
        threshold(
            "crane.radius",
            Metric::RadiusM,
            Direction::Above,
            Debounce::IMMEDIATE,
            CraneLimits::limit_levels(limits.max_radius_m),
        ),
        // Hook past the height limiter: the hook block is about to hit the
        // trolley and part the rope (GB 5144-2006 height limiter; its
        // 0.8 m clearance is unconfirmed). Red at once.
        threshold(
            "crane.height",
            Metric::HeightM,
            Direction::Above,
            Debounce::IMMEDIATE,
            CraneLimits::limit_levels(limits.max_height_m),
        ),
        // Slew past ±540°: a crane without a slip ring must have a slew
        // limiter (JGJ 59-2011 check item, secondary) acting within ±540°
        // (GB 5144-2006, unconfirmed); beyond it the power cable twists.
        // Orange (damage, not yet a falling load); two frames. Disable both
        // for a crane with a slip ring.
        threshold(
            "crane.slew_pos",
            Metric::SlewDeg,
            Direction::Above,
            Debounce::samples(2),
            CraneLimits::slew_levels(limits.slew_limit_deg, 1.0),
        ),
        threshold(
            "crane.slew_neg",
            Metric::SlewDeg,
            Direction::Below,
            Debounce::samples(2),
            CraneLimits::slew_levels(limits.slew_limit_deg, -1.0),
        ),
        // Lifting a load in wind of Beaufort 6 or more (≥ 10.8 m/s), where
        // lifting is prohibited (JGJ 276-2012 §3.0.12; DESIGN.md records it
        // confirmed in a secondary copy, not re-read here): orange, a
        // prohibited lift in progress. "Loaded" is a moment of at least 5 %
        // of the rated moment [P], which an empty hook never shows. Two
        // frames (at most 15 s): one gust is not Beaufort 6.
        all_of(
            "crane.wind_lift",
            Debounce::samples(2),
            Level::Orange,
            &[
                cond(Metric::MomentPct, Direction::Above, 5.0, 3.0),
                cond(Metric::WindMs, Direction::Above, 10.8, 9.5),
            ],
        ),
        // Wind alone. An idle crane in a gale is not an alarm: at Beaufort
        // 6 it must be out of service with the slew brake released (its
        // jib weathervanes), which is the site's routine. Orange 20 m/s: the
        // in-service design wind of tower cranes (GB/T 13752, unconfirmed;
        // GB 5144 asks an anemometer to alarm above the working limit wind,
        // secondary): confirm the crane is out of service. Two frames.
        threshold(
            "crane.wind",
            Metric::WindMs,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE.with(Level::Orange, Band::new(20.0, 17.0)),
        ),
        // Tilt of the tower from vertical while working. A tower deflects
        // under load and wind; its design static displacement at rated load
        // is about 1.34 % of its height (≈ 0.77°; GB/T 13752, unconfirmed).
        // Orange 1.0°, red 2.0° [P]: beyond what a sound tower and
        // foundation show. Two frames.
        threshold(
            "crane.tilt",
            Metric::TiltDeg,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Orange, Band::new(1.0, 0.8))
                .with(Level::Red, Band::new(2.0, 1.6)),
        ),
        // A lean that stays with the hook empty and the air calm: the tower
        // is out of plumb (foundation settling, a loose tie). JGJ 196-2010
        // allows 4/1000 (≈ 0.23°) above the top tie, measured unloaded in
        // wind ≤ 3 m/s (confirmed, secondary: a Q&A citing its page 30); we
        // judge it in the same conditions only, at 0.3° for the sensor's
        // mounting offset [P], held 5 minutes. Yellow: survey the tower.
        all_of(
            "crane.lean",
            Debounce {
                samples: 1,
                ms: 5 * 60_000,
            },
            Level::Yellow,
            &[
                cond(Metric::TiltDeg, Direction::Above, 0.3, 0.25),
                cond(Metric::MomentPct, Direction::Below, 10.0, 15.0),
                cond(Metric::WindMs, Direction::Below, 5.5, 6.5),
            ],
        ),
        fault("crane.fault", Level::Yellow),
        // Continuous monitoring replaces periodic inspection (seed 004
        // L351): a black box silent in working hours is orange.
        offline("crane.offline", Level::Orange),
    ])
}

/// A building's fire alarm control panel, as its 用户信息传输装置 reports it
/// in GB/T 26875.3 frames (the gateway counts the points in each state,
/// `gateway/src/gb26875/`).
///
/// The panel has judged its detectors already (GB 4717 and GB 50116 set
/// how a panel confirms a fire, a fault or a supervisory signal), so no
/// rule here waits for a second frame: each state counts from the frame
/// that reports it. Each level is what the state means for the people who
/// must act:
pub fn fire_panel() -> RuleSet {
    let first_point = |level| Levels::NONE.with(level, Band::new(1.0, 0.5));
    set([
        // 火警: a detector or a manual call point in fire alarm (seed 004,
        // 消防: early fire alarm). Red at once: someone goes to look now and
        // 119 is called on confirmation. GB 50440-2007 asks the monitoring
        // centre to show a fire alarm within 20 s of the transmission device
        // receiving it (unconfirmed, secondary recollection of the clause).
        threshold(
            "fire_panel.fire",
            Metric::FirePoints,
            Direction::Above,
            Debounce::IMMEDIATE,
            first_point(Level::Red),
        ),
        // 监管: a supervisory signal: a sprinkler signal valve closed, a pump
        // or a damper in an abnormal state (GB 50116-2013 监管报警; the
        // clause was not read: unconfirmed). The protection is not ready:
        // orange, the facility's keeper restores it within the hour [P].
        threshold(
            "fire_panel.supervision",
            Metric::SupervisionPoints,
            Direction::Above,
            Debounce::IMMEDIATE,
            first_point(Level::Orange),
        ),
        // 故障: a detector, a loop, the panel's main or backup power or its
        // bus. A part of the building cannot alarm until it is repaired:
        // yellow, the maintenance company repairs it (the fire-facility
        // maintenance rules give 24 h for ordinary faults, unconfirmed) [P].
        threshold(
            "fire_panel.fault",
            Metric::FaultPoints,
            Direction::Above,
            Debounce::IMMEDIATE,
            first_point(Level::Yellow),
        ),
        // 屏蔽: a point isolated by an operator cannot alarm. Routine during
        // maintenance, but someone must know it is off: blue [P].
        threshold(
            "fire_panel.isolated",
            Metric::IsolatedPoints,
            Direction::Above,
            Debounce::IMMEDIATE,
            first_point(Level::Blue),
        ),
        // The transmission device's own faults (its main or backup power,
        // its line to the panel), reported as device faults: yellow at once
        // (the device reports a state, not a noisy sample).
        Rule {
            id: id("fire_panel.device_fault"),
            enabled: true,
            debounce: Debounce::IMMEDIATE,
            kind: RuleKind::Fault {
                codes: FaultSet::ALL,
                level: Level::Yellow,
            },
        },
        // Silent (no heartbeat, no frame): the building's fire alarms no
        // longer reach anyone. Orange, like the crane's black box [P].
        // GB 50440-2007 asks for a link check at least every 2 h
        // (unconfirmed); the device's heartbeat (its `Send` frame with an
        // empty data unit) is far more frequent, so the default silence of
        // a 4G link applies; set `link` per site for a wired device.
        offline("fire_panel.offline", Level::Orange),
    ])
}

/// The built-in rule set of a device kind.
pub fn for_kind(kind: DeviceKind) -> RuleSet {
    match kind {
        DeviceKind::Gas => gas(),
        DeviceKind::Electrical => electrical(),
        DeviceKind::WaterPressure => water_pressure(),
        DeviceKind::Crane => crane(),
        DeviceKind::FirePanel => fire_panel(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let expected = [
            (DeviceKind::Gas, 6),
            (DeviceKind::Electrical, 9),
            (DeviceKind::WaterPressure, 7),
            (DeviceKind::Crane, 12),
            (DeviceKind::FirePanel, 6),
        ];
        for (kind, n) in expected {
            let set = for_kind(kind);
            assert_eq!(set.rules().len(), n, "{kind}: a rule failed validation");
            for r in set.rules() {
                assert_eq!(r.validate(), Ok(()), "{}", r.id);
                assert!(!r.id.is_empty());
            }
            assert!(set.hours().is_always());
        }
    }

    #[test]
    fn no_level_sits_at_a_full_scale_or_inside_normal_operation() {
        // Red at the crane's limits, not past them.
        let crane = crane();
        let levels = |set: &RuleSet, id: &str| match &set.get(id).map(|r| &r.kind) {
            Some(RuleKind::Threshold { levels, .. }) => *levels,
            _ => Levels::NONE,
        };
        assert_eq!(
            levels(&crane, "crane.moment").get(Level::Red),
            Some(Band::new(100.0, 95.0))
        );
        assert_eq!(
            levels(&crane, "crane.load").get(Level::Red),
            Some(Band::new(6.0, 5.7))
        );
        // Nothing alarms at 1.6 MPa first: a 0–1.6 MPa transmitter's full
        // scale is a fault, not a reading.
        let high = levels(&water_pressure(), "water.pressure_high");
        assert!(high.iter().all(|(_, b)| b.raise < 1.6));
        // No blue on a measured quantity: blue would sit inside normal
        // operation. The fire panel's isolated points are a state someone
        // set by hand, not a reading, and their blue is the only one.
        for kind in DeviceKind::ALL {
            for r in for_kind(kind).rules() {
                if let RuleKind::Threshold { levels, .. } | RuleKind::RateOfChange { levels, .. } =
                    &r.kind
                {
                    let blue = levels.get(Level::Blue);
                    if r.id.as_str() == "fire_panel.isolated" {
                        assert_eq!(blue, Some(Band::new(1.0, 0.5)));
                    } else {
                        assert_eq!(blue, None, "{}", r.id);
                    }
                }
            }
        }
    }

    #[test]
    fn links_order_their_tolerance() {
        assert_eq!(Link::Wired.offline_after_ms(), 45_000);
        assert!(Link::Wired.offline_after_ms() < Link::Wifi.offline_after_ms());
        assert!(Link::Wifi.offline_after_ms() < Link::Cellular.offline_after_ms());
        for l in Link::ALL {
            assert_eq!(Link::parse(l.as_str()), Some(l));
        }
        assert_eq!(Link::parse("5g"), None);
        assert_eq!(OFFLINE_AFTER_MS, 180_000);
    }
}
