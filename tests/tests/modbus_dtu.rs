//! 4G DTUs that dial in: the gateway binary listens on `[modbus.dtu]`,
//! `anquan-sim modbus --dtu` (the binary) dials it as a DTU with a text or
//! a hex registration and serves its site's Modbus RTU registers on that
//! connection, with heartbeats in between. Readings of every device reach
//! VictoriaMetrics; a DTU that loses power and dials again, or a second
//! DTU registering the same id while the first is still connected, takes
//! over the link and polling resumes for every device; unknown, torn and
//! stalled registrations are refused (and counted) without holding up a
//! good DTU.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::modbus::SimDtu;
use anquan_e2e::mqtt::now_ms;
use anquan_e2e::services::{Mosquitto, VictoriaMetrics, eventually, free_port};
use anquan_protocol::DeviceKind;
use anquan_sim::modbus::gateway_link_toml;

/// Bounds a hang; no assert depends on how fast anything is.
const T: Duration = Duration::from_secs(90);

/// The link settings of both tests: fast polls, quick retries.
const LINK: &str =
    "timeout_ms = 500\nretries = 2\noffline_after = 5\nbackoff = { initial_ms = 20, max_ms = 100 }";

/// A text id and its devices (unit, kind); the device ids are `yard-{unit}`.
const YARD_ID: &str = "YARD-DTU-01";
const YARD: [(u8, DeviceKind); 2] = [(1, DeviceKind::Gas), (2, DeviceKind::WaterPressure)];
/// A hex id (written as the gateway's config and the simulator read it).
const PUMP_ID: &str = "hex:0A 0B 0C 0D";
const PUMP_ID_CLI: &str = "0x0a 0x0b 0x0c 0x0d";
const PUMP: [(u8, DeviceKind); 3] = [
    (1, DeviceKind::Crane),
    (2, DeviceKind::Electrical),
    (3, DeviceKind::WaterPressure),
];

/// `[modbus.dtu]` on `port`: heartbeat "HB"; a registration may take as
/// long as it likes (a stalled one is never cut off during a test, so it
/// visibly does not hold up the others).
fn listener(port: u16) -> String {
    format!(
        "[modbus.dtu]\nlisten = \"127.0.0.1:{port}\"\nheartbeat = \"HB\"\nregister_timeout_ms = 600000\n\n"
    )
}

/// The yard DTU: text id, heartbeat "HB" every second.
fn yard_dtu(port: u16) -> SimDtu {
    SimDtu::start(
        port,
        YARD_ID,
        &[
            "--devices",
            "gas,water_pressure",
            "--heartbeat-s",
            "1",
            "--heartbeat",
            "HB",
        ],
    )
}

fn devices(prefix: &str, units: &[(u8, DeviceKind)]) -> Vec<(String, DeviceKind)> {
    units
        .iter()
        .map(|(u, k)| (format!("{prefix}-{u}"), *k))
        .collect()
}

/// The time stamps of a device's points in VictoriaMetrics (its `seq`
/// field, one sample per good poll).
fn points(vm: &VictoriaMetrics, device: &str, kind: DeviceKind) -> Vec<u64> {
    vm.export(&format!(r#"{}_seq{{device="{device}"}}"#, kind.as_str()))
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Waits until every device has a point stamped after `after_ms`.
fn every_device_polled_after(
    vm: &VictoriaMetrics,
    gw: &GatewayProcess,
    devs: &[(String, DeviceKind)],
    after_ms: u64,
    what: &str,
) {
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(T, what, || {
            devs.iter()
                .all(|(d, k)| points(vm, d, *k).iter().any(|t| *t > after_ms))
                .then_some(())
        })
    }));
    assert!(got.is_ok(), "{what}; gateway log:\n{}", gw.log());
}

fn connections(gw: &GatewayProcess, result: &str) -> f64 {
    gw.metric(&format!(
        r#"anquan_gateway_dtu_connections_total{{result="{result}"}}"#
    ))
}

#[test]
fn dtus_that_dial_in_are_polled_and_take_over_when_they_register_again() {
    anquan_e2e::modbus::sim_binary();
    let mq = Mosquitto::start();
    let vm = VictoriaMetrics::start();
    let port = free_port();
    let extra = format!(
        "{}{}\n{}",
        listener(port),
        gateway_link_toml("yard", "dtu", YARD_ID, "s1", "yard", &YARD, 200, LINK),
        gateway_link_toml("pump", "dtu", PUMP_ID, "s1", "pump", &PUMP, 200, LINK),
    );
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        extra,
        ..Setup::default()
    });
    let yard = devices("yard", &YARD);
    let pump = devices("pump", &PUMP);
    let all: Vec<_> = yard.iter().chain(&pump).cloned().collect();

    // Two DTUs dial in: one with a text id, one with a hex id (and its
    // heartbeat in hex: the same "HB" bytes).
    let start = now_ms();
    let mut first = yard_dtu(port);
    let _pump = SimDtu::start(
        port,
        PUMP_ID_CLI,
        &[
            "--dtu-hex",
            "--devices",
            "crane,electrical,water_pressure",
            "--heartbeat-s",
            "1",
            "--heartbeat",
            "0x48 0x42",
        ],
    );
    every_device_polled_after(&vm, &gw, &all, start, "points of all five devices");
    assert_eq!(connections(&gw, "accepted"), 2.0, "log:\n{}", gw.log());
    for bad in ["unknown", "malformed", "timeout", "busy", "replaced"] {
        assert_eq!(connections(&gw, bad), 0.0, "{bad}; log:\n{}", gw.log());
    }
    // Their heartbeats between requests are recognised and dropped.
    eventually(T, "heartbeats from both DTUs", || {
        (gw.metric(r#"anquan_gateway_dtu_heartbeats_total{link="yard"}"#) >= 1.0
            && gw.metric(r#"anquan_gateway_dtu_heartbeats_total{link="pump"}"#) >= 1.0)
            .then_some(())
    });

    // The yard DTU loses power and dials again: the new connection
    // replaces the dead one, every device behind it is polled again.
    let registered =
        |gw: &GatewayProcess| connections(gw, "accepted") + connections(gw, "replaced");
    let before = registered(&gw);
    first.kill();
    first = yard_dtu(port);
    eventually(T, "the yard DTU registered again", || {
        (registered(&gw) > before).then_some(())
    });
    let mark = now_ms();
    every_device_polled_after(&vm, &gw, &all, mark, "points after the DTU dialled again");

    // A second DTU registers the same id while the first is connected: it
    // replaces the live connection (counted as `replaced`). The gateway
    // closes the old one; its owner, still powered, dials again and
    // replaces the new one in turn, until it is switched off.
    let replaced = connections(&gw, "replaced");
    let second = yard_dtu(port);
    eventually(T, "a live connection replaced", || {
        (connections(&gw, "replaced") > replaced).then_some(())
    });
    first.kill();
    let mark = now_ms();
    every_device_polled_after(
        &vm,
        &gw,
        &all,
        mark,
        "points over the second DTU alone, for every device",
    );
    eventually(T, "no device offline", || {
        (gw.metric(r#"anquan_gateway_modbus_devices_offline{link="yard"}"#) == 0.0
            && gw.metric(r#"anquan_gateway_modbus_devices_offline{link="pump"}"#) == 0.0)
            .then_some(())
    });
    // Polling goes on over the second DTU (the first is gone for good).
    let mark = now_ms();
    every_device_polled_after(&vm, &gw, &yard, mark, "the yard polled on");
    for bad in ["unknown", "malformed", "timeout", "busy"] {
        assert_eq!(connections(&gw, bad), 0.0, "{bad}; log:\n{}", gw.log());
    }
    assert!(gw.healthz().is_some(), "log:\n{}", gw.log());
    assert!(
        second.log().contains("gateway config"),
        "the simulator prints the gateway config: {}",
        second.log()
    );
}

/// Connects to the DTU listener and sends `bytes`.
fn dial(port: u16, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect: {e}"));
    s.set_nodelay(true)
        .unwrap_or_else(|e| panic!("nodelay: {e}"));
    s.write_all(bytes).unwrap_or_else(|e| panic!("write: {e}"));
    s
}

/// Waits until the gateway closes `s` (EOF or reset; a deadline far
/// beyond any scheduling delay bounds a hang).
fn closed_by_gateway(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(T))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                );
            }
        }
    }
}

#[test]
fn unknown_torn_and_stalled_registrations_are_refused_without_blocking_a_dtu() {
    anquan_e2e::modbus::sim_binary();
    let mq = Mosquitto::start();
    let port = free_port();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        extra: format!(
            "{}{}",
            listener(port),
            gateway_link_toml("yard", "dtu", YARD_ID, "s1", "yard", &YARD, 200, LINK)
        ),
        ..Setup::default()
    });
    let ok = |gw: &GatewayProcess| {
        gw.metric(r#"anquan_gateway_modbus_polls_total{link="yard",result="ok"}"#)
    };

    // Half a registration, then nothing; and a connection that sends
    // nothing at all. Both wait for the rest of their registration...
    let half = dial(port, &YARD_ID.as_bytes()[..6]);
    let silent = dial(port, b"");
    // ...while the real DTU registers and is polled.
    let _dtu = yard_dtu(port);
    eventually(T, "the DTU polled past the stalled registrations", || {
        (ok(&gw) >= 6.0).then_some(())
    });
    assert_eq!(connections(&gw, "accepted"), 1.0, "log:\n{}", gw.log());
    for label in ["unknown", "malformed", "timeout", "busy"] {
        assert_eq!(connections(&gw, label), 0.0, "{label}; log:\n{}", gw.log());
    }

    // Unknown registrations are refused (the gateway closes the
    // connection) and counted: text, hex bytes, and a known prefix that
    // goes wrong at its last byte.
    for (n, id) in [
        &b"NOT-A-DTU"[..],
        &[0xde, 0xad, 0xbe, 0xef][..],
        &b"YARD-DTU-02"[..],
    ]
    .into_iter()
    .enumerate()
    {
        let s = dial(port, id);
        assert!(
            closed_by_gateway(s),
            "{id:?} not refused; log:\n{}",
            gw.log()
        );
        eventually(T, "the unknown registration counted", || {
            (connections(&gw, "unknown") == (n + 1) as f64).then_some(())
        });
    }
    // A registration torn off by the peer closing is `malformed`.
    let torn = dial(port, b"YARD");
    torn.shutdown(std::net::Shutdown::Write)
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    assert!(closed_by_gateway(torn), "log:\n{}", gw.log());
    eventually(T, "the torn registration counted", || {
        (connections(&gw, "malformed") == 1.0).then_some(())
    });
    // The stalled ones were waiting all along: closing them now counts them.
    drop(half);
    drop(silent);
    eventually(
        T,
        "the stalled registrations counted when they close",
        || (connections(&gw, "malformed") == 3.0).then_some(()),
    );

    // None of it disturbed the DTU: it is still the one registration, and
    // polling goes on.
    let before = ok(&gw);
    eventually(T, "polling goes on", || {
        (ok(&gw) >= before + 4.0).then_some(())
    });
    assert_eq!(connections(&gw, "accepted"), 1.0, "log:\n{}", gw.log());
    assert_eq!(connections(&gw, "replaced"), 0.0, "log:\n{}", gw.log());
    assert_eq!(connections(&gw, "timeout"), 0.0, "log:\n{}", gw.log());
    assert_eq!(
        gw.metric(r#"anquan_gateway_modbus_devices_offline{link="yard"}"#),
        0.0
    );
}
