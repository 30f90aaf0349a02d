//! The all-in-one mode in process: the embedded broker (rumqttd), the
//! gateway started through the library API on a manual clock, a
//! third-party client (`mosquitto_pub`) publishing to the embedded broker,
//! alarms on the handle's channel and on `alarms/...`, points in the local
//! sink.

use std::process::Command;
use std::time::Duration;

use anquan_e2e::mqtt::gas_frame;
use anquan_e2e::services::{eventually, free_port, require};
use anquan_gateway::{Config, Gateway, ManualClock};
use anquan_protocol::{AlarmEvent, AlarmState, Level};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_and_in_process_gateway_on_a_manual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = Config::parse(&format!(
        "[gateway]\nid = \"gw-emb\"\ndata_dir = \"{}\"\n\
         [broker]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n\
         [sink]\ntype = \"file\"\nflush_interval_ms = 50\n\
         [forward.mqtt]\nenabled = true\n[api]\nlisten = \"127.0.0.1:0\"\n",
        dir.path().display()
    ))
    .unwrap();
    let t0 = 1_732_300_000_000;
    let clock = ManualClock::new(t0);
    let gw = Gateway::start_with_clock(cfg, std::sync::Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_eq!(gw.mqtt_addr().1, port);
    assert!(gw.wait_subscribed(Duration::from_secs(30)).await);
    let mut alarms = gw.subscribe_alarms();

    // A third-party subscriber and publisher against rumqttd.
    let sub = tokio::process::Command::new(require("mosquitto_sub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            "alarms/#",
            "-C",
            "1",
            "-W",
            "30",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    clock.advance_ms(15_000);
    let st = Command::new(require("mosquitto_pub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            "sites/demo/devices/gas-1/telemetry",
            "-m",
        ])
        .arg(gas_frame("gas-1", 1, t0 + 15_000, 55.0))
        .status()
        .unwrap();
    assert!(st.success());

    let ev = tokio::time::timeout(Duration::from_secs(30), alarms.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev.level, ev.state, ev.rule.as_str()),
        (Level::Red, AlarmState::Raised, "gas.lel")
    );
    // Rule time follows the injected clock.
    assert_eq!(ev.ts_ms, t0 + 15_000);
    assert_eq!(ev.event_id.as_str(), "gw-emb/demo/gas-1/gas.lel/1");

    let out = tokio::time::timeout(Duration::from_secs(30), sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(AlarmEvent::decode(line.trim().as_bytes()).unwrap(), ev);

    let file = dir.path().join("points.lp");
    let text = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(30), "points in the local sink", || {
            let t = std::fs::read_to_string(&file).unwrap_or_default();
            (t.lines().count() >= 2).then_some(t)
        })
    })
    .await
    .unwrap();
    assert!(
        text.contains("gas,site=demo,device=gas-1 lel_pct=55,co_ppm=1,seq=1i 1732300015000"),
        "{text}"
    );
    assert!(
        text.contains("alarm,site=demo,device=gas-1,rule=gas.lel,level=red,state=raised"),
        "{text}"
    );
    assert_eq!(gw.messages_handled(), 1);
    gw.shutdown().await;
}
