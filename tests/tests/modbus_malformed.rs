//! A Modbus TCP device that answers every other request with a malformed
//! frame: the gateway counts it (`reason="malformed"`), drops the
//! connection, retries, and keeps polling; the readings still arrive.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, eventually};
use anquan_protocol::AlarmState;

const T: Duration = Duration::from_secs(60);

/// Serves one connection: a read-input-registers answer of `value` in
/// every register, but every other answer malformed (alternating: a byte
/// count that does not match the length, then a wrong function code).
fn serve(mut s: TcpStream, n: Arc<AtomicU64>, value: u16) {
    let mut req = [0u8; 12];
    while s.read_exact(&mut req).is_ok() {
        let (tid, unit) = ([req[0], req[1]], req[6]);
        let count = u16::from_be_bytes([req[10], req[11]]);
        let i = n.fetch_add(1, Ordering::SeqCst);
        let mut pdu = vec![0x04, (2 * count) as u8];
        for _ in 0..count {
            pdu.extend_from_slice(&value.to_be_bytes());
        }
        match i % 4 {
            1 => pdu[1] = pdu[1].wrapping_add(1), // byte count off by one
            3 => pdu[0] = 0x03,                   // answers another function
            _ => {}
        }
        let len = (pdu.len() + 1) as u16;
        let mut adu = vec![tid[0], tid[1], 0, 0];
        adu.extend_from_slice(&len.to_be_bytes());
        adu.push(unit);
        adu.extend_from_slice(&pdu);
        if s.write_all(&adu).is_err() {
            return;
        }
    }
}

#[test]
fn malformed_answers_are_counted_and_not_fatal() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let served = Arc::new(AtomicU64::new(0));
    let n = served.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let n = n.clone();
            std::thread::spawn(move || serve(s, n, 40));
        }
    });
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let extra = format!(
        "[[modbus.links]]\nname = \"bad\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n\
         poll_interval_ms = 100\ntimeout_ms = 300\nretries = 2\noffline_after = 3\n\
         backoff = {{ initial_ms = 10, max_ms = 50 }}\n\
         [[modbus.links.devices]]\nid = \"odd-1\"\nsite = \"s1\"\nkind = \"water_pressure\"\nunit = 1\n\
         registers = [{{ reading = \"pressure_mpa\", address = 0, type = \"i16\", scale = 0.001 }}]\n"
    );
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra,
        ..Setup::default()
    });
    // 0.040 MPa arrives through the good answers: the alarm is raised.
    eventually(T, "the alarm despite malformed answers", || {
        rx.events()
            .iter()
            .any(|e| {
                e.device == "odd-1"
                    && e.rule == "water.pressure_low"
                    && e.state == AlarmState::Raised
            })
            .then_some(())
    });
    eventually(T, "malformed answers counted", || {
        (gw.metric(r#"anquan_gateway_modbus_errors_total{link="bad",reason="malformed"}"#) >= 2.0)
            .then_some(())
    });
    assert_eq!(
        gw.metric(r#"anquan_gateway_modbus_devices_offline{link="bad"}"#),
        0.0
    );
    assert!(gw.healthz().is_some(), "log:\n{}", gw.log());
}
