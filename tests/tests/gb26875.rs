//! Fire-alarm transmission devices (GB/T 26875.3) dialing the gateway: the
//! gateway binary listens on `[gb26875]`, `anquan-sim fire-panel` (the
//! binary) dials it as a building's transmission device and reports a
//! detector's fire alarm; the alarm reaches the monitor binary (over the
//! gateway's durable HTTP forwarding) as a red `fire_panel.fire` warning.
//! The panel's state survives a gateway `kill -9` (a heartbeat after the
//! restart does not clear the fire), a fault raises yellow, and the
//! panel's reset clears both. Frames that are not frames, fail their
//! checksum, carry broken objects or come from an unknown address are
//! denied or refused, and counted, without disturbing a good device.

// Test helpers outside #[test] fns: a failed setup step is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::modbus::sim_binary;
use anquan_e2e::monitor::{INTAKE_TOKEN, MonitorProcess};
use anquan_e2e::services::{Mosquitto, eventually, free_port};
use anquan_protocol::gb26875::{
    Command as Cmd, ComponentAddress, ComponentId, ComponentState, Description, Frame, Object,
    SystemId, TimeTag,
};
use anquan_sim::fire_panel::send_frame;
use serde_json::Value;

/// Bounds a hang; no assert depends on how fast anything is.
const T: Duration = Duration::from_secs(90);

const ADDRESS: u64 = 100_001;

/// `[gb26875]` on `port` with one device, `fp-0001` on site `s1`.
fn listener(port: u16) -> String {
    format!(
        "[gb26875]\nlisten = \"127.0.0.1:{port}\"\nidle_timeout_ms = 60000\n\n\
         [[gb26875.devices]]\naddress = {ADDRESS}\nid = \"fp-0001\"\nsite = \"s1\"\n\n"
    )
}

/// Runs `anquan-sim fire-panel` to the end of its steps; its stdout. Fails
/// the test if it exits unsuccessfully (a report never confirmed).
fn fire_panel(port: u16, steps: &[&str]) -> String {
    let mut args = vec![
        "fire-panel".to_string(),
        "--connect".into(),
        format!("127.0.0.1:{port}"),
        "--address".into(),
        ADDRESS.to_string(),
    ];
    for s in steps {
        args.push("--step".into());
        args.push((*s).into());
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(sim_binary())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn anquan-sim: {e}"));
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("anquan-sim fire-panel {steps:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(out.path()).unwrap_or_default();
    let stderr = std::fs::read_to_string(err.path()).unwrap_or_default();
    assert!(
        status.success(),
        "anquan-sim fire-panel {steps:?}: {status}\n{stdout}\n{stderr}"
    );
    stdout
}

/// The monitor's warning for `rule` of `fp-0001`.
fn warning(monitor: &MonitorProcess, rule: &str) -> Option<Value> {
    monitor
        .warnings()
        .into_iter()
        .find(|w| w["device"] == "fp-0001" && w["rule"] == rule)
}

/// Cleared alarm transitions the gateway process judged since it started.
fn cleared(gw: &GatewayProcess) -> f64 {
    gw.metrics()
        .lines()
        .filter(|l| {
            l.starts_with("anquan_gateway_alarms_total{") && l.contains("state=\"cleared\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_fire_alarm_reaches_the_monitor_red_and_survives_a_gateway_kill() {
    let broker = Mosquitto::start();
    let monitor = MonitorProcess::start();
    let port = free_port();
    let mut gw = GatewayProcess::start(&Setup {
        mqtt_port: broker.port(),
        http: Some((monitor.url(), INTAKE_TOKEN.into())),
        extra: listener(port),
        ..Setup::default()
    });

    let out = fire_panel(port, &["fire@1/2=3F east corridor"]);
    assert!(out.contains("confirmed serial=1"), "{out}");
    let fire = eventually(T, "a red fire warning at the monitor", || {
        warning(&monitor, "fire_panel.fire")
    });
    assert_eq!(fire["level"], "red", "{fire}");
    assert_eq!(fire["kind"], "fire_panel", "{fire}");
    assert_eq!(fire["site"], "s1", "{fire}");
    assert_eq!(fire["clearable"], 0, "{fire}");
    assert_eq!(fire["value"], 1.0, "{fire}");

    // The gateway dies mid-fire. Its restarted self still counts the fire:
    // a heartbeat (the panel silent about the detector) clears nothing.
    gw.kill9();
    gw.restart();
    fire_panel(port, &["heartbeat", "fault@1/7=B1 pump room"]);
    assert_eq!(cleared(&gw), 0.0, "the restarted gateway cleared an alarm");
    let fault = eventually(T, "a yellow fault warning at the monitor", || {
        warning(&monitor, "fire_panel.fault")
    });
    assert_eq!(fault["level"], "yellow", "{fault}");
    let fire = warning(&monitor, "fire_panel.fire").unwrap();
    assert_eq!(fire["clearable"], 0, "{fire}");

    // The panel is reset: fire and fault clear at the source.
    fire_panel(port, &["reset"]);
    eventually(T, "fire and fault cleared at the monitor", || {
        let fire = warning(&monitor, "fire_panel.fire")?;
        let fault = warning(&monitor, "fire_panel.fault")?;
        (fire["clearable"] == 1 && fault["clearable"] == 1).then_some(())
    });
    // Heartbeat, fault, reset since the restart (more if a confirm was
    // slow enough for the device to repeat a frame).
    assert!(gw.metric(r#"anquan_gateway_gb26875_frames_total{result="confirmed"}"#) >= 3.0);
}

/// A send-data frame from `address`, serial 7, carrying `object` (none:
/// a heartbeat), built as the simulator builds its frames.
fn frame(address: u64, object: Option<&Object<'_>>) -> Vec<u8> {
    let time = TimeTag::new(26, 12, 6, 10, 0, 0).unwrap();
    send_frame(7, address, 0, time, object).unwrap()
}

fn fire_object() -> Object<'static> {
    Object::ComponentStatus {
        component: ComponentId {
            system: SystemId {
                kind: 1,
                address: 1,
            },
            kind: 40,
            address: ComponentAddress::new(2, 9),
        },
        state: ComponentState::NORMAL | ComponentState::FIRE_ALARM,
        description: Description::new(b"2F"),
        time: TimeTag::new(26, 12, 6, 10, 0, 0).unwrap(),
    }
}

/// Reads one answer frame from `s`: its command and serial.
fn answer(s: &mut TcpStream) -> (Cmd, u16) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        if let Ok((f, _)) = Frame::decode(&buf) {
            return (f.header.command, f.header.serial);
        }
        let n = s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("no answer: {e}"));
        assert!(
            n > 0,
            "the gateway closed the connection instead of answering"
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn bad_frames_are_denied_or_refused_and_counted() {
    let broker = Mosquitto::start();
    let port = free_port();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: broker.port(),
        extra: listener(port),
        ..Setup::default()
    });
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s
    };

    // An address not configured: refused, the connection closed.
    let mut s = connect();
    s.write_all(&frame(999, Some(&fire_object()))).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "answered an unknown device: {rest:?}");

    let mut s = connect();
    // Garbage, then a frame with a broken checksum: denied.
    let good = frame(ADDRESS, Some(&fire_object()));
    let mut bad = good.clone();
    let sum_at = bad.len() - 3;
    bad[sum_at] = bad[sum_at].wrapping_add(1);
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    s.write_all(&bad).unwrap();
    assert_eq!(answer(&mut s), (Cmd::Deny, 7));
    // Objects cut short (a component state object of 10 bytes): denied.
    let wire = frame(ADDRESS, None);
    let (heartbeat, _) = Frame::decode(&wire).unwrap();
    let adu = [2u8, 1, 1, 1, 40, 9, 0, 2, 0, 2, 0, 0];
    let torn = Frame::new(heartbeat.header, &adu)
        .to_vec()
        .unwrap()
        .to_vec();
    s.write_all(&torn).unwrap();
    assert_eq!(answer(&mut s), (Cmd::Deny, 7));
    // The good copy: confirmed, on the same connection.
    s.write_all(&good).unwrap();
    assert_eq!(answer(&mut s), (Cmd::Confirm, 7));

    let m = |r: &str| {
        gw.metric(&format!(
            "anquan_gateway_gb26875_frames_total{{result=\"{r}\"}}"
        ))
    };
    assert_eq!(m("unknown_source"), 1.0);
    assert_eq!(m("denied"), 2.0);
    assert!(m("malformed") >= 1.0, "the garbage was not counted");
    assert_eq!(m("confirmed"), 1.0);
    assert_eq!(
        gw.metric(r#"anquan_gateway_alarms_total{level="red",state="raised"}"#),
        1.0
    );
}
