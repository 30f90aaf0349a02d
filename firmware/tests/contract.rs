//! Whatever the sensors say — NaN, infinities, values far outside any
//! physical range, faults, absent channels — the device never panics and
//! every frame it sends is valid contract JSON that decodes back to the
//! frame it built; its register view always encodes.

mod common;

use anquan_firmware::sim::TransportSim;
use anquan_firmware::sim::rigs::{CraneRig, ElectricalRig, GasRig, WaterRig};
use anquan_firmware::{ChannelSample, Device, Hal, Sample, Sensors, channels, modbus};
use anquan_protocol::{DeviceKind, FaultCode, Faults, MAX_PAYLOAD, Telemetry};
use proptest::prelude::*;

use common::config;

/// A front end that replays arbitrary channel outcomes.
struct Replay {
    kind: DeviceKind,
    script: Vec<Vec<ChannelSample>>,
    at: usize,
    self_test: Vec<anquan_protocol::Fault>,
}

impl Sensors for Replay {
    fn kind(&self) -> DeviceKind {
        self.kind
    }
    fn self_test(&mut self, faults: &mut Faults) {
        for f in &self.self_test {
            let _ = faults.push(*f);
        }
    }
    fn sample(&mut self, out: &mut Sample) {
        if let Some(row) = self.script.get(self.at % self.script.len().max(1)) {
            for (m, s) in channels::of(self.kind).iter().zip(row) {
                out.set(*m, *s);
            }
        }
        self.at += 1;
    }
}

fn any_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(f32::MAX),
        Just(-f32::MAX),
        Just(f32::MIN_POSITIVE),
        -2_000.0f32..2_000.0,
        any::<f32>(),
    ]
}

fn any_sample() -> impl Strategy<Value = ChannelSample> {
    prop_oneof![
        3 => any_value().prop_map(ChannelSample::Value),
        1 => (0..FaultCode::ALL.len()).prop_map(|i| ChannelSample::Fault(FaultCode::ALL[i])),
        1 => Just(ChannelSample::Absent),
    ]
}

#[allow(clippy::unwrap_used)]
fn check_frames(link: &TransportSim, device_id: &str) {
    for m in &link.sent {
        if m.topic.ends_with("/status") {
            assert_eq!(m.payload, b"online");
            continue;
        }
        assert!(m.payload.len() <= MAX_PAYLOAD);
        let t = Telemetry::decode(&m.payload)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&m.payload)));
        assert_eq!(t.device, device_id);
        // serde_json agrees it is JSON, and our encoder is deterministic.
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert!(v.is_object());
        let mut buf = [0u8; MAX_PAYLOAD];
        let n = t.encode(&mut buf).unwrap();
        assert_eq!(&buf[..n], &m.payload[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_sensor_output_never_breaks_a_frame(
        kind_i in 0usize..4,
        script in proptest::collection::vec(proptest::collection::vec(any_sample(), 8), 1..12),
        steps in 1u64..40,
        button in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let kind = DeviceKind::ALL[kind_i];
        let sensors = Replay { kind, script, at: 0, self_test: vec![] };
        let pin = anquan_firmware::sim::PinSim::new();
        let hal = Hal::new(sensors).with_button(pin.clone());
        let mut device = Device::new(config("dev-1"), hal).unwrap();
        let mut link = TransportSim::connected();
        let map = modbus::map_for(kind);
        for s in 0..steps {
            pin.set(button[s as usize]);
            device.step(s * 700, &mut link);
            let mut regs = vec![0u16; map.input_len()];
            device.read_input_registers(0, &mut regs).unwrap();
            let image = modbus::decode_input_registers(map, &regs).unwrap();
            prop_assert_eq!(image.readings, device.latest_telemetry().readings);
        }
        check_frames(&link, "dev-1");
        prop_assert_eq!(link.frames().len() as u32, device.stats().frames);
    }

    #[test]
    fn extreme_physics_on_every_rig(
        a in any_value(), b in any_value(), c in any_value(), d in any_value(),
        steps in 1u64..20,
    ) {
        let mut link = TransportSim::connected();
        let gas = GasRig::new();
        let mut g = gas.device(config("gas-1")).unwrap();
        let elec = ElectricalRig::new();
        let mut e = elec.device(config("elec-1")).unwrap();
        let water = WaterRig::new();
        let mut w = water.device(config("wp-1")).unwrap();
        let crane = CraneRig::new();
        let mut k = crane.device(config("crane-1")).unwrap();
        for s in 0..steps {
            gas.set_lel(a);
            gas.set_co(b);
            elec.set_residual_ma(c);
            elec.set_temp(1 + (s as usize % 4), d);
            water.set_pressure_mpa(a);
            water.set_level_m(b);
            crane.set_load_t(a);
            crane.set_radius_m(b);
            crane.set_height_m(c);
            crane.set_slew_deg(d);
            crane.set_wind_ms(a);
            crane.set_tilt_deg(b, c);
            let now = s * 1_000;
            g.step(now, &mut link);
            e.step(now, &mut link);
            w.step(now, &mut link);
            k.step(now, &mut link);
        }
        for m in &link.sent {
            if !m.topic.ends_with("/status") {
                let t = Telemetry::decode(&m.payload);
                prop_assert!(t.is_ok(), "{:?}: {}", t, String::from_utf8_lossy(&m.payload));
            }
        }
    }
}

#[test]
fn self_test_faults_and_a_full_fault_list_still_encode() {
    use anquan_protocol::{Fault, Metric};
    // Every channel faulty plus device-wide faults: more than the frame's
    // 8 faults; the list is cut, the frame stays valid.
    let script = vec![vec![ChannelSample::Fault(FaultCode::Comm); 8]];
    let sensors = Replay {
        kind: DeviceKind::Crane,
        script,
        at: 0,
        self_test: vec![
            Fault::device(FaultCode::SelfTest),
            Fault::on(FaultCode::SelfTest, Metric::TiltDeg),
        ],
    };
    let mut device = Device::new(config("crane-9"), Hal::new(sensors)).unwrap();
    device.set_board_fault(FaultCode::Power, true);
    device.set_board_fault(FaultCode::Tamper, true);
    let mut link = TransportSim::connected();
    for s in 0..5 {
        device.step(s * 1_000, &mut link);
    }
    check_frames(&link, "crane-9");
    let t = device.latest_telemetry();
    assert_eq!(t.faults.len(), 8);
    assert!(t.readings.is_empty());
    assert!(
        t.faults
            .contains(&Fault::on(FaultCode::SelfTest, Metric::TiltDeg))
    );
}
