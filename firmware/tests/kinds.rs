//! Every kind through its part models: readings, alarms, outputs and the
//! faults each front end detects (never a made-up reading).

mod common;

use anquan_firmware::sim::rigs::{CraneRig, ElectricalRig, GasRig, WaterRig, Winding};
use anquan_firmware::sim::{LineFault, RtdFault, TransportSim};
use anquan_firmware::{ChannelOverride, Device, Hal};
use anquan_protocol::{Fault, FaultCode, Level, Metric, Telemetry, TopicKind};

use common::{config, frames};

fn last_frame(link: &TransportSim) -> Telemetry {
    common::last(link)
}

#[test]
fn electrical_residual_current_and_probe_faults() {
    let rig = ElectricalRig::new();
    let mut device = rig.device(config("elec-0001")).unwrap();
    let mut link = TransportSim::connected();
    for (i, t) in [45.0, 52.0, 61.0, 48.0].iter().enumerate() {
        rig.set_temp(i + 1, *t);
    }
    rig.set_residual_ma(120.0);
    for s in 0..5 {
        device.step(s * 1_000, &mut link);
    }
    let f = last_frame(&link);
    assert!((f.readings.get(Metric::ResidualMa).unwrap() - 120.0).abs() <= 1.0);
    assert!((f.readings.get(Metric::Temp3C).unwrap() - 61.0).abs() < 0.15);
    // 61 °C on a loaded cable is ordinary: no level below 70 °C.
    assert_eq!(device.alarm_level(), None, "temp3 at 61 °C");

    // 600 mA: orange after the rule's 2-sample debounce (+1 for the median).
    rig.set_residual_ma(600.0);
    for s in 5..8 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.rule_level("elec.residual"), Some(Level::Orange));

    // Probe 2 breaks: temp2_c leaves the readings and the fault is reported
    // in an event frame at once; the fault rule follows after 2 samples.
    let before = device.stats().events;
    rig.set_probe_fault(2, Some(RtdFault::Open));
    device.step(8_000, &mut link);
    assert_eq!(device.stats().events, before + 1);
    let f = last_frame(&link);
    assert_eq!(f.readings.get(Metric::Temp2C), None);
    assert_eq!(
        f.faults.as_slice(),
        [Fault::on(FaultCode::OpenCircuit, Metric::Temp2C)]
    );
    assert_eq!(device.rule_level("elec.fault"), None);
    device.step(9_000, &mut link);
    assert_eq!(device.rule_level("elec.fault"), Some(Level::Yellow));

    // A shorted probe and a broken transformer winding.
    rig.set_probe_fault(2, Some(RtdFault::Short));
    rig.set_winding(Winding::Open);
    device.step(10_000, &mut link);
    let t = device.latest_telemetry();
    assert!(
        t.faults
            .contains(&Fault::on(FaultCode::ShortCircuit, Metric::Temp2C))
    );
    assert!(
        t.faults
            .contains(&Fault::on(FaultCode::OpenCircuit, Metric::ResidualMa))
    );
    assert_eq!(t.readings.get(Metric::ResidualMa), None);
    // The last residual alarm is held, not cleared by a blind sensor.
    assert_eq!(device.rule_level("elec.residual"), Some(Level::Orange));
}

#[test]
fn water_pressure_burst_and_loop_faults() {
    let rig = WaterRig::new();
    let mut device = rig.device(config("wp-0001")).unwrap();
    let mut link = TransportSim::connected();
    rig.set_pressure_mpa(0.45);
    for s in 0..70 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.alarm_level(), None);
    let f = last_frame(&link);
    assert_eq!(f.readings.get(Metric::PressureMpa), Some(0.45));
    assert_eq!(f.readings.get(Metric::LevelM), Some(5.0));

    // A burst: −0.36 MPa per minute, down to a drained network. The static
    // floor's levels follow it (yellow 0.07, orange 0.05, red 0.02 MPa);
    // the rate rule ships disabled and says nothing.
    let mut low = Vec::new();
    for s in 70..150u64 {
        let p = 0.45 - 0.006 * (s - 70) as f32;
        rig.set_pressure_mpa(p);
        device.step_observed(s * 1_000, &mut link, |t| {
            assert_ne!(t.rule, "water.pressure_drop");
            if t.rule == "water.pressure_low" {
                low.push(t.level);
            }
        });
    }
    assert_eq!(low, [Level::Yellow, Level::Orange, Level::Red]);
    assert_eq!(device.rule_level("water.pressure_low"), Some(Level::Red));
    assert!(rig.panel.relay.is_set());

    // Wire break: 0 mA is open_circuit; an NE 43 failure signal (2 mA) is
    // out_of_range. Neither becomes a reading.
    rig.set_pressure_loop_ma(0.0);
    device.step(150_000, &mut link);
    let t = device.latest_telemetry();
    assert_eq!(t.readings.get(Metric::PressureMpa), None);
    assert_eq!(
        t.faults.as_slice(),
        [Fault::on(FaultCode::OpenCircuit, Metric::PressureMpa)]
    );
    rig.set_pressure_loop_ma(2.0);
    for s in 151..162 {
        device.step(s * 1_000, &mut link);
    }
    let t = device.latest_telemetry();
    assert_eq!(
        t.faults.as_slice(),
        [Fault::on(FaultCode::OutOfRange, Metric::PressureMpa)]
    );
    // NE 43 saturation (20.7 mA) is a reading at the range top.
    rig.set_pressure_loop_ma(20.7);
    for s in 162..180 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(
        device.latest_telemetry().readings.get(Metric::PressureMpa),
        Some(1.6)
    );
}

#[test]
fn crane_overload_in_wind_cuts_the_hoist() {
    let rig = CraneRig::new();
    let mut device = rig.device(config("crane-0001")).unwrap();
    let mut link = TransportSim::connected();
    rig.set_radius_m(25.0);
    rig.set_height_m(38.0);
    rig.set_slew_deg(-135.0);
    rig.set_load_t(2.0);
    for s in 0..3 {
        device.step(s * 1_000, &mut link);
    }
    let t = device.latest_telemetry();
    let get = |m| t.readings.get(m).unwrap();
    assert!((get(Metric::LoadT) - 2.0).abs() <= 0.05);
    assert_eq!(get(Metric::RadiusM), 25.0);
    assert_eq!(get(Metric::HeightM), 38.0);
    assert_eq!(get(Metric::SlewDeg), -135.0);
    assert!((get(Metric::MomentPct) - 2.0 / 3.39 * 100.0).abs() < 0.2);
    assert!((get(Metric::WindMs) - 2.0).abs() < 0.01);
    assert!((get(Metric::TiltDeg) - 0.07).abs() < 0.01);
    assert_eq!(device.alarm_level(), None);

    // 3.1 t at 25 m: 91 % → yellow; the buzzer, not yet the relay.
    rig.set_load_t(3.1);
    for s in 3..6 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.rule_level("crane.moment"), Some(Level::Yellow));
    assert!(rig.panel.buzzer.is_set());
    assert!(!rig.panel.relay.is_set());
    // Wind of 15 m/s with the load on: lifting in Beaufort 6 or more is
    // orange (crane.wind_lift), after two samples.
    rig.set_wind_ms(15.0);
    for s in 6..10 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.rule_level("crane.wind_lift"), Some(Level::Orange));
    assert!(!rig.panel.relay.is_set());
    // 3.4 t at 25 m is 100 % of the rated moment: red at once, the relay
    // cuts hoisting.
    rig.set_load_t(3.4);
    for s in 10..12 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.rule_level("crane.moment"), Some(Level::Red));
    assert!(rig.panel.relay.is_set());
    // The trolley encoder's line breaks: no radius, no moment, a fault.
    rig.set_encoder_fault(Metric::RadiusM, Some(LineFault::Open));
    device.step(12_000, &mut link);
    let t = device.latest_telemetry();
    assert_eq!(t.readings.get(Metric::RadiusM), None);
    assert_eq!(t.readings.get(Metric::MomentPct), None);
    assert!(
        t.faults
            .contains(&Fault::on(FaultCode::OpenCircuit, Metric::RadiusM))
    );
    // The mast leans 1.2°: tilt orange after two samples.
    rig.set_encoder_fault(Metric::RadiusM, None);
    rig.set_tilt_deg(1.2, 0.0);
    for s in 13..17 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.rule_level("crane.tilt"), Some(Level::Orange));
    // The inclinometer reports an internal error: self_test on tilt_deg.
    rig.inclinometer.set_error(true);
    device.step(17_000, &mut link);
    assert!(
        device
            .latest_telemetry()
            .faults
            .contains(&Fault::on(FaultCode::SelfTest, Metric::TiltDeg))
    );
}

#[test]
fn a_frozen_converter_is_stuck_not_calm() {
    let rig = GasRig::new();
    rig.adc.set_noise(0);
    rig.set_lel(1.0);
    let mut cfg = config("gas-0005");
    // 20 identical samples instead of 600, to keep the test short.
    cfg.channels
        .push(ChannelOverride {
            metric: Metric::LelPct,
            filter: None,
            stuck_samples: Some(20),
        })
        .unwrap();
    let mut device = rig.device(cfg).unwrap();
    let mut link = TransportSim::connected();
    for s in 0..19 {
        device.step(s * 1_000, &mut link);
    }
    assert!(device.latest_telemetry().faults.is_empty());
    device.step(19_000, &mut link);
    let (kind, f) = frames(&link).pop().unwrap();
    assert_eq!(kind, TopicKind::Event);
    assert_eq!(
        f.faults.as_slice(),
        [Fault::on(FaultCode::Stuck, Metric::LelPct)]
    );
    assert_eq!(f.readings.get(Metric::LelPct), None);
    // CO (exactly 0 ppm, stuck limit 600) is unaffected.
    assert_eq!(f.readings.get(Metric::CoPpm), Some(0.0));
    // The value moves again: the fault clears, reported with the next
    // frame (a clear is not urgent: at most one per 10 s).
    rig.set_lel(1.5);
    for s in 20..30 {
        device.step(s * 1_000, &mut link);
        rig.set_lel(1.5 + s as f32 * 0.01);
    }
    assert!(device.latest_telemetry().faults.is_empty());
    assert!(
        device
            .latest_telemetry()
            .readings
            .get(Metric::LelPct)
            .is_some()
    );
}

#[test]
fn self_test_failure_blanks_channels_until_a_test_passes() {
    let rig = GasRig::new();
    rig.adc.set_failing(true);
    // Start-up self-test only: a failed one is still retried every minute.
    let mut cfg = config("gas-0006");
    cfg.self_test_period_ms = 0;
    let mut device = rig.device(cfg).unwrap();
    let mut link = TransportSim::connected();
    device.step(0, &mut link);
    // The self-test's faults are news: an event (seq 0), then the boot
    // telemetry (seq 1) of the same sample.
    let sent = frames(&link);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].0, sent[1].0),
        (TopicKind::Event, TopicKind::Telemetry)
    );
    let boot = &sent[1].1;
    assert_eq!(boot.seq, 1);
    assert_eq!(
        boot.faults.as_slice(),
        [
            Fault::on(FaultCode::Comm, Metric::LelPct),
            Fault::on(FaultCode::Comm, Metric::CoPpm)
        ]
    );
    assert!(boot.readings.get(Metric::LelPct).is_none());
    // The part comes back; readings return after the next self-test only.
    rig.adc.set_failing(false);
    for s in 1..60 {
        device.step(s * 1_000, &mut link);
    }
    assert!(
        device
            .latest_telemetry()
            .readings
            .get(Metric::LelPct)
            .is_none()
    );
    let out = device.step(60_000, &mut link);
    assert!(out.sampled);
    assert_eq!(device.stats().self_tests, 2);
    let t = device.latest_telemetry();
    assert!(t.faults.is_empty(), "{:?}", t.faults);
    assert_eq!(t.readings.get(Metric::LelPct), Some(0.0));
    // Passed, and start-up only: no further self-test.
    assert_eq!(out.next_wakeup_ms, 61_000);
    for s in 61..200 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.stats().self_tests, 2);
}

#[test]
fn board_faults_and_fault_event_rate_limit() {
    let rig = GasRig::new();
    let mut device = rig.device(config("gas-0007")).unwrap();
    let mut link = TransportSim::connected();
    device.step(0, &mut link);
    device.set_board_fault(FaultCode::Power, true);
    device.step(1_000, &mut link);
    let (kind, f) = frames(&link).pop().unwrap();
    assert_eq!(kind, TopicKind::Event);
    assert_eq!(f.faults.as_slice(), [Fault::device(FaultCode::Power)]);
    // A flapping tamper contact: at most one fault event per 10 s.
    let events_before = device.stats().events;
    for s in 2..32 {
        device.set_board_fault(FaultCode::Tamper, s % 2 == 0);
        device.step(s * 1_000, &mut link);
    }
    // Every appearance after a frame without the fault is news; the
    // clears are held to one per 10 s: far fewer than 30 events.
    let fault_events = device.stats().events - events_before;
    assert!((2..=8).contains(&fault_events), "{fault_events} events");
    device.set_board_fault(FaultCode::Power, false);
    device.set_board_fault(FaultCode::Tamper, false);
    for s in 32..50 {
        device.step(s * 1_000, &mut link);
    }
    assert!(device.latest_telemetry().faults.is_empty());
}

#[test]
fn without_a_clock_ts_is_zero() {
    let rig = GasRig::new();
    let det = anquan_firmware::kinds::gas::GasDetector::new(
        rig.adc.clone(),
        anquan_firmware::sim::NoDelay::default(),
        Default::default(),
    );
    let mut device = Device::new(config("gas-0008"), Hal::new(det)).unwrap();
    let mut link = TransportSim::connected();
    device.step(5_000, &mut link);
    let (_, f) = frames(&link).pop().unwrap();
    assert_eq!(f.ts_ms, 0);
    assert!(!device.status().clock);
}

#[test]
fn bad_configuration_is_refused_naming_the_key() {
    let rig = GasRig::new();
    let mut cfg = config("gas-0009");
    cfg.report_period_ms = 10;
    assert_eq!(rig.device(cfg).unwrap_err().key, "report_period_ms");
    let mut bad = GasRig::new();
    bad.config.lel.uv_per_lel = -1.0;
    let e = bad.device(config("gas-0009")).unwrap_err();
    assert_eq!(e.key, "sensors.lel.uv_per_lel");
    assert_eq!(
        format!("{e}"),
        "sensors.lel.uv_per_lel: must be a positive number"
    );
}
