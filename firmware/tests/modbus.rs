//! The register views a Modbus master sees on a running device: the input
//! registers are the latest frame, the holding registers change the
//! device's thresholds and timing, validated as a whole.

mod common;

use anquan_firmware::modbus::{
    self, Exception, HR_REPORT_PERIOD_S, Problem, decode_holding_registers, decode_input_registers,
    map_for,
};
use anquan_firmware::sim::TransportSim;
use anquan_firmware::sim::rigs::{CraneRig, GasRig};
use anquan_protocol::{DeviceKind, Id, Level, Metric, TopicKind};

use common::{config, frames};

#[test]
fn input_registers_are_the_latest_frame() {
    let rig = CraneRig::new();
    let mut device = rig.device(config("crane-0001")).unwrap();
    let mut link = TransportSim::connected();
    rig.set_load_t(3.1);
    rig.set_radius_m(25.0);
    for s in 0..4 {
        device.step(s * 1_000, &mut link);
    }
    let map = map_for(DeviceKind::Crane);
    let mut regs = vec![0u16; map.input_len()];
    device.read_input_registers(0, &mut regs).unwrap();
    let image = decode_input_registers(map, &regs).unwrap();
    let latest = device.latest_telemetry();
    assert_eq!(image.seq, latest.seq);
    assert_eq!(image.ts_ms, latest.ts_ms);
    assert_eq!(image.readings, latest.readings);
    assert_eq!(image.status.level, Some(Level::Yellow));
    assert!(image.status.buzzer && !image.status.relay && image.status.clock);
    // What a poller forwards equals what MQTT delivered for that seq.
    let polled = image.to_telemetry(Id::new("crane-0001").unwrap(), DeviceKind::Crane);
    let (_, sent) = frames(&link)
        .into_iter()
        .find(|(_, f)| f.seq == polled.seq)
        .unwrap();
    assert_eq!(polled, sent);
    // A partial read: load and moment only.
    let mut two = [0u16; 2];
    device
        .read_input_registers(map.reading_address(Metric::LoadT).unwrap(), &mut two)
        .unwrap();
    assert_eq!(two[0], 31);
    assert_eq!(two[1] as i16, (3.1f32 / 3.39 * 1000.0).round() as i16);
    // Out of the map.
    let mut too_many = vec![0u16; map.input_len() + 1];
    let e = device.read_input_registers(0, &mut too_many).unwrap_err();
    assert_eq!(e.exception(), Exception::IllegalDataAddress);
    let e = device.read_input_registers(0, &mut []).unwrap_err();
    assert_eq!(e.exception(), Exception::IllegalDataValue);
}

#[test]
fn holding_registers_change_thresholds_and_timing() {
    let rig = GasRig::new();
    let mut device = rig.device(config("gas-0001")).unwrap();
    let mut link = TransportSim::connected();
    rig.set_lel(45.0);
    for s in 0..5 {
        device.step(s * 1_000, &mut link);
    }
    assert_eq!(device.rule_level("gas.lel"), Some(Level::Orange));
    let map = map_for(DeviceKind::Gas);
    let red = map.threshold_address("gas.lel").unwrap() + 6;
    // Red at 40 %LEL, clear at 30 (FC 16 on two registers).
    device
        .write_holding_registers(5_000, red, &[4000, 3000])
        .unwrap();
    device.step(5_000, &mut link);
    assert_eq!(device.rule_level("gas.lel"), Some(Level::Red));
    let mut regs = vec![0u16; map.holding_len()];
    device.read_holding_registers(0, &mut regs).unwrap();
    let settings = decode_holding_registers(map, &regs).unwrap();
    assert_eq!(
        settings.thresholds[0].levels.get(Level::Red),
        Some(anquan_edge_rules::Band::new(40.0, 30.0))
    );

    // A write that breaks hysteresis is refused as a whole, naming the
    // clear register, and nothing changes.
    let e = device
        .write_holding_registers(6_000, red, &[4000, 4500])
        .unwrap_err();
    assert_eq!(e.address, red + 1);
    assert!(matches!(e.problem, Problem::Rule(_)));
    assert_eq!(e.exception(), Exception::IllegalDataValue);
    let mut again = vec![0u16; map.holding_len()];
    device.read_holding_registers(0, &mut again).unwrap();
    assert_eq!(again, regs);

    // Report every 5 s instead of 15.
    device
        .write_holding_registers(6_000, HR_REPORT_PERIOD_S, &[5])
        .unwrap();
    let before = frames(&link).len();
    for s in 6..31 {
        device.step(s * 1_000, &mut link);
    }
    let telemetry: Vec<u64> = frames(&link)[before..]
        .iter()
        .filter(|(k, _)| *k == TopicKind::Telemetry)
        .map(|(_, f)| (f.ts_ms - anquan_firmware::sim::rigs::SIM_EPOCH_MS) / 1000)
        .collect();
    assert_eq!(telemetry, [11, 16, 21, 26]);
    assert_eq!(device.config().report_period_ms, 5_000);

    // Switching gas.lel off while red clears it: an event frame says so and
    // the buzzer stops.
    device
        .write_holding_registers(31_000, modbus::HR_RULES_ENABLED, &[0b10])
        .unwrap();
    assert_eq!(device.rule_level("gas.lel"), None);
    assert!(!rig.buzzer.is_set());
    let before = frames(&link).len();
    let mut transitions = 0;
    device.step_observed(31_500, &mut link, |_| transitions += 1);
    assert_eq!(transitions, 0, "the clear happened at the write");
    let new = frames(&link);
    assert!(new[before..].iter().any(|(k, _)| *k == TopicKind::Event));
    assert!(device.rules().get("gas.lel").is_some_and(|r| !r.enabled));

    // Outside the map, and a quantity of 0.
    let e = device
        .write_holding_registers(32_000, map.holding_len() as u16, &[1])
        .unwrap_err();
    assert_eq!(e.exception(), Exception::IllegalDataAddress);
    let e = device.write_holding_registers(32_000, 0, &[]).unwrap_err();
    assert_eq!(e.exception(), Exception::IllegalDataValue);
}
