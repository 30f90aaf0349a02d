//! Built-in rule sets per device kind, grounded in the Chinese national
//! standards.
//!
//! Each figure says where it comes from and how sure we are of it:
//! *confirmed* (the clause text was read, in a secondary copy), *unconfirmed*
//! (widely quoted, clause text not read), or *[P]* (our proposal where no
//! standard gives a figure). Every default can be overridden per kind, per
//! site and per device in the site rules file (see `RuleFile`, `std` feature).
//! The same table is in README.md.

use anquan_protocol::{DeviceKind, FaultSet, Level, Metric, RuleId};

use crate::rule::{Band, Condition, Debounce, Direction, Levels, Rule, RuleKind};
use crate::{MAX_CONDITIONS, RuleSet};

/// Default report period of a device (seconds). The tower-crane black box
/// reports every 15 s (seed 004 L351, Banan district 住建 sub-plan); we use the
/// same period for every kind.
pub const REPORT_PERIOD_MS: u32 = 15_000;

/// A device is offline after 3 missed reports (DESIGN.md: "no frame for 3
/// report periods = 45 s").
pub const OFFLINE_AFTER_MS: u32 = 3 * REPORT_PERIOD_MS;

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
/// after two consecutive faulty frames so that one glitch is not an alarm.
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

/// Combustible gas and CO detectors.
pub fn gas() -> RuleSet {
    set([
        // GB/T 50493-2019 §5.5.2: 1st-level alarm setting ≤ 25 %LEL, 2nd-level
        // ≤ 50 %LEL (confirmed, secondary copy). We put the 1st-level alarm
        // at orange and the 2nd at red; blue and yellow are early warnings
        // [P]. Clear at 80 % of the raise value [P]. GB 15322.1-2019 makes
        // the detector itself respond within 30 s, so no extra debounce.
        threshold(
            "gas.lel",
            Metric::LelPct,
            Direction::Above,
            Debounce::IMMEDIATE,
            Levels::NONE
                .with(Level::Blue, Band::new(5.0, 4.0))
                .with(Level::Yellow, Band::new(10.0, 8.0))
                .with(Level::Orange, Band::new(25.0, 20.0))
                .with(Level::Red, Band::new(50.0, 40.0)),
        ),
        // GB/T 50493-2019 §5.5.2: toxic gas 1st-level ≤ 100 %OEL, 2nd-level
        // ≤ 200 %OEL (confirmed, secondary). OEL of CO: PC-STEL 30 mg/m³
        // (GBZ 2.1-2019, unconfirmed) ≈ 26 ppm at 20 °C; so yellow 25 ppm
        // (≈ 100 %OEL), orange 50 ppm (≈ 200 %OEL). Red at 150 ppm and blue at
        // 10 ppm are [P]. Two samples, since CO cells drift and spike.
        threshold(
            "gas.co",
            Metric::CoPpm,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Blue, Band::new(10.0, 8.0))
                .with(Level::Yellow, Band::new(25.0, 20.0))
                .with(Level::Orange, Band::new(50.0, 40.0))
                .with(Level::Red, Band::new(150.0, 120.0)),
        ),
        fault("gas.fault", Level::Yellow),
        offline("gas.offline", Level::Yellow),
        button("gas.button"),
    ])
}

/// Cable temperature levels shared by the temperature channels.
///
/// GB 14287.3-2014: alarm setting range 55–140 °C, alarm within 40 s
/// (unconfirmed). Blue at 55 °C (bottom of the setting range), yellow at
/// 70 °C (rated conductor temperature of PVC cable, GB/T 5023), orange at
/// 90 °C (rated temperature of XLPE cable, GB/T 12706), red at 120 °C [P],
/// inside the 140 °C top of the range. Clear 5–10 °C lower [P]. Two samples
/// (GB 14287.3 allows 40 s).
fn cable_temperature(rule: &str, metric: Metric) -> Rule {
    threshold(
        rule,
        metric,
        Direction::Above,
        Debounce::samples(2),
        Levels::NONE
            .with(Level::Blue, Band::new(55.0, 50.0))
            .with(Level::Yellow, Band::new(70.0, 65.0))
            .with(Level::Orange, Band::new(90.0, 85.0))
            .with(Level::Red, Band::new(120.0, 110.0)),
    )
}

/// Electrical-fire monitors: residual current and cable temperatures.
pub fn electrical() -> RuleSet {
    set([
        // GB 50116-2013 §9.2.3: residual-current alarm value 300–500 mA
        // (confirmed; natural leakage of a circuit is 100–200 mA).
        // GB 14287.2-2014: setting range 20–1000 mA, alarm within 30 s
        // (unconfirmed; a 2026 edition is published). Blue 200 mA (top of the
        // natural leakage) [P], yellow 300 mA and orange 500 mA (the GB 50116
        // band), red 1000 mA (top of the GB 14287.2 setting range).
        threshold(
            "elec.residual",
            Metric::ResidualMa,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Blue, Band::new(200.0, 150.0))
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
pub fn water_pressure() -> RuleSet {
    set([
        // GB 50974-2014 §5.2.2: static pressure at the most unfavourable
        // point ≥ 0.15 MPa for buildings over 100 m, ≥ 0.10 MPa for class-1
        // high-rise public buildings, ≥ 0.07 MPa for high-rise residential,
        // class-2 high-rise public and multi-storey public buildings
        // (confirmed, secondary); GB 55036-2022 §4.0.5: sprinklers ≥ 0.05 MPa
        // (confirmed, secondary). Defaults assume a class-1 high-rise
        // public building: blue 0.15, yellow 0.10, orange 0.07, red 0.05.
        // Override per site for the building class. Clear 0.02 MPa above [P].
        threshold(
            "water.pressure_low",
            Metric::PressureMpa,
            Direction::Below,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Blue, Band::new(0.15, 0.17))
                .with(Level::Yellow, Band::new(0.10, 0.12))
                .with(Level::Orange, Band::new(0.07, 0.09))
                .with(Level::Red, Band::new(0.05, 0.07)),
        ),
        // Over-pressure: GB 50974-2014 §7.4.12 caps hydrant outlet dynamic
        // pressure at 0.50 MPa (confirmed, secondary), but a network sensor
        // in the pump room legitimately reads more. Defaults follow the
        // PN 1.6 MPa rating of common fire piping [P]: yellow 1.2, orange 1.4,
        // red 1.6 MPa.
        threshold(
            "water.pressure_high",
            Metric::PressureMpa,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Yellow, Band::new(1.2, 1.15))
                .with(Level::Orange, Band::new(1.4, 1.35))
                .with(Level::Red, Band::new(1.6, 1.55)),
        ),
        // A falling pressure is a leak or a burst before the absolute
        // thresholds trip. Per minute over a 60 s window [P]: yellow
        // −0.05 MPa/min (slow leak), orange −0.10, red −0.20 (burst).
        Rule {
            id: id("water.pressure_drop"),
            enabled: true,
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
        // Tank level depends on the tank; shipped disabled with placeholder
        // figures [P]. Enable it and set the levels per site.
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

/// Tower-crane safety monitors ("black boxes").
pub fn crane() -> RuleSet {
    let mut conditions = heapless::Vec::<Condition, MAX_CONDITIONS>::new();
    // Cannot fail: two conditions fit in MAX_CONDITIONS.
    let _ = conditions.push(Condition {
        metric: Metric::MomentPct,
        direction: Direction::Above,
        raise: 90.0,
        clear: 85.0,
    });
    let _ = conditions.push(Condition {
        metric: Metric::WindMs,
        direction: Direction::Above,
        raise: 13.8,
        clear: 12.0,
    });
    set([
        // Load moment, % of the rated moment at the current radius.
        // GB 5144-2006 §6.1.2 and industry practice: pre-warning at 90 %,
        // cut hoisting-up and trolley-out between 100 % and 110 %
        // (unconfirmed). JGJ 332-2014 §3.1.1 requires real-time monitoring
        // of load, moment, height, radius and slew (confirmed, secondary).
        // Blue 80 % [P], yellow 90 %, orange 100 %, red 110 %.
        threshold(
            "crane.moment",
            Metric::MomentPct,
            Direction::Above,
            Debounce::IMMEDIATE,
            Levels::NONE
                .with(Level::Blue, Band::new(80.0, 75.0))
                .with(Level::Yellow, Band::new(90.0, 85.0))
                .with(Level::Orange, Band::new(100.0, 95.0))
                .with(Level::Red, Band::new(110.0, 105.0)),
        ),
        // Wind: JGJ 276-2012 §3.0.12 stops lifting at Beaufort 6 and above,
        // ≥ 10.8 m/s (confirmed, secondary); Beaufort 7 starts at 13.9 m/s;
        // the in-service limit of most tower cranes is 20 m/s (GB/T 13752,
        // unconfirmed). Blue 8.0 m/s (Beaufort 5) [P], yellow 10.8,
        // orange 13.8, red 20.0. Two samples: one gust is not a storm.
        threshold(
            "crane.wind",
            Metric::WindMs,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Blue, Band::new(8.0, 7.0))
                .with(Level::Yellow, Band::new(10.8, 9.5))
                .with(Level::Orange, Band::new(13.8, 12.0))
                .with(Level::Red, Band::new(20.0, 17.0)),
        ),
        // Tilt of the tower from vertical: GB 5144-2006 limits the tower's
        // verticality deviation to 4/1000 (≈ 0.23°) unloaded (unconfirmed).
        // Yellow 0.23°, orange 0.5°, red 1.0° [P].
        threshold(
            "crane.tilt",
            Metric::TiltDeg,
            Direction::Above,
            Debounce::samples(2),
            Levels::NONE
                .with(Level::Yellow, Band::new(0.23, 0.2))
                .with(Level::Orange, Band::new(0.5, 0.4))
                .with(Level::Red, Band::new(1.0, 0.8)),
        ),
        // Lifting near the moment limit in strong wind: moment ≥ 90 % AND
        // wind ≥ 13.8 m/s is red [P], though each alone is yellow/orange.
        Rule {
            id: id("crane.wind_lift"),
            enabled: true,
            debounce: Debounce::IMMEDIATE,
            kind: RuleKind::AllOf {
                conditions,
                level: Level::Red,
            },
        },
        fault("crane.fault", Level::Yellow),
        // Continuous monitoring replaces periodic inspection (seed 004
        // L351): a silent black box is orange.
        offline("crane.offline", Level::Orange),
    ])
}

/// The built-in rule set of a device kind.
pub fn for_kind(kind: DeviceKind) -> RuleSet {
    match kind {
        DeviceKind::Gas => gas(),
        DeviceKind::Electrical => electrical(),
        DeviceKind::WaterPressure => water_pressure(),
        DeviceKind::Crane => crane(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let expected = [
            (DeviceKind::Gas, 5),
            (DeviceKind::Electrical, 9),
            (DeviceKind::WaterPressure, 6),
            (DeviceKind::Crane, 6),
        ];
        for (kind, n) in expected {
            let set = for_kind(kind);
            assert_eq!(set.rules().len(), n, "{kind}: a rule failed validation");
            for r in set.rules() {
                assert_eq!(r.validate(), Ok(()), "{}", r.id);
                assert!(!r.id.is_empty());
            }
        }
    }
}
