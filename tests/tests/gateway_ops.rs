//! The gateway's operations behaviour end to end: the HTTP alarm contract
//! (retry, dead letter, bad token), rules hot reload (file change, SIGHUP,
//! a bad file), offline detection (silence and last will), `check`, TLS
//! with client certificates, and graceful shutdown.

use std::process::Command;
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup, binary, metric_value};
use anquan_e2e::mqtt::{Publisher, gas_frame, now_ms, telemetry_topic};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, eventually};
use anquan_protocol::{AlarmState, Level};

const T: Duration = Duration::from_secs(60);

fn frame(p: &mut Publisher, dev: &str, seq: u32, lel: f32) {
    p.publish(
        &telemetry_topic("s1", dev),
        &gas_frame(dev, seq, now_ms(), lel),
    );
}

#[test]
fn http_contract_retry_dead_letter_and_bad_token() {
    let mq = Mosquitto::start();
    let rx = Receiver::start("good");
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "good".into())),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");

    // 503, 429, timeout-like 500: retried until accepted, delivered once.
    rx.answer_next(&[503, 429, 500]);
    frame(&mut p, "gas-1", 1, 60.0);
    let ev = eventually(T, "delivered after retries", || {
        rx.events().first().cloned()
    });
    assert_eq!((ev.level, ev.state), (Level::Red, AlarmState::Raised));
    let (requests, _, _) = rx.counts();
    assert_eq!(requests, 4);

    // 422: rejected for good → dead letter, not retried; the next event
    // still flows.
    rx.answer_next(&[422]);
    frame(&mut p, "gas-1", 2, 1.0); // cleared → dead-lettered
    frame(&mut p, "gas-1", 3, 60.0); // raised again → delivered
    eventually(T, "the event after the dead letter", || {
        (rx.events().len() == 2).then_some(())
    });
    let m = gw.metrics();
    assert_eq!(
        metric_value(
            &m,
            r#"anquan_gateway_forward_dead_letter_total{dest="http"}"#
        ),
        1.0
    );
    let ids: Vec<String> = rx.events().iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(
        ids,
        ["gw-test/s1/gas-1/gas.lel/1", "gw-test/s1/gas-1/gas.lel/3"]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.counts().0, 6, "a dead letter is never retried");

    // 401: misconfiguration → flagged loudly, retried, delivered when fixed.
    rx.answer_next(&[401, 401, 403, 401]);
    frame(&mut p, "gas-1", 4, 1.0);
    eventually(T, "the unauthorized flag", || {
        (gw.metric(r#"anquan_gateway_forward_unauthorized{dest="http"}"#) == 1.0).then_some(())
    });
    eventually(T, "delivered once the token is accepted", || {
        (rx.events().len() == 3).then_some(())
    });
    // The receiver has the event before the gateway has its answer: the
    // flag drops when the 200 comes back.
    eventually(T, "the unauthorized flag cleared", || {
        (gw.metric(r#"anquan_gateway_forward_unauthorized{dest="http"}"#) == 0.0).then_some(())
    });
    assert!(gw.log().contains("refuses our credentials"));
}

#[test]
fn rules_reload_on_change_and_sighup_and_a_bad_file_keeps_the_old_rules() {
    let mq = Mosquitto::start();
    let rx = Receiver::start("t");
    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_dir.path().join("rules.toml");
    // Every version keeps the offline rule out of the way: on a slow
    // machine the steps below can take longer than the default 45 s of
    // silence, and a gas.offline raise would then be read as the reload's
    // transition.
    let quiet = "[kind.gas.rules.\"gas.offline\"]\nafter_s = 3600\n";
    std::fs::write(&rules, quiet).unwrap();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "t".into())),
        extra: format!(
            "[rules]\nfile = \"{}\"\nwatch_interval_ms = 100\n",
            rules.display()
        ),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");
    frame(&mut p, "gas-1", 1, 45.0);
    let e = eventually(T, "orange at 45 %LEL", || rx.events().first().cloned());
    assert_eq!((e.level, e.state), (Level::Orange, AlarmState::Raised));

    // A bad file (clear above raise) is refused; the old rules stay.
    std::fs::write(
        &rules,
        format!("{quiet}[kind.gas.rules.\"gas.lel\"]\nred = {{ raise = 40, clear = 45 }}\n"),
    )
    .unwrap();
    eventually(T, "the bad file refused", || {
        (gw.metric(r#"anquan_gateway_rules_reloads_total{result="error"}"#) >= 1.0).then_some(())
    });
    assert!(gw.log().contains("red.clear"), "the log names the key");
    frame(&mut p, "gas-1", 2, 45.0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rx.events().len(),
        1,
        "45 % stays orange under the old rules"
    );

    // A good file: red from 40 %. The state carries over: orange → red is
    // an escalation, not a new raise.
    std::fs::write(
        &rules,
        format!("{quiet}[kind.gas.rules.\"gas.lel\"]\nred = {{ raise = 40, clear = 30 }}\n"),
    )
    .unwrap();
    eventually(T, "the good file loaded", || {
        (gw.metric(r#"anquan_gateway_rules_reloads_total{result="ok"}"#) >= 1.0).then_some(())
    });
    frame(&mut p, "gas-1", 3, 45.0);
    let e = eventually(T, "escalated to red", || rx.events().get(1).cloned());
    assert_eq!(
        (e.level, e.state, e.threshold),
        (Level::Red, AlarmState::Escalated, 40.0)
    );

    // SIGHUP reloads even without a change.
    let before = gw.metric(r#"anquan_gateway_rules_reloads_total{result="ok"}"#);
    gw.hangup();
    eventually(T, "reloaded on SIGHUP", || {
        (gw.metric(r#"anquan_gateway_rules_reloads_total{result="ok"}"#) > before).then_some(())
    });
}

#[test]
fn offline_from_silence_and_from_the_last_will() {
    let mq = Mosquitto::start();
    let rx = Receiver::start("t");
    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_dir.path().join("rules.toml");
    std::fs::write(&rules, "[kind.gas.rules.\"gas.offline\"]\nafter_s = 2\n").unwrap();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "t".into())),
        extra: format!(
            "[rules]\nfile = \"{}\"\noffline_tick_ms = 100\n",
            rules.display()
        ),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");
    frame(&mut p, "gas-1", 1, 1.0);
    // Silence for 2 s → offline (yellow for gas).
    let e = eventually(T, "offline after silence", || rx.events().first().cloned());
    assert_eq!(
        (e.rule.as_str(), e.level, e.state),
        ("gas.offline", Level::Yellow, AlarmState::Raised)
    );
    assert!(e.value >= 2.0);
    assert_eq!(gw.metric(r#"anquan_gateway_devices{state="offline"}"#), 1.0);
    // A frame is a sign of life.
    frame(&mut p, "gas-1", 2, 1.0);
    let e = eventually(T, "back online", || rx.events().get(1).cloned());
    assert_eq!(
        (e.rule.as_str(), e.state),
        ("gas.offline", AlarmState::Cleared)
    );
    // The last will (retained status "offline") raises at once.
    p.publish_retained("sites/s1/devices/gas-1/status", "offline");
    let e = eventually(T, "offline from the last will", || {
        rx.events().get(2).cloned()
    });
    assert_eq!(
        (e.rule.as_str(), e.state),
        ("gas.offline", AlarmState::Raised)
    );
    p.publish_retained("sites/s1/devices/gas-1/status", "online");
    let e = eventually(T, "online status", || rx.events().get(3).cloned());
    assert_eq!(e.state, AlarmState::Cleared);
    // A status nobody understands is counted.
    p.publish("sites/s1/devices/gas-1/status", "maybe");
    eventually(T, "bad status counted", || {
        (gw.metric(r#"anquan_gateway_rejected_total{reason="bad_status"}"#) == 1.0).then_some(())
    });
}

#[test]
fn check_validates_everything_and_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str| {
        let p = dir.path().join("g.toml");
        std::fs::write(&p, text).unwrap();
        let out = Command::new(binary())
            .args(["check", "--config"])
            .arg(&p)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ok = "[gateway]\nid = \"gw-1\"\ndata_dir = \"d\"\n";
    let (success, stdout, _) = run(ok);
    assert!(success);
    assert!(
        stdout.contains("[mqtt]") && stdout.contains("port = 1883"),
        "prints the effective config:\n{stdout}"
    );
    for (text, key) in [
        (format!("{ok}[mqtt]\nport = 0\n"), "mqtt.port"),
        (
            format!("{ok}[mqtt]\nkeep_alive_s = \"x\"\n"),
            "mqtt.keep_alive_s",
        ),
        (format!("{ok}[sink]\ntype = \"influx\"\n"), "sink.influx"),
        (
            format!("{ok}[forward.http]\nurl = \"http://x\"\ntoken = \"\"\n"),
            "forward.http.token",
        ),
        (
            format!("{ok}[rules]\nfile = \"missing.toml\"\n"),
            "rules.file",
        ),
        (format!("{ok}[buffer]\nmax_batch = 0\n"), "buffer.max_batch"),
        (
            format!("{ok}[validate]\nunknown_devices = \"maybe\"\n"),
            "validate.unknown_devices",
        ),
        (
            format!("{ok}[mqtt.tls]\nca_file = \"nope.pem\"\n"),
            "mqtt.tls.ca_file",
        ),
        (
            format!("{ok}[broker]\nlisten = \"127.0.0.1:0\"\n"),
            "broker.listen",
        ),
    ] {
        let (success, _, stderr) = run(&text);
        assert!(!success, "{text}");
        assert!(stderr.contains(key), "`{key}` not named in: {stderr}");
    }
    // A rules file error names the rules file's line and key.
    std::fs::write(
        dir.path().join("rules.toml"),
        "[kind.gas.rules.\"gas.lel\"]\nred = { raise = 40, clear = 45 }\n",
    )
    .unwrap();
    let (success, _, stderr) = run(&format!("{ok}[rules]\nfile = \"rules.toml\"\n"));
    assert!(!success);
    assert!(
        stderr.contains("rules file line 1") && stderr.contains("red.clear"),
        "{stderr}"
    );
}

#[test]
fn graceful_shutdown_flushes_and_exits_cleanly() {
    let mq = Mosquitto::start();
    let mut gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        sink_extra: "flush_interval_ms = 60000\nbatch_size = 100000\n".into(),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");
    for s in 1..=50 {
        frame(&mut p, "gas-1", s, 1.0);
    }
    p.wait_acked(T);
    eventually(T, "50 frames handled", || {
        (gw.metric(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#) == 50.0)
            .then_some(())
    });
    // The sink waits a minute for a fuller batch; SIGTERM flushes now.
    let file = gw.dir().join("data").join("points.lp");
    assert!(!file.exists());
    assert!(gw.terminate(), "exit status 0");
    let n = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(n, 50);
}

#[test]
fn registry_policy_rejects_undeclared_and_mismatched_devices() {
    let mq = Mosquitto::start();
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        extra: "[validate]\nunknown_devices = \"reject\"\n\
                [[validate.devices]]\nid = \"gas-1\"\nsite = \"s1\"\nkind = \"gas\"\n"
            .into(),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");
    frame(&mut p, "gas-1", 1, 1.0); // declared: accepted
    frame(&mut p, "gas-2", 1, 1.0); // undeclared
    p.publish(
        "sites/s2/devices/gas-1/telemetry", // declared for s1
        &gas_frame("gas-1", 2, now_ms(), 1.0),
    );
    p.publish(
        &telemetry_topic("s1", "gas-1"),
        r#"{"device":"gas-1","kind":"crane","seq":3,"ts_ms":0,"readings":{}}"#,
    );
    // A device clock an hour off is flagged, and the frame still counts.
    p.publish(
        &telemetry_topic("s1", "gas-1"),
        &gas_frame("gas-1", 4, now_ms() - 3_600_000, 1.0),
    );
    eventually(T, "every verdict counted", || {
        let m = gw.metrics();
        let v = |s: &str| metric_value(&m, s);
        (v(r#"anquan_gateway_frames_processed_total{topic="telemetry"}"#) == 2.0
            && v(r#"anquan_gateway_rejected_total{reason="unknown_device"}"#) == 1.0
            && v(r#"anquan_gateway_rejected_total{reason="site_mismatch"}"#) == 1.0
            && v(r#"anquan_gateway_rejected_total{reason="kind_mismatch"}"#) == 1.0
            && v("anquan_gateway_clock_skew_total") == 1.0
            && v("anquan_gateway_seq_gaps_total") == 1.0)
            .then_some(())
    });
}

/// The TSDB is unreachable and the points queue hits its byte cap: the
/// oldest points are dropped, counted and raised (metric flag and an ERROR
/// "ALARM" log line), the queue stays within its cap, and logs are JSON.
#[test]
fn a_full_buffer_drops_oldest_first_counts_and_raises_it() {
    let mq = Mosquitto::start();
    let dead_tsdb = format!("http://127.0.0.1:{}", anquan_e2e::services::free_port());
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(dead_tsdb),
        log_json: true,
        extra: "[buffer]\npoints_max_bytes = 65536\n".into(),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");
    for s in 1..=1_500 {
        frame(&mut p, "gas-1", s, 1.0);
    }
    p.wait_acked(T);
    // Every point is either waiting or counted as dropped (processed frames
    // are counted when judged; wait for their commit too).
    let m = eventually(T, "every point waiting or dropped", || {
        let m = gw.metrics();
        let depth = metric_value(&m, r#"anquan_gateway_queue_depth{queue="points"}"#);
        let dropped = metric_value(&m, r#"anquan_gateway_queue_dropped_total{queue="points"}"#);
        (dropped > 0.0 && depth + dropped == 1_500.0).then_some(m)
    });
    assert!(metric_value(&m, r#"anquan_gateway_queue_bytes{queue="points"}"#) <= 65_536.0);
    assert_eq!(
        metric_value(&m, r#"anquan_gateway_queue_overflow{queue="points"}"#),
        1.0
    );
    let log = gw.log();
    let alarm = log
        .lines()
        .find(|l| l.contains("durable buffer full"))
        .expect("an ERROR line for the drop");
    let v: serde_json::Value = serde_json::from_str(alarm).expect("JSON logs");
    assert_eq!(v["level"], "ERROR");
}

/// Site liveness: the gateway posts a heartbeat every `heartbeat_s` with
/// the sites it serves (learnt from its devices' frames), its broker link
/// and its queues, to `{url}/api/v1/gateways/{id}/heartbeat` on the
/// forwarder's token; none while it knows no site.
#[test]
fn the_gateway_reports_its_sites_on_a_heartbeat() {
    let mq = Mosquitto::start();
    let rx = Receiver::start("hb-token");
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        extra: format!(
            "[forward.http]\nurl = \"{}\"\ntoken = \"hb-token\"\nheartbeat_s = 5\n\n",
            rx.url()
        ),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");
    frame(&mut p, "gas-1", 1, 1.0);
    let (id, hb) = eventually(T, "a heartbeat naming site s1", || {
        rx.heartbeats().into_iter().find(|(_, b)| {
            b["sites"]
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s == "s1"))
        })
    });
    assert_eq!(id, "gw-test");
    assert_eq!(hb["interval_s"], 5, "{hb}");
    assert_eq!(hb["broker_connected"], true, "{hb}");
    assert!(
        hb["buffered"].is_u64() && hb["alarms_queued"].is_u64(),
        "{hb}"
    );
    // Before the first frame the gateway knew no site: nothing was sent
    // without one.
    assert!(
        rx.heartbeats()
            .iter()
            .all(|(_, b)| !b["sites"].as_array().is_none_or(|a| a.is_empty())),
        "{:?}",
        rx.heartbeats()
    );
    assert!(gw.metric(r#"anquan_gateway_heartbeats_total{result="ok"}"#) >= 1.0);
}
