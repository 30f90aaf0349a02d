//! The gateway binary polls a third-party Modbus server, pymodbus, whose
//! register image the test sets: over Modbus TCP and over RTU on a
//! pseudo-terminal pair (socat), with maps written in the gateway config
//! (a pressure transmitter in holding registers, a level in an f32, the
//! shipped Eastron SDM120 map).

use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::modbus::{PtyPair, PyModbus};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, eventually};
use anquan_protocol::{AlarmEvent, AlarmState};

const T: Duration = Duration::from_secs(60);

fn has(events: &[AlarmEvent], device: &str, rule: &str, state: AlarmState) -> bool {
    events
        .iter()
        .any(|e| e.device == device && e.rule == rule && e.state == state)
}

/// A 4–20 mA/RS485 pressure transmitter's map: pressure in holding
/// register 4 as a signed integer in 0.001 MPa (three decimals); the tank
/// level as an f32 in input registers 0–1; a pump-running contact.
const TRANSMITTER_MAP: &str = r#"
[modbus.maps.transmitter]
registers = [
  { reading = "pressure_mpa", address = 4, function = "holding", type = "i16", scale = 0.001 },
  { reading = "level_m", address = 0, function = "input", type = "f32" },
  { reading = "pump_on", address = 2, function = "discrete" },
]
"#;

fn f32_words(v: f32) -> [u16; 2] {
    let b = v.to_bits();
    [(b >> 16) as u16, b as u16]
}

fn device(id: &str, kind: &str, unit: u8, map: &str) -> String {
    format!(
        "[[modbus.links.devices]]\nid = \"{id}\"\nsite = \"s1\"\nkind = \"{kind}\"\nunit = {unit}\nmap = \"{map}\"\n"
    )
}

const LINK_TIMING: &str = "poll_interval_ms = 100\ntimeout_ms = 300\nretries = 1\noffline_after = 3\nbackoff = { initial_ms = 20, max_ms = 100 }\n";

#[test]
fn pymodbus_over_tcp_pressure_drop_offline_and_exceptions() {
    let mut py = PyModbus::tcp(&[1, 2, 3]);
    let port = py.port.unwrap_or_default();
    // Unit 1: the transmitter at 0.45 MPa, 3.2 m, pump stopped.
    py.set(1, "hr", 4, &[450]);
    py.set(1, "ir", 0, &f32_words(3.2));
    // Unit 2: an Eastron SDM120 meter drawing 12.5 A.
    py.set(2, "ir", 6, &f32_words(12.5));
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let mut extra = String::from(TRANSMITTER_MAP);
    extra.push_str(&format!(
        "[[modbus.links]]\nname = \"py\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n{LINK_TIMING}"
    ));
    extra.push_str(&device("pt-1", "water_pressure", 1, "transmitter"));
    extra.push_str(&device("em-1", "electrical", 2, "builtin:eastron_sdm120"));
    // Unit 3: one register inside the image, one beyond it (the server
    // answers "illegal data address" for that read).
    extra.push_str(
        "[[modbus.links.devices]]\nid = \"pt-3\"\nsite = \"s1\"\nkind = \"water_pressure\"\nunit = 3\n\
         registers = [\n  { reading = \"pressure_mpa\", address = 4, function = \"holding\", type = \"i16\", scale = 0.001 },\n  \
         { reading = \"level_m\", address = 100, function = \"input\", scale = 0.01 },\n]\n",
    );
    py.set(3, "hr", 4, &[300]);
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra,
        ..Setup::default()
    });

    eventually(T, "polls of all three units", || {
        (gw.metric(r#"anquan_gateway_modbus_polls_total{link="py",result="ok"}"#) >= 9.0)
            .then_some(())
    });
    // The illegal address is counted, the unit's other read still feeds
    // its frames: no failed poll, no alarm.
    assert!(
        gw.metric(
            r#"anquan_gateway_modbus_errors_total{link="py",reason="exception_illegal_data_address"}"#
        ) >= 1.0
    );
    assert_eq!(
        gw.metric(r#"anquan_gateway_modbus_polls_total{link="py",result="failed"}"#),
        0.0,
        "log:\n{}",
        gw.log()
    );
    assert!(rx.events().is_empty(), "{:?}", rx.events());

    // The pressure drops below 0.05 MPa: red at the receiver.
    py.set(1, "hr", 4, &[40]);
    let events = eventually(T, "the low-pressure alarm", || {
        let e = rx.events();
        has(&e, "pt-1", "water.pressure_low", AlarmState::Raised).then_some(e)
    });
    let ev = events
        .iter()
        .find(|e| e.device == "pt-1" && e.rule == "water.pressure_low")
        .cloned()
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!((ev.value - 0.04).abs() < 1e-6, "{ev:?}");
    assert_eq!(ev.gateway, "gw-test");

    // The server hangs (SIGSTOP): every unit times out, 3 failed polls in
    // a row -> offline through the kinds' offline rules.
    py.pause();
    eventually(T, "offline alarms", || {
        let e = rx.events();
        (has(&e, "pt-1", "water.offline", AlarmState::Raised)
            && has(&e, "em-1", "elec.offline", AlarmState::Raised))
        .then_some(())
    });
    eventually(T, "all three units offline", || {
        (gw.metric(r#"anquan_gateway_modbus_devices_offline{link="py"}"#) == 3.0).then_some(())
    });
    py.resume();
    eventually(T, "back online", || {
        let e = rx.events();
        (has(&e, "pt-1", "water.offline", AlarmState::Cleared)
            && has(&e, "em-1", "elec.offline", AlarmState::Cleared))
        .then_some(())
    });
    assert!(gw.healthz().is_some(), "log:\n{}", gw.log());
}

#[test]
fn pymodbus_rtu_over_a_pty_pair() {
    let pty = PtyPair::start();
    let mut py = PyModbus::serial(&pty.b(), &[5, 6]);
    py.set(5, "hr", 4, &[450]);
    py.set(5, "ir", 0, &f32_words(3.2));
    py.set(6, "hr", 4, &[400]);
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let mut extra = String::from(TRANSMITTER_MAP);
    extra.push_str(&format!(
        "[[modbus.links]]\nname = \"bus\"\ntransport = \"rtu\"\npath = \"{}\"\nbaud = 19200\n{LINK_TIMING}turnaround_ms = 5\n",
        pty.a().display()
    ));
    extra.push_str(&device("rtu-5", "water_pressure", 5, "transmitter"));
    extra.push_str(&device("rtu-6", "water_pressure", 6, "transmitter"));
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra,
        ..Setup::default()
    });
    eventually(T, "RTU polls", || {
        (gw.metric(r#"anquan_gateway_modbus_polls_total{link="bus",result="ok"}"#) >= 6.0)
            .then_some(())
    });
    py.set(5, "hr", 4, &[40]);
    eventually(T, "the low-pressure alarm over RTU", || {
        has(
            &rx.events(),
            "rtu-5",
            "water.pressure_low",
            AlarmState::Raised,
        )
        .then_some(())
    });
    assert!(
        !rx.events().iter().any(|e| e.device == "rtu-6"),
        "{:?}",
        rx.events()
    );
}

#[test]
fn pymodbus_rtu_over_tcp() {
    let mut py = PyModbus::rtu_over_tcp(&[9]);
    let port = py.port.unwrap_or_default();
    py.set(9, "hr", 4, &[450]);
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let mut extra = String::from(TRANSMITTER_MAP);
    extra.push_str(&format!(
        "[[modbus.links]]\nname = \"conv\"\ntransport = \"rtu_over_tcp\"\naddress = \"127.0.0.1:{port}\"\n{LINK_TIMING}"
    ));
    extra.push_str(&device("conv-9", "water_pressure", 9, "transmitter"));
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra,
        ..Setup::default()
    });
    eventually(T, "RTU-over-TCP polls", || {
        (gw.metric(r#"anquan_gateway_modbus_polls_total{link="conv",result="ok"}"#) >= 3.0)
            .then_some(())
    });
    py.set(9, "hr", 4, &[40]);
    eventually(T, "the low-pressure alarm over RTU-over-TCP", || {
        has(
            &rx.events(),
            "conv-9",
            "water.pressure_low",
            AlarmState::Raised,
        )
        .then_some(())
    });
}
