//! The gateway end to end, against real Mosquitto and VictoriaMetrics,
//! with the gateway as a child process (SIGKILL and SIGTERM are real).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::mqtt::{Publisher, gas_frame, now_ms, telemetry_topic};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, VictoriaMetrics, eventually};
use anquan_protocol::{AlarmEvent, AlarmState, Level};

const T: Duration = Duration::from_secs(60);

#[test]
fn a_55_percent_lel_frame_from_mosquitto_pub_raises_red_everywhere() {
    let mq = Mosquitto::start();
    let vm = VictoriaMetrics::start();
    let rx = Receiver::start("s3cret");
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        http: Some((rx.url(), "s3cret".into())),
        mqtt_alarms: true,
        ..Setup::default()
    });
    let sub = mq.subscribe("alarms/#", 1, T);
    let ts = now_ms();
    mq.publish(
        &telemetry_topic("s1", "gas-0001"),
        &gas_frame("gas-0001", 1, ts, 55.0),
    );

    // On MQTT alarms/s1/gas-0001, for anyone subscribed.
    let lines = sub.lines();
    assert_eq!(lines.len(), 1, "log:\n{}", gw.log());
    let ev = AlarmEvent::decode(lines[0].as_bytes()).expect("an alarm event");
    assert_eq!(
        (ev.rule.as_str(), ev.level, ev.state),
        ("gas.lel", Level::Red, AlarmState::Raised)
    );
    assert_eq!((ev.value, ev.threshold), (55.0, 50.0));
    assert_eq!(
        (ev.site.as_str(), ev.device.as_str(), ev.gateway.as_str()),
        ("s1", "gas-0001", "gw-test")
    );
    assert_eq!(ev.event_id.as_str(), "gw-test/s1/gas-0001/gas.lel/1");
    // The device clock is within the skew bound: the event carries its time.
    assert_eq!(ev.ts_ms, ts);

    // At the HTTP receiver, with the bearer token.
    let got = eventually(T, "the HTTP receiver got the alarm", || {
        let e = rx.events();
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(got, vec![ev.clone()]);

    // The reading, and the alarm as a point, in VictoriaMetrics.
    let samples = eventually(T, "the reading in VictoriaMetrics", || {
        let s = vm.export(r#"gas_lel_pct{site="s1",device="gas-0001"}"#);
        (!s.is_empty()).then_some(s)
    });
    assert_eq!(samples, vec![(ts, 55.0)]);
    assert_eq!(vm.export(r#"gas_seq{device="gas-0001"}"#), vec![(ts, 1.0)]);
    let alarm_points = eventually(T, "the alarm point", || {
        let s = vm.export(r#"alarm_value{rule="gas.lel",level="red",state="raised"}"#);
        (!s.is_empty()).then_some(s)
    });
    assert_eq!(alarm_points.len(), 1);
    assert_eq!(alarm_points[0].1, 55.0);

    // Operations endpoints.
    assert!(
        gw.healthz()
            .unwrap_or_default()
            .contains("\"status\":\"ok\"")
    );
    let m = gw.metrics();
    let v = |s: &str| anquan_e2e::gateway::metric_value(&m, s);
    assert_eq!(
        v(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#),
        1.0
    );
    assert_eq!(
        v(r#"anquan_gateway_alarms_total{level="red",state="raised"}"#),
        1.0
    );
    assert_eq!(v(r#"anquan_gateway_devices{state="online"}"#), 1.0);
    assert!(m.contains("anquan_gateway_sink_write_seconds_bucket"));
    assert!(m.contains("anquan_gateway_queue_oldest_age_seconds{queue=\"points\"}"));
}

/// Small commits (3 frames, so blocks of 1-3 points) and a small sink
/// batch (7 points) make the sink read its backlog in many pieces, most
/// cut short by their budget: none may be skipped.
#[test]
fn a_tsdb_outage_loses_no_point_and_writes_none_twice() {
    let mq = Mosquitto::start();
    let mut vm = VictoriaMetrics::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        sink_extra: "flush_interval_ms = 100\nbatch_size = 7\n".into(),
        extra: "[buffer]\nmax_batch = 3\n".into(),
        ..Setup::default()
    });
    let base = now_ms() - 250_000;
    let frames = |from: u32, to: u32| -> Vec<String> {
        (from..=to)
            .map(|s| {
                gas_frame(
                    "gas-7",
                    s,
                    base + u64::from(s) * 1_000,
                    1.0 + s as f32 / 100.0,
                )
            })
            .collect()
    };
    let topic = telemetry_topic("s1", "gas-7");
    mq.publish_lines(&topic, &frames(1, 100));
    eventually(T, "the first 100 points written", || {
        (gw.metric("anquan_gateway_sink_points_total") >= 100.0).then_some(())
    });

    vm.stop();
    mq.publish_lines(&topic, &frames(101, 200));
    eventually(T, "the next 100 buffered while the TSDB is down", || {
        let processed = gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#);
        let failed = gw.metric(r#"anquan_gateway_sink_errors_total{kind="unavailable"}"#);
        let depth = gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#);
        (processed == 200.0 && failed >= 2.0 && depth == 100.0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    vm.restart();
    eventually(T, "the buffer drained", || {
        (gw.metric(r#"anquan_gateway_queue_depth{queue="points"}"#) == 0.0).then_some(())
    });
    let samples = eventually(T, "all 200 samples visible", || {
        let s = vm.export(r#"gas_seq{device="gas-7"}"#);
        (s.len() >= 200).then_some(s)
    });
    assert_eq!(samples.len(), 200, "a point was written twice");
    let want: Vec<(u64, f64)> = (1..=200u32)
        .map(|s| (base + u64::from(s) * 1_000, f64::from(s)))
        .collect();
    assert_eq!(samples, want);
}

/// Frames alternate between 60 %LEL and 1 %LEL, so every frame is exactly
/// one transition (red raised / cleared). The gateway is killed with
/// SIGKILL in the middle of the stream and restarted; the publisher keeps
/// going (the broker queues for the gateway's persistent session). Then
/// every frame must be in the TSDB and every transition at the receiver,
/// numbered 1..=N per device without a gap or a double: the event id of
/// frame n is `.../n`, because the transition counter, the rule state and
/// the sequence window are committed with the batch before the ack.
#[test]
fn sigkill_mid_stream_loses_no_acknowledged_reading_or_alarm() {
    let mq = Mosquitto::start();
    let vm = VictoriaMetrics::start();
    let rx = Receiver::start("tok");
    let mut gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        http: Some((rx.url(), "tok".into())),
        ..Setup::default()
    });
    const DEVICES: usize = 3;
    const FRAMES: u32 = 200;
    let base = now_ms() - 250_000;
    let mut publisher = Publisher::connect(mq.port(), "test-devices");
    for seq in 1..=FRAMES {
        for d in 0..DEVICES {
            let dev = format!("gas-{d}");
            let lel = if seq % 2 == 1 { 60.0 } else { 1.0 };
            publisher.publish(
                &telemetry_topic("s1", &dev),
                &gas_frame(&dev, seq, base + u64::from(seq) * 1_000, lel),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
        // Twice, mid-stream: some frames committed and acked, some in
        // flight, some waiting in the broker for the session.
        if seq == FRAMES / 4 || seq == FRAMES / 2 {
            gw.kill9();
        }
        if seq == FRAMES / 3 || seq == 2 * FRAMES / 3 {
            gw.restart();
        }
    }
    publisher.wait_acked(T);

    let total = DEVICES * FRAMES as usize;
    let events = eventually(T, "every transition at the receiver", || {
        let e = rx.events();
        (e.len() >= total).then_some(e)
    });
    assert_eq!(events.len(), total, "unexpected extra events");
    let mut per_device: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for e in &events {
        let n: u64 = e
            .event_id
            .as_str()
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("n");
        // Frame n is odd → raised, even → cleared.
        let want = if n % 2 == 1 {
            AlarmState::Raised
        } else {
            AlarmState::Cleared
        };
        assert_eq!(e.state, want, "{e:?}");
        assert!(
            per_device
                .entry(e.device.to_string())
                .or_default()
                .insert(n)
        );
    }
    for (dev, ns) in &per_device {
        assert_eq!(
            ns,
            &(1..=u64::from(FRAMES)).collect::<BTreeSet<_>>(),
            "{dev}"
        );
    }
    // Every reading in the TSDB (a point may be written twice after a
    // kill: at-least-once; none may be missing).
    for d in 0..DEVICES {
        let sel = format!(r#"gas_seq{{device="gas-{d}"}}"#);
        let seqs = eventually(T, "every reading in VictoriaMetrics", || {
            let s: BTreeSet<u64> = vm.export(&sel).iter().map(|(_, v)| *v as u64).collect();
            (s.len() >= FRAMES as usize).then_some(s)
        });
        assert_eq!(seqs, (1..=u64::from(FRAMES)).collect::<BTreeSet<_>>());
    }
    // The broker kept the gateway's session across the kills.
    assert!(gw.log().contains("session_present=true"), "{}", gw.log());
}

#[test]
fn ten_thousand_malformed_messages_are_counted_and_every_valid_one_processed() {
    let mq = Mosquitto::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        ..Setup::default()
    });
    let ts = now_ms();
    let topic = telemetry_topic("s1", "gas-9");
    let big = format!(r#"{{"device":"gas-9","pad":"{}"}}"#, "x".repeat(1_100));
    let bad: Vec<(String, &str)> = vec![
        ("not json at all".into(), "malformed"),
        (
            r#"{"device":"gas-9","kind":"gas","seq":"one","ts_ms":0,"readings":{}}"#.into(),
            "wrong_type",
        ),
        (
            r#"{"device":"gas-9","kind":"gas","seq":5,"ts_ms":0,"readings":{"lel_pct":500}}"#
                .into(),
            "out_of_range",
        ),
        (
            r#"{"device":"gas-9","kind":"smoke","seq":5,"ts_ms":0,"readings":{}}"#.into(),
            "unknown_name",
        ),
        (
            r#"{"device":"gas-9","kind":"gas","ts_ms":0,"readings":{}}"#.into(),
            "missing",
        ),
        (
            r#"{"device":"other","kind":"gas","seq":5,"ts_ms":0,"readings":{}}"#.into(),
            "device_mismatch",
        ),
        (
            r#"{"device":"gas-9","kind":"crane","seq":5,"ts_ms":0,"readings":{}}"#.into(),
            "kind_mismatch",
        ),
        (
            r#"{"device":"gas-9","device":"gas-9","kind":"gas","seq":5,"ts_ms":0,"readings":{}}"#
                .into(),
            "duplicate_key",
        ),
        (big, "too_large"),
    ];
    let mut lines = Vec::new();
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    let mut valid = 0u32;
    // The first frame registers the device as a gas detector.
    lines.push(gas_frame("gas-9", 0, ts, 1.0));
    for i in 0..10_000usize {
        if i % 10 == 0 {
            valid += 1;
            lines.push(gas_frame("gas-9", valid, ts, 2.0));
            if i % 100 == 0 {
                // A replay of the frame just sent: a duplicate seq.
                lines.push(gas_frame("gas-9", valid, ts, 2.0));
                *want.entry("duplicate").or_default() += 1;
                continue;
            }
        }
        let (payload, reason) = &bad[i % bad.len()];
        lines.push(payload.clone());
        *want.entry(reason).or_default() += 1;
    }
    let bad_total: u64 = want.values().sum();
    assert_eq!(bad_total, 10_000);
    mq.publish_lines(&topic, &lines);
    // A topic outside the contract's id rules is counted too.
    mq.publish("sites/s1/devices/bad.id/telemetry", "{}");
    let processed = eventually(T, "every message handled", || {
        let p = gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#);
        let m = gw.metrics();
        let rejected: f64 = m
            .lines()
            .filter(|l| l.starts_with("anquan_gateway_rejected_total{"))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum();
        (p == f64::from(valid) + 1.0 && rejected == 10_001.0).then_some(m)
    });
    for (reason, n) in &want {
        let got = anquan_e2e::gateway::metric_value(
            &processed,
            &format!("anquan_gateway_rejected_total{{reason=\"{reason}\"}}"),
        );
        assert_eq!(got, *n as f64, "{reason}");
    }
    assert_eq!(
        anquan_e2e::gateway::metric_value(
            &processed,
            r#"anquan_gateway_rejected_total{reason="bad_topic"}"#
        ),
        1.0
    );
    // Every valid frame reached the local sink, once.
    let file = gw.dir().join("data").join("points.lp");
    let n = eventually(T, "the points in the local sink", || {
        let n = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count();
        (n == valid as usize + 1).then_some(n)
    });
    assert_eq!(n, valid as usize + 1);
    assert!(gw.healthz().is_some(), "the gateway is still healthy");
    // The log is rate-limited: far fewer lines than rejections.
    let warn_lines = gw.log().lines().filter(|l| l.contains("rejected")).count();
    assert!(
        warn_lines < 200,
        "{warn_lines} log lines for 10 000 rejections"
    );
}

/// Back-pressure: a tiny pipeline channel and batch under a burst from
/// many devices. The event loop stops reading while the pipeline is full,
/// acknowledgements queue up behind it, and nothing may deadlock or be lost.
#[test]
fn a_burst_through_a_tiny_channel_is_fully_processed() {
    let mq = Mosquitto::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        mqtt_extra: "channel_capacity = 16\n".into(),
        extra: "[buffer]\nmax_batch = 4\n".into(),
        ..Setup::default()
    });
    const N: u32 = 8_000;
    let mut p = Publisher::connect(mq.port(), "burst");
    let ts = now_ms();
    for i in 0..N {
        let dev = format!("gas-{}", i % 1_000);
        p.publish(
            &telemetry_topic("s1", &dev),
            &gas_frame(&dev, i / 1_000 + 1, ts + u64::from(i), 1.0),
        );
    }
    p.wait_acked(T);
    eventually(Duration::from_secs(120), "every frame of the burst", || {
        (gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#) == f64::from(N))
            .then_some(())
    });
    let file = gw.dir().join("data").join("points.lp");
    let n = eventually(T, "every point in the local sink", || {
        let n = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count();
        (n == N as usize).then_some(n)
    });
    assert_eq!(n, N as usize);
}
