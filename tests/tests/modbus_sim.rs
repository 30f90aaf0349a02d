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
    // Each answer takes 2 ms, so overlapping requests would be seen.
    sim.site.set_answer_delay(Duration::from_millis(2));
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
        "timeout_ms = 1000\noffline_after = 3\nretries = 1\nbackoff = { initial_ms = 20, max_ms = 100 }",
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
    // The four devices share one link: never two requests at once.
    assert_eq!(sim.site.max_in_flight(), 1);

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

    // Our firmware's map carries channel faults: an open-circuit cable
    // sensor on the electrical monitor reaches the fault rule, as it
    // would in an MQTT frame.
    sim.site
        .set_faults(
            4,
            &[anquan_protocol::Fault::on(
                anquan_protocol::FaultCode::OpenCircuit,
                Metric::Temp2C,
            )],
            0,
        )
        .expect("set faults");
    eventually(T, "the sensor-fault alarm", || {
        has(&rx.events(), "sim-4", "elec.fault", AlarmState::Raised).then_some(())
    });
    assert!(
        gw.healthz().is_some(),
        "the gateway is still healthy; log:\n{}",
        gw.log()
    );
}

/// `anquan-sim modbus` (the binary) serves a simulated site whose demo
/// scenario runs 600× fast: the pipe burst at t = 600 s drops the
/// Modbus water-pressure device below 0.05 MPa, and the gateway binary
/// polling it raises the alarm.
#[test]
fn the_anquan_sim_modbus_command_serves_a_site_the_gateway_polls() {
    let port = anquan_e2e::services::free_port();
    let mut sim = std::process::Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "anquan-sim",
            "--",
            "modbus",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--devices", "gas,water_pressure:2", "--speed", "600"])
        .current_dir(anquan_e2e::workspace_root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cargo run anquan-sim");
    let up = anquan_e2e::services::wait_for_port(port, Duration::from_secs(300));
    if !up {
        anquan_e2e::services::kill(&mut sim);
        panic!("anquan-sim modbus did not listen");
    }
    let units = [
        (1, DeviceKind::Gas),
        (2, DeviceKind::WaterPressure),
        (3, DeviceKind::WaterPressure),
    ];
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra: gateway_link_toml(
            "cli",
            "tcp",
            &format!("127.0.0.1:{port}"),
            "s1",
            "cli",
            &units,
            200,
            "timeout_ms = 1000",
        ),
        ..Setup::default()
    });
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(T, "the simulated pipe burst's alarm", || {
            let e = rx.events();
            (has(&e, "cli-2", "water.pressure_low", AlarmState::Raised)
                && has(&e, "cli-3", "water.pressure_low", AlarmState::Raised))
            .then_some(())
        })
    }));
    anquan_e2e::services::kill(&mut sim);
    assert!(got.is_ok(), "log:\n{}", gw.log());
}

/// The simulator's RTU server on one end of a socat pty pair, the gateway
/// (tokio-serial) on the other: our firmware's map over Modbus RTU.
#[test]
fn the_simulator_over_rtu_on_a_pty_pair() {
    let pty = anquan_e2e::modbus::PtyPair::start();
    let units = [(1, DeviceKind::WaterPressure), (2, DeviceKind::Gas)];
    let site = anquan_sim::modbus::Site::new(&units);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let path = pty.b().display().to_string();
    let s = site.clone();
    rt.spawn(async move { anquan_sim::modbus::serve_rtu(&path, 19200, s).await });
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra: gateway_link_toml(
            "bus",
            "rtu",
            &pty.a().display().to_string(),
            "s1",
            "rtu",
            &units,
            100,
            "baud = 19200\ntimeout_ms = 1000\nturnaround_ms = 5",
        ),
        ..Setup::default()
    });
    eventually(T, "RTU polls", || {
        (gw.metric(r#"anquan_gateway_modbus_polls_total{link="bus",result="ok"}"#) >= 4.0)
            .then_some(())
    });
    site.set(2, &[(Metric::LelPct, 55.0)], 0).expect("set");
    eventually(T, "the gas alarm over RTU", || {
        has(&rx.events(), "rtu-2", "gas.lel", AlarmState::Raised).then_some(())
    });
}
