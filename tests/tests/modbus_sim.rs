//! The gateway binary polls the simulator's Modbus TCP server (our
//! firmware's register maps, many unit ids on one port) next to an MQTT
//! device: one config, one pipeline, alarms at the HTTP receiver.

use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::modbus::SimServer;
use anquan_e2e::mqtt::{gas_frame, now_ms, telemetry_topic};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, eventually};
use anquan_protocol::{AlarmEvent, AlarmState, DeviceKind, Metric};
use anquan_sim::modbus::gateway_link_toml;

const T: Duration = Duration::from_secs(60);

fn has(events: &[AlarmEvent], device: &str, rule: &str, state: AlarmState) -> bool {
    events
        .iter()
        .any(|e| e.device == device && e.rule == rule && e.state == state)
}

#[test]
fn modbus_and_mqtt_devices_share_one_pipeline() {
    let units = [
        (1, DeviceKind::WaterPressure),
        (2, DeviceKind::Gas),
        (3, DeviceKind::Crane),
        (4, DeviceKind::Electrical),
    ];
    let sim = SimServer::start(&units);
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let extra = gateway_link_toml(
        "sim",
        "tcp",
        &format!("127.0.0.1:{}", sim.port),
        "s1",
        "sim",
        &units,
        100,
        "timeout_ms = 300\noffline_after = 3\nretries = 1\nbackoff = { initial_ms = 20, max_ms = 100 }",
    );
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra,
        ..Setup::default()
    });

    // Every device is polled and its frames go through the pipeline.
    eventually(T, "frames from all four Modbus devices", || {
        let ok = gw.metric(r#"anquan_gateway_modbus_polls_total{link="sim",result="ok"}"#);
        (ok >= 8.0).then_some(())
    });
    assert_eq!(
        gw.metric(r#"anquan_gateway_modbus_polls_total{link="sim",result="failed"}"#),
        0.0,
        "log:\n{}",
        gw.log()
    );
    assert!(rx.events().is_empty(), "{:?}", rx.events());

    // An MQTT device on the same gateway.
    mq.publish(
        &telemetry_topic("s1", "gas-0001"),
        &gas_frame("gas-0001", 1, now_ms(), 55.0),
    );
    // The fire-water pressure falls below 0.05 MPa on the Modbus device.
    sim.site
        .set(1, &[(Metric::PressureMpa, 0.04)], 0)
        .expect("set");
    let events = eventually(T, "both alarms at the receiver", || {
        let e = rx.events();
        (has(&e, "gas-0001", "gas.lel", AlarmState::Raised)
            && has(&e, "sim-1", "water.pressure_low", AlarmState::Raised))
        .then_some(e)
    });
    let low = events
        .iter()
        .find(|e| e.device == "sim-1" && e.rule == "water.pressure_low")
        .expect("the alarm");
    assert_eq!(low.site, "s1");
    assert_eq!(low.kind, DeviceKind::WaterPressure);
    assert!((low.value - 0.04).abs() < 1e-6, "{low:?}");

    // The crane stops answering: offline after 3 failed polls, through the
    // kind's offline rule; the other devices go on.
    sim.site.set_silent(3, true);
    eventually(T, "the crane's offline alarm", || {
        has(&rx.events(), "sim-3", "crane.offline", AlarmState::Raised).then_some(())
    });
    assert_eq!(
        gw.metric(r#"anquan_gateway_modbus_devices_offline{link="sim"}"#),
        1.0
    );
    assert!(gw.metric(r#"anquan_gateway_modbus_errors_total{link="sim",reason="timeout"}"#) >= 3.0);
    // It answers again: the offline alarm clears.
    sim.site.set_silent(3, false);
    eventually(T, "the crane back online", || {
        has(&rx.events(), "sim-3", "crane.offline", AlarmState::Cleared).then_some(())
    });

    // An exception answer is counted, not fatal: the gateway keeps polling.
    sim.site.set_exception(
        4,
        Some(anquan_sim::modbus::ExceptionCode::ServerDeviceFailure),
    );
    let before = gw.metric(r#"anquan_gateway_modbus_polls_total{link="sim",result="ok"}"#);
    eventually(T, "exceptions counted", || {
        (gw.metric(r#"anquan_gateway_modbus_errors_total{link="sim",reason="exception_server_device_failure"}"#) >= 2.0)
            .then_some(())
    });
    eventually(T, "polling goes on", || {
        (gw.metric(r#"anquan_gateway_modbus_polls_total{link="sim",result="ok"}"#) > before + 6.0)
            .then_some(())
    });
    // "Server device busy" is retried (counted as a retry and by code).
    sim.site.set_exception(4, None);
    sim.site
        .set_exception(2, Some(anquan_sim::modbus::ExceptionCode::ServerDeviceBusy));
    eventually(T, "busy answers counted and retried", || {
        (gw.metric(r#"anquan_gateway_modbus_errors_total{link="sim",reason="exception_server_device_busy"}"#) >= 2.0
            && gw.metric(r#"anquan_gateway_modbus_retries_total{link="sim"}"#) >= 1.0)
            .then_some(())
    });
    sim.site.set_exception(2, None);
    assert!(
        gw.healthz().is_some(),
        "the gateway is still healthy; log:\n{}",
        gw.log()
    );
}
