use anquan_protocol::{Fault, FaultCode, FaultSet, Metric};
use proptest::prelude::*;
use std::vec::Vec;

use super::*;
use crate::defaults;
use crate::rule::{Band, Condition, Debounce};

const S: u64 = 1000;

fn r(pairs: &[(Metric, f32)]) -> Readings {
    pairs.iter().copied().collect()
}

fn one(metric: Metric, v: f32) -> Readings {
    r(&[(metric, v)])
}

fn rule(id: &str, debounce: Debounce, kind: RuleKind) -> Rule {
    Rule {
        id: RuleId::new(id).unwrap(),
        enabled: true,
        debounce,
        kind,
    }
}

fn set(rules: impl IntoIterator<Item = Rule>) -> RuleSet {
    let mut s = RuleSet::new();
    for r in rules {
        s.push(r).unwrap();
    }
    s
}

/// yellow ≥ 25 (clear < 20), red ≥ 50 (clear < 40), above.
fn gas_like(debounce: Debounce) -> RuleSet {
    set([rule(
        "t",
        debounce,
        RuleKind::Threshold {
            metric: Metric::LelPct,
            direction: Direction::Above,
            levels: Levels::NONE
                .with(Level::Yellow, Band::new(25.0, 20.0))
                .with(Level::Red, Band::new(50.0, 40.0)),
        },
    )])
}

/// Feeds values one per second from t=1 s and returns (second, state, level).
fn run(rules: &RuleSet, values: &[f32]) -> Vec<(u64, AlarmState, Level)> {
    let mut st = DeviceState::new(0);
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let t = (i as u64 + 1) * S;
        for tr in rules.evaluate(&mut st, &one(Metric::LelPct, *v), &[], t) {
            out.push((t / S, tr.state, tr.level));
        }
    }
    out
}

#[test]
fn threshold_raise_escalate_downgrade_clear() {
    use AlarmState::*;
    let rules = gas_like(Debounce::IMMEDIATE);
    let got = run(
        &rules,
        &[10.0, 26.0, 30.0, 55.0, 45.0, 39.0, 21.0, 19.0, 5.0],
    );
    assert_eq!(
        got,
        [
            (2, Raised, Level::Yellow),
            (4, Escalated, Level::Red),
            (6, Downgraded, Level::Yellow),
            (8, Cleared, Level::Yellow),
        ]
    );
}

#[test]
fn transitions_carry_value_threshold_and_time() {
    let rules = gas_like(Debounce::IMMEDIATE);
    let mut st = DeviceState::new(0);
    let t = rules.evaluate(&mut st, &one(Metric::LelPct, 55.0), &[], 7 * S);
    assert_eq!(
        t.as_slice(),
        [Transition {
            rule: RuleId::new("t").unwrap(),
            state: AlarmState::Raised,
            level: Level::Red,
            from: None,
            value: 55.0,
            threshold: 50.0,
            at_ms: 7 * S,
        }]
    );
    // Straight from red to quiet: the threshold is the lowest clear value
    // fallen below.
    let t = rules.evaluate(&mut st, &one(Metric::LelPct, 3.0), &[], 8 * S);
    assert_eq!(
        (t[0].state, t[0].level, t[0].from),
        (AlarmState::Cleared, Level::Red, Some(Level::Red))
    );
    assert_eq!(t[0].threshold, 20.0);
    // Red to yellow reports red's clear value.
    rules.evaluate(&mut st, &one(Metric::LelPct, 60.0), &[], 9 * S);
    let t = rules.evaluate(&mut st, &one(Metric::LelPct, 30.0), &[], 10 * S);
    assert_eq!((t[0].state, t[0].threshold), (AlarmState::Downgraded, 40.0));
    assert_eq!(st.level(0), Some(Level::Yellow));
    assert_eq!(st.max_level(), Some(Level::Yellow));
}

#[test]
fn below_rules_mirror_above_rules() {
    use AlarmState::*;
    let rules = set([rule(
        "p",
        Debounce::IMMEDIATE,
        RuleKind::Threshold {
            metric: Metric::PressureMpa,
            direction: Direction::Below,
            levels: Levels::NONE
                .with(Level::Yellow, Band::new(0.10, 0.12))
                .with(Level::Red, Band::new(0.05, 0.07)),
        },
    )]);
    let mut st = DeviceState::new(0);
    let mut got = Vec::new();
    for (i, v) in [0.3, 0.1, 0.11, 0.04, 0.06, 0.08, 0.125].iter().enumerate() {
        for t in rules.evaluate(&mut st, &one(Metric::PressureMpa, *v), &[], i as u64 * S) {
            got.push((i, t.state, t.level));
        }
    }
    assert_eq!(
        got,
        [
            (1, Raised, Level::Yellow),
            (3, Escalated, Level::Red),
            (5, Downgraded, Level::Yellow),
            (6, Cleared, Level::Yellow)
        ]
    );
}

#[test]
fn hysteresis_holds_inside_the_band() {
    let rules = gas_like(Debounce::IMMEDIATE);
    // Raised at 26, then wanders between clear (20) and raise (25): quiet.
    let got = run(&rules, &[26.0, 24.0, 20.0, 24.9, 21.0, 20.5]);
    assert_eq!(got.len(), 1);
}

#[test]
fn debounce_in_samples() {
    use AlarmState::*;
    let rules = gas_like(Debounce::samples(3));
    // Two high samples then a dip: nothing. Three in a row: raised.
    let got = run(&rules, &[30.0, 30.0, 10.0, 30.0, 30.0, 30.0]);
    assert_eq!(got, [(6, Raised, Level::Yellow)]);
    // Clearing is debounced too.
    let got = run(&rules, &[30.0, 30.0, 30.0, 5.0, 5.0, 30.0, 5.0, 5.0, 5.0]);
    assert_eq!(
        got,
        [(3, Raised, Level::Yellow), (9, Cleared, Level::Yellow)]
    );
}

#[test]
fn debounce_enters_only_the_level_that_held() {
    use AlarmState::*;
    let rules = gas_like(Debounce::samples(2));
    // 30 (yellow) then 60 (red): only yellow held for two samples. The red
    // sample starts red's own debounce, which the next red sample completes.
    let got = run(&rules, &[30.0, 60.0, 60.0]);
    assert_eq!(
        got,
        [(2, Raised, Level::Yellow), (3, Escalated, Level::Red)]
    );
    // A single red spike inside yellow does not escalate.
    let got = run(&rules, &[30.0, 30.0, 60.0, 30.0, 30.0]);
    assert_eq!(got, [(2, Raised, Level::Yellow)]);
}

#[test]
fn debounce_in_time() {
    use AlarmState::*;
    let rules = gas_like(Debounce {
        samples: 1,
        ms: 3000,
    });
    // Needs 3 s of persistence: samples at 1,2,3 s are not enough (2 s), the
    // one at 4 s is.
    let got = run(&rules, &[30.0, 30.0, 30.0, 30.0]);
    assert_eq!(got, [(4, Raised, Level::Yellow)]);
    // Both conditions: 2 samples and 3 s.
    let rules = gas_like(Debounce {
        samples: 2,
        ms: 3000,
    });
    let mut st = DeviceState::new(0);
    assert!(
        rules
            .evaluate(&mut st, &one(Metric::LelPct, 30.0), &[], 0)
            .is_empty()
    );
    let t = rules.evaluate(&mut st, &one(Metric::LelPct, 30.0), &[], 3000);
    assert_eq!(t[0].state, Raised);
}

#[test]
fn missing_reading_decides_nothing() {
    let rules = gas_like(Debounce::IMMEDIATE);
    let mut st = DeviceState::new(0);
    rules.evaluate(&mut st, &one(Metric::LelPct, 60.0), &[], S);
    // A frame without the reading (faulty channel) keeps the alarm as is.
    let t = rules.evaluate(&mut st, &one(Metric::CoPpm, 1.0), &[], 2 * S);
    assert!(t.is_empty());
    assert_eq!(st.level(0), Some(Level::Red));
}

fn drop_rule() -> RuleSet {
    set([rule(
        "drop",
        Debounce::IMMEDIATE,
        RuleKind::RateOfChange {
            metric: Metric::PressureMpa,
            direction: Direction::Below,
            window_ms: 60_000,
            levels: Levels::NONE
                .with(Level::Yellow, Band::new(-0.05, -0.02))
                .with(Level::Red, Band::new(-0.20, -0.10)),
        },
    )])
}

#[test]
fn rate_of_change_detects_a_slow_leak_and_a_burst() {
    use AlarmState::*;
    let rules = drop_rule();
    let mut st = DeviceState::new(0);
    let mut got = Vec::new();
    // Steady 0.40 MPa for 2 min, every 15 s: no alarm.
    let mut p: f32 = 0.40;
    let mut t = 0;
    for _ in 0..8 {
        assert!(
            rules
                .evaluate(&mut st, &one(Metric::PressureMpa, p), &[], t)
                .is_empty()
        );
        t += 15 * S;
    }
    // Slow leak: −0.08 MPa/min for 2 min.
    for _ in 0..8 {
        p -= 0.02;
        for tr in rules.evaluate(&mut st, &one(Metric::PressureMpa, p), &[], t) {
            got.push((tr.state, tr.level, tr.value));
        }
        t += 15 * S;
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (Raised, Level::Yellow));
    assert!(got[0].2 <= -0.05, "rate {}", got[0].2);
    // A burst: −0.3 MPa in 15 s.
    p -= 0.3;
    let tr = rules.evaluate(&mut st, &one(Metric::PressureMpa, p.max(0.0)), &[], t);
    assert_eq!((tr[0].state, tr[0].level), (Escalated, Level::Red));
    // Pressure restored and steady: the rate goes back to 0 and clears.
    let mut cleared = false;
    for _ in 0..10 {
        t += 15 * S;
        for tr in rules.evaluate(&mut st, &one(Metric::PressureMpa, 0.4), &[], t) {
            cleared |= tr.state == Cleared;
        }
    }
    assert!(cleared);
}

#[test]
fn rate_of_change_needs_half_a_window_of_history() {
    let rules = drop_rule();
    let mut st = DeviceState::new(0);
    // A large drop 10 s after the first sample: under half a window, no rate.
    rules.evaluate(&mut st, &one(Metric::PressureMpa, 0.5), &[], 0);
    assert!(
        rules
            .evaluate(&mut st, &one(Metric::PressureMpa, 0.1), &[], 10 * S)
            .is_empty()
    );
    // Time going backwards resets the history instead of computing nonsense.
    assert!(
        rules
            .evaluate(&mut st, &one(Metric::PressureMpa, 0.5), &[], 5 * S)
            .is_empty()
    );
}

fn crane_combo() -> RuleSet {
    let mut conditions = heapless::Vec::new();
    conditions
        .push(Condition {
            metric: Metric::MomentPct,
            direction: Direction::Above,
            raise: 90.0,
            clear: 85.0,
        })
        .unwrap();
    conditions
        .push(Condition {
            metric: Metric::WindMs,
            direction: Direction::Above,
            raise: 13.8,
            clear: 12.0,
        })
        .unwrap();
    set([rule(
        "combo",
        Debounce::IMMEDIATE,
        RuleKind::AllOf {
            conditions,
            level: Level::Red,
        },
    )])
}

#[test]
fn all_of_needs_every_condition_and_clears_on_any() {
    use AlarmState::*;
    let rules = crane_combo();
    let mut st = DeviceState::new(0);
    let f = |m: f32, w: f32| r(&[(Metric::MomentPct, m), (Metric::WindMs, w)]);
    assert!(rules.evaluate(&mut st, &f(95.0, 10.0), &[], S).is_empty());
    assert!(
        rules
            .evaluate(&mut st, &f(50.0, 15.0), &[], 2 * S)
            .is_empty()
    );
    let t = rules.evaluate(&mut st, &f(92.0, 14.0), &[], 3 * S);
    assert_eq!(
        (t[0].state, t[0].level, t[0].value, t[0].threshold),
        (Raised, Level::Red, 92.0, 90.0)
    );
    // Held while both stay past their clear values.
    assert!(
        rules
            .evaluate(&mut st, &f(86.0, 12.5), &[], 4 * S)
            .is_empty()
    );
    // Wind falls below 12: cleared, reported against the wind's clear value.
    let t = rules.evaluate(&mut st, &f(95.0, 11.0), &[], 5 * S);
    assert_eq!(
        (t[0].state, t[0].value, t[0].threshold),
        (Cleared, 11.0, 12.0)
    );
    // Missing wind reading: no decision.
    rules.evaluate(&mut st, &f(95.0, 15.0), &[], 6 * S);
    assert!(
        rules
            .evaluate(&mut st, &one(Metric::MomentPct, 10.0), &[], 7 * S)
            .is_empty()
    );
    assert_eq!(st.level(0), Some(Level::Red));
}

fn offline_rules() -> RuleSet {
    set([rule(
        "off",
        Debounce::IMMEDIATE,
        RuleKind::Offline {
            after_ms: 45_000,
            level: Level::Orange,
        },
    )])
}

#[test]
fn offline_after_silence_and_back_on_a_frame() {
    use AlarmState::*;
    let rules = offline_rules();
    let mut st = DeviceState::new(0);
    // Registered at 0 and never heard from: offline at 45 s, not before.
    assert!(rules.tick(&mut st, 44_999).is_empty());
    let t = rules.tick(&mut st, 45_000);
    assert_eq!(
        (t[0].state, t[0].level, t[0].value, t[0].threshold),
        (Raised, Level::Orange, 45.0, 45.0)
    );
    // Raised once only.
    assert!(rules.tick(&mut st, 90_000).is_empty());
    // A frame clears it at once.
    let t = rules.evaluate(&mut st, &Readings::new(), &[], 100_000);
    assert_eq!((t[0].state, t[0].value), (Cleared, 100.0));
    assert!(rules.tick(&mut st, 140_000).is_empty());
    assert_eq!(rules.tick(&mut st, 145_000)[0].state, Raised);
}

#[test]
fn resuming_restarts_the_silence_clock_but_keeps_a_raised_alarm() {
    use AlarmState::*;
    let rules = offline_rules();
    let mut st = DeviceState::new(0);
    // The listener was deaf from 30 s to 60 s: the clock restarts at 60 s.
    st.resume_at(60_000);
    assert!(rules.tick(&mut st, 104_999).is_empty());
    assert_eq!(rules.tick(&mut st, 105_000)[0].state, Raised);
    // Excusing never moves the clock back, and never clears.
    st.resume_at(50_000);
    assert_eq!(st.last_seen_ms(), 60_000);
    st.resume_at(200_000);
    assert!(rules.tick(&mut st, 300_000).is_empty());
    assert_eq!(st.level(0), Some(Level::Orange));
}

#[test]
fn last_will_raises_offline_at_once() {
    use AlarmState::*;
    let rules = offline_rules();
    let mut st = DeviceState::new(0);
    let t = rules.status(&mut st, false, 10_000);
    assert_eq!((t[0].state, t[0].level), (Raised, Level::Orange));
    assert!(rules.status(&mut st, false, 11_000).is_empty());
    let t = rules.status(&mut st, true, 20_000);
    assert_eq!(t[0].state, Cleared);
    // `online` restarts the silence clock.
    assert!(rules.tick(&mut st, 60_000).is_empty());
    assert_eq!(rules.tick(&mut st, 65_000)[0].state, Raised);
}

/// 2024-11-25 00:00 +08:00, a Monday, as Unix ms.
const MON: u64 = 1_732_464_000_000;
const H: u64 = 3_600_000;

/// Offline after 180 s, working hours Monday to Friday 07:00–19:00.
fn site_with_hours() -> RuleSet {
    let mut rules = set([rule(
        "off",
        Debounce::IMMEDIATE,
        RuleKind::Offline {
            after_ms: 180_000,
            level: Level::Orange,
        },
    )]);
    let mut hours = crate::Hours::new(8 * 60).unwrap();
    for d in 0..5u16 {
        hours.push(d * 1440 + 7 * 60, d * 1440 + 19 * 60).unwrap();
    }
    rules.set_hours(hours);
    rules
}

/// Ticks every second over `[from, to)`; the times of the transitions.
fn tick_over(rules: &RuleSet, st: &mut DeviceState, from: u64, to: u64) -> Vec<(u64, AlarmState)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        for tr in rules.tick(st, t) {
            out.push((t, tr.state));
        }
        t += S;
    }
    out
}

#[test]
fn silence_counts_only_inside_working_hours() {
    let rules = site_with_hours();
    // Last heard Monday 18:59; switched off for the night.
    let mut st = DeviceState::new(MON + 18 * H + 59 * 60_000);
    // Nothing overnight: one working minute before 19:00, then none.
    assert!(tick_over(&rules, &mut st, MON + 19 * H, MON + 31 * H).is_empty());
    // Tuesday: 60 s counted on Monday, so 120 s more after 07:00.
    let got = tick_over(&rules, &mut st, MON + 31 * H, MON + 31 * H + 300 * S);
    assert_eq!(got, [(MON + 31 * H + 120 * S, AlarmState::Raised)]);
}

#[test]
fn a_device_heard_before_work_starts_raises_nothing() {
    let rules = site_with_hours();
    let mut st = DeviceState::new(MON + 19 * H);
    // Friday evening to Monday 07:02: a weekend of silence.
    let fri_evening = MON + 4 * 24 * H + 19 * H;
    st.resume_at(fri_evening);
    assert!(
        tick_over(
            &rules,
            &mut st,
            fri_evening,
            MON + 7 * 24 * H + 7 * H + 120 * S
        )
        .is_empty()
    );
    // Heard at 07:02: quiet.
    let now = MON + 7 * 24 * H + 7 * H + 120 * S;
    assert!(
        rules
            .evaluate(&mut st, &Readings::new(), &[], now)
            .is_empty()
    );
}

#[test]
fn a_last_will_outside_hours_is_only_silence() {
    let rules = site_with_hours();
    let mut st = DeviceState::new(MON + 19 * H + 60 * S);
    // The broker publishes the will at 19:02, outside the hours: nothing,
    // and it does not clear an alarm either.
    assert!(
        rules
            .status(&mut st, false, MON + 19 * H + 120 * S)
            .is_empty()
    );
    assert_eq!(st.level(0), None);
    // Inside the hours it raises at once.
    let mut st = DeviceState::new(MON + 10 * H);
    let t = rules.status(&mut st, false, MON + 10 * H + 5 * S);
    assert_eq!(
        (t[0].state, t[0].level),
        (AlarmState::Raised, Level::Orange)
    );
    // A will after hours leaves a standing alarm alone.
    assert!(rules.status(&mut st, false, MON + 20 * H).is_empty());
    assert_eq!(st.level(0), Some(Level::Orange));
    // `online` clears it whenever it comes.
    assert_eq!(
        rules.status(&mut st, true, MON + 21 * H)[0].state,
        AlarmState::Cleared
    );
}

#[test]
fn an_announced_power_off_raises_nothing_until_it_ends() {
    let rules = offline_rules(); // offline after 45 s, always judged
    let mut st = DeviceState::new(0);
    // The last frame says: off for 12 hours.
    let off = one(Metric::PowerOffMin, 720.0);
    assert!(rules.evaluate(&mut st, &off, &[], 10 * S).is_empty());
    // The broker's last will and twelve hours of silence: nothing.
    assert!(rules.status(&mut st, false, 20 * S).is_empty());
    assert!(rules.tick(&mut st, 10 * S + 12 * H).is_empty());
    // Not back 45 s after the announced end: offline.
    assert!(rules.tick(&mut st, 10 * S + 12 * H + 44 * S).is_empty());
    let t = rules.tick(&mut st, 10 * S + 12 * H + 45 * S);
    assert_eq!(
        (t[0].state, t[0].level),
        (AlarmState::Raised, Level::Orange)
    );
    // Back early instead: the plan is over at the first frame.
    let mut st = DeviceState::new(0);
    rules.evaluate(&mut st, &off, &[], 10 * S);
    rules.evaluate(&mut st, &Readings::new(), &[], H);
    assert_eq!(st.last_seen_ms(), H);
    assert!(!rules.tick(&mut st, H + 45 * S).is_empty());
    // Nonsense is ignored: NaN, negative, zero.
    for v in [f32::NAN, -5.0, 0.0] {
        let mut st = DeviceState::new(0);
        rules.evaluate(&mut st, &one(Metric::PowerOffMin, v), &[], 10 * S);
        assert_eq!(st.last_seen_ms(), 10 * S, "{v}");
    }
}

#[test]
fn fault_rule_follows_fault_codes() {
    use AlarmState::*;
    let codes = FaultSet::EMPTY
        .with(FaultCode::OpenCircuit)
        .with(FaultCode::OutOfRange);
    let rules = set([rule(
        "f",
        Debounce::samples(2),
        RuleKind::Fault {
            codes,
            level: Level::Yellow,
        },
    )]);
    let mut st = DeviceState::new(0);
    let open = [Fault::on(FaultCode::OpenCircuit, Metric::PressureMpa)];
    let other = [Fault::device(FaultCode::Power)];
    let empty = Readings::new();
    assert!(rules.evaluate(&mut st, &empty, &open, S).is_empty());
    let t = rules.evaluate(&mut st, &empty, &open, 2 * S);
    assert_eq!(
        (t[0].state, t[0].level, t[0].value),
        (Raised, Level::Yellow, 1.0)
    );
    // A code outside the set does not hold it; two clean frames clear it.
    assert!(rules.evaluate(&mut st, &empty, &other, 3 * S).is_empty());
    assert_eq!(
        rules.evaluate(&mut st, &empty, &[], 4 * S)[0].state,
        Cleared
    );
}

#[test]
fn disabled_rules_never_fire() {
    let mut rules = gas_like(Debounce::IMMEDIATE);
    let mut r = rules.rules()[0].clone();
    r.enabled = false;
    rules.replace(r).unwrap();
    assert!(run(&rules, &[90.0, 90.0]).is_empty());
}

#[test]
fn rule_set_limits() {
    let mut s = RuleSet::new();
    let make = |i: usize| {
        rule(
            &std::format!("r{i}"),
            Debounce::IMMEDIATE,
            RuleKind::Offline {
                after_ms: 1000,
                level: Level::Blue,
            },
        )
    };
    for i in 0..crate::MAX_RULES {
        s.push(make(i)).unwrap();
    }
    assert_eq!(s.push(make(99)), Err(RuleError::TooManyRules));
    assert_eq!(RuleSet::new().push(make(0)), Ok(()));
    let mut s = set([make(0)]);
    assert_eq!(s.push(make(0)), Err(RuleError::DuplicateId));
    let mut s = drop_rule();
    let mut second = s.rules()[0].clone();
    second.id = RuleId::new("drop2").unwrap();
    s.push(second.clone()).unwrap();
    second.id = RuleId::new("drop3").unwrap();
    assert_eq!(s.push(second), Err(RuleError::TooManyRateRules));
}

#[test]
fn migrate_keeps_state_by_id_and_clears_removed_alarms() {
    let old = defaults::gas();
    let mut st = DeviceState::new(0);
    let readings = r(&[(Metric::LelPct, 60.0), (Metric::CoPpm, 200.0)]);
    rules_settle(&old, &mut st, &readings);
    let lel = old.position("gas.lel").unwrap();
    assert_eq!(st.level(lel), Some(Level::Red));
    // New set: gas.co removed, gas.lel moved to another position.
    let mut new = RuleSet::new();
    new.push(old.get("gas.offline").unwrap().clone()).unwrap();
    new.push(old.get("gas.lel").unwrap().clone()).unwrap();
    let (mut next, cleared) = new.migrate(&old, &st, 10 * S);
    assert_eq!(next.level(1), Some(Level::Red), "gas.lel kept its alarm");
    assert_eq!(cleared.len(), 1);
    assert_eq!(
        (cleared[0].rule.as_str(), cleared[0].state),
        ("gas.co", AlarmState::Cleared)
    );
    // Same readings under the new set: no re-raise.
    assert!(new.evaluate(&mut next, &readings, &[], 11 * S).is_empty());
}

fn rules_settle(rules: &RuleSet, st: &mut DeviceState, readings: &Readings) {
    for i in 1..=4 {
        rules.evaluate(st, readings, &[], i * S);
    }
}

#[test]
fn default_gas_rules_raise_red_at_55_lel() {
    let rules = defaults::gas();
    let mut st = DeviceState::new(0);
    let t = rules.evaluate(&mut st, &one(Metric::LelPct, 55.0), &[], 15 * S);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].rule.as_str(), t[0].level, t[0].threshold),
        ("gas.lel", Level::Red, 50.0)
    );
}

#[test]
fn default_button_is_red_at_once() {
    let rules = defaults::electrical();
    let mut st = DeviceState::new(0);
    let t = rules.evaluate(&mut st, &one(Metric::AlarmBtn, 1.0), &[], S);
    assert_eq!(
        (t[0].rule.as_str(), t[0].level),
        ("elec.button", Level::Red)
    );
    let t = rules.evaluate(&mut st, &one(Metric::AlarmBtn, 0.0), &[], 2 * S);
    assert_eq!(t[0].state, AlarmState::Cleared);
}

#[test]
fn device_state_is_small() {
    // The gateway keeps one per device; 100 000 devices must fit easily.
    assert!(
        core::mem::size_of::<DeviceState>() <= 384,
        "{}",
        core::mem::size_of::<DeviceState>()
    );
}

proptest! {
    /// Once raised, noise that stays between a level's clear and the next
    /// level's raise never produces a transition.
    #[test]
    fn no_flapping_inside_the_band(noise in proptest::collection::vec(20.0f32..49.99, 1..200)) {
        let rules = gas_like(Debounce::IMMEDIATE);
        let mut st = DeviceState::new(0);
        let t = rules.evaluate(&mut st, &one(Metric::LelPct, 30.0), &[], 0);
        prop_assert_eq!(t.len(), 1);
        for (i, v) in noise.iter().enumerate() {
            let t = rules.evaluate(&mut st, &one(Metric::LelPct, *v), &[], (i as u64 + 1) * S);
            prop_assert!(t.is_empty(), "value {} flapped: {:?}", v, t);
        }
    }

    /// Replaying the same frame sequence gives the same transitions.
    #[test]
    fn replay_is_deterministic(
        frames in proptest::collection::vec((0.0f32..100.0, 0.0f32..30.0, 0u64..20_000, proptest::bool::ANY), 1..120)
    ) {
        let rules = defaults::crane();
        let play = || {
            let mut st = DeviceState::new(0);
            let mut t = 0;
            let mut all = Vec::new();
            for (moment, wind, dt, fault) in &frames {
                t += dt;
                let faults: &[Fault] = if *fault { &[Fault { code: FaultCode::Comm, metric: None }] } else { &[] };
                let rd = r(&[(Metric::MomentPct, *moment), (Metric::WindMs, *wind)]);
                all.extend(rules.evaluate(&mut st, &rd, faults, t));
                all.extend(rules.tick(&mut st, t + 50_000));
            }
            all
        };
        prop_assert_eq!(play(), play());
    }

    /// Whatever the input, levels only move one transition at a time and
    /// every transition is consistent with the level before it.
    #[test]
    fn transitions_are_consistent(values in proptest::collection::vec(0.0f32..100.0, 1..300), samples in 1u8..4) {
        let rules = gas_like(Debounce::samples(samples));
        let mut st = DeviceState::new(0);
        let mut level = None;
        for (i, v) in values.iter().enumerate() {
            for t in rules.evaluate(&mut st, &one(Metric::LelPct, *v), &[], i as u64 * S) {
                prop_assert_eq!(t.from, level);
                let to = if t.state == AlarmState::Cleared { None } else { Some(t.level) };
                prop_assert_eq!(AlarmState::between(level, to), Some(t.state));
                level = to;
            }
            prop_assert_eq!(st.level(0), level);
        }
    }
}
