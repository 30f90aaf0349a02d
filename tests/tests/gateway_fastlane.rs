//! The alarm fast lane, observed from outside: with a long group-commit
//! interval, a gas alarm reaches an `alarms/#` subscriber before its frame
//! is committed (the gateway has handled nothing yet), while the alarm of
//! a frame that starts a rule held in time (CO above 26 ppm for 15
//! minutes: judging the frame again after a crash could come out
//! differently) waits for the commit. Embedded broker, gateway in process, real clock.

// Test helpers outside #[test] fns: a failed setup step is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anquan_e2e::mqtt::gas_frame;
use anquan_e2e::services::free_port;
use anquan_gateway::{Config, Gateway, SystemClock};
use anquan_protocol::{AlarmEvent, AlarmState, Level};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const COMMIT_MS: u64 = 3_000;

async fn alarms_subscriber(
    port: u16,
) -> tokio::sync::mpsc::UnboundedReceiver<(Instant, AlarmEvent)> {
    let mut o = MqttOptions::new("fastlane-sub", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (c, mut el) = AsyncClient::new(o, 16);
    c.subscribe("alarms/#", QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        let _c = c;
        while let Ok(ev) = el.poll().await {
            match ev {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(r) = ready_tx.take() {
                        let _ = r.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) => {
                    if let Ok(e) = AlarmEvent::decode(&p.payload) {
                        let _ = tx.send((Instant::now(), e));
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .unwrap()
        .unwrap();
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gas_alarm_leaves_before_its_commit_and_one_under_a_timed_rule_after() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = Config::parse(&format!(
        "[gateway]\nid = \"gw-fast\"\ndata_dir = \"{}\"\n\
         [broker]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n\
         [buffer]\ncommit_interval_ms = {COMMIT_MS}\ncommit_idle_ms = {COMMIT_MS}\n\
         [forward.mqtt]\nenabled = true\n[api]\nlisten = \"\"\n",
        dir.path().display()
    ))
    .unwrap();
    let gw = Gateway::start_with_clock(cfg, Arc::new(SystemClock))
        .await
        .unwrap();
    assert!(gw.wait_subscribed(Duration::from_secs(30)).await);
    let mut alarms = alarms_subscriber(port).await;

    let mut o = MqttOptions::new("fastlane-dev", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (dev, mut el) = AsyncClient::new(o, 16);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let now = anquan_gateway::clock::wall_ms();

    // Gas: early.
    let sent = Instant::now();
    dev.publish(
        "sites/s1/devices/gas-1/telemetry",
        QoS::AtLeastOnce,
        false,
        gas_frame("gas-1", 1, now, 60.0),
    )
    .await
    .unwrap();
    let (at, e) = tokio::time::timeout(Duration::from_secs(COMMIT_MS / 1000 + 5), alarms.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.rule.as_str(), e.level, e.state),
        ("gas.lel", Level::Red, AlarmState::Raised)
    );
    assert_eq!(e.ts_ms, now, "the device clock is trusted: its time");
    assert_eq!(gw.messages_handled(), 0, "the frame is not committed yet");
    assert!(
        at.duration_since(sent) < Duration::from_millis(COMMIT_MS / 2),
        "the alarm took {:?}",
        at.duration_since(sent)
    );
    // It is committed later, in its batch.
    let deadline = Instant::now() + Duration::from_secs(COMMIT_MS / 1000 + 10);
    while gw.messages_handled() < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gw.messages_handled(), 1);

    // CO above 26 ppm starts gas.co_sustained's 15-minute hold, a rule
    // that now looks at the clock: judged again after a crash the frame
    // could come out differently, so its LEL alarm waits for the commit.
    let frame = format!(
        r#"{{"device":"gas-2","kind":"gas","seq":1,"ts_ms":{now},"readings":{{"lel_pct":60,"co_ppm":40}}}}"#
    );
    dev.publish(
        "sites/s1/devices/gas-2/telemetry",
        QoS::AtLeastOnce,
        false,
        frame,
    )
    .await
    .unwrap();
    let (_, e) = tokio::time::timeout(Duration::from_secs(COMMIT_MS / 1000 + 10), alarms.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.device.as_str(), e.rule.as_str(), e.level),
        ("gas-2", "gas.lel", Level::Red)
    );
    assert_eq!(gw.messages_handled(), 2, "sent only after its commit");
    gw.shutdown().await;
}
