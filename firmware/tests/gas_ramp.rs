//! A gas leak ramping up and dying away on a gas detector built from the
//! part models: the alarm transitions happen at the samples the rules and
//! the filter predict, each sends one event frame at once, and the buzzer
//! and relay pins switch exactly when the levels say.

mod common;

use anquan_edge_rules::Transition;
use anquan_firmware::hal::EpochClock;
use anquan_firmware::kinds::gas::{GasConfig, GasDetector};
use anquan_firmware::sim::rigs::{GasRig, SIM_EPOCH_MS};
use anquan_firmware::sim::{NoDelay, TransportSim};
use anquan_firmware::{Device, Hal};
use anquan_protocol::{AlarmState, Level, Metric, TopicKind};
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as Pin};

use common::{assert_contiguous, config, frames};

/// LEL at sample i (1 s apart): +2 %LEL/s up to 60, held 10 s, then the
/// leak is shut off and the reading falls to 0.
fn lel_at(i: u64) -> f32 {
    match i {
        0..=30 => 2.0 * i as f32,
        31..=40 => 60.0,
        _ => 0.0,
    }
}

#[test]
fn gas_ramp_events_and_buzzer() {
    let rig = GasRig::new();
    rig.adc.set_noise(0);
    // The buzzer pin must see exactly: off at start-up, on at yellow, off
    // when the alarm clears. The relay: off, on at red, off.
    let mut buzzer = PinMock::new(&[
        Pin::set(State::Low),
        Pin::set(State::High),
        Pin::set(State::Low),
    ]);
    let mut relay = PinMock::new(&[
        Pin::set(State::Low),
        Pin::set(State::High),
        Pin::set(State::Low),
    ]);
    let detector = GasDetector::new(rig.adc.clone(), NoDelay::default(), GasConfig::default());
    let hal = Hal::new(detector)
        .with_buzzer(buzzer.clone())
        .with_relay(relay.clone())
        .with_clock(EpochClock {
            epoch_ms: SIM_EPOCH_MS,
        });
    let mut device = Device::new(config("gas-0001"), hal).unwrap();
    let mut link = TransportSim::connected();

    let mut transitions: Vec<(u64, Transition)> = vec![];
    let mut buzzer_samples = vec![];
    let mut relay_samples = vec![];
    for i in 0..60u64 {
        rig.set_lel(lel_at(i));
        let now = i * 1_000;
        let out = device.step_observed(now, &mut link, |t| transitions.push((i, t.clone())));
        assert!(out.sampled);
        assert_eq!(out.next_wakeup_ms, now + 1_000);
        buzzer_samples.push(device.buzzer_on());
        relay_samples.push(device.relay_on());
    }
    buzzer.done();
    relay.done();

    // The median of 3 delays a rising ramp by one sample: the filtered value
    // at sample i is 2(i−1) %LEL. gas.lel raises at ≥ 20 (orange) and 50
    // (red) with no debounce, so orange at i = 11 (20 %LEL) and red at 26
    // (50). After the shut-off at i = 41 the median holds 60 for one more
    // sample, then 0 clears every level at i = 42.
    let got: Vec<(u64, &str, AlarmState, Level)> = transitions
        .iter()
        .map(|(i, t)| (*i, t.rule.as_str(), t.state, t.level))
        .collect();
    assert_eq!(
        got,
        [
            (11, "gas.lel", AlarmState::Raised, Level::Orange),
            (26, "gas.lel", AlarmState::Escalated, Level::Red),
            (42, "gas.lel", AlarmState::Cleared, Level::Red),
        ]
    );
    let on = |v: &[bool], from: usize, to: usize| {
        v.iter()
            .enumerate()
            .all(|(i, b)| *b == (from..to).contains(&i))
    };
    assert!(on(&buzzer_samples, 11, 42), "buzzer {buzzer_samples:?}");
    assert!(on(&relay_samples, 26, 42), "relay {relay_samples:?}");

    // One event frame per transition sample, sent in the same step, with
    // the value that caused it; telemetry at 0, 15, 30, 45.
    let frames = frames(&link);
    assert_contiguous(&frames);
    let events: Vec<(u64, f32)> = frames
        .iter()
        .filter(|(k, _)| *k == TopicKind::Event)
        .map(|(_, f)| {
            (
                (f.ts_ms - SIM_EPOCH_MS) / 1000,
                f.readings.get(Metric::LelPct).unwrap(),
            )
        })
        .collect();
    assert_eq!(events, [(11, 20.0), (26, 50.0), (42, 0.0)]);
    let telemetry: Vec<u64> = frames
        .iter()
        .filter(|(k, _)| *k == TopicKind::Telemetry)
        .map(|(_, f)| (f.ts_ms - SIM_EPOCH_MS) / 1000)
        .collect();
    assert_eq!(telemetry, [0, 15, 30, 45]);
    for (_, f) in &frames {
        assert_eq!(f.readings.get(Metric::CoPpm), Some(0.0));
        assert_eq!(f.readings.get(Metric::AlarmBtn), Some(0.0));
        assert!(f.faults.is_empty());
    }
    assert_eq!(link.statuses(), ["online"]);
    assert_eq!(device.outbox().len(), 0);
}

#[test]
fn the_local_alarm_needs_no_network() {
    let rig = GasRig::new();
    let mut device = rig.device(config("gas-0002")).unwrap();
    let mut link = TransportSim::disconnected();
    rig.set_lel(70.0);
    for i in 0..3 {
        device.step(i * 1_000, &mut link);
    }
    assert!(rig.buzzer.is_set());
    assert!(rig.panel.relay.is_set());
    assert_eq!(device.alarm_level(), Some(Level::Red));
    assert!(link.sent.is_empty());
    // Boot telemetry + the red event are waiting for the link.
    assert_eq!(device.outbox().len(), 2);
    assert_eq!(device.outbox().events(), 1);
}

#[test]
fn a_single_spike_is_filtered_out() {
    let rig = GasRig::new();
    let mut device = rig.device(config("gas-0003")).unwrap();
    let mut link = TransportSim::connected();
    for i in 0..10u64 {
        // One sample of 80 %LEL (EMI on the bridge), otherwise clean air.
        rig.set_lel(if i == 5 { 80.0 } else { 0.0 });
        device.step(i * 1_000, &mut link);
    }
    assert_eq!(device.stats().events, 0);
    assert!(rig.buzzer.rising_edges() == 0);
}

#[test]
fn button_press_sends_an_event_and_raises_red_at_once() {
    let rig = GasRig::new();
    let mut device = rig.device(config("gas-0004")).unwrap();
    let mut link = TransportSim::connected();
    device.step(0, &mut link);
    device.step(1_000, &mut link);
    // Pressed between samples, polled at 1 250 ms: sampled at once.
    rig.panel.button.set(true);
    let out = device.step(1_250, &mut link);
    assert!(out.sampled);
    rig.panel.button.set(false);
    assert_eq!(device.rule_level("gas.button"), Some(Level::Red));
    assert!(rig.buzzer.is_set());
    let frames = frames(&link);
    let (kind, f) = frames.last().unwrap();
    assert_eq!(*kind, TopicKind::Event);
    assert_eq!(f.readings.get(Metric::AlarmBtn), Some(1.0));
    assert_eq!(f.ts_ms, SIM_EPOCH_MS + 1_250);
    // The press holds alarm_btn at 1 for button_hold_ms (30 s), then the
    // rule clears; bounce within the lockout is not a second press.
    rig.panel.button.set(true);
    device.step(1_300, &mut link);
    rig.panel.button.set(false);
    assert_eq!(device.stats().button_presses, 1);
    for s in 2..40 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.rule_level("gas.button"), None);
    assert!(!rig.buzzer.is_set());
    let f = frames.len();
    let after = common::frames(&link);
    let cleared = after[f..]
        .iter()
        .find(|(k, _)| *k == TopicKind::Event)
        .unwrap();
    assert_eq!(cleared.1.readings.get(Metric::AlarmBtn), Some(0.0));
    assert_eq!((cleared.1.ts_ms - SIM_EPOCH_MS) / 1000, 32);
}
